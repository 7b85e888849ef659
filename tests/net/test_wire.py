"""The sans-IO wire codec: round trips, splits, bounds and the only-defined-errors contract."""

from __future__ import annotations

import contextlib
import itertools
import re
import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.partials import DIGEST, complete_availabilities, partial, partial_game, partials

from lanspread.core.bitfield import (
    MAX_BITFIELD_BYTES,
    MAX_BITFIELD_CHUNKS,
    ChunkBitfield,
    PartialAvailability,
)
from lanspread.core.catalog import MAX_GAME_ID_LENGTH, is_valid_game_id
from lanspread.core.gameroot import MAX_VERSION_LENGTH
from lanspread.core.library import (
    MAX_LIBRARY_GAMES,
    MAX_PARTIAL_GAMES,
    Availability,
    GameSummary,
    LibraryDelta,
    LibrarySnapshot,
    make_snapshot,
)
from lanspread.core.manifest import (
    MAX_CHUNK_SIZE,
    MAX_CHUNKS_PER_GAME,
    MAX_FILES_PER_GAME,
    MAX_PATH_BYTES,
    MIN_CHUNK_SIZE,
    ChunkDigest,
    FileManifest,
    GameManifest,
)
from lanspread.core.partial import MAX_HAVE_INDEXES, HaveDelta
from lanspread.core.party import (
    MAX_PINS,
    MAX_SERIAL,
    MAX_SIGNED_CATALOG_SIZE,
    PartyCatalog,
    Pin,
    SignedCatalog,
    decode_signed_catalog,
    encode_signed_catalog,
)
from lanspread.core.servegate import ServeErrorCode
from lanspread.core.tickets import TICKET_TTL, TOKEN_SIZE
from lanspread.errors import FrameTooLarge, ProtocolError, VersionMismatch
from lanspread.net.wire import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_ERROR_MESSAGE_LENGTH,
    MAX_FRAME_SIZE,
    MAX_HANDSHAKE_FRAME_SIZE,
    MAX_HOST_LENGTH,
    MAX_REQUEST_ID,
    NONCE_SIZE,
    PREAMBLE_SIZE,
    PROTOCOL_VERSION,
    RESPONSES,
    Announcement,
    CatalogAck,
    Challenge,
    ErrorCode,
    ErrorResponse,
    FrameDecoder,
    GetGame,
    GetTicket,
    Goodbye,
    GoodbyeAck,
    HaveDeltaAck,
    Hello,
    HelloAck,
    LibraryDeltaAck,
    ManifestResponse,
    Message,
    OfferCatalog,
    Ping,
    Pong,
    PushHaveDelta,
    PushLibraryDelta,
    RequestFrame,
    ResponseFrame,
    ResyncRequired,
    Ticket,
    check_preamble,
    encode_frame,
    encode_preamble,
    hello_proof_payload,
    is_answer_to,
)

# --- strategies ----------------------------------------------------------------------

