"""Collecting published events and waiting for one, without sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from lanspread.runtime.eventbus import Subscription
from lanspread.runtime.events import Event
from lanspread.runtime.runtime import PeerRuntime
from tests.support.waiting import DEFAULT_TIMEOUT, wait_until

E = TypeVar("E", bound=Event)


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
        within: float = DEFAULT_TIMEOUT,
    ) -> E:
        """The first event of ``kind`` at index >= ``after`` that satisfies ``predicate``."""

        def find() -> E | None:
            for event in self.events[after:]:
                if isinstance(event, kind) and predicate(event):
                    return event
            return None

        def what() -> str:
            seen = [type(event).__name__ for event in self.events[after:]]
            return f"a matching {kind.__name__}; saw {seen}"

        return await wait_until(find, what, timeout=within, changed=self._changed)


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
        within: float = DEFAULT_TIMEOUT,
    ) -> E:
        """The first event of ``kind`` satisfying ``where`` (already seen or coming)."""

        def find() -> E | None:
            for event in self.seen:
                if isinstance(event, kind) and where(event):
                    return event
            return None

        def what() -> str:
            names = [type(event).__name__ for event in self.seen[-30:]]
            return f"a matching {kind.__name__}; last events: {names}"

        return await wait_until(find, what, timeout=within, changed=self._changed)

    async def until(
        self, condition: Callable[[], object], what: str, *, within: float = DEFAULT_TIMEOUT
    ) -> None:
        """Wait until ``condition`` (a look at the runtime's state) holds.

        It is looked at again after every event the runtime publishes: the runtime
        publishes one after each change of its state, so no polling is needed.
        """
        await wait_until(condition, what, timeout=within, changed=self._changed)

    def index(self, event: Event) -> int:
        return self.seen.index(event)
