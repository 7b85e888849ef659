"""Install, update and uninstall transactions: every transition and a failure at every step."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import require_tool
from tests.support.install_roots import (
    NEW_FILES,
    OLD_INSTALL,
    UPDATED_UNRECORDED,
    FakeUnpacker,
    digests,
    downloaded_snapshot,
    installed_snapshot,
    make_root,
    recorded,
    snapshot,
)
from tests.support.trees import write_tree

import lanspread.files.dirs as dirs
import lanspread.install.transaction as transaction
from lanspread.core.recovery import Intent, RecoveryOutcome
from lanspread.errors import InvalidGameState, StorageError
from lanspread.install.intent import has_marker, read_intent, write_intent
from lanspread.install.sweep import recover_game_root
from lanspread.install.transaction import (
    CLEAR_INTENT,
    COMMIT_RECORD,
    CREATE_STAGING,
    DROP_BACKUP,
    INSTALL_STEPS,
    PROMOTE,
    UNINSTALL_STEPS,
    UPDATE_STEPS,
    ProgressCallback,
    install_game,
    uninstall_game,
    update_game,
)


class InjectedFailure(RuntimeError):
    pass


class StepRecorder:
    """A checkpoint that records every step and raises at ``fail_at``."""

    def __init__(self, fail_at: str | None = None) -> None:
        self.fail_at = fail_at
        self.steps: list[str] = []

    def __call__(self, step: str) -> None:
        self.steps.append(step)
        if step == self.fail_at:
            raise InjectedFailure(f"injected at {step}")


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Make ``path`` undeletable with ``chattr +i`` (even for root), and undo it afterwards."""
    chattr = require_tool("chattr")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i unsupported here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def _settled(root: Path) -> None:
    """No transaction state is left: no intent, no staging, no backup, no marker in local."""
    assert read_intent(root) is Intent.NONE
    assert not os.path.lexists(root / ".local.installing")
    assert not os.path.lexists(root / ".local.backup")
    assert not os.path.lexists(root / "local" / ".lanspread_owned")


# --- install ---------------------------------------------------------------------------


def test_install_extracts_into_local_and_settles(game_dir: Path) -> None:
    """Install ends with exactly the unpacked files in local/, archives untouched, no leftovers."""
    root = make_root(game_dir)
    recorder = StepRecorder()
    install_game(root, FakeUnpacker(), checkpoint=recorder)
    assert snapshot(root) == installed_snapshot(NEW_FILES)
    assert recorder.steps == list(INSTALL_STEPS)


def test_install_passes_progress_through_and_stages_in_a_marked_dir(game_dir: Path) -> None:
    """The unpacker gets the root, a marked staging dir and the caller's progress callback."""
    root = make_root(game_dir)
    seen: list[tuple[int, int]] = []
    marked: list[bool] = []

    def unpacker(archives_root: Path, destination: Path, progress: ProgressCallback) -> None:
        assert archives_root == root
        assert destination == root / ".local.installing"
        marked.append(has_marker(destination))
        assert read_intent(root) is Intent.INSTALLING
        FakeUnpacker()(archives_root, destination, progress)

    install_game(root, unpacker, progress=lambda done, total: seen.append((done, total)))
    assert marked == [True]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize("step", INSTALL_STEPS[: INSTALL_STEPS.index(PROMOTE) + 1])
def test_install_failure_before_commit_rolls_back(game_dir: Path, step: str) -> None:
    """A failure at any step up to the promotion leaves the root exactly as downloaded."""
    root = make_root(game_dir)
    with pytest.raises(InjectedFailure, match=f"^injected at {step}$"):
        install_game(root, FakeUnpacker(), checkpoint=StepRecorder(fail_at=step))
    assert snapshot(root) == downloaded_snapshot()


