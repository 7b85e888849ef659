"""The install record on disk: walking and hashing trees, reading and committing records.

The rules live in :mod:`lanspread.core.install_record`; this module feeds them
facts from the disk and carries out their plans. Links are never followed: a
walk lists a link as a non-folder and never hashes through it, and the player's
files are carried by hard link (a copy where the filesystem has none), so the
old tree keeps its names until the transaction's commit has made the new tree
durable.

The record is committed in two renames: a transaction writes the new record
atomically to ``.lanspread.install.next.json`` before its commit rename and
renames it over ``.lanspread.install.json`` after; startup recovery finishes or
drops that second step from the intent (:func:`lanspread.core.recovery.decide_record_steps`).

All functions block; the runtime calls them in worker threads.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import blake3
import msgspec

from lanspread.core.gameroot import (
    INSTALL_RECORD_FILE,
    INSTALL_RECORD_NEXT_FILE,
    INSTALL_RECORD_TMP_FILE,
    LOCAL_DIR,
    OWNED_MARKER,
)
from lanspread.core.install_record import (
    INSTALL_RECORD_FORMAT,
    MAX_INSTALL_RECORD_SIZE,
    CarryPlan,
    InstallRecord,
    LocalDiff,
    LocalFile,
    RecordedFile,
    diff_local,
    make_record,
    needs_hash,
)
from lanspread.errors import InstallRecordCorrupt, StorageError
from lanspread.files.atomic import atomic_write_bytes, fsync_dir, unlink_synced
from lanspread.files.entries import lstat_or_none
from lanspread.files.records import is_record_temp, load_game_record

# Large enough that hashing runs at BLAKE3 speed, small enough to stay out of the way.
HASH_READ_SIZE = 1024 * 1024

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | _NOFOLLOW
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str
    """Relative, ``/``-separated."""
    is_dir: bool
    is_file: bool
    size: int


def record_path(root: Path) -> Path:
    return root / INSTALL_RECORD_FILE


def walk(base: Path, *, skip_top: frozenset[str] = frozenset()) -> Iterator[TreeEntry]:
    """Every entry under ``base`` (links and other non-files reported, never followed)."""
    pending = [(base, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as entries:
                children = list(entries)
        except OSError as exc:
            raise StorageError(f"cannot list {folder}: {exc.strerror or exc}") from exc
        for child in children:
            if not prefix and child.name in skip_top:
                continue
            relative = prefix + child.name
            info = lstat_or_none(Path(child.path))
            if info is None:
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            yield TreeEntry(relative, is_dir, stat.S_ISREG(info.st_mode), info.st_size)
            if is_dir:
                pending.append((Path(child.path), relative + "/"))


def hash_file(path: Path) -> str:
    """The BLAKE3 hex digest of a regular file, read without following a link."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    hasher = blake3.blake3()
    try:
        while chunk := os.read(fd, HASH_READ_SIZE):
            hasher.update(chunk)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return hasher.hexdigest()


def record_tree(
    tree_dir: Path, game_id: str, version: str | None, *, installed: bool = True
) -> tuple[InstallRecord, dict[str, bool]]:
    """The record of every regular file under ``tree_dir`` (a staging dir's marker
    excluded), and every path it holds mapped to whether it is a folder."""
    files: list[RecordedFile] = []
    tree: dict[str, bool] = {}
    for entry in walk(tree_dir, skip_top=frozenset({OWNED_MARKER})):
        tree[entry.path] = entry.is_dir
        if entry.is_file:
            digest = hash_file(tree_dir / entry.path)
            files.append(RecordedFile(path=entry.path, size=entry.size, blake3=digest))
    return make_record(game_id, version, files, installed=installed), tree


def scan_local(
    local_dir: Path, record: InstallRecord | None, *, hash_all: bool = False
) -> list[LocalFile]:
    """The regular files of ``local_dir``, hashed where classifying needs it (or all)."""
    recorded = record.by_path() if record is not None else {}
    found = []
    for entry in walk(local_dir, skip_top=frozenset({OWNED_MARKER})):
        if not entry.is_file:
            continue
        wanted = hash_all or needs_hash(recorded.get(entry.path), entry.size)
        digest = hash_file(local_dir / entry.path) if wanted else None
        found.append(LocalFile(path=entry.path, size=entry.size, blake3=digest))
    return found


