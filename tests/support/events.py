"""Collecting published events and waiting for one, without sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from lanspread.runtime.eventbus import Subscription
from lanspread.runtime.events import Event
from lanspread.runtime.runtime import PeerRuntime

E = TypeVar("E", bound=Event)

DEFAULT_WAIT = 10.0


class EventLog:
    """A ``publish`` callable that records events and wakes waiters."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of_type(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda _: True,
        *,
        after: int = 0,
        within: float = DEFAULT_WAIT,
    ) -> E:
        """The first event of ``kind`` at index >= ``after`` that satisfies ``predicate``."""

        def find() -> E | None:
            for event in self.events[after:]:
                if isinstance(event, kind) and predicate(event):
                    return event
            return None

        async def wait() -> E:
            # No await between find() and clear(): a publish cannot slip in unseen.
            while (found := find()) is None:
                self._changed.clear()
                await self._changed.wait()
            return found

        try:
            return await asyncio.wait_for(wait(), within)
        except TimeoutError:
            seen = [type(event).__name__ for event in self.events[after:]]
            raise AssertionError(
                f"no {kind.__name__} matching within {within}s; saw {seen}"
            ) from None


class RuntimeEvents:
    """Every event a runtime publishes from the moment this is created, with waits."""

    def __init__(self, runtime: PeerRuntime) -> None:
        self.seen: list[Event] = []
        self._changed = asyncio.Event()
        # Subscribe now, not in the task: events published before it runs must count.
        self._task = asyncio.create_task(self._collect(runtime.subscribe()))

    async def _collect(self, subscription: Subscription) -> None:
        async for event in subscription:
            self.seen.append(event)
            self._changed.set()

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.seen if isinstance(event, kind)]

    async def first(
        self,
        kind: type[E],
        where: Callable[[E], bool] = lambda _: True,
        *,
        within: float = DEFAULT_WAIT,
    ) -> E:
        """The first event of ``kind`` satisfying ``where`` (already seen or coming)."""

        def find() -> E | None:
            for event in self.seen:
                if isinstance(event, kind) and where(event):
                    return event
            return None

        async def wait() -> E:
            while (found := find()) is None:
                self._changed.clear()
                await self._changed.wait()
            return found

        try:
            return await asyncio.wait_for(wait(), within)
        except TimeoutError:
            names = [type(event).__name__ for event in self.seen[-30:]]
            raise AssertionError(
                f"no {kind.__name__} matching within {within}s; last events: {names}"
            ) from None

    def index(self, event: Event) -> int:
        return self.seen.index(event)
