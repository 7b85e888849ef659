"""Owned background jobs: every operation task has a parent and a join point.

Commands start long operations (downloads, installs, a running game) and return
at once; the operation runs as a job of the ``operations`` service's task group.
A job that fails is logged, never silently lost, and never takes siblings down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class JobRunner:
    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: asyncio.Queue[Job] = asyncio.Queue()

    def spawn(self, job: Job) -> None:
        """Run ``job`` in the service's task group (queued until the service runs)."""
        self._queue.put_nowait(job)

    async def run(self) -> None:
        """The service: start queued jobs until cancelled, then cancel and join them."""
        async with asyncio.TaskGroup() as group:
            while True:
                job = await self._queue.get()
                group.create_task(self._guarded(job))

    async def _guarded(self, job: Job) -> None:
        try:
            await job()
        except Exception:
            log.exception("%s job failed", self._name)
