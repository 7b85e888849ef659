"""Partial seeding at runtime: a downloader serves what it has verified, peers learn it.

Theory of operation
-------------------
One :class:`PartialSharing` per peer, owned by the network, holds both sides of
``core.partial``:

* **Sender.** A running download reports its journal: :meth:`begin` once the
  journal is created or loaded (the library summary of the game becomes
  ``PARTIAL`` with the committed bitfield), :meth:`durable` after each journal
  commit (the provider serves those chunks at once; the batcher sends them as
  have deltas, one per game every HAVE_INTERVAL, and refreshes the library summary now and
  then), :meth:`end` the moment the download stops for any reason (the provider
  answers ``None`` from then on; the caller rescans the game so the summary loses
  its partial). One loop timer, armed at the batcher's next deadline, sends.
* **Provider.** :meth:`verified` is the data server's view of those downloads
  (``ServeScope.partials``).
* **Receiver.** The network feeds handshakes, library deltas, have deltas and
  departures into the :class:`~lanspread.core.partial.AvailabilityBook`; every
  change calls the availability listeners with the game, which running downloads
  turn into ``SourceOffered`` events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from lanspread.core.bitfield import ChunkBitfield, PartialAvailability
from lanspread.core.engine import ChunkFault, ManifestUnavailable, SourceOffered
from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.library import GameSummary
from lanspread.core.manifest import GameManifest, manifest_digest
from lanspread.core.partial import (
    AvailabilityBook,
    ChunkLayout,
    HaveBatcher,
    HaveDelta,
    HaveRefusalReason,
    VerifiedChunks,
)
from lanspread.core.planning import ChunkKey, manifest_tasks
from lanspread.core.refusal import Refused
from lanspread.errors import LanspreadError
from lanspread.net.datawire import DataStatus

log = logging.getLogger(__name__)

# A peer that just finished its own download offers the game complete before it can
# describe it (its library still takes the copy in: "busy here; retry later"). At a
# swarm's end every other downloader finishes within a second or two and no change
# of availability follows, so a straggler asks again on its own: this often, this many
# times (ten seconds in all, far more than a loaded peer's rescan of a finished game).
JOIN_RETRY_SECONDS = 0.5
JOIN_ATTEMPTS = 20


class PartialSharing:
    """Both sides of partial seeding for this peer (see the module doc)."""

    def __init__(
        self,
        *,
        send_have: Callable[[HaveDelta], None],
        batcher: HaveBatcher | None = None,
    ) -> None:
        self._send_have = send_have
        self.announce: Callable[[str, str | None, PartialAvailability], None] = _nowhere
        """Puts a download's partial into the local library summary (set by the network)."""
        self.batcher = batcher if batcher is not None else HaveBatcher()
        self.book = AvailabilityBook()
        self._serving: dict[str, VerifiedChunks] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._timer: asyncio.TimerHandle | None = None

    # -- provider ------------------------------------------------------------------------

    def verified(self, game_id: str) -> VerifiedChunks | None:
        return self._serving.get(game_id)

    # -- sender --------------------------------------------------------------------------

    def begin(self, manifest: GameManifest, committed: bytes) -> None:
        """A download of ``manifest`` runs; ``committed``: the journal's committed bitmap."""
        layout = ChunkLayout(manifest)
        durable = ChunkBitfield.from_bytes(committed, layout.chunk_count)
        digest = manifest_digest(manifest)
        game_id = manifest.game_id
        self._serving[game_id] = VerifiedChunks(digest, manifest.version, layout, durable)
        partial = self.batcher.start(game_id, digest, durable, self._now())
        if partial is not None:
            self.announce(game_id, manifest.version, partial)
        self._arm()

    def durable(self, game_id: str, committed: bytes) -> None:
        """The journal of ``game_id``'s download committed ``committed`` (made durable)."""
        serving = self._serving.get(game_id)
        if serving is None:
            return
        durable = ChunkBitfield.from_bytes(committed, serving.layout.chunk_count)
        self._serving[game_id] = VerifiedChunks(
            serving.manifest_digest, serving.version, serving.layout, durable
        )
        self.batcher.add_bitfield(game_id, serving.manifest_digest, durable)
        self._arm()

    def end(self, game_id: str) -> None:
        """The download of ``game_id`` stops: serve and announce none of it from now."""
        self._serving.pop(game_id, None)
        self.batcher.stop(game_id)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.batcher.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._due)

    def _due(self) -> None:
        self._timer = None
        now = self._now()
        for delta in self.batcher.poll(now):
            self._send_have(delta)
        for game_id, partial in self.batcher.checkpoint(now).items():
            serving = self._serving.get(game_id)
            self.announce(game_id, serving.version if serving else None, partial)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- receiver ------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(game_id)`` whenever what peers hold of ``game_id`` may have changed."""
        self._listeners.append(listener)

    def peer_library(
        self, peer_id: str, games: Iterable[GameSummary], *, authoritative: bool
    ) -> None:
        """A handshake (``authoritative``) or an applied library delta of ``peer_id``."""
        summaries = tuple(games)
        before = self._games_of(peer_id)
        if not self.book.sync_peer(peer_id, summaries, authoritative=authoritative):
            log.info("not tracking the partial copies of %s: too many peers", peer_id)
        self._changed(before | self._games_of(peer_id) | {game.id for game in summaries})

    def peer_have(self, peer_id: str, delta: HaveDelta) -> Refused[HaveRefusalReason] | None:
        refusal = self.book.apply_have(peer_id, delta)
        if refusal is None:
            self._changed({delta.game_id})
        else:
            log.info("have delta refused: %s", refusal.detail)
        return refusal

    def peer_lost(self, peer_id: str) -> None:
        before = self._games_of(peer_id)
        self.book.forget_peer(peer_id)
        self._changed(before)

    def _games_of(self, peer_id: str) -> set[str]:
        return set(self.book.games_of(peer_id))

    def _changed(self, games: Iterable[str]) -> None:
        for game_id in sorted(set(games)):
            for listener in self._listeners:
                listener(game_id)


# What a partial source answers for a chunk it does not hold: the chunk is not verified
# there (yet), or its download stopped since the ticket. Not from it now, not a fault.
_NOT_HERE = (DataStatus.CHUNK_NOT_AVAILABLE, DataStatus.GAME_NOT_FOUND)


def _nowhere(game_id: str, version: str | None, partial: PartialAvailability) -> None:
    del game_id, version, partial  # no local library attached: nothing to announce


class SwarmView:
    """One running download's view of its sources beyond the agreed ones.

    Turns the availability book into ``SourceOffered`` events (only what changed),
    remembers which sources are partial (their tickets name the manifest digest) and
    which complete peers joined after the source check.
    """

    def __init__(self) -> None:
        self.digest = ""
        self._game_id = ""
        self._keys: tuple[ChunkKey, ...] = ()
        self._paths: frozenset[str] = frozenset()
        self._offered: dict[str, ChunkBitfield | None] = {}
        self._complete: set[str] = set()
        self._joining: set[str] = set()

    def start(self, manifest: GameManifest, agreed: Iterable[str]) -> None:
        """The download fetches ``manifest`` from the ``agreed`` complete sources."""
        self.digest = manifest_digest(manifest)
        self._game_id = manifest.game_id
        self._keys = tuple(task.key for task in manifest_tasks(manifest))
        self._paths = frozenset(f.path for f in manifest.files if f.path != VERSION_FILE)
        self._complete = set(agreed)

    def is_partial(self, source: str) -> bool:
        return source in self._offered and source not in self._complete

    def fault_for(self, source: str, status: DataStatus | None) -> ChunkFault | None:
        """A refusal that sends us elsewhere for the chunk, uncounted, or ``None``: a
        partial source that does not hold it (any more), or a complete source's seeder
        steering (other peers hold it; see ``core.steering``)."""
        partial = self.is_partial(source)
        if partial and status in _NOT_HERE:
            return ChunkFault.NOT_AVAILABLE
        if not partial and status is DataStatus.ELSEWHERE:
            return ChunkFault.STEERED
        return None

    def offers(self, book: AvailabilityBook) -> list[SourceOffered]:
        """The partial sources whose availability changed since the last call."""
        if not self._keys:
            return []
        holders = book.holders(self._game_id, self.digest, len(self._keys))
        out: list[SourceOffered] = []
        for peer, bits in holders.items():
            if peer in self._complete or self._offered.get(peer) == bits:
                continue
            self._offered[peer] = bits
            has = frozenset(self._keys[index] for index in bits.indexes())
            out.append(SourceOffered(peer, self._paths, has))
        for peer, held in list(self._offered.items()):
            if peer not in holders and peer not in self._complete and held is not None:
                self._offered[peer] = None  # its partial is gone: nothing from it now
                out.append(SourceOffered(peer, self._paths, frozenset()))
        return out

    def new_complete(self, offering: Iterable[str]) -> list[str]:
        """Peers offering the agreed version that are not complete sources yet."""
        fresh = [p for p in offering if p not in self._complete and p not in self._joining]
        self._joining.update(fresh)
        return fresh

    def complete_joined(
        self, peer: str, answer: GameManifest | ManifestUnavailable
    ) -> SourceOffered | None:
        """``peer``'s manifest came: a complete source of every file iff it is the agreed one."""
        if isinstance(answer, ManifestUnavailable):
            self._joining.discard(peer)  # asked again at the next change
            return None
        if manifest_digest(answer) != self.digest:
            return None  # another manifest: stays "joining", never asked again
        self._complete.add(peer)
        return SourceOffered(peer, self._paths)


