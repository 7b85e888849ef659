"""Misbehaving peers on both sides: other versions, bad frames, silence, resets, fuzz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.net.helpers import (
    WAIT,
    RecordingHandler,
    announcement,
    fake_listener,
    fake_server_handshake,
    open_raw_client,
    read_until_eof,
)

from lanspread.errors import (
    ConnectionClosed,
    FrameTooLarge,
    LanspreadError,
    PeerRefused,
    ProtocolError,
    TransportError,
    VersionMismatch,
)
from lanspread.net.connection import HANDSHAKE_TIMEOUT, PeerConnection, dial
from lanspread.net.handshake import build_hello
from lanspread.net.identity import PeerIdentity, load_or_create_identity
from lanspread.net.peer_server import PeerServer
from lanspread.net.stream import FramedStream
from lanspread.net.wire import (
    MAX_FRAME_SIZE,
    MAX_HANDSHAKE_FRAME_SIZE,
    PROTOCOL_VERSION,
    Challenge,
    ErrorCode,
    ErrorResponse,
    GetGame,
    HelloAck,
    Ping,
    Pong,
    RequestFrame,
    ResponseFrame,
    encode_frame,
    encode_preamble,
)

OVERSIZED_HEADER = struct.pack(">I", MAX_FRAME_SIZE + 1)


async def dial_to(
    port: int, identity: PeerIdentity, *, handshake_timeout: float = HANDSHAKE_TIMEOUT
) -> PeerConnection:
    return await dial(
        "127.0.0.1",
        port,
        identity=identity,
        expected_peer_id=None,
        announce=lambda: announcement("bob"),
        handshake_timeout=handshake_timeout,
    )


async def outcome(awaitable: Awaitable[object]) -> object:
    """The result or the LanspreadError of ``awaitable``, so a task group does not abort."""
    try:
        return await awaitable
    except LanspreadError as exc:
        return exc


async def until_closed(stream: FramedStream) -> None:
    """A fake's way to stay connected until the other side hangs up."""
    await read_until_eof(stream)


# --- a dialer meets a bad listener -----------------------------------------------------


