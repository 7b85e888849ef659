"""Partial sources: chunk layout, have deltas, the sender's batching and the receiver's book."""

from __future__ import annotations

import msgspec
import pytest
from tests.support.partials import DIGEST, OTHER_DIGEST, partial, partial_game

from lanspread.core.bitfield import ChunkBitfield
from lanspread.core.library import MAX_PARTIAL_GAMES, Availability, GameSummary
from lanspread.core.manifest import MIN_CHUNK_SIZE, ChunkDigest, FileManifest, GameManifest
from lanspread.core.partial import (
    HAVE_INTERVAL,
    LIBRARY_REFRESH_INTERVAL,
    MAX_HAVE_INDEXES,
    NO_PARTIALS,
    AvailabilityBook,
    ChunkLayout,
    HaveBatcher,
    HaveDelta,
    HaveRefusalReason,
    partial_summary,
)
from lanspread.core.refusal import Refused

CS = MIN_CHUNK_SIZE
PEER = "p" * 64
OTHER_PEER = "q" * 64


def file_of(path: str, size: int) -> FileManifest:
    chunks = tuple(
        ChunkDigest(offset, min(CS, size - offset), bytes(32)) for offset in range(0, size, CS)
    )
    return FileManifest(path, size, chunks)


def manifest_of(*files: FileManifest) -> GameManifest:
    return GameManifest("quake3", "2.0", CS, tuple(sorted(files, key=lambda f: f.path)))


LAYOUT_MANIFEST = manifest_of(
    file_of("a.eti", 2 * CS + 10), file_of("b/empty.eti", 0), file_of("version.ini", 3)
)


# --- layout ----------------------------------------------------------------------------------


def test_layout_numbers_chunks_in_manifest_order() -> None:
    """Files in path order, chunks in offset order: a.eti 0-2, the empty file none, sentinel 3."""
    layout = ChunkLayout(LAYOUT_MANIFEST)
    assert layout.chunk_count == 4 == LAYOUT_MANIFEST.chunk_count
    assert [layout.index_of("a.eti", offset) for offset in (0, CS, 2 * CS)] == [0, 1, 2]
    assert layout.index_of("version.ini", 0) == 3
    assert layout.sentinel_chunks() == range(3, 4)
    assert layout.index_of("a.eti", 3 * CS) is None
    assert layout.index_of("a.eti", 5) is None
    assert layout.index_of("b/empty.eti", 0) is None
    assert layout.index_of("nope", 0) is None


def test_a_range_touches_every_chunk_it_overlaps() -> None:
    """A range maps to the first and last chunk it overlaps; outside the file maps to nothing."""
    layout = ChunkLayout(LAYOUT_MANIFEST)
    assert layout.touched("a.eti", 0, CS) == (0, 0)
    assert layout.touched("a.eti", CS - 1, 2) == (0, 1)
    assert layout.touched("a.eti", 2 * CS, 10) == (2, 2)
    assert layout.touched("a.eti", 0, 2 * CS + 10) == (0, 2)
    assert layout.touched("a.eti", 2 * CS, 11) is None
    assert layout.touched("a.eti", 0, 0) is None
    assert layout.touched("a.eti", -1, 1) is None
    assert layout.touched("missing.eti", 0, 1) is None


def test_a_manifest_whose_chunks_do_not_tile_is_refused() -> None:
    """The layout trusts only validated manifests and says so otherwise."""
    broken = GameManifest("quake3", "2.0", CS, (FileManifest("a.eti", CS + 1, ()),))
    with pytest.raises(ValueError, match=r"^a\.eti: 0 chunks do not tile 1048577 bytes"):
        ChunkLayout(broken)


def test_no_partials_vouches_for_nothing() -> None:
    """The default provider serves no partial copy."""
    assert NO_PARTIALS.verified("quake3") is None


