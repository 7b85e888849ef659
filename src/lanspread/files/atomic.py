"""Crash-safe file replacement: write a sibling temp file, fsync, rename, fsync the folder.

After a crash the canonical path holds either the old bytes or the new bytes,
never a truncated mix. A temp file left behind by a crash is swept by the reader
(:func:`sweep_temp`). Small files lanspread keeps in a game folder, where a
player's link, folder or giant file may stand instead, are read back with
:func:`read_regular_bounded`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from lanspread.errors import StorageError
from lanspread.platform import fileio

TEMP_SUFFIX = ".tmp"

# Never follow a link, never block on a FIFO, never translate line ends.
_READ_FLAGS = os.O_RDONLY | fileio.O_NOFOLLOW | fileio.O_NONBLOCK | fileio.O_BINARY


class NotARegularFile(StorageError):
    """The path holds a link, a folder, a device or a file over the size bound."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is {reason}")
        self.reason = reason
        """What stands there instead, in words: ``not a regular file``, ``larger than N bytes``."""


def read_regular_bounded(path: Path, limit: int) -> bytes | None:
    """The bytes of the regular file at ``path`` (``None`` when there is none).

    A link (never followed), folder, FIFO or device at ``path``, or a file of more
    than ``limit`` bytes, is a :class:`NotARegularFile`: at most ``limit + 1``
    bytes are ever read, whatever the file's size.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.EISDIR}:
            raise NotARegularFile(path, "not a regular file") from exc
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile(path, "not a regular file")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    if total > limit:
        raise NotARegularFile(path, f"larger than {limit} bytes")
    return b"".join(chunks)


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
