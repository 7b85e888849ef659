"""The library scanner: what each catalog game's root holds, cheaply when nothing changed.

Blocking code; the runtime calls it from worker threads.

Theory of operation
-------------------
Each game root's last scan is stored in the :class:`~lanspread.storage.index.LibraryIndex`
as a :class:`Fingerprint` plus the summary computed from the same observation.

* **warm path** (nothing changed): the stored summary is reused after proving the
  root level is as it was: the root folder's own mtime is unchanged (so no entry
  was created, removed or renamed) and every payload entry still has its kind,
  size and mtime (so none was rewritten in place). That is one ``open``, one
  ``fstat`` and one ``fstatat`` per payload entry, and no listing. Where folders
  cannot be opened as descriptors (Windows), the root is listed instead, which
  there yields sizes and mtimes without extra calls.
* **cold path** (no entry, or anything differs): the root is listed, ``version.ini``
  is read (bounded by ``MAX_VERSION_FILE_SIZE``) and nested payload folders are
  walked to size the payload. A listing that turns out identical to the stored
  one still reuses the summary.

The warm path proves the root level only: a change deep inside a nested payload
folder that leaves the folder's own entry unchanged is picked up by the next cold
scan of that game (the watcher's rescan, or any root-level change).

Coarse timestamps. Mtimes move in ticks (a kernel tick on ext4, 2 s on FAT), so a
change in the same tick as our observation can leave an mtime unchanged. As git
does for its index, an observation made while the mtime was within
``COARSE_MTIME_WINDOW_NS`` of the scan clock is stored as *unsettled* and not
trusted next time: an unsettled root is listed again, and an unsettled
``version.ini`` is read again and its bytes compared (its contents decide the
version, so a same-size rewrite in the same tick must still be noticed). Once an
observation is made after the window, any later change must move the mtime past
the remembered one. This keeps the warm path free of file reads without losing
rewrites; the cost is one re-read for a game changed in the last two seconds.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from lanspread.core.catalog import Catalog
from lanspread.core.gameroot import (
    INSTALL_RECORD_FILE,
    LOCAL_DIR,
    RESERVED_NAMES,
    EntryKind,
    RootEntry,
    RootState,
    classify_root,
)
from lanspread.core.install_record import (
    INSTALL_RECORD_FORMAT,
    MAX_INSTALL_RECORD_SIZE,
    RecordHeader,
)
from lanspread.core.library import Availability, GameSummary
from lanspread.errors import StorageError
from lanspread.files.atomic import NotARegularFile, read_regular_bounded
from lanspread.files.version_ini import (
    SentinelPrint,
    read_sentinel,
    settled,
    version_from_sentinel,
)
from lanspread.platform import fileio
from lanspread.storage.index import (
    EntryPrint,
    Fingerprint,
    IndexEntry,
    LibraryIndex,
    RecordPrint,
)

__all__ = [
    "Fingerprint",
    "LibraryScanner",
    "RootScan",
    "payload_size",
    "read_record_header",
    "read_root",
    "root_unchanged",
    "summarize",
]

log = logging.getLogger(__name__)

_USE_DIR_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
_DIR_FLAGS = os.O_RDONLY | fileio.O_DIRECTORY | fileio.O_NOFOLLOW | fileio.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class RootScan:
    """One listing of a game root."""

    payload: tuple[EntryPrint, ...]
    """Root-level payload entries (``version.ini`` included), sorted by name."""
    local_is_dir: bool
    mtime_ns: int
    """The root folder's own mtime, read before the listing."""
    record: RecordPrint | None = None
    """The install record, when it is a regular file."""

    @property
    def state(self) -> RootState:
        entries = [RootEntry(e.name, e.kind, e.size, e.mtime_ns) for e in self.payload]
        if self.local_is_dir:
            entries.append(RootEntry(LOCAL_DIR, EntryKind.DIR, 0, 0))
        return classify_root(entries)

    def matches(self, fingerprint: Fingerprint) -> bool:
        """True when the payload and ``local`` look exactly as when ``fingerprint`` was taken."""
        return (
            self.local_is_dir == fingerprint.local_is_dir
            and self.payload == fingerprint.entries
            and self.record == fingerprint.record
        )


