"""Install, update and uninstall as crash-safe transactions over a game root.

Theory of operation
-------------------
Each transaction records its intent (``.lanspread.json``) before it moves any
directory, creates its reserved directories with a ``.lanspread_owned`` marker,
and clears the intent only once the root is settled. Startup recovery
(:mod:`lanspread.core.recovery`, carried out by :mod:`lanspread.install.sweep`)
settles a root that a kill left half way, from the intent and the directories.

Steps, in order (``checkpoint(step)`` is called before each one)::

    install    write-intent  create-staging  mark-staging  unpack  record-files
               write-record  unmark-staging  promote*  commit-record  clear-intent
    update     write-intent  move-local-to-backup  mark-backup  create-staging
               mark-staging  unpack  record-files  carry-over  write-record
               unmark-staging  promote*  commit-record  drop-backup  clear-intent
    uninstall  write-intent  move-local-to-backup  mark-backup  drop-backup*
               drop-record  clear-intent

The install record (:mod:`lanspread.core.install_record`) is computed by walking
staging right after the unpack, before anything else enters it, and written as
the *pending* record before the commit; ``commit-record`` renames it over the
record. So the record always names the version in ``local/``: before the commit
the old record describes the old tree, after it recovery finishes the rename
(:func:`lanspread.core.recovery.decide_record_steps`).

An update carries the player's files (``carry-over``) from the backup into
staging before the commit, by hard link (or copy), so a kill at any point leaves
them in the old tree, the new tree, or both, and never in neither. Symbolic
links the new version does not ship are the player's too (the record lists
regular files only) and are made again in staging with the same target. An uninstall
that keeps the player's files is an update to an empty tree: it is recorded as
an ``UPDATING`` intent, its record says ``installed: false``, and recovery treats
it like any update. Installing over such a ``local/`` is an update too.

``*`` is the commit point. A failure before it undoes the transaction and
re-raises: install removes staging and clears the intent (the downloaded
archives are never touched); update removes staging (and any ``local/``
and renames the backup back to ``local/``; a ``local/`` that appeared during the
update (and blocked the promotion) is never ours: it stays, and so do staging,
the backup and the intent, until the player moves it out;
uninstall renames the backup back. Uninstall's commit point is the deletion of
the backup itself: when the deletion fails part-way, what is left is renamed
back to ``local/`` (the user's files are never stranded in a hidden folder).
A failure after the commit point leaves the new state in place and the intent
recorded; recovery finishes the cleanup at the next start.

If a rollback fails too, the intent stays recorded and a :class:`StorageError`
says so; recovery takes over from there.

The committed ``local/`` looks exactly like the user's game: staging's marker is
removed *before* the promotion rename and a backup's marker before it is renamed
back, so ``local/`` never carries one. The windows without a marker are covered
by the intent, which proves ownership during recovery.

The undo steps are :mod:`lanspread.install.rollback`; each folder move, creation
and sync is one call of :mod:`lanspread.files.dirs`.

All functions block; the runtime calls them with :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lanspread.core.gameroot import BACKUP_DIR, INSTALLING_DIR, LOCAL_DIR
from lanspread.core.install_record import Carry, CarryConflict, InstallRecord, plan_carry
from lanspread.core.recovery import Intent
from lanspread.errors import (
    InstallRecordCorrupt,
    IntentLogCorrupt,
    InvalidGameState,
    StorageError,
)
from lanspread.files.dirs import (
    exists,
    flush_tree,
    make_dir,
    remove_dir,
    rename,
    sync_dir,
)
from lanspread.files.entries import is_real_dir
from lanspread.files.version_ini import read_sentinel, version_from_sentinel
from lanspread.install.intent import (
    clear_intent,
    read_intent,
    remove_marker,
    write_intent,
    write_marker,
)
from lanspread.install.record import (
    carry_links,
    carry_over,
    commit_pending_record,
    drop_record,
    foreign_record_files,
    read_record,
    record_tree,
    scan_local,
    write_pending_record,
)
from lanspread.install.remove import remove_entry
from lanspread.install.rollback import (
    guarded_rollback,
    roll_back_install,
    roll_back_uninstall,
    roll_back_update,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""``(done, total)`` in the unpacker's units (bytes of archive data read)."""

Checkpoint = Callable[[str], None]
"""Called with a step name before each durable step (tests inject failures and kills)."""

WRITE_INTENT = "write-intent"
CREATE_STAGING = "create-staging"
MARK_STAGING = "mark-staging"
UNPACK = "unpack"
UNMARK_STAGING = "unmark-staging"
PROMOTE = "promote"
MOVE_LOCAL_TO_BACKUP = "move-local-to-backup"
MARK_BACKUP = "mark-backup"
DROP_BACKUP = "drop-backup"
CLEAR_INTENT = "clear-intent"
RECORD_FILES = "record-files"
CARRY_OVER = "carry-over"
WRITE_RECORD = "write-record"
COMMIT_RECORD = "commit-record"
DROP_RECORD = "drop-record"
DROP_EMPTY_LOCAL = "drop-empty-local"

