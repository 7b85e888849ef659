"""Reuse of payload bytes already on disk: chunks an update or a resume need not fetch.

An update usually changes a few archives and keeps the rest byte for byte; a
download whose journal was lost may have most of its chunks written already.
:func:`reusable_chunks` hashes the bytes that sit at each chunk's path and
offset and returns the chunks whose BLAKE3 digest already matches the manifest.

Cost: it reads every byte of every manifest file that exists (up to the
manifest size of each), so it costs one sequential read of the existing payload;
BLAKE3 (about 4 GiB/s on one core) is far faster than any disk, so the disk's
read speed sets the time. It runs **once, before the transfer starts** and
before :func:`~lanspread.download.prepare.prepare_game_storage` (which would
extend new files to their full size and make this read zeros). A file that is
missing, a link, not a regular file, or a chunk that runs past the end of the
file is simply not reusable. The sentinel is never reused: it is committed
last from fetched bytes. Reuse is by path and offset only: a renamed archive
is fetched again.

Memory stays bounded: one :data:`REUSE_BLOCK_SIZE` buffer is reused for every
read, whatever the game's size. The found chunks are durable only if the file
was synced: journal them with
:meth:`~lanspread.download.journal.DownloadJournal.commit_durable` passing
their paths. It blocks; the runtime runs it through ``asyncio.to_thread`` and
stops it early with ``should_stop`` (checked between blocks), which raises
:class:`~lanspread.files.hashing.HashingStopped`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from io import FileIO
from pathlib import Path

from lanspread.core.manifest import FileManifest, GameManifest
from lanspread.core.planning import ChunkKey
from lanspread.download.prepare import fsync_files, open_for_reading, open_for_writing, write_at
from lanspread.errors import StorageError
from lanspread.files.entries import require_dir_or_absent
from lanspread.files.hashing import HASH_BLOCK_SIZE, HashingStopped, hash_next
from lanspread.platform import fileio

# The same block as the payload hasher: one read per MiB keeps syscall cost far
# below hashing cost while the buffer stays small.
REUSE_BLOCK_SIZE = HASH_BLOCK_SIZE


def reusable_chunks(
    root: Path, manifest: GameManifest, should_stop: Callable[[], bool] | None = None
) -> set[ChunkKey]:
    """Keys of the manifest chunks whose bytes on disk under ``root`` already match.

    A missing root gives an empty set. Raises :class:`StorageError` when the root
    is a link or a file cannot be read, and
    :class:`~lanspread.files.hashing.HashingStopped` when ``should_stop``
    returns True.
    """
    if not require_dir_or_absent(root):
        return set()
    stop = should_stop or _never
    buffer = bytearray(REUSE_BLOCK_SIZE)
    found: set[ChunkKey] = set()
    for file in manifest.files:
        if file.is_sentinel or not file.chunks:
            continue
        found.update(_matching_chunks(root, file, buffer, stop))
    return found


def _never() -> bool:
    return False


def _matching_chunks(
    root: Path, file: FileManifest, buffer: bytearray, should_stop: Callable[[], bool]
) -> list[ChunkKey]:
    fd = open_for_reading(root, file.path)
    if fd is None:
        return []
    where = root / file.path
    try:
        size = os.fstat(fd).st_size
        # Seek-and-read, not pread: portable to Windows, and one thread owns fd here.
        with FileIO(fd, "rb", closefd=False) as reader:
            return [
                (file.path, chunk.offset)
                for chunk in file.chunks
                if chunk.offset + chunk.length <= size
                and _digest_at(reader, chunk.offset, chunk.length, buffer, should_stop, where)
                == chunk.blake3
            ]
    except OSError as exc:
        raise StorageError(f"cannot read {where}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _digest_at(
    reader: FileIO,
    offset: int,
    length: int,
    buffer: bytearray,
    should_stop: Callable[[], bool],
    where: Path,
) -> bytes | None:
    """BLAKE3 of ``length`` bytes at ``offset``; a short read (the file shrank) is ``None``."""
    reader.seek(offset)
    return hash_next(reader, length, buffer, should_stop, where)


def copy_chunks(
    source: Path,
    target: Path,
    manifest: GameManifest,
    should_stop: Callable[[], bool] | None = None,
) -> set[ChunkKey]:
    """Copy the chunks that already match under ``source`` into the prepared ``target``.

    An update staged beside the old version (:mod:`lanspread.files.staging`) starts
    from the old archives' unchanged bytes without touching them: they are read,
    never moved or linked (a link would let the new download write into the old
    version). The copied files are synced on return, so the keys returned may be
    journaled at once. Raises like :func:`reusable_chunks`.
    """
    keys = reusable_chunks(source, manifest, should_stop)
    stop = should_stop or _never
    by_path = {file.path: file for file in manifest.files}
    for path in sorted({path for path, _ in keys}):
        chunks = [chunk for chunk in by_path[path].chunks if (path, chunk.offset) in keys]
        reader = open_for_reading(source, path)
        if reader is None:
            continue
        writer = open_for_writing(target, path)
        try:
            for chunk in chunks:
                if stop():
                    raise HashingStopped(f"copying {path} stopped")
                data = fileio.pread(reader, chunk.length, chunk.offset)
                write_at(writer, data, chunk.offset, name=path)
        finally:
            os.close(reader)
            os.close(writer)
    fsync_files(target, sorted({path for path, _ in keys}))
    return keys


__all__ = ["REUSE_BLOCK_SIZE", "copy_chunks", "reusable_chunks"]
