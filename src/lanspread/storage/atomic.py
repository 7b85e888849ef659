"""Crash-safe file replacement: write a sibling temp file, fsync, rename, fsync the folder.

After a crash the canonical path holds either the old bytes or the new bytes,
never a truncated mix. A temp file left behind by a crash is swept by the reader
(:func:`sweep_temp`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from lanspread.errors import StorageError
from lanspread.platform import fileio

TEMP_SUFFIX = ".tmp"


def temp_path_for(path: Path) -> Path:
    return path.with_name(path.name + TEMP_SUFFIX)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside ``directory`` durable (a no-op where unsupported)."""
    fileio.fsync_directory(directory)


def atomic_write_bytes(path: Path, data: bytes, *, temp: Path | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    tmp = temp if temp is not None else temp_path_for(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def sweep_temp(path: Path) -> bool:
    """Remove a temp file a crash left next to ``path``; True if there was one."""
    tmp = temp_path_for(path)
    try:
        tmp.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"cannot remove stale {tmp}: {exc.strerror or exc}") from exc
    return True