def read_root(game_dir: Path, game_id: str) -> RootScan | None:
    """List ``<game_dir>/<game_id>``; ``None`` when it is missing, not a folder or a symlink.

    A symlinked root is ignored: serving and cleanup must never leave the game
    directory. Reserved names are skipped without a syscall.
    """
    root = game_dir / game_id
    payload: list[EntryPrint] = []
    local_is_dir = False
    record: RecordPrint | None = None
    try:
        with _listing(root) as (mtime_ns, entries):
            for entry in entries:
                name = entry.name
                if name in RESERVED_NAMES:
                    local_is_dir = local_is_dir or (
                        name == LOCAL_DIR and entry.is_dir(follow_symlinks=False)
                    )
                    if name == INSTALL_RECORD_FILE:
                        record = _record_print(entry)
                    continue
                with contextlib.suppress(FileNotFoundError):
                    info = entry.stat(follow_symlinks=False)
                    payload.append(
                        EntryPrint(name, _kind(info.st_mode), info.st_size, info.st_mtime_ns)
                    )
    except _NotARoot:
        return None
    except OSError as exc:
        log.warning("game root %s cannot be listed, treated as absent: %s", root, exc)
        return None
    payload.sort(key=lambda entry: entry.name)
    return RootScan(
        payload=tuple(payload), local_is_dir=local_is_dir, mtime_ns=mtime_ns, record=record
    )


def _record_print(entry: os.DirEntry[str]) -> RecordPrint | None:
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return RecordPrint(size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino)


def read_record_header(root: Path) -> RecordHeader | None:
    """What the install record of ``root`` says about the install; ``None`` when there is
    no usable record (a broken one is logged: it only costs the version label)."""
    path = root / INSTALL_RECORD_FILE
    try:
        data = read_regular_bounded(path, MAX_INSTALL_RECORD_SIZE)
    except NotARegularFile:
        log.warning("install record %s ignored: not a regular file of bounded size", path)
        return None
    except StorageError as exc:
        log.warning("install record %s unreadable: %s", path, exc)
        return None
    return None if data is None else _decode_header(path, root.name, data)


_HEADER_DECODER = msgspec.json.Decoder(RecordHeader)


def _decode_header(path: Path, game_id: str, data: bytes) -> RecordHeader | None:
    try:
        header = _HEADER_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        log.warning("install record %s ignored: %s", path, exc)
        return None
    if header.format != INSTALL_RECORD_FORMAT or header.game_id != game_id:
        log.warning("install record %s ignored: another format or game", path)
        return None
    return header


def root_unchanged(root: str | Path, fingerprint: Fingerprint) -> bool:
    """True when the root level provably looks as ``fingerprint`` says, without a listing.

    ``False`` means "list it": something changed, the fingerprint is unsettled, or
    this platform cannot open folders as descriptors.
    """
    if not (_USE_DIR_FD and fingerprint.root_settled):
        return False
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_mtime_ns != fingerprint.root_mtime_ns:
            return False
        for entry in fingerprint.entries:
            info = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
            if (
                info.st_size != entry.size
                or info.st_mtime_ns != entry.mtime_ns
                or _kind(info.st_mode) is not entry.kind
            ):
                return False
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def payload_size(root: Path, payload: Collection[EntryPrint]) -> int:
    """Bytes of payload: root files plus regular files of nested payload folders.

    Walked with ``lstat``; links are never followed and count nothing; a folder
    reached twice (a bind mount loop) is counted once.
    """
    total = 0
    folders: list[Path] = []
    for entry in payload:
        if entry.kind is EntryKind.FILE:
            total += entry.size
        elif entry.kind is EntryKind.DIR:
            folders.append(root / entry.name)
    seen: set[tuple[int, int]] = set()
    while folders:
        folder = folders.pop()
        try:
            with _listing(folder) as (_, children):
                for child in children:
                    total += _count_entry(child, folder, folders, seen)
        except (_NotARoot, OSError) as exc:
            log.debug("payload folder %s skipped while sizing: %s", folder, exc)
    return total


