"""The wait helpers: what they return, when they look again, and how they fail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.support.waiting import wait_until, wait_until_blocking

# Long enough for a failing wait to be sure, short enough to keep the suite quick.
SHORT = 0.05


async def test_a_polled_wait_returns_the_first_truthy_result() -> None:
    """Falsy results mean "not yet"; the first truthy one is handed back."""
    answers = iter([None, 0, "", "found"])
    assert await wait_until(lambda: next(answers), "the answer") == "found"


async def test_a_coroutine_condition_is_awaited() -> None:
    """A condition that needs I/O may be a coroutine function."""
    calls: list[None] = []

    async def ready() -> bool:
        calls.append(None)
        return len(calls) == 3

    assert await wait_until(ready, "the third look") is True
    assert len(calls) == 3


async def test_a_signalled_wait_looks_again_only_when_signalled() -> None:
    """With ``changed`` the condition is checked once, then once per signal: no polling."""
    changed = asyncio.Event()
    state = {"done": False}
    looks: list[None] = []

    def done() -> bool:
        looks.append(None)
        return state["done"]

    waiter = asyncio.create_task(wait_until(done, "done", changed=changed))
    for _ in range(10):
        await asyncio.sleep(0)  # let the waiter run as often as it wants
    assert len(looks) == 1
    state["done"] = True
    changed.set()
    assert await waiter is True
    assert len(looks) == 2


async def test_a_signal_during_a_slow_look_is_not_missed() -> None:
    """A change signalled while a coroutine condition is still looking wakes the next look."""
    changed = asyncio.Event()
    state = {"done": False}
    looking = asyncio.Event()
    answer = asyncio.Event()

    async def done() -> bool:
        seen = state["done"]
        looking.set()
        await answer.wait()
        return seen

    waiter = asyncio.create_task(wait_until(done, "done", changed=changed, timeout=SHORT * 20))
    await looking.wait()
    state["done"] = True
    changed.set()  # the look in progress read the old state
    answer.set()
    assert await waiter is True


async def test_a_wait_that_times_out_names_what_it_waited_for() -> None:
    """The failure says how long it waited and for what."""
    with pytest.raises(AssertionError, match=r"^timed out after 0.05s waiting for the moon$"):
        await wait_until(lambda: False, "the moon", timeout=SHORT)


async def test_a_described_wait_is_described_when_it_fails() -> None:
    """A callable description is asked at the failure, so it can give the latest state."""
    seen: list[str] = []

    def what() -> str:
        return f"a comet; saw {seen}"

    seen.append("a plane")
    expected = r"^timed out after 0.05s waiting for a comet; saw \['a plane'\]$"
    with pytest.raises(AssertionError, match=expected):
        await wait_until(lambda: False, what, timeout=SHORT)


def test_the_blocking_wait_returns_the_first_truthy_result() -> None:
    """Outside an event loop the same polled wait blocks the thread."""
    answers: Iterator[object] = iter([None, [], {"pid": 7}])
    assert wait_until_blocking(lambda: next(answers), "the answer") == {"pid": 7}


def test_the_blocking_wait_names_what_it_waited_for() -> None:
    """The blocking wait fails like the asynchronous one."""
    with pytest.raises(AssertionError, match=r"^timed out after 0.05s waiting for the tide$"):
        wait_until_blocking(lambda: None, "the tide", timeout=SHORT)
