"""RAR sets, read and extracted by 7-Zip (:mod:`lanspread.install._sevenzip`).

libarchive reads zip, 7z and tar well, but not solid RAR 2.9-4, not RAR 1.5
and 2.0, nor RAR 5 hard links and file copies, and it does not check a stored
RAR member's CRC. 7-Zip decodes every RAR that WinRAR and ``rar`` write and
checks every CRC and BLAKE2 sum, so RAR sets (recognised by their signature)
come here; everything else stays with libarchive.

Theory of operation, per set:

1. **List.** 7-Zip's machine-readable listing gives every entry's name, kind,
   size, link target and flags. Old versions of a file (``rar -ver``: RAR 5's
   ``[VER]/N/name`` items, RAR 3's ``name;N``) are left out: the archive's
   newest version is the one installed. NTFS alternate streams (``rar -os``)
   are left out too: a game's files are their main streams. An encrypted entry, or headers 7-Zip
   cannot open without a password, refuse the set as password-protected.
   Every kept entry passes the extractor's checker (:mod:`entry_rules`) before
   anything is written, at plan time and again right before extraction.
2. **Extract.** 7-Zip writes the regular files and folders into the
   destination; it never writes a link: symlinks, hard links and RAR 5 file
   copies are excluded by name and created afterwards by this module from
   their checked targets, in archive order.
3. **Verify.** Every declared file must be a regular file of its declared size
   (7-Zip checked its CRC or BLAKE2 sum), and gets :func:`safe_mode`.

Volumes: 7-Zip finds a set's next volume by RAR's own names. ``STEM.partN.eti``
follows them already; the old naming renamed to ``.eti`` (``STEM.eti``,
``STEM.r00.eti``, ...) does not, so such a set is opened through aliases named
``set.rar``, ``set.r00``, ... (:mod:`lanspread.platform.tools`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lanspread.install import _sevenzip
from lanspread.install.archive_errors import (
    CorruptArchive,
    EncryptedArchive,
    ExtractionCancelled,
    ExtractionError,
    HostileArchive,
    disk_full,
    write_error,
)
from lanspread.install.entry_rules import EntryKind, Parts, UnsafeEntry, entry_parts, safe_mode
from lanspread.platform.tools import alias_folder_parent, create_alias

RAR_SIGNATURES = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")
"""RAR 1.5-4 and RAR 5 archive signatures (the start of every first volume)."""

_VERSIONS_FOLDER = "[VER]"
_UNIX_TYPES = {
    "-": None,
    "d": EntryKind.DIR,
    "l": EntryKind.SYMLINK,
    "c": "character device",
    "b": "block device",
    "p": "FIFO",
    "s": "socket",
}
_ALIAS_STEM = "set"
_OLD_VOLUMES_PER_LETTER = 100


@dataclass(frozen=True)
class Checked:
    """An entry that passed the rules."""

    parts: Parts
    kind: EntryKind
    size: int
    link_target: str


Description = tuple[EntryKind, int, str]
"""An entry's kind, size in bytes (regular files) and link target (links)."""


class Checker(Protocol):
    """The extractor's entry checker, shared with the libarchive path."""

    def check_described(
        self, archive: str, name: str, describe: Callable[[], Description]
    ) -> Checked | None: ...


@dataclass
class _Entry:
    """A kept entry of the listing, checked, with how it is materialised."""

    listed_name: str
    checked: Checked
    copy_of: Parts = ()
    """For a RAR 5 file copy: the earlier file whose bytes it repeats."""