async def join_complete(
    view: SwarmView,
    peer: str,
    describe: Callable[[str], Awaitable[GameManifest | ManifestUnavailable]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SourceOffered | None:
    """Ask ``peer``, newly offering the agreed version, for its manifest until it
    answers (at most :data:`JOIN_ATTEMPTS` times): a complete source iff it matches."""
    answer = await describe(peer)
    for _ in range(JOIN_ATTEMPTS - 1):
        if not isinstance(answer, ManifestUnavailable):
            break
        await sleep(JOIN_RETRY_SECONDS)
        answer = await describe(peer)
    return view.complete_joined(peer, answer)


class SeederSteering:
    """The data server's view for seeder steering (``seeding.dataserver.SteeringView``):
    this peer's servable manifests, and the availability book's holders of a chunk at
    the same manifest digest. One layout per served game, rebuilt when its manifest
    changes (the games are the catalog's: bounded)."""

    def __init__(
        self,
        manifests: Callable[[str], Awaitable[GameManifest | None]],
        book: AvailabilityBook,
    ) -> None:
        self._manifests = manifests
        self._book = book
        self._layouts: dict[str, tuple[GameManifest, str, ChunkLayout]] = {}

    async def locate(self, game_id: str, path: str, offset: int, length: int) -> int | None:
        try:
            manifest = await self._manifests(game_id)
        except LanspreadError as exc:
            log.debug("no steering for %s: %s", game_id, exc)
            manifest = None
        if manifest is None:
            self._layouts.pop(game_id, None)
            return None
        held = self._layouts.get(game_id)
        if held is None or held[0] is not manifest:
            held = (manifest, manifest_digest(manifest), ChunkLayout(manifest))
            self._layouts[game_id] = held
        layout = held[2]
        file = layout.file(path)
        index = layout.index_of(path, offset)
        if file is None or file.sentinel or index is None:
            return None
        return index if length == min(layout.chunk_size, file.size - offset) else None

    def holders(self, game_id: str, index: int) -> frozenset[str]:
        held = self._layouts.get(game_id)
        if held is None:
            return frozenset()
        _, digest, layout = held
        found = self._book.holders(game_id, digest, layout.chunk_count)
        return frozenset(peer for peer, chunks in found.items() if index in chunks)
