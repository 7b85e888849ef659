"""The local library: snapshots, digests, deltas and revision bookkeeping."""

from __future__ import annotations

import blake3
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.partials import DIGEST, complete_availabilities, partial, partial_game, partials

from lanspread.core.library import (
    EMPTY_DIGEST,
    MAX_PARTIAL_GAMES,
    Availability,
    DeltaMismatch,
    GameSummary,
    LibraryDelta,
    LibrarySnapshot,
    LocalLibrary,
    announced_games,
    apply_delta,
    diff_snapshots,
    library_digest,
    make_snapshot,
    partial_count,
)

# A small id alphabet so that two generated libraries share ids often.
game_ids = st.sampled_from(["a", "b", "c", "d", "e", "quake3", "x.y-z_1"])
_versions = st.one_of(st.none(), st.sampled_from(["1", "1.1", "2.0"]))
summaries = st.one_of(
    st.builds(
        GameSummary,
        id=game_ids,
        availability=complete_availabilities,
        version=_versions,
        installed=st.booleans(),
        size_bytes=st.integers(min_value=0, max_value=10**12),
    ),
    st.builds(
        GameSummary,
        id=game_ids,
        availability=st.just(Availability.PARTIAL),
        version=_versions,
        installed=st.booleans(),
        size_bytes=st.integers(min_value=0, max_value=10**12),
        partial=partials(max_chunks=12),
    ),
)
libraries = st.lists(summaries, max_size=7, unique_by=lambda game: game.id).filter(
    lambda games: partial_count(games) <= MAX_PARTIAL_GAMES
)


def summary(game_id: str, version: str | None = "1", size: int = 10) -> GameSummary:
    return GameSummary(
        id=game_id,
        availability=Availability.READY,
        version=version,
        installed=False,
        size_bytes=size,
    )


@given(libraries, libraries, st.integers(min_value=0, max_value=1000))
def test_delta_reproduces_the_new_snapshot(
    old_games: list[GameSummary], new_games: list[GameSummary], revision: int
) -> None:
    """apply_delta(old, diff_snapshots(old, new)) == new for arbitrary libraries."""
    old = make_snapshot(revision, old_games)
    new = make_snapshot(revision + 1, new_games)

    assert apply_delta(old, diff_snapshots(old, new)) == new


@given(st.lists(libraries, min_size=1, max_size=6))
def test_follower_applying_every_delta_tracks_the_library(history: list[list[GameSummary]]) -> None:
    """A peer applying each delta in turn always holds the owner's snapshot."""
    owner = LocalLibrary()
    follower = owner.snapshot
    for games in history:
        revision_before = owner.snapshot.revision
        delta = owner.replace_all(games)
        if delta is None:
            assert owner.snapshot.revision == revision_before
            continue
        assert (delta.base_revision, delta.revision) == (revision_before, revision_before + 1)
        follower = apply_delta(follower, delta)
        assert follower == owner.snapshot


def test_empty_digest_is_computed_not_blank() -> None:
    """The empty library's digest is the digest of no games: not zero, not an empty string."""
    assert library_digest(()) == EMPTY_DIGEST
    assert blake3.blake3(msgspec.msgpack.encode([])).hexdigest() == EMPTY_DIGEST
    assert EMPTY_DIGEST not in {"", "0", "0" * 64}
    assert len(EMPTY_DIGEST) == 64
    assert LocalLibrary().snapshot.digest == EMPTY_DIGEST


def test_empty_scan_of_an_empty_library_is_no_change() -> None:
    """A scan that finds nothing (only non-catalog roots) produces no delta at start."""
    library = LocalLibrary()

    assert library.replace_all([]) is None
    assert library.update({"ghost": None}) is None
    assert library.snapshot.revision == 0


def test_update_without_change_returns_none() -> None:
    """Setting a game to the summary it already has is no change and no revision."""
    library = LocalLibrary()
    library.update({"a": summary("a")})

    assert library.update({"a": summary("a")}) is None
    assert library.snapshot.revision == 1


def test_revisions_increase_by_one_per_change() -> None:
    """Each change bumps the revision by exactly one; deltas chain base to revision."""
    library = LocalLibrary()

    first = library.update({"a": summary("a")})
    second = library.update({"b": summary("b")})
    third = library.update({"a": None})
    fourth = library.replace_all([summary("b", "2")])

    deltas = [first, second, third, fourth]
    assert [(d.base_revision, d.revision) for d in deltas if d is not None] == [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
    ]
    assert library.snapshot.revision == 4