def test_install_failure_after_commit_is_finished_by_recovery(game_dir: Path) -> None:
    """A failure clearing the intent leaves the new install; recovery clears the intent."""
    root = make_root(game_dir)
    with pytest.raises(InjectedFailure):
        install_game(root, FakeUnpacker(), checkpoint=StepRecorder(fail_at=CLEAR_INTENT))
    assert read_intent(root) is Intent.INSTALLING
    recover_game_root(root)
    assert snapshot(root) == installed_snapshot(NEW_FILES)


def test_install_unpacker_failure_rolls_back_and_propagates(game_dir: Path) -> None:
    """A corrupt archive part-way keeps the archives, removes staging and raises its error."""
    root = make_root(game_dir)
    with pytest.raises(StorageError, match=r"^fake archive is corrupt at baseq3/pak0\.pk3$"):
        install_game(root, FakeUnpacker(fail_after=1))
    assert snapshot(root) == downloaded_snapshot()


def test_install_unpacker_oserror_becomes_storage_error(game_dir: Path) -> None:
    """A raw OSError out of the unpacker is translated at the edge."""
    root = make_root(game_dir)

    def full_disk(archives_root: Path, destination: Path, progress: ProgressCallback) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(StorageError) as caught:
        install_game(root, full_disk)
    assert str(caught.value) == (
        f"cannot unpack into {root / '.local.installing'}: No space left on device"
    )
    assert snapshot(root) == downloaded_snapshot()


def test_install_promote_conflict_keeps_the_foreign_local(game_dir: Path) -> None:
    """A non-empty local/ appearing mid-install blocks the promotion; it is not ours, so kept."""
    root = make_root(game_dir)
    conflict = {"foreign.txt": b"someone else's"}
    with pytest.raises(StorageError) as caught:
        install_game(root, FakeUnpacker(conflict=conflict))
    assert str(caught.value) == (
        f"cannot move .local.installing to local in {root}: Directory not empty"
    )
    assert snapshot(root) == installed_snapshot(conflict)
    _settled(root)


