"""Supervision of the runtime's long-lived services.

Every service runs as a task of the supervisor's task group, under one of three
explicit policies:

* ``REQUIRED`` (the peer server): if it fails or ends while the runtime is up, a
  ``RuntimeFailed`` event is published and the runtime is asked to stop.
* ``RESTART`` (discovery, liveness): a failure is published as
  ``ServiceRestarting`` and the service starts again after its delay.
* ``BEST_EFFORT`` (the local monitor): a failure is logged and the service stays
  down; the rest of the runtime carries on.

Cancellation is never swallowed: it is how the runtime stops its services.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lanspread.runtime.events import Event, RuntimeFailed, ServiceRestarting

log = logging.getLogger(__name__)

DEFAULT_RESTART_DELAY = 5.0


class Policy(enum.Enum):
    REQUIRED = "required"
    RESTART = "restart"
    BEST_EFFORT = "best-effort"


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    run: Callable[[], Awaitable[None]]
    policy: Policy
    restart_delay: float = DEFAULT_RESTART_DELAY


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class ServiceEnded(Exception):
    """A required service returned although the runtime had not asked it to stop."""


class Supervisor:
    def __init__(
        self,
        publish: Callable[[Event], None],
        request_stop: Callable[[], None],
    ) -> None:
        self._publish = publish
        self._request_stop = request_stop
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self, services: list[Service], stopped: asyncio.Event) -> None:
        """Run ``services`` until ``stopped`` is set, then cancel them and wait for them."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._tasks = [
                group.create_task(self._supervise(service), name=f"service:{service.name}")
                for service in services
            ]
            await stopped.wait()
            for task in self._tasks:
                task.cancel()
        self._group = None

    async def _supervise(self, service: Service) -> None:
        while True:
            try:
                await service.run()
                failure: BaseException = ServiceEnded(f"{service.name} stopped unexpectedly")
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise
                # A cancellation nobody asked for (leaked from inside the service)
                # must not make the service vanish silently.
                failure = ServiceEnded(f"{service.name} was cancelled from within")
            except Exception as exc:
                failure = exc
            if not self._handle_failure(service, failure):
                return
            await asyncio.sleep(service.restart_delay)

    def _handle_failure(self, service: Service, failure: BaseException) -> bool:
        """Apply the service's policy; True when it should be restarted."""
        message = f"{type(failure).__name__}: {failure}"
        if service.policy is Policy.REQUIRED:
            log.error("required service %s failed: %s", service.name, message, exc_info=failure)
            self._publish(RuntimeFailed(component=service.name, error=message))
            self._request_stop()
            return False
        if service.policy is Policy.RESTART:
            log.warning(
                "service %s failed, restarting in %.1fs: %s",
                service.name,
                service.restart_delay,
                message,
            )
            self._publish(
                ServiceRestarting(
                    component=service.name, error=message, delay=service.restart_delay
                )
            )
            return True
        log.warning("best-effort service %s stopped: %s", service.name, message)
        return False
