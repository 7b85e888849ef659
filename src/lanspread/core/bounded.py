"""A table that remembers what strangers cause, oldest first, within a fixed size.

Several rules keep per-peer or per-chunk memory that a stranger can grow (fresh peer
ids, requested chunks): the steering rule's recent sends and refusal counts, the
liar record. :class:`BoundedTable` is that memory once: entries stay in the order
they were last put, a put past the capacity forgets the oldest, and
:meth:`~BoundedTable.forget_oldest_while` drops entries that aged out, which lead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedTable(Generic[K, V]):
    """At most ``capacity`` entries in the order they were last put, oldest first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a bounded table holds at least one entry, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        """The keys, oldest first."""
        return iter(self._entries)

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def pop(self, key: K) -> V | None:
        """Remove ``key``; its value, or ``None`` when it was not held."""
        return self._entries.pop(key, None)

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Hold ``value`` under ``key`` as the newest entry; the oldest entries forgotten
        to stay within the capacity, oldest first."""
        self._entries.pop(key, None)
        self._entries[key] = value
        forgotten: list[tuple[K, V]] = []
        while len(self._entries) > self._capacity:
            forgotten.append(self._entries.popitem(last=False))
        return forgotten

    def forget_oldest_while(self, stale: Callable[[V], bool]) -> int:
        """Forget entries from the oldest on while ``stale`` says so of their value;
        how many. Right where values age with their order (a time each put stamps)."""
        count = 0
        while self._entries:
            key, value = next(iter(self._entries.items()))
            if not stale(value):
                break
            del self._entries[key]
            count += 1
        return count
