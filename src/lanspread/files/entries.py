"""What stands at a path, asked with ``lstat``: a link is never followed, only seen.

Every shell that must tell "a real folder" from "a link to one", or "nothing
there" from "something of the player's there", asks here, so the answer and its
errors are the same everywhere: a missing name is an answer (``None``,
``False``), any other refusal of the disk is a :class:`StorageError` naming the
path. A link, even one pointing at a folder or a file, is neither.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lanspread.errors import StorageError


def lstat_or_none(path: Path) -> os.stat_result | None:
    """``lstat`` of ``path``; ``None`` when nothing holds the name (a dangling link does)."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot inspect {path}: {exc.strerror or exc}") from exc


def mode_or_none(path: Path) -> int | None:
    """The ``st_mode`` of what holds the name ``path`` (a link's own), ``None`` when nothing."""
    info = lstat_or_none(path)
    return None if info is None else info.st_mode


def is_real_dir(path: Path) -> bool:
    """True when ``path`` is a folder itself, not a link to one."""
    mode = mode_or_none(path)
    return mode is not None and stat.S_ISDIR(mode)


def is_regular_file(path: Path) -> bool:
    """True when ``path`` is a regular file itself, not a link to one."""
    mode = mode_or_none(path)
    return mode is not None and stat.S_ISREG(mode)


def require_dir_or_absent(path: Path, *, error: type[StorageError] = StorageError) -> bool:
    """True when ``path`` is a real folder, False when nothing is there.

    Anything else (a link, even to a folder, a file, a device) raises ``error``:
    a game root reached through a link would let lanspread write or delete
    outside the game folder.
    """
    mode = mode_or_none(path)
    if mode is None:
        return False
    if not stat.S_ISDIR(mode):
        raise error(f"{path} is not a folder (links are not followed)")
    return True


__all__ = [
    "is_real_dir",
    "is_regular_file",
    "lstat_or_none",
    "mode_or_none",
    "require_dir_or_absent",
]
