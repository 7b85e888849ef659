"""BLAKE3 over game payload files: manifests of a game root, and chunk verification.

:func:`hash_game_payload` walks a game root with the game-root rules (reserved
root names are not payload, symlinks are never followed and never listed,
device files, FIFOs and sockets are refused) and hashes every payload file
chunk by chunk, reading one :data:`HASH_BLOCK_SIZE` block at a time into one
reused buffer, so memory stays bounded whatever the game's size. It blocks:
the async shell runs it through ``asyncio.to_thread`` and stops it early with
``should_stop`` (for example ``threading.Event.is_set``), checked between blocks.

:class:`ChunkHasher` verifies a chunk fed piece by piece as it arrives;
:func:`verify_chunk` verifies one that is already whole in memory.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import blake3

from lanspread.core.gameroot import is_reserved_name
from lanspread.core.manifest import (
    DEFAULT_CHUNK_SIZE,
    MAX_FILES_PER_GAME,
    ChunkDigest,
    FileManifest,
    GameManifest,
    ManifestError,
    chunk_size_for,
    chunk_spans,
    validate_manifest,
)
from lanspread.errors import LanspreadError, ProtocolError, StorageError
from lanspread.platform import fileio

# One read per MiB keeps the syscall cost far below the hashing cost (BLAKE3 runs
# at about 4 GiB/s on one core here) while the buffer stays small.
HASH_BLOCK_SIZE = 1024 * 1024

Buffer = bytes | bytearray | memoryview

# Never block on a FIFO swapped in after the scan, never follow a final symlink,
# and read Windows files as bytes. Flags a platform lacks are simply left out.
_OPEN_FLAGS = os.O_RDONLY | fileio.O_BINARY | fileio.O_NOFOLLOW | fileio.O_NONBLOCK


class HashingStopped(LanspreadError):
    """``should_stop`` asked a payload hash to end before it finished."""


class ExpectedChunk(Protocol):
    """What a chunk must be: :class:`ChunkDigest` and planning's ``ChunkTask`` fit."""

    @property
    def length(self) -> int: ...

    @property
    def blake3(self) -> bytes: ...


def hash_game_payload(
    game_root: Path,
    game_id: str,
    version: str | None,
    chunk_size: int | None = DEFAULT_CHUNK_SIZE,
    should_stop: Callable[[], bool] | None = None,
) -> GameManifest:
    """The manifest of every payload file under ``game_root``.

    ``chunk_size`` ``None``: the one the payload's size calls for
    (:func:`~lanspread.core.manifest.chunk_size_for`), what every peer uses.
    Raises :class:`StorageError` when the root is not a real folder, a file cannot
    be read, changes size while read, is a special file, or when the payload does
    not make a valid manifest (no root ``version.ini``, an unsafe name, too many
    files); :class:`HashingStopped` when ``should_stop`` returns True.
    """
    _require_real_dir(game_root)
    stop = should_stop or _never
    buffer = bytearray(HASH_BLOCK_SIZE)
    paths = sorted(_payload_paths(game_root))
    size = chunk_size or chunk_size_for(_payload_bytes(game_root, paths))
    files = tuple(
        _hash_file(game_root / relative, relative, size, buffer, stop) for relative in paths
    )
    manifest = GameManifest(game_id=game_id, version=version, chunk_size=size, files=files)
    if chunk_size is None and chunk_size_for(manifest.total_bytes) != size:
        raise StorageError(f"the payload of {game_root} changed size while it was hashed")
    try:
        validate_manifest(manifest)
    except ManifestError as exc:
        raise StorageError(f"cannot describe the payload of {game_root}: {exc}") from exc
    return manifest


def _payload_bytes(game_root: Path, paths: list[str]) -> int:
    """The payload's size by ``stat`` (symlinks not followed), before hashing it."""
    try:
        return sum((game_root / relative).lstat().st_size for relative in paths)
    except OSError as exc:
        raise StorageError(f"cannot read {game_root}: {exc.strerror or exc}") from exc


def _never() -> bool:
    return False


