"""Content manifests of a game's payload: shapes, canonical encoding, digests and validation.

A :class:`GameManifest` lists every payload file of a game root (relative POSIX
paths, sorted) with its size and the BLAKE3 digest of each fixed-size chunk.
Chunks tile a file exactly: chunk ``i`` starts at ``i * chunk_size`` and every
chunk but the last is ``chunk_size`` long; an empty file has no chunks. The root
``version.ini`` sentinel is an ordinary entry of the manifest, recognised by its
path (:attr:`FileManifest.is_sentinel`), and every valid manifest has one.

Manifests travel over the authenticated control channel, so their shapes carry
decode bounds; :func:`validate_manifest` checks the rules a decoder cannot
(tiling, order, path safety, totals) and must run on every manifest a peer sent
before anything plans with it.

The majority agreement between sources is :mod:`lanspread.core.agreement`.
"""

from __future__ import annotations

from typing import Annotated

import blake3
import msgspec

from lanspread.core.bitfield import MAX_BITFIELD_CHUNKS
from lanspread.core.catalog import is_valid_game_id
from lanspread.core.codec import decode_bounded
from lanspread.core.gameroot import (
    MAX_VERSION_FILE_SIZE,
    MAX_VERSION_LENGTH,
    RESERVED_NAMES,
    VERSION_FILE,
)
from lanspread.core.library import GameId, Version
from lanspread.errors import ProtocolError

MiB = 1024 * 1024

# Measured by bench/throughput.py (1 GiB between two namespaces, one connection):
# 4 MiB chunks ran 0.53-0.60 of the plain-sendfile reference, 16 MiB 0.56-0.66 and
# 64 MiB 0.54-0.71, whatever the pipeline depth; 16 and 64 MiB are within the noise
# of this shared two-core machine. Per-chunk cost (a serve-gate walk, a request, a
# thread hand-off) is ~1% of a 16 MiB chunk's time, while smaller chunks spread a
# game across more peers and waste less on a retry: 16 MiB, the largest chunk a
# payload's size makes it (chunk_size_for: smaller games get smaller chunks).
DEFAULT_CHUNK_SIZE = 16 * MiB
# Below 1 MiB the per-chunk round trip and bookkeeping cost more than a percent of
# the transfer on a LAN, and MAX_CHUNKS_PER_GAME would cap a game at 64 GiB.
# It also keeps the sentinel (at most MAX_VERSION_FILE_SIZE bytes) in one chunk.
MIN_CHUNK_SIZE = 1 * MiB
# The original's largest chunk; above it one retried chunk wastes too much and a
# small game cannot be spread across several peers at all.
MAX_CHUNK_SIZE = 128 * MiB

# Chunks a payload is cut into, at least, when the chunk size follows its size
# (chunk_size_for): a peer serves a chunk only once it is whole and verified, so
# the first chunk any downloader can pass on takes N x chunk / rate to arrive when
# the seeder feeds N downloaders at once. At 1 -> 8, 200 MiB, 100 Mbit/s the 13
# chunks of 16 MiB kept every downloader from serving for ten seconds (0.41-0.50
# of the swarming ideal); 100 chunks of 2 MiB reached 0.76.
TARGET_CHUNKS = 64

BLAKE3_DIGEST_SIZE = 32

# A game's payload is a handful of archives plus a few nested payload folders; ten
# thousand files is far beyond any real game and keeps a manifest small.
MAX_FILES_PER_GAME = 10_000
# 1 TiB at the default chunk size, 64 GiB at the smallest. Bounds the planner's work,
# the encoded manifest (MAX_MANIFEST_ENCODED_SIZE) and chunk bitfields (core.bitfield).
MAX_CHUNKS_PER_GAME = MAX_BITFIELD_CHUNKS
# Implied by the two bounds above; named so the decoder can reject absurd sizes.
MAX_FILE_SIZE = MAX_CHUNKS_PER_GAME * MAX_CHUNK_SIZE
# UTF-8 bytes of one relative path. Windows tools choke far earlier (MAX_PATH is
# 260 for the whole path); 1024 leaves room for long-path-enabled systems.
MAX_PATH_BYTES = 1024
# NAME_MAX on Linux, NTFS and every other filesystem a player is likely to use.
MAX_COMPONENT_BYTES = 255
# Upper bound of a manifest at the limits above (long paths, every chunk used),
# with slack for the header and framing; a frame carrying one must allow this much.
MAX_MANIFEST_ENCODED_SIZE = 16 * MiB

