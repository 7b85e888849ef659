"""Deleting things in a game root without ever following a link out of it.

:func:`remove_entry` is the one deletion primitive of the install layer: a link
or file is unlinked (a link's target is never touched), a directory is removed
recursively with :func:`shutil.rmtree`, which unlinks the links it meets inside
rather than descending into them.

:func:`remove_downloaded_game` is the *Remove files* command: it deletes what
the root's ownership record proves lanspread downloaded, and refuses unless
every guard holds (catalog id, one path component, a direct child of the game
directory, not a link, a root-level ``version.ini`` sentinel, no install state
at all, and an ownership record of lanspread's).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

from lanspread.core.catalog import Catalog, is_valid_game_id
from lanspread.core.gameroot import (
    BACKUP_DIR,
    INSTALLING_DIR,
    LOCAL_DIR,
    OWNERSHIP_FILE,
    VERSION_FILE,
)
from lanspread.errors import InvalidGameState, StorageError, UnknownGame
from lanspread.files.entries import mode_or_none
from lanspread.files.ownership import InTheWay, SweepReport, load_record, sweep_owned
from lanspread.files.staging import drop_staging

log = logging.getLogger(__name__)

INSTALL_STATE_DIRS = (LOCAL_DIR, INSTALLING_DIR, BACKUP_DIR)
"""A root holding any of these is (being) installed: *Remove files* refuses it."""


def remove_entry(path: Path) -> bool:
    """Delete ``path`` without following links; False when there was nothing to delete.

    A failure part-way leaves whatever could not be deleted and raises
    :class:`StorageError` naming the entry that refused.
    """
    mode = mode_or_none(path)
    if mode is None:
        return False
    try:
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise _delete_error(path, exc) from exc
    return True


def remove_downloaded_game(game_dir: Path, game_id: str, catalog: Catalog) -> SweepReport:
    """Delete what lanspread downloaded into ``<game_dir>/<game_id>`` (never installed).

    Only names the root's ownership record proves lanspread created go
    (:func:`lanspread.files.ownership.sweep_owned`), a staged update's by its own
    record first (:func:`lanspread.files.staging.drop_staging`); the player's own
    files stay, and so does the root while it holds any.

    Raises :class:`UnknownGame` for an id that is not a catalog game or not one
    path component, :class:`InvalidGameState` when the root is not a plain
    downloaded-only game root, :class:`StorageError` when the disk refuses.
    """
    if not is_valid_game_id(game_id):
        raise UnknownGame(f"{game_id!r} is not a valid game id")
    if game_id not in catalog:
        raise UnknownGame(f"{game_id!r} is not a catalog game")
    root = game_dir / game_id
    _require_direct_child(game_dir, root)
    root_mode = mode_or_none(root)
    if root_mode is None:
        raise InvalidGameState(f"{game_id} has no downloaded files")
    if stat.S_ISLNK(root_mode):
        raise InvalidGameState(f"{game_id}: the game folder is a symbolic link; not removing it")
    if not stat.S_ISDIR(root_mode):
        raise InvalidGameState(f"{game_id}: the game folder is not a directory")
    sentinel_mode = mode_or_none(root / VERSION_FILE)
    if sentinel_mode is None or not stat.S_ISREG(sentinel_mode):
        raise InvalidGameState(f"{game_id} is not downloaded (no {VERSION_FILE})")
    for name in INSTALL_STATE_DIRS:
        if mode_or_none(root / name) is not None:
            raise InvalidGameState(f"{game_id} has install state ({name}); uninstall it first")
    try:
        record = load_record(root)
    except InTheWay as exc:
        raise InvalidGameState(f"{game_id}: {exc}; nothing was removed") from exc
    if record is None:
        raise InvalidGameState(
            f"{game_id} was not downloaded by lanspread (no {OWNERSHIP_FILE}); nothing was removed"
        )
    drop_staging(root)  # a paused or verified update of it goes with it, by its own record
    record = load_record(root) or record
    report = sweep_owned(root, record)
    if report.kept or not report.root_removed:
        log.info(
            "removed %s but kept what lanspread did not create: %s",
            game_id,
            ", ".join(report.kept) or "the game folder",
        )
    return report


def _require_direct_child(game_dir: Path, root: Path) -> None:
    """The root, with every link resolved, must sit directly inside the game directory."""
    real_dir = Path(os.path.realpath(game_dir))
    real_root = Path(os.path.realpath(root))
    if real_root.parent != real_dir:
        raise InvalidGameState(f"{root.name}: the game folder is not inside {game_dir}")


def _delete_error(path: Path, exc: OSError) -> StorageError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return StorageError(f"cannot delete {path}: {exc.strerror or exc}{where}")
