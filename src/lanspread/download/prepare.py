"""The payload files of a download on disk: preparation, safe opening, positional writes.

Theory of operation
-------------------
:func:`prepare_game_storage` makes a game root ready to receive a manifest's
bytes, in two phases:

1. **Survey, then check** (changes nothing). Walk the root without following
   links and sort every payload entry: a manifest file that is a regular file is
   kept (its bytes may be reused by an update or a resume), a folder a manifest
   path needs is walked, anything else is *stale* (an old version's archive, a
   player's mod, a link or a folder where the manifest wants a file). A stale
   entry is deleted only when the download's ownership record
   (:mod:`lanspread.files.ownership`) proves lanspread created it; every
   other one is left alone and logged. Installer-owned, transient and
   ownership names and the root ``version.ini`` sentinel are never looked at.
   Then count the bytes still to allocate and compare them, plus
   :data:`FREE_SPACE_MARGIN`, with the free space (plus what deleting the
   proven-ours stale files frees). Too little raises :class:`DiskFull` naming
   both numbers, before anything was created, deleted or resized. The caller
   claimed the manifest's names first
   (:func:`~lanspread.files.ownership.claim_download`), which refuses a
   download whose paths the player's files hold: preparation writes only into
   files the claim covers.
2. **Apply.** Create the root and the nested folders, delete the proven stale entries,
   create or open each payload file but the sentinel, set it to its final size
   (``ftruncate``, keeping the bytes it already holds) and reserve its blocks
   (``posix_fallocate`` where the platform has it), so a full disk shows up
   now and not mid-transfer. Files whose size or allocation changed and
   folders that gained or lost an entry are synced, so the layout survives a
   power loss; preparing an already prepared root (a resume) syncs nothing.
   A failure here (another program filled the disk in the meantime) raises
   :class:`StorageError` and leaves a partly prepared root that the cancel path
   (:mod:`lanspread.files.sentinel` rollback, then
   :func:`lanspread.install.sweep.discard_download`) or the next prepare
   settles; it never changes a byte a file already held within its final size.

:func:`open_for_writing` and :func:`open_for_reading` reach a payload file by
walking its path one component at a time from the root's descriptor, each step
refusing links (``O_NOFOLLOW``), so nothing ever writes or reads outside the
root, whatever was swapped in on disk. :func:`write_at` is the one positional
write (``pwrite`` on POSIX, seek-and-write under a lock on Windows) and turns a
full disk into :class:`DiskFull`. :func:`fsync_files` makes written bytes durable.

Everything here blocks; the runtime runs it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lanspread.core.gameroot import VERSION_FILE, is_reserved_name
from lanspread.core.manifest import (
    FileManifest,
    GameManifest,
    ManifestError,
    check_relative_path,
    validate_manifest,
)
from lanspread.errors import StorageError
from lanspread.files.atomic import (
    DISK_FULL_ERRNOS,
    DiskFull,
    free_bytes,
    fsync_dir,
    make_dir_synced,
)
from lanspread.files.entries import require_dir_or_absent
from lanspread.files.ownership import (
    TRANSIENT_BOUNDS,
    OwnershipRecord,
    is_ours,
    sweep_owned,
)
from lanspread.platform import fileio

log = logging.getLogger(__name__)

MiB = 1024 * 1024

# Room kept free beyond the payload: the download journal (up to about 22 MiB at
# the manifest bounds, written twice during its atomic replace), the sentinel,
# directory metadata, and some slack so a finished download does not leave the
# player's disk completely full for every other program.
FREE_SPACE_MARGIN = 64 * MiB

# st_blocks counts 512-byte units on every POSIX system, whatever the block size.
_STAT_BLOCK_SIZE = 512

_IS_POSIX = os.name == "posix"
_CLOEXEC = fileio.O_CLOEXEC
_NOFOLLOW = fileio.O_NOFOLLOW
_BINARY = fileio.O_BINARY
# O_NONBLOCK: opening a FIFO swapped in for a payload file must fail, not hang.
_DIR_FLAGS = os.O_RDONLY | fileio.O_DIRECTORY | _NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _BINARY | fileio.O_NONBLOCK
_WRITE_FLAGS = os.O_RDWR | _NOFOLLOW | _CLOEXEC | _BINARY | fileio.O_NONBLOCK
# Errors that mean "a component is a link or not a folder": the path is refused.
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})

Buffer = bytes | bytearray | memoryview


# --- preparation ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Survey:
    """What phase 1 found: entries to delete and the blocks already allocated per file."""

    stale: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    allocated: dict[str, int] = field(default_factory=dict)


def prepare_game_storage(
    root: Path,
    manifest: GameManifest,
    *,
    margin: int = FREE_SPACE_MARGIN,
    owned: OwnershipRecord | None = None,
) -> None:
    """Make ``root`` hold every payload file of ``manifest`` (but the sentinel) at full size.

    Existing bytes of manifest files are kept; stale payload entries are deleted
    only when ``owned`` proves lanspread created them (without a record nothing
    is deleted); installer-owned names, transients and ``version.ini`` are never
    touched.
    Raises :class:`DiskFull` (before changing anything) when the free space is
    below the bytes still to allocate plus ``margin``, and :class:`StorageError`
    when the root is a link or not a folder, the manifest is invalid, or the disk
    refuses a step.
    """
    try:
        validate_manifest(manifest)
    except ManifestError as exc:
        raise StorageError(f"cannot prepare {root}: {exc}") from exc
    files = tuple(file for file in manifest.files if not file.is_sentinel)
    root_exists = require_dir_or_absent(root)
    survey = _survey(root, files) if root_exists else _Survey()
    keep = {file.path for file in manifest.files} | set(TRANSIENT_BOUNDS) | _folders_of(files)
    stale_owned = _stale_owned(root, owned, keep, survey.stale)
    survey.freed_bytes = sum(_freed_bytes(root / path) for path in stale_owned)
    _check_free_space(root, files, survey, margin)
    if not root_exists:
        make_dir_synced(root, exist_ok=True)
    changed_folders: set[Path] = set()
    if owned is not None and stale_owned:
        sweep_owned(root, owned, keep=keep, drop_record=False)  # syncs what it changed
    for file in files:
        _allocate(root, file)
        if file.path not in survey.allocated:
            changed_folders.update(_folders_down_to(root, file.path))
    for folder in sorted(changed_folders):
        fsync_dir(folder)


def _folders_of(files: Sequence[FileManifest]) -> set[str]:
    return {
        "/".join(parts[:depth])
        for parts in (file.path.split("/") for file in files)
        for depth in range(1, len(parts))
    }


def _stale_owned(
    root: Path, owned: OwnershipRecord | None, keep: set[str], stale: Sequence[str]
) -> list[str]:
    """The recorded names outside ``keep`` still provably ours; logs the stale rest."""
    ours = (
        [
            name.path
            for name in owned.names
            if name.path not in keep and name.kind == "file" and is_ours(root, name)
        ]
        if owned is not None
        else []
    )
    recorded = {name.path for name in owned.names} if owned is not None else set()
    foreign = [path for path in stale if path not in recorded]
    if foreign:
        log.info(
            "%s: left alone, not created by lanspread: %s",
            root,
            ", ".join(foreign[:20]) + (" ..." if len(foreign) > 20 else ""),
        )
    return ours


def _survey(root: Path, files: Sequence[FileManifest]) -> _Survey:
    wanted_files = {file.path for file in files}
    wanted_dirs = {
        "/".join(parts[:depth])
        for parts in (file.path.split("/") for file in files)
        for depth in range(1, len(parts))
    }
    survey = _Survey()
    pending = [""]
    while pending:
        prefix = pending.pop()
        for entry in _scan(root / prefix if prefix else root):
            if not prefix and (is_reserved_name(entry.name) or entry.name == VERSION_FILE):
                continue
            relative = f"{prefix}{entry.name}"
            if relative in wanted_files and entry.is_file(follow_symlinks=False):
                survey.allocated[relative] = _allocated_bytes(entry)
            elif relative in wanted_dirs and entry.is_dir(follow_symlinks=False):
                pending.append(f"{relative}/")
            else:
                survey.stale.append(relative)
    survey.stale.sort()
    return survey


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        raise StorageError(f"cannot list {folder}: {exc.strerror or exc}") from exc


def _allocated_bytes(entry: os.DirEntry[str]) -> int:
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError as exc:
        raise StorageError(f"cannot inspect {entry.path}: {exc.strerror or exc}") from exc
    return _blocks_of(info)


def _blocks_of(info: os.stat_result) -> int:
    blocks = getattr(info, "st_blocks", None)
    return info.st_size if blocks is None else blocks * _STAT_BLOCK_SIZE


def _freed_bytes(path: Path) -> int:
    """Bytes deleting ``path`` gives back: regular files with no other hard link."""
    total = 0
    for info in _walk_stats(path):
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            total += _blocks_of(info)
    return total


def _walk_stats(path: Path) -> Iterator[os.stat_result]:
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise StorageError(f"cannot inspect {path}: {exc.strerror or exc}") from exc
    yield info
    if stat.S_ISDIR(info.st_mode):
        for entry in _scan(path):
            yield from _walk_stats(path / entry.name)


def _check_free_space(
    root: Path, files: Sequence[FileManifest], survey: _Survey, margin: int
) -> None:
    to_allocate = sum(max(0, file.size - survey.allocated.get(file.path, 0)) for file in files)
    if to_allocate == 0:
        return
    free = free_bytes(_nearest_existing(root))
    available = free + survey.freed_bytes
    needed = to_allocate + margin
    if available < needed:
        raise DiskFull(
            f"not enough disk space for {root}: needs {needed} bytes "
            f"({to_allocate} to allocate plus a {margin}-byte margin), {available} available",
            needed=needed,
            available=available,
        )


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def _allocate(root: Path, file: FileManifest) -> None:
    """Size and reserve one payload file; sync it only if that changed anything.

    A resumed download's files are already prepared, so a resume costs no sync;
    a resized file is synced so a power loss cannot bring back an old length.
    """
    fd = _open_payload(root, file.path, _WRITE_FLAGS | os.O_CREAT, create_dirs=True)
    where = root / file.path
    try:
        before = os.fstat(fd)
        if before.st_size != file.size:
            os.ftruncate(fd, file.size)
        _reserve(fd, file.size)
        after = os.fstat(fd)
        if (after.st_size, _blocks_of(after)) != (before.st_size, _blocks_of(before)):
            os.fsync(fd)
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFull(f"disk full while allocating {where}: {exc.strerror}") from exc
        raise StorageError(f"cannot allocate {where}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _reserve(fd: int, size: int) -> None:
    """Reserve the blocks of ``size`` bytes where the platform can; unsupported is not an error."""
    if size > 0:
        fileio.reserve_blocks(fd, size)


def _folders_down_to(root: Path, relative: str) -> list[Path]:
    """The root and every folder on the way to ``relative``: where a new entry may appear."""
    folders = [root]
    for part in relative.split("/")[:-1]:
        folders.append(folders[-1] / part)
    return folders


# --- opening, writing and syncing payload files ---------------------------------------------


def open_for_writing(root: Path, relative_path: str) -> int:
    """A read-write descriptor of the prepared payload file ``relative_path``; the caller closes it.

    Refuses (:class:`StorageError`) a path that is unsafe or reserved, the
    ``version.ini`` sentinel (committed only by :mod:`lanspread.files.sentinel`),
    a link or non-folder anywhere on the path, a missing file (run
    :func:`prepare_game_storage` first) and anything but a regular file.
    """
    _check_payload_path(root, relative_path)
    if relative_path == VERSION_FILE:
        raise StorageError(
            f"refusing to open {root / relative_path} for writing: the sentinel is "
            "committed last through its temp file"
        )
    return _open_payload(root, relative_path, _WRITE_FLAGS, create_dirs=False)


def open_for_reading(root: Path, relative_path: str) -> int | None:
    """A read-only descriptor of payload file ``relative_path``; the caller closes it.

    ``None`` when the path does not lead to a regular file without crossing a
    link: it is absent, a link, a folder or a special file. Raises
    :class:`StorageError` for an unsafe path or when the disk refuses.
    """
    _check_payload_path(root, relative_path)
    try:
        return _open_payload(root, relative_path, _READ_FLAGS, create_dirs=False)
    except _NotAPayloadFile:
        return None


def write_at(fd: int, data: Buffer, offset: int, *, name: str = "payload file") -> None:
    """Write all of ``data`` at ``offset`` of ``fd``; ``name`` is for error messages.

    Raises :class:`DiskFull` when the disk is full and :class:`StorageError`
    for any other refusal; either way the bytes written so far stay, and the
    chunk does not count until it is verified and journaled.
    """
    view = memoryview(data).cast("B")
    written = 0
    try:
        while written < len(view):
            written += fileio.pwrite(fd, view[written:], offset + written)
    except OSError as exc:
        where = f"{name} at offset {offset + written}"
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFull(f"disk full while writing {where}: {exc.strerror}") from exc
        raise StorageError(f"cannot write {where}: {exc.strerror or exc}") from exc


def fsync_files(root: Path, paths: Iterable[str]) -> None:
    """Make the written bytes of each payload file durable (data, not just metadata).

    Raises :class:`StorageError` when a path is unsafe, not a regular payload
    file, or the disk refuses the sync.
    """
    for relative in paths:
        _check_payload_path(root, relative)
        fd = _open_payload(root, relative, _SYNC_FLAGS, create_dirs=False)
        try:
            sync_fd(fd, name=str(root / relative))
        finally:
            os.close(fd)


# Windows flushes a handle only if it may write; POSIX syncs read-only descriptors.
_SYNC_FLAGS = _READ_FLAGS if _IS_POSIX else _WRITE_FLAGS


def sync_fd(fd: int, *, name: str = "payload file") -> None:
    """``fdatasync`` where it exists (the size is fixed by preparation), else ``fsync``."""
    try:
        fileio.data_sync(fd)
    except OSError as exc:
        raise StorageError(f"cannot sync {name}: {exc.strerror or exc}") from exc


class _NotAPayloadFile(StorageError):
    """The path crosses a link, a non-folder, or ends at something that is not a regular file."""


def _check_payload_path(root: Path, relative_path: str) -> None:
    try:
        check_relative_path(relative_path)
    except ManifestError as exc:
        raise StorageError(f"refusing {relative_path!r} under {root}: {exc}") from exc


def _open_payload(root: Path, relative_path: str, flags: int, *, create_dirs: bool) -> int:
    """Open ``root/relative_path`` without following a link anywhere; must be a regular file."""
    *folders, name = relative_path.split("/")
    where = root / relative_path
    try:
        fd = _open_file(root, folders, name, flags, create_dirs=create_dirs)
    except FileNotFoundError as exc:
        raise _NotAPayloadFile(f"{where} does not exist (prepare the game storage first)") from exc
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise _NotAPayloadFile(f"{where} is not a regular file") from exc
        if exc.errno in _LINK_ERRNOS or exc.errno == errno.ENXIO:
            raise _NotAPayloadFile(
                f"{where}: the path crosses a link or a non-folder; not following it"
            ) from exc
        if exc.errno in DISK_FULL_ERRNOS:
            raise DiskFull(f"disk full while creating {where}: {exc.strerror}") from exc
        raise StorageError(f"cannot open {where}: {exc.strerror or exc}") from exc
    try:
        is_regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError as exc:
        os.close(fd)
        raise StorageError(f"cannot inspect {where}: {exc.strerror or exc}") from exc
    if not is_regular:
        os.close(fd)
        raise _NotAPayloadFile(f"{where} is not a regular file")
    return fd


if _IS_POSIX:

    def _open_file(
        root: Path, folders: Sequence[str], name: str, flags: int, *, create_dirs: bool
    ) -> int:
        directory = os.open(root, _DIR_FLAGS)
        try:
            for folder in folders:
                if create_dirs:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(folder, 0o755, dir_fd=directory)
                child = os.open(folder, _DIR_FLAGS, dir_fd=directory)
                os.close(directory)
                directory = child
            return os.open(name, flags, 0o644, dir_fd=directory)
        finally:
            os.close(directory)

else:  # pragma: no cover - exercised on Windows only

    def _open_file(
        root: Path, folders: Sequence[str], name: str, flags: int, *, create_dirs: bool
    ) -> int:
        # No dir_fd on Windows: check each component with lstat (a link or junction
        # is a reparse point) before opening by path.
        path = root
        for component in (*folders, name):
            _refuse_reparse_point(path)
            path = path / component
            if create_dirs and component != name and not os.path.lexists(path):
                path.mkdir()
        _refuse_reparse_point(path, missing_ok=bool(flags & os.O_CREAT))
        return os.open(path, flags & ~_NOFOLLOW, 0o644)

    def _refuse_reparse_point(path: Path, *, missing_ok: bool = False) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            if missing_ok:
                return
            raise
        reparse = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)
        if stat.S_ISLNK(info.st_mode) or getattr(info, "st_file_attributes", 0) & reparse:
            raise OSError(errno.ELOOP, "is a link or junction", str(path))


__all__ = [
    "FREE_SPACE_MARGIN",
    "fsync_files",
    "open_for_reading",
    "open_for_writing",
    "prepare_game_storage",
    "sync_fd",
    "write_at",
]
