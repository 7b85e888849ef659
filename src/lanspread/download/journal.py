"""The crash-resume journal of a download: which chunks are durably on disk.

The journal lives in the game root as ``.lanspread.download.json`` (a reserved
transient: never scanned, served or hashed). It is JSON holding:

* ``format`` (:data:`JOURNAL_FORMAT_VERSION`), ``game_id``, ``version`` and
  ``chunk_size``;
* ``manifest``: the canonical MessagePack encoding of the agreed
  :class:`~lanspread.core.manifest.GameManifest` (base64 in the JSON) and its
  ``manifest_digest``, so a restart knows every chunk and its BLAKE3 digest
  without asking any peer;
* ``done``: a bitmap over the manifest's chunks in ``(path, offset)`` order
  (:func:`lanspread.core.planning.manifest_tasks`), bit ``i`` set when chunk
  ``i`` is complete: one bit a chunk, 8 KiB at the largest manifest;
* ``started_at`` and ``updated_at`` (wall-clock seconds, for the UI).

Theory of operation
-------------------
A chunk counts as completed only once its bytes were **verified** against the
manifest digest and made **durable**. The data plane verifies each chunk as it
arrives and only then calls :meth:`DownloadJournal.mark_done`, which changes
memory only. :meth:`DownloadJournal.commit_durable` snapshots the done set,
syncs the payload files, and only then writes the snapshot; so a chunk marked
while the sync runs waits for the next commit, and the journal on disk never
names a chunk a power loss could take back. Every write is atomic (temp file,
fsync, rename, fsync of the root): after a kill the file is the previous
journal or the new one. When to commit is the engine's batching policy
(:func:`lanspread.core.engine.should_commit`).

The sentinel's chunks are never journaled: the sentinel is held in memory and
its commit (:mod:`lanspread.files.sentinel`) is what completes the download.
Create the journal *after* :func:`~lanspread.files.sentinel.begin_update`
parked the old sentinel (:meth:`DownloadJournal.create` refuses otherwise), and
remove it *after* the new sentinel is committed. So a journal next to no
sentinel is a paused download, and a journal next to a sentinel is a finished
download's leftover.

:func:`load` returns ``None`` when there is no journal and raises
:class:`JournalCorrupt` for one that cannot be trusted: undecodable, oversized,
another format version, another game, a manifest that does not validate or
does not match its digest or header, or a bitmap of the wrong shape. Nothing
then proves which chunks are complete, so startup discards the payload.

Everything here blocks; the runtime runs it through
``asyncio.to_thread``. One download owns one journal; :meth:`mark_done` may run
on another thread than :meth:`commit` (a lock guards the bitmap).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import msgspec

from lanspread.core.gameroot import (
    DOWNLOAD_JOURNAL_FILE,
    DOWNLOAD_JOURNAL_TMP_FILE,
    VERSION_FILE,
)
from lanspread.core.manifest import (
    MAX_CHUNKS_PER_GAME,
    MAX_MANIFEST_ENCODED_SIZE,
    GameManifest,
    ManifestError,
    decode_manifest,
    encode_manifest,
    manifest_digest,
)
from lanspread.core.planning import ChunkKey, manifest_tasks
from lanspread.download.prepare import fsync_files, sync_fd
from lanspread.errors import StorageError
from lanspread.files.atomic import atomic_write_bytes, make_dir_synced, unlink_synced
from lanspread.files.records import load_game_record

JOURNAL_FORMAT_VERSION = 1

MiB = 1024 * 1024

# One bit per chunk, rounded up to whole bytes.
MAX_BITMAP_BYTES = (MAX_CHUNKS_PER_GAME + 7) // 8
# The largest journal we wrote: the largest manifest in base64 (4 bytes per 3),
# the bitmap in base64 and a few hundred bytes of keys. A larger file is not ours,
# so it is never read whole.
MAX_JOURNAL_FILE_SIZE = (MAX_MANIFEST_ENCODED_SIZE * 4) // 3 + 1 * MiB

_HEX_DIGEST_LENGTH = 64


class JournalCorrupt(StorageError):
    """A download journal cannot be trusted: malformed, foreign or of another format."""


class _JournalRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The persisted journal (see the module docstring)."""

    format: int
    game_id: Annotated[str, msgspec.Meta(max_length=MiB)]
    version: Annotated[str, msgspec.Meta(max_length=MiB)] | None
    chunk_size: int
    manifest_digest: Annotated[str, msgspec.Meta(max_length=_HEX_DIGEST_LENGTH)]
    manifest: Annotated[bytes, msgspec.Meta(max_length=MAX_MANIFEST_ENCODED_SIZE)]
    done: Annotated[bytes, msgspec.Meta(max_length=MAX_BITMAP_BYTES)]
    started_at: float
    updated_at: float


