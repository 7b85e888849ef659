"""Upload shaping: a byte rate limiter, rate meters and fair upload slots, sans-IO.

Theory of operation
-------------------
Every decision takes ``now`` and reads no clock; the data server
(``seeding/dataserver``) applies them around each chunk it sends.

* **Rate limit.** :class:`TokenBucket` holds byte tokens refilled at ``rate`` a
  second up to ``burst``. :meth:`TokenBucket.take` charges a chunk's bytes and
  says how long the shell waits before sending it; the bucket may run into debt,
  so a chunk larger than the burst is still sent, and the time it costs is paid
  by the waits that follow. Over any stretch the bytes sent stay under
  ``rate * time + burst``. A rate of :data:`UNLIMITED` never waits. The rate can
  change at any moment (:meth:`TokenBucket.set_rate`): the tokens earned so far
  stay, the debt is repaid at the new rate.
* **Effective limit.** :func:`effective_limit` combines the player's upload limit
  with the gaming-now cap: while a game launched here runs, the lower of the two
  applies (:data:`UNLIMITED` counts as no bound).
* **Rates.** :class:`RateMeter` counts bytes in fixed time slices over a sliding
  window; :class:`PeerRates` keeps one per peer (a bounded number of peers).
* **Slots.** :class:`UploadScheduler` lets at most ``slots`` downloaders be served
  at once. A peer that asks to send a chunk holds a slot or waits in line. The
  line is ordered by when a peer joined it, with peers that themselves serve
  others moved ahead by :data:`SERVER_PREFERENCE` seconds (a bounded head
  start, so nobody waits forever). A holder whose ``time_slice`` is spent while
  others wait gets no new chunk; once its chunks in flight are done it goes to
  the back of the line and the first in line takes the slot. A holder with
  nothing in flight for ``idle_grace`` seconds gives its slot up.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

_MIB = 1024 * 1024

UNLIMITED = 0
"""A limit of zero bytes a second means no limit."""


# Bounds of a limit a person types (bytes a second). 1 MiB/s is the slowest at
# which every paced piece of every connection of the slots still moves well within
# a client's idle timeout; 10 GiB/s is above any LAN link.
MIN_LIMIT = 1024 * 1024
MAX_LIMIT = 10 * 1024 * 1024 * 1024


# Uploads while a game launched here runs. A 1 Gbit link carries about 119 MiB/s;
# 20 MiB/s is a sixth of it, so the send queue of the network card stays short and
# a game's own packets (a few hundred kbit/s, latency-bound) see no queueing delay,
# while a 16 MiB chunk still leaves in under a second.
DEFAULT_GAMING_CAP = 20 * 1024 * 1024


# The burst of a bucket: a quarter second of its rate. Enough that a chunk or two
# go without waiting, small enough that a limit holds over a second.
BURST_SECONDS = 0.25


def check_limit(value: int, what: str) -> int:
    """``value`` (bytes a second) when it is :data:`UNLIMITED` or within the bounds."""
    if value == UNLIMITED or MIN_LIMIT <= value <= MAX_LIMIT:
        return value
    raise ValueError(
        f"the {what} must be 0 (unlimited) or between {MIN_LIMIT // _MIB} and"
        f" {MAX_LIMIT // _MIB} MiB/s"
    )


def effective_limit(upload_limit: int, gaming_cap: int, *, gaming: bool) -> int:
    """The upload limit in force: the lower bound of the two while a game runs."""
    if not gaming or gaming_cap == UNLIMITED:
        return upload_limit
    if upload_limit == UNLIMITED:
        return gaming_cap
    return min(upload_limit, gaming_cap)


class TokenBucket:
    """A byte rate limiter; see the module docstring."""

    def __init__(self, rate: int, now: float) -> None:
        if rate < 0:
            raise ValueError("the rate must not be negative")
        self._rate = rate
        self._tokens = self._burst()
        self._at = now

    @property
    def rate(self) -> int:
        return self._rate

    def _burst(self) -> float:
        return self._rate * BURST_SECONDS

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._at)
        self._tokens = min(self._burst(), self._tokens + elapsed * self._rate)
        self._at = max(self._at, now)

    def set_rate(self, rate: int, now: float) -> None:
        """Change the rate from ``now`` on; what was earned before stays."""
        if rate < 0:
            raise ValueError("the rate must not be negative")
        if rate == self._rate:
            return
        was_unlimited = self._rate == UNLIMITED
        self._refill(now)
        self._rate = rate
        # Leaving "unlimited" starts with a full bucket, as a new one does.
        self._tokens = self._burst() if was_unlimited else min(self._tokens, self._burst())

    def take(self, nbytes: int, now: float) -> float:
        """Charge ``nbytes`` sent at ``now``; the seconds to wait before sending them."""
        if self._rate == UNLIMITED:
            return 0.0
        self._refill(now)
        self._tokens -= nbytes
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


# A rate is the bytes of the last few seconds: short enough to follow a change
# within a UI refresh or two, long enough to smooth chunk-sized steps.
RATE_WINDOW = 4.0
RATE_SLICES = 8


class RateMeter:
    """Bytes a second over the last ``window`` seconds, counted in fixed slices."""

    def __init__(self, window: float = RATE_WINDOW, slices: int = RATE_SLICES) -> None:
        if window <= 0 or slices < 1:
            raise ValueError("window and slices must be positive")
        self._window = window
        self._width = window / slices
        self._slices: collections.deque[tuple[int, int]] = collections.deque()  # (index, bytes)
        self._total = 0

    def _index(self, now: float) -> int:
        return math.floor(now / self._width)

    def _prune(self, now: float) -> None:
        oldest = self._index(now) - round(self._window / self._width) + 1
        while self._slices and self._slices[0][0] < oldest:
            self._total -= self._slices.popleft()[1]

    def add(self, nbytes: int, now: float) -> None:
        """Count ``nbytes`` moved at ``now``."""
        self._prune(now)
        index = self._index(now)
        if self._slices and self._slices[-1][0] == index:
            self._slices[-1] = (index, self._slices[-1][1] + nbytes)
        elif self._slices and self._slices[-1][0] > index:  # a clock step back: add to the last
            self._slices[-1] = (self._slices[-1][0], self._slices[-1][1] + nbytes)
        else:
            self._slices.append((index, nbytes))
        self._total += nbytes

    def rate(self, now: float) -> float:
        """Bytes a second over the window that ends at ``now``."""
        self._prune(now)
        return self._total / self._window

    def idle(self, now: float) -> bool:
        """Nothing was counted within the window."""
        self._prune(now)
        return not self._slices


# Peers whose rates are kept: a large party with margin. The one idle longest
# makes room for a new one.
MAX_METERED_PEERS = 512


class PeerRates:
    """One :class:`RateMeter` per peer."""

    def __init__(self, max_peers: int = MAX_METERED_PEERS) -> None:
        self._max = max_peers
        self._meters: dict[str, RateMeter] = {}
        self._last: dict[str, float] = {}

    def add(self, peer_id: str, nbytes: int, now: float) -> None:
        meter = self._meters.get(peer_id)
        if meter is None:
            if len(self._meters) >= self._max:
                stale = min(self._last, key=self._last.__getitem__)
                del self._meters[stale], self._last[stale]
            meter = self._meters[peer_id] = RateMeter()
        meter.add(nbytes, now)
        self._last[peer_id] = now

    def rates(self, now: float) -> dict[str, float]:
        """Each peer with bytes moved in the window, and its rate."""
        return {
            peer: meter.rate(now) for peer, meter in self._meters.items() if not meter.idle(now)
        }

    def total(self, now: float) -> float:
        return sum(self.rates(now).values())


# Downloaders served at once. A seeder's link is shared by its slots; four keeps
# each above a quarter of a gigabit while rotation lets everybody in quickly.
UPLOAD_SLOTS = 4


# How long a slot is held while others wait: long enough that a few chunks go
# (a chunk is a few MiB, a fraction of a second on a LAN), short enough that a
# waiting downloader starts within seconds.
UPLOAD_TIME_SLICE = 5.0


# A holder with nothing in flight this long gives its slot up: far above the gap
# between a chunk and the pipelined request after it.
UPLOAD_IDLE_GRACE = 1.0


# The head start in line of a peer that serves others (seconds of waiting): one
# slice, so it goes before those who joined up to a slice earlier, never forever.
SERVER_PREFERENCE = UPLOAD_TIME_SLICE


@dataclass(slots=True)
class _Hold:
    since: float
    last_active: float
    in_flight: int = 0


class UploadScheduler:
    """Fair upload slots; see the module docstring."""

    def __init__(
        self,
        *,
        slots: int = UPLOAD_SLOTS,
        time_slice: float = UPLOAD_TIME_SLICE,
        idle_grace: float = UPLOAD_IDLE_GRACE,
        preference: float = SERVER_PREFERENCE,
    ) -> None:
        if slots < 1 or time_slice <= 0 or idle_grace <= 0 or preference < 0:
            raise ValueError("slots, time slice and idle grace must be positive")
        self._slots = slots
        self._slice = time_slice
        self._grace = idle_grace
        self._preference = preference
        self._holders: dict[str, _Hold] = {}
        self._waiting: dict[str, float] = {}  # peer -> its place in line (lower goes first)
        self._draining: dict[str, int] = {}  # yielded holders' chunks still in flight

    @property
    def holders(self) -> frozenset[str]:
        """The peers being served now."""
        return frozenset(self._holders)

    @property
    def waiting(self) -> tuple[str, ...]:
        """The peers in line, first first."""
        return tuple(sorted(self._waiting, key=self._waiting.__getitem__))

    def request(self, peer_id: str, now: float, *, serves_others: bool = False) -> bool:
        """``peer_id`` wants to send a chunk at ``now``: True when it may (then call
        :meth:`finished` once it is sent), False when it waits in line."""
        self._settle(now)
        hold = self._holders.get(peer_id)
        if hold is None:
            if peer_id not in self._waiting:
                self._waiting[peer_id] = now - (self._preference if serves_others else 0.0)
            self._fill(now)
            hold = self._holders.get(peer_id)
            if hold is None:
                return False
        elif self._waiting and now - hold.since >= self._slice:
            return False  # it yields: _settle moves it to the line once its chunks are done
        hold.in_flight += 1
        hold.last_active = now
        return True

    def finished(self, peer_id: str, now: float) -> None:
        """A chunk granted to ``peer_id`` was sent (or failed)."""
        hold = self._holders.get(peer_id)
        if hold is not None:
            hold.in_flight = max(0, hold.in_flight - 1)
            hold.last_active = now
        elif peer_id in self._draining:
            self._draining[peer_id] -= 1
            if self._draining[peer_id] <= 0:
                del self._draining[peer_id]
        self._settle(now)

    def leave(self, peer_id: str, now: float) -> None:
        """``peer_id`` has no connection left: it holds nothing and waits for nothing."""
        hold = self._holders.pop(peer_id, None)
        if hold is not None and hold.in_flight:
            self._draining[peer_id] = self._draining.get(peer_id, 0) + hold.in_flight
        self._waiting.pop(peer_id, None)
        self._settle(now)

    def next_change(self, now: float) -> float | None:
        """Seconds until a slot may free up by itself (a slice ends, a holder idles)."""
        if not self._waiting:
            return None
        moments = []
        for hold in self._holders.values():
            moments.append(hold.since + self._slice)
            if not hold.in_flight:
                moments.append(hold.last_active + self._grace)
        if not moments:
            return None
        return max(0.0, min(moments) - now)

    def _settle(self, now: float) -> None:
        for peer_id, hold in list(self._holders.items()):
            if hold.in_flight:
                continue
            if now - hold.last_active >= self._grace:
                del self._holders[peer_id]
            elif self._waiting and now - hold.since >= self._slice:
                del self._holders[peer_id]
                self._waiting[peer_id] = now
        self._fill(now)

    def _fill(self, now: float) -> None:
        busy = len(self._holders) + len(self._draining)
        for peer_id in self.waiting:
            if busy >= self._slots:
                break
            del self._waiting[peer_id]
            self._holders[peer_id] = _Hold(since=now, last_active=now)
            busy += 1
