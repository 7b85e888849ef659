"""mDNS sightings: bounded table, eviction order, dial budget and backoff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.sightings import (
    DIAL_BURST,
    DIAL_RATE,
    MAX_HINT_FAILURES,
    MAX_RETRY_DELAY,
    RETRY_BASE_DELAY,
    Sighting,
    Sightings,
)

A = ("10.0.0.1", 4000)
B = ("10.0.0.2", 4000)


def ids(entries: list[Sighting]) -> list[str]:
    return [entry.peer_id for entry in entries]


def test_a_sighting_is_due_at_once_and_then_dialling() -> None:
    """A new claim is dialled at once, and not handed out twice while its dial runs."""
    table = Sightings()
    table.saw("p1", A, 0.0, proven_peer=False)
    assert ids(table.claim_due(0.0)) == ["p1"]
    assert table.claim_due(0.0) == []
    assert len(table) == 1


def test_a_proven_dial_drops_the_sighting() -> None:
    """Once the handshake proves the id, the claim is no longer a sighting."""
    table = Sightings()
    table.saw("p1", A, 0.0, proven_peer=False)
    table.claim_due(0.0)
    table.dialled("p1", 0.5, proven=True)
    assert "p1" not in table
    table.dialled("p1", 0.6, proven=False)  # a late report about a gone sighting is ignored
    assert "p1" not in table


def test_failed_dials_back_off_exponentially_up_to_the_cap() -> None:
    """Each failure doubles the wait from RETRY_BASE_DELAY, never beyond MAX_RETRY_DELAY."""
    table = Sightings(dial_burst=1000.0)
    table.saw("p1", A, 0.0, proven_peer=False)
    now = 0.0
    waits = []
    for _ in range(8):
        assert ids(table.claim_due(now)) == ["p1"]
        table.dialled("p1", now, proven=False)
        entry = table.get("p1")
        assert entry is not None
        waits.append(entry.next_dial_at - now)
        assert table.claim_due(now + waits[-1] - 0.001) == []
        now += waits[-1]
    assert waits[0] == RETRY_BASE_DELAY
    assert waits[1] == 2 * RETRY_BASE_DELAY
    assert waits[-1] == MAX_RETRY_DELAY


def test_a_changed_address_keeps_the_backoff() -> None:
    """A spoofer that keeps changing the advertised address gets no earlier dial."""
    table = Sightings()
    table.saw("p1", A, 0.0, proven_peer=True)
    table.claim_due(0.0)
    table.dialled("p1", 0.0, proven=False)
    table.saw("p1", B, 0.1, proven_peer=True)
    assert table.claim_due(0.1) == []
    entry = table.get("p1")
    assert entry is not None
    assert entry.address == B
    assert entry.failures == 1


def test_dials_are_rate_limited_by_a_token_bucket() -> None:
    """A burst of DIAL_BURST goes out at once; then DIAL_RATE per second."""
    table = Sightings()
    for number in range(100):
        table.saw(f"p{number:03d}", A, 0.0, proven_peer=False)
    assert len(table.claim_due(0.0)) == DIAL_BURST
    assert table.claim_due(0.0) == []
    assert len(table.claim_due(1.0)) == DIAL_RATE
    assert len(table.claim_due(100.0)) == DIAL_BURST  # the bucket never holds more than the burst


def test_never_failed_sightings_are_dialled_before_failed_ones() -> None:
    """Records that keep failing cannot starve an honest newcomer of the dial budget."""
    table = Sightings(dial_burst=2.0, dial_rate=1.0, retry_base=1.0, retry_max=1.0)
    table.saw("fake1", A, 0.0, proven_peer=False)
    table.saw("fake2", A, 0.0, proven_peer=False)
    for entry in table.claim_due(0.0):
        table.dialled(entry.peer_id, 0.0, proven=False)
    table.saw("honest", B, 0.5, proven_peer=False)
    assert ids(table.claim_due(1.0)) == ["honest"]


def test_a_newcomer_is_dialled_before_a_burst_that_came_just_before_it() -> None:
    """Among sightings that never failed, the newest goes first: a burst cannot queue it."""
    table = Sightings(dial_burst=1.0, dial_rate=1.0)
    table.claim_due(0.0)  # spend the only token
    for number in range(50):
        table.saw(f"fake{number:02d}", A, 0.5, proven_peer=False)
    table.saw("honest", B, 0.9, proven_peer=False)
    assert ids(table.claim_due(1.0)) == ["honest"]


def test_a_full_table_evicts_strangers_before_move_candidates() -> None:
    """A flood of unknown ids never evicts the move candidate of a proven peer."""
    table = Sightings(capacity=3)
    table.saw("moved", A, 0.0, proven_peer=True)
    table.saw("s1", A, 1.0, proven_peer=False)
    table.saw("s2", A, 2.0, proven_peer=False)
    assert table.saw("s3", A, 3.0, proven_peer=False) == "s1"
    assert table.saw("s4", A, 4.0, proven_peer=False) == "s2"
    assert "moved" in table


def test_a_full_table_evicts_the_most_failed_then_the_oldest() -> None:
    """Fake records that failed make room for an honest newcomer before younger ones."""
    table = Sightings(capacity=3, dial_burst=10.0)
    table.saw("old", A, 0.0, proven_peer=False)
    table.saw("failing", A, 1.0, proven_peer=False)
    table.saw("young", A, 2.0, proven_peer=False)
    table.claim_due(2.0)
    table.dialled("failing", 2.0, proven=False)
    table.dialled("old", 2.0, proven=True)
    table.saw("old", A, 3.0, proven_peer=False)
    assert table.saw("honest", B, 4.0, proven_peer=False) == "failing"
    assert table.saw("next", B, 5.0, proven_peer=False) == "young"


def test_forget_drops_a_sighting() -> None:
    """A goodbye, or a record matching the proven address, forgets the claim."""
    table = Sightings()
    table.saw("p1", A, 0.0, proven_peer=False)
    assert table.forget("p1")
    assert not table.forget("p1")
    assert table.claim_due(0.0) == []


def test_nonsense_bounds_are_refused() -> None:
    """A zero capacity, rate or burst is a caller bug."""
    with pytest.raises(ValueError, match="capacity, rate, burst and retry delay must be positive"):
        Sightings(capacity=0)


@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from(["saw", "due", "ok", "fail", "forget"])),
        max_size=200,
    )
)
def test_bounds_hold_under_any_mix(ops: list[tuple[int, str]]) -> None:
    """The table never exceeds its capacity and never dials faster than its budget allows."""
    table = Sightings(capacity=8, dial_rate=2.0, dial_burst=3.0)
    now = 0.0
    handed_out = 0
    for number, op in ops:
        now += 0.25
        peer_id = f"p{number}"
        if op == "saw":
            table.saw(peer_id, A, now, proven_peer=number % 2 == 0)
        elif op == "due":
            handed_out += len(table.claim_due(now))
        elif op == "forget":
            table.forget(peer_id)
        else:
            table.dialled(peer_id, now, proven=op == "ok")
        assert len(table) <= 8
        assert handed_out <= 3 + 2.0 * now


def test_a_record_replaces_a_hint_afresh_and_a_hint_never_replaces_a_record() -> None:
    """mDNS from the peer itself outweighs gossip: the hint's backoff goes, the record stays."""
    table = Sightings()
    table.saw("p1", A, 0.0, proven_peer=False, hinted=True)
    table.claim_due(0.0)
    table.dialled("p1", 0.0, proven=False)
    table.saw("p1", B, 0.1, proven_peer=False)
    entry = table.get("p1")
    assert entry is not None
    assert (entry.address, entry.failures, entry.hinted) == (B, 0, False)
    table.saw("p1", A, 0.2, proven_peer=False, hinted=True)
    entry = table.get("p1")
    assert entry is not None
    assert (entry.address, entry.hinted) == (B, False)