def test_delta_carries_only_changes() -> None:
    """A delta lists changed or new games as upserts and vanished ids as removals."""
    library = LocalLibrary()
    library.replace_all([summary("a"), summary("b"), summary("c")])

    delta = library.replace_all([summary("a"), summary("b", "2"), summary("d")])

    assert delta is not None
    assert delta.upserts == (summary("b", "2"), summary("d"))
    assert delta.removals == ("c",)
    assert delta.digest == library.snapshot.digest


def test_snapshot_is_sorted_and_looked_up_by_id() -> None:
    """Snapshots hold games sorted by id; get and games find them."""
    library = LocalLibrary()
    library.replace_all([summary("c"), summary("a"), summary("b")])

    assert [game.id for game in library.snapshot.games] == ["a", "b", "c"]
    assert library.get("b") == summary("b")
    assert library.get("z") is None
    assert dict(library.games) == library.snapshot.by_id()


def test_delta_with_wrong_base_raises() -> None:
    """A delta built on another revision is refused with DeltaMismatch."""
    base = make_snapshot(3, [summary("a")])
    delta = diff_snapshots(make_snapshot(4, [summary("a")]), make_snapshot(5, []))

    with pytest.raises(DeltaMismatch) as caught:
        apply_delta(base, delta)

    assert str(caught.value) == "delta from revision 4 does not apply to revision 3"


def test_delta_with_wrong_digest_raises() -> None:
    """A delta whose result does not hash to its digest is refused."""
    base = make_snapshot(1, [summary("a")])
    delta = LibraryDelta(
        base_revision=1, revision=2, digest=EMPTY_DIGEST, upserts=(summary("b"),), removals=()
    )

    with pytest.raises(DeltaMismatch) as caught:
        apply_delta(base, delta)

    assert str(caught.value) == "library digest after applying the delta does not match"


def test_digest_depends_on_content_not_order() -> None:
    """Same games in any order give one digest; any field change gives another."""
    games = [summary("a"), summary("b")]

    assert library_digest(games) == library_digest(reversed(games))
    assert library_digest(games) != library_digest([summary("a"), summary("b", size=11)])


def test_downloaded_follows_availability() -> None:
    """downloaded is True exactly for Ready summaries."""
    local_only = msgspec.structs.replace(summary("a"), availability=Availability.LOCAL_ONLY)

    assert summary("a").downloaded
    assert not local_only.downloaded


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("id", "../x", "Expected `str` matching regex"),
        ("id", "Quake", "Expected `str` matching regex"),
        ("version", "", "Expected `str` of length >= 1"),
        ("version", "v" * 65, "Expected `str` of length <= 64"),
        ("size_bytes", -1, "Expected `int` >= 0"),
        ("availability", "Downloading", "Invalid enum value 'Downloading'"),
    ],
)
def test_summary_decoding_validates_fields(field: str, value: object, error: str) -> None:
    """A summary from the wire or the index is validated: bad ids, versions and sizes fail."""
    raw = msgspec.to_builtins(summary("a"))
    raw[field] = value

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(raw, GameSummary)

    assert str(caught.value).startswith(error)
    assert str(caught.value).endswith(f"- at `$.{field}`")


def test_snapshot_decoding_refuses_unknown_fields() -> None:
    """Wire structs forbid unknown fields so a newer peer's extras are not silently dropped."""
    raw = msgspec.to_builtins(make_snapshot(0, []))
    raw["extra"] = 1

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(raw, LibrarySnapshot)

    assert str(caught.value) == "Object contains unknown field `extra`"


# --- partial copies ----------------------------------------------------------------------


def test_a_library_without_partials_encodes_and_digests_as_before() -> None:
    """No partial field: the encoding has no trace of it, so digests of old libraries hold."""
    encoded = msgspec.msgpack.encode(summary("a"))
    assert msgspec.msgpack.decode(encoded) == {
        "id": "a",
        "availability": "Ready",
        "version": "1",
        "installed": False,
        "size_bytes": 10,
    }
    before = {
        "id": "a",
        "availability": "Ready",
        "version": "1",
        "installed": False,
        "size_bytes": 10,
    }
    assert (
        library_digest([summary("a")])
        == blake3.blake3(msgspec.msgpack.encode([before])).hexdigest()
    )


