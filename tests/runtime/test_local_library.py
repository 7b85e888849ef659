"""The local library service: scans, notices, the operation freeze and game-dir changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.events import EventLog
from tests.support.peers import make_catalog, sideload

from lanspread.core.library import Availability, LibraryDelta
from lanspread.core.operations import OperationKind
from lanspread.errors import OperationInProgress, UnknownGame
from lanspread.runtime.events import ActiveOperationsChanged, LocalLibraryChanged
from lanspread.runtime.local_library import LocalLibraryService
from lanspread.storage.index import LibraryIndex

CATALOG = make_catalog("quake3", "cs16", "aoe2")


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.game_dir = tmp_path / "games"
        self.game_dir.mkdir()
        self.state_dir = tmp_path / "state"
        self.state_dir.mkdir()
        self.log = EventLog()
        self.deltas: list[LibraryDelta] = []
        self.service = LocalLibraryService(
            game_dir=self.game_dir,
            state_dir=self.state_dir,
            catalog=CATALOG,
            publish=self.log,
            on_delta=self.deltas.append,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.fixture
async def running(harness: Harness) -> AsyncIterator[Harness]:
    await harness.service.full_scan()
    task = asyncio.create_task(harness.service.run())
    try:
        yield harness
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_first_scan_finds_sideloaded_catalog_games_only(harness: Harness) -> None:
    """The first scan publishes the whole library: catalog roots only, non-catalog invisible."""
    sideload(harness.game_dir, "quake3")
    sideload(harness.game_dir, "not-in-catalog")
    await harness.service.full_scan()
    changed = harness.log.of_type(LocalLibraryChanged)
    assert len(changed) == 1
    assert [game.id for game in changed[0].games] == ["quake3"]
    assert changed[0].games[0].availability is Availability.READY
    assert len(harness.deltas) == 1


async def test_unchanged_rescan_publishes_nothing(harness: Harness) -> None:
    """A scan that finds the same library produces no event and no delta."""
    sideload(harness.game_dir, "quake3")
    await harness.service.full_scan()
    await harness.service.full_scan()
    assert len(harness.log.of_type(LocalLibraryChanged)) == 1
    assert len(harness.deltas) == 1


async def test_empty_library_scan_produces_no_delta(harness: Harness) -> None:
    """An empty game dir scans to the empty library, which is no change at all."""
    await harness.service.full_scan()
    assert harness.log.events == []
    assert harness.deltas == []


async def test_watcher_picks_up_a_new_game(running: Harness) -> None:
    """A game copied into the game dir while the peer runs appears in the library."""
    sideload(running.game_dir, "cs16", "1.6")
    event = await running.log.wait_for(
        LocalLibraryChanged, lambda e: any(g.id == "cs16" for g in e.games)
    )
    assert next(g for g in event.games if g.id == "cs16").version == "1.6"


async def test_version_edit_propagates(running: Harness) -> None:
    """Editing version.ini of a watched game changes its summary."""
    root = sideload(running.game_dir, "quake3", "1.0")
    await running.log.wait_for(LocalLibraryChanged, lambda e: len(e.games) == 1)
    (root / "version.ini").write_text("2.0")
    await running.log.wait_for(
        LocalLibraryChanged, lambda e: bool(e.games) and e.games[0].version == "2.0"
    )


async def test_active_operation_freezes_the_game(running: Harness) -> None:
    """While an operation runs, changes to its root are not published; ending it refreshes."""
    service = running.service
    service.begin_operation("quake3", OperationKind.DOWNLOADING)
    sideload(running.game_dir, "quake3")
    await service.full_scan()
    # A second game proves notices are flowing while quake3 stays frozen.
    sideload(running.game_dir, "cs16")
    await running.log.wait_for(LocalLibraryChanged, lambda e: any(g.id == "cs16" for g in e.games))
    assert service.library.get("quake3") is None
    before = len(running.log.events)
    await service.end_operation("quake3")
    tail = running.log.events[before:]
    assert isinstance(tail[0], LocalLibraryChanged)
    assert any(g.id == "quake3" for g in tail[0].games)
    assert tail[-1] == ActiveOperationsChanged(operations={})


async def test_second_operation_on_same_game_is_refused(harness: Harness) -> None:
    """At most one operation per game: the second is refused and the first is untouched."""
    harness.service.begin_operation("quake3", OperationKind.DOWNLOADING)
    with pytest.raises(OperationInProgress, match="quake3 is busy: downloading"):
        harness.service.begin_operation("quake3", OperationKind.INSTALLING)
    assert harness.log.of_type(ActiveOperationsChanged)[-1].operations == {"quake3": "downloading"}


async def test_non_catalog_operation_is_refused(harness: Harness) -> None:
    """An operation on an id outside the catalog is refused before anything happens."""
    with pytest.raises(UnknownGame, match="'doom' is not a game of the catalog"):
        harness.service.begin_operation("doom", OperationKind.DOWNLOADING)
    assert harness.log.events == []


async def test_burst_of_notices_costs_at_most_one_extra_scan(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty notices while a rescan runs lead to exactly one more rescan."""
    service = harness.service
    loop = asyncio.get_running_loop()
    calls: asyncio.Queue[str] = asyncio.Queue()
    release = asyncio.Event()
    idle = asyncio.Event()
    original_scan = service._scanner.scan_game
    original_finished = service._gate.finished

    def counting_scan(game_id: str) -> object:
        loop.call_soon_threadsafe(calls.put_nowait, game_id)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        return original_scan(game_id)

    def finished(game_id: str) -> bool:
        again = original_finished(game_id)
        if not again:
            idle.set()
        return again

    monkeypatch.setattr(service._scanner, "scan_game", counting_scan)
    monkeypatch.setattr(service._gate, "finished", finished)
    worker = asyncio.create_task(service._scan_worker())
    try:
        for _ in range(20):
            service.notice("quake3")
        assert await asyncio.wait_for(calls.get(), 5) == "quake3"
        release.set()
        assert await asyncio.wait_for(calls.get(), 5) == "quake3"
        await asyncio.wait_for(idle.wait(), 5)
    finally:
        worker.cancel()
    assert calls.empty()


