"""A bug inside any local operation still ends it: failure event, game released, state true."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.runtime.test_lifecycle import sideload_playable
from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded

import lanspread.runtime.lifecycle as lifecycle_module
from lanspread.errors import OperationError
from lanspread.runtime.commands import Command, Install, Remove, Repair, Uninstall, Verify
from lanspread.runtime.events import (
    ActiveOperationsChanged,
    Event,
    InstallFailed,
    InstallFinished,
    RemoveFailed,
    RemoveFinished,
    UninstallFailed,
    UninstallFinished,
)
from lanspread.runtime.replies import VerifyReply
from lanspread.runtime.runtime import PeerRuntime

Start = Callable[..., Any]
E = TypeVar("E", bound=Event)


def broken(*args: object, **kwargs: object) -> Any:
    """A step with a bug in it."""
    raise RuntimeError("simulated bug")


def unexpected(what: str) -> str:
    return f"the {what} stopped on an unexpected error (simulated bug); the log has the details"


def view(runtime: PeerRuntime) -> Any:
    return next(g for g in runtime.games() if g.id == "quake3")


async def holding(
    start_runtime: Start, tmp_path: Path, *, downloaded: bool = False
) -> tuple[PeerRuntime, RuntimeEvents]:
    """alpha started with quake3 in its folder (recorded as its own download when
    ``downloaded``, else sideloaded), and its events from the start."""
    root = sideload_playable(tmp_path / "alpha" / "games")
    if downloaded:
        record_as_downloaded(root)
    alpha = await start_runtime("alpha")
    return alpha, RuntimeEvents(alpha)


async def installed(start_runtime: Start, tmp_path: Path) -> tuple[PeerRuntime, RuntimeEvents]:
    alpha, events = await holding(start_runtime, tmp_path)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    return alpha, events


async def fails(
    alpha: PeerRuntime,
    events: RuntimeEvents,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    command: Command,
    failure: type[E],
) -> E:
    """Run ``command`` with the lifecycle's ``step`` broken: the ``failure`` event it ends with."""
    with monkeypatch.context() as patch:
        patch.setattr(lifecycle_module, step, broken)
        await alpha.execute(command)
        return await events.first(failure)


async def test_a_bug_in_install_fails_it_and_releases_the_game(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install whose transaction raises RuntimeError ends with install-failed in plain
    words after the operation is cleared; the game is not installed and installs again."""
    alpha, events = await holding(start_runtime, tmp_path)
    failed = await fails(
        alpha, events, monkeypatch, "install_game", Install(game="quake3"), InstallFailed
    )
    assert failed == InstallFailed(game="quake3", reason=unexpected("install"))
    released = events.seen[events.index(failed) - 1]
    assert released == ActiveOperationsChanged(operations={})
    assert alpha.local.operations.snapshot() == {}
    assert (view(alpha).installed, view(alpha).operation) == (False, None)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    assert view(alpha).installed


async def test_a_bug_in_repair_fails_it_and_releases_the_game(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repair (an update transaction) that raises ends with install-failed; the game stays
    installed and can be repaired again."""
    alpha, events = await installed(start_runtime, tmp_path)
    failed = await fails(
        alpha, events, monkeypatch, "update_game", Repair(game="quake3"), InstallFailed
    )
    assert failed == InstallFailed(game="quake3", reason=unexpected("update"))
    assert alpha.local.operations.snapshot() == {}
    assert (view(alpha).installed, view(alpha).operation) == (True, None)
    await alpha.execute(Repair(game="quake3"))
    await events.first(InstallFinished, lambda _: len(events.of(InstallFinished)) >= 2)


async def test_a_bug_in_uninstall_fails_it_and_releases_the_game(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uninstall that raises ends with uninstall-failed; local/ is untouched, the game
    still installed and uninstallable."""
    alpha, events = await installed(start_runtime, tmp_path)
    failed = await fails(
        alpha, events, monkeypatch, "uninstall_game", Uninstall(game="quake3"), UninstallFailed
    )
    assert failed == UninstallFailed(game="quake3", reason=unexpected("uninstall"))
    assert alpha.local.operations.snapshot() == {}
    assert (alpha.game_dir / "quake3" / "local" / "start.sh").exists()
    assert (view(alpha).installed, view(alpha).operation) == (True, None)
    await alpha.execute(Uninstall(game="quake3"))
    await events.first(UninstallFinished)
    assert not view(alpha).installed


async def test_a_bug_in_remove_fails_it_and_releases_the_game(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removal that raises ends with remove-failed; the files stay and can be removed."""
    alpha, events = await holding(start_runtime, tmp_path, downloaded=True)
    failed = await fails(
        alpha, events, monkeypatch, "remove_downloaded_game", Remove(game="quake3"), RemoveFailed
    )
    assert failed == RemoveFailed(game="quake3", reason=unexpected("removal"))
    assert alpha.local.operations.snapshot() == {}
    assert (view(alpha).downloaded, view(alpha).operation) == (True, None)
    await alpha.execute(Remove(game="quake3"))
    await events.first(RemoveFinished)
    assert not (alpha.game_dir / "quake3").exists()


async def test_a_bug_in_verify_is_a_plain_refusal(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify (and the uninstall dry run) claim nothing; a bug in them is refused with an
    operation error in plain words, and the next verify works."""
    alpha, _events = await installed(start_runtime, tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(lifecycle_module, "inspect_local", broken)
        with pytest.raises(OperationError) as raised:
            await alpha.execute(Verify(game="quake3"))
        assert str(raised.value) == unexpected("verify")
        with pytest.raises(OperationError) as raised:
            await alpha.execute(Uninstall(game="quake3", dry_run=True))
        assert str(raised.value) == unexpected("uninstall check")
    assert alpha.local.operations.snapshot() == {}
    reply = await alpha.execute(Verify(game="quake3"))
    assert isinstance(reply, VerifyReply)
    assert reply.ok