Blake3Digest = Annotated[
    bytes, msgspec.Meta(min_length=BLAKE3_DIGEST_SIZE, max_length=BLAKE3_DIGEST_SIZE)
]
RelativePath = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PATH_BYTES)]
"""A payload path relative to the game root; see :func:`check_relative_path`."""


class ManifestError(ProtocolError):
    """A manifest breaks the manifest rules, or no source sent a usable one."""


class ChunkDigest(msgspec.Struct, frozen=True, array_like=True):
    """One chunk of a file: where it sits and the BLAKE3 digest of its bytes."""

    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_FILE_SIZE)]
    length: Annotated[int, msgspec.Meta(ge=1, le=MAX_CHUNK_SIZE)]
    blake3: Blake3Digest


class FileManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One payload file: its path, its size and its chunks in offset order."""

    path: RelativePath
    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_FILE_SIZE)]
    chunks: Annotated[tuple[ChunkDigest, ...], msgspec.Meta(max_length=MAX_CHUNKS_PER_GAME)]

    @property
    def is_sentinel(self) -> bool:
        """True for the root ``version.ini``: fetched last and committed through a temp file."""
        return self.path == VERSION_FILE


class GameManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every payload file of one game at one version, sorted by path."""

    game_id: GameId
    version: Version | None
    """The version the sources advertise; ``None`` when their sentinel names none."""
    chunk_size: Annotated[int, msgspec.Meta(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)]
    files: Annotated[tuple[FileManifest, ...], msgspec.Meta(max_length=MAX_FILES_PER_GAME)]

    @property
    def sentinel(self) -> FileManifest | None:
        """The root ``version.ini`` entry (always present in a valid manifest)."""
        for file in self.files:
            if file.is_sentinel:
                return file
        return None

    @property
    def total_bytes(self) -> int:
        return sum(file.size for file in self.files)

    @property
    def chunk_count(self) -> int:
        return sum(len(file.chunks) for file in self.files)

    def by_path(self) -> dict[str, FileManifest]:
        return {file.path: file for file in self.files}


def chunk_size_for(total_bytes: int, largest: int = DEFAULT_CHUNK_SIZE) -> int:
    """The chunk size of a payload of ``total_bytes``: every peer hashes with it.

    The largest power of two that still cuts the payload into
    :data:`TARGET_CHUNKS` chunks, at least :data:`MIN_CHUNK_SIZE` and at most
    ``largest``. A function of the size alone, so every peer, cache and pin that
    hashes the same payload arrives at the same manifest.
    """
    if total_bytes < 0:
        raise ValueError(f"cannot choose a chunk size for {total_bytes} bytes")
    if not MIN_CHUNK_SIZE <= largest <= MAX_CHUNK_SIZE:
        raise ValueError(
            f"the largest chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE},"
            f" got {largest}"
        )
    size = MIN_CHUNK_SIZE
    while size * 2 <= largest and size * 2 * TARGET_CHUNKS <= total_bytes:
        size *= 2
    return size


def chunk_spans(size: int, chunk_size: int) -> tuple[tuple[int, int], ...]:
    """The ``(offset, length)`` of each chunk of a ``size``-byte file.

    An empty file has no chunks; the last chunk is shorter when ``chunk_size``
    does not divide ``size``.
    """
    if size < 0:
        raise ValueError(f"file size must not be negative, got {size}")
    if chunk_size <= 0:
        raise ValueError(f"chunk size must be positive, got {chunk_size}")
    return tuple((offset, min(chunk_size, size - offset)) for offset in range(0, size, chunk_size))


