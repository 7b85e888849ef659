"""The wire protocol: preamble, message types and the sans-IO frame codec.

Theory of operation
-------------------
After the TLS 1.3 handshake both sides send the 8-byte **preamble** at once,
without waiting: the magic ``b"LSPR"`` and ``PROTOCOL_VERSION`` as a big-endian
u32. Its layout never changes, so a peer of any other version, whatever its
message format, learns the mismatch from it (:func:`check_preamble` raises
:class:`VersionMismatch` naming both versions) and the connection is closed.

Everything after the preamble is **frames**: a big-endian u32 payload length,
then that many bytes of MessagePack holding one :data:`Message` (a msgspec
tagged union, the tag in the ``"type"`` field). Lengths above
:data:`MAX_FRAME_SIZE` or of zero are refused before any payload is buffered.

::

    dialer (client)                                     listener (server)
      |==== TCP connect + TLS 1.3 (server cert = server key) ===>|
      |   client pins: peer id from the certificate == expected  |
      |<============== preamble (magic, version) ================|  both sent at
      |=============== preamble (magic, version) ===============>|  once, both checked
      |<------- Challenge(version, nonce, server peer id) -------|
      |-- Hello(version, peer id, public key, proof, announce) ->|  proof = signature over
      |                                                          |  hello_proof_payload()
      |<------------ HelloAck(version, peer id, announce) -------|  or ErrorResponse + close
      |------------- RequestFrame(id, request) ----------------->|  several in flight,
      |<------------ ResponseFrame(id, response) ---------------|  answered in any order

Requests travel only from dialer to listener. Each :class:`RequestFrame` carries
an id the dialer chose; the listener answers with a :class:`ResponseFrame` with the
same id. A new request kind is one new struct in :data:`Request`, its answers in
:data:`Response` and one row in :data:`RESPONSES`; nothing else changes.

Decoding fails only with :class:`ProtocolError` or :class:`FrameTooLarge`.
Encoding trusts the caller; the receiving peer validates every field.
"""

from __future__ import annotations

import enum
import struct
from typing import Annotated, Final, TypeAlias

import msgspec

from lanspread.core.bitfield import ManifestDigest
from lanspread.core.exchange import MAX_SHARED_PEERS
from lanspread.core.library import (
    GameId,
    LibraryDelta,
    LibrarySnapshot,
)
from lanspread.core.manifest import MAX_MANIFEST_ENCODED_SIZE, GameManifest
from lanspread.core.partial import HaveDelta
from lanspread.core.party import MAX_SERIAL, SignedCatalog
from lanspread.core.tickets import TICKET_TTL, TOKEN_SIZE
from lanspread.errors import FrameTooLarge, ProtocolError, VersionMismatch

PROTOCOL_VERSION: Final = 4

PREAMBLE_MAGIC: Final = b"LSPR"
_PREAMBLE = struct.Struct(">4sI")
PREAMBLE_SIZE: Final = _PREAMBLE.size

_FRAME_HEADER = struct.Struct(">I")
FRAME_HEADER_SIZE: Final = _FRAME_HEADER.size

# The largest legitimate message is a ManifestResponse carrying a GameManifest at
# every manifest limit: core/manifest.py bounds its canonical encoding by
# MAX_MANIFEST_ENCODED_SIZE (16 MiB; tests/core/test_manifest.py encodes the worst
# case, ~14 MB) and the envelope around it (ResponseFrame tag, id, body tag, field
# name) is under 100 bytes; FRAME_ENVELOPE_SIZE leaves ample room for it. The next
# largest, a Hello or HelloAck with a LibrarySnapshot of MAX_LIBRARY_GAMES games, is
# under 4 MB (391 bytes per worst-case GameSummary x 10,000 plus under 2 KB of keys,
# proof, name, host and digest; the MAX_PARTIAL_GAMES partial games add under 9 KB
# each, a bitfield of at most 8 KiB and a manifest digest). Splitting a manifest over
# several frames would keep frames small but buys nothing: a requester needs the
# whole manifest before it can plan, so it buffers that much either way. Only bytes
# that actually arrive are held. (A listener only ever receives Hellos and small
# requests; FramedStream takes one bound for both directions today, so it accepts
# this size from dialers too.)
# tests/net/test_wire.py encodes both worst cases.
FRAME_ENVELOPE_SIZE: Final = 64 * 1024
MAX_FRAME_SIZE: Final = MAX_MANIFEST_ENCODED_SIZE + FRAME_ENVELOPE_SIZE
# The largest frame of a handshake (Challenge, Hello, HelloAck, ErrorResponse): the
# worst-case Hello above is under 3.95 MB. Until the Hello has proven who is
# talking, nothing larger is buffered, so a stranger pins at most this much per
# pending handshake instead of MAX_FRAME_SIZE.
MAX_HANDSHAKE_FRAME_SIZE: Final = 4 * 1024 * 1024