# Catalog-shaped ids; the filter drops the few Windows cannot hold (con, a trailing dot).
game_ids = st.from_regex(r"\A[a-z0-9_-][a-z0-9._-]{0,20}\Z").filter(is_valid_game_id)
versions = st.text(min_size=1, max_size=MAX_VERSION_LENGTH)
peer_ids = st.from_regex(r"\A[0-9a-f]{64}\Z")
revisions = st.integers(min_value=0, max_value=2**63)
summaries = st.builds(
    GameSummary,
    id=game_ids,
    availability=complete_availabilities,
    version=st.none() | versions,
    installed=st.booleans(),
    size_bytes=st.integers(min_value=0, max_value=2**64 - 1),
) | st.builds(
    GameSummary,
    id=game_ids,
    availability=st.just(Availability.PARTIAL),
    version=st.none() | versions,
    installed=st.booleans(),
    size_bytes=st.integers(min_value=0, max_value=2**64 - 1),
    partial=partials(),
)
digests = st.from_regex(r"\A[0-9a-f]{64}\Z")
have_deltas = st.builds(
    HaveDelta,
    game_id=game_ids,
    manifest_digest=digests,
    indexes=st.lists(
        st.integers(min_value=0, max_value=MAX_BITFIELD_CHUNKS - 1), min_size=1, max_size=5
    ).map(lambda indexes: tuple(sorted(set(indexes)))),
)
snapshots = st.builds(
    LibrarySnapshot,
    revision=revisions,
    digest=st.text(max_size=64),
    games=st.lists(summaries, max_size=4).map(tuple),
)
announcements = st.builds(
    Announcement,
    name=st.text(min_size=1, max_size=MAX_DISPLAY_NAME_LENGTH),
    listen_host=st.text(min_size=1, max_size=30),
    listen_port=st.integers(min_value=1, max_value=65_535),
    library=snapshots,
)
relative_paths = st.lists(
    st.from_regex(r"\A[a-zA-Z0-9 _-][a-zA-Z0-9. _-]{0,10}\Z"), min_size=1, max_size=4
).map("/".join)
chunk_digests = st.builds(
    ChunkDigest,
    offset=st.integers(min_value=0, max_value=2**40),
    length=st.integers(min_value=1, max_value=MAX_CHUNK_SIZE),
    blake3=st.binary(min_size=32, max_size=32),
)
file_manifests = st.builds(
    FileManifest,
    path=relative_paths,
    size=st.integers(min_value=0, max_value=2**40),
    chunks=st.lists(chunk_digests, max_size=3).map(tuple),
)
manifests = st.builds(
    GameManifest,
    game_id=game_ids,
    version=st.none() | versions,
    chunk_size=st.integers(min_value=MIN_CHUNK_SIZE, max_value=MAX_CHUNK_SIZE),
    files=st.lists(file_manifests, max_size=4).map(tuple),
)
deltas = st.builds(
    LibraryDelta,
    base_revision=revisions,
    revision=revisions,
    digest=st.text(max_size=64),
    upserts=st.lists(summaries, max_size=3).map(tuple),
    removals=st.lists(game_ids, max_size=3).map(tuple),
)
pins = st.builds(
    Pin,
    game_id=game_ids,
    version=versions,
    digest=st.from_regex(r"\A[0-9a-f]{64}\Z"),
)
signed_catalogs = st.builds(
    SignedCatalog,
    catalog=st.builds(PartyCatalog, pins=st.lists(pins, max_size=3).map(tuple)),
    serial=st.integers(min_value=1, max_value=MAX_SERIAL),
    public_key=st.binary(min_size=32, max_size=32),
    signature=st.binary(min_size=64, max_size=64),
)
requests = st.one_of(
    st.just(Ping()),
    st.just(Goodbye()),
    st.builds(PushLibraryDelta, delta=deltas),
    st.builds(GetGame, game_id=game_ids),
    st.builds(GetTicket, game_id=game_ids, manifest_digest=st.none() | digests),
    st.builds(PushHaveDelta, delta=have_deltas),
    st.builds(OfferCatalog, catalog=signed_catalogs),
)
error_responses = st.builds(
    ErrorResponse,
    code=st.sampled_from(ErrorCode),
    message=st.text(max_size=MAX_ERROR_MESSAGE_LENGTH),
)
responses = st.one_of(
    st.just(Pong()),
    st.just(GoodbyeAck()),
    st.builds(LibraryDeltaAck, revision=revisions),
    st.builds(HaveDeltaAck, accepted=st.booleans()),
    st.builds(ResyncRequired, known_revision=st.none() | revisions, reason=st.text(max_size=50)),
    st.builds(ManifestResponse, manifest=manifests),
    st.builds(CatalogAck, serial=st.integers(min_value=0, max_value=MAX_SERIAL)),
    st.builds(
        Ticket,
        token=st.binary(min_size=TOKEN_SIZE, max_size=TOKEN_SIZE),
        data_port=st.integers(min_value=1, max_value=65_535),
        ttl_seconds=st.floats(min_value=0.001, max_value=TICKET_TTL),
    ),
    error_responses,
)
request_ids = st.integers(min_value=0, max_value=MAX_REQUEST_ID)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        Challenge,
        protocol_version=st.integers(min_value=0, max_value=2**32 - 1),
        nonce=st.binary(min_size=NONCE_SIZE, max_size=NONCE_SIZE),
        server_peer_id=peer_ids,
    ),
    st.builds(
        Hello,
        protocol_version=st.just(PROTOCOL_VERSION),
        peer_id=peer_ids,
        public_key=st.binary(min_size=32, max_size=32),
        proof=st.binary(min_size=64, max_size=64),
        announcement=announcements,
    ),
    st.builds(
        HelloAck,
        protocol_version=st.just(PROTOCOL_VERSION),
        peer_id=peer_ids,
        announcement=announcements,
    ),
    error_responses,
    st.builds(RequestFrame, id=request_ids, body=requests),
    st.builds(ResponseFrame, id=request_ids, body=responses),
)

DEFINED_ERRORS = ProtocolError
"""The decoder's whole error contract (FrameTooLarge is a ProtocolError)."""


def decode_all(chunks: list[bytes]) -> list[Message]:
    decoder = FrameDecoder()
    decoded: list[Message] = []
    for chunk in chunks:
        decoded.extend(decoder.feed(chunk))
    decoder.feed_eof()
    return decoded


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


