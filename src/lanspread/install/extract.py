"""Extract a game root's ``.eti`` archives into the install staging folder, safely.

Theory of operation:

1. :func:`plan_extraction` lists the ``.eti`` files at the game root (regular
   files only, never a symlink), groups multi-volume sets
   (:mod:`lanspread.install.volumes`) and reads every header of every set
   without extracting (RAR sets through 7-Zip, see
   :mod:`lanspread.install._rar7z`; zip, 7z and tar through libarchive). Each
   entry is checked against
   :mod:`lanspread.install.entry_rules`; a hostile or unreadable archive fails
   here, before anything is written. The plan carries the uncompressed total
   for progress and for the space check.
2. :func:`extract` checks free space, then extracts each RAR set with 7-Zip
   (its entries listed and checked again first) and streams each other set
   through libarchive (one multi-file open per set: the format is detected from the
   content) into ``dest``. Every entry is checked again as it is read (the
   files may have changed since the plan), its path is rebuilt from its
   checked components under ``dest``, its mode is made safe, and its data is
   copied block by block from the reader to libarchive's disk writer, never
   whole into memory. An entry that yields more bytes than its header declared
   is corrupt, so the space check's bound holds.
3. On any failure or cancellation, everything ``extract`` created in ``dest``
   is removed before the error propagates; what was in ``dest`` before (such as
   the transaction's ownership marker) is left as it was and can never be
   overwritten by an entry.

Blocking: the runtime calls :func:`extract` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from ctypes import byref, c_int64, c_size_t, c_void_p
from dataclasses import dataclass
from pathlib import Path

from lanspread.files.atomic import free_bytes
from lanspread.install import _libarchive, _rar7z
from lanspread.install._libarchive import ArchiveEntry, ArchiveError, ffi
from lanspread.install._rar7z import Checked as _Checked
from lanspread.install._rar7z import Description
from lanspread.install.archive_errors import (
    CorruptArchive,
    EncryptedArchive,
    ExtractionCancelled,
    ExtractionError,
    HostileArchive,
    NotEnoughSpace,
    write_error,
)
from lanspread.install.entry_rules import (
    EntryKind,
    Namespace,
    Parts,
    UnsafeEntry,
    entry_parts,
    link_target_parts,
    safe_mode,
)
from lanspread.install.volumes import group_volumes, is_archive_name

__all__ = [
    "CorruptArchive",
    "EncryptedArchive",
    "ExtractionCancelled",
    "ExtractionError",
    "ExtractionPlan",
    "HostileArchive",
    "NotEnoughSpace",
    "extract",
    "plan_extraction",
]

READ_BLOCK_SIZE = 1024 * 1024
"""Bytes libarchive reads from an archive file per call, and so the largest block
copied per Python iteration. Measured on 512 MiB of stored archives: 16 KiB
blocks take 1.6x as long as 1 MiB blocks, 64 KiB blocks 1.3x; 1 MiB is on par
with bsdtar while keeping memory flat."""

PROGRESS_STEP_BYTES = 8 * 1024 * 1024
"""Bytes extracted between two progress callbacks (and ``should_stop`` polls).
With 1 MiB blocks even a callback per block measured no slower; the step keeps
the event rate a UI can use (about a hundred a second at disk speed)."""

SPACE_SAFETY_MARGIN_BYTES = 64 * 1024 * 1024
"""Room left free on top of the game's size: folder metadata, the intent log and
whatever else writes to the disk while we extract."""

ENTRY_SPACE_ALLOWANCE_BYTES = 4096
"""Space one entry may occupy beyond its bytes: a filesystem block per file or folder."""

MAX_ENTRIES = 1_000_000
"""Entries one game may hold. Real games hold tens of thousands of files; the
bound caps the memory the link checks keep (one path per entry)."""

ProgressCallback = Callable[[int, int], None]
StopCheck = Callable[[], bool]

_TYPE_NAMES = {
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
}


@dataclass(frozen=True)
class ExtractionPlan:
    """What :func:`extract` will do, learned from the archives' headers."""

    archive_sets: tuple[tuple[Path, ...], ...]
    """Each set's volumes in order; a single archive is a set of one."""
    total_bytes: int
    """Uncompressed bytes of every regular file, from the headers."""
    entry_count: int
    """Entries of every kind across all sets."""

    @property
    def space_needed(self) -> int:
        """Free bytes the destination's disk must have before extraction starts."""
        return (
            self.total_bytes
            + self.entry_count * ENTRY_SPACE_ALLOWANCE_BYTES
            + SPACE_SAFETY_MARGIN_BYTES
        )


