"""Fixtures that start real runtimes on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.peers import loopback_options

from lanspread.runtime.runtime import PeerRuntime


@pytest.fixture
async def start_runtime(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start runtimes on loopback; every one is shut down at the end of the test."""
    started: list[PeerRuntime] = []

    async def start(name: str, **overrides: Any) -> PeerRuntime:
        runtime = PeerRuntime(loopback_options(tmp_path, name, **overrides))
        await runtime.start()
        started.append(runtime)
        return runtime

    try:
        yield start
    finally:
        for runtime in reversed(started):
            runtime.shutdown()
        for runtime in started:
            with contextlib.suppress(Exception):
                await runtime.wait_stopped()
