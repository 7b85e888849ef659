"""An install that finds a damaged archive: the player's sentence, no longer served to
peers, and served again once the files are removed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded
from tests.support.peers import sideload

from lanspread.core.servegate import GateState, RefusalReason, check_game_request
from lanspread.runtime.commands import Install, Redownload, Remove
from lanspread.runtime.events import InstallFailed, RemoveFinished

Start = Callable[..., Any]
SENTENCE = "data.eti is damaged or not a game archive; download it again"


async def test_a_damaged_archive_is_said_plainly_and_withheld(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Garbage in data.eti: the failure is the player's sentence, the game view says the
    copy is damaged, the serve gate withholds it, and removing the files lifts that."""
    record_as_downloaded(
        sideload(tmp_path / "alpha" / "games", "quake3", payload=b"not an archive at all")
    )
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    failed = await events.first(InstallFailed)
    assert failed.reason == SENTENCE
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert view.damaged == SENTENCE
    scope = alpha.network.seeder.scope()
    assert scope.gate_state.withheld == frozenset({"quake3"})
    await alpha.execute(Remove(game="quake3"))
    await events.first(RemoveFinished)
    assert next(g for g in alpha.games() if g.id == "quake3").damaged is None
    assert alpha.network.seeder.scope().gate_state.withheld == frozenset()


def test_the_gate_refuses_a_withheld_game() -> None:
    """A withheld game is refused before the disk is read, with its own reason."""
    state = GateState(catalog_ids={"quake3"}, active_operations=(), withheld={"quake3"})
    refusal = check_game_request(
        "quake3",
        catalog_ids=state.catalog_ids,
        active_operations=state.active_operations,
        withheld=state.withheld,
    )
    assert refusal is not None
    assert (refusal.reason, refusal.detail) == (
        RefusalReason.WITHHELD,
        "quake3 failed to install: an archive is damaged",
    )


async def test_redownload_removes_the_damaged_copy_first(
    start_runtime: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Re-download removes the files and lifts the withholding; with no peer to download
    from, the refusal is logged and the game is simply not downloaded any more."""
    record_as_downloaded(
        sideload(tmp_path / "alpha" / "games", "quake3", payload=b"not an archive at all")
    )
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFailed)
    with caplog.at_level(logging.WARNING, logger="lanspread.runtime.lifecycle"):
        await alpha.execute(Redownload(game="quake3"))
        await events.first(RemoveFinished)
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.downloaded, view.damaged) == (False, None)
    assert not (alpha.game_dir / "quake3").exists()
    assert "downloading quake3 again after its removal: no peer offers Quake3" in caplog.text