# --- canonical encoding and digests ---------------------------------------------------

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(GameManifest)


def encode_manifest(manifest: GameManifest) -> bytes:
    """The canonical MessagePack encoding: equal manifests give equal bytes."""
    return _ENCODER.encode(manifest)


def decode_manifest(data: bytes | bytearray | memoryview) -> GameManifest:
    """Decode and validate a manifest; :class:`ManifestError` for anything unusable."""
    manifest = decode_bounded(
        _DECODER, data, limit=MAX_MANIFEST_ENCODED_SIZE, what="manifest", error=ManifestError
    )
    validate_manifest(manifest)
    return manifest


def manifest_digest(manifest: GameManifest) -> str:
    """Hex BLAKE3 of the canonical encoding: compare manifests without walking them."""
    return blake3.blake3(encode_manifest(manifest)).hexdigest()


def file_digest(file: FileManifest) -> bytes:
    """BLAKE3 of one file entry's canonical encoding (path, size and chunk digests)."""
    return blake3.blake3(_ENCODER.encode(file)).digest()


# --- validation -------------------------------------------------------------------------

# Characters that separate paths, name drives or alternate data streams on Windows.
_FORBIDDEN_CHARS = frozenset("\\:")
# Names Windows maps to devices whatever the extension ("nul.txt" is the null device).
_WINDOWS_DEVICE_NAMES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{digit}" for digit in "123456789"}
    | {f"lpt{digit}" for digit in "123456789"}
)
_RESERVED_FOLDED = frozenset(name.casefold() for name in RESERVED_NAMES)


def check_relative_path(path: str) -> None:
    """Raise :class:`ManifestError` unless ``path`` is a safe payload path.

    Safe means: relative, POSIX separators, no empty, ``.`` or ``..`` component,
    no character that is a separator, drive or stream marker on Windows, no control
    character, no component Windows would rename (trailing dot or space) or map to a
    device, and a first component that is not a reserved game-root name (compared
    case-insensitively, because Windows would write ``LOCAL/x`` into ``local/``).
    """
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestError(f"unsafe path {path!r}: not valid UTF-8") from None
    if not path:
        raise ManifestError("unsafe path '': empty")
    if len(encoded) > MAX_PATH_BYTES:
        raise ManifestError(
            f"unsafe path {path[:64]!r}...: {len(encoded)} bytes exceeds {MAX_PATH_BYTES}"
        )
    if path.startswith("/"):
        raise ManifestError(f"unsafe path {path!r}: absolute")
    for char in path:
        if char in _FORBIDDEN_CHARS or _is_control(char):
            raise ManifestError(f"unsafe path {path!r}: forbidden character {char!r}")
    components = path.split("/")
    for component in components:
        _check_component(path, component)
    if components[0].casefold() in _RESERVED_FOLDED:
        raise ManifestError(f"unsafe path {path!r}: {components[0]!r} is reserved")


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _check_component(path: str, component: str) -> None:
    if component in {"", ".", ".."}:
        raise ManifestError(f"unsafe path {path!r}: component {component!r}")
    if len(component.encode("utf-8")) > MAX_COMPONENT_BYTES:
        raise ManifestError(
            f"unsafe path {path!r}: a component exceeds {MAX_COMPONENT_BYTES} bytes"
        )
    if component.endswith((".", " ")):
        raise ManifestError(f"unsafe path {path!r}: {component!r} ends with a dot or space")
    if component.split(".", 1)[0].rstrip(" ").casefold() in _WINDOWS_DEVICE_NAMES:
        raise ManifestError(f"unsafe path {path!r}: {component!r} is a Windows device name")


