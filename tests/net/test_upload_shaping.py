"""Upload shaping of the data server on loopback: the limit holds, changes live, is metered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.net.test_dataplane import Gate, Library, _write_game, collect, control_channel, ticket
from tests.support.sink import Sink

from lanspread.core.planning import manifest_tasks
from lanspread.core.uploads import BURST_SECONDS, UNLIMITED
from lanspread.download.dataclient import ChunkOutcome, DataConnection
from lanspread.seeding.dataserver import DataServer

MIB = 1024 * 1024
LIMIT = 2 * MIB
"""Slow enough that the payload takes over a second, fast enough for a quick test."""


@pytest.fixture
def library(tmp_path: Path) -> Library:
    game_dir = tmp_path / "games"
    return Library(Gate(game_dir), _write_game(game_dir))


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    target = Sink(tmp_path / "download")
    yield target
    target.close()


async def _fetch_all(library: Library, server: DataServer, sink: Sink, ids: Path) -> float:
    """Fetch the whole game from ``server``; the seconds it took."""
    async with control_channel(ids, server, library.gate) as link:
        issued = await ticket(link)
        tasks = manifest_tasks(library.manifest)
        started = time.monotonic()
        async with await DataConnection.open("127.0.0.1", issued.data_port, issued.token) as conn:
            results = await collect(conn, tasks, sink)
        elapsed = time.monotonic() - started
    assert [result.outcome for result in results] == [ChunkOutcome.OK] * len(tasks)
    return elapsed


async def test_the_upload_limit_holds_the_bytes_sent_under_it(
    library: Library, sink: Sink, tmp_path: Path
) -> None:
    """N bytes at limit L take at least (N - burst) / L, with a 20 % margin for clocks;
    the peer's upload rate is metered meanwhile."""
    total = library.manifest.total_bytes
    async with DataServer(library.gate, host="127.0.0.1", port=0, upload_limit=LIMIT) as server:
        elapsed = await _fetch_all(library, server, sink, tmp_path / "ids")
        assert server.bytes_sent == total
        rates = server.shaper.rates()
    assert elapsed >= (total - LIMIT * BURST_SECONDS) / LIMIT * 0.8
    assert len(rates) == 1
    assert 0 < next(iter(rates.values())) <= LIMIT


async def test_the_limit_changes_live(library: Library, sink: Sink, tmp_path: Path) -> None:
    """A limit set on a running server slows the next fetch; lifting it speeds it up again."""
    total = library.manifest.total_bytes
    async with DataServer(library.gate, host="127.0.0.1", port=0) as server:
        assert server.shaper.limit == UNLIMITED
        server.shaper.set_limit(LIMIT)
        slow = await _fetch_all(library, server, sink, tmp_path / "ids1")
        server.shaper.set_limit(UNLIMITED)
        fast = await _fetch_all(library, server, sink, tmp_path / "ids2")
    assert slow >= (total - LIMIT * BURST_SECONDS) / LIMIT * 0.8
    assert fast < slow / 2