NONCE_SIZE: Final = 32
"""Bytes of challenge nonce: 256 random bits never repeat."""
PUBLIC_KEY_SIZE: Final = 32
"""Bytes of a raw Ed25519 public key."""
SIGNATURE_SIZE: Final = 64
"""Bytes of an Ed25519 signature."""
PEER_ID_LENGTH: Final = 64
"""Hex characters of a peer id (SHA-256 of the public key, see ``identity``)."""
# Shown on a game card and in peer lists; longer names are clutter, not identity.
MAX_DISPLAY_NAME_LENGTH: Final = 64
# The longest DNS name; any IPv4 or IPv6 literal (even with a zone) is shorter.
MAX_HOST_LENGTH: Final = 253
# Enough for a sentence naming a game, a path and a cause; error text is not a channel.
MAX_ERROR_MESSAGE_LENGTH: Final = 1024
MAX_REQUEST_ID: Final = 2**32 - 1
"""Request ids are u32; the dialer wraps around and skips ids still in flight."""
# Carried in ResyncRequired; the reason is for logs only.
MAX_REASON_LENGTH: Final = 256

PeerId = Annotated[str, msgspec.Meta(pattern=rf"^[0-9a-f]{{{PEER_ID_LENGTH}}}$")]
ProtocolVersion = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
Nonce = Annotated[bytes, msgspec.Meta(min_length=NONCE_SIZE, max_length=NONCE_SIZE)]
PublicKey = Annotated[bytes, msgspec.Meta(min_length=PUBLIC_KEY_SIZE, max_length=PUBLIC_KEY_SIZE)]
Signature = Annotated[bytes, msgspec.Meta(min_length=SIGNATURE_SIZE, max_length=SIGNATURE_SIZE)]
MEMBERSHIP_SIZE: Final = 32
"""Bytes of a party membership proof (keyed BLAKE2b, ``net/handshake``)."""
Membership = Annotated[bytes, msgspec.Meta(max_length=MEMBERSHIP_SIZE)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_DISPLAY_NAME_LENGTH)]
Host = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HOST_LENGTH)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65_535)]
RequestId = Annotated[int, msgspec.Meta(ge=0, le=MAX_REQUEST_ID)]
Revision = Annotated[int, msgspec.Meta(ge=0)]


class ErrorCode(enum.StrEnum):
    """Why a peer refused a handshake or a request."""

    GAME_NOT_FOUND = "GameNotFound"
    """The game is not in the catalog, not downloaded here or not servable now."""
    OPERATION_IN_PROGRESS = "OperationInProgress"
    """The game has an active operation on the serving peer."""
    INTERNAL_PEER_ERROR = "InternalPeerError"
    """The serving peer failed while handling the request (its log says why)."""
    VERSION_MISMATCH = "VersionMismatch"
    """The Hello declared another protocol version."""
    BAD_REQUEST = "BadRequest"
    """A malformed, oversized, unknown or out-of-place frame; the connection closes."""
    UNAUTHORIZED = "Unauthorized"
    """The Hello did not prove the claimed peer id."""
    NOT_READY = "NotReady"
    """The game is servable but its manifest is still being hashed: ask again later."""
    BUSY = "Busy"
    """The peer has no room for another connection from this address now."""
    CHUNK_NOT_AVAILABLE = "ChunkNotAvailable"
    """A partial copy does not hold that chunk verified (the serve gate's code; the
    data plane answers it as ``DataStatus.CHUNK_NOT_AVAILABLE``)."""


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A value nested inside messages."""


class _Message(_Struct, frozen=True, tag=True, tag_field="type"):
    """A frame's top-level value or a request/response body; tagged by class name."""


