"""Slot tables: per-address and total caps, refusal or eviction when full, release."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.admission import (
    AdmissionRefusal,
    Admitted,
    RequestBudget,
    SlotTable,
    normalize_address,
    refilled,
)
from lanspread.core.refusal import Refused


def admitted(outcome: Admitted | Refused[AdmissionRefusal]) -> Admitted:
    assert isinstance(outcome, Admitted), outcome
    return outcome


def test_an_address_at_its_cap_is_refused_whatever_the_policy() -> None:
    """The per-address cap holds even for a table that evicts; other addresses still get in."""
    for evict in (False, True):
        table = SlotTable(per_address=2, total=10, evict_when_full=evict)
        admitted(table.admit("10.0.0.1", 0.0))
        admitted(table.admit("10.0.0.1", 0.0))
        assert table.admit("10.0.0.1", 0.0) == Refused(AdmissionRefusal.ADDRESS_FULL)
        assert admitted(table.admit("10.0.0.2", 0.0)).evicted is None
        assert table.held_by("10.0.0.1") == 2


def test_a_refusing_table_refuses_when_full() -> None:
    """Established links are never evicted: a full table refuses the newcomer."""
    table = SlotTable(per_address=5, total=2, evict_when_full=False)
    admitted(table.admit("10.0.0.1", 0.0))
    admitted(table.admit("10.0.0.2", 1.0))
    assert table.admit("10.0.0.3", 2.0) == Refused(AdmissionRefusal.TABLE_FULL)
    assert len(table) == 2


def test_an_evicting_table_evicts_the_oldest_slot_of_the_biggest_holder() -> None:
    """A flood from one address loses its own oldest slot; the lone honest slot stays."""
    table = SlotTable(per_address=5, total=4, evict_when_full=True)
    honest = admitted(table.admit("10.0.0.9", 0.0)).slot
    flood = [admitted(table.admit("10.0.0.1", 1.0 + n)).slot for n in range(3)]
    newcomer = admitted(table.admit("10.0.0.7", 10.0))
    assert newcomer.evicted == flood[0]
    assert len(table) == 4
    assert table.held_by("10.0.0.1") == 2
    assert table.held_by("10.0.0.9") == 1
    assert not table.release(flood[0])  # already gone
    assert table.release(honest)


def test_eviction_among_equal_holders_takes_the_oldest_slot() -> None:
    """When several addresses hold the most, the oldest of their slots goes."""
    table = SlotTable(per_address=5, total=2, evict_when_full=True)
    first = admitted(table.admit("10.0.0.1", 5.0)).slot
    admitted(table.admit("10.0.0.2", 3.0))
    second_oldest = admitted(table.admit("10.0.0.3", 9.0))
    assert second_oldest.evicted not in (None, first)


def test_release_frees_the_address_share() -> None:
    """A released slot gives its address room again; releasing twice is harmless."""
    table = SlotTable(per_address=1, total=5, evict_when_full=False)
    slot = admitted(table.admit("10.0.0.1", 0.0)).slot
    assert table.release(slot)
    assert not table.release(slot)
    assert table.held_by("10.0.0.1") == 0
    admitted(table.admit("10.0.0.1", 1.0))


def test_mapped_and_plain_ipv4_count_as_one_address() -> None:
    """A dual-stack listener's ``::ffff:a.b.c.d`` is the same address as ``a.b.c.d``."""
    table = SlotTable(per_address=1, total=5, evict_when_full=False)
    admitted(table.admit("::ffff:10.0.0.1", 0.0))
    assert table.admit("10.0.0.1", 0.0) == Refused(AdmissionRefusal.ADDRESS_FULL)
    assert normalize_address("FE80::1%eth0") == "fe80::1"
    assert normalize_address("Not-An-IP") == "not-an-ip"


def test_caps_must_be_positive() -> None:
    """A zero cap is a caller bug, said at construction."""
    with pytest.raises(ValueError, match="both caps must be positive"):
        SlotTable(per_address=0, total=1, evict_when_full=False)