# --- round trips and splits -----------------------------------------------------------


@settings(max_examples=300)
@given(st.lists(messages, min_size=1, max_size=4))
def test_every_message_round_trips(batch: list[Message]) -> None:
    """Frames of any messages decode to equal messages, in order, from one feed."""
    assert decode_all([b"".join(encode_frame(message) for message in batch)]) == batch


@settings(max_examples=200)
@given(st.lists(messages, min_size=1, max_size=3), st.lists(st.integers(0, 10_000), max_size=8))
def test_random_splits_decode_identically(batch: list[Message], cuts: list[int]) -> None:
    """However the byte stream is cut into reads, the same messages come out."""
    data = b"".join(encode_frame(message) for message in batch)
    assert decode_all(split_at(data, cuts)) == batch


def test_frames_split_at_every_boundary_decode_identically() -> None:
    """Every single cut point of a multi-frame stream, and byte-by-byte feeding, agree."""
    batch: list[Message] = [
        RequestFrame(id=1, body=GetGame(game_id="quake3")),
        ResponseFrame(id=1, body=Pong()),
        ErrorResponse(code=ErrorCode.BAD_REQUEST, message="no"),
    ]
    data = b"".join(encode_frame(message) for message in batch)
    for cut in range(len(data) + 1):
        assert decode_all([data[:cut], data[cut:]]) == batch
    assert decode_all([bytes([byte]) for byte in data]) == batch


# --- only defined errors --------------------------------------------------------------


@settings(max_examples=1000)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_any_bytes_in_any_split_raise_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    """Arbitrary input never raises anything but ProtocolError / FrameTooLarge."""
    with contextlib.suppress(DEFINED_ERRORS):
        decode_all(split_at(data, cuts))


@settings(max_examples=1000)
@given(st.binary(min_size=1, max_size=300))
def test_well_framed_garbage_raises_only_protocol_errors(payload: bytes) -> None:
    """A correct length header around random bytes is decoded or refused, never crashes."""
    frame = struct.pack(">I", len(payload)) + payload
    with contextlib.suppress(DEFINED_ERRORS):
        decode_all([frame])


@settings(max_examples=300)
@given(messages, st.integers(0, 2**31), st.data())
def test_mutated_valid_frames_raise_only_protocol_errors(
    message: Message, position: int, data: st.DataObject
) -> None:
    """Flipping one byte of a valid payload never gives an undefined error."""
    frame = bytearray(encode_frame(message))
    index = 4 + position % (len(frame) - 4)
    frame[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DEFINED_ERRORS):
        decode_all([bytes(frame)])


def test_oversized_header_is_refused_before_the_payload_arrives() -> None:
    """Four header bytes announcing more than MAX_FRAME_SIZE raise FrameTooLarge at once."""
    decoder = FrameDecoder()
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(struct.pack(">I", MAX_FRAME_SIZE + 1))
    assert str(caught.value) == (
        f"frame of {MAX_FRAME_SIZE + 1} bytes exceeds the maximum of {MAX_FRAME_SIZE}"
    )
    assert decoder.buffered == 0


def test_a_failed_decoder_keeps_failing() -> None:
    """After an error the stream is unusable: later feeds raise instead of resyncing."""
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match=r"^empty frame$"):
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match=r"^the frame stream failed earlier: empty frame$"):
        decoder.feed(encode_frame(ErrorResponse(code=ErrorCode.BAD_REQUEST, message="")))


def test_truncated_frame_at_eof_is_a_protocol_error() -> None:
    """An end of stream inside a frame says how much of the frame arrived."""
    decoder = FrameDecoder()
    frame = encode_frame(RequestFrame(id=7, body=Ping()))
    assert decoder.feed(frame[:-3]) == []
    with pytest.raises(ProtocolError) as caught:
        decoder.feed_eof()
    assert str(caught.value) == (
        f"the connection ended inside a frame ({len(frame) - 3} bytes of an incomplete "
        "frame received)"
    )


def test_eof_between_frames_is_clean() -> None:
    """An end of stream at a frame boundary raises nothing."""
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(RequestFrame(id=7, body=Ping()))) == [
        RequestFrame(id=7, body=Ping())
    ]
    decoder.feed_eof()


def test_unknown_message_type_is_a_protocol_error() -> None:
    """A frame whose tag names no message is refused as invalid."""
    payload = msgspec.msgpack.encode({"type": "GetManifest", "game_id": "x"})
    with pytest.raises(ProtocolError, match=r"^invalid message: Invalid value 'GetManifest'"):
        FrameDecoder().feed(struct.pack(">I", len(payload)) + payload)


