"""Upload limits and rates through real runtimes: the command applies and keeps the limits,
a game caps them, and the rates name who pulls and who serves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.test_downloads import make_game, peers, serving
from tests.runtime.test_lifecycle import sideload_playable
from tests.support.events import RuntimeEvents
from tests.support.platforms import make_fifo
from tests.support.waiting import wait_until

from lanspread.core.uploads import DEFAULT_GAMING_CAP, MIN_LIMIT, UNLIMITED
from lanspread.errors import ConfigError
from lanspread.runtime.commands import Download, Install, Play, SetUploadLimit
from lanspread.runtime.events import DownloadFinished, GameExited, GameStarted, InstallFinished
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.seeding import UploadStatus
from lanspread.storage.settings import SettingsStore

Start = Callable[..., Any]
MIB = 1024 * 1024


async def test_set_upload_limit_applies_at_once_and_is_kept(
    start_runtime: Start, tmp_path: Path
) -> None:
    """The command changes the limit in force and the settings file; a field left out stays."""
    alpha = await start_runtime("alpha")
    assert alpha.uploads().effective_limit == UNLIMITED
    assert alpha.uploads().gaming_cap == DEFAULT_GAMING_CAP
    reply = await alpha.execute(SetUploadLimit(upload_limit=50 * MIB))
    assert isinstance(reply, UploadStatus)
    assert (reply.upload_limit, reply.gaming_cap, reply.effective_limit) == (
        50 * MIB,
        DEFAULT_GAMING_CAP,
        50 * MIB,
    )
    await alpha.execute(SetUploadLimit(gaming_cap=5 * MIB))
    saved = SettingsStore(tmp_path / "alpha" / "state").load()
    assert (saved.upload_limit, saved.gaming_upload_cap) == (50 * MIB, 5 * MIB)
    assert alpha.status().upload_limit == 50 * MIB


async def test_a_limit_out_of_bounds_is_refused_and_nothing_changes(start_runtime: Start) -> None:
    """Below the lowest limit is refused with the bounds named; the old limit stays."""
    alpha = await start_runtime("alpha")
    with pytest.raises(ConfigError, match=r"^the upload limit must be 0 \(unlimited\) or between"):
        await alpha.execute(SetUploadLimit(upload_limit=MIN_LIMIT - 1))
    assert alpha.uploads().upload_limit == UNLIMITED


async def test_a_running_game_caps_uploads_until_it_exits(
    start_runtime: Start, tmp_path: Path
) -> None:
    """While a game launched here runs the gaming-now cap is the limit in force; after it
    exits the player's own limit is back."""
    sideload_playable(tmp_path / "alpha" / "games")
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    await alpha.execute(SetUploadLimit(upload_limit=UNLIMITED, gaming_cap=8 * MIB))
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    local = alpha.game_dir / "quake3" / "local"
    make_fifo(local / "release")
    (local / "start.sh").write_bytes(b"#!/bin/sh\nread line < release\nexit 0\n")
    await alpha.execute(Play(game="quake3", run_unpinned=True))
    await events.first(GameStarted)
    status = alpha.status()
    assert (status.gaming, status.upload_limit) == (True, 8 * MIB)
    data = alpha.network.seeder.data_server
    assert data is not None
    assert data.shaper.limit == 8 * MIB
    await asyncio.to_thread((local / "release").write_text, "go\n")
    await events.first(GameExited)
    status = alpha.status()
    assert (status.gaming, status.upload_limit) == (False, UNLIMITED)
    assert data.shaper.limit == UNLIMITED


async def test_rates_name_who_pulls_and_who_serves(start_runtime: Start, tmp_path: Path) -> None:
    """After a download the source's upload rates name the downloader, the downloader's
    download rates name the source, and both status totals are positive."""
    make_game(tmp_path / "bravo" / "games", size=2 * MIB)
    alpha, bravo = await peers(start_runtime, "alpha", "bravo", install_policy=InstallPolicy.MANUAL)
    await serving(alpha, bravo)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    await wait_until(lambda: alpha.peer_id in bravo.uploads().rates, "bravo to meter alpha")
    assert set(alpha.download_rates()) == {bravo.peer_id}
    assert alpha.status().download_rate > 0
    assert bravo.status().upload_rate > 0
    assert (alpha.status().upload_rate, bravo.download_rates()) == (0.0, {})