INSTALL_STEPS = (
    WRITE_INTENT,
    CREATE_STAGING,
    MARK_STAGING,
    UNPACK,
    RECORD_FILES,
    WRITE_RECORD,
    UNMARK_STAGING,
    PROMOTE,
    COMMIT_RECORD,
    CLEAR_INTENT,
)
UPDATE_STEPS = (
    WRITE_INTENT,
    MOVE_LOCAL_TO_BACKUP,
    MARK_BACKUP,
    CREATE_STAGING,
    MARK_STAGING,
    UNPACK,
    RECORD_FILES,
    CARRY_OVER,
    WRITE_RECORD,
    UNMARK_STAGING,
    PROMOTE,
    COMMIT_RECORD,
    DROP_BACKUP,
    CLEAR_INTENT,
)
UNINSTALL_STEPS = (
    WRITE_INTENT,
    MOVE_LOCAL_TO_BACKUP,
    MARK_BACKUP,
    DROP_BACKUP,
    DROP_RECORD,
    CLEAR_INTENT,
)
KEEP_SAVES_UNINSTALL_STEPS = UPDATE_STEPS
"""An uninstall that keeps the player's files is an update to an empty tree."""


class Unpacker(Protocol):
    """Extracts the archives of the game root ``archives_root`` into ``destination``.

    ``destination`` exists and is empty but for lanspread's marker. Raises a
    :class:`~lanspread.errors.LanspreadError` on a bad archive or a full disk.
    """

    def __call__(
        self, archives_root: Path, destination: Path, progress: ProgressCallback, /
    ) -> None: ...


def _no_progress(done: int, total: int) -> None:
    del done, total


def _no_checkpoint(step: str) -> None:
    del step


def _unpack_nothing(archives_root: Path, destination: Path, progress: ProgressCallback) -> None:
    del archives_root, destination, progress


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What a transaction left in ``local/``."""

    version: str | None
    """The version the committed record names (``None``: unknown, or nothing installed)."""
    kept: tuple[str, ...] = ()
    """The player's files (and symbolic links) carried to their own path."""
    renamed: tuple[Carry, ...] = ()
    """The player's files kept beside a new file of the same name (``<name>.mine``)."""


@dataclass(frozen=True, slots=True)
class _Paths:
    root: Path
    local: Path
    staging: Path
    backup: Path
    archives: Path
    """Where the archives to extract are: the root, or a staged update's root."""

    @classmethod
    def of(cls, root: Path, archives: Path | None = None) -> _Paths:
        local, staging, backup = root / LOCAL_DIR, root / INSTALLING_DIR, root / BACKUP_DIR
        return cls(root, local, staging, backup, archives or root)

    @property
    def game_id(self) -> str:
        return self.root.name


def install_game(
    root: Path,
    unpacker: Unpacker,
    *,
    progress: ProgressCallback = _no_progress,
    checkpoint: Checkpoint = _no_checkpoint,
    archives: Path | None = None,
) -> InstallResult:
    """Extract the downloaded archives of ``root`` (or ``archives``) into a new ``local/``.

    A ``local/`` that holds only the files an uninstall kept is updated instead,
    so those files are carried into the new install.
    """
    paths = _Paths.of(root, archives)
    _require_settled(paths)
    if exists(paths.local):
        if is_real_dir(paths.local) and _holds_kept_files_only(paths):
            return _replace(paths, unpacker, progress, checkpoint, installed=True)
        raise InvalidGameState(f"{paths.game_id} is already installed")
    version = archive_version(paths.archives)
    try:
        checkpoint(WRITE_INTENT)
        write_intent(root, Intent.INSTALLING)
        _extract(paths, unpacker, progress, checkpoint)
        checkpoint(RECORD_FILES)
        record, _tree = record_tree(paths.staging, paths.game_id, version)
        _promote(paths, record, checkpoint)
    except BaseException as exc:
        guarded_rollback("install", paths.game_id, exc, lambda: roll_back_install(root))
        raise
    _finish_committed("installed", paths, checkpoint, COMMIT_RECORD, CLEAR_INTENT)
    return InstallResult(version=version)


def update_game(
    root: Path,
    unpacker: Unpacker,
    *,
    progress: ProgressCallback = _no_progress,
    checkpoint: Checkpoint = _no_checkpoint,
    archives: Path | None = None,
) -> InstallResult:
    """Replace ``local/`` with a fresh extraction of the archives of ``root`` (or
    ``archives``: a staged update), carrying the player's files across.

    Any failure before the swap keeps the old ``local/`` and its record.
    """
    paths = _Paths.of(root, archives)
    _require_settled(paths)
    _require_installed(paths)
    return _replace(paths, unpacker, progress, checkpoint, installed=True)


