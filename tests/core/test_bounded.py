"""The bounded table: order of last put, capacity, forgetting what aged out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.bounded import BoundedTable


def test_a_put_past_the_capacity_forgets_the_oldest_and_says_which() -> None:
    """The third put into a table of two forgets the first key, and returns it."""
    table: BoundedTable[str, int] = BoundedTable(2)
    assert table.put("a", 1) == []
    assert table.put("b", 2) == []
    assert table.put("c", 3) == [("a", 1)]
    assert list(table) == ["b", "c"]
    assert "a" not in table
    assert table.get("c") == 3


def test_putting_a_held_key_again_makes_it_the_newest() -> None:
    """A key put again moves to the end, so the next overflow forgets another key."""
    table: BoundedTable[str, int] = BoundedTable(2)
    table.put("a", 1)
    table.put("b", 2)
    table.put("a", 10)
    assert table.put("c", 3) == [("b", 2)]
    assert list(table) == ["a", "c"]
    assert table.get("a") == 10


def test_pop_removes_a_key_and_tells_its_value() -> None:
    """pop answers the value once, then None; get of a missing key is None too."""
    table: BoundedTable[str, int] = BoundedTable(3)
    table.put("a", 1)
    assert table.pop("a") == 1
    assert table.pop("a") is None
    assert table.get("a") is None
    assert len(table) == 0


def test_forget_oldest_while_stops_at_the_first_fresh_entry() -> None:
    """Only the leading stale entries go: a stale one behind a fresh one stays."""
    table: BoundedTable[str, float] = BoundedTable(5)
    for key, stamp in (("a", 1.0), ("b", 2.0), ("c", 9.0), ("d", 1.5)):
        table.put(key, stamp)
    assert table.forget_oldest_while(lambda stamp: stamp < 5.0) == 2
    assert list(table) == ["c", "d"]


def test_a_capacity_below_one_is_refused() -> None:
    """A table that could hold nothing is a programming error, said at construction."""
    with pytest.raises(ValueError, match="a bounded table holds at least one entry, got 0"):
        BoundedTable(0)


@given(st.integers(1, 8), st.lists(st.integers(0, 20), max_size=100))
def test_the_capacity_holds_and_the_newest_keys_stay(capacity: int, keys: list[int]) -> None:
    """After any puts the table holds the last ``capacity`` distinct keys, oldest first."""
    table: BoundedTable[int, None] = BoundedTable(capacity)
    for key in keys:
        table.put(key, None)
    newest: list[int] = []
    for key in reversed(keys):
        if key not in newest:
            newest.insert(0, key)
    assert list(table) == newest[-capacity:]
    assert len(table) <= capacity
