"""Undoing an install, update or uninstall that failed before its commit point.

The transactions (:mod:`lanspread.install.transaction`, whose docstring tells the
whole story) call these when a step before the commit point fails; startup
recovery (:mod:`lanspread.install.sweep`) reuses :func:`restore_backup` and
:func:`foreign_local_problem`. A rollback only ever removes what the transaction
created (staging, the pending record, the intent) and renames the backup back;
a ``local/`` that appeared meanwhile is never lanspread's and is never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lanspread.core.gameroot import BACKUP_DIR, INSTALLING_DIR, LOCAL_DIR
from lanspread.errors import StorageError
from lanspread.files.dirs import exists, make_dir, rename, sync_dir
from lanspread.install.intent import clear_intent, remove_marker, write_marker
from lanspread.install.record import drop_pending_record
from lanspread.install.remove import remove_entry


def restore_backup(root: Path) -> None:
    """Put ``.local.backup/`` back as ``local/`` (without its marker), durably."""
    backup = root / BACKUP_DIR
    remove_marker(backup)
    rename(backup, root / LOCAL_DIR)
    sync_dir(root)


def roll_back_install(root: Path) -> None:
    # Staging did not exist when the install began, so whatever is there now is ours.
    remove_entry(root / INSTALLING_DIR)
    sync_dir(root)
    drop_pending_record(root)
    clear_intent(root)


def roll_back_update(root: Path, *, moved: bool) -> None:
    """Undo an update (or an uninstall keeping the player's files); ``moved``: the
    old ``local/`` was renamed to the backup already."""
    if moved:
        if exists(root / LOCAL_DIR):
            _keep_foreign_local(root)
        remove_entry(root / INSTALLING_DIR)
        sync_dir(root)
        restore_backup(root)
    drop_pending_record(root)
    clear_intent(root)


def roll_back_uninstall(root: Path, *, moved: bool) -> None:
    if moved and exists(root / BACKUP_DIR):
        restore_backup(root)
    clear_intent(root)


def _keep_foreign_local(root: Path) -> None:
    """Stop the rollback: a ``local/`` appeared while the old install sat in the backup.

    The promotion is one atomic rename, so this ``local/`` is not lanspread's
    (the player's, or something they run): it is never deleted or moved. The
    intent stays, and staging is created (marked) if the update had not made it
    yet, so that recovery reads "local, staging, backup" (row 8: nothing moves
    until the player moves ``local/`` out) and never "local, backup, no
    staging", which means a committed update. Raises :class:`StorageError`.
    """
    staging = root / INSTALLING_DIR
    if not exists(staging):
        make_dir(staging)
        write_marker(staging)
        sync_dir(root)
    raise StorageError(foreign_local_problem(root))


def foreign_local_problem(root: Path) -> str:
    """What to tell the player when a ``local/`` appeared during an update of ``root``."""
    return (
        f"{root / LOCAL_DIR} appeared during the update and is not lanspread's; "
        "move it out of the game folder"
    )


def guarded_rollback(
    verb: str, game_id: str, cause: BaseException, rollback: Callable[[], None]
) -> None:
    """Run ``rollback`` after ``cause``; if it fails too, say so (recovery takes over)."""
    try:
        rollback()
    except StorageError as exc:
        raise StorageError(
            f"the {verb} of {game_id} failed ({cause!s}) and so did its rollback: {exc}; "
            "the next start recovers it"
        ) from cause
