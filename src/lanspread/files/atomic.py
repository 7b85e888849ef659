"""Durable file operations: every write, rename, unlink and folder sync of lanspread's own files.

Crash-safe replacement (:func:`atomic_write_bytes`): write a sibling temp file
afresh, fsync it, rename it over the target, fsync the folder. After a crash the
target holds either the old bytes or the new bytes, never a truncated mix. A
temp file left behind by a crash is swept by the reader (:func:`sweep_temp`) in
the state directory, or proven lanspread's by its bytes before it is touched in
a game folder (the callers' content proofs, ``docs/DELETION.md``).

The steps are public for the writers that need a step of their own between
them (the sentinel commit records the temp file's identity before its rename):
:func:`write_synced_file`, :func:`rename_synced`, :func:`unlink_synced`,
:func:`fsync_dir`. None of them follows a link: a link at a name is replaced or
unlinked, its target is never written; a folder at a file's name is never
deleted. Every refusal is a :class:`StorageError` naming the path, and a full
disk is a :class:`DiskFull`.

Small files lanspread keeps in a game folder, where a player's link, folder or
giant file may stand instead, are read back with :func:`read_regular_bounded`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path

from lanspread.errors import StorageError
from lanspread.files.entries import mode_or_none, require_dir_or_absent
from lanspread.platform import fileio

TEMP_SUFFIX = ".tmp"

# Never follow a link, never block on a FIFO, never translate line ends.
_READ_FLAGS = (
    os.O_RDONLY | fileio.O_NOFOLLOW | fileio.O_NONBLOCK | fileio.O_BINARY | fileio.O_CLOEXEC
)
# A fresh file only: whatever held the name was unlinked first, and a name that
# reappears in between (or a link) fails the create instead of being written through.
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | fileio.O_NOFOLLOW | fileio.O_CLOEXEC | fileio.O_BINARY
)

# os.read allocates what it is asked for: a bound of hundreds of MiB (the install
# record's) must not cost that much memory to read a file of a few bytes.
READ_BLOCK_SIZE = 1024 * 1024

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
"""The ``errno`` values that mean the disk (or the player's quota) is full."""


class DiskFull(StorageError):
    """The disk has no room for the download: found before allocating, or by a write."""

    def __init__(
        self, message: str, *, needed: int | None = None, available: int | None = None
    ) -> None:
        super().__init__(message)
        self.needed = needed
        """Bytes the check asked for (payload still to allocate plus the margin)."""
        self.available = available
        """Bytes the check found free (including what stale entries would free)."""


def free_bytes(path: Path, *, error: type[StorageError] = StorageError) -> int:
    """Free bytes of the disk holding ``path`` (which must exist); ``error`` when unknown."""
    try:
        return shutil.disk_usage(path).free
    except OSError as exc:
        raise error(f"cannot read the free space of {path}: {exc.strerror or exc}") from exc


class NotARegularFile(StorageError):
    """The path holds a link, a folder, a device or a file over the size bound."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is {reason}")
        self.reason = reason
        """What stands there instead, in words: ``not a regular file``, ``larger than N bytes``."""


# --- reading --------------------------------------------------------------------------------


def read_regular_bounded(path: Path, limit: int, *, head: int | None = None) -> bytes | None:
    """The bytes of the regular file at ``path`` (``None`` when there is none).

    A link (never followed), folder, FIFO or device at ``path``, or a file of more
    than ``limit`` bytes, is a :class:`NotARegularFile`: at most ``limit + 1``
    bytes are ever read, whatever the file's size. With ``head``, only the first
    ``head`` bytes are read and returned (the whole file is still held to
    ``limit``). The name is looked at with ``lstat`` before it is opened, so a
    link is refused where ``O_NOFOLLOW`` does not exist (Windows), and the
    descriptor is checked again after.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise NotARegularFile(path, "not a regular file")
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.EISDIR}:
            raise NotARegularFile(path, "not a regular file") from exc
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(path, "not a regular file")
        if info.st_size > limit:
            data = None
        elif head is not None:
            data = _read_prefix(fd, head)
        else:
            data = read_at_most(fd, limit)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    if data is None:
        raise NotARegularFile(path, f"larger than {limit} bytes")
    return data


def read_at_most(fd: int, limit: int) -> bytes | None:
    """Up to ``limit`` bytes from ``fd``; ``None`` when it holds more (``limit + 1`` are read)."""
    data = _read_prefix(fd, limit + 1)
    return None if len(data) > limit else data


