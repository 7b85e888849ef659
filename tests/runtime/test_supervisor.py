"""Service supervision: required, restart and best-effort policies."""

from __future__ import annotations

import asyncio

from lanspread.runtime.events import Event, RuntimeFailed, ServiceRestarting
from lanspread.runtime.supervisor import Policy, Service, Supervisor

WAIT = 5.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.stop = asyncio.Event()

    def publish(self, event: Event) -> None:
        self.events.append(event)


async def forever() -> None:
    await asyncio.Event().wait()


async def test_required_failure_publishes_and_stops() -> None:
    """A required service that raises publishes RuntimeFailed and asks the runtime to stop."""
    recorder = Recorder()

    async def broken() -> None:
        raise OSError("port vanished")

    supervisor = Supervisor(recorder.publish, recorder.stop.set)
    services = [
        Service("server", broken, Policy.REQUIRED),
        Service("other", forever, Policy.RESTART),
    ]
    await asyncio.wait_for(supervisor.run(services, recorder.stop), WAIT)
    assert recorder.events == [RuntimeFailed(component="server", error="OSError: port vanished")]


async def test_required_service_returning_is_a_failure() -> None:
    """A required service that simply returns counts as failed: it must run until stopped."""
    recorder = Recorder()

    async def quits() -> None:
        return None

    supervisor = Supervisor(recorder.publish, recorder.stop.set)
    await asyncio.wait_for(
        supervisor.run([Service("server", quits, Policy.REQUIRED)], recorder.stop), WAIT
    )
    assert recorder.events == [
        RuntimeFailed(component="server", error="ServiceEnded: server stopped unexpectedly")
    ]


async def test_restart_policy_restarts_until_stopped() -> None:
    """A restartable service is started again after each failure, until the stop."""
    recorder = Recorder()
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            recorder.stop.set()
            await forever()
        raise ValueError(f"attempt {runs}")

    supervisor = Supervisor(recorder.publish, recorder.stop.set)
    await asyncio.wait_for(
        supervisor.run([Service("discovery", flaky, Policy.RESTART, 0.01)], recorder.stop), WAIT
    )
    assert runs == 3
    assert recorder.events == [
        ServiceRestarting(component="discovery", error="ValueError: attempt 1", delay=0.01),
        ServiceRestarting(component="discovery", error="ValueError: attempt 2", delay=0.01),
    ]


async def test_best_effort_failure_leaves_the_rest_running() -> None:
    """A best-effort service that fails stays down; the others keep running."""
    recorder = Recorder()
    other_running = asyncio.Event()

    async def monitor() -> None:
        raise PermissionError("inotify limit")

    async def other() -> None:
        other_running.set()
        await forever()

    supervisor = Supervisor(recorder.publish, recorder.stop.set)
    run = asyncio.create_task(
        supervisor.run(
            [
                Service("local-monitor", monitor, Policy.BEST_EFFORT),
                Service("x", other, Policy.REQUIRED),
            ],
            recorder.stop,
        )
    )
    await asyncio.wait_for(other_running.wait(), WAIT)
    assert not recorder.stop.is_set()
    recorder.stop.set()
    await asyncio.wait_for(run, WAIT)
    assert recorder.events == []


async def test_stray_cancellation_is_a_failure_not_a_silent_exit() -> None:
    """A CancelledError leaking out of a service is treated as a failure and restarted."""
    recorder = Recorder()
    runs = 0

    async def leaks_cancellation() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            recorder.stop.set()
            await forever()
        raise asyncio.CancelledError

    supervisor = Supervisor(recorder.publish, recorder.stop.set)
    await asyncio.wait_for(
        supervisor.run(
            [Service("liveness", leaks_cancellation, Policy.RESTART, 0.01)], recorder.stop
        ),
        WAIT,
    )
    assert runs == 2
    assert recorder.events == [
        ServiceRestarting(
            component="liveness",
            error="ServiceEnded: liveness was cancelled from within",
            delay=0.01,
        )
    ]
