"""The peer database and the per-game view of what remote peers hold.

Theory of operation
-------------------
Peers are keyed by **peer id**, never by address. A peer enters the database
through a handshake (Hello/HelloAck), which carries its listener address and its
whole :class:`~lanspread.core.library.LibrarySnapshot`; later it sends
:class:`~lanspread.core.library.LibraryDelta` values, each applying to exactly one
revision. A delta that does not fit (another base revision, or a digest that does
not match after applying) leaves the record as it was and asks the caller to
resync with a fresh snapshot.

The address stored is always the peer's **listener** address, as announced by
mDNS or in Hello/HelloAck, never the ephemeral source port of an inbound
connection: that port cannot be dialled back. An address change keeps the peer's
identity and library.

A record keeps the library exactly as the peer announced it (its digest covers
every game, so deltas can only be checked against the whole), and exposes
:attr:`PeerRecord.games`: only the games of the local catalog. Games outside the
catalog are invisible to everything above this module.

Aggregation (:func:`aggregate`) turns the records into one
:class:`RemoteGameView` per catalog game. Only ``Ready`` peers are download
sources and count as peers; a ``LocalOnly`` peer (installed, not downloaded) is
listed as a holder and nothing more. The database reads no clock: every call that
concerns liveness takes ``now``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from lanspread.core.gameroot import version_sort_key
from lanspread.core.library import (
    Availability,
    DeltaMismatch,
    GameSummary,
    LibraryDelta,
    LibrarySnapshot,
    apply_delta,
    make_snapshot,
)
from lanspread.core.refusal import Refused

Address = tuple[str, int]
"""A peer's listener address: host and port."""


@dataclass(frozen=True, slots=True)
class PeerRecord:
    peer_id: str
    name: str
    """The peer's display name (its machine or player name)."""
    address: Address
    """The listener address from mDNS or Hello, never a connection's source port."""
    library: LibrarySnapshot
    """The library as the peer announced it, out-of-catalog games included."""
    games: Mapping[str, GameSummary]
    """The peer's games that are in the local catalog, by id: what everything reads."""
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class PeerChange:
    """What a handshake changed in the database."""

    record: PeerRecord
    new: bool
    """The peer was not known before."""
    address_changed: bool
    name_changed: bool
    library_changed: bool
    """The visible games differ from before (for a new peer: it has any)."""

    @property
    def changed(self) -> bool:
        return self.new or self.address_changed or self.name_changed or self.library_changed


@dataclass(frozen=True, slots=True)
class Applied:
    """A delta was applied."""

    record: PeerRecord
    library_changed: bool
    """The visible games differ from before the delta."""


class ResyncReason(enum.Enum):
    UNKNOWN_PEER = "unknown-peer"
    DELTA_MISMATCH = "delta-mismatch"


@dataclass(frozen=True, slots=True)
class ResyncNeeded(Refused[ResyncReason]):
    """The delta could not be applied; ask the peer for its whole library."""


