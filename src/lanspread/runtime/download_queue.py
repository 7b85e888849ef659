"""The download queue: order, pause and resume, auto-resume, and the Downloads view.

Theory of operation
-------------------
:class:`DownloadQueue` sits in front of the :class:`DownloadManager`. At most
``limit`` downloads run at once (:data:`MAX_ACTIVE_DOWNLOADS`); a download asked
for beyond that passes every check of a start (state, sources, free space) and
then waits, shown paused with the reason ``queued``. Whenever a download ends,
the first queued ones start (``core.download_queue.to_start``); the player may
move a queued one up or down.

A pause by the player stops a running download keeping its files (reason
``player``); such a download never resumes by itself. A download paused because
its sources left (``all-peers-gone``) resumes when a source for the same version
and manifest returns: every change of what peers offer is checked against
``core.download_queue.should_auto_resume``.

:meth:`DownloadQueue.view` answers the ``list-downloads`` command: running and
queued downloads in order with their progress, then the paused and failed ones,
total down and up rates, who pulls from this peer and the free space of the game
folder's filesystem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from lanspread.core.download_queue import (
    PLAYER,
    QUEUED,
    Offer,
    move,
    should_auto_resume,
    to_start,
)
from lanspread.errors import InvalidGameState, LanspreadError
from lanspread.runtime.eventbus import Subscription
from lanspread.runtime.events import (
    DownloadBegin,
    DownloadProgress,
    DownloadQueueChanged,
    Event,
    RemoteGamesChanged,
)
from lanspread.runtime.replies import PAUSED

if TYPE_CHECKING:
    from lanspread.runtime.downloads import DownloadManager
    from lanspread.runtime.peers import PeerNetwork

log = logging.getLogger(__name__)

# Downloads running at once; more wait in the queue. Three keep a LAN link busy
# from several sources while a fourth game does not split the bandwidth further.
MAX_ACTIVE_DOWNLOADS = 3


class DownloadEntry(msgspec.Struct, frozen=True):
    """One download of the Downloads view."""

    game: str
    name: str
    state: str
    """``downloading``, ``queued``, ``paused`` or ``failed``."""
    reason: str
    message: str
    done_bytes: int
    total_bytes: int
    bytes_per_second: float
    eta_seconds: float | None


class UploadEntry(msgspec.Struct, frozen=True):
    """A peer pulling from this one."""

    peer_id: str
    peer_name: str
    game: str
    game_name: str
    bytes_per_second: float


class DownloadsView(msgspec.Struct, frozen=True):
    """The reply of ``list-downloads``."""

    downloads: tuple[DownloadEntry, ...]
    download_rate: float
    upload_rate: float
    uploads: tuple[UploadEntry, ...]
    free_bytes: int | None
    """Free space of the game folder's filesystem; ``None`` when it cannot be read."""


@dataclass(frozen=True, slots=True)
class _Sample:
    done: int
    total: int
    rate: float
    eta: float | None