def summarize(
    game_id: str,
    state: RootState,
    version: str | None,
    size_bytes: int,
    record: RecordHeader | None = None,
) -> GameSummary | None:
    """The summary a peer reports; ``None`` when neither downloaded nor installed.

    A ``local/`` whose record says it holds only the files an uninstall kept is
    not an install.
    """
    installed = state.installed and (record is None or record.installed)
    if state.downloaded:
        availability = Availability.READY
    elif installed:
        availability = Availability.LOCAL_ONLY
    else:
        return None
    return GameSummary(
        id=game_id,
        availability=availability,
        version=version if state.downloaded else None,
        installed=installed,
        size_bytes=size_bytes,
        installed_version=record.version if installed and record is not None else None,
    )


class LibraryScanner:
    """Scans catalog game roots, reusing index entries whose fingerprint still holds."""

    def __init__(
        self,
        game_dir: Path,
        catalog: Catalog,
        index: LibraryIndex,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._game_dir = game_dir
        self._catalog = catalog
        self._index = index
        self._clock_ns = clock_ns

    @property
    def index(self) -> LibraryIndex:
        return self._index

    def scan_all(self, skip: Collection[str] = ()) -> dict[str, GameSummary]:
        """Summaries of every catalog game with a root, except the ids in ``skip``.

        ``skip`` games are neither read nor returned, and their index entries are
        kept. Raises :class:`StorageError` when the game directory cannot be listed.
        """
        now_ns = self._clock_ns()
        present = set(skip)
        summaries: dict[str, GameSummary] = {}
        for game_id in sorted(self._root_names() - present):
            entry = self._scan(game_id, now_ns)
            if entry is None:
                continue
            present.add(game_id)
            if entry.summary is not None:
                summaries[game_id] = entry.summary
        self._index.retain(present)
        self._persist()
        return summaries

    def scan_game(self, game_id: str) -> GameSummary | None:
        """Rescan one game and update its index entry; ``None`` for no summary or no such game.

        The entry is updated in memory only: the next :meth:`scan_all` (or
        :meth:`flush`) writes it. Writing the whole index on every watcher rescan
        would cost an fsync each time, and losing the update in a crash only costs
        that game a cold read at the next start.
        """
        if game_id not in self._catalog:
            return None
        entry = self._scan(game_id, self._clock_ns())
        return None if entry is None else entry.summary

    def flush(self) -> None:
        """Write the index if it changed since the last save (a failure is logged)."""
        self._persist()

    def _root_names(self) -> set[str]:
        """Catalog ids that name something in the game directory."""
        try:
            with os.scandir(self._game_dir) as entries:
                names = {entry.name for entry in entries}
        except OSError as exc:
            raise StorageError(
                f"cannot list game directory {self._game_dir}: {exc.strerror or exc}"
            ) from exc
        return {name for name in names if name in self._catalog}

    def _scan(self, game_id: str, now_ns: int) -> IndexEntry | None:
        """Scan one root and record the result in the index (dropping it when absent)."""
        previous = self._index.get(game_id)
        entry = self._scan_root(game_id, previous, now_ns)
        if entry is None:
            self._index.drop(game_id)
        elif entry is not previous:
            self._index.put(game_id, entry)
        return entry

    def _scan_root(
        self, game_id: str, previous: IndexEntry | None, now_ns: int
    ) -> IndexEntry | None:
        if previous is not None and root_unchanged(
            # The warm path runs once per game per scan: a str join costs a
            # fraction of building a Path.
            os.path.join(self._game_dir, game_id),  # noqa: PTH118
            previous.fingerprint,
        ):
            reused = self._with_current_sentinel(
                self._game_dir / game_id, previous, previous.fingerprint, now_ns
            )
            if reused is not None:
                return reused
        game_root = self._game_dir / game_id
        root = read_root(self._game_dir, game_id)
        if root is None:
            return None
        if previous is not None and root.matches(previous.fingerprint):
            relisted = _fingerprint(root, previous.fingerprint.sentinel, now_ns)
            reused = self._with_current_sentinel(game_root, previous, relisted, now_ns)
            if reused is not None:
                return reused
        return self._read_cold(game_root, game_id, root, now_ns)

    def _with_current_sentinel(
        self, game_root: Path, previous: IndexEntry, fingerprint: Fingerprint, now_ns: int
    ) -> IndexEntry | None:
        """``previous``'s summary under ``fingerprint`` if ``version.ini`` still says the same.

        A settled sentinel is trusted as listed; an unsettled one is read again and
        its bytes compared. ``None`` when the sentinel changed.
        """
        stored = fingerprint.sentinel
        if stored is not None and not stored.settled:
            fresh = read_sentinel(game_root, now_ns)
            if fresh is None or (fresh.size, fresh.mtime_ns, fresh.contents) != (
                stored.size,
                stored.mtime_ns,
                stored.contents,
            ):
                return None
            fingerprint = msgspec.structs.replace(fingerprint, sentinel=fresh)
        if fingerprint == previous.fingerprint:
            return previous
        return IndexEntry(fingerprint=fingerprint, summary=previous.summary)

    def _read_cold(self, game_root: Path, game_id: str, root: RootScan, now_ns: int) -> IndexEntry:
        state = root.state
        sentinel = read_sentinel(game_root, now_ns) if state.downloaded else None
        record = read_record_header(game_root) if root.record is not None else None
        summary = summarize(
            game_id,
            state,
            version_from_sentinel(sentinel),
            payload_size(game_root, root.payload),
            record,
        )
        return IndexEntry(fingerprint=_fingerprint(root, sentinel, now_ns), summary=summary)

    def _persist(self) -> None:
        """Save the index when it changed; a failure only costs the next start a cold scan."""
        try:
            self._index.save_if_changed()
        except StorageError as exc:
            log.warning("library index not saved: %s", exc)


class _NotARoot(Exception):
    """The path is missing, not a folder, or a symlink."""


def _fingerprint(root: RootScan, sentinel: SentinelPrint | None, now_ns: int) -> Fingerprint:
    return Fingerprint(
        entries=root.payload,
        sentinel=sentinel,
        local_is_dir=root.local_is_dir,
        root_mtime_ns=root.mtime_ns,
        root_settled=settled(root.mtime_ns, now_ns),
        record=root.record,
    )


@contextlib.contextmanager
def _listing(folder: Path) -> Iterator[tuple[int, Iterator[os.DirEntry[str]]]]:
    """The folder's mtime (read first) and its entries, refusing a symlinked folder.

    On POSIX the folder is opened with ``O_NOFOLLOW`` and listed through the
    descriptor, so a folder swapped for a link between check and use is never
    followed. Elsewhere an ``lstat`` check precedes the listing.
    """
    if _USE_DIR_FD:
        try:
            fd = os.open(folder, _DIR_FLAGS)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise _NotARoot(str(folder)) from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _NotARoot(str(folder)) from exc
            raise
        try:
            mtime_ns = os.fstat(fd).st_mtime_ns
            with os.scandir(fd) as entries:
                yield mtime_ns, entries
        finally:
            os.close(fd)
        return
    try:
        info = os.lstat(folder)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise _NotARoot(str(folder)) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise _NotARoot(str(folder))
    with os.scandir(folder) as entries:
        yield info.st_mtime_ns, entries


def _count_entry(
    entry: os.DirEntry[str],
    folder: Path,
    folders: list[Path],
    seen: set[tuple[int, int]],
) -> int:
    """Bytes of one nested entry; a real folder is queued once instead.

    Reserved names only mean something at the root: nested ones are payload.
    """
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return 0
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    if stat.S_ISDIR(info.st_mode):
        identity = (info.st_dev, entry.inode())
        if identity not in seen:
            seen.add(identity)
            folders.append(folder / entry.name)
    return 0


_KIND_BY_FORMAT = {
    stat.S_IFREG: EntryKind.FILE,
    stat.S_IFDIR: EntryKind.DIR,
    stat.S_IFLNK: EntryKind.SYMLINK,
}


def _kind(mode: int) -> EntryKind:
    return _KIND_BY_FORMAT.get(stat.S_IFMT(mode), EntryKind.OTHER)
