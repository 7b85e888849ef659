"""What a download created in a game root, recorded before it creates anything.

Rule: lanspread deletes only what it can prove it created. The proof is the
**ownership record** ``<root>/.lanspread.files.json``: a download *claims* every
name it is about to create, writes the record atomically and durably (temp
file, fsync, rename, fsync of the root) and only then creates the names; once
they exist it records each one's identity (device and inode) and writes the
record again, before the first payload byte. Every sweep (startup, cancel,
discard, a failed download, an update's preparation, *Remove files*) deletes
only names the record lists, and only while the thing on disk is still
plausibly the one lanspread made:

* a file must be a regular file (reached without crossing a link) no larger
  than the size the record allows (a payload file's manifest size, a small
  transient's bound), and when the record holds its identity the device and
  inode must match: a file the player put in its place after deleting ours
  has another inode;
* a folder must be a real folder with the recorded identity, and is only ever
  removed with ``rmdir``: a player's file inside keeps it (and itself) alive;
* the root itself goes only if the record says the download created it and it
  is empty once lanspread's names are gone.

A name claimed but not yet identified (a kill between the claim and the
identity write) is ours while it stays within its size bound: the claim was
written while the name was free, so what appeared there is what the download
created. A name the player already held when the download began is never
claimed: a fresh download refuses to start (:class:`InTheWay`) rather than
write into it, and an update of a game that is ready here (the player asked to
replace its files) *adopts* the manifest's own paths: it may rewrite them but
never deletes them.

Inode numbers are reused: a file the player creates under the same name after
ours was deleted often gets our freed number. The inode's *generation*
(:mod:`lanspread.platform.generation`: Linux file systems change it on reuse;
NTFS's file ID carries a reuse sequence) tells them apart. Where neither
exists the proof is the device, the inode number and the size bound, and a
replacement that got our number and is no larger than ours would pass: the
one known gap, limited to a name the download itself created.

A record that cannot be decoded, names another game or has another format is
not ours: it is never overwritten or deleted, and nothing it names is deleted.

Everything here blocks; the runtime runs it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from lanspread.core.gameroot import (
    DOWNLOAD_JOURNAL_FILE,
    DOWNLOAD_JOURNAL_TMP_FILE,
    MAX_VERSION_FILE_SIZE,
    OWNERSHIP_FILE,
    OWNERSHIP_TMP_FILE,
    VERSION_DISCARDED_FILE,
    VERSION_FILE,
    VERSION_TMP_FILE,
)
from lanspread.core.manifest import MAX_FILES_PER_GAME, MAX_MANIFEST_ENCODED_SIZE, GameManifest
from lanspread.errors import StorageError
from lanspread.files.atomic import atomic_write_bytes, fsync_dir, make_dir_synced
from lanspread.files.entries import require_dir_or_absent
from lanspread.files.records import is_record_temp, load_game_record
from lanspread.platform.generation import file_generation

log = logging.getLogger(__name__)

OWNERSHIP_FORMAT_VERSION = 1

MiB = 1024 * 1024

# The journal's size bound, repeated here so this module does not import it: the
# largest manifest in base64 plus a bitmap and keys (see download/journal.py).
_JOURNAL_SIZE_BOUND = (MAX_MANIFEST_ENCODED_SIZE * 4) // 3 + 1 * MiB
# Every payload file and folder of the largest manifest, the transients, and room.
MAX_RECORDED_NAMES = 2 * MAX_FILES_PER_GAME + 16
# A record is about 120 bytes a name; anything larger is not one we wrote, so it is
# never read whole.
MAX_OWNERSHIP_FILE_SIZE = MAX_RECORDED_NAMES * 256 + 64 * 1024

TRANSIENT_BOUNDS = {
    VERSION_TMP_FILE: MAX_VERSION_FILE_SIZE,
    VERSION_DISCARDED_FILE: MAX_VERSION_FILE_SIZE,
    DOWNLOAD_JOURNAL_FILE: _JOURNAL_SIZE_BOUND,
    DOWNLOAD_JOURNAL_TMP_FILE: _JOURNAL_SIZE_BOUND,
}
"""The transient names a download writes, with the largest size each can have."""


Kind = Literal["file", "dir"]


class InTheWay(StorageError):
    """A name the download must create is held by something lanspread did not create."""


class OwnedName(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One name a download claimed, relative to the root (``/``-separated)."""

    path: Annotated[str, msgspec.Meta(max_length=4096)]
    kind: Kind
    max_size: int = 0
    """Largest size the file can have while it is ours; 0 for a folder."""
    dev: int | None = None
    ino: int | None = None
    """Identity once created; ``None`` while only claimed."""
    generation: int | None = None
    """The inode's generation where the platform keeps one
    (:func:`lanspread.platform.generation.file_generation`): a reused inode number
    gets another, so the player's file that took our freed number is told apart."""
    adopted: bool = False
    """The player's file that an update was asked to rewrite: written, never deleted."""

    @property
    def identified(self) -> bool:
        return self.ino is not None


class OwnershipRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    game_id: str
    root_created: bool
    """The download created the root folder itself (it may go once empty)."""
    names: Annotated[tuple[OwnedName, ...], msgspec.Meta(max_length=MAX_RECORDED_NAMES)]

    def get(self, path: str) -> OwnedName | None:
        for name in self.names:
            if name.path == path:
                return name
        return None


@dataclass(frozen=True, slots=True)
class SweepReport:
    removed: tuple[str, ...]
    """Names deleted (proven ours), sorted."""
    kept: tuple[str, ...]
    """Recorded names left because the thing on disk is no longer provably ours."""
    root_removed: bool


def record_path(root: Path) -> Path:
    return root / OWNERSHIP_FILE


def load_record(root: Path) -> OwnershipRecord | None:
    """The ownership record of ``root``, ``None`` when there is none.

    Raises :class:`InTheWay` when a file of that name exists but is not a record
    of this game (it is the player's: never trusted, never replaced) and
    :class:`StorageError` when it cannot be read.
    """
    return load_game_record(
        record_path(root),
        OwnershipRecord,
        limit=MAX_OWNERSHIP_FILE_SIZE,
        format_version=OWNERSHIP_FORMAT_VERSION,
        what="an ownership record",
        corrupt=InTheWay,
    )


def load_record_or_none(root: Path) -> OwnershipRecord | None:
    """Like :func:`load_record`, but a foreign record proves nothing: ``None``, logged."""
    try:
        return load_record(root)
    except InTheWay as exc:
        log.warning("%s; nothing in %s is deleted", exc, root)
        return None


def save_record(root: Path, record: OwnershipRecord) -> None:
    """Write ``record`` atomically and durably (temp file, fsync, rename, fsync of the root)."""
    temp = root / OWNERSHIP_TMP_FILE
    if os.path.lexists(temp) and not is_record_temp(
        temp, format_version=OWNERSHIP_FORMAT_VERSION, limit=MAX_OWNERSHIP_FILE_SIZE
    ):
        raise InTheWay(f"{temp} is not a file lanspread wrote; move it out of the game folder")
    atomic_write_bytes(record_path(root), msgspec.json.encode(record), temp=temp)


def claim_download(root: Path, manifest: GameManifest, *, adopt: bool) -> OwnershipRecord:
    """Claim every name a download of ``manifest`` into ``root`` creates; durable on return.

    Creates ``root`` when missing (recorded as created). A manifest path or
    transient name held by something the record does not prove ours raises
    :class:`InTheWay` naming it, before anything is created, unless ``adopt``
    (an update of a game ready here) lets the manifest's own file paths be
    rewritten. A player's folder on a manifest path is used as it is (never
    recorded, so never removed). Nothing is written into a root whose record is
    foreign.
    """
    return claim_files(root, ((file.path, file.size) for file in manifest.files), adopt=adopt)


