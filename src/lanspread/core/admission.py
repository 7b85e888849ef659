"""Admission of connections from strangers: per-address and total slot caps, sans-IO.

Theory of operation
-------------------
Anyone on the switch can open TCP connections to a peer's listeners. Before a
connection has proven anything it may only hold a *slot* in a :class:`SlotTable`,
which caps the slots of one source address and the slots of everybody together.
The shells (``net/server``, ``net/dataplane``) ask :meth:`SlotTable.admit` right
after ``accept`` and before any TLS or read, close the socket at once when the
table refuses, and :meth:`SlotTable.release` the slot when the connection ends.

Two policies for a full table:

* **refuse** (``evict_when_full=False``): the newcomer is refused. Right for
  established links, where the holders have proven themselves.
* **evict** (``evict_when_full=True``): the newcomer is admitted and the oldest
  slot of the address holding the most slots is evicted (the shell closes that
  connection). Right for pending handshakes: an honest handshake completes in
  milliseconds, so a table full of slots that are seconds old is a flood, and
  evicting from the biggest holder means a flood from many addresses cannot lock
  an honest newcomer out, it only churns its own connections.

The per-address cap is never bypassed: an address at its cap is refused whatever
the policy. The table reads no clock: :meth:`~SlotTable.admit` takes ``now``.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import itertools
from dataclasses import dataclass

from lanspread.core.refusal import Refused

# Spellings of source addresses remembered by normalize_address: parsing one costs
# more than the rest of an admission, and a flood repeats a few addresses thousands
# of times a second. Bounded (least recently used goes) since strangers pick them.
NORMALIZED_ADDRESS_CACHE = 4096


class AdmissionRefusal(enum.Enum):
    ADDRESS_FULL = "address-full"
    """The source address already holds its cap of slots."""
    TABLE_FULL = "table-full"
    """Every slot is taken and the table does not evict."""


@dataclass(frozen=True, slots=True)
class Admitted:
    slot: int
    """The handle to :meth:`SlotTable.release` when the connection ends."""
    evicted: int | None
    """A slot that was evicted to make room; the shell closes its connection."""


@dataclass(frozen=True, slots=True)
class _Slot:
    address: str
    since: float


@functools.lru_cache(maxsize=NORMALIZED_ADDRESS_CACHE)
def normalize_address(host: str) -> str:
    """One spelling per source address: an IPv4-mapped IPv6 address is its IPv4 address."""
    text = host.partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return host.lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class SlotTable:
    """Slots held by source addresses; see the module docstring."""

    def __init__(self, *, per_address: int, total: int, evict_when_full: bool) -> None:
        if per_address < 1 or total < 1:
            raise ValueError("both caps must be positive")
        self._per_address = per_address
        self._total = total
        self._evict = evict_when_full
        self._slots: dict[int, _Slot] = {}
        self._held: dict[str, int] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._slots)

    def held_by(self, address: str) -> int:
        """Slots ``address`` holds now."""
        return self._held.get(normalize_address(address), 0)

    def admit(self, address: str, now: float) -> Admitted | Refused[AdmissionRefusal]:
        """A slot for a connection from ``address`` accepted at ``now``, or why not."""
        address = normalize_address(address)
        if self._held.get(address, 0) >= self._per_address:
            return Refused(AdmissionRefusal.ADDRESS_FULL)
        evicted: int | None = None
        if len(self._slots) >= self._total:
            if not self._evict:
                return Refused(AdmissionRefusal.TABLE_FULL)
            evicted = self._victim()
            self.release(evicted)
        slot = next(self._ids)
        self._slots[slot] = _Slot(address, now)
        self._held[address] = self._held.get(address, 0) + 1
        return Admitted(slot, evicted)

    def release(self, slot: int) -> bool:
        """Free ``slot``; False when it was already free (evicted or released)."""
        held = self._slots.pop(slot, None)
        if held is None:
            return False
        remaining = self._held[held.address] - 1
        if remaining:
            self._held[held.address] = remaining
        else:
            del self._held[held.address]
        return True

    def _victim(self) -> int:
        """The oldest slot among those of the addresses that hold the most slots."""
        biggest = max(self._held.values())
        candidates = (
            (held.since, slot)
            for slot, held in self._slots.items()
            if self._held[held.address] == biggest
        )
        return min(candidates)[1]


def refilled(tokens: float, since: float, now: float, *, rate: float, burst: float) -> float:
    """The ``tokens`` a bucket held at ``since``, refilled at ``rate`` a second up to
    ``burst`` by ``now``; a clock that reads earlier than ``since`` adds nothing."""
    return min(burst, tokens + max(0.0, now - since) * rate)


class RequestBudget:
    """Requests per source address: one token bucket each, shared by all its links.

    :meth:`delay` takes a token for a request that just arrived and says how long
    the shell waits before serving it (and before reading that link's next frame):
    zero within the budget, else the time the bucket needs to pay its debt. So a
    flood of cheap requests from one machine, over however many links, costs at
    most ``rate`` answers a second, and only its own links slow down. At most
    ``max_addresses`` buckets are kept; a new address evicts the one idle longest
    (a full bucket, usually, which is what a new one starts as anyway).
    """

    def __init__(self, *, rate: float, burst: float, max_addresses: int) -> None:
        if rate <= 0 or burst < 1 or max_addresses < 1:
            raise ValueError("rate, burst and max_addresses must be positive")
        self._rate = rate
        self._burst = burst
        self._max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def delay(self, address: str, now: float) -> float:
        """Take a token for a request from ``address`` at ``now``; the seconds to wait first."""
        address = normalize_address(address)
        held = self._buckets.pop(address, None)
        if held is None:
            if len(self._buckets) >= self._max_addresses:
                idle = min(self._buckets, key=lambda key: self._buckets[key][1])
                del self._buckets[idle]
            tokens = self._burst
        else:
            tokens, at = held
            tokens = refilled(tokens, at, now, rate=self._rate, burst=self._burst)
        tokens -= 1
        self._buckets[address] = (tokens, now)
        return 0.0 if tokens >= 0 else -tokens / self._rate