def test_malformed_msgpack_is_a_protocol_error() -> None:
    """Bytes that are not MessagePack are refused as malformed."""
    with pytest.raises(ProtocolError, match=r"^malformed frame: "):
        FrameDecoder().feed(b"\x00\x00\x00\x01\xc1")


def test_a_string_that_is_not_utf8_is_a_protocol_error() -> None:
    """A string that is not UTF-8 is a malformed frame, whichever way the codec reports it."""
    frame = bytearray(encode_frame(ErrorResponse(code=ErrorCode.BAD_REQUEST, message="ab")))
    frame[-2] = 0x80
    with pytest.raises(ProtocolError, match=r"^malformed frame: ") as caught:
        FrameDecoder().feed(bytes(frame))
    assert isinstance(caught.value.__cause__, msgspec.DecodeError | UnicodeDecodeError)


def test_unknown_fields_are_refused() -> None:
    """An extra field is a protocol violation, not silently ignored."""
    payload = msgspec.msgpack.encode(
        {"type": "ErrorResponse", "code": "BadRequest", "message": "", "extra": 1}
    )
    with pytest.raises(ProtocolError, match=r"^invalid message: Object contains unknown field"):
        FrameDecoder().feed(struct.pack(">I", len(payload)) + payload)


# --- field bounds --------------------------------------------------------------------


def _frame_of(value: object) -> bytes:
    payload = msgspec.msgpack.encode(value)
    return struct.pack(">I", len(payload)) + payload


def _hello_dict(**overrides: object) -> dict[str, object]:
    hello = msgspec.to_builtins(
        Hello(
            protocol_version=PROTOCOL_VERSION,
            peer_id="a" * 64,
            public_key=bytes(32),
            proof=bytes(64),
            announcement=Announcement(
                name="n", listen_host="h", listen_port=1, library=make_snapshot(0, ())
            ),
        ),
        builtin_types=(bytes,),
    )
    assert isinstance(hello, dict)
    announcement = hello["announcement"]
    for key, value in overrides.items():
        if key in announcement:
            announcement[key] = value
        else:
            hello[key] = value
    return hello


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("name", "x" * (MAX_DISPLAY_NAME_LENGTH + 1), "$.announcement.name"),
        ("name", "", "$.announcement.name"),
        ("listen_host", "h" * (MAX_HOST_LENGTH + 1), "$.announcement.listen_host"),
        ("listen_port", 0, "$.announcement.listen_port"),
        ("listen_port", 65_536, "$.announcement.listen_port"),
        ("peer_id", "A" * 64, "$.peer_id"),
        ("peer_id", "a" * 63, "$.peer_id"),
        ("public_key", bytes(31), "$.public_key"),
        ("proof", bytes(65), "$.proof"),
    ],
)
def test_hello_fields_are_bounded(field: str, value: object, where: str) -> None:
    """Each variable-size Hello field outside its bound makes the frame invalid."""
    pattern = rf"^invalid message: .* - at `{re.escape(where)}`$"
    with pytest.raises(ProtocolError, match=pattern):
        FrameDecoder().feed(_frame_of(_hello_dict(**{field: value})))


@pytest.mark.parametrize(
    ("field", "value"),
    [("token", b"\x00" * (TOKEN_SIZE - 1)), ("ttl_seconds", 0.0), ("data_port", 0)],
)
def test_ticket_fields_are_bounded(field: str, value: object) -> None:
    """A Ticket carries a full-size token, a real port and a positive, bounded TTL."""
    body: dict[str, object] = {
        "type": "Ticket",
        "token": b"\x01" * TOKEN_SIZE,
        "data_port": 7879,
        "ttl_seconds": 1.0,
    }
    body[field] = value
    value_frame = {"type": "ResponseFrame", "id": 1, "body": body}
    with pytest.raises(ProtocolError, match=rf"^invalid message: .*{field}`$"):
        FrameDecoder().feed(_frame_of(value_frame))


def test_manifest_shapes_are_bounded_at_decode() -> None:
    """A manifest with more files than MAX_FILES_PER_GAME is refused by the decoder itself."""
    entry = {"path": "a", "size": 0, "chunks": []}
    value = {
        "type": "ResponseFrame",
        "id": 1,
        "body": {
            "type": "ManifestResponse",
            "manifest": {
                "game_id": "g",
                "version": "1",
                "chunk_size": MIN_CHUNK_SIZE,
                "files": [entry] * (MAX_FILES_PER_GAME + 1),
            },
        },
    }
    with pytest.raises(ProtocolError, match=r"^invalid message: .*files`$"):
        FrameDecoder().feed(_frame_of(value))