@given(
    st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 30)), max_size=150),
    st.booleans(),
)
def test_caps_hold_under_any_mix(ops: list[tuple[int, bool, int]], evict: bool) -> None:
    """Any admit/release mix keeps both caps and the per-address counts exact."""
    table = SlotTable(per_address=3, total=7, evict_when_full=evict)
    live: dict[int, str] = {}
    for step, (host, is_admit, pick) in enumerate(ops):
        address = f"10.0.0.{host}"
        if is_admit:
            outcome = table.admit(address, float(step))
            if isinstance(outcome, Admitted):
                if outcome.evicted is not None:
                    assert evict
                    del live[outcome.evicted]
                live[outcome.slot] = address
        elif live:
            slot = sorted(live)[pick % len(live)]
            assert table.release(slot)
            del live[slot]
        assert len(table) == len(live) <= 7
        for held in set(live.values()):
            assert table.held_by(held) == list(live.values()).count(held) <= 3


def test_a_request_budget_lets_a_burst_through_then_paces_the_rest() -> None:
    """Within the burst there is no wait; beyond it each request waits its share of the rate."""
    budget = RequestBudget(rate=10.0, burst=3.0, max_addresses=4)
    assert [budget.delay("10.0.0.1", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.delay("10.0.0.1", 0.0) == pytest.approx(0.1)
    assert budget.delay("10.0.0.1", 0.0) == pytest.approx(0.2)
    assert budget.delay("10.0.0.2", 0.0) == 0.0  # another address has its own bucket
    assert budget.delay("10.0.0.1", 1.0) == 0.0  # a second refills ten tokens, up to the burst


def test_a_request_budget_keeps_a_bounded_number_of_addresses() -> None:
    """A new address evicts the one idle longest; the count never exceeds the bound."""
    budget = RequestBudget(rate=1.0, burst=1.0, max_addresses=2)
    budget.delay("10.0.0.1", 0.0)
    budget.delay("10.0.0.2", 1.0)
    budget.delay("10.0.0.1", 2.0)
    budget.delay("10.0.0.3", 2.0)  # evicts 10.0.0.2, idle since 1.0
    assert len(budget) == 2
    assert budget.delay("10.0.0.1", 2.0) == pytest.approx(1.0)  # still in debt: kept


def test_a_request_budget_needs_positive_bounds() -> None:
    """A zero rate, burst or address bound is a caller bug."""
    with pytest.raises(ValueError, match="rate, burst and max_addresses must be positive"):
        RequestBudget(rate=0.0, burst=1.0, max_addresses=1)


def test_a_bucket_refills_at_its_rate_up_to_its_burst_and_never_from_a_clock_gone_back() -> None:
    """Tokens grow by rate times elapsed time, stop at the burst, and a clock that
    reads earlier than the last refill neither adds nor takes any."""
    assert refilled(1.0, 10.0, 11.5, rate=2.0, burst=5.0) == 4.0
    assert refilled(1.0, 10.0, 20.0, rate=2.0, burst=5.0) == 5.0
    assert refilled(-1.5, 10.0, 9.0, rate=2.0, burst=5.0) == -1.5


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 0.5)), max_size=200))
def test_a_request_budget_never_serves_faster_than_its_rate(ops: list[tuple[int, float]]) -> None:
    """Requests served by their due time never exceed burst + rate x elapsed, per address."""
    budget = RequestBudget(rate=4.0, burst=2.0, max_addresses=8)
    now = 0.0
    due: dict[str, list[float]] = {}
    for host, step in ops:
        now += step
        address = f"10.0.0.{host}"
        due.setdefault(address, []).append(now + budget.delay(address, now))
    for times in due.values():
        start = times[0]
        for count, served in enumerate(sorted(times), start=1):
            assert count <= 2.0 + 4.0 * (served - start) + 1e-6