def plan_extraction(game_root: Path) -> ExtractionPlan:
    """Find and group the root's ``.eti`` archives and check every header.

    Raises :class:`HostileArchive` or :class:`CorruptArchive` naming the
    archive and entry, or :class:`ExtractionError` if the root cannot be listed.
    """
    archive_sets = tuple(
        tuple(game_root / name for name in volumes)
        for volumes in group_volumes(_root_files(game_root))
    )
    checker = _EntryChecker()
    total = 0
    for volumes in archive_sets:
        if _rar7z.is_rar(volumes[0]):
            with _rar7z.opened(volumes) as opened:
                total += _rar7z.list_set(volumes[0].name, opened, checker).total_bytes
            continue
        with _reading(volumes) as (reader, entry):
            for checked in reader.entries(entry, checker):
                total += checked.size
    checker.check_symlinks()
    return ExtractionPlan(archive_sets, total, checker.count)


def _root_files(game_root: Path) -> list[str]:
    try:
        with os.scandir(game_root) as children:
            return [
                child.name
                for child in children
                if is_archive_name(child.name) and child.is_file(follow_symlinks=False)
            ]
    except OSError as exc:
        raise ExtractionError(f"cannot list {game_root}: {exc.strerror or exc}") from exc


def extract(
    plan: ExtractionPlan,
    dest: Path,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> None:
    """Extract every set of ``plan`` into ``dest`` (created if missing). Blocking.

    ``progress(done, total)`` is called every :data:`PROGRESS_STEP_BYTES` and
    once at the end; ``should_stop()`` is polled at every entry and progress
    step, and a True answer raises :class:`ExtractionCancelled`. On any error
    what was extracted is removed again.
    """
    root = _prepare_dest(dest)
    _check_space(root, plan.space_needed)
    before = {child.name for child in root.iterdir()}
    meter = _Meter(plan.total_bytes, progress, should_stop)
    checker = _EntryChecker(existing=frozenset(before), planned_bytes=plan.total_bytes)
    try:
        for volumes in plan.archive_sets:
            if _rar7z.is_rar(volumes[0]):
                _extract_rar(volumes, root, checker, meter)
                checker.check_written(volumes[0].name, root)
                continue
            with _reading(volumes) as (reader, entry), _writing(volumes, root) as writer:
                for checked in reader.entries(entry, checker, meter.check_stop):
                    writer.write(reader, entry, checked, meter)
        checker.check_symlinks()
        meter.finish()
    except BaseException:
        _remove_new_children(root, before)
        raise


def _extract_rar(
    volumes: Sequence[Path], root: Path, checker: _EntryChecker, meter: _Meter
) -> None:
    archive = volumes[0].name
    with _rar7z.opened(volumes) as opened:
        listing = _rar7z.list_set(archive, opened, checker)
        meter.check_stop()
        _rar7z.extract_set(archive, opened, listing, root, meter.advance, meter.should_stop)


def _prepare_dest(dest: Path) -> Path:
    try:
        dest.mkdir(exist_ok=True)
        # The disk writer refuses symlinks on the way, so hand it the real path.
        return dest.resolve(strict=True)
    except OSError as exc:
        raise ExtractionError(f"cannot create {dest}: {exc.strerror or exc}") from exc


def _check_space(root: Path, needed: int) -> None:
    available = free_bytes(root, error=ExtractionError)
    if available < needed:
        raise NotEnoughSpace(
            f"not enough free space in {root}: needed {needed} bytes, available {available} bytes",
            needed=needed,
            available=available,
        )


def _remove_new_children(root: Path, before: set[str]) -> None:
    """Best effort: the caller deletes the staging folder anyway; the first error wins."""
    with contextlib.suppress(OSError):
        for child in root.iterdir():
            if child.name in before:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    child.unlink()


class _Meter:
    """Counts extracted bytes; reports and polls for a stop every step."""

    def __init__(
        self, total: int, progress: ProgressCallback | None, should_stop: StopCheck | None
    ) -> None:
        self.total = total
        self.done = 0
        self._next_report = PROGRESS_STEP_BYTES
        self._progress = progress
        self._should_stop = should_stop

    def advance(self, count: int) -> None:
        self.done += count
        if self.done >= self._next_report:
            self._next_report = self.done + PROGRESS_STEP_BYTES
            self.check_stop()
            if self._progress is not None:
                self._progress(self.done, self.total)

    def should_stop(self) -> bool:
        return self._should_stop is not None and self._should_stop()

    def check_stop(self) -> None:
        if self.should_stop():
            raise ExtractionCancelled("extraction was cancelled")

    def finish(self) -> None:
        if self._progress is not None:
            self._progress(self.done, self.total)


class _EntryChecker:
    """Applies the entry rules across every set of one game."""

    def __init__(
        self, existing: frozenset[str] = frozenset(), planned_bytes: int | None = None
    ) -> None:
        self.count = 0
        self.declared = 0
        self._existing = existing
        self._planned_bytes = planned_bytes
        self._namespace = Namespace()
        self._origin: dict[Parts, str] = {}

    def check(self, archive: str, entry: ArchiveEntry) -> _Checked | None:
        """The checked entry, or None for an entry naming the destination folder itself."""
        name = entry.pathname
        if not isinstance(name, str):
            raise HostileArchive(f"{archive}: refused entry {name!r}: name is not valid UTF-8")
        return self.check_described(archive, name, lambda: _describe(entry))

    def check_described(
        self, archive: str, name: str, describe: Callable[[], Description]
    ) -> _Checked | None:
        """Like :meth:`check`, for an entry whose kind, size and target ``describe`` gives."""
        self.count += 1
        if self.count > MAX_ENTRIES:
            raise HostileArchive(f"{archive}: more than {MAX_ENTRIES} entries")
        try:
            checked = self._check(name, describe)
        except UnsafeEntry as exc:
            raise HostileArchive(f"{archive}: refused entry {name!r}: {exc}") from exc
        if checked is not None:
            self.declared += checked.size
            if self._planned_bytes is not None and self.declared > self._planned_bytes:
                raise ExtractionError(f"{archive}: the archives changed since they were planned")
            if checked.kind is EntryKind.SYMLINK:
                self._origin[checked.parts] = archive
        return checked

    def _check(self, name: str, describe: Callable[[], Description]) -> _Checked | None:
        kind, size, link_target = describe()
        parts = entry_parts(name)
        if not parts:
            if kind is EntryKind.DIR:
                return None
            raise UnsafeEntry("names the destination folder itself")
        if parts[0] in self._existing:
            raise UnsafeEntry(f"would overwrite {parts[0]!r}, which was there before extraction")
        self._namespace.add(parts, kind, link_target)
        return _Checked(parts, kind, size, link_target)

    def check_written(self, archive: str, root: Path) -> None:
        """Refuse anything under ``root`` that no checked entry declared (7-Zip wrote it)."""
        for folder, dirs, files in os.walk(root):
            base = Path(folder).relative_to(root).parts
            for name in (*dirs, *files):
                parts = (*base, name)
                if parts[0] in self._existing:
                    continue
                if parts not in self._namespace.kinds:
                    shown = "/".join(parts)
                    raise CorruptArchive(
                        f"{archive}: 7-Zip wrote {shown!r}, which its listing did not show"
                    )
            if not base:
                dirs[:] = [name for name in dirs if name not in self._existing]

    def check_symlinks(self) -> None:
        try:
            self._namespace.check_symlinks()
        except UnsafeEntry as exc:
            archive = self._origin.get(exc.entry, "archive")
            raise HostileArchive(f"{archive}: refused {exc}") from exc


def _describe(entry: ArchiveEntry) -> Description:
    kind = _kind_of(entry)
    link_target = _link_target(entry, kind)
    size = 0
    if kind is EntryKind.FILE:
        declared = entry.size
        if declared is None or declared < 0:
            raise UnsafeEntry("regular file without a size in its header")
        size = int(declared)
    return kind, size, link_target


def _kind_of(entry: ArchiveEntry) -> EntryKind:
    if ffi.entry_hardlink(entry._entry_p) is not None:
        return EntryKind.HARDLINK
    file_type = stat.S_IFMT(entry.filetype)
    if file_type == stat.S_IFREG:
        return EntryKind.FILE
    if file_type == stat.S_IFDIR:
        return EntryKind.DIR
    if file_type == stat.S_IFLNK:
        return EntryKind.SYMLINK
    raise UnsafeEntry(f"{_TYPE_NAMES.get(file_type, f'file type {file_type:#o}')} not allowed")


def _link_target(entry: ArchiveEntry, kind: EntryKind) -> str:
    if kind not in (EntryKind.SYMLINK, EntryKind.HARDLINK):
        return ""
    target = entry.linkpath
    if not isinstance(target, str):
        raise UnsafeEntry("link target is not valid UTF-8")
    return target


class _Reader:
    """One open archive set, translating libarchive's read errors."""

    def __init__(self, archive: str, archive_p: int) -> None:
        self.archive = archive
        self.archive_p = archive_p
        self.current = ""

    def entries(
        self,
        entry: ArchiveEntry,
        checker: _EntryChecker,
        before_each: Callable[[], None] | None = None,
    ) -> Iterator[_Checked]:
        """The checked entries of the set; ``entry`` holds the current header."""
        while True:
            if before_each is not None:
                before_each()
            with self.translating():
                status = _libarchive.check(
                    self.archive_p, _libarchive.read_next_header2(self.archive_p, entry._entry_p)
                )
            if status == ffi.ARCHIVE_EOF:
                return
            name = entry.pathname
            self.current = name if isinstance(name, str) else ""
            checked = checker.check(self.archive, entry)
            if checked is not None:
                yield checked

    @contextlib.contextmanager
    def translating(self) -> Iterator[None]:
        try:
            yield
        except ArchiveError as exc:
            where = f" at entry {self.current!r}" if self.current else ""
            raise CorruptArchive(
                f"{self.archive}: cannot read archive{where}: {_libarchive.error_message(exc)}"
            ) from exc


@contextlib.contextmanager
def _reading(volumes: Sequence[Path]) -> Iterator[tuple[_Reader, ArchiveEntry]]:
    archive = volumes[0].name
    try:
        with _libarchive.open_volumes(volumes, READ_BLOCK_SIZE) as archive_p:
            yield _Reader(archive, archive_p), ArchiveEntry(archive_p)
    except ArchiveError as exc:
        raise CorruptArchive(
            f"{archive}: cannot read archive: {_libarchive.error_message(exc)}"
        ) from exc


class _Writer:
    """libarchive's disk writer, fed entries whose paths we rebuilt under the root."""

    def __init__(self, archive: str, root: Path, writer_p: int) -> None:
        self.archive = archive
        self.root = root
        self.writer_p = writer_p

    def write(self, reader: _Reader, entry: ArchiveEntry, checked: _Checked, meter: _Meter) -> None:
        self._rewrite(entry, checked)
        check = _libarchive.check
        with self._translating(checked):
            check(self.writer_p, _libarchive.write_header(self.writer_p, entry._entry_p))
        if checked.kind is EntryKind.FILE and checked.size > 0:
            self._copy_data(reader, checked, meter)
        with self._translating(checked):
            check(self.writer_p, _libarchive.write_finish_entry(self.writer_p))

    def _rewrite(self, entry: ArchiveEntry, checked: _Checked) -> None:
        entry.pathname = str(self.root.joinpath(*checked.parts))
        if checked.kind is EntryKind.SYMLINK:
            entry.linkpath = "/".join(link_target_parts(checked.link_target)) or "."
            return
        if checked.kind is EntryKind.HARDLINK:
            entry.linkpath = str(self.root.joinpath(*entry_parts(checked.link_target)))
            entry.size = 0
        entry.perm = safe_mode(entry.perm, checked.kind)

    def _copy_data(self, reader: _Reader, checked: _Checked, meter: _Meter) -> None:
        buff, size, offset = c_void_p(), c_size_t(), c_int64()
        buff_p, size_p, offset_p = byref(buff), byref(size), byref(offset)
        read_block, write_block = _libarchive.read_data_block, _libarchive.write_data_block
        read_p, writer_p = reader.archive_p, self.writer_p
        eof, ok = ffi.ARCHIVE_EOF, ffi.ARCHIVE_OK
        while True:
            status = read_block(read_p, buff_p, size_p, offset_p)
            if status == eof:
                return
            if status < ok:
                with reader.translating():
                    _libarchive.check(read_p, status)
            if offset.value + size.value > checked.size:
                raise CorruptArchive(
                    f"{self.archive}: entry {'/'.join(checked.parts)!r} holds more bytes"
                    f" than its header declares ({checked.size})"
                )
            status = write_block(writer_p, buff, size, offset)
            if status < ok:
                with self._translating(checked):
                    _libarchive.check(writer_p, status)
            meter.advance(size.value)

    @contextlib.contextmanager
    def _translating(self, checked: _Checked) -> Iterator[None]:
        try:
            yield
        except ArchiveError as exc:
            name = "/".join(checked.parts)
            message = _libarchive.error_message(exc)
            raise write_error(
                self.archive, self.root, name, message, full=exc.errno == errno.ENOSPC
            ) from exc


@contextlib.contextmanager
def _writing(volumes: Sequence[Path], root: Path) -> Iterator[_Writer]:
    archive = volumes[0].name
    try:
        with _libarchive.disk_writer() as writer_p:
            yield _Writer(archive, root, writer_p)
    except ArchiveError as exc:
        # Closing the writer applies folder modes and times; that can fail too.
        raise ExtractionError(
            f"{archive}: cannot finish writing: {_libarchive.error_message(exc)}"
        ) from exc