class PeerHint(_Struct, frozen=True):
    """A peer the sender has proven, and where it listens: a hint to dial (``core.exchange``)."""

    peer_id: PeerId
    host: Host
    port: Port


PeerHints = Annotated[tuple[PeerHint, ...], msgspec.Meta(max_length=MAX_SHARED_PEERS)]


class Announcement(_Struct, frozen=True, omit_defaults=True):
    """What a peer tells about itself in ``Hello`` and ``HelloAck``."""

    name: DisplayName
    listen_host: Host
    """The host the peer believes others reach its listener at (may be a wildcard)."""
    listen_port: Port
    """The stable port of the peer's listener, never a connection's source port."""
    library: LibrarySnapshot
    peers: PeerHints = ()
    """Peers the sender has proven (peer exchange); hints, never proof."""


# --- handshake -------------------------------------------------------------------


class Challenge(_Message, frozen=True):
    """Listener to dialer, first frame: prove your id by signing this nonce."""

    protocol_version: ProtocolVersion
    nonce: Nonce
    server_peer_id: PeerId


class Hello(_Message, frozen=True):
    """Dialer to listener: who I am, proven by ``proof``."""

    protocol_version: ProtocolVersion
    peer_id: PeerId
    public_key: PublicKey
    """Raw Ed25519 public key; ``peer_id`` must be derived from it."""
    proof: Signature
    """Signature of :func:`hello_proof_payload` by ``public_key``."""
    announcement: Announcement
    membership: Membership = b""
    """Proof that the dialer knows the listener's party code; empty outside a party."""


class HelloAck(_Message, frozen=True):
    """Listener to dialer: the handshake succeeded; who I am."""

    protocol_version: ProtocolVersion
    peer_id: PeerId
    announcement: Announcement
    membership: Membership = b""
    """Proof that the listener knows the dialer's party code; empty outside a party."""


# --- request bodies ----------------------------------------------------------------


class Ping(_Message, frozen=True, omit_defaults=True):
    """Liveness probe; answered by :class:`Pong`.

    Carries the proven peers the listener has not heard of from the dialer yet (a
    batched delta of the peer exchange); empty, and omitted, once it knows them all.
    """

    peers: PeerHints = ()


class Goodbye(_Message, frozen=True):
    """The dialer is leaving the network; answered by :class:`GoodbyeAck`."""


class PushLibraryDelta(_Message, frozen=True, omit_defaults=True):
    """A change of the dialer's library; answered by an ack or :class:`ResyncRequired`.

    Carries the peer exchange's delta like :class:`Ping` does.
    """

    delta: LibraryDelta
    peers: PeerHints = ()


class GetGame(_Message, frozen=True):
    """The content manifest of a game here; answered by :class:`ManifestResponse`.

    Refused with ``NotReady`` while the game is still being hashed, and like any
    file request (``GameNotFound``, ``OperationInProgress``) by the serve gate.
    """

    game_id: GameId


class PushHaveDelta(_Message, frozen=True):
    """Chunks of a game the dialer is downloading that it now holds verified and durable.

    Answered by :class:`HaveDeltaAck`. Sent at a bounded rate (``core.partial``); the
    listener adds them to its availability book only when the dialer's library
    announces a partial copy of that game at that manifest digest.
    """

    delta: HaveDelta


class GetTicket(_Message, frozen=True, omit_defaults=True):
    """Permission to fetch chunks of a game on the data plane; answered by :class:`Ticket`.

    Granted only for a game that passes the serve gate; the ticket is bound to
    the requesting peer and this game, and admits one data connection. With
    ``manifest_digest`` it asks for a partial copy: granted only while the peer
    downloads the game at that manifest, and the connection serves only that
    manifest's verified chunks. Omitted when absent, so a plain request encodes as
    before the field existed.
    """

    game_id: GameId
    manifest_digest: ManifestDigest | None = None


class OfferCatalog(_Message, frozen=True):
    """The dialer's signed party catalog; answered by :class:`CatalogAck`.

    Sent to every peer on first contact and whenever the dialer adopts a newer one,
    so an organizer's new signing spreads peer to peer. The listener adopts it only
    if ``core.party.check_catalog`` accepts it against its own party code. Its size
    is bounded by the pin limit (``core.party.MAX_PINS``: under
    ``MAX_SIGNED_CATALOG_SIZE``, 8 MiB), far below :data:`MAX_FRAME_SIZE`.
    """

    catalog: SignedCatalog