class PeerDB:
    """Every known remote peer, keyed by peer id, filtered by the local catalog."""

    def __init__(self, catalog_ids: Iterable[str]) -> None:
        self._catalog_ids = frozenset(catalog_ids)
        self._peers: dict[str, PeerRecord] = {}

    @property
    def catalog_ids(self) -> frozenset[str]:
        return self._catalog_ids

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._peers

    def get(self, peer_id: str) -> PeerRecord | None:
        return self._peers.get(peer_id)

    def peers(self) -> list[PeerRecord]:
        """Every record, ordered by peer id."""
        return [self._peers[peer_id] for peer_id in sorted(self._peers)]

    def upsert_from_handshake(
        self, peer_id: str, name: str, address: Address, library: LibrarySnapshot, now: float
    ) -> PeerChange:
        """Record what a Hello or HelloAck says; the snapshot replaces any earlier library.

        The snapshot is taken as authoritative even at a lower revision: a peer that
        restarted counts its revisions from zero again.
        """
        library = make_snapshot(library.revision, library.by_id().values())
        games = self._visible(library)
        old = self._peers.get(peer_id)
        record = PeerRecord(
            peer_id=peer_id,
            name=name,
            address=address,
            library=library,
            games=games,
            first_seen=now if old is None else old.first_seen,
            last_seen=now if old is None else max(old.last_seen, now),
        )
        self._peers[peer_id] = record
        if old is None:
            return PeerChange(
                record,
                new=True,
                address_changed=False,
                name_changed=False,
                library_changed=bool(games),
            )
        return PeerChange(
            record,
            new=False,
            address_changed=old.address != address,
            name_changed=old.name != name,
            library_changed=old.games != games,
        )

    def apply_library_delta(
        self, peer_id: str, delta: LibraryDelta, now: float
    ) -> Applied | ResyncNeeded:
        """Apply one delta, or ask for a resync; either way the peer was heard from."""
        old = self._peers.get(peer_id)
        if old is None:
            return ResyncNeeded(ResyncReason.UNKNOWN_PEER, f"{peer_id} is not known")
        try:
            library = apply_delta(old.library, delta)
        except DeltaMismatch as exc:
            self._peers[peer_id] = dataclasses.replace(old, last_seen=max(old.last_seen, now))
            return ResyncNeeded(ResyncReason.DELTA_MISMATCH, str(exc))
        games = self._visible(library)
        record = dataclasses.replace(
            old, library=library, games=games, last_seen=max(old.last_seen, now)
        )
        self._peers[peer_id] = record
        return Applied(record, library_changed=old.games != games)

    def update_address(self, peer_id: str, address: Address) -> bool:
        """Record a new listener address (from mDNS); identity and library stay.

        Returns True when the stored address changed. An unknown peer is not
        created: a peer enters the database only through a handshake.
        """
        old = self._peers.get(peer_id)
        if old is None or old.address == address:
            return False
        self._peers[peer_id] = dataclasses.replace(old, address=address)
        return True

    def mark_seen(self, peer_id: str, now: float) -> bool:
        """Note that the peer answered; False when it is not known."""
        old = self._peers.get(peer_id)
        if old is None:
            return False
        self._peers[peer_id] = dataclasses.replace(old, last_seen=max(old.last_seen, now))
        return True

    def remove(self, peer_id: str) -> PeerRecord | None:
        """Forget a peer (Goodbye, expiry); returns its last record."""
        return self._peers.pop(peer_id, None)

    def expired(self, now: float, timeout: float) -> list[str]:
        """Peers not heard from for ``timeout`` seconds or more, ordered by id.

        At exactly ``timeout`` seconds of silence a peer counts as expired.
        """
        return sorted(
            peer_id for peer_id, record in self._peers.items() if now - record.last_seen >= timeout
        )

    def _visible(self, library: LibrarySnapshot) -> Mapping[str, GameSummary]:
        return MappingProxyType(
            {game.id: game for game in library.games if game.id in self._catalog_ids}
        )


@dataclass(frozen=True, slots=True)
class RemoteGameView:
    """What the remote peers hold of one catalog game."""

    game_id: str
    peers: Mapping[str, GameSummary]
    """Every peer that reports the game, whatever its availability, by peer id."""
    ready_peers: tuple[str, ...]
    """Peers that can serve it (``Ready``), ordered by peer id."""
    latest_version: str | None
    """The newest version among ready peers; ``None`` when none is ready or none knows."""
    sources_at_latest: tuple[str, ...]
    """Ready peers whose version is exactly ``latest_version``: the download sources."""

    @property
    def peer_count(self) -> int:
        """How many peers could serve the game; ``LocalOnly`` peers do not count."""
        return len(self.ready_peers)


def aggregate(db: PeerDB) -> Mapping[str, RemoteGameView]:
    """One view per catalog game, including games no peer holds."""
    holders: dict[str, dict[str, GameSummary]] = {game_id: {} for game_id in db.catalog_ids}
    for record in db.peers():
        for game_id, summary in record.games.items():
            holders[game_id][record.peer_id] = summary
    return MappingProxyType(
        {game_id: _view(game_id, holders[game_id]) for game_id in sorted(holders)}
    )


def _view(game_id: str, holders: Mapping[str, GameSummary]) -> RemoteGameView:
    ready = {
        peer_id: summary
        for peer_id, summary in sorted(holders.items())
        if summary.availability is Availability.READY
    }
    latest = _latest_version(summary.version for summary in ready.values())
    return RemoteGameView(
        game_id=game_id,
        peers=MappingProxyType(dict(sorted(holders.items()))),
        ready_peers=tuple(ready),
        latest_version=latest,
        sources_at_latest=tuple(
            peer_id for peer_id, summary in ready.items() if summary.version == latest
        ),
    )


def _latest_version(versions: Iterable[str | None]) -> str | None:
    # Ties in the natural order ("1.0A" and "1.0a") break on the text, so the choice
    # never depends on peer order; only peers with that exact text are sources.
    return max(
        versions, key=lambda version: (version_sort_key(version), version or ""), default=None
    )


def update_available(local: GameSummary | None, view: RemoteGameView) -> bool:
    """A ready peer has a newer version than the local one.

    A game that is not here at all has a download, not an update. A local game of
    unknown version (an install without its sentinel) is older than any known one.
    """
    if local is None or view.latest_version is None:
        return False
    return version_sort_key(view.latest_version) > version_sort_key(local.version)
