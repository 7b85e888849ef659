"""Install, uninstall, remove and play through a real runtime, with real archives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.archives import ArchiveFormat, Kind, Member, write_game_root
from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded
from tests.support.platforms import make_fifo
from tests.support.waiting import wait_until

from lanspread.core.gameroot import OWNERSHIP_FILE
from lanspread.core.lifecycle import Command, GameState
from lanspread.errors import (
    InvalidGameState,
    OperationInProgress,
    ProgramChanged,
    UnknownGame,
    public_code,
)
from lanspread.runtime.commands import Install, Play, Remove, Uninstall, Verify
from lanspread.runtime.events import (
    ActiveOperationsChanged,
    GameExited,
    GameStarted,
    InstallBegin,
    InstallFailed,
    InstallFinished,
    InstallProgress,
    LocalLibraryChanged,
    RemoveFinished,
    UninstallFinished,
)
from lanspread.runtime.replies import OperationStarted, Started

Start = Callable[..., Any]
WAIT = 10.0

START_SCRIPT = b"#!/bin/sh\necho started > ran.txt\nexit 3\n"


def sideload_playable(game_dir: Path, game_id: str = "quake3") -> Path:
    """A downloaded game whose archives hold an executable start.sh and some data."""
    return write_game_root(
        game_dir / game_id,
        {
            "game.eti": (
                ArchiveFormat.TAR,
                [
                    Member("start.sh", START_SCRIPT, mode=0o755),
                    Member("data", kind=Kind.DIR, mode=0o755),
                    Member("data/pak0.pk3", b"\x01" * 50_000),
                ],
            ),
            "extra.eti": (ArchiveFormat.ZIP, {"maps/q3dm17.bsp": b"map" * 1000}),
        },
    )


async def test_install_extracts_and_publishes_in_order(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Install extracts every archive; the snapshot settles before InstallFinished."""
    sideload_playable(tmp_path / "alpha" / "games")
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    reply = await alpha.execute(Install(game="quake3"))
    assert reply == OperationStarted(game="quake3", operation="installing")
    finished = events.index(await events.first(InstallFinished))
    local = alpha.game_dir / "quake3" / "local"
    assert (local / "start.sh").read_bytes() == START_SCRIPT
    assert (local / "data" / "pak0.pk3").stat().st_size == 50_000
    assert (local / "maps" / "q3dm17.bsp").exists()
    assert not (alpha.game_dir / "quake3" / ".local.installing").exists()
    assert (alpha.game_dir / "quake3" / "game.eti").exists()
    before = events.seen[:finished]
    assert isinstance(before[0], ActiveOperationsChanged)
    assert before[0].operations == {"quake3": "installing"}
    assert any(isinstance(e, InstallBegin) for e in before)
    assert any(isinstance(e, InstallProgress) for e in before)
    settled = [e for e in before if isinstance(e, LocalLibraryChanged)][-1]
    assert settled.games[0].installed
    assert before[-1] == ActiveOperationsChanged(operations={})
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.installed, view.downloaded, view.operation) == (True, True, None)


async def test_install_preconditions(start_runtime: Start, tmp_path: Path) -> None:
    """Install refuses non-catalog ids, games not downloaded, and games already busy."""
    sideload_playable(tmp_path / "alpha" / "games")
    alpha = await start_runtime("alpha")
    with pytest.raises(UnknownGame, match="'doom' is not a game of the catalog"):
        await alpha.execute(Install(game="doom"))
    with pytest.raises(InvalidGameState, match="Cs16 is not downloaded"):
        await alpha.execute(Install(game="cs16"))
    await alpha.execute(Install(game="quake3"))
    with pytest.raises(OperationInProgress, match="Quake3 is busy: installing"):
        await alpha.execute(Install(game="quake3"))
    events = RuntimeEvents(alpha)
    await events.first(InstallFinished)
    with pytest.raises(InvalidGameState, match="Quake3 is already installed"):
        await alpha.execute(Install(game="quake3"))


async def test_hostile_archive_fails_install_and_leaves_nothing(
    start_runtime: Start, tmp_path: Path
) -> None:
    """An archive escaping the staging dir fails the install; no local/, no staging."""
    root = write_game_root(
        tmp_path / "alpha" / "games" / "quake3",
        {"evil.eti": (ArchiveFormat.TAR, [Member("../../escaped.txt", b"gotcha")])},
    )
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    index = events.index(await events.first(InstallFailed))
    failed = events.seen[index]
    assert isinstance(failed, InstallFailed)
    assert "escaped.txt" in failed.reason
    assert sorted(p.name for p in root.iterdir()) == ["evil.eti", "version.ini"]
    assert not (tmp_path / "alpha" / "escaped.txt").exists()
    assert alpha.local.operations.snapshot() == {}