def _replace(
    paths: _Paths,
    unpacker: Unpacker,
    progress: ProgressCallback,
    checkpoint: Checkpoint,
    *,
    installed: bool,
) -> InstallResult:
    """Swap ``local/`` for a new tree (extracted, or empty) plus the player's files."""
    root = paths.root
    old_record = _old_record(paths)
    version = archive_version(paths.archives) if installed else None
    moved = False
    try:
        _move_local_aside(paths, checkpoint, Intent.UPDATING)
        moved = True
        _mark_backup(paths, checkpoint)
        _extract(paths, unpacker, progress, checkpoint)
        checkpoint(RECORD_FILES)
        record, tree = record_tree(paths.staging, paths.game_id, version, installed=installed)
        checkpoint(CARRY_OVER)
        result = _carry_players_files(paths, old_record, record, tree)
        _promote(paths, record, checkpoint)
    except BaseException as exc:
        verb = "update" if installed else "uninstall"
        guarded_rollback(verb, paths.game_id, exc, lambda: roll_back_update(root, moved=moved))
        raise
    past = "updated" if installed else "uninstalled"
    _finish_committed(past, paths, checkpoint, COMMIT_RECORD, DROP_BACKUP, CLEAR_INTENT)
    return result


def _carry_players_files(
    paths: _Paths, old_record: InstallRecord | None, record: InstallRecord, tree: dict[str, bool]
) -> InstallResult:
    old_files = scan_local(paths.backup, old_record)
    try:
        plan = plan_carry(old_record, old_files, record.by_path(), tree)
    except CarryConflict as exc:
        raise InvalidGameState(f"{paths.game_id}: {exc}; your files are unchanged") from exc
    carry_over(paths.backup, paths.staging, plan)
    links = carry_links(paths.backup, paths.staging, tree)
    kept = tuple(sorted(plan.kept + links))
    return InstallResult(version=record.version, kept=kept, renamed=plan.renamed)


def _old_record(paths: _Paths) -> InstallRecord | None:
    """The record of the tree being replaced; an unusable one counts as none (logged)."""
    try:
        return read_record(paths.root)
    except InstallRecordCorrupt as exc:
        log.warning("%s: %s; files the new version ships are replaced", paths.game_id, exc)
        return None


def _holds_kept_files_only(paths: _Paths) -> bool:
    record = _old_record(paths)
    return record is not None and not record.installed


def archive_version(root: Path) -> str | None:
    """The version the root ``version.ini`` declares (the archives being extracted)."""
    return version_from_sentinel(read_sentinel(root, time.time_ns()))


def uninstall_game(
    root: Path, *, keep_saves: bool = False, checkpoint: Checkpoint = _no_checkpoint
) -> InstallResult:
    """Delete ``local/``; if the deletion fails, put back whatever is left of it.

    With ``keep_saves`` the player's own files (those the record does not list,
    and shipped files they changed) stay in ``local/``; when there are none,
    ``local/`` goes too.
    """
    paths = _Paths.of(root)
    _require_settled(paths)
    _require_installed(paths)
    if keep_saves:
        if _old_record(paths) is None:
            raise InvalidGameState(
                f"{paths.game_id} has no install record, so its files cannot be told from "
                "yours; repair it first, or uninstall without keep_saves"
            )
        return _uninstall_keeping_saves(paths, checkpoint)
    _delete_local(paths, checkpoint)
    return InstallResult(version=None)


def _uninstall_keeping_saves(paths: _Paths, checkpoint: Checkpoint) -> InstallResult:
    result = _replace(paths, _unpack_nothing, _no_progress, checkpoint, installed=False)
    if not result.kept:
        # Nothing to keep: an empty local/ would still look like an install.
        _finish_committed("uninstalled", paths, checkpoint, DROP_EMPTY_LOCAL, DROP_RECORD)
    return result


def _delete_local(paths: _Paths, checkpoint: Checkpoint) -> None:
    root = paths.root
    moved = deleting = False
    try:
        _move_local_aside(paths, checkpoint, Intent.UNINSTALLING)
        moved = True
        _mark_backup(paths, checkpoint)
        checkpoint(DROP_BACKUP)
        deleting = True
        remove_entry(paths.backup)
    except BaseException as exc:
        guarded_rollback(
            "uninstall", paths.game_id, exc, lambda: roll_back_uninstall(root, moved=moved)
        )
        if deleting and isinstance(exc, StorageError):
            raise StorageError(
                f"cannot uninstall {paths.game_id}: {exc}; "
                f"what could not be deleted is back in {LOCAL_DIR}/"
            ) from exc
        raise
    _finish_committed("uninstalled", paths, checkpoint, DROP_RECORD, CLEAR_INTENT)


