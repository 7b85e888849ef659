"""The data-plane codec: round trips, splits, bounds and the only-defined-errors contract."""

from __future__ import annotations

import contextlib
import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanspread.core.servegate import MAX_CHUNK_LENGTH
from lanspread.core.tickets import TOKEN_SIZE
from lanspread.errors import FrameTooLarge, ProtocolError, VersionMismatch
from lanspread.net.datawire import (
    DATA_MAGIC,
    HEADER_SIZE,
    HELLO_SIZE,
    MAX_PATH_BYTES,
    MAX_REQUEST_FRAME_SIZE,
    ChunkRequest,
    DataStatus,
    Header,
    RequestDecoder,
    decode_header,
    decode_hello,
    encode_header,
    encode_hello,
    encode_request,
)

requests = st.builds(
    ChunkRequest,
    path=st.text(min_size=1, max_size=MAX_PATH_BYTES // 4),
    offset=st.integers(min_value=0, max_value=2**63 - 1),
    length=st.integers(min_value=0, max_value=MAX_CHUNK_LENGTH),
)


def decode_all(chunks: list[bytes]) -> list[ChunkRequest]:
    decoder = RequestDecoder()
    decoded: list[ChunkRequest] = []
    for chunk in chunks:
        decoded.extend(decoder.feed(chunk))
    assert decoder.buffered == 0
    return decoded


@settings(max_examples=200)
@given(st.lists(requests, min_size=1, max_size=5), st.lists(st.integers(0, 5000), max_size=8))
def test_requests_round_trip_however_the_stream_is_cut(
    batch: list[ChunkRequest], cuts: list[int]
) -> None:
    """Encoded requests decode to equal requests, in order, from any split of the stream."""
    data = b"".join(encode_request(request) for request in batch)
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces = [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]
    assert decode_all(pieces) == batch


@settings(max_examples=500)
@given(st.binary(max_size=2000))
def test_request_decoder_fails_only_in_defined_ways(data: bytes) -> None:
    """Any bytes give requests or a ProtocolError, never another exception."""
    decoder = RequestDecoder()
    try:
        decoder.feed(data)
    except ProtocolError:
        with pytest.raises(ProtocolError, match=r"^the request stream failed earlier: "):
            decoder.feed(b"")


@settings(max_examples=300)
@given(st.binary(min_size=HEADER_SIZE, max_size=HEADER_SIZE))
def test_header_decoder_fails_only_in_defined_ways(data: bytes) -> None:
    """Any 8 bytes are a valid header or a ProtocolError."""
    try:
        header = decode_header(data)
    except ProtocolError:
        return
    assert header.status is DataStatus.OK or header.length == 0


@given(st.binary(min_size=HELLO_SIZE, max_size=HELLO_SIZE))
def test_hello_decoder_fails_only_in_defined_ways(data: bytes) -> None:
    """Any 40 bytes are a token or a ProtocolError (VersionMismatch included)."""
    with contextlib.suppress(ProtocolError):
        assert len(decode_hello(data)) == TOKEN_SIZE


def test_oversized_frame_header_fails_before_the_payload_arrives() -> None:
    """A frame length above MAX_REQUEST_FRAME_SIZE raises on its four header bytes alone."""
    decoder = RequestDecoder()
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(struct.pack(">I", MAX_REQUEST_FRAME_SIZE + 1))
    assert str(caught.value) == (
        f"request frame of {MAX_REQUEST_FRAME_SIZE + 1} bytes exceeds the maximum of "
        f"{MAX_REQUEST_FRAME_SIZE}"
    )
    assert decoder.buffered == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (struct.pack(">QI", 0, 1), "request frame of 12 bytes has no path"),
        (struct.pack(">QI", 2**63, 1) + b"a", f"request offset {2**63} exceeds {2**63 - 1}"),
        (struct.pack(">QI", 0, 1) + b"\xff", "request path is not UTF-8 (invalid start byte)"),
    ],
)
def test_malformed_requests_are_violations(payload: bytes, message: str) -> None:
    """A request with no path, an absurd offset or a non-UTF-8 path is refused by name."""
    with pytest.raises(ProtocolError) as caught:
        RequestDecoder().feed(struct.pack(">I", len(payload)) + payload)
    assert str(caught.value) == message


def test_hello_round_trip_and_refusals() -> None:
    """Our hello decodes to its token; another magic or version is refused by name."""
    token = bytes(range(TOKEN_SIZE))
    assert decode_hello(encode_hello(token)) == token
    with pytest.raises(VersionMismatch) as version:
        decode_hello(encode_hello(token, version=9))
    assert str(version.value) == (
        "the client speaks data protocol version 9, this peer speaks version 1"
    )
    with pytest.raises(ProtocolError, match=r"^not a lanspread data connection: it starts with "):
        decode_hello(b"LSPR" + encode_hello(token)[4:])
    with pytest.raises(ProtocolError, match=r"^data hello must be 40 bytes, got 3$"):
        decode_hello(b"abc")
    with pytest.raises(ValueError, match=r"^a ticket token is 32 bytes, got 1$"):
        encode_hello(b"x")
    assert encode_hello(token).startswith(DATA_MAGIC)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([99, 0, 0, 0, 0, 0, 0, 0]), "data header has unknown status 99"),
        (
            bytes([0, 1, 0, 0, 0, 0, 0, 0]),
            "data header has non-zero reserved bytes b'\\x01\\x00\\x00'",
        ),
        (bytes([1, 0, 0, 0, 0, 0, 0, 5]), "a GAME_NOT_FOUND header announced 5 bytes"),
        (b"short", "a data header is 8 bytes, got 5"),
    ],
)
def test_malformed_headers_are_violations(data: bytes, message: str) -> None:
    """Unknown statuses, reserved bits and refusals with bytes are refused by name."""
    with pytest.raises(ProtocolError) as caught:
        decode_header(data)
    assert str(caught.value) == message


def test_headers_round_trip() -> None:
    """Every status round-trips; only OK carries a length."""
    for status in DataStatus:
        assert decode_header(encode_header(status)) == Header(status, 0)
    assert decode_header(encode_header(DataStatus.OK, MAX_CHUNK_LENGTH)) == Header(
        DataStatus.OK, MAX_CHUNK_LENGTH
    )
    assert DataStatus.TICKET_EXPIRED.is_admission_refusal
    assert not DataStatus.SHORT_FILE.is_admission_refusal


@pytest.mark.parametrize(
    "request_",
    [
        ChunkRequest("", 0, 1),
        ChunkRequest("a" * (MAX_PATH_BYTES + 1), 0, 1),
        ChunkRequest("a", -1, 1),
        ChunkRequest("a", 0, MAX_CHUNK_LENGTH + 1),
    ],
)
def test_encoder_refuses_what_the_server_would_reject(request_: ChunkRequest) -> None:
    """The client cannot build an out-of-bounds request by mistake."""
    with pytest.raises(ValueError, match=r"^chunk request "):
        encode_request(request_)


def test_largest_request_fits_the_frame_bound() -> None:
    """A request with the longest path is exactly MAX_REQUEST_FRAME_SIZE bytes of payload."""
    request = ChunkRequest("\U0001f600" * (MAX_PATH_BYTES // 4), 2**63 - 1, MAX_CHUNK_LENGTH)
    frame = encode_request(request)
    assert len(frame) == 4 + MAX_REQUEST_FRAME_SIZE
    assert RequestDecoder().feed(frame) == [request]