def test_partial_summary_keeps_the_install_facts() -> None:
    """A download's summary is Partial at its version, and keeps what local/ holds."""
    installed = GameSummary(
        id="quake3",
        availability=Availability.LOCAL_ONLY,
        version=None,
        installed=True,
        size_bytes=7,
        installed_version="1.0",
    )
    announced = partial_summary("quake3", installed, version="2.0", partial=partial(4, [1]))
    assert announced == GameSummary(
        id="quake3",
        availability=Availability.PARTIAL,
        version="2.0",
        installed=True,
        size_bytes=7,
        installed_version="1.0",
        partial=partial(4, [1]),
    )
    fresh = partial_summary("quake3", None, version="2.0", partial=partial(4))
    assert (fresh.installed, fresh.size_bytes, fresh.installed_version) == (False, 0, None)


# --- have deltas on the wire ---------------------------------------------------------------


def test_a_have_delta_round_trips() -> None:
    """Game id, manifest digest and indexes survive encoding."""
    delta = HaveDelta("quake3", DIGEST, (0, 7, 65_535))
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(delta), type=HaveDelta) == delta


@pytest.mark.parametrize("indexes", [[3, 1], [1, 1]], ids=["unsorted", "repeated"])
def test_unsorted_have_indexes_are_refused_at_decode(indexes: list[int]) -> None:
    """Indexes must be strictly ascending, so a delta never names a chunk twice."""
    raw = {"game_id": "quake3", "manifest_digest": DIGEST, "indexes": indexes}
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.msgpack.decode(msgspec.msgpack.encode(raw), type=HaveDelta)
    assert str(caught.value) == "have indexes must be strictly ascending"


@pytest.mark.parametrize(
    ("indexes", "where"),
    [
        ([], "$.indexes"),
        ([65_536], "$.indexes[0]"),
        ([-1], "$.indexes[0]"),
        (list(range(MAX_HAVE_INDEXES + 1)), "$.indexes"),
    ],
    ids=["empty", "past-the-bound", "negative", "too-many"],
)
def test_hostile_have_deltas_are_refused_at_decode(indexes: list[int], where: str) -> None:
    """Empty, out-of-bound or oversized index lists fail at decode, naming the field."""
    raw = {"game_id": "quake3", "manifest_digest": DIGEST, "indexes": indexes}
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.msgpack.decode(msgspec.msgpack.encode(raw), type=HaveDelta)
    assert str(caught.value).endswith(f" - at `{where}`")


# --- the sender --------------------------------------------------------------------------------


def test_the_first_chunks_go_at_once_then_one_delta_per_interval() -> None:
    """A delta goes out at the first poll after chunks land, then at most once per interval."""
    batcher = HaveBatcher()
    assert batcher.start("quake3", DIGEST, ChunkBitfield.from_indexes(10, [0]), 100.0) == partial(
        10, [0]
    )
    assert batcher.poll(100.0) == ()
    assert batcher.next_deadline() is None
    assert batcher.add("quake3", DIGEST, [2, 1])
    assert batcher.next_deadline() == 100.0
    assert batcher.poll(100.5) == (HaveDelta("quake3", DIGEST, (1, 2)),)
    batcher.add("quake3", DIGEST, [5])
    assert batcher.next_deadline() == 100.5 + HAVE_INTERVAL
    assert batcher.poll(100.5 + HAVE_INTERVAL - 0.1) == ()
    assert batcher.poll(100.5 + HAVE_INTERVAL) == (HaveDelta("quake3", DIGEST, (5,)),)
    assert batcher.poll(200.0) == ()


def test_a_delta_carries_at_most_max_indexes_and_the_rest_drains() -> None:
    """A backlog larger than one delta goes out over the next intervals, lowest indexes first."""
    batcher = HaveBatcher(max_indexes=2)
    batcher.start("quake3", DIGEST, ChunkBitfield.empty(10), 0.0)
    batcher.add("quake3", DIGEST, [4, 3, 2, 1, 0])
    assert [d.indexes for d in batcher.poll(0.0)] == [(0, 1)]
    assert [d.indexes for d in batcher.poll(1.0)] == [(2, 3)]
    assert [d.indexes for d in batcher.poll(2.0)] == [(4,)]
    assert batcher.poll(3.0) == ()


