"""Multi-host tests in Linux network namespaces: every test here is marked ``netns``.

They need root and iproute2. Without them a developer's run skips these tests;
under ``CI=true`` it fails, so CI can never pass by silently skipping them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, require_tool
from tests.netns.transfer_lan import BuildLan, lan_builder, session_archive_cache, session_catalog
from tests.support.fixtures import ArchiveCache
from tests.support.netns import NetworkFactory, sweep_stale
from tests.support.platforms import is_root

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this folder ``netns``."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.netns)


def require_netns() -> None:
    """Skip (or in CI fail) unless namespaces can be made here: root and ``ip``."""
    require_tool("ip")
    if not is_root():
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


@pytest.fixture(scope="session")
def archive_cache(tmp_path_factory: pytest.TempPathFactory) -> ArchiveCache:
    """Installable game roots built once per session and shared by the scenario files."""
    return session_archive_cache(tmp_path_factory)


@pytest.fixture
def build_lan(
    network_factory: NetworkFactory,
    tmp_path: Path,
    archive_cache: ArchiveCache,
    tmp_path_factory: pytest.TempPathFactory,
) -> BuildLan:
    """``await build_lan(hosts)``: a network of ``hosts`` hosts for this test's peers."""
    return lan_builder(
        network_factory, tmp_path / "peers", session_catalog(tmp_path_factory), archive_cache
    )
