"""Two real peers over loopback TLS: handshakes, pinning, impersonation, requests, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import msgspec
import pytest
from tests.net.helpers import (
    RecordingHandler,
    announcement,
    game,
    game_files,
    open_raw_client,
    read_until_eof,
)

from lanspread.core.library import diff_snapshots, make_snapshot
from lanspread.errors import (
    ConnectionClosed,
    LanspreadError,
    PeerIdMismatch,
    PeerRefused,
    TransportError,
)
from lanspread.net.connection import PeerConnection, dial
from lanspread.net.handshake import build_hello
from lanspread.net.identity import PeerIdentity
from lanspread.net.peer_server import MAX_IN_FLIGHT_REQUESTS, PeerServer
from lanspread.net.wire import (
    Challenge,
    ErrorCode,
    ErrorResponse,
    GetGame,
    Goodbye,
    GoodbyeAck,
    Hello,
    LibraryDeltaAck,
    ManifestResponse,
    Ping,
    Pong,
    PushLibraryDelta,
    Request,
    Response,
    ResyncRequired,
)


@asynccontextmanager
async def serving(identity: PeerIdentity, handler: RecordingHandler) -> AsyncIterator[PeerServer]:
    async with PeerServer(identity, handler, host="127.0.0.1", port=0) as server:
        yield server


async def outcome(awaitable: Awaitable[object]) -> object:
    """The result or the LanspreadError of ``awaitable``, so a task group does not abort."""
    try:
        return await awaitable
    except LanspreadError as exc:
        return exc


async def connect(
    identity: PeerIdentity, server: PeerServer, expected: str | None, name: str = "bob"
) -> PeerConnection:
    return await dial(
        "127.0.0.1",
        server.port,
        identity=identity,
        expected_peer_id=expected,
        announce=lambda: announcement(name, "doom", port=41_000),
    )


# --- handshake ------------------------------------------------------------------------


async def test_handshake_both_ways_carries_both_library_snapshots(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """Each peer dials the other; each side sees the other's proven id and full library."""
    alice_handler = RecordingHandler(announcement("alice", "quake3", "ut99", port=40_001))
    bob_handler = RecordingHandler(announcement("bob", "doom", port=41_000))
    async with (
        serving(alice, alice_handler) as alice_server,
        serving(bob, bob_handler) as bob_server,
    ):
        bob_to_alice = await connect(bob, alice_server, alice.peer_id, name="bob")
        alice_to_bob = await dial(
            "127.0.0.1",
            bob_server.port,
            identity=alice,
            expected_peer_id=bob.peer_id,
            announce=lambda: announcement("alice", "quake3", "ut99", port=40_001),
        )
        async with bob_to_alice, alice_to_bob:
            assert bob_to_alice.peer_id == alice.peer_id
            assert bob_to_alice.hello_ack.announcement == alice_handler.own
            assert alice_to_bob.peer_id == bob.peer_id
            assert alice_to_bob.hello_ack.announcement == bob_handler.own
            [(hello_at_alice, host_at_alice)] = alice_handler.hellos
            assert hello_at_alice.peer_id == bob.peer_id
            assert hello_at_alice.announcement.library == make_snapshot(1, [game("doom")])
            assert hello_at_alice.announcement.listen_port == 41_000
            assert host_at_alice == "127.0.0.1"
            [(hello_at_bob, _)] = bob_handler.hellos
            assert hello_at_bob.peer_id == alice.peer_id
            assert [g.id for g in hello_at_bob.announcement.library.games] == ["quake3", "ut99"]


