"""The peer database: identity, library sync, liveness and the per-game aggregation."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.partials import partial_game

from lanspread.core.gameroot import version_sort_key
from lanspread.core.library import (
    Availability,
    GameSummary,
    LibraryDelta,
    LibrarySnapshot,
    LocalLibrary,
    library_digest,
    make_snapshot,
)
from lanspread.core.peerdb import (
    Applied,
    PeerChange,
    PeerDB,
    RemoteGameView,
    ResyncNeeded,
    ResyncReason,
    aggregate,
    update_available,
)

CATALOG = ("quake3", "ut2004", "alienswarm")
READY = Availability.READY
LOCAL_ONLY = Availability.LOCAL_ONLY
ADDR = ("192.168.1.20", 40000)


def game(
    game_id: str,
    version: str | None = "1.0",
    availability: Availability = READY,
    *,
    installed: bool = False,
) -> GameSummary:
    return GameSummary(
        id=game_id, availability=availability, version=version, installed=installed, size_bytes=10
    )


def snapshot(*games: GameSummary, revision: int = 1) -> LibrarySnapshot:
    return make_snapshot(revision, games)


def db_with(peer_id: str = "peer-a", *games: GameSummary, now: float = 100.0) -> PeerDB:
    db = PeerDB(CATALOG)
    db.upsert_from_handshake(peer_id, "Alice", ADDR, snapshot(*games), now)
    return db


# --- handshakes -------------------------------------------------------------------


def test_a_first_handshake_creates_the_peer() -> None:
    """A new peer is recorded with its listener address, library and times."""
    db = PeerDB(CATALOG)
    change = db.upsert_from_handshake("peer-a", "Alice", ADDR, snapshot(game("quake3")), 5.0)
    assert (change.new, change.address_changed, change.name_changed, change.library_changed) == (
        True,
        False,
        False,
        True,
    )
    assert change.changed
    record = db.get("peer-a")
    assert record == change.record
    assert record is not None
    assert (record.name, record.address, record.first_seen, record.last_seen) == (
        "Alice",
        ADDR,
        5.0,
        5.0,
    )
    assert dict(record.games) == {"quake3": game("quake3")}
    assert "peer-a" in db
    assert len(db) == 1


def test_a_new_peer_with_no_visible_games_has_no_library_change() -> None:
    """A peer whose games are all outside the catalog is new but shows no games."""
    db = PeerDB(CATALOG)
    change = db.upsert_from_handshake("peer-a", "Alice", ADDR, snapshot(game("doom")), 1.0)
    assert change.new
    assert not change.library_changed
    assert dict(change.record.games) == {}
    assert change.record.library.by_id() == {"doom": game("doom")}


def test_a_repeated_handshake_changes_nothing_but_liveness() -> None:
    """The same Hello again reports no change, keeps first_seen and refreshes last_seen."""
    db = db_with("peer-a", game("quake3"), now=1.0)
    change = db.upsert_from_handshake("peer-a", "Alice", ADDR, snapshot(game("quake3")), 9.0)
    assert change == PeerChange(
        change.record, new=False, address_changed=False, name_changed=False, library_changed=False
    )
    assert not change.changed
    assert (change.record.first_seen, change.record.last_seen) == (1.0, 9.0)


def test_a_handshake_from_a_new_address_keeps_identity_and_library() -> None:
    """Same peer id, new listener address: the record moves, nothing else changes."""
    db = db_with("peer-a", game("quake3"))
    before = db.get("peer-a")
    change = db.upsert_from_handshake(
        "peer-a", "Alice", ("192.168.1.21", 40001), snapshot(game("quake3")), 100.0
    )
    assert (change.new, change.address_changed, change.library_changed) == (False, True, False)
    assert before is not None
    assert change.record.library == before.library
    assert change.record.address == ("192.168.1.21", 40001)
    assert len(db) == 1


def test_a_handshake_with_a_new_name_reports_it() -> None:
    """A renamed peer is the same peer with a name change."""
    db = db_with("peer-a", game("quake3"))
    change = db.upsert_from_handshake("peer-a", "Alicia", ADDR, snapshot(game("quake3")), 100.0)
    assert (change.new, change.name_changed, change.address_changed) == (False, True, False)
    assert change.record.name == "Alicia"


def test_a_handshake_snapshot_replaces_the_library_even_at_a_lower_revision() -> None:
    """A restarted peer counts revisions from zero again; its snapshot is authoritative."""
    db = PeerDB(CATALOG)
    db.upsert_from_handshake("peer-a", "Alice", ADDR, snapshot(game("quake3"), revision=7), 1.0)
    change = db.upsert_from_handshake(
        "peer-a", "Alice", ADDR, snapshot(game("ut2004"), revision=0), 2.0
    )
    assert change.library_changed
    assert change.record.library.revision == 0
    assert dict(change.record.games) == {"ut2004": game("ut2004")}


def test_a_handshake_change_outside_the_catalog_is_not_a_library_change() -> None:
    """Only visible games decide whether the library changed."""
    db = db_with("peer-a", game("quake3"))
    change = db.upsert_from_handshake(
        "peer-a", "Alice", ADDR, snapshot(game("quake3"), game("doom")), 100.0
    )
    assert not change.library_changed
    assert "doom" in change.record.library.by_id()


def test_a_handshake_snapshot_is_normalised() -> None:
    """The stored snapshot is sorted, one entry per id, with its digest recomputed."""
    messy = LibrarySnapshot(
        revision=3, digest="bogus", games=(game("ut2004"), game("quake3"), game("quake3", "2"))
    )
    db = PeerDB(CATALOG)
    record = db.upsert_from_handshake("peer-a", "Alice", ADDR, messy, 1.0).record
    assert [summary.id for summary in record.library.games] == ["quake3", "ut2004"]
    assert record.library.by_id()["quake3"].version == "2"
    assert record.library.digest == library_digest(record.library.games)


def test_the_listener_address_is_the_one_recorded() -> None:
    """update_address replaces the address and keeps identity and library."""
    db = db_with("peer-a", game("quake3"))
    before = db.get("peer-a")
    assert before is not None
    assert db.update_address("peer-a", ("10.0.0.5", 40000))
    assert db.get("peer-a") == dataclasses.replace(before, address=("10.0.0.5", 40000))
    assert not db.update_address("peer-a", ("10.0.0.5", 40000))


def test_update_address_never_creates_a_peer() -> None:
    """An address for an unknown id is ignored: peers enter only through a handshake."""
    db = PeerDB(CATALOG)
    assert not db.update_address("ghost", ADDR)
    assert db.get("ghost") is None


# --- deltas -------------------------------------------------------------------------


def _remote_history() -> tuple[LibrarySnapshot, list[LibraryDelta], LocalLibrary]:
    """A remote library at revision 0 and the deltas of three later changes."""
    remote = LocalLibrary()
    start = remote.snapshot
    deltas = []
    for changes in (
        {"quake3": game("quake3", "1.0")},
        {"ut2004": game("ut2004", "3369", LOCAL_ONLY, installed=True)},
        {"quake3": game("quake3", "1.32"), "doom": game("doom")},
    ):
        delta = remote.update(changes)
        assert delta is not None
        deltas.append(delta)
    return start, deltas, remote


def test_deltas_applied_in_order_reproduce_the_remote_library() -> None:
    """Each delta applies on the previous revision; the end state is the remote's own."""
    start, deltas, remote = _remote_history()
    db = PeerDB(CATALOG)
    db.upsert_from_handshake("peer-a", "Alice", ADDR, start, 1.0)
    outcomes = [db.apply_library_delta("peer-a", delta, 2.0 + i) for i, delta in enumerate(deltas)]
    assert all(isinstance(outcome, Applied) for outcome in outcomes)
    assert [outcome.library_changed for outcome in outcomes if isinstance(outcome, Applied)] == [
        True,
        True,
        True,
    ]
    record = db.get("peer-a")
    assert record is not None
    assert record.library == remote.snapshot
    assert set(record.games) == {"quake3", "ut2004"}
    assert record.last_seen == 4.0