def test_each_game_has_its_own_interval() -> None:
    """Two games downloading at once each get one delta per interval."""
    batcher = HaveBatcher()
    batcher.start("a", DIGEST, ChunkBitfield.empty(4), 0.0)
    batcher.start("b", OTHER_DIGEST, ChunkBitfield.empty(4), 0.0)
    batcher.add("a", DIGEST, [0])
    batcher.add("b", OTHER_DIGEST, [3])
    assert batcher.poll(0.0) == (HaveDelta("a", DIGEST, (0,)), HaveDelta("b", OTHER_DIGEST, (3,)))
    assert batcher.announced() == {"a": DIGEST, "b": OTHER_DIGEST}


def test_a_whole_committed_bitmap_counts_only_its_new_chunks() -> None:
    """add_bitfield joins a committed journal bitmap; only chunks not yet told go out."""
    batcher = HaveBatcher()
    batcher.start("quake3", DIGEST, ChunkBitfield.from_indexes(8, [0]), 0.0)
    assert batcher.add_bitfield("quake3", DIGEST, ChunkBitfield.from_indexes(8, [0, 1, 6]))
    assert batcher.poll(0.0) == (HaveDelta("quake3", DIGEST, (1, 6)),)


def test_late_reports_for_a_stopped_or_restarted_game_are_ignored() -> None:
    """A commit that lands after a stop, or for the previous manifest, announces nothing."""
    batcher = HaveBatcher()
    assert not batcher.add("quake3", DIGEST, [0])
    batcher.start("quake3", DIGEST, ChunkBitfield.empty(8), 0.0)
    assert not batcher.add("quake3", OTHER_DIGEST, [0])
    assert not batcher.add_bitfield("quake3", OTHER_DIGEST, ChunkBitfield.empty(8))
    batcher.add("quake3", DIGEST, [1])
    batcher.stop("quake3")
    assert batcher.poll(10.0) == ()
    assert batcher.next_deadline() is None


def test_a_restart_at_another_manifest_replaces_the_game() -> None:
    """Starting a game again (a new version) forgets the old manifest's chunks."""
    batcher = HaveBatcher()
    batcher.start("quake3", DIGEST, ChunkBitfield.from_indexes(8, [0, 1]), 0.0)
    assert batcher.start("quake3", OTHER_DIGEST, ChunkBitfield.empty(3), 0.0) == partial(
        3, [], OTHER_DIGEST
    )
    batcher.add("quake3", OTHER_DIGEST, [2])
    assert batcher.poll(0.0) == (HaveDelta("quake3", OTHER_DIGEST, (2,)),)


def test_reporting_a_chunk_past_the_manifest_is_local_misuse() -> None:
    """An index outside the manifest is the caller's bug, said as a ValueError."""
    batcher = HaveBatcher()
    batcher.start("quake3", DIGEST, ChunkBitfield.empty(8), 0.0)
    with pytest.raises(
        ValueError, match=r"^quake3: chunk index 8 is outside a manifest of 8 chunks$"
    ):
        batcher.add("quake3", DIGEST, [8])
    with pytest.raises(ValueError, match=r"^quake3: cannot join bitfields over 8 and 9 chunks$"):
        batcher.add_bitfield("quake3", DIGEST, ChunkBitfield.empty(9))


def test_at_most_max_partial_games_are_announced() -> None:
    """A download beyond MAX_PARTIAL_GAMES is not announced; a running one can restart."""
    batcher = HaveBatcher()
    for index in range(MAX_PARTIAL_GAMES):
        assert batcher.start(f"g{index}", DIGEST, ChunkBitfield.empty(1), 0.0) is not None
    assert batcher.start("extra", DIGEST, ChunkBitfield.empty(1), 0.0) is None
    assert batcher.start("g0", OTHER_DIGEST, ChunkBitfield.empty(1), 0.0) is not None
    assert "extra" not in batcher.announced()


def test_the_library_is_refreshed_at_most_every_refresh_interval() -> None:
    """A checkpoint hands over the full bitfield once the library's is stale long enough."""
    batcher = HaveBatcher()
    batcher.start("quake3", DIGEST, ChunkBitfield.empty(8), 0.0)
    assert batcher.checkpoint(LIBRARY_REFRESH_INTERVAL) == {}
    batcher.add("quake3", DIGEST, [3])
    assert batcher.next_deadline() == 0.0  # started at 0.0: due at once
    batcher.poll(0.0)
    assert batcher.next_deadline() == LIBRARY_REFRESH_INTERVAL
    assert batcher.checkpoint(LIBRARY_REFRESH_INTERVAL - 0.1) == {}
    batcher.add("quake3", DIGEST, [4])
    assert batcher.checkpoint(LIBRARY_REFRESH_INTERVAL) == {"quake3": partial(8, [3, 4])}
    # What the library now carries needs no delta.
    assert batcher.poll(LIBRARY_REFRESH_INTERVAL) == ()
    assert batcher.next_deadline() is None