def test_a_partial_game_is_neither_downloaded_nor_equal_to_another_bitfield() -> None:
    """A partial copy is not downloaded, and a new bitfield is a change of the library."""
    library = LocalLibrary()
    library.update({"a": partial_game("a", 8, [0])})
    game = library.get("a")
    assert game is not None
    assert not game.downloaded
    delta = library.update({"a": partial_game("a", 8, [0, 1])})
    assert delta is not None
    assert delta.upserts == (partial_game("a", 8, [0, 1]),)


@pytest.mark.parametrize(
    ("availability", "with_partial"),
    [(Availability.PARTIAL, False), (Availability.READY, True), (Availability.LOCAL_ONLY, True)],
)
def test_partial_and_its_availability_go_together(
    availability: Availability, with_partial: bool
) -> None:
    """Availability Partial needs a partial, and a partial needs availability Partial."""
    raw = msgspec.to_builtins(summary("a"))
    raw["availability"] = availability.value
    if with_partial:
        raw["partial"] = msgspec.to_builtins(partial(8, [1]))
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(raw, GameSummary)
    assert str(caught.value) == "a: a partial availability goes with availability Partial only"


def _partial_library(count: int) -> list[GameSummary]:
    return [partial_game(f"g{index}", 8, [index]) for index in range(count)]


def test_a_snapshot_with_too_many_partials_is_refused_at_decode() -> None:
    """A stranger's library holds at most MAX_PARTIAL_GAMES bitfields."""
    raw = msgspec.to_builtins(make_snapshot(0, _partial_library(MAX_PARTIAL_GAMES)))
    raw["games"] = [*raw["games"], msgspec.to_builtins(partial_game("z", 8))]
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(raw, LibrarySnapshot)
    assert str(caught.value) == "5 partial games exceed the limit of 4 in one library"


def test_a_delta_with_too_many_partials_is_refused_at_decode() -> None:
    """A delta's upserts are bounded the same way."""
    delta = LibraryDelta(base_revision=0, revision=1, digest=DIGEST, upserts=(), removals=())
    raw = msgspec.to_builtins(delta)
    raw["upserts"] = [msgspec.to_builtins(g) for g in _partial_library(MAX_PARTIAL_GAMES + 1)]
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(raw, LibraryDelta)
    assert str(caught.value) == "5 partial games exceed the limit of 4 in one library"


def test_deltas_that_pile_up_partials_are_a_mismatch() -> None:
    """Two deltas each within the bound cannot leave more partials than the bound."""
    base = make_snapshot(1, _partial_library(MAX_PARTIAL_GAMES))
    extra = partial_game("z", 8)
    target = [*_partial_library(MAX_PARTIAL_GAMES), extra]
    delta = LibraryDelta(
        base_revision=1,
        revision=2,
        digest=library_digest(target),
        upserts=(extra,),
        removals=(),
    )
    with pytest.raises(DeltaMismatch) as caught:
        apply_delta(base, delta)
    assert str(caught.value) == "the delta leaves more than 4 partial games in the library"


def test_announced_games_leave_out_only_the_withheld_ones() -> None:
    """A withheld game is not announced; every other game is, in order and unchanged."""
    games = [summary("aoe2"), summary("cs16"), summary("quake3")]
    assert announced_games(games, {"cs16", "openttd"}) == (games[0], games[2])
    assert announced_games(games, frozenset()) == tuple(games)


def test_withholding_and_lifting_push_an_announced_delta() -> None:
    """Announced as its own library, withholding a game is a removal delta with a new
    revision, and lifting the mark upserts it again: a follower tracks both."""
    local = LocalLibrary()
    local.replace_all([summary("aoe2"), summary("quake3")])
    announced = LocalLibrary()
    announced.replace_all(announced_games(local.snapshot.games, frozenset()))
    follower = announced.snapshot
    withhold = announced.replace_all(announced_games(local.snapshot.games, {"quake3"}))
    assert withhold is not None
    assert (withhold.revision, withhold.upserts, withhold.removals) == (2, (), ("quake3",))
    follower = apply_delta(follower, withhold)
    lift = announced.replace_all(announced_games(local.snapshot.games, frozenset()))
    assert lift is not None
    assert (lift.revision, lift.upserts, lift.removals) == (3, (summary("quake3"),), ())
    assert (
        apply_delta(follower, lift) == announced.snapshot == make_snapshot(3, local.snapshot.games)
    )
