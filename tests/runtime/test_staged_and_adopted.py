"""An update downloads beside the old version (a failed one leaves it playable and
shareable), and a found folder that holds exactly an offered version is adopted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.runtime.test_downloads import WAIT, hashed, make_game, peers, tree_digest
from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded

from lanspread.core.gameroot import UPDATE_DIR
from lanspread.core.lifecycle import GameState
from lanspread.files.ownership import load_record
from lanspread.files.staging import open_staging
from lanspread.runtime.commands import Adopt, Download, Install, Update
from lanspread.runtime.events import (
    DownloadBegin,
    DownloadFinished,
    InstallFailed,
    InstallFinished,
)
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.replies import AdoptReply, OperationStarted
from lanspread.runtime.runtime import PeerRuntime

Start = Callable[..., Any]
SKIP = ("local", ".lanspread.install.json", ".lanspread.files.json", UPDATE_DIR)


async def installed_with_save(runtime: PeerRuntime, events: RuntimeEvents) -> Path:
    """Install quake3, then a save appears in ``local/``: its path."""
    await runtime.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    save = runtime.game_dir / "quake3" / "local" / "saves" / "slot1.sav"
    save.parent.mkdir()
    save.write_bytes(b"level 7")
    return save


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
    save = await installed_with_save(alpha, events)
    before = tree_digest(old, skip=SKIP)
    await hashed(bravo)
    await events.until(
        lambda: alpha.network.sources_for("quake3")[0] == "2.0", "bravo's 2.0", within=WAIT
    )

    await alpha.execute(Update(game="quake3"))
    await events.first(DownloadFinished)
    failed = await events.first(InstallFailed)
    assert failed.game == "quake3"
    after = tree_digest(old, skip=SKIP)
    assert after == before, sorted(set(after) ^ set(before))
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
    await watch.first(InstallFinished)  # installing writes in the root: wait for its end
    assert tree_digest(charlie.game_dir / "quake3", skip=SKIP) == before


async def test_adopt_makes_an_exact_found_copy_a_local_copy_fetching_only_version_ini(
    start_runtime: Start, tmp_path: Path
) -> None:
    """alpha holds bravo's archives copied by hand, without ``version.ini``: found, not from
    lanspread. ``adopt`` hashes it equal to bravo's 1.0, then a download reuses every chunk
    and fetches only the sentinel; the player's files keep their inode and bytes and the
    ownership record names them adopted (never deleted)."""
    source = make_game(tmp_path / "bravo" / "games", version="1.0")
    root = tmp_path / "alpha" / "games" / "quake3"
    root.mkdir(parents=True)
    for archive in ("game.eti", "extra.eti"):
        (root / archive).write_bytes((source / archive).read_bytes())
    inodes = {name: (root / name).stat().st_ino for name in ("game.eti", "extra.eti")}
    alpha, bravo = await peers(start_runtime, "alpha", "bravo", install_policy=InstallPolicy.MANUAL)
    assert "quake3" in alpha.downloads.found
    await hashed(bravo)
    events = RuntimeEvents(alpha)
    await events.until(lambda: alpha.network.sources_for("quake3")[1], "bravo", within=WAIT)

    reply = await alpha.execute(Adopt(game="quake3"))
    assert reply == AdoptReply("quake3", "1.0", adopted=True, compared_files=2)
    await events.first(DownloadFinished)
    begin = events.of(DownloadBegin)[0]
    sentinel = (source / "version.ini").stat().st_size
    assert begin.resumed_bytes == begin.total_bytes - sentinel
    assert tree_digest(root) == tree_digest(source)
    assert {name: (root / name).stat().st_ino for name in inodes} == inodes
    record = load_record(root)
    assert record is not None
    assert all(name.adopted for name in record.names if name.path in inodes)
    assert "quake3" not in alpha.downloads.found


async def test_adopt_says_which_files_differ_and_changes_nothing(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A found copy with one archive truncated is not adopted: the reply names the file and
    the folder stays exactly as it was, still found."""
    source = make_game(tmp_path / "bravo" / "games", version="1.0")
    root = tmp_path / "alpha" / "games" / "quake3"
    root.mkdir(parents=True)
    (root / "game.eti").write_bytes((source / "game.eti").read_bytes()[:1000])
    before = tree_digest(root)
    alpha, bravo = await peers(start_runtime, "alpha", "bravo")
    await hashed(bravo)
    events = RuntimeEvents(alpha)
    await events.until(lambda: alpha.network.sources_for("quake3")[1], "bravo", within=WAIT)
    reply = await alpha.execute(Adopt(game="quake3"))
    size = (source / "game.eti").stat().st_size
    assert reply == AdoptReply(
        "quake3",
        "1.0",
        adopted=False,
        differs=("extra.eti: missing", f"game.eti: 1000 bytes, the game's has {size}"),
        compared_files=2,
    )
    assert tree_digest(root) == before
    assert not (root / ".lanspread.files.json").exists()
    assert "quake3" in alpha.downloads.found


async def test_a_verified_update_left_staged_is_installed_by_update_without_peers(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A verified 2.0 staged beside an installed 1.0 (a kill during its install) is found
    at start as an update to install: ``update`` installs it from the staged copy with no
    peer offering anything, then moves its archives in; the save is carried across."""
    old = make_game(tmp_path / "alpha" / "games", version="1.0")
    new = make_game(tmp_path / "source", version="2.0")
    (alpha,) = await peers(start_runtime, "alpha")
    events = RuntimeEvents(alpha)
    save = await installed_with_save(alpha, events)
    staged = open_staging(old)
    staged.mkdir()
    for path in new.iterdir():
        (staged / path.name).write_bytes(path.read_bytes())
    record_as_downloaded(staged, root_created=True)
    await asyncio.to_thread(alpha.downloads.recover)
    assert alpha.downloads.staged_ready == {"quake3": "2.0"}
    game = next(g for g in alpha.games() if g.id == "quake3")
    assert (game.state, game.installed_version) == (GameState.UPDATE_STAGED, "1.0")

    reply = await alpha.execute(Update(game="quake3"))
    assert reply == OperationStarted(game="quake3", operation="updating")
    finished = await events.first(InstallFinished, where=lambda e: e.version == "2.0")
    assert finished.kept == ("saves/slot1.sav",)
    assert tree_digest(old, skip=SKIP) == tree_digest(new, skip=SKIP)
    assert not (old / UPDATE_DIR).exists()
    assert save.read_bytes() == b"level 7"