def test_a_delta_from_the_wrong_base_asks_for_a_resync() -> None:
    """Skipping a delta makes the next one not fit: ResyncNeeded, library untouched."""
    start, deltas, _ = _remote_history()
    db = PeerDB(CATALOG)
    db.upsert_from_handshake("peer-a", "Alice", ADDR, start, 1.0)
    outcome = db.apply_library_delta("peer-a", deltas[1], 7.0)
    assert outcome == ResyncNeeded(
        ResyncReason.DELTA_MISMATCH,
        "delta from revision 1 does not apply to revision 0",
    )
    record = db.get("peer-a")
    assert record is not None
    assert record.library == start
    assert record.last_seen == 7.0


def test_a_delta_applied_twice_asks_for_a_resync() -> None:
    """A replayed delta no longer fits the revision it moved the record to."""
    start, deltas, _ = _remote_history()
    db = PeerDB(CATALOG)
    db.upsert_from_handshake("peer-a", "Alice", ADDR, start, 1.0)
    assert isinstance(db.apply_library_delta("peer-a", deltas[0], 2.0), Applied)
    outcome = db.apply_library_delta("peer-a", deltas[0], 3.0)
    assert isinstance(outcome, ResyncNeeded)
    assert outcome.detail == "delta from revision 0 does not apply to revision 1"