def _move_local_aside(paths: _Paths, checkpoint: Checkpoint, intent: Intent) -> None:
    """Log ``intent`` and rename ``local/`` to ``backup/`` (how an update or uninstall starts)."""
    checkpoint(WRITE_INTENT)
    write_intent(paths.root, intent)
    checkpoint(MOVE_LOCAL_TO_BACKUP)
    rename(paths.local, paths.backup)


def _mark_backup(paths: _Paths, checkpoint: Checkpoint) -> None:
    """Make the move to ``backup/`` durable and mark ``backup/`` as lanspread's own."""
    sync_dir(paths.root)
    checkpoint(MARK_BACKUP)
    write_marker(paths.backup)


def _extract(
    paths: _Paths, unpacker: Unpacker, progress: ProgressCallback, checkpoint: Checkpoint
) -> None:
    checkpoint(CREATE_STAGING)
    make_dir(paths.staging)
    checkpoint(MARK_STAGING)
    write_marker(paths.staging)
    checkpoint(UNPACK)
    try:
        unpacker(paths.archives, paths.staging, progress)
    except OSError as exc:
        raise StorageError(f"cannot unpack into {paths.staging}: {exc.strerror or exc}") from exc


def _promote(paths: _Paths, record: InstallRecord, checkpoint: Checkpoint) -> None:
    """Write ``record`` as pending, make staging durable without its marker, and
    rename it to ``local/``: the commit point of an install, update or uninstall."""
    checkpoint(WRITE_RECORD)
    write_pending_record(paths.root, record)
    checkpoint(UNMARK_STAGING)
    remove_marker(paths.staging)
    flush_tree(paths.staging)
    checkpoint(PROMOTE)
    rename(paths.staging, paths.local)


_AFTER_COMMIT: dict[str, Callable[[_Paths], object]] = {
    COMMIT_RECORD: lambda paths: commit_pending_record(paths.root),
    DROP_BACKUP: lambda paths: remove_entry(paths.backup),
    DROP_EMPTY_LOCAL: lambda paths: remove_dir(paths.local),
    DROP_RECORD: lambda paths: drop_record(paths.root),
    CLEAR_INTENT: lambda paths: clear_intent(paths.root),
}
"""What each cleanup step after a commit point does, named once for every operation."""


def _finish_committed(past: str, paths: _Paths, checkpoint: Checkpoint, *steps: str) -> None:
    """Run the cleanup ``steps`` after a commit point; a failure leaves them for recovery."""
    for name in steps:
        checkpoint(name)
        try:
            _AFTER_COMMIT[name](paths)
        except StorageError as exc:
            raise StorageError(
                f"{paths.game_id} is {past} but cleanup failed: {exc}; the next start finishes it"
            ) from exc


def _require_settled(paths: _Paths) -> None:
    game_id = paths.game_id
    if not paths.root.is_dir():
        raise InvalidGameState(f"{game_id} has no game folder")
    try:
        intent = read_intent(paths.root)
    except IntentLogCorrupt as exc:
        raise InvalidGameState(f"{game_id}: {exc}") from exc
    if intent is not Intent.NONE:
        raise InvalidGameState(
            f"{game_id} has an unfinished {intent.value} transaction; the next start recovers it"
        )
    for path in (paths.staging, paths.backup):
        if exists(path):
            raise InvalidGameState(
                f"{game_id}: {path.name} is in the way; move it out of the game folder"
            )
    # The transaction writes, renames and drops the record files: only over its own.
    for name in foreign_record_files(paths.root):
        raise InvalidGameState(
            f"{game_id}: {name} is not a file lanspread wrote; move it out of the game folder"
        )


def _require_installed(paths: _Paths) -> None:
    if not is_real_dir(paths.local):
        raise InvalidGameState(f"{paths.game_id} is not installed")


__all__ = [
    "CARRY_OVER",
    "CLEAR_INTENT",
    "COMMIT_RECORD",
    "CREATE_STAGING",
    "DROP_BACKUP",
    "DROP_EMPTY_LOCAL",
    "DROP_RECORD",
    "INSTALL_STEPS",
    "KEEP_SAVES_UNINSTALL_STEPS",
    "MARK_BACKUP",
    "MARK_STAGING",
    "MOVE_LOCAL_TO_BACKUP",
    "PROMOTE",
    "RECORD_FILES",
    "UNINSTALL_STEPS",
    "UNMARK_STAGING",
    "UNPACK",
    "UPDATE_STEPS",
    "WRITE_RECORD",
    "Checkpoint",
    "InstallResult",
    "ProgressCallback",
    "Unpacker",
    "archive_version",
    "install_game",
    "uninstall_game",
    "update_game",
]