def claim_files(root: Path, files: Iterable[tuple[str, int]], *, adopt: bool) -> OwnershipRecord:
    """:func:`claim_download` for ``files`` given as (path, largest size) pairs."""
    existed = require_dir_or_absent(root, error=InTheWay)
    record = load_record(root) if existed else None
    if record is None:
        record = OwnershipRecord(
            format=OWNERSHIP_FORMAT_VERSION,
            game_id=root.name,
            root_created=not existed,
            names=(),
        )
    wanted: dict[str, tuple[Kind, int]] = {}
    for path, size in files:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            wanted.setdefault("/".join(parts[:depth]), ("dir", 0))
        wanted[path] = ("file", size)
    for name, bound in TRANSIENT_BOUNDS.items():
        wanted[name] = ("file", bound)
    record = _drop_wrong_kinds(root, record, wanted)
    names = {name.path: name for name in record.names}
    problems: list[str] = []
    for path, (kind, size) in sorted(wanted.items()):
        held = names.get(path)
        mode = _lstat_mode(root, path) if existed else None
        if mode is None:
            # Free now: claimed afresh (an identity recorded for an earlier file is stale).
            names[path] = OwnedName(path=path, kind=kind, max_size=size)
        elif (
            path == VERSION_FILE
            and stat.S_ISREG(mode)
            and (adopt or (held is not None and is_ours(root, held)))
        ):
            # The sentinel the update replaces: parked before the new one is committed,
            # which is identified then. Until then no version.ini is ours.
            names[path] = OwnedName(path=path, kind="file", max_size=size)
        elif held is not None and held.kind == kind and _stat_if_within(root, held) is not None:
            names[path] = msgspec.structs.replace(held, max_size=max(held.max_size, size))
        elif kind == "dir" and stat.S_ISDIR(mode):
            continue  # the player's folder: used, never recorded, never removed
        elif adopt and kind == "file" and path not in TRANSIENT_BOUNDS and stat.S_ISREG(mode):
            info = os.lstat(root / path)
            names[path] = OwnedName(
                path=path,
                kind="file",
                max_size=max(size, info.st_size),
                dev=info.st_dev,
                ino=info.st_ino,
                generation=file_generation(root / path),
                adopted=True,
            )
        else:
            problems.append(path)
    if problems:
        shown = ", ".join(problems[:5]) + (
            f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise InTheWay(
            f"{root.name}: {shown} already in the game folder and not created by lanspread; "
            "move it out of the game folder to download"
        )
    claimed = msgspec.structs.replace(record, names=tuple(sorted(names.values(), key=_by_path)))
    if not existed:
        make_dir_synced(root)
    save_record(root, claimed)
    return claimed


def _drop_wrong_kinds(
    root: Path, record: OwnershipRecord, wanted: dict[str, tuple[Kind, int]]
) -> OwnershipRecord:
    """Delete our own entries of the wrong kind (a folder where a file now belongs, or
    the reverse), with what we recorded inside them; returns the record left."""
    wrong = {
        name.path
        for name in record.names
        if name.path in wanted and wanted[name.path][0] != name.kind and is_ours(root, name)
    }
    if not wrong:
        return record
    doomed = {
        name.path
        for name in record.names
        if name.path in wrong or any(name.path.startswith(f"{path}/") for path in wrong)
    }
    keep = [name.path for name in record.names if name.path not in doomed]
    sweep_owned(root, record, keep=keep, drop_record=False)
    reloaded = load_record(root)
    return reloaded if reloaded is not None else record


def identify(root: Path, record: OwnershipRecord) -> OwnershipRecord:
    """Record the identity of every claimed name that now exists; durable on return.

    Call once the download created its files and folders, before its first
    payload byte (and again if preparing them failed, to release the claims of
    names never made), and once the sentinel is committed. A claimed name that
    exists but is not within its bound is left unidentified; the sentinel is
    ours only once identified (it is created last, by the commit), so a
    ``version.ini`` the player puts in a downloading root is never deleted.
    """
    names = []
    changed = False
    for name in record.names:
        if not name.identified and name.path not in TRANSIENT_BOUNDS:
            info = _stat_if_within(root, name)
            if info is not None:
                name = msgspec.structs.replace(
                    name,
                    dev=info.st_dev,
                    ino=info.st_ino,
                    generation=file_generation(root / name.path),
                )
                changed = True
            elif name.path != VERSION_FILE and not os.path.lexists(root / name.path):
                changed = True  # never made (preparation failed): the claim is released
                continue
        names.append(name)
    return _saved(root, record, names) if changed else record


def identify_sentinel(root: Path, record: OwnershipRecord, written: Path) -> OwnershipRecord:
    """Record ``written`` (the sentinel's synced temp, not yet renamed) as ``version.ini``.

    A rename keeps the file's identity, so the ``version.ini`` the commit makes is
    provably ours from the instant it appears: a kill between the rename and any
    later bookkeeping still leaves a sentinel a sweep may delete. Durable on
    return. A record that does not claim the sentinel is returned unchanged.
    """
    info = os.lstat(written)
    names = []
    changed = False
    for name in record.names:
        if name.path == VERSION_FILE and stat.S_ISREG(info.st_mode):
            name = msgspec.structs.replace(
                name, dev=info.st_dev, ino=info.st_ino, generation=file_generation(written)
            )
            changed = True
        names.append(name)
    return _saved(root, record, names) if changed else record


def _saved(root: Path, record: OwnershipRecord, names: list[OwnedName]) -> OwnershipRecord:
    identified = msgspec.structs.replace(record, names=tuple(names))
    save_record(root, identified)
    return identified


def is_ours(root: Path, name: OwnedName) -> bool:
    """True when what sits at ``name.path`` is still provably what the download created."""
    if name.adopted or (name.path == VERSION_FILE and not name.identified):
        return False
    return _stat_if_within(root, name) is not None


def sweep_owned(
    root: Path,
    record: OwnershipRecord,
    *,
    keep: Iterable[str] = (),
    drop_record: bool = True,
) -> SweepReport:
    """Delete the recorded names of ``root`` that are still ours, but those in ``keep``.

    The sentinel first (durably), so a sweep cut short by a kill never leaves a
    root whose ``version.ini`` vouches for archives that are gone: such a root
    would be listed and served as downloaded. The next start finds a record
    without a sentinel and sweeps the rest. Then the other files, then folders
    deepest first and only when empty (``rmdir``).
    What is deleted leaves the record, which is rewritten (or, with
    ``drop_record`` and nothing left that the record must remember, deleted,
    and the root with it when the download created it and it is empty).
    Raises :class:`StorageError` when the disk refuses; the record still lists
    what is left, so the next sweep retries.
    """
    spared = set(keep)
    removed: list[str] = []
    kept: list[str] = []
    remaining: list[OwnedName] = []
    # The reverse of a download, which commits the sentinel last.
    files = sorted(
        (name for name in record.names if name.kind == "file"),
        key=lambda name: name.path != VERSION_FILE,
    )
    folders = sorted(
        (name for name in record.names if name.kind == "dir"),
        key=lambda name: name.path.count("/"),
        reverse=True,
    )
    for name in (*files, *folders):
        if name.path in spared:
            remaining.append(name)
            continue
        mode = _lstat_mode(root, name.path)
        if mode is None:
            continue  # already gone: nothing to prove any more
        if name.adopted and _stat_if_within(root, name) is not None:
            # The player's file an update may rewrite: remembered, never deleted.
            remaining.append(name)
            continue
        if not is_ours(root, name):
            kept.append(name.path)
            log.warning("%s: %s is no longer what lanspread created; left alone", root, name.path)
            continue
        if name.kind == "dir":
            if not _rmdir_if_empty(root / name.path):
                remaining.append(name)
                continue
        else:
            _unlink(root / name.path)
            if name.path == VERSION_FILE:
                fsync_dir(root)  # the root stops being a downloaded game before anything else goes
        removed.append(name.path)
    for folder in {(root / path).parent for path in removed}:
        if folder.exists():
            fsync_dir(folder)
    left = tuple(sorted(remaining, key=_by_path))
    root_removed = False
    if drop_record and not left:
        _unlink(record_path(root))
        fsync_dir(root)
        if record.root_created:
            root_removed = _rmdir_if_empty(root)
            if root_removed:
                fsync_dir(root.parent)
    elif left != record.names:
        save_record(root, msgspec.structs.replace(record, names=left))
    return SweepReport(
        removed=tuple(sorted(removed)), kept=tuple(sorted(kept)), root_removed=root_removed
    )


def owned_transient(root: Path, record: OwnershipRecord | None, name: str) -> bool:
    """True when the transient ``name`` exists in ``root`` and the record proves it ours."""
    if record is None:
        return False
    held = record.get(name)
    return held is not None and is_ours(root, held)


def _by_path(name: OwnedName) -> str:
    return name.path


def _stat_if_within(root: Path, name: OwnedName) -> os.stat_result | None:
    info = _lstat(root, name.path)
    if info is None:
        return None
    if name.kind == "dir":
        if not stat.S_ISDIR(info.st_mode):
            return None
    elif not stat.S_ISREG(info.st_mode) or info.st_size > name.max_size:
        return None
    if name.identified and (info.st_dev, info.st_ino) != (name.dev, name.ino):
        return None
    if name.generation is not None and file_generation(root / name.path) != name.generation:
        return None
    return info


def _lstat(root: Path, relative: str) -> os.stat_result | None:
    """``lstat`` of ``root/relative``, ``None`` when absent or reached through a link."""
    parts = relative.split("/")
    path = root
    for index, part in enumerate(parts):
        path = path / part
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot inspect {path}: {exc.strerror or exc}") from exc
        if index < len(parts) - 1 and not stat.S_ISDIR(info.st_mode):
            return None
    return info


def _lstat_mode(root: Path, relative: str) -> int | None:
    info = _lstat(root, relative)
    if info is None:
        # Something may still hold the name behind a link component: report it as held.
        return stat.S_IFLNK if os.path.lexists(root / relative) else None
    return info.st_mode


def _rmdir_if_empty(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in {errno.ENOTEMPTY, errno.EEXIST}:
            return False
        raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from exc
    return True


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from exc


__all__ = [
    "MAX_OWNERSHIP_FILE_SIZE",
    "OWNERSHIP_FORMAT_VERSION",
    "TRANSIENT_BOUNDS",
    "InTheWay",
    "Kind",
    "OwnedName",
    "OwnershipRecord",
    "SweepReport",
    "claim_download",
    "claim_files",
    "identify",
    "is_ours",
    "load_record",
    "load_record_or_none",
    "owned_transient",
    "record_path",
    "save_record",
    "sweep_owned",
]