async def test_dialing_a_peer_of_another_version_raises_version_mismatch(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A listener announcing version 5 is refused by name; it receives our own preamble."""
    received: list[bytes] = []
    done = asyncio.Event()

    async def other_version(stream: FramedStream) -> None:
        await stream.send_bytes(encode_preamble(5))
        received.append(await read_until_eof(stream))
        done.set()

    async with fake_listener(alice, other_version) as port:
        with pytest.raises(VersionMismatch) as caught:
            await dial_to(port, bob)
        assert str(caught.value) == (
            "the remote peer speaks protocol version 5, this peer speaks version 4"
        )
        await asyncio.wait_for(done.wait(), WAIT)
    assert received == [encode_preamble(PROTOCOL_VERSION)]


async def test_dialing_something_that_is_not_lanspread_is_a_protocol_error(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A TLS service that answers like HTTP is named as not a lanspread peer."""

    async def http(stream: FramedStream) -> None:
        await stream.send_bytes(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await until_closed(stream)

    async with fake_listener(alice, http) as port:
        with pytest.raises(ProtocolError) as caught:
            await dial_to(port, bob)
    assert str(caught.value) == "not a lanspread peer: preamble starts with b'HTTP'"


async def test_a_listener_hanging_up_after_tls_is_connection_closed(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """An orderly close before the preamble is ConnectionClosed, not a crash."""

    async def hang_up(stream: FramedStream) -> None:
        await stream.close()

    async with fake_listener(alice, hang_up) as port:
        with pytest.raises(ConnectionClosed) as caught:
            await dial_to(port, bob)
    assert str(caught.value) == f"127.0.0.1:{port} closed the connection before its preamble"


async def test_a_silent_listener_times_the_handshake_out(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """No Challenge within the handshake timeout gives a TransportError naming it."""
    async with fake_listener(alice, until_closed) as port:
        with pytest.raises(TransportError) as caught:
            await dial_to(port, bob, handshake_timeout=0.2)
    assert str(caught.value) == f"handshake with 127.0.0.1:{port} did not complete within 0.2 s"


async def test_a_challenge_for_another_peer_is_refused(
    alice: PeerIdentity, bob: PeerIdentity, carol: PeerIdentity
) -> None:
    """Alice's certificate with Carol's challenge: the dialer stops before signing anything."""

    async def relay(stream: FramedStream) -> None:
        await stream.exchange_preamble()
        await stream.send(
            Challenge(
                protocol_version=PROTOCOL_VERSION, nonce=bytes(32), server_peer_id=carol.peer_id
            )
        )
        await until_closed(stream)

    async with fake_listener(alice, relay) as port:
        with pytest.raises(ProtocolError) as caught:
            await dial_to(port, bob)
    assert str(caught.value) == (
        f"challenge names peer {carol.peer_id} but the certificate proves peer {alice.peer_id}"
    )


async def test_dialing_a_closed_port_is_a_transport_error(bob: PeerIdentity) -> None:
    """Connection refused is reported with the address and the system's reason."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(TransportError) as caught:
        await dial_to(port, bob)
    assert str(caught.value) == f"cannot connect to 127.0.0.1:{port}: Connection refused"


@pytest.mark.parametrize(
    ("name", "expected_type", "expected_message"),
    [
        (
            "oversized",
            FrameTooLarge,
            f"frame of {MAX_FRAME_SIZE + 1} bytes exceeds the maximum of {MAX_FRAME_SIZE}",
        ),
        (
            "truncated",
            ProtocolError,
            "the connection ended inside a frame (6 bytes of an incomplete frame received)",
        ),
        ("wrong-direction", ProtocolError, "sent RequestFrame where a response belongs"),
        ("refusal", PeerRefused, "BadRequest: go away"),
        ("reset", TransportError, "connection to 127.0.0.1:"),
    ],
)
async def test_a_listener_breaking_the_connection_fails_pending_requests(
    alice: PeerIdentity,
    bob: PeerIdentity,
    name: str,
    expected_type: type[LanspreadError],
    expected_message: str,
) -> None:
    """Whatever breaks the stream, the pending request and wait_closed report it at once."""

    async def misbehave(stream: FramedStream) -> None:
        await fake_server_handshake(stream, alice)
        request = await stream.receive()
        assert isinstance(request, RequestFrame)
        if name == "oversized":
            await stream.send_bytes(OVERSIZED_HEADER)
        elif name == "truncated":
            await stream.send_bytes(encode_frame(ResponseFrame(id=request.id, body=Pong()))[:6])
            await stream.close()
            return
        elif name == "wrong-direction":
            await stream.send(RequestFrame(id=1, body=Ping()))
        elif name == "refusal":
            await stream.send(ErrorResponse(code=ErrorCode.BAD_REQUEST, message="go away"))
        else:
            raw = stream.writer.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            stream.abort()
            return
        await until_closed(stream)

    async with fake_listener(alice, misbehave) as port:
        connection = await dial_to(port, bob)
        failure = await outcome(connection.request(Ping(), timeout=WAIT))
        reason = await connection.wait_closed()
        await connection.close()
    assert type(failure) is expected_type
    assert expected_message in str(failure)
    assert type(reason) is expected_type
    assert str(reason) == str(failure)


async def test_an_answer_of_the_wrong_kind_is_a_protocol_error(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """GetGame answered with Pong fails that request; the connection itself stays open."""

    async def wrong_answers(stream: FramedStream) -> None:
        await fake_server_handshake(stream, alice)
        with contextlib.suppress(ConnectionClosed):
            while True:
                request = await stream.receive()
                assert isinstance(request, RequestFrame)
                await stream.send(ResponseFrame(id=request.id, body=Pong()))

    async with fake_listener(alice, wrong_answers) as port, await dial_to(port, bob) as connection:
        with pytest.raises(ProtocolError) as caught:
            await connection.request(GetGame(game_id="quake3"))
        assert str(caught.value) == f"peer {alice.peer_id} answered GetGame with Pong"
        assert await connection.request(Ping()) == Pong()


# --- a listener meets a bad dialer ------------------------------------------------------


async def test_a_dialer_of_another_version_is_told_our_version_and_dropped(
    alice: PeerIdentity, bob: PeerIdentity, caplog: pytest.LogCaptureFixture
) -> None:
    """A v2 dialer receives our v1 preamble, then EOF; the server logs the mismatch."""
    handler = RecordingHandler(announcement("alice"))
    caplog.set_level(logging.INFO, logger="lanspread.net.peer_server")
    async with PeerServer(alice, handler, host="127.0.0.1", port=0) as server:
        stream = await open_raw_client(server.port)
        try:
            await stream.send_bytes(encode_preamble(5))
            assert await read_until_eof(stream) == encode_preamble(PROTOCOL_VERSION)
        finally:
            await stream.close()
        async with await dial_to(server.port, bob) as good:
            assert await good.request(Ping()) == Pong()
    assert len(handler.hellos) == 1
    assert (
        "closing a connection (peer unproven): the remote peer speaks protocol version 5, "
        "this peer speaks version 4"
    ) in caplog.messages


async def _handshaken_raw_client(port: int, identity: PeerIdentity) -> FramedStream:
    stream = await open_raw_client(port)
    await stream.exchange_preamble()
    challenge = await stream.receive()
    assert isinstance(challenge, Challenge)
    await stream.send(build_hello(identity, challenge, challenge.server_peer_id, announcement("x")))
    assert isinstance(await stream.receive(), HelloAck)
    return stream


@pytest.mark.parametrize("handshaken", [False, True])
async def test_an_oversized_frame_header_gets_bad_request_and_the_connection_closes(
    alice: PeerIdentity, bob: PeerIdentity, handshaken: bool
) -> None:
    """Before or after the handshake, FrameTooLarge is reported as BadRequest, then EOF.

    Before the Hello the bound is the handshake's, after it the full frame bound.
    """
    handler = RecordingHandler(announcement("alice"))
    async with PeerServer(alice, handler, host="127.0.0.1", port=0) as server:
        if handshaken:
            stream = await _handshaken_raw_client(server.port, bob)
        else:
            stream = await open_raw_client(server.port)
            await stream.exchange_preamble()
            assert isinstance(await stream.receive(), Challenge)
        try:
            await stream.send_bytes(OVERSIZED_HEADER)
            bound = MAX_FRAME_SIZE if handshaken else MAX_HANDSHAKE_FRAME_SIZE
            too_large = f"frame of {MAX_FRAME_SIZE + 1} bytes exceeds the maximum of {bound}"
            assert await stream.receive() == ErrorResponse(
                code=ErrorCode.BAD_REQUEST, message=too_large
            )
            assert await read_until_eof(stream) == b""
        finally:
            await stream.close()
        async with await dial_to(server.port, bob) as good:
            assert await good.request(Ping()) == Pong()


@pytest.mark.parametrize(
    ("first", "refusal"),
    [
        (encode_frame(RequestFrame(id=1, body=Ping())), "expected Hello, got RequestFrame"),
        (
            b"\x00\x00\x00\x02\xc1\xc1",
            "malformed frame: MessagePack data is malformed: invalid opcode '\\xc1' (byte 0)",
        ),
    ],
)
async def test_a_bad_first_frame_is_refused_with_bad_request(
    alice: PeerIdentity, first: bytes, refusal: str
) -> None:
    """Anything but a Hello (or garbage) as the first frame gets BadRequest and EOF."""
    async with PeerServer(
        alice, RecordingHandler(announcement("alice")), host="127.0.0.1", port=0
    ) as server:
        stream = await open_raw_client(server.port)
        try:
            await stream.exchange_preamble()
            assert isinstance(await stream.receive(), Challenge)
            await stream.send_bytes(first)
            assert await stream.receive() == ErrorResponse(
                code=ErrorCode.BAD_REQUEST, message=refusal
            )
            assert await read_until_eof(stream) == b""
        finally:
            await stream.close()


async def test_a_truncated_frame_then_eof_ends_only_that_connection(
    alice: PeerIdentity, bob: PeerIdentity, caplog: pytest.LogCaptureFixture
) -> None:
    """Half a request then a close: the server logs it, reports the disconnect, serves on."""
    caplog.set_level(logging.INFO, logger="lanspread.net.peer_server")
    handler = RecordingHandler(announcement("alice"))
    async with PeerServer(alice, handler, host="127.0.0.1", port=0) as server:
        stream = await _handshaken_raw_client(server.port, bob)
        await stream.send_bytes(encode_frame(RequestFrame(id=1, body=Ping()))[:5])
        await stream.close()
        await handler.wait_until(lambda: handler.disconnects == [bob.peer_id], "bob's disconnect")
        async with await dial_to(server.port, bob) as good:
            assert await good.request(Ping()) == Pong()
    assert handler.requests == [(bob.peer_id, Ping())]
    assert (
        f"closing a connection (peer {bob.peer_id}): the connection ended inside a frame "
        "(5 bytes of an incomplete frame received)"
    ) in caplog.messages


@pytest.mark.parametrize("speak_tls", [False, True])
async def test_a_silent_dialer_is_dropped_after_the_handshake_timeout(
    alice: PeerIdentity, speak_tls: bool
) -> None:
    """Plain TCP silence, or TLS without a preamble, is cut off by the server's timeout."""
    handler = RecordingHandler(announcement("alice"))
    async with PeerServer(
        alice, handler, host="127.0.0.1", port=0, handshake_timeout=0.2
    ) as server:
        if speak_tls:
            stream = await open_raw_client(server.port)
            try:
                assert await read_until_eof(stream) == encode_preamble()
            finally:
                await stream.close()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                async with asyncio.timeout(WAIT):
                    assert await reader.read() == b""
            finally:
                writer.close()
                await writer.wait_closed()
        assert handler.hellos == []


async def test_connections_beyond_the_maximum_are_closed_at_once(
    alice: PeerIdentity, bob: PeerIdentity, carol: PeerIdentity
) -> None:
    """With max_connections=1 another peer's link is refused as Busy; the first keeps working."""
    handler = RecordingHandler(announcement("alice"))
    server = PeerServer(alice, handler, host="127.0.0.1", port=0, max_connections=1)
    async with server, await dial_to(server.port, bob) as first:
        with pytest.raises(PeerRefused) as caught:
            await dial_to(server.port, carol)
        assert str(caught.value) == "Busy: too many connections from 127.0.0.1"
        assert await first.request(Ping()) == Pong()


# --- fuzzing a live server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_peers(tmp_path_factory: pytest.TempPathFactory) -> tuple[PeerIdentity, PeerIdentity]:
    base: Path = tmp_path_factory.mktemp("fuzz")
    return load_or_create_identity(base / "server"), load_or_create_identity(base / "client")


async def _fuzz_once(
    server_id: PeerIdentity, client_id: PeerIdentity, stage: str, data: bytes
) -> None:
    handler = RecordingHandler(announcement("server"))
    async with PeerServer(server_id, handler, host="127.0.0.1", port=0) as server:
        if stage == "handshaken":
            stream = await _handshaken_raw_client(server.port, client_id)
        else:
            stream = await open_raw_client(server.port)
            if stage == "preamble":
                await stream.exchange_preamble()
        with contextlib.suppress(TransportError):  # the server may cut us off mid-send
            await stream.send_bytes(data)
        await stream.close()
        async with await dial_to(server.port, client_id) as good:
            assert await good.request(Ping()) == Pong()
    current = asyncio.current_task()
    assert [task for task in asyncio.all_tasks() if task is not current] == []


FUZZ_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ_SETTINGS
@given(stage=st.sampled_from(["tls", "preamble", "handshaken"]), data=st.binary(max_size=200))
def test_random_bytes_never_crash_the_server(
    fuzz_peers: tuple[PeerIdentity, PeerIdentity], stage: str, data: bytes
) -> None:
    """Random bytes at any stage leave the server serving, with no task left behind."""
    asyncio.run(_fuzz_once(*fuzz_peers, stage, data))


@FUZZ_SETTINGS
@given(payloads=st.lists(st.binary(min_size=1, max_size=100), min_size=1, max_size=3))
def test_well_framed_garbage_never_crashes_the_server(
    fuzz_peers: tuple[PeerIdentity, PeerIdentity], payloads: list[bytes]
) -> None:
    """Correct length headers around random payloads after the handshake are survived."""
    data = b"".join(struct.pack(">I", len(payload)) + payload for payload in payloads)
    asyncio.run(_fuzz_once(*fuzz_peers, "handshaken", data))


async def test_plain_tcp_garbage_instead_of_tls_is_survived(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A client speaking no TLS at all is dropped; the server serves the next one."""
    async with PeerServer(
        alice, RecordingHandler(announcement("alice")), host="127.0.0.1", port=0
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(WAIT):
            await reader.read()
        writer.close()
        await writer.wait_closed()
        async with await dial_to(server.port, bob) as good:
            assert await good.request(Ping()) == Pong()
