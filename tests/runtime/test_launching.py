"""Play through the runtime: a failure at start is explained, Stop closes the game, play
time is kept, and a Windows game on Linux starts only through its runner."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.test_lifecycle import sideload_playable
from tests.support.events import RuntimeEvents
from tests.support.peers import CATALOG

from lanspread.core.catalog import Catalog, Launchers
from lanspread.core.launching import LaunchKind, Platform
from lanspread.core.lifecycle import GameState
from lanspread.errors import InvalidGameState, OperationInProgress
from lanspread.runtime.commands import Install, Play, Stop
from lanspread.runtime.events import GameExited, GameStarted, InstallFinished
from lanspread.runtime.runtime import PeerRuntime

Start = Callable[..., Any]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the test games are shell scripts")


async def installed(start_runtime: Start, tmp_path: Path, **options: Any) -> PeerRuntime:
    sideload_playable(tmp_path / "alpha" / "games")
    alpha = await start_runtime("alpha", **options)
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    assert isinstance(alpha, PeerRuntime)
    return alpha


def script(runtime: PeerRuntime, body: str, name: str = "start.sh") -> None:
    path = runtime.game_dir / "quake3" / "local" / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


async def test_a_game_that_fails_at_once_says_so_with_its_log(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Exit code 3 at once: the exit event carries the player's sentence naming the log
    that holds the game's output, and the play time is counted."""
    alpha = await installed(start_runtime, tmp_path)
    script(alpha, "echo 'cannot open display' >&2\nexit 3\n")
    events = RuntimeEvents(alpha)
    await alpha.execute(Play(game="quake3", run_unpinned=True))
    exited = await events.first(GameExited)
    log = alpha.lifecycle.game_log("quake3")
    assert log == tmp_path / "alpha" / "state" / "game-logs" / "quake3.log"
    assert exited.message == (
        f"Quake3 exited with code 3 after {exited.seconds:.1f} s; its output is in {log}"
    )
    assert log.read_text() == "cannot open display\n"
    times = alpha.lifecycle.play_time("quake3")
    assert times.total_seconds == pytest.approx(exited.seconds)
    assert times.last_played is not None


async def test_stop_closes_a_running_game(start_runtime: Start, tmp_path: Path) -> None:
    """Stop ends the game (its whole session), the exit says it was stopped with no
    failure message, and a second Stop is refused once the game is gone."""
    alpha = await installed(start_runtime, tmp_path)
    script(alpha, "sleep 600 &\nwait\n")
    events = RuntimeEvents(alpha)
    await alpha.execute(Play(game="quake3", run_unpinned=True))
    await events.first(GameStarted)
    await alpha.execute(Stop(game="quake3"))
    exited = await events.first(GameExited)
    assert (exited.stopped, exited.message) == (True, None)
    assert next(g for g in alpha.games() if g.id == "quake3").state is GameState.INSTALLED
    with pytest.raises(InvalidGameState, match=r"^Quake3 is not running$"):
        await alpha.execute(Stop(game="quake3"))


async def test_stop_of_a_game_that_is_not_running_is_refused(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Stop answers with the lifecycle's refusal when nothing runs."""
    alpha = await installed(start_runtime, tmp_path)
    with pytest.raises(InvalidGameState) as caught:
        await alpha.execute(Stop(game="quake3"))
    assert (str(caught.value), caught.value.reason) == ("Quake3 is not running", "not-running")
    assert not isinstance(caught.value, OperationInProgress)


def windows_catalog() -> Catalog:
    game = replace(
        CATALOG.games["quake3"],
        executable=None,
        launchers=Launchers(windows="start.sh", runner="wine"),
    )
    return replace(CATALOG, games={**CATALOG.games, "quake3": game})


async def test_a_windows_game_without_its_runner_is_not_playable(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No wine on PATH: the game view says "Needs Wine" and Play explains why."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr("lanspread.runtime.states.current_platform", lambda: _linux())
    alpha = await installed(start_runtime, tmp_path, catalog=windows_catalog())
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.launch, view.launch_label) == (LaunchKind.NEEDS_RUNNER, "Needs Wine")
    with pytest.raises(InvalidGameState) as caught:
        await alpha.execute(Play(game="quake3"))
    assert str(caught.value) == (
        "Quake3 is a Windows game: it needs Wine to start on this computer, "
        "and Wine is not installed"
    )
    assert caught.value.reason == "needs-runner"


async def test_a_windows_game_starts_through_its_runner(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With wine on PATH the game is started as ``wine <executable>`` in ``local/``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wine = bin_dir / "wine"
    wine.write_text('#!/bin/sh\necho "wine $(basename "$1")" > ran.txt\n')
    wine.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr("lanspread.runtime.states.current_platform", lambda: _linux())
    alpha = await installed(start_runtime, tmp_path, catalog=windows_catalog())
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.launch, view.launch_label) == (LaunchKind.RUNNER, None)
    events = RuntimeEvents(alpha)
    await alpha.execute(Play(game="quake3", run_unpinned=True))
    exited = await events.first(GameExited)
    assert exited.returncode == 0
    ran = alpha.game_dir / "quake3" / "local" / "ran.txt"
    assert await asyncio.to_thread(ran.read_text) == "wine start.sh\n"


def _linux() -> Platform:
    return Platform.LINUX