def diff_tree(local_dir: Path, record: InstallRecord | None) -> LocalDiff:
    """How ``local_dir`` differs from ``record``."""
    return diff_local(record, scan_local(local_dir, record))


@dataclass(frozen=True, slots=True)
class LocalInspection:
    """``local/`` against its record, with what deleting it would free."""

    record: InstallRecord | None
    diff: LocalDiff
    files: int
    bytes: int
    players_bytes: int
    """Bytes of the player's files (added, or shipped and edited)."""


def inspect_local(root: Path) -> LocalInspection:
    """Compare ``<root>/local`` with the record; an unusable record counts as none."""
    try:
        record = read_record(root)
    except InstallRecordCorrupt:
        record = None
    found = scan_local(root / LOCAL_DIR, record)
    diff = diff_local(record, found)
    players = set(diff.players)
    return LocalInspection(
        record=record,
        diff=diff,
        files=len(found),
        bytes=sum(f.size for f in found),
        players_bytes=sum(f.size for f in found if f.path in players),
    )


def carry_over(old_dir: Path, new_dir: Path, plan: CarryPlan) -> None:
    """Put the planned player files into the new tree; the old tree keeps them too."""
    for carry in plan.carries:
        source = old_dir / carry.source
        target = new_dir / carry.target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, target)
        except OSError as exc:
            raise StorageError(
                f"cannot keep your file {carry.source}: {exc.strerror or exc}"
            ) from exc


def carry_links(old_dir: Path, new_dir: Path, new_tree: dict[str, bool]) -> tuple[str, ...]:
    """Recreate in the new tree the old tree's symbolic links the new version does not ship.

    The record lists regular files only, so a link in ``local/`` is the
    player's (a mods folder kept elsewhere, say) unless the new version ships
    that very path: it is made again with the same target, never followed and
    never over anything, so dropping the old tree afterwards loses none of
    them. A link whose folder the new version has as a file or link is a
    conflict (:class:`StorageError`). Returns the carried paths.
    """
    carried = []
    for entry in walk(old_dir, skip_top=frozenset({OWNED_MARKER})):
        if entry.is_dir or entry.is_file or entry.path in new_tree:
            continue
        source = old_dir / entry.path
        if not source.is_symlink():
            continue  # a fifo or socket: not a file a game or a player keeps
        for parent in PurePosixPath(entry.path).parents:
            if new_tree.get(parent.as_posix()) is False:
                raise StorageError(
                    f"cannot keep your link {entry.path}: "
                    f"the new version has a file named {parent.as_posix()}"
                )
        target = new_dir / entry.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Windows makes file and folder links differently; POSIX ignores the flag.
            target.symlink_to(source.readlink(), target_is_directory=source.is_dir())
        except OSError as exc:
            raise StorageError(
                f"cannot keep your link {entry.path}: {exc.strerror or exc}"
            ) from exc
        carried.append(entry.path)
    return tuple(sorted(carried))


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK}:
            raise
        _copy_exclusive(source, target)


def _copy_exclusive(source: Path, target: Path) -> None:
    """Copy ``source`` to a new ``target``; never over a file already there (``O_EXCL``)."""
    reader = os.open(source, _READ_FLAGS)
    try:
        writer = os.open(target, _CREATE_FLAGS, 0o644)
        try:
            while chunk := os.read(reader, HASH_READ_SIZE):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(writer, view) :]
        finally:
            os.close(writer)
    finally:
        os.close(reader)
    shutil.copystat(source, target, follow_symlinks=False)


def read_record(root: Path) -> InstallRecord | None:
    """The committed record of ``root``; ``None`` when there is none.

    Raises :class:`InstallRecordCorrupt` when it cannot be trusted and
    :class:`StorageError` when it cannot be read.
    """
    return _load(record_path(root))


def _load(path: Path) -> InstallRecord | None:
    return load_game_record(
        path,
        InstallRecord,
        limit=MAX_INSTALL_RECORD_SIZE,
        format_version=INSTALL_RECORD_FORMAT,
        what="an install record",
        corrupt=InstallRecordCorrupt,
    )


