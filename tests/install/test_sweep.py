"""Startup recovery on real game roots, the parked-sentinel rule and the discard sweep."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.conftest import require_tool
from tests.support.install_roots import (
    NEW_FILES,
    OLD_INSTALL,
    downloaded_snapshot,
    installed_snapshot,
    make_root,
    snapshot,
)
from tests.support.ownership import record_as_downloaded
from tests.support.trees import write_tree

import lanspread.install.sweep as sweep
from lanspread.core.gameroot import OWNERSHIP_FILE
from lanspread.core.recovery import Intent, IntentLog, RecoveryOutcome
from lanspread.errors import StorageError
from lanspread.install.intent import has_marker, read_intent, write_intent, write_marker
from lanspread.install.sweep import (
    discard_download,
    drop_interrupted_update_sentinel,
    recover_game_root,
)


def _dir(root: Path, name: str, files: dict[str, bytes], *, marked: bool = False) -> None:
    (root / name).mkdir()
    write_tree(root / name, files)
    if marked:
        write_marker(root / name)


# --- recover_game_root ------------------------------------------------------------------


def test_a_settled_root_is_left_exactly_as_it_is(game_dir: Path) -> None:
    """No intent and no leftovers: recovery reports CLEAN and changes nothing."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.CLEAN
    assert report.problems == ()
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_a_missing_root_is_clean(game_dir: Path) -> None:
    """Recovering a root that does not exist is a no-op, not an error."""
    report = recover_game_root(game_dir / "quake3")
    assert report.outcome is RecoveryOutcome.CLEAN
    assert not (game_dir / "quake3").exists()


def test_users_own_backup_without_marker_is_left_alone(game_dir: Path) -> None:
    """A markerless ``.local.backup/`` with intent None belongs to the user: untouched."""
    root = make_root(game_dir)
    _dir(root, ".local.backup", {"my-notes.txt": b"mine"})
    _dir(root, ".local.installing", {"also-mine.txt": b"mine too"})
    before = snapshot(root)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.CLEAN
    assert snapshot(root) == before


def test_stale_marked_leftovers_are_cleaned(game_dir: Path) -> None:
    """With intent None, marked staging is removed and a marked backup is restored to local/."""
    root = make_root(game_dir)
    _dir(root, ".local.installing", {"half.bin": b"half"}, marked=True)
    _dir(root, ".local.backup", OLD_INSTALL, marked=True)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.CLEANED_STALE
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_interrupted_update_with_markerless_backup_is_restored(game_dir: Path) -> None:
    """A kill between the move and the marker: the Updating intent proves the backup is ours."""
    root = make_root(game_dir)
    write_intent(root, Intent.UPDATING)
    _dir(root, ".local.backup", OLD_INSTALL)
    _dir(root, ".local.installing", {"quake3.exe": b"partial"})
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.ROLLED_BACK
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_update_promotion_conflict_row_keeps_the_players_local(game_dir: Path) -> None:
    """Updating with local, staging and backup: staging proves the promotion never ran, so
    local/ is the player's. Nothing is touched, the intent stays and the report says what to
    do; once local/ is moved out the next start restores the old install."""
    root = make_root(game_dir)
    write_intent(root, Intent.UPDATING)
    _dir(root, "local", {"conflict.txt": b"the player's own"})
    _dir(root, ".local.installing", NEW_FILES, marked=True)
    _dir(root, ".local.backup", OLD_INSTALL, marked=True)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.NEEDS_ATTENTION
    assert report.problems == (
        f"{root / 'local'} appeared during the update and is not lanspread's; "
        "move it out of the game folder",
    )
    assert (root / "local" / "conflict.txt").read_bytes() == b"the player's own"
    assert read_intent(root) is Intent.UPDATING
    (root / "local").rename(game_dir / "moved-out")
    assert recover_game_root(root).outcome is RecoveryOutcome.ROLLED_BACK
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_committed_update_drops_the_backup(game_dir: Path) -> None:
    """Updating with local and backup but no staging: committed, the backup goes."""
    root = make_root(game_dir)
    write_intent(root, Intent.UPDATING)
    _dir(root, "local", NEW_FILES)
    _dir(root, ".local.backup", OLD_INSTALL, marked=True)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.ROLLED_FORWARD
    assert snapshot(root) == installed_snapshot(NEW_FILES)


def test_interrupted_uninstall_is_finished(game_dir: Path) -> None:
    """Uninstalling with only a backup: the deletion the user asked for is completed."""
    root = make_root(game_dir)
    write_intent(root, Intent.UNINSTALLING)
    _dir(root, ".local.backup", {"saves/slot1.sav": b"x"}, marked=True)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.ROLLED_FORWARD
    assert snapshot(root) == downloaded_snapshot()