def test_invalid_game_id_is_refused() -> None:
    """GetGame only carries catalog-shaped ids (no path separators, no '..')."""
    for game_id in ["..", "a/b", "UPPER", "x" * (MAX_GAME_ID_LENGTH + 1)]:
        value = {"type": "RequestFrame", "id": 1, "body": {"type": "GetGame", "game_id": game_id}}
        with pytest.raises(ProtocolError, match=r"^invalid message: .*game_id`$"):
            FrameDecoder().feed(_frame_of(value))


@pytest.mark.parametrize("game_id", ["con", "nul.x", "com7", "lpt1.games", "quake3."])
def test_a_peer_game_id_windows_cannot_hold_is_refused(game_id: str) -> None:
    """Ids a peer sends go through the catalog's rule: no Windows device name, no trailing dot."""
    value = {"type": "RequestFrame", "id": 1, "body": {"type": "GetGame", "game_id": game_id}}
    with pytest.raises(ProtocolError, match=r"^invalid message: .*game_id`$"):
        FrameDecoder().feed(_frame_of(value))


def test_request_ids_are_u32() -> None:
    """A request id beyond u32 is refused."""
    value = {"type": "RequestFrame", "id": MAX_REQUEST_ID + 1, "body": {"type": "Ping"}}
    with pytest.raises(ProtocolError, match=r"^invalid message: .* - at `\$.id`$"):
        FrameDecoder().feed(_frame_of(value))


def test_a_snapshot_above_max_library_games_is_refused() -> None:
    """A library of more than MAX_LIBRARY_GAMES entries is invalid even inside the frame bound."""
    tiny = msgspec.to_builtins(
        GameSummary(
            id="g", availability=Availability.READY, version=None, installed=False, size_bytes=0
        )
    )
    hello = _hello_dict()
    announcement = hello["announcement"]
    assert isinstance(announcement, dict)
    announcement["library"]["games"] = [tiny] * (MAX_LIBRARY_GAMES + 1)
    with pytest.raises(ProtocolError, match=r"^invalid message: Expected `array` of length <= "):
        FrameDecoder().feed(_frame_of(hello))


# --- partial copies ------------------------------------------------------------------


def _hello_with_games(games: list[object]) -> dict[str, object]:
    hello = _hello_dict()
    announcement = hello["announcement"]
    assert isinstance(announcement, dict)
    announcement["library"]["games"] = games
    return hello


def _raw_partial_game(partial_value: dict[str, object]) -> dict[str, object]:
    raw = msgspec.to_builtins(partial_game("g"), builtin_types=(bytes,))
    assert isinstance(raw, dict)
    raw["partial"] = partial_value
    return raw


@pytest.mark.parametrize(
    ("partial_value", "error"),
    [
        (
            {"manifest_digest": DIGEST, "chunk_count": 8, "bitfield": bytes(2)},
            "a bitfield of 2 bytes does not cover 8 chunks (expected 1 bytes)",
        ),
        (
            {"manifest_digest": DIGEST, "chunk_count": 4, "bitfield": b"\xff"},
            "a bitfield over 4 chunks sets a bit past the last",
        ),
    ],
    ids=["wrong-length", "padding-bits"],
)
def test_a_hello_with_a_mis_sized_bitfield_is_refused(
    partial_value: dict[str, object], error: str
) -> None:
    """A bitfield that disagrees with its chunk count closes the handshake with our words."""
    frame = _frame_of(_hello_with_games([_raw_partial_game(partial_value)]))
    expected = f"invalid message: {error} - at `$.announcement.library.games[0].partial`"
    with pytest.raises(ProtocolError) as caught:
        FrameDecoder().feed(frame)
    assert str(caught.value) == expected


def test_a_hello_with_an_oversized_bitfield_is_refused() -> None:
    """A bitfield longer than any manifest allows is refused by its bound, naming the field."""
    value = {"manifest_digest": DIGEST, "chunk_count": 8, "bitfield": bytes(MAX_BITFIELD_BYTES + 1)}
    frame = _frame_of(_hello_with_games([_raw_partial_game(value)]))
    pattern = (
        r"^invalid message: .* - at `\$\.announcement\.library\.games\[0\]\.partial\.bitfield`$"
    )
    with pytest.raises(ProtocolError, match=pattern):
        FrameDecoder().feed(frame)


def test_a_hello_with_too_many_partial_games_is_refused() -> None:
    """More than MAX_PARTIAL_GAMES partial games in one library is a protocol violation."""
    games = [
        msgspec.to_builtins(partial_game(f"g{index}"), builtin_types=(bytes,))
        for index in range(MAX_PARTIAL_GAMES + 1)
    ]
    with pytest.raises(ProtocolError) as caught:
        FrameDecoder().feed(_frame_of(_hello_with_games(games)))
    assert str(caught.value) == (
        "invalid message: 5 partial games exceed the limit of 4 in one library"
        " - at `$.announcement.library`"
    )


