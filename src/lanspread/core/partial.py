"""Partial sources: who holds which verified chunks of a game being downloaded.

Theory of operation
-------------------
A peer that downloads a game serves every chunk it has verified and made durable,
at that game's version and manifest only. Three pure pieces carry that knowledge:

* :class:`ChunkLayout` maps a manifest's chunks to indexes (manifest order, see
  ``core.bitfield``) and a requested byte range to the chunks it touches.
* **Sender:** :class:`HaveBatcher`. The runtime starts a game when its download
  starts (with the chunks the journal already holds), reports chunks once they
  are durable (after the journal commit, never before), and polls with ``now``.
  :meth:`HaveBatcher.poll` emits at most one :class:`HaveDelta` per game every
  :data:`HAVE_INTERVAL` seconds, each with at most :data:`MAX_HAVE_INDEXES`
  indexes (a larger backlog drains over the next intervals).
  :meth:`HaveBatcher.checkpoint` says when the library summary's bitfield should
  be refreshed (at most every :data:`LIBRARY_REFRESH_INTERVAL` seconds, and only
  when chunks were added): have deltas are hints, the library is the record.
* **Receiver:** :class:`AvailabilityBook`. Per peer and game it holds a bitfield at
  one manifest digest and version. :meth:`AvailabilityBook.sync_peer` follows the
  peer's library: a summary without a partial, or with another digest, version or
  chunk count, forgets what was held; a summary at the same digest adds its bits
  (union), unless it is *authoritative* (a handshake's full snapshot), which
  replaces them. :meth:`AvailabilityBook.apply_have` adds a delta's indexes when the
  book holds that game at that digest, and refuses a delta for an unknown game or
  digest or with an index past the chunk count, changing nothing.
  :meth:`AvailabilityBook.forget_peer` drops a lost peer.

Why a union is right
--------------------
At one manifest digest a peer's durable set only grows: a chunk is reported after
the journal made it durable, and a download that stops (cancel, discard, failure,
completion) leaves the library as a summary without that partial, which every
receiver applies before anything later. So every index a peer ever sent for a
digest is still held while its summary keeps that digest, and joining what came
from the library and from deltas, in whatever order they arrived, never claims a
chunk the peer lacks. A stale summary only lacks bits; the next checkpoint brings
them. A peer that must take chunks back publishes a summary without the partial
first (a library commit of its own).

What the runtime calls
----------------------
* Download starts or resumes: ``partial = batcher.start(game, digest, durable, now)``
  (``durable``: the journal's committed bitmap as a ``ChunkBitfield``) and, when
  not ``None``, commit ``partial_summary(game, scanned, version=..., partial=...)``
  to the local library (published as a library delta like any change).
* After each journal commit: ``batcher.add(game, digest, indexes)`` (or
  ``add_bitfield`` with the committed bitmap), then the one timer at
  ``batcher.next_deadline()`` runs ``poll(now)`` (send each ``PushHaveDelta`` to
  every peer, in order with library deltas) and ``checkpoint(now)`` (commit each
  returned partial into the game's summary).
* Download ends (cancel, discard, failure, completion): ``batcher.stop(game)``, the
  provider answers ``None`` at once, and the summary loses its partial.
* Receiving: ``book.sync_peer(peer, snapshot.games, authoritative=True)`` after a
  handshake, ``authoritative=False`` after an applied library delta;
  ``book.apply_have(peer, delta)`` for each ``PushHaveDelta`` (answer
  ``HaveDeltaAck(accepted=refusal is None)``); ``book.forget_peer(peer)`` when it
  is lost. The engine asks ``book.holders(game, digest, chunk_count)``.

Bounds
------
A library carries at most ``MAX_PARTIAL_GAMES`` partial games (checked by the
decoder) and the book tracks at most :data:`MAX_TRACKED_PEERS` peers, so a
stranger's lies cost at most ``MAX_TRACKED_PEERS x MAX_PARTIAL_GAMES`` bitfields of
at most ``MAX_BITFIELD_BYTES`` each (8 MiB). A delta's indexes are bounded by the
decoder (:data:`MAX_HAVE_INDEXES`, each below ``MAX_BITFIELD_CHUNKS``, strictly
ascending) and checked against the held chunk count; a bitfield whose chunk count
disagrees with the agreed manifest is left out by :meth:`AvailabilityBook.holders`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Final, Protocol

import msgspec

from lanspread.core.bitfield import (
    MAX_BITFIELD_CHUNKS,
    BitfieldError,
    ChunkBitfield,
    ManifestDigest,
    PartialAvailability,
)
from lanspread.core.library import MAX_PARTIAL_GAMES, Availability, GameId, GameSummary
from lanspread.core.manifest import GameManifest
from lanspread.core.refusal import Refused

# The journal makes chunks durable about once a second (download.journal's
# COMMIT_INTERVAL_SECONDS). A swarm passes a chunk on within a fraction of a second
# (2 MiB at 100 Mbit/s: 0.17 s), so a commit should be announced as soon as it
# lands, not up to a second later: a quarter second keeps that wait short while one
# peer sends at most four small deltas a second to each other peer.
HAVE_INTERVAL: Final = 0.25
# One second of the fastest LAN measured (about 1.9 GiB/s) at the smallest chunk
# size (1 MiB) completes under 2,000 chunks (a journal commit's worth); 2,048
# indexes encode to about 6 KiB.
# A larger backlog drains over the next intervals.
MAX_HAVE_INDEXES: Final = 2_048
# How stale the bitfield in the library may get while chunks arrive. A peer that
# connects learns the library's bitfield from the Hello, and one that missed a
# delta (a link that broke) learns the rest at the next refresh. A refresh costs
# one library delta of at most 8 KiB per game to each peer: every 30 s is noise.
LIBRARY_REFRESH_INTERVAL: Final = 30.0
# The control server's connection bound (net.peer_server.MAX_CONNECTIONS): no more
# peers than that can be connected, and so announce partial copies, at once.
MAX_TRACKED_PEERS: Final = 256

ChunkIndex = Annotated[int, msgspec.Meta(ge=0, lt=MAX_BITFIELD_CHUNKS)]


# --- the layout of a manifest's chunks -------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileChunks:
    """Where one manifest file's chunks sit in the game's chunk order."""

    first: int
    """Index of the file's first chunk (meaningless when it has none)."""
    count: int
    size: int
    sentinel: bool


