"""What a stopped download looks like in the game snapshot, and cancel in every phase."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.test_downloads import CHUNK, MiB, paused_by_departure, serving_pair
from tests.support.download_roots import paused_root
from tests.support.events import RuntimeEvents
from tests.support.waiting import wait_until

from lanspread.core.gameroot import DOWNLOAD_JOURNAL_FILE
from lanspread.core.lifecycle import Command, GameState
from lanspread.errors import InvalidGameState, StorageError
from lanspread.runtime import downloads as downloads_module
from lanspread.runtime import transfer as transfer_module
from lanspread.runtime.commands import Cancel, Download, SetGameDir
from lanspread.runtime.events import (
    ChunkFinished,
    DownloadAllPeersGone,
    DownloadBegin,
    DownloadCancelled,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    InstallBegin,
)
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.replies import DownloadState, GameView
from lanspread.runtime.runtime import PeerRuntime

Start = Callable[..., Any]
# The promise to the player: a cancel is answered within a second in every phase.
CANCEL_BUDGET = 1.0


def quake(runtime: PeerRuntime) -> GameView:
    return next(g for g in runtime.games() if g.id == "quake3")


async def test_departed_sources_pause_with_why_and_how_far(
    start_runtime: Start, tmp_path: Path
) -> None:
    """When every source leaves, the snapshot itself says paused, why (the source that
    left, by name, and how far the download had got), and the journaled bytes; the
    event that announces the pause says the same words."""
    alpha, _bravo, events = await paused_by_departure(start_runtime, tmp_path)
    game = quake(alpha)
    percent = int(100 * game.paused_bytes / game.paused_total_bytes)
    assert [e.message for e in events.of(DownloadAllPeersGone)] == [f"bravo left at {percent}%"]
    assert game.download_state == DownloadState(
        state="paused",
        reason="all-peers-gone",
        message=f"bravo left at {percent}%",
        done_bytes=game.paused_bytes,
        total_bytes=game.paused_total_bytes,
        discardable=True,
    )
    assert 0 < game.paused_bytes < game.paused_total_bytes


async def test_a_restart_shows_the_download_paused_and_discard_removes_it(
    start_runtime: Start, tmp_path: Path
) -> None:
    """After a restart the snapshot shows the download paused "interrupted by a restart"
    (with no peer online); cancel discards it through the download's sweep."""
    alpha, bravo = await serving_pair(
        start_runtime, tmp_path, size=96 * MiB, install_policy=InstallPolicy.MANUAL
    )
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(ChunkFinished, where=lambda _: len(events.of(ChunkFinished)) >= 4)
    alpha.shutdown()
    await alpha.wait_stopped()
    bravo.shutdown()
    await bravo.wait_stopped()
    alpha = await start_runtime("alpha", chunk_size=CHUNK, install_policy=InstallPolicy.MANUAL)
    game = quake(alpha)
    assert (game.peer_count, game.operation) == (0, None)
    state = game.download_state
    assert state is not None
    assert (state.state, state.reason, state.message) == (
        "paused",
        "restart",
        "interrupted by a restart",
    )
    assert 0 < state.done_bytes < state.total_bytes
    assert state.discardable
    assert (game.state, game.actions) == (GameState.PAUSED, (Command.DOWNLOAD, Command.CANCEL))
    events = RuntimeEvents(alpha)
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled)
    assert not (alpha.game_dir / "quake3").exists()
    assert quake(alpha).download_state is None
    assert (quake(alpha).state, quake(alpha).actions) == (GameState.UNAVAILABLE, ())


