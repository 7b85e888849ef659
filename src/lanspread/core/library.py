"""A peer's library: per-game summaries, revisions, digests, snapshots and deltas.

Theory of operation
-------------------
:class:`LocalLibrary` holds the current summary of every catalog game that has a
root in the game directory and is downloaded or installed. Each change bumps the
**revision** by one and produces a :class:`LibraryDelta` from the previous
revision; a peer that holds the snapshot at ``delta.base_revision`` applies the
delta and gets exactly the new snapshot, checked by the **digest**. The digest of
an empty library is computed like any other (it is not zero), so a scan that
finds nothing produces no delta.

The same :class:`GameSummary` and :class:`Availability` types are persisted in the
local index and carried on the wire.

Partial copies
--------------
A game this peer is downloading may be announced as :attr:`Availability.PARTIAL`
with a :class:`~lanspread.core.bitfield.PartialAvailability` (manifest digest and
bitfield of verified, durable chunks): the two always go together. The field is
omitted when absent, so a library without partial games encodes and digests
exactly as before it existed. Every check that asks for ``READY`` (download
sources, the peer count, the manifest hasher) leaves a partial copy out by
itself; ``core.partial`` is where partial sources are tracked. A snapshot or delta
carries at most :data:`MAX_PARTIAL_GAMES` partial games, which bounds what a
stranger's library makes us hold and keeps a Hello inside the handshake frame.
The bitfield in a summary is the one the peer last published in its library;
``core.partial`` explains how have deltas keep it current in between.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated

import blake3
import msgspec

from lanspread.core.bitfield import PartialAvailability
from lanspread.core.catalog import GAME_ID_PATTERN
from lanspread.core.gameroot import MAX_VERSION_LENGTH

GameId = Annotated[str, msgspec.Meta(pattern=GAME_ID_PATTERN)]
"""A catalog-shaped game id, validated wherever it is decoded."""

Version = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_VERSION_LENGTH)]

# Far above any real catalog; bounds what one snapshot or delta may carry.
MAX_LIBRARY_GAMES = 10_000
# Games one library may announce as partial copies at once. A player downloads one
# or two games at a time; four bounds a Hello's bitfields to 4 x 8 KiB and what a
# receiver tracks to MAX_TRACKED_PEERS x 4 bitfields (core.partial).
MAX_PARTIAL_GAMES = 4


class Availability(enum.Enum):
    """Whether a peer can serve a game it reports."""

    READY = "Ready"
    """Downloaded: the root ``version.ini`` sentinel exists; peers may fetch it."""
    LOCAL_ONLY = "LocalOnly"
    """Installed here but not downloaded; never a download source."""
    PARTIAL = "Partial"
    """Being downloaded: the chunks :attr:`GameSummary.partial` names are served, at
    that manifest only; never a source of the whole game."""


class GameSummary(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a peer says about one of its games.

    Defaults are omitted when encoded, so a game with no installed version encodes
    (and digests) exactly as before that field existed.
    """

    id: GameId
    availability: Availability
    version: Version | None
    """The version from the root ``version.ini``; ``None`` when unknown."""
    installed: bool
    size_bytes: Annotated[int, msgspec.Meta(ge=0)]
    """Bytes of payload (archives and sentinel) in the game root."""
    installed_version: Version | None = None
    """The version ``local/`` holds, as its install record names it; ``None`` when not
    installed or installed without a record. It differs from ``version`` when the
    archives of a newer version are downloaded but not yet installed."""
    partial: PartialAvailability | None = None
    """Set iff ``availability`` is ``PARTIAL``: the chunks of the manifest of
    ``version`` (the version being downloaded) that are verified and durable here."""

    def __post_init__(self) -> None:
        # Raised while decoding, this becomes a validation error naming the entry.
        if (self.availability is Availability.PARTIAL) != (self.partial is not None):
            raise ValueError(
                f"{self.id}: a partial availability goes with availability Partial only"
            )

    @property
    def downloaded(self) -> bool:
        return self.availability is Availability.READY


class LibrarySnapshot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    revision: Annotated[int, msgspec.Meta(ge=0)]
    digest: str
    games: Annotated[tuple[GameSummary, ...], msgspec.Meta(max_length=MAX_LIBRARY_GAMES)]
    """Sorted by id, one entry per id."""

    def __post_init__(self) -> None:
        _check_partial_count(self.games)

    def by_id(self) -> dict[str, GameSummary]:
        return {game.id: game for game in self.games}


