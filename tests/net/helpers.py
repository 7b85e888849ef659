"""Test doubles for the transport: a recording server handler, fake peers, builders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from tests.support.waiting import wait_until

from lanspread.core.library import (
    Availability,
    DeltaMismatch,
    GameSummary,
    LibrarySnapshot,
    apply_delta,
    make_snapshot,
)
from lanspread.core.manifest import MIN_CHUNK_SIZE, ChunkDigest, FileManifest, GameManifest
from lanspread.net.handshake import build_hello_ack, new_challenge
from lanspread.net.identity import PeerIdentity
from lanspread.net.stream import FramedStream
from lanspread.net.tls import (
    accept_tls_connection,
    create_listener,
    open_tls_connection,
    server_context,
)
from lanspread.net.wire import (
    NONCE_SIZE,
    Announcement,
    CatalogAck,
    ErrorCode,
    ErrorResponse,
    GetGame,
    GetTicket,
    Goodbye,
    GoodbyeAck,
    HaveDeltaAck,
    Hello,
    LibraryDeltaAck,
    ManifestResponse,
    OfferCatalog,
    Ping,
    Pong,
    PushHaveDelta,
    PushLibraryDelta,
    Request,
    Response,
    ResyncRequired,
)

WAIT = 10.0
"""Upper bound for any wait in these tests; reaching it means the test failed."""


def game(game_id: str, version: str = "1.0") -> GameSummary:
    return GameSummary(
        id=game_id,
        availability=Availability.READY,
        version=version,
        installed=False,
        size_bytes=1000,
    )


def announcement(name: str, *game_ids: str, port: int = 40_000) -> Announcement:
    return Announcement(
        name=name,
        listen_host="127.0.0.1",
        listen_port=port,
        library=make_snapshot(1, [game(game_id) for game_id in game_ids]),
    )


RequestBehaviour = Callable[[str, Request], Awaitable[Response]]


@dataclass
class RecordingHandler:
    """A ServerHandler that records what it sees and answers like a small peer."""

    own: Announcement
    games: dict[str, ManifestResponse] = field(default_factory=dict)
    behaviour: RequestBehaviour | None = None
    refuse_hello: ErrorResponse | None = None
    hellos: list[tuple[Hello, str]] = field(default_factory=list)
    requests: list[tuple[str, Request]] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    libraries: dict[str, LibrarySnapshot] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_hello(self, hello: Hello, transport_host: str) -> Announcement | ErrorResponse:
        self.hellos.append((hello, transport_host))
        self.changed.set()
        if self.refuse_hello is not None:
            return self.refuse_hello
        self.libraries[hello.peer_id] = hello.announcement.library
        return self.own

    async def on_request(self, peer_id: str, request: Request) -> Response:
        self.requests.append((peer_id, request))
        self.changed.set()
        if self.behaviour is not None:
            return await self.behaviour(peer_id, request)
        return self.answer(peer_id, request)

    async def on_disconnect(self, peer_id: str) -> None:
        self.disconnects.append(peer_id)
        self.changed.set()

    def answer(self, peer_id: str, request: Request) -> Response:
        match request:
            case Ping():
                return Pong()
            case Goodbye():
                return GoodbyeAck()
            case GetGame(game_id=game_id):
                if game_id in self.games:
                    return self.games[game_id]
                return ErrorResponse(
                    code=ErrorCode.GAME_NOT_FOUND, message=f"{game_id} is not served here"
                )
            case GetTicket(game_id=game_id):
                return ErrorResponse(
                    code=ErrorCode.GAME_NOT_FOUND, message=f"no ticket for {game_id} here"
                )
            case OfferCatalog():
                return CatalogAck(serial=0)
            case PushHaveDelta():
                return HaveDeltaAck(accepted=False)
            case PushLibraryDelta(delta=delta):
                known = self.libraries.get(peer_id)
                if known is None:
                    return ResyncRequired(known_revision=None, reason="no library known")
                try:
                    self.libraries[peer_id] = apply_delta(known, delta)
                except DeltaMismatch as exc:
                    return ResyncRequired(known_revision=known.revision, reason=str(exc))
                return LibraryDeltaAck(revision=delta.revision)

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait (bounded) until ``condition`` holds; re-checked on every handler call."""
        await wait_until(condition, what, timeout=WAIT, changed=self.changed)


def game_files(game_id: str, *paths: str) -> ManifestResponse:
    """A GetGame answer: a manifest of ``paths``, each one 10-byte chunk."""
    files = tuple(
        FileManifest(path=path, size=10, chunks=(ChunkDigest(0, 10, bytes(32)),))
        for path in sorted(paths)
    )
    manifest = GameManifest(game_id=game_id, version="1.0", chunk_size=MIN_CHUNK_SIZE, files=files)
    return ManifestResponse(manifest=manifest)


async def open_raw_client(port: int) -> FramedStream:
    """A TLS connection to ``port`` with nothing sent yet: the start of a fake dialer."""
    reader, writer = await open_tls_connection(
        "127.0.0.1", port, connect_timeout=WAIT, handshake_timeout=WAIT
    )
    return FramedStream(reader, writer)


async def read_until_eof(stream: FramedStream) -> bytes:
    """Every byte the other side sends until it closes (bounded by WAIT)."""
    chunks = []
    async with asyncio.timeout(WAIT):
        while chunk := await stream._reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


FakeBehaviour = Callable[[FramedStream], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_listener(identity: PeerIdentity, behaviour: FakeBehaviour) -> AsyncIterator[int]:
    """A listener that runs ``behaviour`` on the first TLS connection; yields its port.

    The behaviour is cancelled when the block ends, and the stream is closed.
    """
    context = server_context(identity)
    listener = create_listener("127.0.0.1", 0)
    port = int(listener.getsockname()[1])

    async def serve_one() -> None:
        sock, _ = await asyncio.get_running_loop().sock_accept(listener)
        reader, writer = await accept_tls_connection(sock, context, handshake_timeout=WAIT)
        stream = FramedStream(reader, writer)
        try:
            await behaviour(stream)
        finally:
            await stream.close()

    try:
        async with asyncio.TaskGroup() as task_group:
            task = task_group.create_task(serve_one())
            try:
                yield port
            finally:
                task.cancel()
    finally:
        listener.close()


async def fake_server_handshake(stream: FramedStream, identity: PeerIdentity) -> Hello:
    """The listener's half of the handshake without any checks, for fake servers."""
    await stream.exchange_preamble()
    await stream.send(new_challenge(identity, bytes(NONCE_SIZE)))
    hello = await stream.receive()
    assert isinstance(hello, Hello)
    await stream.send(build_hello_ack(identity, announcement("fake")))
    return hello
