"""Suite-wide fixtures: leak checks that every test gets for free, and a game folder."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI") == "true"
GAME_ID = "quake3"
"""The game the ``root`` fixture holds."""
ABSENT_ROOT = "absent_root"
"""The marker that makes ``root`` a path only: the code under test must make the root."""


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


@pytest.fixture
def game_dir(tmp_path: Path) -> Path:
    """An empty game folder, ``games`` in the test's temporary folder."""
    path = tmp_path / "games"
    path.mkdir()
    return path


@pytest.fixture
def root(game_dir: Path, request: pytest.FixtureRequest) -> Path:
    """The root of :data:`GAME_ID` in ``game_dir``: an empty folder.

    Under ``@pytest.mark.absent_root`` (a module's ``pytestmark``) it is not made,
    for tests of code that makes the root itself and must prove it did.
    """
    path = game_dir / GAME_ID
    if request.node.get_closest_marker(ABSENT_ROOT) is None:
        path.mkdir()
    return path
