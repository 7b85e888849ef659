"""Low-level file calls that differ between POSIX and Windows, one helper each.

Every name here has a branch per platform, written with ``sys.platform`` checks
so the type checker proves each branch against that platform's ``os`` module:

* ``O_*``: the ``os.open`` flags some platforms lack, ``0`` where there is no
  such flag (Windows has no ``O_NOFOLLOW``, ``O_DIRECTORY``, ``O_CLOEXEC``,
  ``O_NONBLOCK`` or ``O_NOCTTY``; only Windows has ``O_BINARY``). Python opens
  every descriptor non-inheritable anyway (PEP 446), so a missing ``O_CLOEXEC``
  loses nothing.
* :func:`pread` / :func:`pwrite`: positional reads and writes. Windows has
  neither; there they seek and read or write under a lock per descriptor, so two
  threads using one descriptor never interleave a seek with the other's transfer.
* :func:`data_sync`: ``fdatasync`` where it exists, ``fsync`` elsewhere.
* :func:`fsync_directory`: makes a rename or unlink inside a folder durable on
  POSIX; Windows cannot open a folder as a descriptor (NTFS journals the
  metadata itself), so there it does nothing.
* :func:`sync_all`: ``sync()`` where it exists; ``False`` on Windows, whose
  callers sync file by file instead.
* :func:`reserve_blocks`: ``posix_fallocate`` where it exists (not on macOS or
  Windows, whose files are then sized by truncation alone).
* :func:`make_blocking`: puts a descriptor opened with ``O_NONBLOCK`` back in
  blocking mode (Windows has no such flag: its descriptors always block).

The calls go through the ``os`` module at call time, so a test that wraps
``os.pwrite`` or ``os.fdatasync`` sees them.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from pathlib import Path
from typing import Final

Buffer = bytes | bytearray | memoryview

if sys.platform == "win32":
    O_BINARY: Final[int] = os.O_BINARY
    O_NOFOLLOW: Final[int] = 0
    O_DIRECTORY: Final[int] = 0
    O_CLOEXEC: Final[int] = 0
    O_NONBLOCK: Final[int] = 0
    O_NOCTTY: Final[int] = 0
else:
    O_BINARY: Final[int] = 0
    O_NOFOLLOW: Final[int] = os.O_NOFOLLOW
    O_DIRECTORY: Final[int] = os.O_DIRECTORY
    O_CLOEXEC: Final[int] = os.O_CLOEXEC
    O_NONBLOCK: Final[int] = os.O_NONBLOCK
    O_NOCTTY: Final[int] = os.O_NOCTTY


# --- positional reads and writes ----------------------------------------------------------

_seek_locks: dict[int, threading.Lock] = {}
_seek_locks_guard = threading.Lock()


def _seek_lock(fd: int) -> threading.Lock:
    """The lock that serialises seek-then-transfer pairs on ``fd`` (Windows)."""
    with _seek_locks_guard:
        return _seek_locks.setdefault(fd, threading.Lock())


def pwrite(fd: int, data: Buffer, offset: int) -> int:
    """Write ``data`` at ``offset`` of ``fd``; return how many bytes were written."""
    if sys.platform == "win32":
        written = _pwrite_seeking(fd, data, offset)
    else:
        written = os.pwrite(fd, data, offset)
    return written


def pread(fd: int, length: int, offset: int) -> bytes:
    """Read up to ``length`` bytes at ``offset`` of ``fd`` (fewer only at the end of file)."""
    parts: list[bytes] = []
    while length > 0:
        if sys.platform == "win32":
            part = _pread_seeking(fd, length, offset)
        else:
            part = os.pread(fd, length, offset)
        if not part:
            break
        parts.append(part)
        length -= len(part)
        offset += len(part)
    return b"".join(parts)


# The Windows branches use only calls every platform has, so the tests run them anywhere.


def _pwrite_seeking(fd: int, data: Buffer, offset: int) -> int:
    with _seek_lock(fd):
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)


def _pread_seeking(fd: int, length: int, offset: int) -> bytes:
    with _seek_lock(fd):
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)


def make_blocking(fd: int) -> None:
    """Read and write ``fd`` the blocking way from now on."""
    if sys.platform != "win32":
        os.set_blocking(fd, True)


def reserve_blocks(fd: int, size: int) -> bool:
    """Reserve the disk blocks of the first ``size`` bytes of ``fd``; ``False`` where the
    platform or the file system cannot (an ``OSError`` for any other failure)."""
    if sys.platform == "win32" or sys.platform == "darwin":
        reserved = False
    else:
        try:
            os.posix_fallocate(fd, 0, size)
            reserved = True
        except OSError as exc:
            # What posix_fallocate answers on a file system that cannot reserve blocks.
            if exc.errno not in {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP}:
                raise
            reserved = False
    return reserved


# --- durability ---------------------------------------------------------------------------


def data_sync(fd: int) -> None:
    """Make the written bytes of ``fd`` durable (its size was fixed beforehand)."""
    if sys.platform == "win32":
        os.fsync(fd)
    elif sys.platform == "darwin":
        # macOS has no fdatasync; its fsync is what other programs rely on there.
        os.fsync(fd)
    else:
        os.fdatasync(fd)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink inside ``directory`` durable (nothing to do on Windows)."""
    if sys.platform != "win32":
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_all() -> bool:
    """Flush every file system's dirty data to disk; ``False`` where that cannot be asked."""
    if sys.platform == "win32":
        flushed = False
    else:
        os.sync()
        flushed = True
    return flushed
