"""Suite-wide fixtures: leak checks that every test gets for free."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI") == "true"


def require_tool(name: str) -> str:
    """Path of a system tool a test needs; in CI a missing tool fails instead of skipping."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed; the test command must install it")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a non-daemon thread of its own running."""
    before = set(threading.enumerate())
    yield
    leaked = [
        thread
        for thread in threading.enumerate()
        if thread not in before and thread.is_alive() and not thread.daemon
    ]
    for thread in leaked:
        thread.join(timeout=2)
    still = [thread.name for thread in leaked if thread.is_alive()]
    assert not still, f"test leaked threads: {still}"