def test_a_delta_whose_digest_does_not_match_asks_for_a_resync() -> None:
    """A delta that fits the revision but yields another digest is refused."""
    start, deltas, _ = _remote_history()
    db = PeerDB(CATALOG)
    db.upsert_from_handshake("peer-a", "Alice", ADDR, start, 1.0)
    tampered = msgspec.structs.replace(deltas[0], digest="0" * 64)
    outcome = db.apply_library_delta("peer-a", tampered, 2.0)
    assert outcome == ResyncNeeded(
        ResyncReason.DELTA_MISMATCH,
        "library digest after applying the delta does not match",
    )


def test_a_delta_for_an_unknown_peer_asks_for_a_resync() -> None:
    """A delta from a peer without a handshake cannot be applied to anything."""
    _, deltas, _ = _remote_history()
    db = PeerDB(CATALOG)
    outcome = db.apply_library_delta("ghost", deltas[0], 1.0)
    assert outcome == ResyncNeeded(ResyncReason.UNKNOWN_PEER, "ghost is not known")
    assert db.get("ghost") is None


def test_a_delta_outside_the_catalog_applies_but_changes_nothing_visible() -> None:
    """Invisible games still count for the digest, so later deltas keep applying."""
    remote = LocalLibrary()
    db = PeerDB(CATALOG)
    db.upsert_from_handshake("peer-a", "Alice", ADDR, remote.snapshot, 1.0)
    hidden = remote.update({"doom": game("doom")})
    visible = remote.update({"quake3": game("quake3")})
    assert hidden is not None
    assert visible is not None
    first = db.apply_library_delta("peer-a", hidden, 2.0)
    second = db.apply_library_delta("peer-a", visible, 3.0)
    assert isinstance(first, Applied)
    assert isinstance(second, Applied)
    assert (first.library_changed, second.library_changed) == (False, True)
    assert set(second.record.games) == {"quake3"}


# --- liveness -------------------------------------------------------------------------


def test_mark_seen_refreshes_known_peers_only() -> None:
    """mark_seen moves last_seen forward and reports unknown peers as unknown."""
    db = db_with("peer-a", now=1.0)
    assert db.mark_seen("peer-a", 5.0)
    assert not db.mark_seen("ghost", 5.0)
    assert db.mark_seen("peer-a", 3.0)
    record = db.get("peer-a")
    assert record is not None
    assert record.last_seen == 5.0