class DownloadJournal:
    """The done set of one download, in memory, and its durable copy in the game root."""

    def __init__(
        self,
        root: Path,
        manifest: GameManifest,
        *,
        done: bytes,
        started_at: float,
        updated_at: float,
        clock: Callable[[], float],
    ) -> None:
        """Use :meth:`create` or :func:`load`; this trusts its arguments."""
        self.root = root
        self.manifest = manifest
        self.manifest_digest = manifest_digest(manifest)
        self.started_at = started_at
        self.updated_at = updated_at
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks = manifest_tasks(manifest)
        self._index = {task.key: index for index, task in enumerate(self._tasks)}
        self._bitmap = bytearray(done)
        self._done_bytes = sum(
            task.length for index, task in enumerate(self._tasks) if self._bit(index)
        )

    @classmethod
    def create(
        cls, root: Path, manifest: GameManifest, *, clock: Callable[[], float] = time.time
    ) -> DownloadJournal:
        """Start the journal of a new download of ``manifest`` into ``root`` and write it.

        Creates ``root`` if missing (its parent must exist) and replaces any
        previous journal. Raises :class:`StorageError` when a ``version.ini``
        is still in place (park it first with
        :func:`~lanspread.files.sentinel.begin_update`) or the disk refuses.
        """
        make_dir_synced(root, exist_ok=True)
        if os.path.lexists(root / VERSION_FILE):
            raise StorageError(
                f"refusing to journal a download into {root}: {VERSION_FILE} is still in "
                "place (park it with begin_update first)"
            )
        now = clock()
        journal = cls(
            root,
            manifest,
            done=bytes(_bitmap_size(manifest.chunk_count)),
            started_at=now,
            updated_at=now,
            clock=clock,
        )
        journal.commit()
        return journal

    # --- the done set --------------------------------------------------------------------

    @property
    def game_id(self) -> str:
        return self.manifest.game_id

    @property
    def version(self) -> str | None:
        return self.manifest.version

    @property
    def done_keys(self) -> frozenset[ChunkKey]:
        """Chunks marked done, committed or not."""
        with self._lock:
            return frozenset(task.key for index, task in enumerate(self._tasks) if self._bit(index))

    @property
    def done_bytes(self) -> int:
        """Bytes of the chunks marked done, committed or not."""
        return self._done_bytes

    @property
    def total_bytes(self) -> int:
        """Every payload byte of the manifest, the sentinel included."""
        return self.manifest.total_bytes

    def is_done(self, key: ChunkKey) -> bool:
        index = self._index.get(key)
        return index is not None and self._bit(index)

    def mark_done(self, keys: Iterable[ChunkKey]) -> None:
        """Record chunks as complete, in memory; only for verified chunks.

        Raises :class:`ValueError` for a key that names no chunk of the manifest
        or names a sentinel chunk (the sentinel completes by its commit instead);
        no key of the call is marked then.
        """
        indexes = [self._checked_index(key) for key in keys]
        with self._lock:
            for index in indexes:
                if not self._bit(index):
                    self._bitmap[index >> 3] |= 1 << (index & 7)
                    self._done_bytes += self._tasks[index].length

    def _checked_index(self, key: ChunkKey) -> int:
        index = self._index.get(key)
        if index is None:
            raise ValueError(f"chunk {key!r} is not part of the manifest of {self.game_id}")
        if self._tasks[index].is_sentinel:
            raise ValueError(f"chunk {key!r} is the sentinel's; it is never journaled")
        return index

    def _bit(self, index: int) -> bool:
        return bool(self._bitmap[index >> 3] & (1 << (index & 7)))

    # --- persistence -------------------------------------------------------------------

    def commit(self) -> None:
        """Write the done set atomically; the caller made the done chunks durable first.

        Prefer :meth:`commit_durable`, which does both in the right order.
        """
        with self._lock:
            snapshot = bytes(self._bitmap)
        self._write(snapshot)

    def bitmap(self) -> bytes:
        """The done set as it stands (manifest order, ``core.bitfield``'s layout)."""
        with self._lock:
            return bytes(self._bitmap)

    def commit_durable(self, files: Iterable[int | str]) -> bytes:
        """Snapshot the done set, sync ``files``, then write the snapshot.

        ``files`` are open descriptors or payload paths relative to the root:
        every file a chunk marked done since the last commit was written to.
        Raises :class:`StorageError` when a sync or the write fails; the journal
        on disk then still holds the previous commit. Returns the snapshot written:
        every chunk it marks is durable now.
        """
        with self._lock:
            snapshot = bytes(self._bitmap)
        paths: list[str] = []
        for item in files:
            if isinstance(item, int):
                sync_fd(item)
            else:
                paths.append(item)
        fsync_files(self.root, paths)
        self._write(snapshot)
        return snapshot

    def _write(self, bitmap: bytes) -> None:
        now = self._clock()
        record = _JournalRecord(
            format=JOURNAL_FORMAT_VERSION,
            game_id=self.manifest.game_id,
            version=self.manifest.version,
            chunk_size=self.manifest.chunk_size,
            manifest_digest=self.manifest_digest,
            manifest=encode_manifest(self.manifest),
            done=bitmap,
            started_at=self.started_at,
            updated_at=now,
        )
        atomic_write_bytes(
            self.root / DOWNLOAD_JOURNAL_FILE,
            msgspec.json.encode(record),
            temp=self.root / DOWNLOAD_JOURNAL_TMP_FILE,
        )
        self.updated_at = now

    def remove(self) -> None:
        """Delete the journal (and a leftover temp file), durably; idempotent."""
        unlink_synced(self.root / DOWNLOAD_JOURNAL_TMP_FILE)
        unlink_synced(self.root / DOWNLOAD_JOURNAL_FILE)


