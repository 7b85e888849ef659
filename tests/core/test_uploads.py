"""Upload shaping: the token bucket, the effective limit, rate meters and fair slots."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.uploads import (
    BURST_SECONDS,
    MAX_LIMIT,
    MIN_LIMIT,
    UNLIMITED,
    PeerRates,
    RateMeter,
    TokenBucket,
    UploadScheduler,
    check_limit,
    effective_limit,
)

MIB = 1024 * 1024


# -- limits ---------------------------------------------------------------------------


def test_a_limit_is_zero_or_within_its_bounds() -> None:
    """0 and both bounds pass; just outside either bound is refused with the bounds named."""
    for value in (UNLIMITED, MIN_LIMIT, MAX_LIMIT, 20 * MIB):
        assert check_limit(value, "upload limit") == value
    for value in (-1, 1, MIN_LIMIT - 1, MAX_LIMIT + 1):
        expected = "the upload limit must be 0 (unlimited) or between 1 and 10240 MiB/s"
        with pytest.raises(ValueError, match=re.escape(expected) + "$"):
            check_limit(value, "upload limit")


def test_the_gaming_cap_applies_only_while_a_game_runs_and_only_when_lower() -> None:
    """Without a game the upload limit rules; with one, the lower bound of the two, 0 being none."""
    assert effective_limit(5 * MIB, 20 * MIB, gaming=False) == 5 * MIB
    assert effective_limit(UNLIMITED, 20 * MIB, gaming=False) == UNLIMITED
    assert effective_limit(UNLIMITED, 20 * MIB, gaming=True) == 20 * MIB
    assert effective_limit(5 * MIB, 20 * MIB, gaming=True) == 5 * MIB
    assert effective_limit(50 * MIB, 20 * MIB, gaming=True) == 20 * MIB
    assert effective_limit(50 * MIB, UNLIMITED, gaming=True) == 50 * MIB


# -- token bucket ---------------------------------------------------------------------


def test_an_unlimited_bucket_never_waits() -> None:
    """Rate 0 charges nothing however much is sent."""
    bucket = TokenBucket(UNLIMITED, 0.0)
    assert all(bucket.take(1024 * MIB, 0.0) == 0.0 for _ in range(10))


def test_the_burst_goes_at_once_and_the_rest_waits_for_its_time() -> None:
    """A quarter second of tokens is free; beyond that each byte costs 1/rate seconds."""
    bucket = TokenBucket(MIB, 0.0)
    burst = int(MIB * BURST_SECONDS)
    assert bucket.take(burst, 0.0) == 0.0
    assert bucket.take(MIB, 0.0) == pytest.approx(1.0)
    assert bucket.take(MIB, 0.0) == pytest.approx(2.0)


def test_waiting_repays_the_debt() -> None:
    """After waiting what it was told, a sender at the rate is never told to wait more."""
    bucket = TokenBucket(MIB, 0.0)
    now = 0.0
    for _ in range(20):
        now += bucket.take(MIB // 2, now)
    assert bucket.take(0, now) == 0.0


def test_a_rate_change_applies_from_then_on() -> None:
    """Debt is repaid at the new rate; going unlimited forgives it; leaving it starts full."""
    bucket = TokenBucket(MIB, 0.0)
    bucket.take(int(MIB * BURST_SECONDS) + MIB, 0.0)  # one second of debt at 1 MiB/s
    bucket.set_rate(2 * MIB, 0.0)
    assert bucket.take(0, 0.0) == pytest.approx(0.5)
    bucket.set_rate(UNLIMITED, 0.0)
    assert bucket.take(100 * MIB, 0.0) == 0.0
    bucket.set_rate(MIB, 0.0)
    assert bucket.rate == MIB
    assert bucket.take(int(MIB * BURST_SECONDS), 0.0) == 0.0
    assert bucket.take(MIB, 0.0) == pytest.approx(1.0)


def test_a_negative_rate_is_refused() -> None:
    """Both at creation and on change."""
    with pytest.raises(ValueError, match=r"^the rate must not be negative$"):
        TokenBucket(-1, 0.0)
    with pytest.raises(ValueError, match=r"^the rate must not be negative$"):
        TokenBucket(1, 0.0).set_rate(-1, 0.0)


@given(
    rate=st.integers(min_value=MIN_LIMIT, max_value=100 * MIB),
    sizes=st.lists(st.integers(min_value=0, max_value=8 * MIB), min_size=1, max_size=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=50, max_size=50),
)
def test_a_sender_that_waits_as_told_stays_under_rate_times_time_plus_burst(
    rate: int, sizes: list[int], gaps: list[float]
) -> None:
    """Whatever the chunk sizes and pauses, bytes sent by the moment of each send never
    exceed the burst plus the rate times the time since the start, plus that one chunk."""
    bucket = TokenBucket(rate, 0.0)
    now = 0.0
    sent = 0
    for size, gap in zip(sizes, gaps, strict=False):
        now += gap
        now += bucket.take(size, now)
        assert sent <= rate * BURST_SECONDS + rate * now + 1
        sent += size


# -- rate meters ----------------------------------------------------------------------


def test_a_meter_averages_over_its_window_and_forgets_what_is_older() -> None:
    """4 MiB in a 4-second window is 1 MiB/s; after the window it is zero and idle."""
    meter = RateMeter(window=4.0, slices=8)
    assert meter.idle(0.0)
    for second in range(4):
        meter.add(MIB, float(second))
    assert meter.rate(3.9) == pytest.approx(MIB)
    assert meter.rate(5.1) == pytest.approx(MIB / 2)
    assert meter.rate(8.0) == 0.0
    assert meter.idle(8.0)


def test_a_meter_survives_a_clock_step_back() -> None:
    """Bytes counted at an earlier moment than the last are not lost."""
    meter = RateMeter(window=4.0, slices=8)
    meter.add(MIB, 3.0)
    meter.add(MIB, 1.0)
    assert meter.rate(3.0) == pytest.approx(MIB / 2)


def test_a_meter_needs_a_window_and_slices() -> None:
    """A zero window or no slices is refused."""
    with pytest.raises(ValueError, match=r"^window and slices must be positive$"):
        RateMeter(window=0)
    with pytest.raises(ValueError, match=r"^window and slices must be positive$"):
        RateMeter(slices=0)


def test_peer_rates_are_per_peer_and_bounded() -> None:
    """Each peer has its own rate; the peer idle longest makes room; idle peers are not listed."""
    rates = PeerRates(max_peers=2)
    rates.add("a", 4 * MIB, 0.0)
    rates.add("b", 8 * MIB, 1.0)
    rates.add("c", 4 * MIB, 2.0)
    assert rates.rates(2.0) == {"b": 2 * MIB, "c": MIB}
    assert rates.total(2.0) == 3 * MIB
    assert rates.rates(100.0) == {}


# -- slots ----------------------------------------------------------------------------


def test_slots_bound_the_peers_served_at_once() -> None:
    """With two slots a third peer waits until a holder leaves."""
    slots = UploadScheduler(slots=2, time_slice=5.0, idle_grace=1.0)
    assert slots.request("a", 0.0)
    assert slots.request("b", 0.0)
    assert not slots.request("c", 0.0)
    assert slots.holders == {"a", "b"}
    assert slots.waiting == ("c",)
    slots.finished("a", 0.1)
    slots.leave("a", 0.1)
    assert slots.request("c", 0.1)
    assert slots.holders == {"b", "c"}


def test_a_holder_keeps_its_slot_while_nobody_waits() -> None:
    """The slice only ends a turn when someone is in line."""
    slots = UploadScheduler(slots=1, time_slice=1.0, idle_grace=10.0)
    now = 0.0
    for _ in range(100):
        assert slots.request("a", now)
        now += 0.5
        slots.finished("a", now)
    assert slots.holders == {"a"}


def test_turns_rotate_round_robin_after_each_slice() -> None:
    """Three peers on one slot each get a turn of one slice, in order, again and again."""
    slots = UploadScheduler(slots=1, time_slice=1.0, idle_grace=10.0, preference=0.0)
    served: list[str] = []
    now = 0.0
    for _ in range(60):
        for peer in ("a", "b", "c"):
            if slots.request(peer, now):
                served.append(peer)
                now += 0.25
                slots.finished(peer, now)
    turns = [peer for index, peer in enumerate(served) if index == 0 or served[index - 1] != peer]
    assert turns[:6] == ["a", "b", "c", "a", "b", "c"]
    assert {served.count(peer) for peer in "abc"} <= {
        min(served.count(p) for p in "abc"),
        min(served.count(p) for p in "abc") + 4,
    }


def test_a_yielding_holder_finishes_its_chunks_before_the_slot_moves() -> None:
    """A holder past its slice with a chunk in flight gets no new chunk, and the waiter
    gets the slot only once that chunk is done."""
    slots = UploadScheduler(slots=1, time_slice=1.0, idle_grace=10.0)
    assert slots.request("a", 0.0)
    assert slots.request("a", 0.0)  # two connections, two chunks in flight
    assert not slots.request("b", 0.5)
    slots.finished("a", 1.5)
    assert not slots.request("a", 1.5)
    assert not slots.request("b", 1.5)
    slots.finished("a", 1.6)
    assert slots.request("b", 1.6)
    assert slots.waiting == ("a",)


def test_peers_that_serve_others_go_ahead_by_a_bounded_head_start() -> None:
    """A serving peer passes non-serving ones who joined less than the preference earlier,
    not those who have waited longer."""
    slots = UploadScheduler(slots=1, time_slice=10.0, idle_grace=100.0, preference=5.0)
    assert slots.request("holder", 0.0)
    assert not slots.request("early", 0.0)
    assert not slots.request("late", 3.0)
    assert not slots.request("server", 6.0, serves_others=True)
    assert slots.waiting == ("early", "server", "late")


def test_an_idle_holder_gives_its_slot_up() -> None:
    """No chunk in flight for the grace period frees the slot for the next in line."""
    slots = UploadScheduler(slots=1, time_slice=100.0, idle_grace=1.0)
    assert slots.request("a", 0.0)
    slots.finished("a", 0.1)
    assert not slots.request("b", 0.5)
    assert slots.next_change(0.5) == pytest.approx(0.6)
    assert slots.request("b", 1.1)
    assert slots.holders == {"b"}


def test_a_peer_that_leaves_mid_chunk_keeps_its_slot_busy_until_the_chunk_ends() -> None:
    """Leaving with a chunk in flight does not overcommit the slots."""
    slots = UploadScheduler(slots=1, time_slice=100.0, idle_grace=1.0)
    assert slots.request("a", 0.0)
    slots.leave("a", 0.0)
    assert not slots.request("b", 0.1)
    slots.finished("a", 0.2)
    assert slots.request("b", 0.2)


def test_next_change_is_none_without_a_line() -> None:
    """Nobody waits: nothing to wake for. A line with no holder is served at once."""
    slots = UploadScheduler(slots=1)
    assert slots.next_change(0.0) is None
    assert slots.request("a", 0.0)
    assert slots.next_change(0.0) is None


def test_a_scheduler_needs_positive_parameters() -> None:
    """Zero slots, slice or grace are refused."""
    for kwargs in ({"slots": 0}, {"time_slice": 0.0}, {"idle_grace": 0.0}, {"preference": -1.0}):
        with pytest.raises(
            ValueError, match=r"^slots, time slice and idle grace must be positive$"
        ):
            UploadScheduler(**kwargs)


@given(
    script=st.lists(
        st.tuples(
            st.sampled_from(["request", "finished", "leave"]),
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.floats(min_value=0, max_value=3),
            st.booleans(),
        ),
        max_size=200,
    )
)
def test_holders_and_draining_chunks_never_exceed_the_slots(
    script: list[tuple[str, str, float, bool]],
) -> None:
    """Whatever happens in whatever order, at most ``slots`` peers hold a slot, and a
    granted chunk always belongs to a holder."""
    slots = UploadScheduler(slots=2, time_slice=1.0, idle_grace=0.5)
    now = 0.0
    granted: dict[str, int] = {}
    for action, peer, gap, serves in script:
        now += gap
        if action == "request":
            if slots.request(peer, now, serves_others=serves):
                granted[peer] = granted.get(peer, 0) + 1
                assert peer in slots.holders
        elif action == "finished" and granted.get(peer):
            granted[peer] -= 1
            slots.finished(peer, now)
        elif action == "leave":
            slots.leave(peer, now)
        assert len(slots.holders) <= 2
        assert not set(slots.holders) & set(slots.waiting)
