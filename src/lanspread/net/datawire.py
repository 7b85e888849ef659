"""The data-plane wire format: a sans-IO codec for chunk requests and their answers.

Theory of operation
-------------------
A data connection is plain TCP to the data port a ``Ticket`` named. Nothing on
it is trusted: every chunk is verified against the BLAKE3 digest of the
manifest that came over the authenticated control channel, so this format
only has to be unambiguous and bounded.

::

    client                                                     data server
      |-- hello: "LSPD", u32 version, 32-byte ticket token -------->|  within ADMISSION_TIMEOUT
      |<- header(status, 0) ---------------------------------------|  OK, or a refusal + close
      |-- request: u32 n, then n bytes: u64 offset, u32 length, path (UTF-8)
      |-- request ...                                               |  several in flight
      |<- header(OK, length) + exactly length raw bytes ------------|  answered in order,
      |<- header(refusal status, 0) --------------------------------|  one answer per request

A **header** is 8 bytes: status (u8), three zero bytes, length (u32, big-endian).
A refusal of one request (serve gate, bad range, file shorter than asked)
carries no bytes and the connection stays usable. A protocol violation (a frame
out of bounds, a malformed request, a bad hello) closes the connection.

The game is the ticket's; a request names only a path relative to the game root,
which the server passes through the serve gate like any other.

Decoding fails only with :class:`~lanspread.errors.ProtocolError` (or its
subclasses :class:`~lanspread.errors.FrameTooLarge` and
:class:`~lanspread.errors.VersionMismatch`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from lanspread.core.servegate import MAX_CHUNK_LENGTH, MAX_RELATIVE_PATH_LENGTH
from lanspread.core.tickets import TOKEN_SIZE
from lanspread.errors import FrameTooLarge, ProtocolError, VersionMismatch

DATA_MAGIC: Final = b"LSPD"
DATA_PROTOCOL_VERSION: Final = 1

_HELLO = struct.Struct(f">4sI{TOKEN_SIZE}s")
HELLO_SIZE: Final = _HELLO.size
_HEADER = struct.Struct(">B3sI")
HEADER_SIZE: Final = _HEADER.size
_FRAME_LENGTH = struct.Struct(">I")
FRAME_LENGTH_SIZE: Final = _FRAME_LENGTH.size
_REQUEST_FIXED = struct.Struct(">QI")

# The longest path the serve gate accepts, at 4 UTF-8 bytes per character.
MAX_PATH_BYTES: Final = MAX_RELATIVE_PATH_LENGTH * 4
# Offset, length and the longest path: a larger frame cannot be a valid request, so
# its header alone closes the connection and nothing of it is buffered.
MAX_REQUEST_FRAME_SIZE: Final = _REQUEST_FIXED.size + MAX_PATH_BYTES
# A file offset the gate can serve; chunks of the largest manifest file stay below.
MAX_OFFSET: Final = 2**63 - 1
_RESERVED: Final = b"\x00\x00\x00"


class DataStatus(enum.IntEnum):
    """The status byte of a header."""

    OK = 0
    """Admitted, or: exactly ``length`` bytes of the chunk follow."""
    GAME_NOT_FOUND = 1
    """The serve gate refused (not served, unsafe path, missing file...)."""
    OPERATION_IN_PROGRESS = 2
    """The game has an active operation on the server right now; retry later."""
    BAD_REQUEST = 3
    """The chunk lies outside the file or is longer than MAX_CHUNK_LENGTH."""
    SHORT_FILE = 4
    """The file is shorter than the manifest says (it changed since it was hashed)."""
    INTERNAL_ERROR = 5
    """The server failed to read the file (its log says why)."""
    CHUNK_NOT_AVAILABLE = 6
    """A partial copy does not hold every chunk of the range verified; it may later."""
    ELSEWHERE = 7
    """A complete source steers the chunk away: other peers hold it or are getting it
    now; ask them, and this source again only after a short back-off."""
    TICKET_UNKNOWN = 16
    """Admission: the ticket was never issued, already used or revoked."""
    TICKET_EXPIRED = 17
    """Admission: the ticket's time to live has passed."""
    VERSION_MISMATCH = 18
    """Admission: the client speaks another data protocol version."""
    TOO_MANY_CONNECTIONS = 19
    """Admission: the peer (or everyone) has the most data connections allowed."""

    @property
    def is_admission_refusal(self) -> bool:
        return self >= DataStatus.TICKET_UNKNOWN


@dataclass(frozen=True, slots=True)
class ChunkRequest:
    path: str
    """Relative to the ticket's game root; the serve gate judges it."""
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Header:
    status: DataStatus
    length: int
    """Bytes that follow: the chunk length for OK, zero for everything else."""