async def test_dialing_without_an_expected_id_learns_it_from_the_certificate(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A first contact by address (expected id None) reports the proven id."""
    handler = RecordingHandler(announcement("alice"))
    async with serving(alice, handler) as server, await connect(bob, server, None) as connection:
        assert connection.peer_id == alice.peer_id
        assert connection.remote_address == ("127.0.0.1", server.port)


async def test_dialing_with_the_wrong_expected_id_is_refused(
    alice: PeerIdentity, bob: PeerIdentity, carol: PeerIdentity
) -> None:
    """Pinning: the listener's certificate proves Alice, not Carol; no Hello is sent."""
    handler = RecordingHandler(announcement("alice"))
    async with serving(alice, handler) as server:
        with pytest.raises(PeerIdMismatch) as caught:
            await connect(bob, server, carol.peer_id)
        assert str(caught.value) == (
            f"expected peer {carol.peer_id}, but the certificate proves peer {alice.peer_id}"
        )
        async with await connect(bob, server, alice.peer_id):
            pass
    assert [hello.peer_id for hello, _ in handler.hellos] == [bob.peer_id]


async def test_impersonation_attempts_are_refused_with_unauthorized(
    alice: PeerIdentity, bob: PeerIdentity, carol: PeerIdentity
) -> None:
    """Claiming Carol's id, replaying an old proof, or signing for another server all fail."""
    handler = RecordingHandler(announcement("alice"))
    async with serving(alice, handler) as server:
        captured: list[Hello] = []

        def honest(challenge: Challenge) -> Hello:
            hello = build_hello(bob, challenge, alice.peer_id, announcement("bob"))
            captured.append(hello)
            return hello

        def claim_carol(challenge: Challenge) -> Hello:
            return msgspec.structs.replace(honest(challenge), peer_id=carol.peer_id)

        def replay(challenge: Challenge) -> Hello:
            return captured[0]

        def for_other_server(challenge: Challenge) -> Hello:
            return build_hello(bob, challenge, carol.peer_id, announcement("bob"))

        refusals = []
        for forge in (claim_carol, replay, for_other_server):
            stream = await open_raw_client(server.port)
            try:
                await stream.exchange_preamble()
                challenge = await stream.receive()
                assert isinstance(challenge, Challenge)
                await stream.send(forge(challenge))
                refusals.append(await stream.receive())
                assert await read_until_eof(stream) == b""
            finally:
                await stream.close()
        assert refusals == [
            ErrorResponse(
                code=ErrorCode.UNAUTHORIZED,
                message=f"peer id {carol.peer_id} is not derived from the public key in the hello",
            ),
            ErrorResponse(
                code=ErrorCode.UNAUTHORIZED,
                message="the hello proof does not verify for this session's challenge",
            ),
            ErrorResponse(
                code=ErrorCode.UNAUTHORIZED,
                message="the hello proof does not verify for this session's challenge",
            ),
        ]
    assert handler.hellos == []


async def test_handler_refusing_a_hello_raises_peer_refused(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """The runtime may refuse a proven peer; dial reports its code and message."""
    handler = RecordingHandler(
        announcement("alice"),
        refuse_hello=ErrorResponse(code=ErrorCode.BAD_REQUEST, message="a peer cannot dial itself"),
    )
    async with serving(alice, handler) as server:
        with pytest.raises(PeerRefused) as caught:
            await connect(bob, server, alice.peer_id)
    assert (caught.value.code, caught.value.message) == ("BadRequest", "a peer cannot dial itself")
    assert handler.disconnects == []


async def test_on_hello_raising_becomes_internal_peer_error(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A failing on_hello refuses that dialer with InternalPeerError; the server lives on."""
    handler = RecordingHandler(announcement("alice"))
    calls = 0

    async def on_hello(hello: Hello, transport_host: str) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database on fire")
        return handler.own

    handler.on_hello = on_hello  # type: ignore[assignment,method-assign]
    async with serving(alice, handler) as server:
        with pytest.raises(PeerRefused) as caught:
            await connect(bob, server, alice.peer_id)
        assert str(caught.value) == "InternalPeerError: the peer failed to accept the hello"
        async with await connect(bob, server, alice.peer_id) as connection:
            assert await connection.request(Ping()) == Pong()


# --- requests ---------------------------------------------------------------------------


async def test_requests_are_answered_by_the_handler(alice: PeerIdentity, bob: PeerIdentity) -> None:
    """Ping, GetGame (found and not found), deltas (ack and resync) and Goodbye round-trip."""
    handler = RecordingHandler(
        announcement("alice"), games={"quake3": game_files("quake3", "q.eti", "version.ini")}
    )
    async with serving(alice, handler) as server, await connect(bob, server, alice.peer_id) as c:
        assert await c.request(Ping()) == Pong()
        files = await c.request(GetGame(game_id="quake3"))
        assert files == handler.games["quake3"]
        with pytest.raises(PeerRefused) as caught:
            await c.request(GetGame(game_id="doom"))
        assert (caught.value.code, caught.value.message) == (
            "GameNotFound",
            "doom is not served here",
        )
        before = make_snapshot(1, [game("doom")])
        after = make_snapshot(2, [game("doom", "1.1"), game("quake3")])
        delta = diff_snapshots(before, after)
        assert await c.request(PushLibraryDelta(delta=delta)) == LibraryDeltaAck(revision=2)
        assert handler.libraries[bob.peer_id] == after
        stale = await c.request(PushLibraryDelta(delta=delta))
        assert stale == ResyncRequired(
            known_revision=2, reason="delta from revision 1 does not apply to revision 2"
        )
        assert await c.request(Goodbye()) == GoodbyeAck()
    assert [type(request) for _, request in handler.requests] == [
        Ping,
        GetGame,
        GetGame,
        PushLibraryDelta,
        PushLibraryDelta,
        Goodbye,
    ]
    assert handler.disconnects == [bob.peer_id]


async def test_concurrent_requests_are_answered_out_of_order(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A slow request does not block a later one; each answer reaches its own caller."""
    release_slow = asyncio.Event()
    finished: list[str] = []

    async def behaviour(peer_id: str, request: Request) -> Response:
        if isinstance(request, GetGame) and request.game_id == "slow":
            await release_slow.wait()
            return game_files("slow", "slow.eti")
        return game_files("fast", "fast.eti")

    handler = RecordingHandler(announcement("alice"), behaviour=behaviour)
    async with serving(alice, handler) as server, await connect(bob, server, alice.peer_id) as c:

        async def fetch(game_id: str) -> ManifestResponse:
            files = await c.request(GetGame(game_id=game_id))
            finished.append(game_id)
            return files

        async with asyncio.TaskGroup() as group:
            slow = group.create_task(fetch("slow"))
            await handler.wait_until(lambda: len(handler.requests) == 1, "the first request")
            fast = group.create_task(fetch("fast"))
            await handler.wait_until(lambda: len(handler.requests) == 2, "the second request")
            assert await fast == game_files("fast", "fast.eti")
            assert finished == ["fast"]
            release_slow.set()
        assert slow.result() == game_files("slow", "slow.eti")
        assert finished == ["fast", "slow"]


async def test_in_flight_requests_per_connection_are_bounded(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """The server runs at most MAX_IN_FLIGHT_REQUESTS handlers per connection at once."""
    gate = asyncio.Event()
    running = 0
    peak = 0

    async def behaviour(peer_id: str, request: Request) -> Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return Pong()

    handler = RecordingHandler(announcement("alice"), behaviour=behaviour)
    total = MAX_IN_FLIGHT_REQUESTS + 8
    async with serving(alice, handler) as server, await connect(bob, server, alice.peer_id) as c:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c.request(Ping())) for _ in range(total)]
            await handler.wait_until(
                lambda: len(handler.requests) == MAX_IN_FLIGHT_REQUESTS,
                "the most requests in flight",
            )
            gate.set()
        assert [task.result() for task in tasks] == [Pong()] * total
    assert peak == MAX_IN_FLIGHT_REQUESTS
    assert len(handler.requests) == total


async def test_a_request_times_out_and_the_connection_stays_usable(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """No answer within the request's timeout gives TransportError; a late answer is dropped."""
    release = asyncio.Event()

    async def behaviour(peer_id: str, request: Request) -> Response:
        if isinstance(request, GetGame):
            await release.wait()
            return game_files("late", "late.eti")
        return Pong()

    handler = RecordingHandler(announcement("alice"), behaviour=behaviour)
    async with serving(alice, handler) as server, await connect(bob, server, alice.peer_id) as c:
        with pytest.raises(TransportError) as caught:
            await c.request(GetGame(game_id="late"), timeout=0.05)
        assert str(caught.value) == (
            f"no answer to GetGame from peer {alice.peer_id} within 0.05 s"
        )
        release.set()
        assert await c.request(Ping()) == Pong()
        assert await c.request(Ping()) == Pong()
        assert not c.is_closed


async def test_a_raising_handler_becomes_internal_peer_error_and_the_server_keeps_working(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """on_request raising, or answering with the wrong type, is InternalPeerError."""

    async def behaviour(peer_id: str, request: Request) -> Response:
        if isinstance(request, GetGame) and request.game_id == "boom":
            raise RuntimeError("disk on fire")
        if isinstance(request, GetGame):
            return Pong()  # the wrong kind of answer for GetGame
        return Pong()

    handler = RecordingHandler(announcement("alice"), behaviour=behaviour)
    async with serving(alice, handler) as server, await connect(bob, server, alice.peer_id) as c:
        with pytest.raises(PeerRefused) as caught:
            await c.request(GetGame(game_id="boom"))
        assert str(caught.value) == "InternalPeerError: the peer failed while handling GetGame"
        with pytest.raises(PeerRefused) as caught:
            await c.request(GetGame(game_id="other"))
        assert caught.value.code == ErrorCode.INTERNAL_PEER_ERROR
        assert await c.request(Ping()) == Pong()
        async with await connect(bob, server, alice.peer_id) as second:
            assert await second.request(Ping()) == Pong()


# --- closing ------------------------------------------------------------------------------


async def test_server_close_fails_pending_requests_promptly_and_awaits_every_task(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """Closing the server ends a stuck request with ConnectionClosed, long before its timeout."""
    never = asyncio.Event()

    async def behaviour(peer_id: str, request: Request) -> Response:
        await never.wait()
        return Pong()

    handler = RecordingHandler(announcement("alice"), behaviour=behaviour)
    server = PeerServer(alice, handler, host="127.0.0.1", port=0)
    await server.__aenter__()
    connection = await connect(bob, server, alice.peer_id)
    async with asyncio.TaskGroup() as group:
        pending = group.create_task(outcome(connection.request(Ping(), timeout=60)))
        await handler.wait_until(lambda: len(handler.requests) == 1, "the first request")
        await server.close()
        assert server.connection_count == 0
    failure = pending.result()
    assert isinstance(failure, ConnectionClosed)
    assert str(failure) == f"127.0.0.1:{server.port} closed the connection"
    reason = await connection.wait_closed()
    assert isinstance(reason, ConnectionClosed)
    assert handler.disconnects == [bob.peer_id]
    with pytest.raises(ConnectionClosed):
        await connection.request(Ping())
    await connection.close()
    await server.close()  # idempotent
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []


async def test_client_close_fails_its_own_pending_requests(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """close() while another task awaits an answer fails that request at once."""
    never = asyncio.Event()

    async def behaviour(peer_id: str, request: Request) -> Response:
        await never.wait()
        return Pong()

    handler = RecordingHandler(announcement("alice"), behaviour=behaviour)
    async with serving(alice, handler) as server:
        connection = await connect(bob, server, alice.peer_id)
        async with asyncio.TaskGroup() as group:
            pending = group.create_task(outcome(connection.request(Ping(), timeout=60)))
            await handler.wait_until(lambda: len(handler.requests) == 1, "the first request")
            await connection.close()
        failure = pending.result()
        assert isinstance(failure, ConnectionClosed)
        assert str(failure) == f"connection to peer {alice.peer_id} closed by this peer"
        assert str(await connection.wait_closed()) == str(failure)
        await handler.wait_until(lambda: handler.disconnects == [bob.peer_id], "bob's disconnect")
        assert server.connection_count == 0