class ChunkLayout:
    """Chunk indexes of a validated manifest, and the chunks a byte range touches.

    Built once per download (it walks every file); immutable afterwards.
    """

    __slots__ = ("_files", "chunk_count", "chunk_size")

    def __init__(self, manifest: GameManifest) -> None:
        self.chunk_size = manifest.chunk_size
        files: dict[str, FileChunks] = {}
        first = 0
        for file in manifest.files:
            expected = -(-file.size // manifest.chunk_size)
            if len(file.chunks) != expected:
                raise ValueError(
                    f"{file.path}: {len(file.chunks)} chunks do not tile {file.size} bytes "
                    "(validate the manifest first)"
                )
            files[file.path] = FileChunks(first, len(file.chunks), file.size, file.is_sentinel)
            first += len(file.chunks)
        self._files = files
        self.chunk_count = first

    def file(self, path: str) -> FileChunks | None:
        return self._files.get(path)

    def index_of(self, path: str, offset: int) -> int | None:
        """The index of the chunk of ``path`` starting at ``offset``; ``None`` when none does."""
        file = self._files.get(path)
        if file is None or offset < 0 or offset % self.chunk_size:
            return None
        position = offset // self.chunk_size
        return file.first + position if position < file.count else None

    def touched(self, path: str, offset: int, length: int) -> tuple[int, int] | None:
        """The first and last chunk index a range of ``path`` touches.

        ``None`` when ``path`` is not in the manifest or the range is empty or
        reaches outside the file.
        """
        file = self._files.get(path)
        if file is None or offset < 0 or length < 1 or offset + length > file.size:
            return None
        first = file.first + offset // self.chunk_size
        last = file.first + (offset + length - 1) // self.chunk_size
        return first, last

    def sentinel_chunks(self) -> range:
        """The indexes of the ``version.ini`` chunks: never durable before the end."""
        for file in self._files.values():
            if file.sentinel:
                return range(file.first, file.first + file.count)
        return range(0)


@dataclass(frozen=True, slots=True)
class VerifiedChunks:
    """What a downloading peer may serve of one game right now (the provider's answer)."""

    manifest_digest: str
    version: str | None
    layout: ChunkLayout
    durable: ChunkBitfield
    """Chunks verified against the manifest and made durable (journal committed)."""


class PartialProvider(Protocol):
    """What the runtime tells the serving side about the games it is downloading."""

    def verified(self, game_id: str) -> VerifiedChunks | None:
        """The verified, durable chunks of ``game_id``; ``None`` unless its download runs.

        Called on the event loop before each request is judged. Must return ``None``
        from the moment a cancel, discard or failure begins. A request judged just
        before may still be sent from its open file: its chunks were verified and
        nothing rewrites a durable chunk in place, and the requester verifies every
        chunk against the manifest anyway.
        """
        ...


class NoPartials:
    """A provider for a peer that serves no partial copies (tests, or seeding off)."""

    def verified(self, game_id: str) -> VerifiedChunks | None:
        del game_id
        return None


NO_PARTIALS: Final = NoPartials()


def partial_summary(
    game_id: str,
    scanned: GameSummary | None,
    *,
    version: str | None,
    partial: PartialAvailability,
) -> GameSummary:
    """The summary a peer announces for a game it is downloading.

    ``scanned`` is what the library scan says of the root (``None``, or ``LocalOnly``
    when an older version is installed); the download's facts replace its
    availability and version, and the install facts are kept.
    """
    return GameSummary(
        id=game_id,
        availability=Availability.PARTIAL,
        version=version,
        installed=scanned.installed if scanned is not None else False,
        size_bytes=scanned.size_bytes if scanned is not None else 0,
        installed_version=scanned.installed_version if scanned is not None else None,
        partial=partial,
    )


# --- have deltas -------------------------------------------------------------------------


class HaveDelta(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Chunks of a game that became verified and durable since the last delta."""

    game_id: GameId
    manifest_digest: ManifestDigest
    indexes: Annotated[
        tuple[ChunkIndex, ...], msgspec.Meta(min_length=1, max_length=MAX_HAVE_INDEXES)
    ]
    """Strictly ascending chunk indexes (manifest order)."""

    def __post_init__(self) -> None:
        # Raised while decoding, this becomes a validation error naming the field.
        if any(a >= b for a, b in zip(self.indexes, self.indexes[1:], strict=False)):
            raise ValueError("have indexes must be strictly ascending")


@dataclass(slots=True)
class _Sending:
    manifest_digest: str
    known: ChunkBitfield
    """Every chunk reported durable."""
    sent: ChunkBitfield
    """Chunks peers were told of, by the library or a delta."""
    published: ChunkBitfield
    """Chunks the library summary carries."""
    published_at: float
    sent_at: float | None = None


class HaveBatcher:
    """The sender's side: durable chunks in, rate-bounded have deltas out (``now`` passed in)."""

    def __init__(
        self,
        *,
        interval: float = HAVE_INTERVAL,
        max_indexes: int = MAX_HAVE_INDEXES,
        refresh_interval: float = LIBRARY_REFRESH_INTERVAL,
        max_games: int = MAX_PARTIAL_GAMES,
    ) -> None:
        if interval <= 0 or refresh_interval <= 0 or not 1 <= max_indexes <= MAX_HAVE_INDEXES:
            raise ValueError("intervals must be positive and max_indexes within the wire bound")
        self._interval = interval
        self._max_indexes = max_indexes
        self._refresh_interval = refresh_interval
        self._max_games = max_games
        self._games: dict[str, _Sending] = {}

    def start(
        self, game_id: str, manifest_digest: str, durable: ChunkBitfield, now: float
    ) -> PartialAvailability | None:
        """Begin announcing ``game_id``; the partial to put in its library summary.

        ``durable`` holds the chunks already durable (a resumed journal's). Starting
        a game again (another manifest) replaces it. ``None`` when
        ``MAX_PARTIAL_GAMES`` other games are announced: this one is not.
        """
        if game_id not in self._games and len(self._games) >= self._max_games:
            return None
        self._games[game_id] = _Sending(manifest_digest, durable, durable, durable, now)
        return PartialAvailability.of(manifest_digest, durable)

    def stop(self, game_id: str) -> None:
        """Stop announcing ``game_id`` (cancel, discard, failure or completion)."""
        self._games.pop(game_id, None)

    def add(self, game_id: str, manifest_digest: str, indexes: Iterable[int]) -> bool:
        """Report chunks made durable (after the journal commit); ``False`` if not announced.

        A report for a game that is not announced, or at another manifest (a late
        report after a stop or restart), is ignored.
        """
        return self._grow(game_id, manifest_digest, lambda known: known.with_indexes(indexes))

    def add_bitfield(self, game_id: str, manifest_digest: str, durable: ChunkBitfield) -> bool:
        """Like :meth:`add` with a whole durable set (a committed journal bitmap)."""
        return self._grow(game_id, manifest_digest, lambda known: known.union(durable))

    def _grow(
        self,
        game_id: str,
        manifest_digest: str,
        grow: Callable[[ChunkBitfield], ChunkBitfield],
    ) -> bool:
        """Replace what ``game_id`` holds durable by ``grow`` of it; ``False`` if not announced."""
        sending = self._sending(game_id, manifest_digest)
        if sending is None:
            return False
        try:
            sending.known = grow(sending.known)
        except BitfieldError as exc:
            raise ValueError(f"{game_id}: {exc}") from exc
        return True

    def poll(self, now: float) -> tuple[HaveDelta, ...]:
        """The deltas due now, at most one per game; send each to every peer."""
        deltas = []
        for game_id, sending in self._games.items():
            pending = sending.known.without(sending.sent)
            if not pending.bits or not self._may_send(sending, now):
                continue
            indexes = tuple(_first(pending, self._max_indexes))
            sending.sent = sending.sent.with_indexes(indexes)
            sending.sent_at = now
            deltas.append(HaveDelta(game_id, sending.manifest_digest, indexes))
        return tuple(deltas)

    def checkpoint(self, now: float) -> dict[str, PartialAvailability]:
        """Games whose library summary should carry a fresher bitfield now, with it.

        The caller puts each partial in the game's summary (``partial_summary``) and
        commits the library; what it carries needs no delta any more.
        """
        due = [
            game_id
            for game_id, sending in self._games.items()
            if sending.known != sending.published
            and now - sending.published_at >= self._refresh_interval
        ]
        return {game_id: self.publish(game_id, now) for game_id in due}

    def publish(self, game_id: str, now: float) -> PartialAvailability:
        """The current partial of ``game_id``, marked as carried by the library from now.

        For a caller that rebuilds the summary anyway (say, before a handshake).
        """
        sending = self._games[game_id]
        sending.published = sending.sent = sending.known
        sending.published_at = now
        return PartialAvailability.of(sending.manifest_digest, sending.known)

    def next_deadline(self) -> float | None:
        """When :meth:`poll` or :meth:`checkpoint` next has something; ``None`` when idle.

        A time already past means at once; the shell arms its one timer for this.
        """
        deadlines = []
        for sending in self._games.values():
            if sending.known.without(sending.sent).bits:
                after = sending.sent_at + self._interval if sending.sent_at is not None else None
                deadlines.append(sending.published_at if after is None else after)
            if sending.known != sending.published:
                deadlines.append(sending.published_at + self._refresh_interval)
        return min(deadlines, default=None)

    def announced(self) -> Mapping[str, str]:
        """The games announced, each with its manifest digest."""
        return {game_id: sending.manifest_digest for game_id, sending in self._games.items()}

    def _sending(self, game_id: str, manifest_digest: str) -> _Sending | None:
        sending = self._games.get(game_id)
        if sending is None or sending.manifest_digest != manifest_digest:
            return None
        return sending

    def _may_send(self, sending: _Sending, now: float) -> bool:
        return sending.sent_at is None or now - sending.sent_at >= self._interval


def _first(chunks: ChunkBitfield, count: int) -> list[int]:
    taken: list[int] = []
    for index in chunks.indexes():
        if len(taken) == count:
            break
        taken.append(index)
    return taken


# --- the receiver's book ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerPartial:
    """What one peer holds of one game it is downloading."""

    version: str | None
    manifest_digest: str
    chunks: ChunkBitfield


class HaveRefusalReason(enum.Enum):
    UNKNOWN_GAME = "unknown-game"
    """The peer announced no partial copy of that game (or is not tracked)."""
    WRONG_MANIFEST = "wrong-manifest"
    """The peer's partial copy is of another manifest."""
    OUT_OF_RANGE = "out-of-range"
    """An index is past the chunk count the peer announced."""


class AvailabilityBook:
    """The receiver's side: per peer and game, the chunks a partial source holds."""

    def __init__(
        self, *, max_peers: int = MAX_TRACKED_PEERS, max_games: int = MAX_PARTIAL_GAMES
    ) -> None:
        self._max_peers = max_peers
        self._max_games = max_games
        self._peers: dict[str, dict[str, PeerPartial]] = {}

    def sync_peer(self, peer_id: str, games: Iterable[GameSummary], *, authoritative: bool) -> bool:
        """Follow ``peer_id``'s whole library after a handshake or an applied delta.

        ``authoritative`` for a handshake's snapshot (its bitfields replace what was
        held), else joined with what was held at the same manifest. ``False`` when
        the peer has partial games but the book is full of other peers.
        """
        held = self._peers.get(peer_id, {})
        partials: dict[str, PeerPartial] = {}
        for summary in games:
            if summary.partial is not None and len(partials) < self._max_games:
                partials[summary.id] = _merge(
                    held.get(summary.id), summary, summary.partial, authoritative=authoritative
                )
        if not partials:
            self._peers.pop(peer_id, None)
            return True
        if peer_id not in self._peers and len(self._peers) >= self._max_peers:
            return False
        self._peers[peer_id] = partials
        return True

    def apply_have(self, peer_id: str, delta: HaveDelta) -> Refused[HaveRefusalReason] | None:
        """Add ``delta``'s chunks; a refusal (and no change) when they do not fit."""
        held = self._peers.get(peer_id, {}).get(delta.game_id)
        if held is None:
            return Refused(
                HaveRefusalReason.UNKNOWN_GAME,
                f"peer {peer_id} announced no partial copy of {delta.game_id}",
            )
        if held.manifest_digest != delta.manifest_digest:
            return Refused(
                HaveRefusalReason.WRONG_MANIFEST,
                f"peer {peer_id} holds {delta.game_id} at manifest {held.manifest_digest}, "
                f"not {delta.manifest_digest}",
            )
        try:
            chunks = held.chunks.with_indexes(delta.indexes)
        except BitfieldError as exc:
            return Refused(HaveRefusalReason.OUT_OF_RANGE, f"peer {peer_id}: {exc}")
        self._peers[peer_id][delta.game_id] = PeerPartial(
            held.version, held.manifest_digest, chunks
        )
        return None

    def forget_peer(self, peer_id: str) -> None:
        self._peers.pop(peer_id, None)

    def games_of(self, peer_id: str) -> frozenset[str]:
        """The games ``peer_id`` holds a partial copy of, as far as the book knows."""
        return frozenset(self._peers.get(peer_id, {}))

    def partial_of(self, peer_id: str, game_id: str) -> PeerPartial | None:
        return self._peers.get(peer_id, {}).get(game_id)

    def holders(
        self, game_id: str, manifest_digest: str, chunk_count: int
    ) -> dict[str, ChunkBitfield]:
        """Peers with a partial copy of exactly this manifest, and their chunks, by peer id.

        A peer whose bitfield covers another chunk count than the agreed manifest's
        is lying about the manifest and is left out.
        """
        found: dict[str, ChunkBitfield] = {}
        for peer_id in sorted(self._peers):
            held = self._peers[peer_id].get(game_id)
            if (
                held is not None
                and held.manifest_digest == manifest_digest
                and held.chunks.chunk_count == chunk_count
            ):
                found[peer_id] = held.chunks
        return found

    @property
    def peer_count(self) -> int:
        return len(self._peers)


def _merge(
    held: PeerPartial | None,
    summary: GameSummary,
    partial: PartialAvailability,
    *,
    authoritative: bool,
) -> PeerPartial:
    chunks = partial.chunks
    same = (
        held is not None
        and held.manifest_digest == partial.manifest_digest
        and held.version == summary.version
        and held.chunks.chunk_count == partial.chunk_count
    )
    if same and not authoritative:
        assert held is not None
        chunks = held.chunks.union(chunks)
    return PeerPartial(summary.version, partial.manifest_digest, chunks)