def test_a_partial_availability_needs_availability_partial() -> None:
    """A Ready game carrying a bitfield is refused: the two go together."""
    raw = _raw_partial_game(msgspec.to_builtins(partial(8), builtin_types=(bytes,)))
    raw["availability"] = "Ready"
    with pytest.raises(ProtocolError) as caught:
        FrameDecoder().feed(_frame_of(_hello_with_games([raw])))
    assert str(caught.value) == (
        "invalid message: g: a partial availability goes with availability Partial only"
        " - at `$.announcement.library.games[0]`"
    )


def _have_frame(**overrides: object) -> bytes:
    delta: dict[str, object] = {"game_id": "quake3", "manifest_digest": DIGEST, "indexes": [1, 2]}
    delta.update(overrides)
    body = {"type": "PushHaveDelta", "delta": delta}
    return _frame_of({"type": "RequestFrame", "id": 1, "body": body})


def test_a_have_delta_travels_as_a_request() -> None:
    """PushHaveDelta decodes to the core HaveDelta it carries."""
    assert FrameDecoder().feed(_have_frame()) == [
        RequestFrame(id=1, body=PushHaveDelta(delta=HaveDelta("quake3", DIGEST, (1, 2))))
    ]


def test_an_unsorted_have_delta_is_refused() -> None:
    """Indexes out of order are refused with our message and the field's place."""
    with pytest.raises(ProtocolError) as caught:
        FrameDecoder().feed(_have_frame(indexes=[2, 1]))
    assert str(caught.value) == (
        "invalid message: have indexes must be strictly ascending - at `$.body.delta`"
    )


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"indexes": list(range(MAX_HAVE_INDEXES + 1))}, "$.body.delta.indexes"),
        ({"indexes": [MAX_BITFIELD_CHUNKS]}, "$.body.delta.indexes[0]"),
        ({"indexes": []}, "$.body.delta.indexes"),
        ({"manifest_digest": "xyz"}, "$.body.delta.manifest_digest"),
        ({"game_id": "../etc"}, "$.body.delta.game_id"),
    ],
    ids=["too-many", "past-the-bound", "empty", "bad-digest", "bad-game-id"],
)
def test_hostile_have_deltas_are_refused_by_the_decoder(
    overrides: dict[str, object], where: str
) -> None:
    """Oversized or out-of-bound indexes, bad digests and ids never reach the book."""
    pattern = rf"^invalid message: .* - at `{re.escape(where)}`$"
    with pytest.raises(ProtocolError, match=pattern):
        FrameDecoder().feed(_have_frame(**overrides))


def test_a_plain_ticket_request_encodes_as_before() -> None:
    """Without a manifest digest GetTicket carries only the game id; with one, the digest."""
    plain = msgspec.msgpack.decode(
        encode_frame(RequestFrame(id=1, body=GetTicket(game_id="g")))[4:]
    )
    assert plain == {"type": "RequestFrame", "id": 1, "body": {"type": "GetTicket", "game_id": "g"}}
    partial_request = RequestFrame(id=1, body=GetTicket(game_id="g", manifest_digest=DIGEST))
    assert FrameDecoder().feed(encode_frame(partial_request)) == [partial_request]


def test_every_serve_error_code_is_a_wire_error_code() -> None:
    """The serve gate's codes are wire ErrorCode spellings, the new partial one included."""
    assert {code.value for code in ServeErrorCode} <= {code.value for code in ErrorCode}
    assert ErrorCode(ServeErrorCode.CHUNK_NOT_AVAILABLE.value) is ErrorCode.CHUNK_NOT_AVAILABLE


# --- the frame size arithmetic -------------------------------------------------------


def _worst_summary(index: int) -> GameSummary:
    game_id = f"{index:05d}".ljust(MAX_GAME_ID_LENGTH, "x")
    return GameSummary(
        id=game_id,
        availability=Availability.LOCAL_ONLY,
        version="\U0001f600" * MAX_VERSION_LENGTH,
        installed=True,
        size_bytes=2**64 - 1,
    )


def test_worst_case_hello_fits_in_one_frame() -> None:
    """A Hello with MAX_LIBRARY_GAMES maximal games and maximal fields encodes and decodes."""
    games = tuple(_worst_summary(index) for index in range(MAX_LIBRARY_GAMES))
    hello = Hello(
        protocol_version=PROTOCOL_VERSION,
        peer_id="f" * 64,
        public_key=bytes(32),
        proof=bytes(64),
        announcement=Announcement(
            name="\U0001f600" * MAX_DISPLAY_NAME_LENGTH,
            listen_host="h" * MAX_HOST_LENGTH,
            listen_port=65_535,
            library=LibrarySnapshot(revision=2**63, digest="d" * 64, games=games),
        ),
    )
    frame = encode_frame(hello)
    assert 3_900_000 < len(frame) <= MAX_FRAME_SIZE + 4
    assert FrameDecoder().feed(frame) == [hello]