# --- response bodies ---------------------------------------------------------------


class Pong(_Message, frozen=True):
    pass


class GoodbyeAck(_Message, frozen=True):
    pass


class LibraryDeltaAck(_Message, frozen=True):
    revision: Revision
    """The dialer's library revision the listener now holds."""


class HaveDeltaAck(_Message, frozen=True):
    accepted: bool
    """False when the listener's view of the dialer's library announces no partial copy
    at that manifest (a race with a library change, or a lie): nothing was added."""


class ResyncRequired(_Message, frozen=True):
    """The delta did not apply; the dialer must send its full snapshot (a new Hello)."""

    known_revision: Revision | None
    """The revision the listener holds for the dialer, ``None`` when it holds none."""
    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON_LENGTH)]


class ManifestResponse(_Message, frozen=True):
    """The game's manifest. The requester validates it (``validate_manifest``, done by
    ``agree_manifests``) before planning with it: decoding only checks shapes."""

    manifest: GameManifest


class Ticket(_Message, frozen=True):
    token: Annotated[bytes, msgspec.Meta(min_length=TOKEN_SIZE, max_length=TOKEN_SIZE)]
    """Sent as the first bytes of a data connection (see ``net/datawire``)."""
    data_port: Port
    """The data server's port on the host that answered this request."""
    ttl_seconds: Annotated[float, msgspec.Meta(gt=0, le=TICKET_TTL)]
    """The ticket admits nothing once this long has passed since it was issued."""


class CatalogAck(_Message, frozen=True):
    """The listener checked an :class:`OfferCatalog`."""

    serial: Annotated[int, msgspec.Meta(ge=0, le=MAX_SERIAL)]
    """The serial of the catalog the listener holds now; 0 when it holds none (or is in
    no party). A refused offer is answered too: the refusal is the listener's to log."""


class ErrorResponse(_Message, frozen=True):
    """A refusal: a request's answer, or a top-level frame before the listener closes."""

    code: ErrorCode
    message: Annotated[str, msgspec.Meta(max_length=MAX_ERROR_MESSAGE_LENGTH)]


Request: TypeAlias = (
    Ping | Goodbye | PushLibraryDelta | PushHaveDelta | GetGame | GetTicket | OfferCatalog
)
Response: TypeAlias = (
    Pong
    | GoodbyeAck
    | LibraryDeltaAck
    | HaveDeltaAck
    | ResyncRequired
    | ManifestResponse
    | Ticket
    | CatalogAck
    | ErrorResponse
)

RESPONSES: Final[dict[type[_Message], tuple[type[_Message], ...]]] = {
    Ping: (Pong,),
    Goodbye: (GoodbyeAck,),
    PushLibraryDelta: (LibraryDeltaAck, ResyncRequired),
    PushHaveDelta: (HaveDeltaAck,),
    GetGame: (ManifestResponse,),
    GetTicket: (Ticket,),
    OfferCatalog: (CatalogAck,),
}
"""The successful answers of each request; :class:`ErrorResponse` answers any of them."""


class RequestFrame(_Message, frozen=True):
    id: RequestId
    body: Request


class ResponseFrame(_Message, frozen=True):
    id: RequestId
    """The id of the :class:`RequestFrame` this answers."""
    body: Response


Message: TypeAlias = Challenge | Hello | HelloAck | ErrorResponse | RequestFrame | ResponseFrame
"""Everything a frame may hold at top level."""


def is_answer_to(request: Request, response: Response) -> bool:
    """True when ``response`` is an allowed answer to ``request``."""
    return isinstance(response, (ErrorResponse, *RESPONSES[type(request)]))


# --- preamble ------------------------------------------------------------------------


def encode_preamble(version: int = PROTOCOL_VERSION) -> bytes:
    """The preamble this peer sends (``version`` is a parameter only for tests)."""
    return _PREAMBLE.pack(PREAMBLE_MAGIC, version)


