"""The serve gate: the one rule set every peer request that touches files passes.

Theory of operation
-------------------
A request names a game and, for file and chunk requests, a path relative to the
game root. The gate answers in four steps, each pure, each returning a
:class:`Refusal` or ``None``:

1. :func:`check_game`: the id is a catalog id, the game has no active operation
   and its root ``version.ini`` sentinel exists.
2. :func:`check_relative_path`: the path's syntax. It is relative, POSIX
   separated, has no ``.``/``..``/empty components, no character that another
   platform reads as a separator, drive, stream or device, is bounded in length
   and depth, and does not start with ``local`` or any other reserved name.
3. :func:`check_resolved`: what only the filesystem can tell, gathered by the
   shell (``lanspread.seeding.serving``): every component is a real directory and
   the last one a regular file, with **no symlink anywhere**, and the file's real
   path lies inside the game root. Symlinks inside the payload are never served,
   not even ones that point inside the root: following none is the simplest rule
   that is always safe, and archives extracted from ``.eti`` files never need them.
4. :func:`check_chunk_range`: a chunk lies within the file and is bounded.

Partial copies
--------------
A game being downloaded has no ``version.ini`` and an active operation, so the
steps above refuse it. It is served only on a data connection whose ticket names
a manifest digest, and only what the runtime's
:class:`~lanspread.core.partial.PartialProvider` vouches for at that moment:

1. :func:`check_partial_game` (when the ticket is asked for, and again before each
   request): a catalog id, and the provider reports verified chunks of the game at
   exactly the digest the ticket names. Nothing else of the game state counts:
   the provider answers only while the download runs, and stops the moment a
   cancel, discard or failure begins.
2. :func:`check_partial_chunk` (each request, before any disk access): the path
   syntax as in step 2 above, the path is a file of that manifest and not the
   sentinel, the range lies inside the manifest's file, and **every chunk the
   range touches** is verified and durable. A range that spans a held chunk and
   a missing one is refused whole.
3. Steps 2 and 3 above (path syntax, no symlink, inside the root) on the disk,
   and the opened file is at least as long as the range.

So a partial copy never serves a byte outside its verified chunks, never a
sentinel, never a file its manifest does not list, and never across manifests.

Which error a requester sees
----------------------------
Every refusal maps to :attr:`ServeErrorCode.GAME_NOT_FOUND`, as in the original,
so that a requester learns nothing about files a peer does not serve (``local/``,
reserved names, symlink targets, anything outside the root), with two exceptions:

* an active operation answers :attr:`ServeErrorCode.OPERATION_IN_PROGRESS`. That
  only says "busy right now": it exposes no file, and it lets a downloader keep
  the peer as a source to retry later instead of dropping it as if the game had
  gone (a peer updating a game keeps advertising its previous version).
* a bad chunk range answers :attr:`ServeErrorCode.BAD_REQUEST`: the file is
  served, the request is wrong (a stale manifest or a broken planner).
* a chunk a partial copy does not hold (yet) answers
  :attr:`ServeErrorCode.CHUNK_NOT_AVAILABLE`: the requester's view of this peer's
  bitfield is behind or wrong, the peer stays a source for the chunks it has. A
  partial copy that is gone or at another manifest answers ``GAME_NOT_FOUND``.

The code values are the wire's ``ErrorCode`` spellings, so the network shell maps
one onto the other by value.
"""

from __future__ import annotations

import enum
from collections.abc import Container
from dataclasses import dataclass
from pathlib import PurePath
from typing import Protocol, TypeAlias

from lanspread.core.catalog import is_valid_game_id
from lanspread.core.gameroot import RESERVED_NAMES, VERSION_FILE
from lanspread.core.partial import VerifiedChunks
from lanspread.core.refusal import Refused

# Windows MAX_PATH: a longer payload path could not be written on a Windows peer.
# The wire's RelativePath has the same bound, so every path served can be listed.
MAX_RELATIVE_PATH_LENGTH = 260
# NAME_MAX on ext4 and the NTFS component limit: a longer name cannot exist on disk.
MAX_COMPONENT_BYTES = 255
# Bounds the per-component open walk; real payload nests one or two folders deep.
MAX_PATH_DEPTH = 16
# One chunk request may read at most this much. Twice the original's 128 MiB chunk
# so the chunk planner can tune its size, yet one request never holds a transfer
# slot for a whole multi-gigabyte archive.
MAX_CHUNK_LENGTH = 256 * 1024 * 1024

# Characters that Windows reads as separators, drives, streams or wildcards; a path
# that holds one cannot name the same file on every peer.
_WINDOWS_FORBIDDEN_CHARS = frozenset('<>:"|?*\\')
# Windows opens these devices whatever folder or extension the name carries.
_WINDOWS_DEVICE_NAMES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{digit}" for digit in range(1, 10)}
    | {f"lpt{digit}" for digit in range(1, 10)}
)
_FOLDED_RESERVED_NAMES = frozenset(name.casefold() for name in RESERVED_NAMES)