def _read_prefix(fd: int, size: int) -> bytes:
    """The next ``size`` bytes of ``fd``, fewer at its end."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = os.read(fd, min(remaining, READ_BLOCK_SIZE))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# --- writing --------------------------------------------------------------------------------


def temp_path_for(path: Path) -> Path:
    return path.with_name(path.name + TEMP_SUFFIX)


def fsync_dir(directory: Path) -> None:
    """Make a rename, create or unlink inside ``directory`` durable (a no-op on Windows).

    Raises :class:`StorageError` naming the folder when the disk refuses.
    """
    try:
        fileio.fsync_directory(directory)
    except OSError as exc:
        raise StorageError(f"cannot sync {directory}: {exc.strerror or exc}") from exc


def atomic_write_bytes(path: Path, data: bytes, *, temp: Path | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably, through ``temp``.

    ``temp`` (by default ``path`` with :data:`TEMP_SUFFIX`) is created afresh:
    a file or link at that name is unlinked first, so the caller proves it
    lanspread's before calling where the player could have put one. On failure
    the temp file is gone, ``path`` is untouched and :class:`StorageError` (or
    :class:`DiskFull`) names ``path``.
    """
    tmp = temp if temp is not None else temp_path_for(path)
    try:
        _unlink_missing_ok(tmp)
        _create_synced(tmp, data)
        tmp.replace(path)
        fileio.fsync_directory(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            _unlink_missing_ok(tmp)
        raise _write_error(path, exc) from exc


def write_synced_file(path: Path, data: bytes) -> None:
    """Create ``path`` afresh holding ``data`` and sync it; whatever sat there is replaced.

    A file or link already at ``path`` is unlinked first (a link's target is never
    touched, never written through); a folder there is refused. On failure the
    partly written file is deleted and :class:`StorageError` (or :class:`DiskFull`)
    is raised. The caller syncs the folder (:func:`rename_synced` does).
    """
    try:
        _unlink_missing_ok(path)
        _create_synced(path, data)
    except OSError as exc:
        with contextlib.suppress(OSError):
            _unlink_missing_ok(path)
        raise _write_error(path, exc) from exc


def rename_synced(source: Path, target: Path) -> None:
    """Atomically rename ``source`` over ``target`` (same folder) and sync the folder."""
    try:
        source.replace(target)
    except OSError as exc:
        raise StorageError(f"cannot rename {source} to {target}: {exc.strerror or exc}") from exc
    fsync_dir(target.parent)


def unlink_synced(path: Path) -> bool:
    """Delete the file or link ``path`` and sync its folder; False when there was none.

    A folder at ``path`` is never deleted: False, and it stays.
    """
    mode = mode_or_none(path)
    if mode is None or stat.S_ISDIR(mode) or not _unlink(path, "delete"):
        return False
    fsync_dir(path.parent)
    return True


def make_dir_synced(path: Path, *, exist_ok: bool = False) -> bool:
    """Create the folder ``path`` and sync its parent; True when this call created it.

    With ``exist_ok`` a real folder already there is fine (False); a link, even
    to a folder, or a file there is refused like any failure, with a
    :class:`StorageError` naming ``path``.
    """
    try:
        path.mkdir()
    except FileExistsError as exc:
        if not exist_ok:
            raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from exc
        require_dir_or_absent(path)
        return False
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from exc
    fsync_dir(path.parent)
    return True


def sweep_temp(path: Path) -> bool:
    """Remove a temp file a crash left next to ``path``; True if there was one.

    For the state directory's own files, whose temp names only lanspread uses; a
    folder there is a :class:`StorageError`.
    """
    return _unlink(temp_path_for(path), "remove stale")


def _unlink(path: Path, refusal: str) -> bool:
    """Unlink the file or link ``path``; False when absent. ``unlink`` never removes a
    folder; any refusal is a :class:`StorageError` saying ``cannot <refusal> <path>``."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"cannot {refusal} {path}: {exc.strerror or exc}") from exc
    return True


def _unlink_missing_ok(path: Path) -> None:
    """Unlink a file or link; ``unlink`` never removes a folder (it fails, and it stays)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _create_synced(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist), write all of ``data``, fsync it; raises OSError."""
    fd = os.open(path, _CREATE_FLAGS, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno in DISK_FULL_ERRNOS:
        return DiskFull(f"disk full while writing {path}: {exc.strerror}")
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


__all__ = [
    "DISK_FULL_ERRNOS",
    "TEMP_SUFFIX",
    "DiskFull",
    "NotARegularFile",
    "atomic_write_bytes",
    "free_bytes",
    "fsync_dir",
    "make_dir_synced",
    "read_at_most",
    "read_regular_bounded",
    "rename_synced",
    "sweep_temp",
    "temp_path_for",
    "unlink_synced",
    "write_synced_file",
]