class LibraryDelta(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    base_revision: Annotated[int, msgspec.Meta(ge=0)]
    revision: Annotated[int, msgspec.Meta(ge=0)]
    digest: str
    """Digest of the library after the delta is applied."""
    upserts: Annotated[tuple[GameSummary, ...], msgspec.Meta(max_length=MAX_LIBRARY_GAMES)]
    removals: Annotated[tuple[GameId, ...], msgspec.Meta(max_length=MAX_LIBRARY_GAMES)]

    def __post_init__(self) -> None:
        _check_partial_count(self.upserts)


def partial_count(games: Iterable[GameSummary]) -> int:
    """How many of ``games`` are partial copies."""
    return sum(game.partial is not None for game in games)


def _check_partial_count(games: Iterable[GameSummary]) -> None:
    count = partial_count(games)
    if count > MAX_PARTIAL_GAMES:
        raise ValueError(
            f"{count} partial games exceed the limit of {MAX_PARTIAL_GAMES} in one library"
        )


class DeltaMismatch(Exception):
    """A delta cannot be applied to this snapshot; the holder must resync."""


_ENCODER = msgspec.msgpack.Encoder()


def library_digest(games: Iterable[GameSummary]) -> str:
    ordered = sorted(games, key=lambda game: game.id)
    return blake3.blake3(_ENCODER.encode(ordered)).hexdigest()


EMPTY_DIGEST = library_digest(())


def make_snapshot(revision: int, games: Iterable[GameSummary]) -> LibrarySnapshot:
    ordered = tuple(sorted(games, key=lambda game: game.id))
    return LibrarySnapshot(revision=revision, digest=library_digest(ordered), games=ordered)


def diff_snapshots(old: LibrarySnapshot, new: LibrarySnapshot) -> LibraryDelta:
    old_games = old.by_id()
    new_games = new.by_id()
    upserts = tuple(game for game in new.games if old_games.get(game.id) != game)
    removals = tuple(sorted(set(old_games) - set(new_games)))
    return LibraryDelta(
        base_revision=old.revision,
        revision=new.revision,
        digest=new.digest,
        upserts=upserts,
        removals=removals,
    )


def apply_delta(snapshot: LibrarySnapshot, delta: LibraryDelta) -> LibrarySnapshot:
    """The snapshot after ``delta``; :class:`DeltaMismatch` when it does not fit."""
    if delta.base_revision != snapshot.revision:
        raise DeltaMismatch(
            f"delta from revision {delta.base_revision} does not apply to revision "
            f"{snapshot.revision}"
        )
    games = snapshot.by_id()
    for game_id in delta.removals:
        games.pop(game_id, None)
    for game in delta.upserts:
        games[game.id] = game
    if partial_count(games.values()) > MAX_PARTIAL_GAMES:
        raise DeltaMismatch(
            f"the delta leaves more than {MAX_PARTIAL_GAMES} partial games in the library"
        )
    result = make_snapshot(delta.revision, games.values())
    if result.digest != delta.digest:
        raise DeltaMismatch("library digest after applying the delta does not match")
    return result


def announced_games(
    games: Iterable[GameSummary], withheld: Container[str]
) -> tuple[GameSummary, ...]:
    """The summaries told to peers: every game but the ``withheld`` ones.

    Pure. A copy whose install found a damaged archive is refused by the serve gate;
    announcing it would only send peers to a source that turns them away, so it is
    left out of what peers hear while the local library keeps showing it.
    """
    return tuple(game for game in games if game.id not in withheld)


class LocalLibrary:
    """This peer's own library: the current summaries plus revision bookkeeping."""

    def __init__(self) -> None:
        self._snapshot = make_snapshot(0, ())

    @property
    def snapshot(self) -> LibrarySnapshot:
        return self._snapshot

    @property
    def games(self) -> Mapping[str, GameSummary]:
        return self._snapshot.by_id()

    def get(self, game_id: str) -> GameSummary | None:
        for game in self._snapshot.games:
            if game.id == game_id:
                return game
        return None

    def replace_all(self, games: Iterable[GameSummary]) -> LibraryDelta | None:
        """Set the whole library; a delta when anything changed, else ``None``."""
        return self._commit({game.id: game for game in games})

    def update(self, changes: Mapping[str, GameSummary | None]) -> LibraryDelta | None:
        """Set or remove (``None``) some games; a delta when anything changed."""
        games = self._snapshot.by_id()
        for game_id, summary in changes.items():
            if summary is None:
                games.pop(game_id, None)
            else:
                games[game_id] = summary
        return self._commit(games)

    def _commit(self, games: Mapping[str, GameSummary]) -> LibraryDelta | None:
        candidate = make_snapshot(self._snapshot.revision + 1, games.values())
        if candidate.digest == self._snapshot.digest:
            return None
        delta = diff_snapshots(self._snapshot, candidate)
        self._snapshot = candidate
        return delta


class LocalState(enum.Enum):
    """How this peer holds a catalog game folder that is not in its library."""

    FOUND = "Found"
    """A folder named like the game that lanspread has no proof of creating (the
    player's copy, a hand install, a partial USB copy): shown, never served, and
    never touched by any sweep."""


FOUND_LABEL = "Found, not from lanspread"


@dataclass(frozen=True, slots=True)
class FoundGame:
    """A catalog-named folder lanspread did not make: what the player sees and why."""

    id: str
    missing: tuple[str, ...]
    """What would make it lanspread's: e.g. ``version.ini``, the download record."""
    foreign_names: tuple[str, ...] = ()
    """Reserved names in the folder that lanspread did not write (left alone)."""
    state: LocalState = LocalState.FOUND

    @property
    def label(self) -> str:
        return FOUND_LABEL

    @property
    def reason(self) -> str:
        parts = [f"no {name}" for name in self.missing]
        text = ", ".join(parts) if parts else "lanspread did not create it"
        if self.foreign_names:
            text += "; not lanspread's: " + ", ".join(self.foreign_names)
        return text + "; left as it is"


def found_not_from_lanspread(
    game_id: str,
    *,
    has_sentinel: bool,
    installed: bool,
    has_record: bool,
    paused: bool,
    payload_names: Collection[str],
    foreign_names: Collection[str] = (),
    sentinel_name: str = "version.ini",
    record_name: str = "download record",
) -> FoundGame | None:
    """The found state of a game folder, or ``None`` when lanspread accounts for it.

    Pure. A folder is *found, not from lanspread* when it is neither downloaded
    (no root sentinel) nor installed nor a paused download, lanspread holds no
    record of creating anything in it, and it holds something: payload-named
    entries or reserved names lanspread did not write.
    """
    if has_sentinel or installed or paused or has_record:
        return None
    if not payload_names and not foreign_names:
        return None
    return FoundGame(
        id=game_id,
        missing=(sentinel_name, record_name),
        foreign_names=tuple(sorted(foreign_names)),
    )