class DownloadQueue:
    def __init__(
        self,
        manager: DownloadManager,
        network: PeerNetwork,
        *,
        publish: Callable[[Event], None],
        limit: int = MAX_ACTIVE_DOWNLOADS,
    ) -> None:
        self._publish = publish
        self._manager = manager
        self._network = network
        self.limit = limit
        self._order: list[str] = []
        self._resume_order: list[str] = []
        self._updates: set[str] = set()
        self._samples: dict[str, _Sample] = {}
        manager.add_ended_listener(self._ended)

    @property
    def queued(self) -> tuple[str, ...]:
        return tuple(self._order)

    def _set_order(self, order: list[str]) -> None:
        if order != self._order:
            self._order = order
            self._publish(DownloadQueueChanged(queued=tuple(order)))

    # -- commands --------------------------------------------------------------

    def download(self, game_id: str, *, update: bool = False) -> str:
        """Start ``game_id`` now, or queue it behind the running ones; the operation."""
        if len(self._manager.active_ids) >= self.limit:
            self._manager.download(game_id, update=update, queue=True)
            self._set_order([*self._without(game_id), game_id])
            if update:
                self._updates.add(game_id)
            return QUEUED
        self._manager.download(game_id, update=update)
        self._set_order(self._without(game_id))
        return "downloading"

    def pause(self, game_id: str) -> None:
        """Pause a running, queued or source-less download; it resumes only when the
        player says so."""
        self._manager.require_known(game_id)
        if game_id in self._order:
            self._set_order(self._without(game_id))
            self._manager.hold(game_id, PLAYER)
            return
        if self._manager.pause(game_id):
            return
        halted = self._manager.halted.get(game_id)
        if halted is None or halted.state != PAUSED:
            raise InvalidGameState(f"{self._manager.game_name(game_id)} has no download to pause")
        self._manager.hold(game_id, PLAYER)

    def cancel(self, game_id: str) -> None:
        """Cancel: a queued download that never started only leaves the queue."""
        queued = game_id in self._order
        if queued and game_id not in self._manager.partials:
            self._set_order(self._without(game_id))
            self._manager.release(game_id)
            return
        self._manager.cancel(game_id)
        self._set_order(self._without(game_id))

    def move(self, game_id: str, step: int) -> None:
        """Move a queued download ``step`` places later (negative: earlier)."""
        self._set_order(list(move(self._order, game_id, step)))

    def _without(self, game_id: str) -> list[str]:
        return [queued for queued in self._order if queued != game_id]

    def pause_all(self) -> None:
        """Pause every running and queued download; resume all restores their order."""
        self._resume_order = [*self._manager.active_ids, *self._order]
        for game_id in self._resume_order:
            self.pause(game_id)  # each of them can be paused: none raises

    def resume_all(self) -> None:
        """Resume every paused download, in queue order past the active limit."""
        halted = self._stopped_ids()
        order = self._resume_order
        ranked = sorted(halted, key=lambda g: order.index(g) if g in order else len(order))
        for game_id in ranked:
            if halted[game_id] == PAUSED and game_id not in self._order:
                self._try_download(game_id)
        self._resume_order = []

    def _stopped_ids(self) -> dict[str, str]:
        """The downloads that are not running, by game id, with their state."""
        active = self._manager.active_ids
        return {
            game_id: state.state
            for game_id, state in self._manager.halted.items()
            if game_id not in active
        }

    def _try_download(self, game_id: str) -> None:
        try:
            self.download(game_id, update=game_id in self._updates)
        except LanspreadError as exc:
            log.info("cannot resume the download of %s: %s", game_id, exc)

    # -- reactions -------------------------------------------------------------

    def _ended(self, game_id: str) -> None:
        self._samples.pop(game_id, None)
        self._start_queued()

    def _start_queued(self) -> None:
        for game_id in to_start(self._order, len(self._manager.active_ids), self.limit):
            self._set_order(self._without(game_id))
            update = game_id in self._updates
            self._updates.discard(game_id)
            try:
                self._manager.download(game_id, update=update)
            except LanspreadError as exc:
                log.info("queued download of %s cannot start: %s", game_id, exc)
                self._manager.hold(game_id, PLAYER)

    def observe(self, event: Event) -> None:
        """Follow progress, and resume what a returning source makes resumable."""
        match event:
            case DownloadBegin(game=game, total_bytes=total, resumed_bytes=resumed):
                self._samples[game] = _Sample(resumed, total, 0.0, None)
            case DownloadProgress():
                self._samples[event.game] = _Sample(
                    event.downloaded_bytes + event.in_flight_bytes,
                    event.total_bytes,
                    event.bytes_per_second,
                    event.eta_seconds,
                )
            case RemoteGamesChanged():
                self.auto_resume()
            case _:
                pass

    def auto_resume(self) -> tuple[str, ...]:
        """Resume every download paused by leaving sources that a source offers again."""
        resumed = []
        partials = self._manager.partials
        for game_id, state in self._manager.halted.items():
            partial = partials.get(game_id)
            if partial is None or game_id in self._manager.active_ids:
                continue
            latest, sources = self._network.sources_for(game_id)
            pinned = self._network.pinned_digest(game_id, latest)
            offers = [Offer(latest, pinned)] if sources else []
            if should_auto_resume(
                state.reason,
                version=partial.version,
                manifest_digest=partial.manifest_digest,
                offers=offers,
            ):
                log.info("a source of %s is back: resuming its download", game_id)
                self._try_download(game_id)
                resumed.append(game_id)
        return tuple(resumed)

    async def run(self, subscribe: Callable[[], Subscription]) -> None:
        """The ``download-queue`` service: observe every event until cancelled."""
        async for event in subscribe():
            self.observe(event)

    # -- the view ----------------------------------------------------------------

    def view(self, game_dir_free: Callable[[], int]) -> DownloadsView:
        manager = self._manager
        entries = [self._running(game_id) for game_id in manager.active_ids]
        stopped = self._stopped_ids()
        entries.extend(self._stopped(game_id, QUEUED) for game_id in self._order)
        entries.extend(
            self._stopped(game_id, state)
            for game_id, state in stopped.items()
            if game_id not in self._order
        )
        uploads = self._network.seeder.upload_status()
        names = {view.peer_id: view.name for view in self._network.peer_views()}
        pulling = tuple(
            UploadEntry(
                peer_id=peer_id,
                peer_name=names.get(peer_id, peer_id[:8]),
                game=uploads.games.get(peer_id, ""),
                game_name=manager.game_name(uploads.games.get(peer_id, "")),
                bytes_per_second=rate,
            )
            for peer_id, rate in sorted(uploads.rates.items())
            if rate > 0
        )
        try:
            free: int | None = game_dir_free()
        except OSError:
            free = None
        return DownloadsView(
            downloads=tuple(entries),
            download_rate=self.download_rate(),
            upload_rate=sum(uploads.rates.values()),
            uploads=pulling,
            free_bytes=free,
        )

    def download_rate(self) -> float:
        """Bytes a second on the wire over every running download (in flight included)."""
        active = self._manager.active_ids
        return sum(sample.rate for game_id, sample in self._samples.items() if game_id in active)

    def _running(self, game_id: str) -> DownloadEntry:
        sample = self._samples.get(game_id) or _Sample(0, 0, 0.0, None)
        return DownloadEntry(
            game=game_id,
            name=self._manager.game_name(game_id),
            state="downloading",
            reason="",
            message="",
            done_bytes=sample.done,
            total_bytes=sample.total,
            bytes_per_second=sample.rate,
            eta_seconds=sample.eta,
        )

    def _stopped(self, game_id: str, state: str) -> DownloadEntry:
        halt = self._manager.halted.get(game_id)
        return DownloadEntry(
            game=game_id,
            name=self._manager.game_name(game_id),
            state=state,
            reason=halt.reason if halt is not None else QUEUED,
            message=halt.message if halt is not None else "",
            done_bytes=halt.done_bytes if halt is not None else 0,
            total_bytes=halt.total_bytes if halt is not None else 0,
            bytes_per_second=0.0,
            eta_seconds=None,
        )
