"""The UI state store: what the page needs beyond the runtime's snapshots.

Theory of operation
-------------------
The runtime's game views and operation table are authoritative and are read fresh
for every view. This store keeps only *overlays* derived from events, each one
bounded in time by the snapshots:

=================  =======================================  ==============================
overlay            set by                                   dropped by
=================  =======================================  ==============================
download sample    ``DownloadBegin``, ``DownloadProgress``  a snapshot without
                                                            ``downloading`` for the game
install sample     ``InstallBegin``, ``InstallProgress``    a snapshot without
                                                            ``installing``/``updating``
last error         ``InstallFailed``, ``UninstallFailed``,  a snapshot showing a new
                   ``RemoveFailed``                         operation, a new click,
                                                            a ``*Finished`` event
pending click      :meth:`UiState.mark_pending`             the command's reply, a
                                                            snapshot with an operation,
                                                            a ``*Failed`` event
notice             ``InstallFinished`` or                   newer notices (the last
                   ``UninstallFinished`` that kept the      :data:`MAX_NOTICES` stay)
                   player's files
=================  =======================================  ==============================

Notices are not state of a game but news for the page: each has an id that only
grows (across runtime restarts too), and the page toasts each id once.

Lifecycle events never change what a card *is*: they only feed overlays, and the
view model draws an overlay only when the authoritative snapshot agrees. What a
game is and what it may do is no overlay at all: the runtime's game snapshot
carries its lifecycle state and allowed commands (``GameView.state`` and
``actions``), a running game and a paused or failed download included, so they are
true after any restart; a ``GameStarted`` or ``GameExited`` only asks for a redraw.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lanspread.core.operations import OperationKind
from lanspread.runtime.events import (
    ActiveOperationsChanged,
    ChunkFinished,
    DownloadAllPeersGone,
    DownloadBegin,
    DownloadCancelled,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    Event,
    GameExited,
    GameStarted,
    InstallBegin,
    InstallFailed,
    InstallFinished,
    InstallProgress,
    LocalLibraryChanged,
    RemoveFailed,
    RemoveFinished,
    ServiceRestarting,
    SourceRejected,
    UninstallFailed,
    UninstallFinished,
)
from lanspread.web.viewmodel import DownloadSample, InstallSample, NoticeFacts

_FAILURE_PREFIX: Mapping[type[Event], str] = {
    InstallFailed: "Install failed",
    UninstallFailed: "Uninstall failed",
    RemoveFailed: "Removing files failed",
}
# Operations whose progress the install sample draws, and the one the download sample's.
_INSTALL_OPERATIONS = frozenset({OperationKind.INSTALLING.value, OperationKind.UPDATING.value})
_DOWNLOAD_OPERATION = OperationKind.DOWNLOADING.value

# How long a download's shown speed takes to follow a change (the time constant of its
# average): long enough that bursts of 16 MiB chunks on a slow link read as one rate.
SPEED_SMOOTHING_SECONDS = 3.0
# A failure reason comes from a peer or the disk; the card has room for a sentence.
MAX_ERROR_LENGTH = 300
# Toasts a page that was closed for a while catches up on: more would bury the screen.
MAX_NOTICES = 8
# A download stopped on a content conflict: the toast sends the player to the sides,
# which the detail view lists by peer name (the runtime's reason names peer ids).
CONFLICT_TOLD = (
    "Download stopped: the players offering it disagree on its content. "
    "Open the game to choose whose copy to trust."
)


@dataclass(frozen=True, slots=True)
class GameOverlay:
    download: DownloadSample | None = None
    install: InstallSample | None = None
    last_error: str | None = None
    pending: str | None = None
    last_played: float | None = None
    """When the game was last started in this process (seconds since the epoch)."""


_EMPTY = GameOverlay()


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


class UiState:
    """Overlays per game id; every method returns True when the view may have changed."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clear()
        self._notices: list[NoticeFacts] = []
        self._notice_seq = 0
        self._clock = clock
        # Kept across runtime restarts: when a game was last started is the player's.
        self._played: dict[str, float] = {}

    def _clear(self) -> None:
        self._download: dict[str, DownloadSample] = {}
        self._sampled_at: dict[str, float] = {}
        self._install: dict[str, InstallSample] = {}
        self._errors: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        self._operations: dict[str, str] = {}

    def overlay(self, game_id: str) -> GameOverlay:
        if not any(
            game_id in table
            for table in (
                self._download,
                self._install,
                self._errors,
                self._pending,
                self._played,
            )
        ):
            return _EMPTY
        return GameOverlay(
            download=self._download.get(game_id),
            install=self._install.get(game_id),
            last_error=self._errors.get(game_id),
            pending=self._pending.get(game_id),
            last_played=self._played.get(game_id),
        )

    @property
    def notices(self) -> tuple[NoticeFacts, ...]:
        """The newest notices, oldest first."""
        return tuple(self._notices)

    def _notice(
        self,
        game_id: str,
        kept: tuple[str, ...],
        renamed: tuple[tuple[str, str], ...] = (),
        *,
        uninstalled: bool = False,
    ) -> None:
        if not kept and not renamed:
            return
        self._notice_seq += 1
        self._notices.append(NoticeFacts(self._notice_seq, game_id, kept, renamed, uninstalled))
        del self._notices[:-MAX_NOTICES]

    def tell(self, game_id: str, message: str, kind: str) -> None:
        """News of a download for the page to toast (and notify) once."""
        self._notice_seq += 1
        self._notices.append(NoticeFacts(self._notice_seq, game_id, message=message, kind=kind))
        del self._notices[:-MAX_NOTICES]

    def reset(self) -> None:
        """Forget everything: a new runtime starts from its own snapshots."""
        self._clear()

    def game_dir_changed(self) -> bool:
        """Forget what belonged to the old game folder (progress, install samples,
        failures): none of it may show on, or be acted on for, the new one. The
        pending clicks stay: they are the process's."""
        tables = (self._download, self._install, self._errors)
        changed = any(tables)
        for table in tables:
            table.clear()
        return changed

    # -- optimistic clicks -------------------------------------------------------------

    def mark_pending(self, game_id: str, command: str) -> None:
        """The page sent ``command`` for the game; a retry clears the last error."""
        self._pending[game_id] = command
        self._errors.pop(game_id, None)

    def clear_pending(self, game_id: str, command: str) -> bool:
        """The command was answered; only its own mark is cleared."""
        if self._pending.get(game_id) != command:
            return False
        del self._pending[game_id]
        return True

    # -- snapshots -----------------------------------------------------------------------

    def reconcile(self, operations: Mapping[str, str | None]) -> None:
        """Apply an authoritative operation table (game id to kind or ``None``)."""
        active = {gid: kind for gid, kind in operations.items() if kind is not None}
        for game_id in list(self._download):
            if active.get(game_id) != _DOWNLOAD_OPERATION:
                del self._download[game_id]
                self._sampled_at.pop(game_id, None)
        for game_id in list(self._install):
            if active.get(game_id) not in _INSTALL_OPERATIONS:
                del self._install[game_id]
        for game_id in active:
            self._pending.pop(game_id, None)
            if game_id not in self._operations:
                self._errors.pop(game_id, None)
        self._operations = active

    # -- events ----------------------------------------------------------------------------

    def _smoothed(self, event: DownloadProgress) -> DownloadSample:
        """The sample with its speed averaged over the last seconds (an exponential
        average in time), and the ETA from that speed: a link that delivers in bursts
        reads as its rate, not as a number flickering with zero."""
        now = self._clock()
        done = event.downloaded_bytes + event.in_flight_bytes  # moves before a chunk lands
        rate, eta = event.bytes_per_second, event.eta_seconds
        previous = self._download.get(event.game)
        at = self._sampled_at.get(event.game)
        self._sampled_at[event.game] = now
        if previous is not None and at is not None and now >= at:
            weight = 1.0 - math.exp(-(now - at) / SPEED_SMOOTHING_SECONDS)
            rate = previous.bytes_per_second + weight * (rate - previous.bytes_per_second)
            left = max(event.total_bytes - done, 0)
            eta = left / rate if rate > 0 else None
        return DownloadSample(done, event.total_bytes, rate, eta)

    def apply(self, event: Event) -> bool:
        """Feed one runtime event; True when the view may have changed."""
        match event:
            case ActiveOperationsChanged(operations=operations):
                self.reconcile(operations)
            case LocalLibraryChanged():
                pass
            case DownloadBegin(game=game, total_bytes=total, resumed_bytes=resumed):
                self._download[game] = DownloadSample(resumed, total, 0.0, None)
                self._sampled_at.pop(game, None)
            case DownloadProgress():
                self._download[event.game] = self._smoothed(event)
            case DownloadCancelled(game=game):
                self._errors.pop(game, None)
            case DownloadFinished(game=game):
                self._errors.pop(game, None)
                self.tell(game, "Download finished", "ok")
            case DownloadFailed(game=game, conflict=True):
                # The sides (peers and digests) are in the detail view, by name.
                self._pending.pop(game, None)
                self.tell(game, CONFLICT_TOLD, "error")
            case DownloadFailed(game=game, reason=reason):
                # The failure itself is in the game snapshot; only the click is answered.
                self._pending.pop(game, None)
                self.tell(game, _clip(f"Download failed: {reason}"), "error")
            case DownloadAllPeersGone(game=game, message=message):
                self.tell(game, f"Paused: {message or 'every source left'}", "warn")
            case InstallBegin(game=game):
                self._install[game] = InstallSample(0, 0)
            case InstallProgress(game=game, extracted_bytes=done, total_bytes=total):
                self._install[game] = InstallSample(done, total)
            case InstallFinished(game=game, kept=kept, renamed=renamed):
                self._errors.pop(game, None)
                self._notice(game, kept, tuple((r.path, r.kept_as) for r in renamed))
            case UninstallFinished(game=game, kept=kept):
                self._errors.pop(game, None)
                self._notice(game, kept, uninstalled=True)
            case RemoveFinished(game=game):
                self._errors.pop(game, None)
            case InstallFailed() | UninstallFailed() | RemoveFailed():
                prefix = _FAILURE_PREFIX[type(event)]
                self._errors[event.game] = _clip(f"{prefix}: {event.reason}")
                self._pending.pop(event.game, None)
            case GameStarted(game=game):
                self._played[game] = self._clock()  # the snapshot says it runs
                self._errors.pop(game, None)
            case GameExited(game=game, message=message) if message is not None:
                self._errors[game] = _clip(message)
            case GameExited():
                pass  # the snapshot says whether the game runs: only redraw
            case ChunkFinished() | SourceRejected() | ServiceRestarting():
                return False
            case _:
                pass
        return True