async def test_set_game_dir_refused_while_busy(harness: Harness, tmp_path: Path) -> None:
    """Changing the game dir during an operation is refused and changes nothing."""
    harness.service.begin_operation("quake3", OperationKind.DOWNLOADING)
    with pytest.raises(OperationInProgress, match="busy: quake3"):
        await harness.service.set_game_dir(tmp_path / "other")
    assert harness.service.game_dir == harness.game_dir


async def test_set_game_dir_switches_and_publishes(harness: Harness, tmp_path: Path) -> None:
    """A new game dir is scanned and its library published, even if it is the same."""
    other = tmp_path / "other"
    sideload(other, "aoe2")
    await harness.service.set_game_dir(other)
    assert harness.service.game_dir == other.resolve()
    last = harness.log.of_type(LocalLibraryChanged)[-1]
    assert [g.id for g in last.games] == ["aoe2"]
    await harness.service.set_game_dir(other)
    assert len(harness.log.of_type(LocalLibraryChanged)) == 2


async def test_flush_persists_single_game_rescans(harness: Harness) -> None:
    """A game found by a single-game rescan reaches the index file once flushed."""
    await harness.service.full_scan()
    sideload(harness.game_dir, "cs16")
    await harness.service.refresh_game("cs16")
    index_file = harness.state_dir / "library_index.json"
    before = LibraryIndex.load(index_file, harness.game_dir)
    assert before.get("cs16") is None
    await harness.service.flush()
    after = LibraryIndex.load(index_file, harness.game_dir)
    entry = after.get("cs16")
    assert entry is not None
    assert entry.summary is not None
    assert entry.summary.id == "cs16"
