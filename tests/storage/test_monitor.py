"""The directory monitor maps real filesystem events to catalog game ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lanspread.storage.monitor import DirectoryMonitor, game_id_for_path

CATALOG = frozenset({"quake3", "cs16"})
NOTICE_TIMEOUT = 5.0


def test_game_id_for_root_and_direct_children() -> None:
    """A root or a direct child of a root maps to its game id; deeper paths do not."""
    game_dir = Path("/games")
    assert game_id_for_path(game_dir, Path("/games/quake3"), CATALOG) == "quake3"
    assert game_id_for_path(game_dir, Path("/games/quake3/a.eti"), CATALOG) == "quake3"
    assert game_id_for_path(game_dir, Path("/games/quake3/sub/a.eti"), CATALOG) is None
    assert game_id_for_path(game_dir, Path("/games"), CATALOG) is None
    assert game_id_for_path(game_dir, Path("/elsewhere/quake3"), CATALOG) is None


def test_non_catalog_roots_are_invisible() -> None:
    """A folder whose name is not a catalog id never produces a notice."""
    game_dir = Path("/games")
    assert game_id_for_path(game_dir, Path("/games/notinthecatalog/x"), CATALOG) is None
    assert game_id_for_path(game_dir, Path("/games/notinthecatalog"), CATALOG) is None


class Notices:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self, game_id: str) -> None:
        self.queue.put_nowait(game_id)

    async def next(self) -> str:
        return await asyncio.wait_for(self.queue.get(), NOTICE_TIMEOUT)

    def drain(self) -> list[str]:
        seen = []
        while not self.queue.empty():
            seen.append(self.queue.get_nowait())
        return seen


@pytest.fixture
async def watched(tmp_path: Path) -> AsyncIterator[tuple[Path, Notices, DirectoryMonitor]]:
    (tmp_path / "quake3").mkdir()
    notices = Notices()
    monitor = DirectoryMonitor(tmp_path, CATALOG, notices, asyncio.get_running_loop())
    monitor.start()
    try:
        yield tmp_path, notices, monitor
    finally:
        monitor.stop()


async def test_file_created_in_root_is_noticed(
    watched: tuple[Path, Notices, DirectoryMonitor],
) -> None:
    """Writing an archive into a watched root yields a notice for that game."""
    game_dir, notices, _ = watched
    (game_dir / "quake3" / "pak0.eti").write_bytes(b"x")
    assert await notices.next() == "quake3"


async def test_new_root_is_noticed_and_then_watched(
    watched: tuple[Path, Notices, DirectoryMonitor],
) -> None:
    """A sideloaded catalog root is noticed, and after a sync its files are noticed too."""
    game_dir, notices, monitor = watched
    (game_dir / "cs16").mkdir()
    assert await notices.next() == "cs16"
    monitor.sync_root_watch("cs16")
    notices.drain()
    (game_dir / "cs16" / "version.ini").write_text("1.6")
    assert await notices.next() == "cs16"


async def test_reads_and_non_catalog_changes_are_ignored(tmp_path: Path) -> None:
    """Opening and reading files, and changes in non-catalog roots, produce no notice."""
    (tmp_path / "quake3").mkdir()
    archive = tmp_path / "quake3" / "pak0.eti"
    archive.write_bytes(b"payload")
    notices = Notices()
    monitor = DirectoryMonitor(tmp_path, CATALOG, notices, asyncio.get_running_loop())
    monitor.start()
    try:
        assert archive.read_bytes() == b"payload"
        (tmp_path / "stranger").mkdir()
        (tmp_path / "stranger" / "x").write_bytes(b"x")
        # A change we expect proves the monitor is live; nothing may come before it.
        (tmp_path / "cs16").mkdir()
        assert await notices.next() == "cs16"
    finally:
        monitor.stop()


async def test_removed_root_drops_its_watch(
    watched: tuple[Path, Notices, DirectoryMonitor],
) -> None:
    """Deleting a root is noticed, and syncing the watch afterwards does not fail."""
    game_dir, notices, monitor = watched
    (game_dir / "quake3").rmdir()
    assert await notices.next() == "quake3"
    monitor.sync_root_watch("quake3")
    notices.drain()
    (game_dir / "quake3").mkdir()
    assert await notices.next() == "quake3"
