"""Download progress: byte accounting and a sampler that turns it into snapshots.

:class:`ProgressTracker` keeps two counters. ``downloaded_bytes`` drives the
progress bar: each chunk counts once per ``(path, offset)`` key, so a retried
chunk never counts twice, and the total is clamped to the expected size.
``transferred_bytes`` drives the speed: every byte off the wire counts, retry
waste included, because "is the link doing anything right now" is what a
player wants to know. Chunks found complete after a crash count as downloaded
but not as transferred, so a resumed download does not show a burst of speed.

:class:`ProgressSampler` decides when to emit a :class:`ProgressSnapshot` and
what it says; the shell owns the one timer and passes ``now`` in. It emits an
initial 0 B/s snapshot, then one per tick on a fixed grid of ``interval``
seconds from the first sample. Missed ticks are skipped, never caught up: after
the shell was blocked for 3 s the next call yields one snapshot and the grid
resumes at the next multiple of the interval. A final snapshot can be taken at
any time with :meth:`ProgressSampler.sample`.

Speed is the average over a sliding window: the bytes transferred since the
newest earlier sample at least ``window`` seconds old (or the oldest sample
while the download is younger than the window), divided by the time between
the two. It follows a change within ``window`` seconds and drops to zero after
``window`` seconds without traffic. ETA is remaining bytes over that speed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from lanspread.core.planning import ChunkKey

# Two UI updates a second look live without flooding the event stream.
DEFAULT_SAMPLE_INTERVAL = 0.5
# Long enough to smooth chunk-sized bursts of a pipelined transfer, short enough
# that the shown speed follows a peer leaving within a few seconds.
DEFAULT_SPEED_WINDOW = 3.0
# Samples kept for the window; on the grid only window / interval + 1 are needed,
# the cap only matters when a caller asks for samples far more often.
MAX_SPEED_SAMPLES = 64
# The speed a player reads, over the bytes received on the wire (in flight
# included): a 1 MiB receive buffer on a 300 KB/s link lands every ~3.5 s, so a
# window under that flips between a value and 0; ten seconds hold three of them.
WIRE_RATE_WINDOW = 10.0


class ProgressTracker:
    """Counts downloaded (deduplicated) and transferred (raw) bytes of one download.

    Not thread-safe: feed it from the event loop only.
    """

    def __init__(self, total_bytes: int) -> None:
        if total_bytes < 0:
            raise ValueError(f"total_bytes must not be negative, got {total_bytes}")
        self._total = total_bytes
        self._counted: set[ChunkKey] = set()
        self._counted_bytes = 0
        self._transferred = 0

    @property
    def total_bytes(self) -> int:
        return self._total

    @property
    def downloaded_bytes(self) -> int:
        """Bytes of distinct completed chunks, never above ``total_bytes``."""
        return min(self._counted_bytes, self._total)

    @property
    def transferred_bytes(self) -> int:
        """Every byte received this run, retries included; not clamped."""
        return self._transferred

    def record_chunk(self, key: ChunkKey, length: int) -> int:
        """Count a verified chunk once; returns the bytes newly counted (0 for a repeat)."""
        _check_length(length)
        if key in self._counted:
            return 0
        self._counted.add(key)
        self._counted_bytes += length
        return length

    def record_transferred(self, n: int) -> None:
        """Count ``n`` bytes received from the wire, whatever becomes of them."""
        _check_length(n)
        self._transferred += n

    def mark_done_from_resume(self, keys_with_lengths: Iterable[tuple[ChunkKey, int]]) -> None:
        """Count chunks a previous run completed: downloaded, but not transferred now."""
        for key, length in keys_with_lengths:
            self.record_chunk(key, length)


def _check_length(n: int) -> None:
    if n < 0:
        raise ValueError(f"byte count must not be negative, got {n}")


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    downloaded_bytes: int
    total_bytes: int
    bytes_per_second: float
    """Wire speed over the sliding window (retry waste included)."""
    eta_seconds: float | None
    """Remaining bytes over the speed; ``0.0`` when complete, ``None`` when speed is 0."""


class ProgressSampler:
    """When to sample a :class:`ProgressTracker`, and the smoothed speed and ETA."""

    def __init__(
        self,
        tracker: ProgressTracker,
        interval: float = DEFAULT_SAMPLE_INTERVAL,
        window: float = DEFAULT_SPEED_WINDOW,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self._tracker = tracker
        self._interval = interval
        self._start: float | None = None
        self._next_due: float | None = None
        self._rate = SmoothedRate(window)
        self._speed = 0.0

    @property
    def next_due(self) -> float | None:
        """When the next tick is due; ``None`` before the initial sample (due at once)."""
        return self._next_due

    def due(self, now: float) -> bool:
        """True when a snapshot should be emitted at ``now``."""
        return self._next_due is None or now >= self._next_due

    def sample(self, now: float) -> ProgressSnapshot:
        """Take a snapshot at ``now`` and move the tick grid past ``now``.

        Call it when :meth:`due` says so, and once more at the end for the final
        snapshot. ``now`` must not go backwards.
        """
        if self._start is None:
            self._start = now
        self._speed = self._rate.sample(now, self._tracker.transferred_bytes)
        ticks_passed = math.floor((now - self._start) / self._interval)
        self._next_due = self._start + (ticks_passed + 1) * self._interval
        return self._snapshot()

    def _snapshot(self) -> ProgressSnapshot:
        downloaded = self._tracker.downloaded_bytes
        total = self._tracker.total_bytes
        remaining = total - downloaded
        if remaining == 0:
            eta: float | None = 0.0
        elif self._speed > 0:
            eta = remaining / self._speed
        else:
            eta = None
        return ProgressSnapshot(
            downloaded_bytes=downloaded,
            total_bytes=total,
            bytes_per_second=self._speed,
            eta_seconds=eta,
        )


class SmoothedRate:
    """Bytes a second of a growing byte count, averaged over a sliding window.

    The average runs from the newest earlier sample at least ``window`` seconds
    old (or the oldest sample while the count is younger than the window) to now.
    The first sample says 0; a sample at the same instant repeats the last rate.
    """

    def __init__(self, window: float) -> None:
        if not window > 0:
            raise ValueError(f"window must be positive, got {window}")
        self._window = window
        self._history: deque[tuple[float, int]] = deque(maxlen=MAX_SPEED_SAMPLES)
        self._rate = 0.0

    def sample(self, now: float, total: int) -> float:
        """Record ``total`` bytes at ``now`` (never earlier than the last sample); the rate."""
        if self._history and now < self._history[-1][0]:
            raise ValueError(f"time went backwards: {now} < {self._history[-1][0]}")
        if self._history:
            reference_time, reference_bytes = self._reference(now)
            elapsed = now - reference_time
            if elapsed > 0:
                self._rate = (total - reference_bytes) / elapsed
        self._history.append((now, total))
        cutoff = now - self._window
        # Samples older than the one the next window starts from are not needed.
        while len(self._history) > 1 and self._history[1][0] <= cutoff:
            self._history.popleft()
        return self._rate

    def _reference(self, now: float) -> tuple[float, int]:
        """The newest sample at least ``window`` old, else the oldest one kept."""
        cutoff = now - self._window
        reference = self._history[0]
        for entry in self._history:
            if entry[0] > cutoff:
                break
            reference = entry
        return reference