def test_install_refuses_an_installed_game(game_dir: Path) -> None:
    """Installing over an existing local/ is refused and changes nothing."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    with pytest.raises(InvalidGameState, match=r"^quake3 is already installed$"):
        install_game(root, FakeUnpacker())
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


@pytest.mark.parametrize("name", [".local.installing", ".local.backup"])
def test_transactions_refuse_a_reserved_dir_in_the_way(game_dir: Path, name: str) -> None:
    """A reserved dir that exists before a transaction (maybe the user's) blocks all three."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    (root / name).mkdir()
    (root / name / "mine.txt").write_text("user data")
    before = snapshot(root)
    message = f"^quake3: {name} is in the way; move it out of the game folder$"
    (root / "local").rename(root / "parked")
    with pytest.raises(InvalidGameState, match=message):
        install_game(root, FakeUnpacker())
    (root / "parked").rename(root / "local")
    with pytest.raises(InvalidGameState, match=message):
        update_game(root, FakeUnpacker())
    with pytest.raises(InvalidGameState, match=message):
        uninstall_game(root)
    assert snapshot(root) == before


@pytest.mark.parametrize("intent", [Intent.INSTALLING, Intent.UPDATING, Intent.UNINSTALLING])
def test_transactions_refuse_an_unfinished_intent(game_dir: Path, intent: Intent) -> None:
    """A recorded intent means recovery has not run: every transaction refuses."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    write_intent(root, intent)
    message = f"^quake3 has an unfinished {intent.value} transaction; the next start recovers it$"
    with pytest.raises(InvalidGameState, match=message):
        update_game(root, FakeUnpacker())
    with pytest.raises(InvalidGameState, match=message):
        uninstall_game(root)
    assert read_intent(root) is intent


def test_transactions_refuse_a_corrupt_intent_log(game_dir: Path) -> None:
    """An unreadable log is surfaced as a state error and left for recovery."""
    root = make_root(game_dir)
    (root / ".lanspread.json").write_text("garbage")
    with pytest.raises(InvalidGameState, match=r"^quake3: .*\.lanspread\.json: not valid JSON"):
        install_game(root, FakeUnpacker())
    assert (root / ".lanspread.json").read_text() == "garbage"


def test_transactions_refuse_a_missing_root(game_dir: Path) -> None:
    """No game folder, no transaction."""
    with pytest.raises(InvalidGameState, match=r"^quake3 has no game folder$"):
        install_game(game_dir / "quake3", FakeUnpacker())


# --- update ----------------------------------------------------------------------------


def test_update_replaces_local_and_settles(game_dir: Path) -> None:
    """Update of an install without a record ends with the new files and the player's save."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    recorder = StepRecorder()
    progress: list[tuple[int, int]] = []
    update_game(
        root,
        FakeUnpacker(),
        checkpoint=recorder,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert snapshot(root) == installed_snapshot(UPDATED_UNRECORDED)
    assert recorder.steps == list(UPDATE_STEPS)
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize("step", UPDATE_STEPS[: UPDATE_STEPS.index(PROMOTE) + 1])
def test_update_failure_before_commit_restores_the_old_install(game_dir: Path, step: str) -> None:
    """A failure at any step up to the promotion puts the old local/ back, user files included."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    with pytest.raises(InjectedFailure, match=f"^injected at {step}$"):
        update_game(root, FakeUnpacker(), checkpoint=StepRecorder(fail_at=step))
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


@pytest.mark.parametrize("step", [COMMIT_RECORD, DROP_BACKUP, CLEAR_INTENT])
def test_update_failure_after_commit_keeps_the_new_install(game_dir: Path, step: str) -> None:
    """After the promotion the update stands; recovery finishes the cleanup it left."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    with pytest.raises(InjectedFailure):
        update_game(root, FakeUnpacker(), checkpoint=StepRecorder(fail_at=step))
    assert read_intent(root) is Intent.UPDATING
    assert (root / "local" / "baseq3" / "pak1.pk3").read_bytes() == b"pak1"
    recover_game_root(root)
    assert snapshot(root) == installed_snapshot(UPDATED_UNRECORDED)
    assert recorded(root) == ("1.0", digests(NEW_FILES))


def test_update_unpacker_failure_restores_the_old_install(game_dir: Path) -> None:
    """A corrupt archive mid-update keeps the old install exactly."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    with pytest.raises(StorageError, match=r"^fake archive is corrupt at"):
        update_game(root, FakeUnpacker(fail_after=2))
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def _foreign_local_failure(root: Path, cause: str) -> str:
    return (
        f"the update of quake3 failed ({cause}) and so did its rollback: {root / 'local'} "
        "appeared during the update and is not lanspread's; move it out of the game folder; "
        "the next start recovers it"
    )


def test_update_promotion_conflict_keeps_the_players_local(game_dir: Path) -> None:
    """A non-empty local/ appearing after extraction fails the promotion; it is not lanspread's,
    so it survives the rollback and recovery untouched, and the old install returns once the
    player moves it out."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    conflict = {"conflict.txt": b"the player's own"}
    with pytest.raises(StorageError) as caught:
        update_game(root, FakeUnpacker(conflict=conflict))
    assert str(caught.value) == _foreign_local_failure(
        root, f"cannot move .local.installing to local in {root}: Directory not empty"
    )
    assert read_intent(root) is Intent.UPDATING
    assert snapshot(root / "local") == conflict
    assert recover_game_root(root).outcome is RecoveryOutcome.NEEDS_ATTENTION
    assert snapshot(root / "local") == conflict
    (root / "local").rename(game_dir / "moved-out")
    assert recover_game_root(root).outcome is RecoveryOutcome.ROLLED_BACK
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)
    assert snapshot(game_dir / "moved-out") == conflict


def test_update_conflict_without_staging_keeps_the_players_local(game_dir: Path) -> None:
    """A local/ that appears before staging exists is never moved or deleted: the rollback
    creates marked staging beside it, so recovery never reads "local, backup, no staging"
    (a committed update, whose backup it would drop)."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    conflict = {"conflict.txt": b"the player's own"}
    renames: list[tuple[str, str]] = []

    def conflict_then_fail(step: str) -> None:
        if step == CREATE_STAGING:
            write_tree(root / "local", conflict)
            raise InjectedFailure("injected after a conflict")

    real_rename = Path.rename

    def recording_rename(self: Path, target: Path) -> Path:
        renames.append((self.name, Path(target).name))
        return real_rename(self, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "rename", recording_rename)
        with pytest.raises(StorageError) as caught:
            update_game(root, FakeUnpacker(), checkpoint=conflict_then_fail)
    assert str(caught.value) == _foreign_local_failure(root, "injected after a conflict")
    assert renames == [("local", ".local.backup")]
    assert has_marker(root / ".local.installing")
    assert snapshot(root / "local") == conflict
    assert recover_game_root(root).outcome is RecoveryOutcome.NEEDS_ATTENTION
    assert snapshot(root / "local") == conflict
    (root / "local").rename(game_dir / "moved-out")
    recover_game_root(root)
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_update_sync_failure_after_the_move_is_recovered_from_the_intent(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails every sync right after local/ moved: the recorded intent saves the day.

    The rollback cannot complete either (it syncs too), so it says so and keeps the
    intent; recovery then restores the still unmarked backup, which the intent proves ours.
    """
    root = make_root(game_dir, installed=OLD_INSTALL)

    def failing_sync(directory: Path) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(directory))

    monkeypatch.setattr(dirs, "fsync_dir", failing_sync)
    with pytest.raises(StorageError) as caught:
        update_game(root, FakeUnpacker())
    monkeypatch.undo()
    assert str(caught.value) == (
        f"the update of quake3 failed (cannot sync {root}: Input/output error) and so did its "
        f"rollback: cannot sync {root}: Input/output error; the next start recovers it"
    )
    assert read_intent(root) is Intent.UPDATING
    assert not has_marker(root / ".local.backup")
    recover_game_root(root)
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_update_rollback_failure_keeps_the_intent_for_recovery(game_dir: Path) -> None:
    """When even the rollback fails, the intent stays so the next start restores the old one."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    chattr = require_tool("chattr")
    stuck = root / ".local.installing" / "quake3.exe"

    def freeze_staging_then_fail(step: str) -> None:
        if step == PROMOTE:
            subprocess.run([chattr, "+i", str(stuck)], check=True)
            raise InjectedFailure("injected before the promotion")

    try:
        with pytest.raises(StorageError) as caught:
            update_game(root, FakeUnpacker(), checkpoint=freeze_staging_then_fail)
    finally:
        subprocess.run([chattr, "-i", str(stuck)], check=False)
    assert str(caught.value) == (
        "the update of quake3 failed (injected before the promotion) and so did its rollback: "
        f"cannot delete {root / '.local.installing'}: Operation not permitted (quake3.exe); "
        "the next start recovers it"
    )
    assert read_intent(root) is Intent.UPDATING
    assert (root / ".local.backup" / "saves" / "slot1.sav").read_bytes() == b"the user's own save"
    recover_game_root(root)
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


@pytest.mark.parametrize("state", ["missing", "link", "file"])
def test_update_and_uninstall_need_a_real_local_dir(
    game_dir: Path, tmp_path: Path, state: str
) -> None:
    """Without a real local/ directory (a link does not count) there is nothing to replace."""
    root = make_root(game_dir)
    if state == "link":
        target = tmp_path / "elsewhere"
        target.mkdir()
        (root / "local").symlink_to(target, target_is_directory=True)
    elif state == "file":
        (root / "local").write_text("x")
    before = snapshot(root)
    with pytest.raises(InvalidGameState, match=r"^quake3 is not installed$"):
        update_game(root, FakeUnpacker())
    with pytest.raises(InvalidGameState, match=r"^quake3 is not installed$"):
        uninstall_game(root)
    assert snapshot(root) == before


# --- uninstall -------------------------------------------------------------------------


def test_uninstall_deletes_local_only(game_dir: Path) -> None:
    """Uninstall removes local/ and keeps the downloaded archives and sentinel."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    recorder = StepRecorder()
    uninstall_game(root, checkpoint=recorder)
    assert snapshot(root) == downloaded_snapshot()
    assert recorder.steps == list(UNINSTALL_STEPS)