class ServeErrorCode(enum.Enum):
    """The error a requester is answered with (values are the wire spelling)."""

    GAME_NOT_FOUND = "GameNotFound"
    OPERATION_IN_PROGRESS = "OperationInProgress"
    BAD_REQUEST = "BadRequest"
    CHUNK_NOT_AVAILABLE = "ChunkNotAvailable"


class RefusalReason(enum.Enum):
    """Why the gate refused; logged locally, never sent to the requester."""

    NOT_IN_CATALOG = "not-in-catalog"
    WITHHELD = "withheld"
    """Installing this copy found a damaged archive: not served until it is verified again."""
    OPERATION_ACTIVE = "operation-active"
    NOT_DOWNLOADED = "not-downloaded"
    UNSAFE_PATH = "unsafe-path"
    PATH_TOO_LONG = "path-too-long"
    RESERVED_PATH = "reserved-path"
    SYMLINK = "symlink"
    SPECIAL_FILE = "special-file"
    NOT_A_REGULAR_FILE = "not-a-regular-file"
    FILE_NOT_FOUND = "file-not-found"
    OUTSIDE_ROOT = "outside-root"
    CHUNK_OUT_OF_RANGE = "chunk-out-of-range"
    CHUNK_TOO_LARGE = "chunk-too-large"
    NO_PARTIAL = "no-partial"
    """The ticket names a manifest but no download of the game runs here now."""
    MANIFEST_MISMATCH = "manifest-mismatch"
    """The partial copy here is of another manifest than the ticket names."""
    NOT_IN_MANIFEST = "not-in-manifest"
    """The path is not a file of the partial copy's manifest."""
    CHUNK_NOT_VERIFIED = "chunk-not-verified"
    """A chunk the range touches is not verified and durable here (or is the sentinel's)."""

    @property
    def code(self) -> ServeErrorCode:
        """What the requester is told: a reason not tabled is a game not found."""
        return _CODE_FOR_REASON.get(self, ServeErrorCode.GAME_NOT_FOUND)


_CODE_FOR_REASON = {
    RefusalReason.OPERATION_ACTIVE: ServeErrorCode.OPERATION_IN_PROGRESS,
    RefusalReason.CHUNK_OUT_OF_RANGE: ServeErrorCode.BAD_REQUEST,
    RefusalReason.CHUNK_TOO_LARGE: ServeErrorCode.BAD_REQUEST,
    RefusalReason.CHUNK_NOT_VERIFIED: ServeErrorCode.CHUNK_NOT_AVAILABLE,
}