def validate_manifest(manifest: GameManifest) -> None:
    """Raise :class:`ManifestError` unless ``manifest`` follows every manifest rule.

    The rules: a catalog-shaped game id, a chunk size within bounds, at most
    :data:`MAX_FILES_PER_GAME` files and :data:`MAX_CHUNKS_PER_GAME` chunks, files
    strictly sorted by path (so no path repeats), safe paths, no path that is both a
    file and a folder, no two paths equal but for case, chunks that tile each file
    exactly at the manifest's chunk size with 32-byte digests, and a root
    ``version.ini`` no larger than ``MAX_VERSION_FILE_SIZE``.
    """
    where = f"manifest of {manifest.game_id!r}"
    if not is_valid_game_id(manifest.game_id):
        raise ManifestError(f"{where}: invalid game id")
    if manifest.version is not None and not 0 < len(manifest.version) <= MAX_VERSION_LENGTH:
        raise ManifestError(f"{where}: version must be 1 to {MAX_VERSION_LENGTH} characters")
    if not MIN_CHUNK_SIZE <= manifest.chunk_size <= MAX_CHUNK_SIZE:
        raise ManifestError(
            f"{where}: chunk size {manifest.chunk_size} is outside "
            f"[{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]"
        )
    if len(manifest.files) > MAX_FILES_PER_GAME:
        raise ManifestError(
            f"{where}: {len(manifest.files)} files exceed the limit of {MAX_FILES_PER_GAME}"
        )
    chunk_count = manifest.chunk_count
    if chunk_count > MAX_CHUNKS_PER_GAME:
        raise ManifestError(
            f"{where}: {chunk_count} chunks exceed the limit of {MAX_CHUNKS_PER_GAME}"
        )
    _check_order_and_collisions(where, manifest.files)
    for file in manifest.files:
        _check_file(where, file, manifest.chunk_size)
    sentinel = manifest.sentinel
    if sentinel is None:
        raise ManifestError(f"{where}: no root {VERSION_FILE}")
    if sentinel.size > MAX_VERSION_FILE_SIZE:
        raise ManifestError(
            f"{where}: {VERSION_FILE} of {sentinel.size} bytes exceeds {MAX_VERSION_FILE_SIZE}"
        )


def _check_order_and_collisions(where: str, files: tuple[FileManifest, ...]) -> None:
    previous: str | None = None
    folded: dict[str, str] = {}
    for file in files:
        if previous is not None and file.path == previous:
            raise ManifestError(f"{where}: path repeats: {file.path!r}")
        if previous is not None and file.path < previous:
            raise ManifestError(f"{where}: {file.path!r} is listed after {previous!r}")
        check_relative_path(file.path)
        key = file.path.casefold()
        if key in folded:
            raise ManifestError(f"{where}: {file.path!r} and {folded[key]!r} differ only by case")
        folded[key] = file.path
        previous = file.path
    for file in files:
        parts = file.path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth]).casefold()
            if folder in folded:
                raise ManifestError(
                    f"{where}: {folded[folder]!r} is a file but {file.path!r} needs it as a folder"
                )


def _check_file(where: str, file: FileManifest, chunk_size: int) -> None:
    if not 0 <= file.size <= MAX_FILE_SIZE:
        raise ManifestError(f"{where}: {file.path!r} has size {file.size} out of bounds")
    expected = chunk_spans(file.size, chunk_size)
    actual = tuple((chunk.offset, chunk.length) for chunk in file.chunks)
    if actual != expected:
        raise ManifestError(
            f"{where}: chunks of {file.path!r} do not tile {file.size} bytes at chunk size "
            f"{chunk_size} (expected {len(expected)} chunks, got {len(actual)}"
            f"{_first_difference(expected, actual)})"
        )
    for chunk in file.chunks:
        if len(chunk.blake3) != BLAKE3_DIGEST_SIZE:
            raise ManifestError(
                f"{where}: chunk of {file.path!r} at offset {chunk.offset} has a "
                f"{len(chunk.blake3)}-byte digest, expected {BLAKE3_DIGEST_SIZE}"
            )


def _first_difference(
    expected: tuple[tuple[int, int], ...], actual: tuple[tuple[int, int], ...]
) -> str:
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return f"; chunk {index} is {got}, expected {want}"
    return ""