def load(root: Path, *, clock: Callable[[], float] = time.time) -> DownloadJournal | None:
    """The journal of ``root``; ``None`` when there is none.

    Raises :class:`JournalCorrupt` for a journal that cannot be trusted (see the
    module docstring) and :class:`StorageError` when it cannot be read at all.
    """
    path = root / DOWNLOAD_JOURNAL_FILE
    record = load_game_record(
        path,
        _JournalRecord,
        limit=MAX_JOURNAL_FILE_SIZE,
        format_version=JOURNAL_FORMAT_VERSION,
        what="a download journal",
        corrupt=JournalCorrupt,
    )
    if record is None:
        return None
    manifest = _checked_manifest(path, root, record)
    expected_bitmap = _bitmap_size(manifest.chunk_count)
    if len(record.done) != expected_bitmap:
        raise JournalCorrupt(
            f"{path}: done bitmap of {len(record.done)} bytes, expected {expected_bitmap}"
        )
    journal = DownloadJournal(
        root,
        manifest,
        done=bytes(expected_bitmap),
        started_at=record.started_at,
        updated_at=record.updated_at,
        clock=clock,
    )
    _restore_bits(path, journal, record.done)
    return journal


def _checked_manifest(path: Path, root: Path, record: _JournalRecord) -> GameManifest:
    try:
        manifest = decode_manifest(record.manifest)
    except ManifestError as exc:
        raise JournalCorrupt(f"{path}: the recorded manifest is unusable: {exc}") from exc
    if manifest_digest(manifest) != record.manifest_digest:
        raise JournalCorrupt(f"{path}: the recorded manifest does not match its digest")
    header = (manifest.game_id, manifest.version, manifest.chunk_size)
    if header != (record.game_id, record.version, record.chunk_size):
        raise JournalCorrupt(
            f"{path}: the header {(record.game_id, record.version, record.chunk_size)!r} "
            f"does not match the manifest's {header!r}"
        )
    return manifest


def _restore_bits(path: Path, journal: DownloadJournal, bitmap: bytes) -> None:
    tasks = manifest_tasks(journal.manifest)
    for index in range(len(bitmap) * 8):
        if not bitmap[index >> 3] & (1 << (index & 7)):
            continue
        if index >= len(tasks):
            raise JournalCorrupt(f"{path}: done bit {index} is past the last chunk")
        if tasks[index].is_sentinel:
            raise JournalCorrupt(f"{path}: a sentinel chunk is recorded as done")
        journal.mark_done([tasks[index].key])


def _bitmap_size(chunk_count: int) -> int:
    return (chunk_count + 7) // 8


__all__ = [
    "JOURNAL_FORMAT_VERSION",
    "MAX_JOURNAL_FILE_SIZE",
    "DownloadJournal",
    "JournalCorrupt",
    "load",
]
