"""Fan-out of runtime events to any number of subscribers.

Each subscriber owns an unbounded queue, so a slow consumer never blocks the
runtime; :meth:`EventBus.close` ends every subscription after the events already
published have been delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lanspread.runtime.events import Event

_CLOSED = object()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[object]] = set()
        self._closed = False

    def publish(self, event: Event) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    def close(self) -> None:
        self._closed = True
        for queue in self._subscribers:
            queue.put_nowait(_CLOSED)

    def subscribe(self) -> Subscription:
        """A subscription that sees every event published from now on."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(_CLOSED)
        self._subscribers.add(queue)
        return Subscription(self, queue)

    def _unsubscribe(self, queue: asyncio.Queue[object]) -> None:
        self._subscribers.discard(queue)


class Subscription:
    def __init__(self, bus: EventBus, queue: asyncio.Queue[object]) -> None:
        self._bus = bus
        self._queue = queue

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        try:
            while True:
                item = await self._queue.get()
                if item is _CLOSED:
                    return
                assert isinstance(item, Event)
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._bus._unsubscribe(self._queue)
