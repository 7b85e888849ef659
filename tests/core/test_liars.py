"""The record of peers that sent corrupt bytes for a game."""

from __future__ import annotations

import pytest

from lanspread.core.liars import MAX_REMEMBERED_LIARS, LiarRecord, all_liars_message


def test_a_recorded_liar_is_excluded_for_that_game_only() -> None:
    """A liar for quake3 is dropped from quake3's sources, keeping the others' order,
    and stays a source for another game."""
    record = LiarRecord()
    record.record("quake3", "charlie")
    assert record.exclude("quake3", ("delta", "charlie", "bravo")) == ("delta", "bravo")
    assert record.exclude("cs16", ("delta", "charlie")) == ("delta", "charlie")
    assert record.is_liar("quake3", "charlie")
    assert not record.is_liar("cs16", "charlie")


def test_excluded_lists_a_games_liars_sorted_once() -> None:
    """Recording the same pair twice keeps one entry; the list is sorted by peer id."""
    record = LiarRecord()
    record.record("quake3", "delta")
    record.record("quake3", "charlie")
    record.record("quake3", "delta")
    assert record.excluded("quake3") == ("charlie", "delta")
    assert record.excluded("cs16") == ()
    assert len(record) == 2


def test_the_record_is_bounded_and_forgets_the_oldest_pair() -> None:
    """Past its limit the record drops the least recently recorded pair, and only it."""
    record = LiarRecord(limit=2)
    record.record("quake3", "a")
    record.record("quake3", "b")
    record.record("quake3", "a")  # recorded again: now the newest
    record.record("cs16", "c")
    assert len(record) == 2
    assert record.excluded("quake3") == ("a",)
    assert record.excluded("cs16") == ("c",)


def test_the_default_bound_holds_under_a_flood_of_fresh_ids() -> None:
    """Fresh peer ids beyond the default limit never grow the record past it."""
    record = LiarRecord()
    for index in range(MAX_REMEMBERED_LIARS + 10):
        record.record("quake3", f"peer-{index:05d}")
    assert len(record) == MAX_REMEMBERED_LIARS
    assert not record.is_liar("quake3", "peer-00009")
    assert record.is_liar("quake3", "peer-00010")
    assert len(record.excluded("quake3")) == MAX_REMEMBERED_LIARS


def test_a_record_without_room_is_refused() -> None:
    """A limit below one is a programming error, said plainly."""
    with pytest.raises(ValueError, match="a liar record must hold at least one pair"):
        LiarRecord(limit=0)


def test_the_message_names_the_game() -> None:
    """The failure a player reads names the game and when the peers are trusted again."""
    assert all_liars_message("quake3") == (
        "every peer offering quake3 sent corrupt data earlier; "
        "not downloading from them again until lanspread restarts"
    )


def test_by_game_lists_every_game_with_liars() -> None:
    """The snapshot a game list draws from: per game, its liars sorted; no empty games."""
    record = LiarRecord(limit=2)
    record.record("quake3", "delta")
    record.record("cs16", "bravo")
    record.record("quake3", "charlie")  # evicts (quake3, delta)
    assert record.by_game() == {"quake3": ("charlie",), "cs16": ("bravo",)}
    record.record("ut2004", "echo")  # evicts (cs16, bravo): cs16 has no liar left
    assert record.by_game() == {"quake3": ("charlie",), "ut2004": ("echo",)}