def check_preamble(data: bytes) -> None:
    """Accept the remote preamble or raise :class:`ProtocolError` / :class:`VersionMismatch`."""
    if len(data) != PREAMBLE_SIZE:
        raise ProtocolError(f"preamble must be {PREAMBLE_SIZE} bytes, got {len(data)}")
    magic, version = _PREAMBLE.unpack(data)
    if magic != PREAMBLE_MAGIC:
        raise ProtocolError(f"not a lanspread peer: preamble starts with {magic!r}")
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(
            f"the remote peer speaks protocol version {version}, "
            f"this peer speaks version {PROTOCOL_VERSION}"
        )


# --- proof -----------------------------------------------------------------------------

_PROOF_CONTEXT = b"lanspread hello proof\x00"


def hello_proof_payload(nonce: bytes, server_peer_id: str, client_peer_id: str) -> bytes:
    """The bytes a dialer signs to prove its id to one listener in one session.

    Domain-separated by a context string and the protocol version, then the
    listener's nonce (no replay across sessions), the listener's peer id as the
    dialer verified it from the certificate (no relaying through a middle peer)
    and the dialer's own id. Every part has a fixed length, so the concatenation
    is unambiguous.
    """
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    return b"".join(
        (
            _PROOF_CONTEXT,
            _FRAME_HEADER.pack(PROTOCOL_VERSION),
            nonce,
            server_peer_id.encode("ascii"),
            client_peer_id.encode("ascii"),
        )
    )


# --- frames ----------------------------------------------------------------------------

_ENCODER = msgspec.msgpack.Encoder()


def encode_frame(message: Message) -> bytes:
    """One frame: the length header and the MessagePack payload.

    Raises :class:`FrameTooLarge` when the payload exceeds :data:`MAX_FRAME_SIZE`
    (the constants above keep every valid message below it).
    """
    payload = _ENCODER.encode(message)
    if len(payload) > MAX_FRAME_SIZE:
        raise FrameTooLarge(
            f"refusing to send a frame of {len(payload)} bytes (the maximum is {MAX_FRAME_SIZE})"
        )
    return _FRAME_HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Sans-IO decoder: bytes in, validated messages out.

    Holds at most one partial frame (bounded by ``max_frame_size``). After it has
    raised once the byte stream is unusable and every later call raises again.
    """

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)
        self._failure: ProtocolError | None = None

    @property
    def max_frame_size(self) -> int:
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, size: int) -> None:
        """Change the bound for frames not yet started (a proven peer may send larger)."""
        self._max_frame_size = size

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return every message they complete, in order."""
        self._raise_if_failed()
        self._buffer += data
        messages: list[Message] = []
        try:
            while (message := self._next_message()) is not None:
                messages.append(message)
        except ProtocolError as exc:
            self._failure = exc
            self._buffer.clear()
            raise
        return messages

    def discard(self) -> None:
        """Drop a partial frame and fail every later call: the stream is being closed."""
        self._buffer = bytearray()
        if self._failure is None:
            self._failure = ProtocolError("the frame stream was closed")

    def feed_eof(self) -> None:
        """The stream ended; raise :class:`ProtocolError` if it ended inside a frame."""
        self._raise_if_failed()
        if self._buffer:
            self._failure = ProtocolError(
                f"the connection ended inside a frame ({len(self._buffer)} bytes of an "
                "incomplete frame received)"
            )
            raise self._failure

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise ProtocolError(f"the frame stream failed earlier: {self._failure}")

    def _next_message(self) -> Message | None:
        if len(self._buffer) < FRAME_HEADER_SIZE:
            return None
        (length,) = _FRAME_HEADER.unpack_from(self._buffer)
        if length > self._max_frame_size:
            raise FrameTooLarge(
                f"frame of {length} bytes exceeds the maximum of {self._max_frame_size}"
            )
        if length == 0:
            raise ProtocolError("empty frame")
        end = FRAME_HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[FRAME_HEADER_SIZE:end])
        del self._buffer[:end]
        return self._decode(payload)

    def _decode(self, payload: bytes) -> Message:
        try:
            return self._decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"invalid message: {exc}") from exc
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            # Some msgspec releases report a string that is not UTF-8 as UnicodeDecodeError,
            # others as DecodeError: both are a malformed frame.
            raise ProtocolError(f"malformed frame: {exc}") from exc