def test_publish_marks_the_current_bitfield_as_carried() -> None:
    """publish gives the full bitfield for a summary built now and clears the backlog."""
    batcher = HaveBatcher()
    batcher.start("quake3", DIGEST, ChunkBitfield.empty(8), 0.0)
    batcher.add("quake3", DIGEST, [0, 7])
    assert batcher.publish("quake3", 5.0) == partial(8, [0, 7])
    assert batcher.poll(5.0) == ()


@pytest.mark.parametrize(
    "kwargs",
    [{"interval": 0.0}, {"refresh_interval": -1.0}, {"max_indexes": MAX_HAVE_INDEXES + 1}],
)
def test_batcher_bounds_are_checked(kwargs: dict[str, float]) -> None:
    """Zero intervals or deltas larger than the wire allows are refused up front."""
    with pytest.raises(
        ValueError, match=r"^intervals must be positive and max_indexes within the wire bound$"
    ):
        HaveBatcher(**kwargs)  # type: ignore[arg-type]


# --- the receiver ------------------------------------------------------------------------------


def test_a_partial_peer_is_a_holder_of_its_manifest_only() -> None:
    """holders lists peers at that digest with that chunk count, and their chunks."""
    book = AvailabilityBook()
    assert book.sync_peer(PEER, [partial_game("quake3", 8, [1, 2])], authoritative=True)
    assert book.holders("quake3", DIGEST, 8) == {PEER: ChunkBitfield.from_indexes(8, [1, 2])}
    assert book.holders("quake3", OTHER_DIGEST, 8) == {}
    assert book.holders("quake3", DIGEST, 9) == {}
    assert book.holders("doom", DIGEST, 8) == {}


def test_have_deltas_add_chunks() -> None:
    """An accepted delta adds its indexes to the held bitfield."""
    book = AvailabilityBook()
    book.sync_peer(PEER, [partial_game("quake3", 8, [1])], authoritative=True)
    assert book.apply_have(PEER, HaveDelta("quake3", DIGEST, (0, 7))) is None
    held = book.partial_of(PEER, "quake3")
    assert held is not None
    assert list(held.chunks.indexes()) == [0, 1, 7]
    assert held.version == "2.0"


def test_have_deltas_that_do_not_fit_are_refused_and_change_nothing() -> None:
    """Unknown game, another manifest or an index past the count: refused, book unchanged."""
    book = AvailabilityBook()
    book.sync_peer(PEER, [partial_game("quake3", 8, [1])], authoritative=True)
    before = book.partial_of(PEER, "quake3")
    assert book.apply_have(OTHER_PEER, HaveDelta("quake3", DIGEST, (0,))) == Refused(
        HaveRefusalReason.UNKNOWN_GAME, f"peer {OTHER_PEER} announced no partial copy of quake3"
    )
    assert book.apply_have(PEER, HaveDelta("doom", DIGEST, (0,))) == Refused(
        HaveRefusalReason.UNKNOWN_GAME, f"peer {PEER} announced no partial copy of doom"
    )
    assert book.apply_have(PEER, HaveDelta("quake3", OTHER_DIGEST, (0,))) == Refused(
        HaveRefusalReason.WRONG_MANIFEST,
        f"peer {PEER} holds quake3 at manifest {DIGEST}, not {OTHER_DIGEST}",
    )
    assert book.apply_have(PEER, HaveDelta("quake3", DIGEST, (0, 8))) == Refused(
        HaveRefusalReason.OUT_OF_RANGE,
        f"peer {PEER}: chunk index 8 is outside a manifest of 8 chunks",
    )
    assert book.partial_of(PEER, "quake3") == before
    assert book.peer_count == 1