def test_uninstall_that_cannot_be_finished_restores_the_rest(game_dir: Path) -> None:
    """If the backup cannot be deleted, what is left goes back to local/ and it is reported."""
    root = make_root(game_dir)
    write_intent(root, Intent.UNINSTALLING)
    _dir(root, ".local.backup", OLD_INSTALL, marked=True)
    saves = root / ".local.backup" / "saves"
    chattr = require_tool("chattr")
    subprocess.run([chattr, "+i", str(saves)], check=True)
    try:
        report = recover_game_root(root)
        after = snapshot(root)
    finally:
        subprocess.run([chattr, "-i", str(root / "local" / "saves")], check=False)
        subprocess.run([chattr, "-i", str(saves)], check=False)
    assert report.outcome is RecoveryOutcome.ROLLED_BACK
    assert report.problems == (
        f"cannot delete {root / '.local.backup'}: Operation not permitted (slot1.sav)",
    )
    assert after["local/saves/slot1.sav"] == b"the user's own save"
    assert after.items() <= installed_snapshot(OLD_INSTALL).items()
    assert read_intent(root) is Intent.NONE


def test_a_failing_step_keeps_the_intent_for_the_next_start(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping a committed update's backup fails: the error surfaces and the intent stays."""
    root = make_root(game_dir)
    write_intent(root, Intent.UPDATING)
    _dir(root, "local", NEW_FILES)
    _dir(root, ".local.backup", OLD_INSTALL, marked=True)

    def refuse(path: Path) -> bool:
        raise StorageError(f"cannot delete {path}: Input/output error")

    monkeypatch.setattr(sweep, "remove_entry", refuse)
    with pytest.raises(StorageError) as caught:
        recover_game_root(root)
    assert str(caught.value) == f"cannot delete {root / '.local.backup'}: Input/output error"
    assert read_intent(root) is Intent.UPDATING
    monkeypatch.undo()
    assert recover_game_root(root).outcome is RecoveryOutcome.ROLLED_FORWARD
    assert snapshot(root) == installed_snapshot(NEW_FILES)


def test_unreadable_intent_with_ambiguous_backup_needs_attention(game_dir: Path) -> None:
    """A corrupt log next to local/ and a marked backup: nothing deleted, the log is kept."""
    root = make_root(game_dir)
    (root / ".lanspread.json").write_text("{torn")
    _dir(root, "local", NEW_FILES)
    _dir(root, ".local.backup", OLD_INSTALL, marked=True)
    before = snapshot(root)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.NEEDS_ATTENTION
    assert report.facts.intent is IntentLog.UNREADABLE
    assert report.problems[0].startswith(f"{root / '.lanspread.json'}: not valid JSON")
    assert snapshot(root) == before


def test_unreadable_intent_never_touches_unmarked_dirs(game_dir: Path) -> None:
    """A corrupt log proves nothing: markerless reserved dirs stay, and so does the log
    (it is not lanspread's); the report says the root needs attention."""
    root = make_root(game_dir)
    (root / ".lanspread.json").write_text('{"format": 9}')
    _dir(root, ".local.installing", {"x": b"x"})
    _dir(root, ".local.backup", OLD_INSTALL)
    before = snapshot(root)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.NEEDS_ATTENTION
    assert snapshot(root) == before


def test_the_players_own_lanspread_json_survives_recovery(game_dir: Path) -> None:
    """A file the player named .lanspread.json is never cleared, and is reported."""
    root = make_root(game_dir)
    (root / ".lanspread.json").write_text("my notes about this game")
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.NEEDS_ATTENTION
    assert report.problems[0].endswith(
        ": not valid JSON: JSON is malformed: invalid character (byte 0)"
    )
    assert (root / ".lanspread.json").read_text() == "my notes about this game"


def test_unreadable_intent_restores_a_marked_backup(game_dir: Path) -> None:
    """A corrupt log with a marked backup and no local/: the install comes back."""
    root = make_root(game_dir)
    (root / ".lanspread.json").write_text("")
    _dir(root, ".local.backup", OLD_INSTALL, marked=True)
    report = recover_game_root(root)
    assert report.outcome is RecoveryOutcome.CLEANED_STALE
    assert snapshot(root) == {**installed_snapshot(OLD_INSTALL), ".lanspread.json": b""}


def test_reserved_names_that_are_not_directories_are_never_touched(
    game_dir: Path, tmp_path: Path
) -> None:
    """A link or file at a reserved name is not a directory lanspread made: left as is."""
    root = make_root(game_dir)
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("keep")
    write_marker(target)
    (root / ".local.installing").symlink_to(target, target_is_directory=True)
    (root / ".local.backup").write_text("a file")
    write_intent(root, Intent.INSTALLING)
    recover_game_root(root)
    assert (root / ".local.installing").is_symlink()
    assert (target / "keep").read_text() == "keep"
    assert has_marker(target)
    assert (root / ".local.backup").read_text() == "a file"
    assert read_intent(root) is Intent.NONE


def test_crash_left_temp_files_are_deleted(game_dir: Path) -> None:
    """``.version.ini.tmp`` (claimed by the ownership record) and the intent log's temp
    file (a prefix of our record) go; a parked sentinel stays."""
    root = make_root(game_dir)
    record_as_downloaded(root)
    (root / ".version.ini.tmp").write_text("version = 2")
    (root / ".lanspread.json.tmp").write_text('{"format":1,"game_id":"qua')
    (root / ".version.ini.discarded").write_text("version = 1")
    report = recover_game_root(root)
    assert report.removed_transients == (".lanspread.json.tmp", ".version.ini.tmp")
    after = snapshot(root)
    del after[OWNERSHIP_FILE]
    assert after == {**downloaded_snapshot(), ".version.ini.discarded": b"version = 1"}


def test_the_players_files_at_temp_names_survive_recovery(game_dir: Path) -> None:
    """Without proof (no record claiming it, bytes that are not our intent record) a
    file at a temp name is the player's: left alone, and write_intent refuses to
    overwrite it."""
    root = make_root(game_dir)
    (root / ".version.ini.tmp").write_text("the player's")
    (root / ".lanspread.json.tmp").write_text("also the player's")
    before = snapshot(root)
    assert recover_game_root(root).removed_transients == ()
    assert snapshot(root) == before
    with pytest.raises(StorageError) as caught:
        write_intent(root, Intent.INSTALLING)
    assert str(caught.value) == (
        f"{root / '.lanspread.json.tmp'} is not a file lanspread wrote; "
        "move it out of the game folder"
    )
    assert snapshot(root) == before


def test_a_folder_at_a_temp_name_is_not_deleted(game_dir: Path) -> None:
    """We only ever write temp *files*; a folder of that name is not ours."""
    root = make_root(game_dir)
    _dir(root, ".version.ini.tmp", {"inside": b"x"})
    assert recover_game_root(root).removed_transients == ()
    assert (root / ".version.ini.tmp" / "inside").exists()


# --- the parked sentinel -----------------------------------------------------------------


def test_parked_sentinel_without_sentinel_or_journal_is_dropped(game_dir: Path) -> None:
    """An update interrupted before it journaled leaves a parked sentinel nobody resumes."""
    root = make_root(game_dir)
    (root / "version.ini").unlink()
    record_as_downloaded(root)
    (root / ".version.ini.discarded").write_text("version = 1")
    assert drop_interrupted_update_sentinel(root)
    assert not (root / ".version.ini.discarded").exists()


def test_a_players_parked_sentinel_name_is_never_dropped(game_dir: Path) -> None:
    """No ownership record claims it: a .version.ini.discarded is the player's."""
    root = make_root(game_dir)
    (root / "version.ini").unlink()
    (root / ".version.ini.discarded").write_text("version = 1")
    assert not drop_interrupted_update_sentinel(root)
    assert (root / ".version.ini.discarded").read_text() == "version = 1"


@pytest.mark.parametrize("blocker", ["version.ini", ".lanspread.download.json"])
def test_parked_sentinel_is_kept_while_something_may_resolve_it(
    game_dir: Path, blocker: str
) -> None:
    """A live sentinel or a download journal means the parked one still matters."""
    root = make_root(game_dir)
    (root / "version.ini").unlink()
    (root / blocker).write_text("x")
    (root / ".version.ini.discarded").write_text("version = 1")
    assert not drop_interrupted_update_sentinel(root)
    assert (root / ".version.ini.discarded").read_text() == "version = 1"


def test_parked_sentinel_rule_ignores_absent_and_folder_entries(game_dir: Path) -> None:
    """Nothing parked is a no-op; a folder at the name is not a sentinel and stays."""
    root = make_root(game_dir)
    (root / "version.ini").unlink()
    assert not drop_interrupted_update_sentinel(root)
    (root / ".version.ini.discarded").mkdir()
    assert not drop_interrupted_update_sentinel(root)
    assert (root / ".version.ini.discarded").is_dir()


# --- discard_download ---------------------------------------------------------------------


def test_discard_of_a_fresh_download_removes_the_root(game_dir: Path) -> None:
    """Cancelling a first download leaves nothing behind, not even the root it created."""
    root = make_root(game_dir)
    _dir(root, "nested", {"deep/part.bin": b"x"})
    record_as_downloaded(root, root_created=True)
    (root / ".version.ini.tmp").write_text("2")
    (root / ".lanspread.download.json").write_text("{}")
    report = discard_download(root)
    assert report.root_removed
    assert report.removed == (
        ".lanspread.download.json",
        ".version.ini.tmp",
        "nested",
        "nested/deep",
        "nested/deep/part.bin",
        "quake3.eti",
        "quake3.part2.eti",
        "version.ini",
    )
    assert not os.path.lexists(root)
    assert game_dir.is_dir()


def test_discard_of_an_update_keeps_installer_owned_names(game_dir: Path) -> None:
    """Cancelling an update keeps local/, the transaction dirs, the log and external markers."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    write_intent(root, Intent.UPDATING)
    _dir(root, ".local.backup", {"b": b"b"})
    _dir(root, ".local.installing", {"s": b"s"})
    _dir(root, ".sync", {"state": b"s"})
    (root / ".softlan_game_installed").write_text("")
    record_as_downloaded(root)
    kept = {
        k: v
        for k, v in snapshot(root).items()
        if not k.endswith(".eti") and k not in {"version.ini", OWNERSHIP_FILE}
    }
    report = discard_download(root)
    assert not report.root_removed
    assert report.removed == ("quake3.eti", "quake3.part2.eti", "version.ini")
    assert snapshot(root) == kept


def test_discard_never_touches_links_or_the_players_files(game_dir: Path, tmp_path: Path) -> None:
    """Links are never recorded, so never removed or followed; a recorded folder holding
    the player's file stays (rmdir only), and so does the root."""
    root = make_root(game_dir)
    _dir(root, "payload", {"ours.bin": b"downloaded"})
    record_as_downloaded(root, root_created=True)
    outside_dir = tmp_path / "outside-dir"
    write_tree(outside_dir, {"a/b.bin": b"not ours either"})
    (root / "linked-dir").symlink_to(outside_dir, target_is_directory=True)
    (root / "payload" / "inner-link").symlink_to(outside_dir, target_is_directory=True)
    (root / "payload" / "my-save.sav").write_bytes(b"the player's save")
    before_outside = snapshot(outside_dir)

    report = discard_download(root)

    assert not report.root_removed
    assert "payload/ours.bin" in report.removed
    assert sorted(p.name for p in root.iterdir()) == [OWNERSHIP_FILE, "linked-dir", "payload"]
    assert (root / "payload" / "my-save.sav").read_bytes() == b"the player's save"
    assert (root / "payload" / "inner-link").is_symlink()
    assert snapshot(outside_dir) == before_outside


def test_discard_without_a_record_deletes_nothing(game_dir: Path) -> None:
    """A catalog-named folder lanspread has no record of is left exactly as it is."""
    root = make_root(game_dir)
    before = snapshot(root)
    assert discard_download(root).removed == ()
    assert snapshot(root) == before


def test_discard_refuses_to_sweep_through_a_linked_root(game_dir: Path, tmp_path: Path) -> None:
    """A root that is itself a link is never followed."""
    elsewhere = make_root(tmp_path / "elsewhere")
    (game_dir / "quake3").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StorageError) as caught:
        discard_download(game_dir / "quake3")
    assert str(caught.value) == f"{game_dir / 'quake3'} is not a folder (links are not followed)"
    assert snapshot(elsewhere) == downloaded_snapshot()


def test_discard_of_a_missing_root_is_a_no_op(game_dir: Path) -> None:
    """Discarding what is already gone reports nothing removed."""
    report = discard_download(game_dir / "quake3")
    assert report.removed == ()
    assert not report.root_removed


def test_discard_failure_is_a_storage_error(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payload entry the disk refuses to delete surfaces as StorageError naming it."""
    root = make_root(game_dir)
    record_as_downloaded(root)
    real_unlink = os.unlink

    def refuse_archive(path: str, *, dir_fd: int | None = None) -> None:
        if str(path).endswith("quake3.eti"):
            raise PermissionError(13, "Permission denied", path)
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", refuse_archive)
    with pytest.raises(StorageError) as caught:
        discard_download(root)
    assert str(caught.value) == f"cannot delete {root / 'quake3.eti'}: Permission denied"
