"""Durable folder operations that speak :class:`~lanspread.errors.StorageError`.

The install transactions move whole trees by renaming folders and make each
move durable by syncing the parent folder. These helpers do one such step
each, translate the ``OSError`` at the edge (the message names the path and
the system's reason) and never follow a link when they inspect a name.
"""

from __future__ import annotations

import os
from pathlib import Path

from lanspread.errors import StorageError
from lanspread.files.atomic import fsync_dir
from lanspread.platform import fileio


def exists(path: Path) -> bool:
    """True when anything, even a dangling link, holds the name."""
    return os.path.lexists(path)


def rename(source: Path, target: Path) -> None:
    try:
        source.rename(target)
    except OSError as exc:
        raise StorageError(
            f"cannot move {source.name} to {target.name} in {source.parent}: {exc.strerror or exc}"
        ) from exc


def make_dir(path: Path) -> None:
    try:
        path.mkdir()
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from exc


def remove_dir(path: Path) -> None:
    """Delete the empty folder ``path`` and sync its parent."""
    try:
        path.rmdir()
    except OSError as exc:
        raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from exc
    sync_dir(path.parent)


def sync_dir(directory: Path) -> None:
    """Make the names in ``directory`` (renames, creations, deletions) durable."""
    try:
        fsync_dir(directory)
    except OSError as exc:  # fsync_dir translates its own; a stand-in may not
        raise StorageError(f"cannot sync {directory}: {exc.strerror or exc}") from exc


def flush_tree(directory: Path) -> None:
    """Make every file below ``directory`` durable (before a rename publishes the tree)."""
    try:
        if fileio.sync_all():
            return
        for folder, _dirs, files in os.walk(directory):
            for name in files:
                _fsync_file(Path(folder) / name)
    except OSError as exc:
        raise StorageError(f"cannot flush {directory} to disk: {exc.strerror or exc}") from exc


def _fsync_file(path: Path) -> None:
    try:
        handle = open(path, "rb+")  # noqa: SIM115 - closed right below, after the fsync
    except PermissionError:
        return  # read-only: cannot be opened to flush; left to the OS's lazy writer
    with handle:
        os.fsync(handle.fileno())