@pytest.mark.parametrize(
    ("now", "expired"),
    [(129.999, []), (130.0, ["peer-a"]), (131.0, ["peer-a"])],
)
def test_expiry_boundary_is_exactly_the_timeout(now: float, expired: list[str]) -> None:
    """A peer silent for exactly the timeout is expired; a moment less is not."""
    db = db_with("peer-a", now=100.0)
    assert db.expired(now, timeout=30.0) == expired


def test_expired_lists_only_silent_peers_in_id_order() -> None:
    """Peers heard from recently are kept; the silent ones come back sorted."""
    db = PeerDB(CATALOG)
    for peer_id, seen in (("c", 0.0), ("a", 0.0), ("b", 50.0)):
        db.upsert_from_handshake(peer_id, peer_id, ADDR, snapshot(), seen)
    assert db.expired(60.0, timeout=30.0) == ["a", "c"]
    db.mark_seen("a", 59.0)
    assert db.expired(60.0, timeout=30.0) == ["c"]


def test_remove_forgets_the_peer() -> None:
    """remove returns the last record once; the peer is gone afterwards."""
    db = db_with("peer-a", game("quake3"))
    record = db.get("peer-a")
    assert db.remove("peer-a") == record
    assert db.remove("peer-a") is None
    assert db.get("peer-a") is None
    assert db.peers() == []


def test_peers_are_listed_in_id_order() -> None:
    """peers() is deterministic whatever the insertion order."""
    db = PeerDB(CATALOG)
    for peer_id in ("m", "c", "x"):
        db.upsert_from_handshake(peer_id, peer_id, ADDR, snapshot(), 1.0)
    assert [record.peer_id for record in db.peers()] == ["c", "m", "x"]


# --- aggregation ------------------------------------------------------------------------


def _mesh() -> PeerDB:
    db = PeerDB(CATALOG)
    libraries = {
        "p1": (game("quake3", "1.9"), game("doom", "99")),
        "p2": (game("quake3", "1.10"),),
        "p3": (game("quake3", "9.0", LOCAL_ONLY, installed=True), game("ut2004", "5", LOCAL_ONLY)),
        "p4": (game("quake3", "1.10"),),
    }
    for peer_id, games in libraries.items():
        db.upsert_from_handshake(peer_id, peer_id, ADDR, snapshot(*games), 1.0)
    return db


def test_aggregate_counts_only_ready_peers_and_picks_the_latest() -> None:
    """Holders include LocalOnly peers; sources, count and latest come from Ready peers only."""
    view = aggregate(_mesh())["quake3"]
    assert list(view.peers) == ["p1", "p2", "p3", "p4"]
    assert view.ready_peers == ("p1", "p2", "p4")
    assert view.latest_version == "1.10"
    assert view.sources_at_latest == ("p2", "p4")
    assert view.peer_count == 3


def test_a_game_held_only_local_only_has_no_source_and_no_count() -> None:
    """LocalOnly peers are never sources and never counted."""
    view = aggregate(_mesh())["ut2004"]
    assert view == RemoteGameView(
        game_id="ut2004",
        peers={"p3": game("ut2004", "5", LOCAL_ONLY)},
        ready_peers=(),
        latest_version=None,
        sources_at_latest=(),
    )
    assert view.peer_count == 0


def test_a_partial_copy_is_no_whole_game_source() -> None:
    """A peer downloading a newer version is a holder, never a source of the whole game."""
    db = db_with("p1", game("quake3", "1.0"))
    db.upsert_from_handshake(
        "p2", "Bob", ("192.168.1.21", 40000), snapshot(partial_game("quake3", 8, [0])), 100.0
    )
    view = aggregate(db)["quake3"]
    assert list(view.peers) == ["p1", "p2"]
    assert view.ready_peers == ("p1",)
    assert (view.latest_version, view.sources_at_latest, view.peer_count) == ("1.0", ("p1",), 1)


def test_aggregate_has_every_catalog_game_and_nothing_else() -> None:
    """Games nobody holds get an empty view; games outside the catalog are invisible."""
    views = aggregate(_mesh())
    assert list(views) == sorted(CATALOG)
    assert views["alienswarm"].peer_count == 0
    assert dict(views["alienswarm"].peers) == {}
    assert "doom" not in views