def test_a_stale_library_summary_keeps_what_deltas_added() -> None:
    """After a library delta, a summary at the same manifest joins what was held."""
    book = AvailabilityBook()
    book.sync_peer(PEER, [partial_game("quake3", 8, [1])], authoritative=True)
    book.apply_have(PEER, HaveDelta("quake3", DIGEST, (5,)))
    book.sync_peer(PEER, [partial_game("quake3", 8, [1, 2])], authoritative=False)
    assert book.holders("quake3", DIGEST, 8) == {PEER: ChunkBitfield.from_indexes(8, [1, 2, 5])}


def test_a_handshake_snapshot_replaces_what_was_held() -> None:
    """A full snapshot from a new handshake is authoritative for its bitfields."""
    book = AvailabilityBook()
    book.sync_peer(PEER, [partial_game("quake3", 8, [1, 2, 3])], authoritative=True)
    book.sync_peer(PEER, [partial_game("quake3", 8, [1])], authoritative=True)
    assert book.holders("quake3", DIGEST, 8) == {PEER: ChunkBitfield.from_indexes(8, [1])}


@pytest.mark.parametrize(
    "after",
    [
        [],
        [partial_game("doom", 8, [0])],
        [
            GameSummary(
                id="quake3",
                availability=Availability.READY,
                version="2.0",
                installed=False,
                size_bytes=1,
            )
        ],
    ],
    ids=["removed", "other-game-only", "complete"],
)
def test_a_summary_without_the_partial_forgets_it(after: list[GameSummary]) -> None:
    """Cancel, discard, failure or completion: the partial leaves the book."""
    book = AvailabilityBook()
    book.sync_peer(PEER, [partial_game("quake3", 8, [1])], authoritative=True)
    book.sync_peer(PEER, after, authoritative=False)
    assert book.partial_of(PEER, "quake3") is None
    assert book.apply_have(PEER, HaveDelta("quake3", DIGEST, (2,))) is not None


@pytest.mark.parametrize(
    "changed",
    [
        partial_game("quake3", 8, [4], digest=OTHER_DIGEST),
        partial_game("quake3", 8, [4], version="3.0"),
        partial_game("quake3", 9, [4]),
    ],
    ids=["manifest", "version", "chunk-count"],
)
def test_a_changed_manifest_or_version_starts_over(changed: GameSummary) -> None:
    """A partial at another digest, version or chunk count replaces, never joins, the old one."""
    book = AvailabilityBook()
    book.sync_peer(PEER, [partial_game("quake3", 8, [1, 2])], authoritative=True)
    book.sync_peer(PEER, [changed], authoritative=False)
    held = book.partial_of(PEER, "quake3")
    assert held is not None
    assert list(held.chunks.indexes()) == [4]


def test_a_lost_peer_is_forgotten() -> None:
    """forget_peer drops every partial of that peer."""
    book = AvailabilityBook()
    book.sync_peer(PEER, [partial_game("quake3", 8, [1])], authoritative=True)
    book.forget_peer(PEER)
    book.forget_peer(PEER)
    assert book.peer_count == 0
    assert book.holders("quake3", DIGEST, 8) == {}


def test_peers_tracked_are_bounded() -> None:
    """Beyond max_peers a new peer's partials are not tracked; tracked peers still update."""
    book = AvailabilityBook(max_peers=1)
    assert book.sync_peer(PEER, [partial_game("quake3", 8, [1])], authoritative=True)
    assert not book.sync_peer(OTHER_PEER, [partial_game("quake3", 8, [2])], authoritative=True)
    assert book.sync_peer(OTHER_PEER, [], authoritative=True)
    assert book.sync_peer(PEER, [partial_game("quake3", 8, [1, 3])], authoritative=False)
    assert book.peer_count == 1
    assert book.holders("quake3", DIGEST, 8) == {PEER: ChunkBitfield.from_indexes(8, [1, 3])}


def test_games_per_peer_are_bounded() -> None:
    """A peer's partials beyond max_games are not tracked."""
    book = AvailabilityBook(max_games=1)
    book.sync_peer(PEER, [partial_game("a", 8, [1]), partial_game("b", 8, [1])], authoritative=True)
    assert book.partial_of(PEER, "a") is not None
    assert book.partial_of(PEER, "b") is None