def _require_real_dir(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        raise StorageError(f"cannot read game root {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(mode):
        raise StorageError(f"game root {path} is not a folder (symlinks are not followed)")


def _payload_paths(game_root: Path) -> list[str]:
    """Relative POSIX paths of the payload files; reserved root names are skipped."""
    found: list[str] = []
    pending: list[tuple[Path, str]] = [(game_root, "")]
    while pending:
        folder, prefix = pending.pop()
        for name, kind in _list_dir(folder):
            if not prefix and is_reserved_name(name):
                continue
            relative = f"{prefix}{name}"
            if kind == "dir":
                pending.append((folder / name, f"{relative}/"))
            elif kind == "file":
                found.append(relative)
                if len(found) > MAX_FILES_PER_GAME:
                    raise StorageError(
                        f"{game_root} holds more than {MAX_FILES_PER_GAME} payload files"
                    )
            elif kind == "special":
                raise StorageError(
                    f"{folder / name} is not a regular file or folder; refusing to hash it"
                )
    return found


def _list_dir(folder: Path) -> list[tuple[str, str]]:
    """``(name, kind)`` of each child, kind one of file, dir, symlink or special."""
    try:
        with os.scandir(folder) as entries:
            return [(entry.name, _kind(entry)) for entry in entries]
    except OSError as exc:
        raise StorageError(f"cannot list {folder}: {exc.strerror or exc}") from exc


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "special"


def _hash_file(
    path: Path,
    relative: str,
    chunk_size: int,
    buffer: bytearray,
    should_stop: Callable[[], bool],
) -> FileManifest:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise StorageError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        with _open_reader(fd) as reader:
            size = _regular_file_size(fd, path)
            chunks = tuple(
                ChunkDigest(
                    offset=offset,
                    length=length,
                    blake3=_hash_next(reader, path, length, buffer, should_stop),
                )
                for offset, length in chunk_spans(size, chunk_size)
            )
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return FileManifest(path=relative, size=size, chunks=chunks)


def _open_reader(fd: int) -> io.FileIO:
    """An unbuffered reader over ``fd`` that leaves closing the descriptor to the caller."""
    return io.FileIO(fd, "rb", closefd=False)


def _regular_file_size(fd: int, path: Path) -> int:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(f"{path} is not a regular file; refusing to hash it")
    return info.st_size


def _hash_next(
    reader: io.FileIO,
    path: Path,
    length: int,
    buffer: bytearray,
    should_stop: Callable[[], bool],
) -> bytes:
    digest = hash_next(reader, length, buffer, should_stop, path)
    if digest is None:
        raise StorageError(f"{path} shrank while it was hashed")
    return digest


def hash_next(
    reader: io.FileIO,
    length: int,
    buffer: bytearray,
    should_stop: Callable[[], bool],
    path: Path,
) -> bytes | None:
    """BLAKE3 of the next ``length`` bytes of ``reader`` (the file ``path``), read one
    ``buffer`` at a time; ``None`` when the file ends first.

    ``should_stop`` is asked before every block; True raises :class:`HashingStopped`.
    """
    hasher = blake3.blake3()
    view = memoryview(buffer)
    remaining = length
    while remaining:
        if should_stop():
            raise HashingStopped(f"hashing stopped at {path}")
        got = reader.readinto(view[: min(remaining, len(view))])
        if not got:
            return None
        hasher.update(view[:got])
        remaining -= got
    return hasher.digest()


class ChunkHasher:
    """Verifies one chunk fed in pieces as they arrive.

    Feeding more than the chunk's length raises :class:`ProtocolError`: the shell
    bounds its reads by the length, so extra bytes mean the peer broke the protocol.
    """

    def __init__(self, expected: ExpectedChunk) -> None:
        self._length = expected.length
        self._digest = expected.blake3
        self._hasher = blake3.blake3()
        self._received = 0

    @property
    def received(self) -> int:
        return self._received

    @property
    def remaining(self) -> int:
        return self._length - self._received

    def update(self, data: Buffer) -> None:
        size = memoryview(data).nbytes
        if size > self.remaining:
            raise ProtocolError(
                f"chunk data overran its length of {self._length} bytes "
                f"({self._received + size} received)"
            )
        self._hasher.update(data)
        self._received += size

    def matches(self) -> bool:
        """True when every byte arrived and their digest is the expected one."""
        return self._received == self._length and self._hasher.digest() == self._digest


def verify_chunk(data: Buffer, expected: ExpectedChunk) -> bool:
    """True when ``data`` is exactly the expected chunk."""
    return (
        memoryview(data).nbytes == expected.length
        and blake3.blake3(data).digest() == expected.blake3
    )
