"""Waiting in tests until something holds, with a timeout and a message naming what.

A wait re-checks its condition each time something can have changed and fails
with an ``AssertionError`` saying what it waited for once ``timeout`` passes:

* **woken by a signal** (``changed``): an ``asyncio.Event`` that whoever changes
  the state sets (an event log, a fake handler, a discovery listener). The wait
  clears it *before* each check, so a change that lands while the condition is
  being looked at still wakes the next wait, and no change is ever missed.
* **polled**: state that nothing signals (kernel state, a server's counters, a
  child process seen over HTTP) is looked at again every ``poll`` seconds. Each
  polling caller says why nothing can signal.

The condition returns anything: a falsy value means "not yet", a truthy one is
returned to the caller (so a wait can hand back the event it found). It may be
a coroutine function when looking needs I/O; with a ``changed`` signal it then
must be the signal's only waiter. ``wait_until_blocking`` is the same polled
wait for code that runs outside an event loop (an ``atexit`` teardown).
"""

# These helpers take their own timeout (ASYNC109): the failure message names it
# and what was awaited, which a caller's asyncio.timeout could not.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

Description = str | Callable[[], str]
"""What a wait is for, in words; a callable is asked only on failure (for late details)."""

# Any wait a test does is over in well under this on a loaded two-core machine;
# reaching it means the awaited thing is not coming.
DEFAULT_TIMEOUT = 10.0
# How often polled state is looked at again: short enough to add no visible
# latency, long enough not to burn a core.
POLL_INTERVAL = 0.005


@overload
async def wait_until(
    condition: Callable[[], Awaitable[T | None]],
    what: Description,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    changed: asyncio.Event | None = None,
    poll: float = POLL_INTERVAL,
) -> T: ...


@overload
async def wait_until(
    condition: Callable[[], T | None],
    what: Description,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    changed: asyncio.Event | None = None,
    poll: float = POLL_INTERVAL,
) -> T: ...


async def wait_until(
    condition: Callable[[], object],
    what: Description,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    changed: asyncio.Event | None = None,
    poll: float = POLL_INTERVAL,
) -> object:
    """The first truthy result of ``condition``, re-checked on ``changed`` or every ``poll``."""

    async def attempts() -> object:
        while True:
            if changed is not None:
                changed.clear()
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if changed is not None:
                await changed.wait()
            else:
                await asyncio.sleep(poll)

    try:
        async with asyncio.timeout(timeout):
            return await attempts()
    except TimeoutError:
        raise AssertionError(_timed_out(timeout, what)) from None


def wait_until_blocking(
    condition: Callable[[], T | None],
    what: Description,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll: float = POLL_INTERVAL,
) -> T:
    """:func:`wait_until` polled outside an event loop: blocks the calling thread."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout, what))
        time.sleep(poll)
    return result


def _timed_out(timeout: float, what: Description) -> str:
    described = what if isinstance(what, str) else what()
    return f"timed out after {timeout}s waiting for {described}"