def _worst_partial(index: int) -> GameSummary:
    worst = _worst_summary(index)
    full = ChunkBitfield.from_indexes(MAX_BITFIELD_CHUNKS, range(MAX_BITFIELD_CHUNKS))
    return msgspec.structs.replace(
        worst,
        availability=Availability.PARTIAL,
        installed_version=worst.version,
        partial=PartialAvailability.of("f" * 64, full),
    )


def test_worst_case_partial_games_keep_the_hello_in_the_handshake_frame() -> None:
    """MAX_PARTIAL_GAMES games with full 64 Ki-chunk bitfields add under 9 KB each."""
    base = tuple(_worst_summary(index) for index in range(MAX_LIBRARY_GAMES))
    partial_games = tuple(_worst_partial(index) for index in range(MAX_PARTIAL_GAMES))
    games = (*partial_games, *base[MAX_PARTIAL_GAMES:])
    hello = Hello(
        protocol_version=PROTOCOL_VERSION,
        peer_id="f" * 64,
        public_key=bytes(32),
        proof=bytes(64),
        announcement=Announcement(
            name="\U0001f600" * MAX_DISPLAY_NAME_LENGTH,
            listen_host="h" * MAX_HOST_LENGTH,
            listen_port=65_535,
            library=LibrarySnapshot(revision=2**63, digest="d" * 64, games=games),
        ),
    )
    per_game = len(msgspec.msgpack.encode(partial_games[0])) - len(msgspec.msgpack.encode(base[0]))
    assert per_game < 9_000
    frame = encode_frame(hello)
    assert len(frame) <= MAX_HANDSHAKE_FRAME_SIZE + 4
    decoder = FrameDecoder(max_frame_size=MAX_HANDSHAKE_FRAME_SIZE)
    assert decoder.feed(frame) == [hello]


def _worst_catalog(count: int) -> SignedCatalog:
    """``count`` pins at every field's limit (4-byte UTF-8 characters in the version)."""
    version = "\U0001f600" * MAX_VERSION_LENGTH
    return SignedCatalog(
        catalog=PartyCatalog(
            pins=tuple(
                Pin(
                    game_id=f"{index:05d}".ljust(MAX_GAME_ID_LENGTH, "g"),
                    version=version,
                    digest="f" * 64,
                )
                for index in range(count)
            )
        ),
        serial=MAX_SERIAL,
        public_key=b"\xff" * 32,
        signature=b"\xff" * 64,
    )


def test_worst_case_signed_catalog_fits_its_bound_and_one_frame() -> None:
    """A signed catalog of MAX_PINS pins at every limit stays under
    MAX_SIGNED_CATALOG_SIZE and, offered in a RequestFrame, under MAX_FRAME_SIZE."""
    signed = _worst_catalog(MAX_PINS)
    encoded = encode_signed_catalog(signed)
    assert 7_000_000 < len(encoded) <= MAX_SIGNED_CATALOG_SIZE
    assert decode_signed_catalog(encoded) == signed
    frame = encode_frame(RequestFrame(id=MAX_REQUEST_ID, body=OfferCatalog(catalog=signed)))
    assert len(frame) <= MAX_FRAME_SIZE + 4
    assert decode_all([frame]) == [
        RequestFrame(id=MAX_REQUEST_ID, body=OfferCatalog(catalog=signed))
    ]


def test_worst_case_manifest_fits_in_one_frame() -> None:
    """A manifest at every manifest limit, wrapped in a ResponseFrame, fits MAX_FRAME_SIZE."""
    digest = ChunkDigest(offset=0, length=MAX_CHUNK_SIZE, blake3=b"\xff" * 32)
    per_file = MAX_CHUNKS_PER_GAME // MAX_FILES_PER_GAME + 1
    files = tuple(
        FileManifest(
            path=f"{index:05d}".ljust(MAX_PATH_BYTES, "x"),
            size=2**40,
            chunks=(digest,) * per_file,
        )
        for index in range(MAX_FILES_PER_GAME)
    )
    manifest = GameManifest(
        game_id="g" * MAX_GAME_ID_LENGTH,
        version="v" * MAX_VERSION_LENGTH,
        chunk_size=MAX_CHUNK_SIZE,
        files=files,
    )
    response = ResponseFrame(id=MAX_REQUEST_ID, body=ManifestResponse(manifest=manifest))
    frame = encode_frame(response)
    assert 10_000_000 < len(frame) <= MAX_FRAME_SIZE + 4
    assert FrameDecoder().feed(frame) == [response]