# --- hello -------------------------------------------------------------------------------


def encode_hello(token: bytes, version: int = DATA_PROTOCOL_VERSION) -> bytes:
    """What a client sends first (``version`` is a parameter only for tests)."""
    if len(token) != TOKEN_SIZE:
        raise ValueError(f"a ticket token is {TOKEN_SIZE} bytes, got {len(token)}")
    return _HELLO.pack(DATA_MAGIC, version, token)


def decode_hello(data: bytes) -> bytes:
    """The ticket token of a client's hello; raises for a foreign or other-version hello."""
    if len(data) != HELLO_SIZE:
        raise ProtocolError(f"data hello must be {HELLO_SIZE} bytes, got {len(data)}")
    magic, version, token = _HELLO.unpack(data)
    if magic != DATA_MAGIC:
        raise ProtocolError(f"not a lanspread data connection: it starts with {magic!r}")
    if version != DATA_PROTOCOL_VERSION:
        raise VersionMismatch(
            f"the client speaks data protocol version {version}, "
            f"this peer speaks version {DATA_PROTOCOL_VERSION}"
        )
    return bytes(token)


# --- headers -----------------------------------------------------------------------------


def encode_header(status: DataStatus, length: int = 0) -> bytes:
    if status is not DataStatus.OK and length:
        raise ValueError("only an OK header is followed by bytes")
    return _HEADER.pack(status, _RESERVED, length)


def decode_header(data: bytes | bytearray | memoryview) -> Header:
    """Decode one 8-byte header; an unknown status or a refusal with bytes is a violation."""
    if len(data) != HEADER_SIZE:
        raise ProtocolError(f"a data header is {HEADER_SIZE} bytes, got {len(data)}")
    raw_status, reserved, length = _HEADER.unpack(data)
    if reserved != _RESERVED:
        raise ProtocolError(f"data header has non-zero reserved bytes {reserved!r}")
    try:
        status = DataStatus(raw_status)
    except ValueError:
        raise ProtocolError(f"data header has unknown status {raw_status}") from None
    if status is not DataStatus.OK and length:
        raise ProtocolError(f"a {status.name} header announced {length} bytes")
    return Header(status, length)


# --- requests ----------------------------------------------------------------------------


def encode_request(request: ChunkRequest) -> bytes:
    """One length-prefixed request frame; raises ``ValueError`` for what cannot be sent."""
    path = request.path.encode("utf-8")
    if not 0 <= request.offset <= MAX_OFFSET or not 0 <= request.length <= MAX_CHUNK_LENGTH:
        raise ValueError(f"chunk request out of bounds: {request}")
    if not path or len(path) > MAX_PATH_BYTES:
        raise ValueError(f"chunk request path must be 1 to {MAX_PATH_BYTES} bytes")
    payload = _REQUEST_FIXED.pack(request.offset, request.length) + path
    return _FRAME_LENGTH.pack(len(payload)) + payload


class RequestDecoder:
    """Sans-IO: bytes in, :class:`ChunkRequest` out, at most one partial frame buffered.

    After it has raised once the stream is unusable and every later call raises again.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._failure: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[ChunkRequest]:
        """Add received bytes; return every request they complete, in order."""
        if self._failure is not None:
            raise ProtocolError(f"the request stream failed earlier: {self._failure}")
        self._buffer += data
        requests: list[ChunkRequest] = []
        try:
            while (request := self._next()) is not None:
                requests.append(request)
        except ProtocolError as exc:
            self._failure = exc
            self._buffer.clear()
            raise
        return requests

    def _next(self) -> ChunkRequest | None:
        if len(self._buffer) < FRAME_LENGTH_SIZE:
            return None
        (size,) = _FRAME_LENGTH.unpack_from(self._buffer)
        if size > MAX_REQUEST_FRAME_SIZE:
            raise FrameTooLarge(
                f"request frame of {size} bytes exceeds the maximum of {MAX_REQUEST_FRAME_SIZE}"
            )
        if size <= _REQUEST_FIXED.size:
            raise ProtocolError(f"request frame of {size} bytes has no path")
        end = FRAME_LENGTH_SIZE + size
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[FRAME_LENGTH_SIZE:end])
        del self._buffer[:end]
        return _decode_request(payload)


def _decode_request(payload: bytes) -> ChunkRequest:
    offset, length = _REQUEST_FIXED.unpack_from(payload)
    if offset > MAX_OFFSET:
        raise ProtocolError(f"request offset {offset} exceeds {MAX_OFFSET}")
    try:
        path = payload[_REQUEST_FIXED.size :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"request path is not UTF-8 ({exc.reason})") from None
    return ChunkRequest(path, offset, length)
