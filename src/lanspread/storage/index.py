"""The persisted library index: per-game fingerprints and the summaries they produced.

The index is a cache. Each entry pairs the :class:`Fingerprint` of a game root with
the :class:`GameSummary` computed from that same observation, so an entry is never
wrong, only possibly stale: the scanner compares a fresh fingerprint with the
stored one and reuses the summary only when they match. A missing, corrupt or
foreign index therefore costs one cold scan and never a wrong library; loading
logs why it started empty and never raises for the file's contents.

The file is ``library_index.json`` in the state directory, written atomically
(temp file, fsync, rename, fsync of the folder). It records the game directory it
describes: an index of another game directory is ignored.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from lanspread.core.gameroot import EntryKind
from lanspread.core.library import MAX_LIBRARY_GAMES, GameId, GameSummary
from lanspread.errors import StorageError
from lanspread.files.atomic import atomic_write_bytes, sweep_temp
from lanspread.files.version_ini import SentinelPrint

log = logging.getLogger(__name__)

INDEX_FILE_NAME = "library_index.json"
INDEX_FORMAT_VERSION = 1
# 10,000 games with a few hundred root entries each stay well below this; a larger
# file was not written by us and is not worth parsing to rebuild a cache.
MAX_INDEX_FILE_SIZE = 64 * 1024 * 1024


class EntryPrint(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """One root-level payload entry as ``lstat`` saw it (a compact JSON row)."""

    name: str
    kind: EntryKind
    size: int
    mtime_ns: int


class RecordPrint(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """The root install record as ``lstat`` saw it: a transaction replaces it by a rename,
    so a new record is a new inode even when size and mtime tick alike."""

    size: int
    mtime_ns: int
    inode: int


class Fingerprint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What must be unchanged for a stored summary to still be true."""

    entries: tuple[EntryPrint, ...]
    """Root-level payload entries (``version.ini`` included), sorted by name."""
    sentinel: SentinelPrint | None
    """The root ``version.ini`` when it is a regular file."""
    local_is_dir: bool
    root_mtime_ns: int
    """The root folder's own mtime when it was listed: it moves whenever an entry is
    created, removed or renamed (POSIX requires it of every such call)."""
    root_settled: bool
    """The root's mtime was older than the coarse-timestamp window when it was listed,
    so the set of names may be trusted while that mtime is unchanged."""
    record: RecordPrint | None = None
    """The install record, when there is one."""


class IndexEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fingerprint: Fingerprint
    summary: GameSummary | None
    """``None`` for a root that is neither downloaded nor installed."""


class _IndexFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format_version: int
    game_dir: str
    games: Annotated[dict[GameId, IndexEntry], msgspec.Meta(max_length=MAX_LIBRARY_GAMES)]


class _Header(msgspec.Struct, frozen=True):
    """Just enough of any index file to tell its format version."""

    format_version: int


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_IndexFile)
_HEADER_DECODER = msgspec.json.Decoder(_Header)


class LibraryIndex:
    """The in-memory index plus its file; every method is safe to call from any thread."""

    def __init__(
        self, path: Path, game_dir: Path, entries: Mapping[str, IndexEntry] | None = None
    ) -> None:
        self._path = path
        self._game_dir = str(game_dir)
        self._entries: dict[str, IndexEntry] = dict(entries or {})
        self._changed = False
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, game_dir: Path) -> LibraryIndex:
        """The index stored at ``path`` for ``game_dir``; empty (with a warning) when unusable.

        A temp file left by an interrupted save is removed first.
        """
        try:
            sweep_temp(path)
        except StorageError as exc:
            log.warning("library index: %s", exc)
        try:
            entries = _read_entries(path, game_dir)
        except _Unusable as exc:
            log.warning("library index %s ignored, the next scan rebuilds it: %s", path, exc)
            entries = {}
        return cls(path, game_dir, entries)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def changed(self) -> bool:
        """True when the entries differ from what was last loaded or saved."""
        return self._changed

    def get(self, game_id: str) -> IndexEntry | None:
        return self._entries.get(game_id)

    def ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._entries)

    def put(self, game_id: str, entry: IndexEntry) -> None:
        with self._lock:
            if self._entries.get(game_id) != entry:
                self._entries[game_id] = entry
                self._changed = True

    def drop(self, game_id: str) -> None:
        with self._lock:
            if self._entries.pop(game_id, None) is not None:
                self._changed = True

    def retain(self, game_ids: Collection[str]) -> None:
        """Drop every entry whose id is not in ``game_ids`` (games no longer present)."""
        with self._lock:
            gone = [game_id for game_id in self._entries if game_id not in game_ids]
            for game_id in gone:
                del self._entries[game_id]
            self._changed = self._changed or bool(gone)

    def save(self) -> None:
        """Write the index atomically; raises :class:`StorageError` when the disk refuses."""
        with self._lock:
            document = _IndexFile(
                format_version=INDEX_FORMAT_VERSION,
                game_dir=self._game_dir,
                games=dict(sorted(self._entries.items())),
            )
            atomic_write_bytes(self._path, _ENCODER.encode(document))
            self._changed = False

    def save_if_changed(self) -> bool:
        """Save when anything changed since the last load or save; True if it wrote."""
        if not self._changed:
            return False
        self.save()
        return True


class _Unusable(Exception):
    """Why a stored index cannot be used (only ever logged)."""


def _read_entries(path: Path, game_dir: Path) -> dict[str, IndexEntry]:
    data = _read_bounded(path)
    if data is None:
        return {}
    try:
        header = _HEADER_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise _Unusable(f"not a library index: {exc}") from exc
    if header.format_version != INDEX_FORMAT_VERSION:
        raise _Unusable(
            f"format version {header.format_version}, this peer reads {INDEX_FORMAT_VERSION}"
        )
    try:
        document = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise _Unusable(f"malformed entry: {exc}") from exc
    if document.game_dir != str(game_dir):
        raise _Unusable(f"it describes game directory {document.game_dir}, not {game_dir}")
    for game_id, entry in document.games.items():
        if entry.summary is not None and entry.summary.id != game_id:
            raise _Unusable(f"entry {game_id!r} holds the summary of {entry.summary.id!r}")
    return dict(document.games)


def _read_bounded(path: Path) -> bytes | None:
    """The file's bytes, ``None`` when there is no index yet."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_INDEX_FILE_SIZE:
                raise _Unusable(f"{size} bytes is larger than an index can be")
            data = handle.read(MAX_INDEX_FILE_SIZE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Unusable(f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_INDEX_FILE_SIZE:
        raise _Unusable(f"more than {MAX_INDEX_FILE_SIZE} bytes is larger than an index can be")
    return data
