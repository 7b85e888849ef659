"""Progress accounting and the sampler, driven by an injected clock with exact values."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lanspread.core.progress import (
    DEFAULT_SAMPLE_INTERVAL,
    DEFAULT_SPEED_WINDOW,
    MAX_SPEED_SAMPLES,
    WIRE_RATE_WINDOW,
    ProgressSampler,
    ProgressSnapshot,
    ProgressTracker,
    SmoothedRate,
)

MiB = 1024 * 1024


# --- tracker ----------------------------------------------------------------------------


def test_retried_chunk_counts_once() -> None:
    """A chunk recorded twice (a retry) counts toward completion once."""
    tracker = ProgressTracker(10 * MiB)
    assert tracker.record_chunk(("a.eti", 0), MiB) == MiB
    assert tracker.record_chunk(("a.eti", 0), MiB) == 0
    assert tracker.record_chunk(("a.eti", MiB), MiB) == MiB
    assert tracker.downloaded_bytes == 2 * MiB


def test_transferred_counts_every_wire_byte() -> None:
    """Raw wire bytes include retry waste and are not deduplicated."""
    tracker = ProgressTracker(MiB)
    tracker.record_transferred(MiB)
    tracker.record_transferred(MiB)
    assert tracker.transferred_bytes == 2 * MiB
    assert tracker.downloaded_bytes == 0


def test_downloaded_is_clamped_to_total() -> None:
    """Chunks adding up past the expected total never report more than the total."""
    tracker = ProgressTracker(3 * MiB)
    tracker.record_chunk(("a", 0), 2 * MiB)
    tracker.record_chunk(("a", 2 * MiB), 2 * MiB)
    assert tracker.downloaded_bytes == 3 * MiB
    assert tracker.total_bytes == 3 * MiB


def test_resumed_chunks_count_as_downloaded_not_transferred() -> None:
    """Chunks complete before a crash fill the bar but add nothing to the speed."""
    tracker = ProgressTracker(10 * MiB)
    tracker.mark_done_from_resume([(("a", 0), MiB), (("a", MiB), MiB), (("a", 0), MiB)])
    assert tracker.downloaded_bytes == 2 * MiB
    assert tracker.transferred_bytes == 0
    assert tracker.record_chunk(("a", 0), MiB) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda tracker: tracker.record_chunk(("a", 0), -1),
        lambda tracker: tracker.record_transferred(-1),
        lambda tracker: tracker.mark_done_from_resume([(("a", 0), -1)]),
    ],
)
def test_negative_byte_counts_are_refused(call: Callable[[ProgressTracker], object]) -> None:
    """Negative byte counts are caller bugs and change nothing."""
    tracker = ProgressTracker(MiB)
    with pytest.raises(ValueError, match=r"^byte count must not be negative, got -1$"):
        call(tracker)
    assert (tracker.downloaded_bytes, tracker.transferred_bytes) == (0, 0)


def test_negative_total_is_refused() -> None:
    """A tracker cannot expect a negative number of bytes."""
    with pytest.raises(ValueError, match=r"^total_bytes must not be negative, got -5$"):
        ProgressTracker(-5)


# --- sampler ----------------------------------------------------------------------------


def test_defaults_are_half_a_second_and_three_seconds() -> None:
    """The sampler ticks twice a second and smooths over three seconds by default."""
    assert DEFAULT_SAMPLE_INTERVAL == 0.5
    assert DEFAULT_SPEED_WINDOW == 3.0


def test_initial_snapshot_is_zero_speed() -> None:
    """The first call is due at once and reports 0 B/s with no ETA."""
    tracker = ProgressTracker(100 * MiB)
    tracker.record_transferred(5 * MiB)
    tracker.record_chunk(("a", 0), 5 * MiB)
    sampler = ProgressSampler(tracker)
    assert sampler.next_due is None
    assert sampler.due(1000.0)
    assert sampler.sample(1000.0) == ProgressSnapshot(5 * MiB, 100 * MiB, 0.0, None)
    assert sampler.next_due == 1000.5


def test_ticks_follow_the_interval_grid() -> None:
    """After the initial sample, a tick is due every 0.5 s and not before."""
    sampler = ProgressSampler(ProgressTracker(MiB))
    sampler.sample(10.0)
    assert not sampler.due(10.25)
    assert not sampler.due(10.499)
    assert sampler.due(10.5)
    sampler.sample(10.5)
    assert sampler.next_due == 11.0
    sampler.sample(11.125)  # a late tick keeps the grid
    assert sampler.next_due == 11.5


def test_a_stall_yields_one_sample_not_a_burst() -> None:
    """After the shell was blocked for 3 s, one sample is due, then the grid resumes."""
    sampler = ProgressSampler(ProgressTracker(MiB))
    sampler.sample(0.0)
    emitted = 0
    now = 3.2
    while sampler.due(now):
        sampler.sample(now)
        emitted += 1
    assert emitted == 1
    assert sampler.next_due == 3.5
    assert not sampler.due(3.4)


def test_speed_and_eta_over_a_steady_transfer_then_a_stall() -> None:
    """Exact speeds (sliding 3 s window) and ETAs: steady 1 MiB per tick, then silence."""
    tracker = ProgressTracker(100 * MiB)
    sampler = ProgressSampler(tracker)
    assert sampler.sample(0.0) == ProgressSnapshot(0, 100 * MiB, 0.0, None)
    for tick in range(1, 8):  # t = 0.5 .. 3.5, 1 MiB arrives before each tick
        tracker.record_transferred(MiB)
        tracker.record_chunk(("a", tick), MiB)
        snapshot = sampler.sample(tick * 0.5)
        assert snapshot == ProgressSnapshot(
            tick * MiB, 100 * MiB, 2.0 * MiB, (100 - tick) * MiB / (2.0 * MiB)
        )
    # Silence from 3.5 on; the shell is blocked until 5.0. Reference is the 2.0 sample.
    assert sampler.sample(5.0) == ProgressSnapshot(7 * MiB, 100 * MiB, 1.0 * MiB, 93.0)
    # Reference is the 2.5 sample (5 MiB): 2 MiB over 3 s.
    speed = (7 * MiB - 5 * MiB) / 3.0
    assert sampler.sample(5.5) == ProgressSnapshot(7 * MiB, 100 * MiB, speed, 93 * MiB / speed)
    # Three seconds after the last byte the window holds no traffic.
    assert sampler.sample(8.5) == ProgressSnapshot(7 * MiB, 100 * MiB, 0.0, None)


def test_speed_counts_retry_waste_but_progress_does_not() -> None:
    """A retried chunk moves the speed (wire bytes) but not the downloaded bytes."""
    tracker = ProgressTracker(10 * MiB)
    sampler = ProgressSampler(tracker)
    sampler.sample(0.0)
    for _ in range(2):
        tracker.record_transferred(MiB)
        tracker.record_chunk(("a", 0), MiB)
    assert sampler.sample(0.5) == ProgressSnapshot(MiB, 10 * MiB, 4.0 * MiB, 9 * MiB / (4.0 * MiB))


def test_resume_does_not_show_as_speed() -> None:
    """Bytes found complete on resume fill the bar with no burst of speed."""
    tracker = ProgressTracker(10 * MiB)
    sampler = ProgressSampler(tracker)
    sampler.sample(0.0)
    tracker.mark_done_from_resume([(("a", 0), 4 * MiB)])
    assert sampler.sample(0.5) == ProgressSnapshot(4 * MiB, 10 * MiB, 0.0, None)


def test_final_sample_on_demand() -> None:
    """A final snapshot may be taken off the grid and reports the closing state."""
    tracker = ProgressTracker(2 * MiB)
    sampler = ProgressSampler(tracker)
    sampler.sample(0.0)
    tracker.record_transferred(2 * MiB)
    tracker.record_chunk(("a", 0), 2 * MiB)
    assert not sampler.due(0.25)
    assert sampler.sample(0.25) == ProgressSnapshot(2 * MiB, 2 * MiB, 8.0 * MiB, 0.0)


def test_complete_download_has_zero_eta_even_without_speed() -> None:
    """When nothing remains the ETA is 0, whatever the speed."""
    tracker = ProgressTracker(0)
    sampler = ProgressSampler(tracker)
    assert sampler.sample(0.0) == ProgressSnapshot(0, 0, 0.0, 0.0)


def test_sample_with_no_elapsed_time_keeps_the_last_speed() -> None:
    """A sample at the same instant as its window reference cannot measure speed; the
    previous speed is kept, and later samples measure from the reference again."""
    tracker = ProgressTracker(10 * MiB)
    sampler = ProgressSampler(tracker)
    sampler.sample(0.0)
    tracker.record_transferred(MiB)
    assert sampler.sample(0.0).bytes_per_second == 0.0
    tracker.record_transferred(MiB)
    assert sampler.sample(0.5).bytes_per_second == 4.0 * MiB


def test_sample_count_cap_shortens_the_window() -> None:
    """Sampling far more often than the interval keeps at most MAX_SPEED_SAMPLES samples:
    speed is then measured over the last MAX_SPEED_SAMPLES samples."""
    tracker = ProgressTracker(10_000 * MiB)
    sampler = ProgressSampler(tracker)
    step = 1 / 1024
    sampler.sample(0.0)
    for index in range(1, 200):
        tracker.record_transferred(index)  # growing amounts, so the reference matters
        snapshot = sampler.sample(index * step)
    first_kept = 199 - MAX_SPEED_SAMPLES
    transferred_since = sum(range(first_kept + 1, 200))
    assert snapshot.bytes_per_second == transferred_since / (MAX_SPEED_SAMPLES * step)


def test_time_going_backwards_is_refused() -> None:
    """The injected clock must be monotonic."""
    sampler = ProgressSampler(ProgressTracker(MiB))
    sampler.sample(5.0)
    with pytest.raises(ValueError, match=r"^time went backwards: 4\.0 < 5\.0$"):
        sampler.sample(4.0)


@pytest.mark.parametrize(
    ("interval", "window", "message"),
    [
        (0.0, 3.0, r"^interval must be positive, got 0\.0$"),
        (0.5, -1.0, r"^window must be positive, got -1\.0$"),
    ],
)
def test_sampler_parameters_must_be_positive(interval: float, window: float, message: str) -> None:
    """A zero interval would spin; a non-positive window measures nothing."""
    with pytest.raises(ValueError, match=message):
        ProgressSampler(ProgressTracker(MiB), interval=interval, window=window)


def test_a_smoothed_rate_stays_steady_between_slow_landings() -> None:
    """On a slow link whose bytes land in 1 MiB steps every 3.5 s, the wire window
    keeps the rate above zero between landings instead of flipping to 0."""
    rate = SmoothedRate(WIRE_RATE_WINDOW)
    rates = []
    received = 0
    for tick in range(60):
        now = tick * 0.5
        if tick and tick % 7 == 0:
            received += MiB
        rates.append(rate.sample(now, received))
    settled = rates[int(WIRE_RATE_WINDOW / 0.5) + 7 :]
    assert min(settled) > 0
    assert max(settled) / min(settled) < 2


def test_a_smoothed_rate_refuses_time_going_backwards() -> None:
    """A sample earlier than the last one is a caller's bug, said with both times."""
    rate = SmoothedRate(1.0)
    rate.sample(5.0, 0)
    with pytest.raises(ValueError, match=r"^time went backwards: 4\.0 < 5\.0$"):
        rate.sample(4.0, 10)
