"""Fixtures of the transport tests: identities in temp state dirs and a task-leak check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lanspread.net.identity import PeerIdentity, load_or_create_identity


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves an asyncio task of its own running."""
    yield
    current = asyncio.current_task()
    leaked = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    assert not leaked, f"test leaked tasks: {leaked}"


@pytest.fixture
def alice(tmp_path: Path) -> PeerIdentity:
    return load_or_create_identity(tmp_path / "alice")


@pytest.fixture
def bob(tmp_path: Path) -> PeerIdentity:
    return load_or_create_identity(tmp_path / "bob")


@pytest.fixture
def carol(tmp_path: Path) -> PeerIdentity:
    return load_or_create_identity(tmp_path / "carol")