def write_pending_record(root: Path, record: InstallRecord) -> None:
    """Durably store the record of the tree about to be committed.

    Only over names that are absent or provably lanspread's
    (:func:`foreign_record_files`); a file the player made there raises
    :class:`StorageError` and stays.
    """
    _refuse_foreign(root, (INSTALL_RECORD_NEXT_FILE, INSTALL_RECORD_TMP_FILE))
    atomic_write_bytes(
        root / INSTALL_RECORD_NEXT_FILE,
        _ENCODER.encode(record),
        temp=root / INSTALL_RECORD_TMP_FILE,
    )


def commit_pending_record(root: Path) -> bool:
    """Rename the pending record over the record, durably; False when none is pending.

    Only a pending record of this game is committed, and only over a record of
    this game (or none): a file of either name the player made is never moved
    or replaced (the latter raises :class:`StorageError`).
    """
    pending = root / INSTALL_RECORD_NEXT_FILE
    if not is_our_record_file(root, INSTALL_RECORD_NEXT_FILE):
        return False
    _refuse_foreign(root, (INSTALL_RECORD_FILE,))
    try:
        pending.replace(record_path(root))
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"cannot commit {pending}: {exc.strerror or exc}") from exc
    fsync_dir(root)
    return True


def drop_pending_record(root: Path) -> bool:
    """Delete the pending record and its temp file (idempotent); True when one was deleted.

    Each only with proof: the pending record when it is a record of this game,
    the temp file when its bytes are (a prefix of) one. The player's files of
    those names stay.
    """
    dropped = False
    if is_our_record_file(root, INSTALL_RECORD_NEXT_FILE):
        dropped = unlink_synced(root / INSTALL_RECORD_NEXT_FILE)
    if is_our_record_temp(root):
        unlink_synced(root / INSTALL_RECORD_TMP_FILE)
    return dropped


def drop_record(root: Path) -> bool:
    """Delete the committed record (idempotent), durably; only a record of this game."""
    if not is_our_record_file(root, INSTALL_RECORD_FILE):
        return False
    return unlink_synced(record_path(root))


def is_our_record_file(root: Path, name: str) -> bool:
    """True when ``root/name`` is a regular file holding a valid install record of this game.

    lanspread writes its records atomically, so a file of that name it cannot
    read as one is not lanspread's: never replaced or deleted.
    """
    try:
        return _load(root / name) is not None
    except (InstallRecordCorrupt, StorageError):
        return False


def is_our_record_temp(root: Path) -> bool:
    """True when the pending record's temp file holds what :func:`write_pending_record` writes.

    A kill during the atomic write leaves an empty file, a prefix of the record
    or the whole record (:func:`lanspread.files.records.is_record_temp`).
    Anything else, or anything but a regular file, is the player's.
    """
    return is_record_temp(
        root / INSTALL_RECORD_TMP_FILE,
        format_version=INSTALL_RECORD_FORMAT,
        limit=MAX_INSTALL_RECORD_SIZE,
    )


def foreign_record_files(root: Path) -> tuple[str, ...]:
    """The record names in ``root`` that something other than lanspread holds."""
    foreign = []
    for name in (INSTALL_RECORD_FILE, INSTALL_RECORD_NEXT_FILE, INSTALL_RECORD_TMP_FILE):
        if not os.path.lexists(root / name):
            continue
        if name == INSTALL_RECORD_TMP_FILE:
            ours = is_our_record_temp(root)
        else:
            ours = is_our_record_file(root, name)
        if not ours:
            foreign.append(name)
    return tuple(foreign)


def _refuse_foreign(root: Path, names: tuple[str, ...]) -> None:
    for name in foreign_record_files(root):
        if name in names:
            raise StorageError(
                f"{root / name} is not a file lanspread wrote; move it out of the game folder"
            )


__all__ = [
    "LocalInspection",
    "TreeEntry",
    "carry_links",
    "carry_over",
    "commit_pending_record",
    "diff_tree",
    "drop_pending_record",
    "drop_record",
    "foreign_record_files",
    "hash_file",
    "inspect_local",
    "is_our_record_file",
    "is_our_record_temp",
    "read_record",
    "record_path",
    "record_tree",
    "scan_local",
    "walk",
    "write_pending_record",
]