@dataclass
class SetListing:
    """What one RAR set holds, as checked."""

    entries: list[_Entry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Listed names 7-Zip must not write: old versions and links."""

    @property
    def total_bytes(self) -> int:
        return sum(
            entry.checked.size for entry in self.entries if entry.checked.kind is EntryKind.FILE
        )


def is_rar(first_volume: Path) -> bool:
    """True if the file starts with a RAR signature."""
    try:
        with open(first_volume, "rb") as file:
            head = file.read(8)
    except OSError:
        return False
    return head.startswith(RAR_SIGNATURES)


@contextlib.contextmanager
def opened(volumes: Sequence[Path]) -> Iterator[Path]:
    """The path 7-Zip opens the set by, with aliases for an old-naming set; removed after."""
    if len(volumes) == 1 or (".part" in volumes[0].name.lower() and _is_part_set(volumes)):
        yield volumes[0]
        return
    archive = volumes[0].name
    try:
        workspace = Path(
            tempfile.mkdtemp(
                prefix=".lanspread-volumes-", dir=alias_folder_parent(volumes[0].parent)
            )
        )
    except OSError as exc:
        raise ExtractionError(
            f"{archive}: cannot prepare the volumes: {exc.strerror or exc}"
        ) from exc
    try:
        for position, volume in enumerate(volumes):
            try:
                create_alias(volume, workspace / _old_alias(position))
            except OSError as exc:
                raise ExtractionError(
                    f"{archive}: cannot prepare volume {volume.name}: {exc.strerror or exc}"
                ) from exc
        yield workspace / _old_alias(0)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _is_part_set(volumes: Sequence[Path]) -> bool:
    return all(".part" in volume.name.lower() for volume in volumes)


def _old_alias(position: int) -> str:
    if position == 0:
        return f"{_ALIAS_STEM}.rar"
    index = position - 1
    letter = chr(ord("r") + index // _OLD_VOLUMES_PER_LETTER)
    return f"{_ALIAS_STEM}.{letter}{index % _OLD_VOLUMES_PER_LETTER:02d}"


def list_set(archive: str, opened_path: Path, checker: Checker) -> SetListing:
    """List a set and check every kept entry; nothing is written."""
    try:
        listed = _sevenzip.list_entries(opened_path)
    except _sevenzip.SevenZipFailed as exc:
        raise _failure(archive, exc) from exc
    except _sevenzip.SevenZipMissing as exc:
        raise ExtractionError(f"{archive}: cannot read RAR archives: {exc}") from exc
    names = {item.path for item in listed}
    result = SetListing()
    for item in listed:
        name = item.path
        if item.get("Encrypted") == "+":
            raise EncryptedArchive(
                f"{archive}: the archive is password-protected (entry {name!r});"
                " lanspread cannot install a game that needs a password"
            )
        if _is_old_version(item, names) or item.get("Alternate Stream") == "+":
            result.skipped.append(name)
            continue
        description = _Describer(archive, opened_path, item)
        checked = checker.check_described(archive, name, description.describe)
        if checked is None:
            continue
        entry = _Entry(name, checked, description.copy_source())
        if checked.kind in (EntryKind.SYMLINK, EntryKind.HARDLINK) or entry.copy_of:
            result.skipped.append(name)
        elif checked.kind is EntryKind.FILE and name in result.skipped:
            raise HostileArchive(f"{archive}: refused entry {name!r}: both a link and a file")
        result.entries.append(entry)
    return result


def _is_old_version(item: _sevenzip.Listed, names: set[str]) -> bool:
    if "Version" in item.get("Characteristics").split():
        return True
    base, separator, number = item.path.rpartition(";")
    return bool(separator) and number.isdigit() and base in names


class _Describer:
    """Kind, size and link target of one listed entry, from 7-Zip's fields."""

    def __init__(self, archive: str, opened_path: Path, item: _sevenzip.Listed) -> None:
        self.archive = archive
        self.opened_path = opened_path
        self.item = item

    def describe(self) -> Description:
        """Kind, size and link target; a file copy's source must be a safe name too."""
        item = self.item
        kind = self._kind()
        if kind is EntryKind.SYMLINK:
            return kind, 0, self._symlink_target()
        if kind is EntryKind.HARDLINK:
            return kind, 0, item.get("Hard Link")
        size = _size(item.get("Size"))
        self.copy_source()
        return kind, size, ""

    def copy_source(self) -> Parts:
        """For a RAR 5 file copy, the earlier file whose bytes it repeats; else ``()``."""
        copy_of = self.item.get("Copy Link")
        if not copy_of or self._kind() is not EntryKind.FILE:
            return ()
        try:
            return entry_parts(copy_of)
        except UnsafeEntry as exc:
            raise UnsafeEntry(f"file copy source {copy_of!r}: {exc}") from exc

    def _kind(self) -> EntryKind:
        item = self.item
        windows, _, unix = item.get("Attributes").strip().partition(" ")
        if windows.startswith(("-", "d", "l", "c", "b", "p", "s")) and not unix:
            windows, unix = "", windows
        unix_type = _UNIX_TYPES.get(unix[:1]) if unix else None
        if isinstance(unix_type, str):
            raise UnsafeEntry(f"{unix_type} not allowed")
        if item.get("Symbolic Link") or unix_type is EntryKind.SYMLINK or "L" in windows:
            return EntryKind.SYMLINK
        if item.get("Hard Link"):
            return EntryKind.HARDLINK
        if item.get("Folder") == "+" or unix_type is EntryKind.DIR or "D" in windows:
            return EntryKind.DIR
        return EntryKind.FILE

    def _symlink_target(self) -> str:
        target = self.item.get("Symbolic Link")
        if target:
            return target
        try:
            stored = _sevenzip.read_member(self.opened_path, self.item.path)
        except _sevenzip.SevenZipFailed as exc:
            raise CorruptArchive(
                f"{self.archive}: cannot read archive at entry {self.item.path!r}:"
                " the symlink's target is unreadable"
            ) from exc
        try:
            return stored.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeEntry("link target is not valid UTF-8") from exc


def _size(text: str) -> int:
    if not text.isdigit():
        raise UnsafeEntry("regular file without a size in its header")
    return int(text)


def extract_set(
    archive: str,
    opened_path: Path,
    listing: SetListing,
    root: Path,
    on_bytes: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> None:
    """Extract a listed set into ``root`` (see the module docstring)."""
    total = listing.total_bytes
    reported = 0

    def on_percent(percent: int) -> None:
        nonlocal reported
        done = total * percent // 100
        if done > reported:
            on_bytes(done - reported)
            reported = done

    with _exclusions(archive, listing.skipped) as exclude_list:
        try:
            _sevenzip.extract(opened_path, root, exclude_list, on_percent, should_stop)
        except _sevenzip.SevenZipStopped as exc:
            raise ExtractionCancelled("extraction was cancelled") from exc
        except _sevenzip.SevenZipFailed as exc:
            raise _failure(archive, exc, root) from exc
        except _sevenzip.SevenZipMissing as exc:
            raise ExtractionError(f"{archive}: cannot read RAR archives: {exc}") from exc
    final = {entry.checked.parts: index for index, entry in enumerate(listing.entries)}
    for index, entry in enumerate(listing.entries):
        if final[entry.checked.parts] == index:  # a name listed twice holds its last entry
            _materialise(archive, root, entry)
    on_percent(100)


@contextlib.contextmanager
def _exclusions(archive: str, names: list[str]) -> Iterator[Path | None]:
    if not names:
        yield None
        return
    try:
        handle, name = tempfile.mkstemp(prefix="lanspread-exclude-", suffix=".txt")
    except OSError as exc:
        raise ExtractionError(
            f"{archive}: cannot prepare extraction: {exc.strerror or exc}"
        ) from exc
    path = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.writelines(f"{name}\n" for name in names)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _materialise(archive: str, root: Path, entry: _Entry) -> None:
    """Create a link or copy, or verify what 7-Zip wrote; give it a safe mode."""
    checked = entry.checked
    path = root.joinpath(*checked.parts)
    name = "/".join(checked.parts)
    try:
        if checked.kind is EntryKind.SYMLINK:
            target = _native_target(checked.link_target)
            # Windows makes file and folder symlinks differently; the target exists by now.
            is_dir = (path.parent / target).is_dir()
            _replace_with(path, lambda: path.symlink_to(target, target_is_directory=is_dir))
            return
        if checked.kind is EntryKind.HARDLINK:
            source = root.joinpath(*entry_parts(checked.link_target))
            _replace_with(path, lambda: os.link(source, path))
            return
        if entry.copy_of:
            source = root.joinpath(*entry.copy_of)
            _replace_with(path, lambda: shutil.copyfile(source, path, follow_symlinks=False))
        info = path.lstat()
        expected_type = stat.S_IFDIR if checked.kind is EntryKind.DIR else stat.S_IFREG
        if stat.S_IFMT(info.st_mode) != expected_type:
            raise CorruptArchive(f"{archive}: entry {name!r} was not extracted as declared")
        if checked.kind is EntryKind.FILE and info.st_size != checked.size:
            raise CorruptArchive(
                f"{archive}: entry {name!r} holds {info.st_size} bytes,"
                f" its header declares {checked.size}"
            )
        path.chmod(safe_mode(stat.S_IMODE(info.st_mode), checked.kind))
    except FileNotFoundError as exc:
        raise CorruptArchive(f"{archive}: entry {name!r} is missing after extraction") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise write_error(archive, root, name, reason, full=exc.errno == errno.ENOSPC) from exc


def _replace_with(path: Path, create: Callable[[], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_file():
        path.unlink()
    create()


def _native_target(target: str) -> str:
    return target.replace("\\", "/")


_CORRUPTION = (
    ("CRC Failed", "checksum mismatch"),
    ("Checksum error", "checksum mismatch"),
    ("Data Error", "damaged or truncated data"),
    ("Unexpected end of archive", "the archive is truncated"),
    ("Unavailable data", "the archive is truncated"),
    ("Headers Error", "damaged headers"),
    ("Can not open the file as archive", "not a readable archive"),
    ("Cannot open the file as archive", "not a readable archive"),
    ("Is not archive", "not a readable archive"),
)


def _failure(
    archive: str, exc: _sevenzip.SevenZipFailed, root: Path | None = None
) -> ExtractionError:
    """Our own words for what 7-Zip reported."""
    text = "\n".join(exc.lines)
    if "Wrong password" in text or "Cannot open encrypted archive" in text:
        return EncryptedArchive(
            f"{archive}: the archive is password-protected;"
            " lanspread cannot install a game that needs a password"
        )
    if root is not None and ("No space left" in text or "not enough space" in text):
        return disk_full(root, f"extracting {archive}")
    for line in exc.lines:
        if line.startswith("Missing volume"):
            return CorruptArchive(f"{archive}: cannot read archive: a volume of the set is missing")
    for line in exc.lines:
        for marker, reason in _CORRUPTION:
            if marker in line:
                entry = _entry_of(line, marker) or exc.current
                where = f" at entry {entry!r}" if entry else ""
                return CorruptArchive(f"{archive}: cannot read archive{where}: {reason}")
    where = f" at entry {exc.current!r}" if exc.current else ""
    return CorruptArchive(
        f"{archive}: cannot read archive{where}: 7-Zip failed (exit code {exc.returncode})"
    )


def _entry_of(line: str, marker: str) -> str:
    """``CRC Failed : name`` names its entry; archive-level lines do not."""
    _, separator, rest = line.partition(marker + " : ")
    if not separator:
        return ""
    return rest.strip()