async def test_a_failed_download_shows_failed_and_can_be_discarded(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the journal exists shows as failed with its reason and the bytes on
    disk; cancel discards the files; a retry clears the failure."""
    alpha, _bravo = await serving_pair(
        start_runtime, tmp_path, size=8 * MiB, install_policy=InstallPolicy.MANUAL
    )

    def broken(self: Any, *args: object) -> None:
        raise RuntimeError("simulated bug")

    events = RuntimeEvents(alpha)
    with monkeypatch.context() as patch:
        patch.setattr(transfer_module.DownloadRun, "_begin", broken)
        await alpha.execute(Download(game="quake3"))
        await events.first(DownloadFailed)
    assert (alpha.game_dir / "quake3" / DOWNLOAD_JOURNAL_FILE).exists()
    state = quake(alpha).download_state
    assert state is not None
    assert (state.state, state.reason, state.message, state.discardable) == (
        "failed",
        "failed",
        "simulated bug",
        True,
    )
    assert state.total_bytes > 0
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled)
    assert not (alpha.game_dir / "quake3").exists()
    assert quake(alpha).download_state is None
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    assert quake(alpha).download_state is None


async def test_a_failure_without_files_shows_failed_but_not_discardable(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure before anything reached the disk shows the reason, nothing to discard."""
    alpha, _bravo = await serving_pair(start_runtime, tmp_path, size=MiB)

    def broken(*args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(alpha.downloads, "_prepare", broken)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFailed)
    assert quake(alpha).download_state == DownloadState(
        state="failed",
        reason="failed",
        message="simulated bug",
        done_bytes=0,
        total_bytes=0,
        discardable=False,
    )


class Stall:
    """An awaitable step that never finishes on its own; ``entered`` tells it was reached."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._never = asyncio.Event()

    async def __call__(self, *args: object) -> Any:
        self.entered.set()
        await self._never.wait()


async def cancel_stalled(
    runtime: PeerRuntime, monkeypatch: pytest.MonkeyPatch, target: object, step: str
) -> tuple[RuntimeEvents, float]:
    """Download quake3 with ``target.step`` stalled, cancel once the stall is reached:
    the runtime's events since the download and the cancel's latency in seconds."""
    stall = Stall()
    monkeypatch.setattr(target, step, stall)
    events = RuntimeEvents(runtime)
    await runtime.execute(Download(game="quake3"))
    await asyncio.wait_for(stall.entered.wait(), 20.0)
    began = time.monotonic()
    await runtime.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled, within=5.0)
    return events, time.monotonic() - began


async def test_cancel_during_the_source_check_answers_at_once(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that never answers the manifest request (the check would wait its full
    timeout) does not hold a cancel: it completes well within a second."""
    alpha, _bravo = await serving_pair(start_runtime, tmp_path, size=MiB)
    events, latency = await cancel_stalled(alpha, monkeypatch, alpha.network, "fetch_manifest")
    assert latency < CANCEL_BUDGET / 2, f"cancel took {latency:.2f}s"
    assert events.of(DownloadBegin) == []
    assert alpha.local.operations.snapshot() == {}
    assert quake(alpha).download_state is None


async def test_cancel_during_a_stalled_transfer_answers_at_once(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that never hands out a data ticket does not hold a cancel."""
    alpha, _bravo = await serving_pair(start_runtime, tmp_path, size=4 * MiB)
    events, latency = await cancel_stalled(alpha, monkeypatch, alpha.network, "request_ticket")
    assert latency < CANCEL_BUDGET / 2, f"cancel took {latency:.2f}s"
    assert events.of(DownloadBegin) != []
    assert not (alpha.game_dir / "quake3").exists()


async def test_cancel_during_the_sentinel_phase_answers_at_once(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every payload byte is in, the sentinel fetch stalls: a cancel still completes
    within a second, commits no version.ini and leaves nothing behind."""
    alpha, _bravo = await serving_pair(
        start_runtime, tmp_path, size=2 * MiB, install_policy=InstallPolicy.MANUAL
    )
    events, latency = await cancel_stalled(
        alpha, monkeypatch, transfer_module.DownloadRun, "_fetch_into_memory"
    )
    assert latency < CANCEL_BUDGET / 2, f"cancel took {latency:.2f}s"
    assert events.of(ChunkFinished) != []
    assert events.of(DownloadFinished) == []
    assert not (alpha.game_dir / "quake3").exists()


async def test_progress_keeps_ticking_while_a_download_waits(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every payload byte is in and the sentinel fetch stalls: the progress timer the
    engine asked for still fires (the wait re-arms when the engine's deadline moves),
    so the player sees the payload counted before the download ends, not only after."""
    alpha, _bravo = await serving_pair(
        start_runtime, tmp_path, size=2 * MiB, install_policy=InstallPolicy.MANUAL
    )
    stall = Stall()
    monkeypatch.setattr(transfer_module.DownloadRun, "_fetch_into_memory", stall)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await asyncio.wait_for(stall.entered.wait(), 20.0)
    total = events.of(DownloadBegin)[0].total_bytes
    await wait_until(
        lambda: any(p.downloaded_bytes > total // 2 for p in events.of(DownloadProgress)),
        "a progress sample counting the payload",
        timeout=5.0,
    )
    assert events.of(DownloadFinished) == []
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled, within=5.0)


async def test_cancel_during_the_sentinel_commit_keeps_the_download_and_installs_nothing(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel that arrives while version.ini is being committed cannot undo the commit:
    the download finishes at once after it, stays downloaded and is not installed (the
    policy is auto), and the game is released."""
    alpha, _bravo = await serving_pair(start_runtime, tmp_path, size=2 * MiB)
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()
    release = threading.Event()
    commit_all = transfer_module.DownloadRun._commit_all

    def held_commit(self: Any, sentinel: bytes) -> None:
        loop.call_soon_threadsafe(entered.set)
        release.wait(timeout=20.0)
        commit_all(self, sentinel)

    monkeypatch.setattr(transfer_module.DownloadRun, "_commit_all", held_commit)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await asyncio.wait_for(entered.wait(), 20.0)
    began = time.monotonic()
    await alpha.execute(Cancel(game="quake3"))
    release.set()
    await events.first(DownloadFinished, within=5.0)
    latency = time.monotonic() - began
    assert latency < CANCEL_BUDGET / 2, f"cancel took {latency:.2f}s"
    assert events.of(DownloadCancelled) == []
    assert events.of(InstallBegin) == []
    game = quake(alpha)
    assert (game.downloaded, game.installed, game.operation) == (True, False, None)
    assert game.download_state is None


async def test_a_new_game_dir_forgets_the_old_paused_download(
    start_runtime: Start, tmp_path: Path
) -> None:
    """After a switch of game folder the old folder's paused download is not shown and
    cannot be discarded (which would act on the new folder); switching back finds it."""
    old_dir = tmp_path / "alpha" / "games"
    done, total = paused_root(old_dir, done=2)
    alpha = await start_runtime("alpha", chunk_size=CHUNK)
    assert quake(alpha).download_state is not None
    new_dir = tmp_path / "elsewhere"
    await alpha.execute(SetGameDir(path=str(new_dir)))
    assert quake(alpha).download_state is None
    with pytest.raises(InvalidGameState, match="Quake3 has no download to cancel"):
        await alpha.execute(Cancel(game="quake3"))
    await alpha.execute(SetGameDir(path=str(old_dir)))
    state = quake(alpha).download_state
    assert state is not None
    assert (state.reason, state.done_bytes, state.total_bytes) == ("restart", done, total)


async def test_a_discard_the_disk_refuses_keeps_showing_the_download(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the discard sweep fails, the files it left still show, as failed with the
    reason, and can be discarded again."""
    done, total = paused_root(tmp_path / "alpha" / "games", done=2)
    alpha = await start_runtime("alpha", chunk_size=CHUNK)

    def refused(root: Path) -> None:
        raise StorageError("cannot remove quake3.eti: Permission denied")

    events = RuntimeEvents(alpha)
    with monkeypatch.context() as patch:
        patch.setattr(downloads_module, "_discard", refused)
        await alpha.execute(Cancel(game="quake3"))
        await events.first(DownloadCancelled)
    assert quake(alpha).download_state == DownloadState(
        state="failed",
        reason="failed",
        message="discarding the download failed: cannot remove quake3.eti: Permission denied",
        done_bytes=done,
        total_bytes=total,
        discardable=True,
    )
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled, lambda _: len(events.of(DownloadCancelled)) >= 2)
    assert not (alpha.game_dir / "quake3").exists()
    assert quake(alpha).download_state is None