async def test_uninstall_keeps_archives_and_remove_deletes_root(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Uninstall deletes local/ only; remove then deletes the downloaded game."""
    record_as_downloaded(sideload_playable(tmp_path / "alpha" / "games"))
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    with pytest.raises(InvalidGameState, match="Quake3 is installed: uninstall it first"):
        await alpha.execute(Remove(game="quake3"))
    await alpha.execute(Uninstall(game="quake3"))
    await events.first(UninstallFinished)
    root = alpha.game_dir / "quake3"
    assert sorted(p.name for p in root.iterdir()) == [
        OWNERSHIP_FILE,
        "extra.eti",
        "game.eti",
        "version.ini",
    ]
    await alpha.execute(Remove(game="quake3"))
    await events.first(RemoveFinished)
    assert not root.exists()
    assert next(g for g in alpha.games() if g.id == "quake3").downloaded is False


async def test_play_runs_in_local_and_blocks_uninstall(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Play starts the executable inside local/, reports exit; uninstall and verify wait
    for it, and the running game offers only Stop."""
    sideload_playable(tmp_path / "alpha" / "games")
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    with pytest.raises(InvalidGameState, match="Quake3 is not installed"):
        await alpha.execute(Play(game="quake3"))
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    local = alpha.game_dir / "quake3" / "local"
    # The game runs until the test writes a line into its FIFO.
    make_fifo(local / "release")
    (local / "start.sh").write_bytes(
        b"#!/bin/sh\nread line < release\necho started > ran.txt\nexit 3\n"
    )
    reply = await alpha.execute(Play(game="quake3", run_unpinned=True))
    assert isinstance(reply, Started)
    await events.first(GameStarted)
    with pytest.raises(OperationInProgress, match="cannot uninstall Quake3 while it is running"):
        await alpha.execute(Uninstall(game="quake3"))
    with pytest.raises(OperationInProgress, match="Quake3 is already running"):
        await alpha.execute(Play(game="quake3"))
    with pytest.raises(OperationInProgress) as caught:
        await alpha.execute(Verify(game="quake3"))
    assert (str(caught.value), caught.value.reason) == (
        "cannot verify Quake3 while it is running",
        "running",
    )
    game = next(g for g in alpha.games() if g.id == "quake3")
    assert (game.state, game.actions) == (GameState.RUNNING, (Command.STOP,))
    await asyncio.to_thread((local / "release").write_text, "go\n")
    exited = await events.first(GameExited)
    assert exited == GameExited(
        game="quake3",
        returncode=3,
        seconds=exited.seconds,
        message=f"Quake3 exited with code 3 after {exited.seconds:.1f} s",
    )
    assert (local / "ran.txt").read_text() == "started\n"
    await alpha.execute(Uninstall(game="quake3"))
    await events.first(UninstallFinished)


async def test_startup_recovers_an_interrupted_install(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A root left mid-install by a crash is rolled back before the first scan."""
    root = sideload_playable(tmp_path / "alpha" / "games")
    (root / ".lanspread.json").write_text(
        '{"format": 1, "game_id": "quake3", "intent": "Installing"}'
    )
    (root / ".local.installing").mkdir()
    (root / ".local.installing" / "half.bin").write_bytes(b"half")
    alpha = await start_runtime("alpha")
    assert sorted(p.name for p in root.iterdir()) == ["extra.eti", "game.eti", "version.ini"]
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.downloaded, view.installed) == (True, False)


async def test_a_changed_program_of_an_unpinned_version_asks_before_play(
    start_runtime: Start, tmp_path: Path
) -> None:
    """An unpinned game's first program asks before it runs, and starts nothing until
    the player says yes (run_unpinned), then is remembered; once it changed (a peer's
    replacement) Play asks again and starts nothing; a yes starts it and remembers it,
    across a restart, so the next Play asks nothing."""
    sideload_playable(tmp_path / "alpha" / "games")
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    local = alpha.game_dir / "quake3" / "local"
    (local / "start.sh").write_bytes(b"#!/bin/sh\necho honest >> ran.txt\n")
    name = next(g.name for g in alpha.games() if g.id == "quake3")
    with pytest.raises(ProgramChanged) as first:
        await alpha.execute(Play(game="quake3"))
    assert str(first.value) == (
        f"This version of {name} was not pinned by the organizer: its program comes from "
        "other players and nobody vouched for it. Run it?"
    )
    assert not (local / "ran.txt").exists()
    await alpha.execute(Play(game="quake3", run_unpinned=True))
    await events.first(GameExited)
    (local / "start.sh").write_bytes(b"#!/bin/sh\necho replaced >> ran.txt\n")
    with pytest.raises(ProgramChanged) as caught:
        await alpha.execute(Play(game="quake3"))
    assert str(caught.value) == (
        f"This version of {name} was not pinned by the organizer and its program changed "
        "since you last played: run it?"
    )
    assert public_code(caught.value).code == "program-changed"
    assert (local / "ran.txt").read_text() == "honest\n"
    await alpha.execute(Play(game="quake3", run_unpinned=True))
    await wait_until(
        lambda: len(events.of(GameExited)) == 2, "the accepted program to run and exit"
    )
    alpha.shutdown()
    await alpha.wait_stopped()
    again = await start_runtime("alpha")
    restarted = RuntimeEvents(again)
    await again.execute(Play(game="quake3"))
    await restarted.first(GameExited)
    assert (local / "ran.txt").read_text() == "honest\nreplaced\nreplaced\n"