def test_encoding_a_message_above_the_frame_bound_is_refused() -> None:
    """encode_frame refuses to produce a frame the receiver would reject."""
    # The encoder trusts its caller, so it encodes twice the file bound without complaint.
    files = tuple(
        FileManifest(path=f"{index:05d}".ljust(MAX_PATH_BYTES, "x"), size=0, chunks=())
        for index in range(2 * MAX_FILES_PER_GAME)
    )
    manifest = GameManifest(game_id="g", version=None, chunk_size=MIN_CHUNK_SIZE, files=files)
    with pytest.raises(
        FrameTooLarge,
        match=rf"^refusing to send a frame of \d+ bytes \(the maximum is {MAX_FRAME_SIZE}\)$",
    ):
        encode_frame(ResponseFrame(id=1, body=ManifestResponse(manifest=manifest)))


# --- preamble, proof and answer table ------------------------------------------------


def test_preamble_round_trips() -> None:
    """Our own preamble is 8 bytes and accepted."""
    assert len(encode_preamble()) == PREAMBLE_SIZE
    check_preamble(encode_preamble())


def test_preamble_of_another_version_is_a_version_mismatch_naming_both() -> None:
    """A version-5 preamble raises VersionMismatch with both versions in the message."""
    with pytest.raises(VersionMismatch) as caught:
        check_preamble(encode_preamble(5))
    assert str(caught.value) == (
        "the remote peer speaks protocol version 5, this peer speaks version 4"
    )


def test_foreign_preamble_is_a_protocol_error() -> None:
    """Something that is not lanspread (here HTTP) is named as such."""
    with pytest.raises(
        ProtocolError, match=r"^not a lanspread peer: preamble starts with b'GET '$"
    ):
        check_preamble(b"GET / HT")
    with pytest.raises(ProtocolError, match=r"^preamble must be 8 bytes, got 3$"):
        check_preamble(b"LSP")


def test_proof_payload_binds_every_part() -> None:
    """Changing the nonce, the server id or the client id changes the signed bytes."""
    nonce, server, client = bytes(32), "a" * 64, "b" * 64
    base = hello_proof_payload(nonce, server, client)
    assert base != hello_proof_payload(b"\x01" * 32, server, client)
    assert base != hello_proof_payload(nonce, "c" * 64, client)
    assert base != hello_proof_payload(nonce, server, "c" * 64)
    with pytest.raises(ValueError, match=r"^nonce must be 32 bytes$"):
        hello_proof_payload(bytes(31), server, client)


def test_answer_table() -> None:
    """Each request has its answers; ErrorResponse answers any; others do not."""
    assert set(RESPONSES) == {
        Ping,
        Goodbye,
        PushLibraryDelta,
        PushHaveDelta,
        GetGame,
        GetTicket,
        OfferCatalog,
    }
    assert is_answer_to(
        PushHaveDelta(delta=HaveDelta("g", DIGEST, (0,))), HaveDeltaAck(accepted=True)
    )
    assert not is_answer_to(
        PushHaveDelta(delta=HaveDelta("g", DIGEST, (0,))), LibraryDeltaAck(revision=0)
    )
    assert is_answer_to(OfferCatalog(catalog=_worst_catalog(1)), CatalogAck(serial=0))
    assert is_answer_to(Ping(), Pong())
    assert is_answer_to(
        GetGame(game_id="g"), ErrorResponse(code=ErrorCode.GAME_NOT_FOUND, message="")
    )
    assert is_answer_to(
        PushLibraryDelta(delta=LibraryDelta(0, 1, "", (), ())),
        ResyncRequired(known_revision=None, reason=""),
    )
    assert not is_answer_to(GetGame(game_id="g"), Pong())
    assert not is_answer_to(Ping(), GoodbyeAck())


def test_a_discarded_decoder_frees_its_partial_frame_and_refuses_more() -> None:
    """discard() drops the bytes of a partial frame at once; the stream is unusable after."""
    decoder = FrameDecoder()
    frame = encode_frame(ErrorResponse(code=ErrorCode.BAD_REQUEST, message="x" * 100))
    assert decoder.feed(frame[:-10]) == []
    assert decoder.buffered == len(frame) - 10
    decoder.discard()
    assert decoder.buffered == 0
    with pytest.raises(
        ProtocolError, match=r"^the frame stream failed earlier: the frame stream was closed$"
    ):
        decoder.feed(frame[-10:])
