"""The platform process helper: which platform this is, and Stop that asks then forces."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from tests.support.platforms import KILLED_RETURNCODE, make_fifo

from lanspread.core.launching import Platform
from lanspread.platform.process import current_platform, launch, stop_process


@pytest.mark.parametrize(
    ("name", "platform"),
    [("win32", Platform.WINDOWS), ("linux", Platform.LINUX), ("darwin", Platform.OTHER)],
)
def test_current_platform_names_each_system(name: str, platform: Platform) -> None:
    """sys.platform values map to the catalog's platforms."""
    assert current_platform(name) is platform


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the test games are shell scripts")


def game_script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "game.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@posix_only
async def test_stop_asks_first(tmp_path: Path) -> None:
    """A game that closes when asked is not forced, and its output lands in the log."""
    ready = tmp_path / "ready"
    make_fifo(ready)
    game = game_script(tmp_path, "echo up\necho go > ready\nexec sleep 600\n")
    log = tmp_path / "logs" / "game.log"
    process = await launch(game, tmp_path, log=log)
    assert await asyncio.to_thread(ready.read_text) == "go\n"
    assert await stop_process(process, grace=60) is False
    assert process.returncode == -signal.SIGTERM
    assert log.read_text() == "up\n"


@posix_only
async def test_stop_forces_a_game_that_ignores_the_request(tmp_path: Path) -> None:
    """A game that ignores SIGTERM is killed once the grace period is over."""
    ready = tmp_path / "ready"
    make_fifo(ready)
    game = game_script(tmp_path, "trap '' TERM\necho go > ready\nwhile :; do sleep 1; done\n")
    process = await launch(game, tmp_path)
    assert await asyncio.to_thread(ready.read_text) == "go\n"
    assert await stop_process(process, grace=0.05) is True
    assert process.returncode == KILLED_RETURNCODE


async def test_stop_of_an_ended_game_does_nothing(tmp_path: Path) -> None:
    """A process that already exited is not signalled again."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await process.wait()
    assert await stop_process(process) is False