def test_a_record_does_not_replace_a_hint_being_dialled() -> None:
    """While a hinted dial runs the record only updates the address, as for any sighting."""
    table = Sightings()
    table.saw("p1", A, 0.0, proven_peer=False, hinted=True)
    table.claim_due(0.0)
    table.saw("p1", B, 0.1, proven_peer=False)
    entry = table.get("p1")
    assert entry is not None
    assert (entry.address, entry.dialling, entry.hinted) == (B, True, True)


def test_hints_are_evicted_before_records() -> None:
    """A full table drops gossip first, however fresh, so records of peers themselves stay."""
    table = Sightings(capacity=2)
    table.saw("r1", A, 0.0, proven_peer=False)
    table.saw("h1", A, 5.0, proven_peer=False, hinted=True)
    assert table.saw("r2", B, 6.0, proven_peer=False) == "h1"
    assert table.saw("h2", B, 7.0, proven_peer=False, hinted=True) == "r1"


def test_untried_names_sightings_whose_address_has_not_failed() -> None:
    """Waiting or dialling sightings are untried; a failed one may take a new address."""
    table = Sightings()
    for peer_id in ("p1", "p2", "p3"):
        table.saw(peer_id, A, 0.0, proven_peer=False)
    table.claim_due(0.0)
    table.dialled("p1", 0.0, proven=False)
    table.saw("p4", A, 0.0, proven_peer=False)
    assert table.untried() == frozenset({"p2", "p3", "p4"})


def test_next_due_names_the_next_moment_a_dial_can_go() -> None:
    """Nothing waiting: None; a backed-off sighting: its time; no token: the refill time."""
    table = Sightings(dial_rate=2.0, dial_burst=1.0)
    assert table.next_due(0.0) is None
    table.saw("p1", A, 0.0, proven_peer=False)
    table.claim_due(0.0)
    assert table.next_due(0.0) is None
    table.dialled("p1", 0.0, proven=False)
    assert table.next_due(0.0) == RETRY_BASE_DELAY
    table.saw("p2", B, 0.0, proven_peer=False)
    assert table.next_due(0.0) == 0.5
    assert table.next_due(3.0) == 3.0


def test_a_hint_is_dropped_after_its_last_allowed_failure() -> None:
    """Nothing ends a hint but a dial: after MAX_HINT_FAILURES failures it is gone."""
    table = Sightings(dial_burst=1000.0)
    table.saw("h1", A, 0.0, proven_peer=False, hinted=True)
    table.saw("r1", B, 0.0, proven_peer=False)
    now = 0.0
    for _ in range(MAX_HINT_FAILURES):
        assert "h1" in ids(table.claim_due(now))
        table.dialled("h1", now, proven=False)
        table.dialled("r1", now, proven=False)
        now += MAX_RETRY_DELAY
    assert "h1" not in table
    entry = table.get("r1")
    assert entry is not None
    assert entry.failures == MAX_HINT_FAILURES


def test_a_deferred_sighting_is_due_only_after_its_delay() -> None:
    """A new sighting saw with a delay waits it out; a later claim does not shorten it."""
    table = Sightings()
    table.saw("p1", A, 0.0, proven_peer=False, delay=1.0)
    assert table.claim_due(0.5) == []
    assert table.next_due(0.5) == 1.0
    table.saw("p1", B, 0.6, proven_peer=False)
    assert ids(table.claim_due(1.0)) == ["p1"]
