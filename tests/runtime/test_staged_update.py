"""An update downloads beside the old version: a failed one leaves it playable and shareable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.runtime.test_downloads import WAIT, hashed, make_game, peers, tree_digest
from tests.support.events import RuntimeEvents

from lanspread.core.gameroot import UPDATE_DIR
from lanspread.runtime.commands import Download, Install, Update
from lanspread.runtime.events import DownloadFinished, InstallFailed, InstallFinished

Start = Callable[..., Any]
SKIP = ("local", ".lanspread.install.json", ".lanspread.files.json", UPDATE_DIR)


async def test_a_failed_update_leaves_the_old_version_playable_and_shareable(
    start_runtime: Start, tmp_path: Path
) -> None:
    """alpha has 1.0 installed with a save; bravo offers a 2.0 whose archive does not
    extract. alpha's update downloads 2.0 beside 1.0 (served all along), its install fails:
    1.0's archives, ``local/`` and the save are unchanged, 1.0 is still installed and
    offered, and once bravo is gone charlie downloads 1.0 from alpha byte for byte."""
    old = make_game(tmp_path / "alpha" / "games", version="1.0")
    new = make_game(tmp_path / "bravo" / "games", version="2.0")
    (new / "game.eti").write_bytes(b"PK\x03\x04 not really an archive")
    alpha, bravo, charlie = await peers(start_runtime, "alpha", "bravo", "charlie")
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    save = old / "local" / "saves" / "slot1.sav"
    save.parent.mkdir()
    save.write_bytes(b"level 7")
    before = tree_digest(old, skip=SKIP)
    await hashed(bravo)
    await events.until(
        lambda: alpha.network.sources_for("quake3")[0] == "2.0", "bravo's 2.0", within=WAIT
    )

    await alpha.execute(Update(game="quake3"))
    await events.first(DownloadFinished)
    failed = await events.first(InstallFailed)
    assert failed.game == "quake3"
    assert tree_digest(old, skip=SKIP) == before
    assert save.read_bytes() == b"level 7"
    assert (old / UPDATE_DIR / "quake3" / "version.ini").read_text().strip() == "2.0"
    game = next(g for g in alpha.games() if g.id == "quake3")
    assert (game.installed, game.installed_version, game.local_version) == (True, "1.0", "1.0")
    assert alpha.local.operations.root_busy() == frozenset()

    bravo.shutdown()
    await bravo.wait_stopped()
    await hashed(alpha)
    watch = RuntimeEvents(charlie)
    await watch.until(
        lambda: charlie.network.sources_for("quake3")[0] == "1.0", "alpha's 1.0", within=WAIT
    )
    await charlie.execute(Download(game="quake3"))
    await watch.first(DownloadFinished)
    assert tree_digest(charlie.game_dir / "quake3", skip=SKIP) == before
