"""The player's files and the installed version through a real runtime, with real archives.

The update cases start where a finished download of 2.0 leaves a game installed
at 1.0: the archives and ``version.ini`` are 2.0, ``local/`` and its record 1.0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.support.archives import ArchiveFormat, write_game_root
from tests.support.events import RuntimeEvents

from lanspread.errors import InvalidGameState
from lanspread.runtime.commands import Install, Remove, Repair, Uninstall, Update, Verify
from lanspread.runtime.events import (
    InstallFailed,
    InstallFinished,
    RenamedFile,
    UninstallFinished,
)
from lanspread.runtime.replies import OperationStarted, UninstallPlan, VerifyReply
from lanspread.runtime.runtime import PeerRuntime

Start = Callable[..., Any]

V1 = {"q3.exe": b"exe 1.0", "baseq3/q3config.cfg": b"bind w +forward"}
V2 = {"q3.exe": b"exe 2.0", "baseq3/q3config.cfg": b"bind w +forward\nseta r_mode 6"}
SAVE = "saves/slot1.sav"
CONFIG = "baseq3/q3config.cfg"


def sideload(game_dir: Path, files: dict[str, bytes], version: str) -> Path:
    """A downloaded quake3 root holding ``files`` in one zip at ``version``."""
    root = game_dir / "quake3"
    for old in root.glob("*.eti") if root.exists() else ():
        old.unlink()
    return write_game_root(root, {"game.eti": (ArchiveFormat.ZIP, files)}, version=version)


async def installed_with_saves(runtime: PeerRuntime) -> Path:
    """Install 1.0, then play: a save appears and the config gets the player's bindings."""
    events = RuntimeEvents(runtime)
    await runtime.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    local = runtime.game_dir / "quake3" / "local"
    (local / "saves").mkdir()
    (local / SAVE).write_bytes(b"level 7")
    (local / CONFIG).write_bytes(b"bind e +forward")
    return local


def view(runtime: PeerRuntime) -> tuple[bool, str | None, str | None, bool]:
    game = next(g for g in runtime.games() if g.id == "quake3")
    return game.installed, game.installed_version, game.local_version, game.update_available


async def test_install_records_the_version_it_installed(
    start_runtime: Start, tmp_path: Path
) -> None:
    """After an install the library reports the installed version, with no update pending."""
    sideload(tmp_path / "alpha" / "games", V1, "1.0")
    alpha = await start_runtime("alpha")
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    finished = await events.first(InstallFinished)
    assert finished == InstallFinished(game="quake3", version="1.0")
    assert view(alpha) == (True, "1.0", "1.0", False)


async def test_killed_update_leaves_1_0_labelled_1_0_and_install_finishes_it(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A kill mid-update recovers to 1.0 with the save; the library says 1.0 with 2.0 to
    install, and install carries the save and keeps the edited config as .mine."""
    games = tmp_path / "alpha" / "games"
    sideload(games, V1, "1.0")
    alpha = await start_runtime("alpha")
    local = await installed_with_saves(alpha)
    alpha.shutdown()
    await alpha.wait_stopped()
    root = sideload(games, V2, "2.0")
    # What a kill -9 right after install-begin of the update leaves behind.
    (root / ".lanspread.json").write_text(
        '{"format": 1, "game_id": "quake3", "intent": "Updating"}'
    )
    local.rename(root / ".local.backup")
    (root / ".local.installing").mkdir()
    (root / ".local.installing" / "q3.exe").write_bytes(b"exe 2")

    alpha = await start_runtime("alpha")
    assert view(alpha) == (True, "1.0", "2.0", True)
    assert (local / SAVE).read_bytes() == b"level 7"
    events = RuntimeEvents(alpha)
    reply = await alpha.execute(Install(game="quake3"))
    assert reply == OperationStarted(game="quake3", operation="updating")
    finished = await events.first(InstallFinished)
    assert finished == InstallFinished(
        game="quake3",
        version="2.0",
        kept=(SAVE,),
        renamed=(RenamedFile(path=CONFIG, kept_as=CONFIG + ".mine"),),
    )
    assert (local / SAVE).read_bytes() == b"level 7"
    assert (local / CONFIG).read_bytes() == V2[CONFIG]
    assert (local / (CONFIG + ".mine")).read_bytes() == b"bind e +forward"
    assert view(alpha) == (True, "2.0", "2.0", False)
    with pytest.raises(InvalidGameState, match=r"^Quake3 is already installed$"):
        await alpha.execute(Install(game="quake3"))


async def test_failed_update_keeps_1_0_and_update_retries_it(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A corrupt 2.0 archive fails the update; 1.0 stays installed and labelled, and
    ``update`` (no peer offers anything newer) installs the downloaded 2.0 once it is good."""
    games = tmp_path / "alpha" / "games"
    sideload(games, V1, "1.0")
    alpha = await start_runtime("alpha")
    local = await installed_with_saves(alpha)
    root = games / "quake3"
    (root / "game.eti").unlink()
    (root / "game.eti").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "version.ini").write_text("2.0\n")
    await alpha.local.full_scan()
    events = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFailed)
    assert view(alpha) == (True, "1.0", "2.0", True)
    assert (local / SAVE).read_bytes() == b"level 7"

    sideload(games, V2, "2.0")
    await alpha.local.full_scan()
    reply = await alpha.execute(Update(game="quake3"))
    assert reply == OperationStarted(game="quake3", operation="updating")
    finished = await events.first(InstallFinished)
    assert (finished.version, finished.kept) == ("2.0", (SAVE,))
    assert view(alpha) == (True, "2.0", "2.0", False)