class ByteRange(Protocol):
    """A requested range of a payload file (the data plane's ``ChunkRequest`` fits)."""

    @property
    def path(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...


Refusal: TypeAlias = Refused[RefusalReason]
"""The gate's answer when it refuses; ``detail`` says what exactly, for the local log."""


@dataclass(frozen=True, slots=True)
class GateState:
    """The runtime facts the gate needs besides the disk."""

    catalog_ids: Container[str]
    active_operations: Container[str]
    """Ids of games with an active operation (an ``OperationTable.snapshot()`` fits)."""
    withheld: Container[str] = frozenset()
    """Ids of games whose copy here failed to install on a damaged archive."""


def check_game_request(
    game_id: str,
    *,
    catalog_ids: Container[str],
    active_operations: Container[str],
    withheld: Container[str] = frozenset(),
) -> Refusal | None:
    """The part of :func:`check_game` that needs no disk; the shell runs it first."""
    if not is_valid_game_id(game_id) or game_id not in catalog_ids:
        return Refused(RefusalReason.NOT_IN_CATALOG, f"{game_id!r} is not a catalog game")
    if game_id in withheld:
        return Refused(
            RefusalReason.WITHHELD, f"{game_id} failed to install: an archive is damaged"
        )
    if game_id in active_operations:
        return Refused(RefusalReason.OPERATION_ACTIVE, f"{game_id} has an active operation")
    return None


def check_game(
    game_id: str,
    *,
    catalog_ids: Container[str],
    active_operations: Container[str],
    sentinel_present: bool,
    withheld: Container[str] = frozenset(),
) -> Refusal | None:
    refusal = check_game_request(
        game_id, catalog_ids=catalog_ids, active_operations=active_operations, withheld=withheld
    )
    if refusal is None and not sentinel_present:
        refusal = Refused(RefusalReason.NOT_DOWNLOADED, f"{game_id} has no root version.ini")
    return refusal


def check_relative_path(path: str) -> Refusal | None:
    """Refuse any path that could leave the payload; never raises."""
    if len(path) > MAX_RELATIVE_PATH_LENGTH:
        return Refused(
            RefusalReason.PATH_TOO_LONG,
            f"path of {len(path)} characters exceeds {MAX_RELATIVE_PATH_LENGTH}",
        )
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return Refused(RefusalReason.UNSAFE_PATH, f"{path!r} is not valid Unicode")
    if not path or path.startswith("/"):
        return Refused(RefusalReason.UNSAFE_PATH, f"{path!r} is not a relative path")
    components = path.split("/")
    if len(components) > MAX_PATH_DEPTH:
        return Refused(
            RefusalReason.PATH_TOO_LONG,
            f"path of {len(components)} components exceeds {MAX_PATH_DEPTH}",
        )
    for component in components:
        refusal = _check_component(component)
        if refusal is not None:
            return refusal
    if is_reserved_component(components[0]):
        return Refused(RefusalReason.RESERVED_PATH, f"{path!r} is under reserved {components[0]!r}")
    return None


def split_relative_path(path: str) -> tuple[str, ...]:
    """The components of a path :func:`check_relative_path` accepted."""
    return tuple(path.split("/"))


def is_reserved_component(name: str) -> bool:
    """True for a root child name that is, or on Windows aliases, a reserved name."""
    return name.casefold() in _FOLDED_RESERVED_NAMES


def _check_component(component: str) -> Refusal | None:
    if component in {"", ".", ".."}:
        return Refused(RefusalReason.UNSAFE_PATH, f"component {component!r} is not allowed")
    if len(component.encode("utf-8")) > MAX_COMPONENT_BYTES:
        return Refused(
            RefusalReason.PATH_TOO_LONG, f"a component is longer than {MAX_COMPONENT_BYTES} bytes"
        )
    bad = next((ch for ch in component if ch in _WINDOWS_FORBIDDEN_CHARS or ord(ch) < 32), None)
    if bad is not None:
        return Refused(RefusalReason.UNSAFE_PATH, f"component {component!r} holds {bad!r}")
    if component.endswith((".", " ")):
        # Windows drops trailing dots and spaces: "local." would open "local".
        return Refused(
            RefusalReason.UNSAFE_PATH, f"component {component!r} ends with a dot or space"
        )
    if component.split(".", 1)[0].rstrip(" ").casefold() in _WINDOWS_DEVICE_NAMES:
        return Refused(RefusalReason.UNSAFE_PATH, f"component {component!r} names a device")
    return None


class NodeKind(enum.Enum):
    """What ``lstat`` (never following links) says one path component is."""

    DIRECTORY = "directory"
    REGULAR_FILE = "regular-file"
    SYMLINK = "symlink"
    """A symlink, or on Windows any reparse point (junctions included)."""
    SPECIAL = "special"
    """A device, FIFO or socket."""
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class ResolvedPathFacts:
    """What the shell saw while walking a checked path down from the game root."""

    root: NodeKind
    """The game root ``<game_dir>/<game_id>`` itself."""
    components: tuple[NodeKind, ...]
    """One kind per path component from the root down; the walk stops at the first
    component that is not a directory, so this may be shorter than ``depth``."""
    depth: int
    """How many components the requested path has."""
    root_real_path: PurePath | None
    """The real path of the opened game root; ``None`` when not reached."""
    real_path: PurePath | None
    """The real path of the opened file; ``None`` when not reached."""


def check_resolved(facts: ResolvedPathFacts) -> Refusal | None:
    refusal = check_game_root(facts.root)
    if refusal is not None:
        return refusal
    if facts.depth < 1:
        return Refused(RefusalReason.UNSAFE_PATH, "the path names the game root itself")
    for index in range(facts.depth):
        kind = facts.components[index] if index < len(facts.components) else NodeKind.MISSING
        refusal = _check_component_kind(kind, final=index == facts.depth - 1, index=index)
        if refusal is not None:
            return refusal
    return _check_containment(facts.root_real_path, facts.real_path)


def check_game_root(kind: NodeKind) -> Refusal | None:
    """The game root must be a real directory: a symlinked root could point anywhere."""
    if kind is NodeKind.DIRECTORY:
        return None
    if kind is NodeKind.SYMLINK:
        return Refused(RefusalReason.SYMLINK, "the game root is a symlink")
    return Refused(RefusalReason.NOT_DOWNLOADED, f"the game root is {kind.value}")


def _check_component_kind(kind: NodeKind, *, final: bool, index: int) -> Refusal | None:
    where = f"component {index + 1}"
    if kind is NodeKind.SYMLINK:
        return Refused(RefusalReason.SYMLINK, f"{where} is a symlink")
    if kind is NodeKind.SPECIAL:
        return Refused(RefusalReason.SPECIAL_FILE, f"{where} is a device, FIFO or socket")
    if kind is NodeKind.MISSING:
        return Refused(RefusalReason.FILE_NOT_FOUND, f"{where} does not exist")
    if final and kind is NodeKind.DIRECTORY:
        return Refused(RefusalReason.NOT_A_REGULAR_FILE, f"{where} is a directory")
    if not final and kind is NodeKind.REGULAR_FILE:
        return Refused(RefusalReason.FILE_NOT_FOUND, f"{where} is a file, not a directory")
    return None


def _check_containment(root: PurePath | None, real: PurePath | None) -> Refusal | None:
    if root is None or real is None or real == root or not real.is_relative_to(root):
        return Refused(RefusalReason.OUTSIDE_ROOT, f"{real} is not inside the game root {root}")
    first = real.relative_to(root).parts[0]
    if is_reserved_component(first):
        # Catches aliases only the filesystem resolves (Windows 8.3 short names).
        return Refused(RefusalReason.RESERVED_PATH, f"{real} resolves under reserved {first!r}")
    return None


def check_chunk_range(
    offset: int, length: int, file_size: int, max_length: int = MAX_CHUNK_LENGTH
) -> Refusal | None:
    """A chunk must lie inside the file; an empty chunk at any offset up to the end is harmless."""
    if length > max_length:
        return Refused(
            RefusalReason.CHUNK_TOO_LARGE, f"chunk of {length} bytes exceeds {max_length}"
        )
    if offset < 0 or length < 0 or offset + length > file_size:
        return Refused(
            RefusalReason.CHUNK_OUT_OF_RANGE,
            f"chunk at {offset} of {length} bytes is outside a file of {file_size} bytes",
        )
    return None


# --- partial copies -----------------------------------------------------------------------


def check_partial_game(
    game_id: str,
    manifest_digest: str,
    verified: VerifiedChunks | None,
    *,
    catalog_ids: Container[str],
) -> Refusal | None:
    """A partial copy of ``game_id`` at ``manifest_digest`` is served here right now.

    ``verified`` is the provider's answer for ``game_id`` at this moment.
    """
    if not is_valid_game_id(game_id) or game_id not in catalog_ids:
        return Refused(RefusalReason.NOT_IN_CATALOG, f"{game_id!r} is not a catalog game")
    if verified is None:
        return Refused(RefusalReason.NO_PARTIAL, f"no download of {game_id} runs here")
    if verified.manifest_digest != manifest_digest:
        return Refused(
            RefusalReason.MANIFEST_MISMATCH,
            f"{game_id} is downloading manifest {verified.manifest_digest}, not {manifest_digest}",
        )
    if verified.durable.chunk_count != verified.layout.chunk_count:
        return Refused(
            RefusalReason.NO_PARTIAL,
            f"{game_id}: the durable set covers {verified.durable.chunk_count} chunks, "
            f"the manifest has {verified.layout.chunk_count}",
        )
    return None


def check_partial_chunk(
    verified: VerifiedChunks, path: str, offset: int, length: int
) -> Refusal | None:
    """Serve ``length`` bytes of ``path`` at ``offset`` only from verified, durable chunks."""
    refusal = check_relative_path(path)
    if refusal is not None:
        return refusal
    file = verified.layout.file(path)
    if file is None:
        return Refused(RefusalReason.NOT_IN_MANIFEST, f"{path!r} is not a file of the manifest")
    if file.sentinel or path == VERSION_FILE:
        return Refused(
            RefusalReason.CHUNK_NOT_VERIFIED,
            f"the {VERSION_FILE} of a partial copy is never served",
        )
    if length > MAX_CHUNK_LENGTH:
        return Refused(
            RefusalReason.CHUNK_TOO_LARGE, f"chunk of {length} bytes exceeds {MAX_CHUNK_LENGTH}"
        )
    touched = verified.layout.touched(path, offset, length)
    if touched is None:
        return Refused(
            RefusalReason.CHUNK_OUT_OF_RANGE,
            f"chunk at {offset} of {length} bytes is outside {path!r} of {file.size} bytes",
        )
    first, last = touched
    if not verified.durable.covers(first, last):
        return Refused(
            RefusalReason.CHUNK_NOT_VERIFIED,
            f"{path!r} at {offset} of {length} bytes touches chunks {first}-{last}, "
            "not all verified and durable",
        )
    return None


def check_partial_request(
    game_id: str,
    manifest_digest: str,
    verified: VerifiedChunks | None,
    request: ByteRange,
    *,
    catalog_ids: Container[str],
) -> Refusal | None:
    """:func:`check_partial_game`, then :func:`check_partial_chunk`: one data request."""
    refusal = check_partial_game(game_id, manifest_digest, verified, catalog_ids=catalog_ids)
    if refusal is not None or verified is None:
        return refusal
    return check_partial_chunk(verified, request.path, request.offset, request.length)