@pytest.mark.parametrize("step", UNINSTALL_STEPS[: UNINSTALL_STEPS.index(DROP_BACKUP) + 1])
def test_uninstall_failure_before_deletion_keeps_the_install(game_dir: Path, step: str) -> None:
    """A failure at any step up to the deletion leaves local/ exactly as it was."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    with pytest.raises(InjectedFailure, match=f"^injected at {step}$"):
        uninstall_game(root, checkpoint=StepRecorder(fail_at=step))
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_uninstall_failure_clearing_the_intent_is_finished_by_recovery(game_dir: Path) -> None:
    """Once local/ is deleted the uninstall stands; recovery clears the intent."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    with pytest.raises(InjectedFailure):
        uninstall_game(root, checkpoint=StepRecorder(fail_at=CLEAR_INTENT))
    assert read_intent(root) is Intent.UNINSTALLING
    recover_game_root(root)
    assert snapshot(root) == downloaded_snapshot()


def test_uninstall_delete_failure_restores_what_is_left(game_dir: Path) -> None:
    """An undeletable subtree (chattr +i) fails the deletion; the remainder is back in local/."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    with immutable(root / "local" / "saves"):
        with pytest.raises(StorageError) as caught:
            uninstall_game(root)
        after = snapshot(root)
    assert str(caught.value) == (
        f"cannot uninstall quake3: cannot delete {root / '.local.backup'}: "
        "Operation not permitted (slot1.sav); what could not be deleted is back in local/"
    )
    assert after["local/saves/slot1.sav"] == b"the user's own save"
    assert after.items() <= installed_snapshot(OLD_INSTALL).items()
    _settled(root)


def test_uninstall_delete_failure_part_way_restores_the_rest(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deletion that removes two entries and then fails puts exactly the survivors back."""
    root = make_root(game_dir, installed=OLD_INSTALL)
    real_unlink = os.unlink
    deleted: list[str] = []
    failed: list[str] = []

    def third_unlink_fails(path: str, *, dir_fd: int | None = None) -> None:
        if len(deleted) == 2 and not failed:
            failed.append(str(path))
            raise OSError(5, "Input/output error", path)
        real_unlink(path, dir_fd=dir_fd)
        if not failed:
            deleted.append(Path(path).name)

    monkeypatch.setattr(os, "unlink", third_unlink_fails)
    with pytest.raises(StorageError) as caught:
        uninstall_game(root)
    monkeypatch.undo()
    assert str(caught.value) == (
        f"cannot uninstall quake3: cannot delete {root / '.local.backup'}: "
        f"Input/output error ({failed[0]}); what could not be deleted is back in local/"
    )
    survivors = {
        name: data for name, data in OLD_INSTALL.items() if name.rsplit("/", 1)[-1] not in deleted
    }
    assert len(survivors) < len(OLD_INSTALL)
    files_left = {
        key.removeprefix("local/"): value
        for key, value in snapshot(root).items()
        if key.startswith("local/") and isinstance(value, bytes)
    }
    assert files_left == survivors
    _settled(root)


def test_uninstall_when_the_backup_marker_cannot_be_written_restores(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error right after the move still renames the install back, and is re-raised."""
    root = make_root(game_dir, installed=OLD_INSTALL)

    def refuse(directory: Path) -> None:
        raise StorageError(f"cannot mark {directory}: No space left on device")

    monkeypatch.setattr(transaction, "write_marker", refuse)
    with pytest.raises(StorageError) as caught:
        uninstall_game(root)
    assert str(caught.value) == f"cannot mark {root / '.local.backup'}: No space left on device"
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)