@pytest.mark.parametrize(
    ("versions", "latest", "sources"),
    [
        (["1.9", "1.10"], "1.10", ["p1"]),
        (["20231231", "20240102"], "20240102", ["p1"]),
        (["2", "10"], "10", ["p1"]),
        (["1.2.3", "1.2"], "1.2.3", ["p0"]),
        (["beta", "1"], "1", ["p1"]),
        ([None, "1"], "1", ["p1"]),
        ([None, None], None, ["p0", "p1"]),
        (["1.0A", "1.0a"], "1.0a", ["p1"]),
        (["1.10", "1.010"], "1.10", ["p0"]),
        (["3", "3"], "3", ["p0", "p1"]),
    ],
)
def test_version_ordering_picks_latest_and_its_exact_sources(
    versions: list[str | None], latest: str | None, sources: list[str]
) -> None:
    """Natural version order picks the latest; unknown is lowest; sources match it exactly."""
    db = PeerDB(CATALOG)
    for index, version in enumerate(versions):
        db.upsert_from_handshake(f"p{index}", "x", ADDR, snapshot(game("quake3", version)), 1.0)
    view = aggregate(db)["quake3"]
    assert view.latest_version == latest
    assert list(view.sources_at_latest) == sources


def _view_with_latest(version: str | None) -> RemoteGameView:
    db = PeerDB(CATALOG)
    db.upsert_from_handshake("p", "x", ADDR, snapshot(game("quake3", version)), 1.0)
    return aggregate(db)["quake3"]


@pytest.mark.parametrize(
    ("local", "remote", "expected"),
    [
        (game("quake3", "1.9"), "1.10", True),
        (game("quake3", "1.10"), "1.10", False),
        (game("quake3", "2.0"), "1.10", False),
        (game("quake3", None, LOCAL_ONLY, installed=True), "1.0", True),
        (game("quake3", "1.0"), None, False),
        (None, "1.0", False),
    ],
)
def test_update_available_when_a_ready_peer_is_newer(
    local: GameSummary | None, remote: str | None, expected: bool
) -> None:
    """Only a strictly newer version on a ready peer is an update; nothing local is a download."""
    assert update_available(local, _view_with_latest(remote)) is expected


def test_a_newer_local_only_peer_offers_no_update() -> None:
    """A LocalOnly peer at a higher version cannot serve it, so it is not an update."""
    view = aggregate(_mesh())["quake3"]
    assert not update_available(game("quake3", "1.10"), view)


_VERSIONS = st.one_of(st.none(), st.sampled_from(["1", "1.9", "1.10", "2", "2.0a", "10"]))
_SUMMARIES = st.builds(
    game,
    st.sampled_from([*CATALOG, "doom"]),
    _VERSIONS,
    st.sampled_from([READY, LOCAL_ONLY]),
)


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.lists(_SUMMARIES, max_size=4)))
def test_aggregate_invariants(libraries: dict[str, list[GameSummary]]) -> None:
    """For any peers: sources within ready within holders, counts match, latest is the max."""
    db = PeerDB(CATALOG)
    for peer_id, games in libraries.items():
        db.upsert_from_handshake(peer_id, peer_id, ADDR, snapshot(*games), 1.0)
    views = aggregate(db)
    assert set(views) == set(CATALOG)
    for game_id, view in views.items():
        assert set(view.sources_at_latest) <= set(view.ready_peers) <= set(view.peers)
        assert view.peer_count == len(view.ready_peers)
        for peer_id in view.ready_peers:
            assert view.peers[peer_id].availability is READY
            key = version_sort_key(view.peers[peer_id].version)
            assert key <= version_sort_key(view.latest_version)
        for peer_id in view.sources_at_latest:
            assert view.peers[peer_id].version == view.latest_version
        if view.ready_peers:
            assert view.sources_at_latest
        holders = {p for p, games in libraries.items() if any(g.id == game_id for g in games)}
        assert set(view.peers) == holders
