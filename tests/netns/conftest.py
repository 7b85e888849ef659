"""Multi-host tests in Linux network namespaces: every test here is marked ``netns``.

They need root and iproute2. Without them a developer's run skips these tests;
under ``CI=true`` it fails, so CI can never pass by silently skipping them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, require_tool
from tests.support.netns import NetworkFactory, sweep_stale

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this folder ``netns``."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.netns)


def require_netns() -> None:
    """Skip (or in CI fail) unless namespaces can be made here: root and ``ip``."""
    require_tool("ip")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("network-namespace tests need root; CI must run them as root")
        pytest.skip("network-namespace tests need root")


@pytest.fixture(scope="session")
def netns_ready() -> list[str]:
    """Check the prerequisites once and sweep leftovers of crashed earlier runs."""
    require_netns()
    return sweep_stale()


@pytest.fixture
async def network_factory(netns_ready: list[str], tmp_path: Path) -> AsyncIterator[NetworkFactory]:
    """Build ``await network_factory(hosts)``; every network is torn down after the test."""
    factory = NetworkFactory(tmp_path / "netns")
    try:
        yield factory
    finally:
        await factory.close_all()