async def test_verify_reports_changed_missing_and_added(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Verify compares local/ with the record; repair restores the missing exe."""
    sideload(tmp_path / "alpha" / "games", V1, "1.0")
    alpha = await start_runtime("alpha")
    local = await installed_with_saves(alpha)
    (local / "q3.exe").unlink()
    reply = await alpha.execute(Verify(game="quake3"))
    assert reply == VerifyReply(
        game="quake3",
        version="1.0",
        ok=False,
        changed=(CONFIG,),
        missing=("q3.exe",),
        added=(SAVE,),
        shipped_files=2,
    )
    events = RuntimeEvents(alpha)
    await alpha.execute(Repair(game="quake3"))
    finished = await events.first(InstallFinished)
    assert finished.kept == (SAVE,)
    assert finished.renamed == (RenamedFile(path=CONFIG, kept_as=CONFIG + ".mine"),)
    repaired = await alpha.execute(Verify(game="quake3"))
    assert isinstance(repaired, VerifyReply)
    assert (repaired.ok, repaired.added) == (True, (CONFIG + ".mine", SAVE))


async def test_uninstall_keeping_saves_and_reinstalling(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A dry run says what goes; keep_saves leaves the player's files; install brings the
    game back around them."""
    sideload(tmp_path / "alpha" / "games", V1, "1.0")
    alpha = await start_runtime("alpha")
    local = await installed_with_saves(alpha)
    plan = await alpha.execute(Uninstall(game="quake3", keep_saves=True, dry_run=True))
    assert plan == UninstallPlan(
        game="quake3",
        keep_saves=True,
        delete_files=1,
        delete_bytes=len(V1["q3.exe"]),
        players_files=(CONFIG, SAVE),
        players_bytes=len(b"level 7") + len(b"bind e +forward"),
    )
    assert (local / "q3.exe").exists()
    events = RuntimeEvents(alpha)
    await alpha.execute(Uninstall(game="quake3", keep_saves=True))
    finished = await events.first(UninstallFinished)
    assert finished == UninstallFinished(game="quake3", kept=(CONFIG, SAVE))
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*")) == [
        "baseq3",
        CONFIG,
        "saves",
        SAVE,
    ]
    assert view(alpha) == (False, None, "1.0", False)
    await alpha.execute(Install(game="quake3"))
    installed = await events.first(InstallFinished)
    assert installed.renamed == (RenamedFile(path=CONFIG, kept_as=CONFIG + ".mine"),)
    assert (local / SAVE).read_bytes() == b"level 7"
    assert view(alpha) == (True, "1.0", "1.0", False)


def test_finished_events_encode_their_kept_and_renamed_files() -> None:
    """The JSON a front end gets lists the kept and renamed files by name."""
    event = InstallFinished(
        game="quake3",
        version="2.0",
        kept=(SAVE,),
        renamed=(RenamedFile(path=CONFIG, kept_as=CONFIG + ".mine"),),
    )
    assert msgspec.json.decode(msgspec.json.encode(event)) == {
        "event": "install-finished",
        "game": "quake3",
        "version": "2.0",
        "kept": [SAVE],
        "renamed": [{"path": CONFIG, "kept_as": CONFIG + ".mine"}],
    }


async def test_kept_files_block_remove_and_keep_saves_needs_a_record(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Remove refuses while local/ holds kept files; without a record keep_saves is refused
    at once, dry run included."""
    games = tmp_path / "alpha" / "games"
    sideload(games, V1, "1.0")
    alpha = await start_runtime("alpha")
    await installed_with_saves(alpha)
    events = RuntimeEvents(alpha)
    await alpha.execute(Uninstall(game="quake3", keep_saves=True))
    await events.first(UninstallFinished)
    with pytest.raises(
        InvalidGameState, match=r"^quake3: local/ still holds the files you kept; move them out"
    ):
        await alpha.execute(Remove(game="quake3"))
    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    (games / "quake3" / ".lanspread.install.json").unlink()
    await alpha.local.full_scan()
    message = (
        r"^quake3 has no install record, so its files cannot be told from yours; "
        r"repair it first, or uninstall without keep_saves$"
    )
    with pytest.raises(InvalidGameState, match=message):
        await alpha.execute(Uninstall(game="quake3", keep_saves=True))
    with pytest.raises(InvalidGameState, match=message):
        await alpha.execute(Uninstall(game="quake3", keep_saves=True, dry_run=True))
    plan = await alpha.execute(Uninstall(game="quake3", dry_run=True))
    assert isinstance(plan, UninstallPlan)
    assert (plan.delete_files, plan.players_files) == (4, ())  # exe, config, .mine, save
