"""The data plane on loopback: real tickets over TLS, real sendfile, hostile peers on both ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.net.helpers import WAIT, RecordingHandler, announcement
from tests.support.sink import Sink
from tests.support.waiting import wait_until

from lanspread.core.manifest import MIN_CHUNK_SIZE, GameManifest
from lanspread.core.planning import ChunkTask, manifest_tasks
from lanspread.core.servegate import MAX_CHUNK_LENGTH, GateState
from lanspread.core.tickets import TOKEN_SIZE
from lanspread.download.dataclient import ChunkOutcome, ChunkResult, DataConnection
from lanspread.errors import PeerRefused, StorageError, TransportError
from lanspread.files.hashing import hash_game_payload
from lanspread.net import sendfile as sendfile_module
from lanspread.net.connection import PeerConnection, dial
from lanspread.net.dataplane import AdmissionRefused, DataPlaneCancelled
from lanspread.net.datawire import (
    HEADER_SIZE,
    HELLO_SIZE,
    MAX_REQUEST_FRAME_SIZE,
    ChunkRequest,
    DataStatus,
    RequestDecoder,
    decode_header,
    encode_header,
    encode_hello,
    encode_request,
)
from lanspread.net.identity import load_or_create_identity
from lanspread.net.peer_server import PeerServer
from lanspread.net.sendfile import FileEndedEarly, pwrite_all
from lanspread.net.wire import GetTicket, Request, Response, Ticket
from lanspread.platform import fileio
from lanspread.seeding.dataserver import (
    MAX_DATA_CONNECTIONS_PER_PEER,
    DataServer,
    ServeScope,
    answer_ticket_request,
)

GAME = "quake3"
OLD = -1e9
"""When the peer asking for tickets was first seen: long ago, so it is not fresh."""
OTHER_GAME = "doom"
DATA_SIZE = 3 * MIN_CHUNK_SIZE + 12_345  # four chunks, the last one short
FD_DIR = Path("/proc/self/fd")


# --- fixtures -----------------------------------------------------------------------------


@dataclass
class Gate:
    """The serve scope a test can change between requests."""

    game_dir: Path
    catalog: set[str] = field(default_factory=lambda: {GAME, OTHER_GAME})
    busy: set[str] = field(default_factory=set)

    def __call__(self) -> ServeScope:
        return ServeScope(self.game_dir, GateState(frozenset(self.catalog), frozenset(self.busy)))


@dataclass
class Library:
    gate: Gate
    manifest: GameManifest

    @property
    def root(self) -> Path:
        return self.gate.game_dir / GAME


def _write_game(game_dir: Path) -> GameManifest:
    root = game_dir / GAME
    (root / "sub").mkdir(parents=True)
    (root / "local").mkdir()
    (root / "version.ini").write_text("1.0")
    (root / "data.eti").write_bytes(os.urandom(DATA_SIZE))
    (root / "sub" / "extra.eti").write_bytes(os.urandom(5000))
    (root / "local" / "saves.dat").write_bytes(b"secret save")
    (root / ".lanspread.json").write_text("{}")
    manifest = hash_game_payload(root, GAME, "1.0", chunk_size=MIN_CHUNK_SIZE)
    (root / "link.eti").symlink_to(root / "data.eti")
    other = game_dir / OTHER_GAME
    other.mkdir()
    (other / "version.ini").write_text("2.0")
    return manifest


@pytest.fixture
def library(tmp_path: Path) -> Library:
    game_dir = tmp_path / "games"
    return Library(Gate(game_dir), _write_game(game_dir))


@pytest.fixture(autouse=True)
def _no_leaked_fds() -> Iterator[None]:
    """Fail a test that leaves descriptors open (sockets, served files, sinks)."""
    before = set(FD_DIR.iterdir())
    yield
    leaked = set(FD_DIR.iterdir()) - before
    described = {fd: _describe_fd(fd) for fd in leaked}
    assert not leaked, f"test leaked descriptors: {described}"


def _describe_fd(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:
        return "?"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    target = Sink(tmp_path / "download")
    yield target
    target.close()


@pytest.fixture
async def data_server(library: Library) -> AsyncIterator[DataServer]:
    async with DataServer(library.gate, host="127.0.0.1", port=0) as server:
        yield server


@contextlib.asynccontextmanager
async def control_channel(
    identity_dir: Path, server: DataServer, gate: Gate
) -> AsyncIterator[PeerConnection]:
    """A real TLS peer server whose GetTicket answer is the runtime's; yields bob's link."""
    alice = load_or_create_identity(identity_dir / "alice")
    bob = load_or_create_identity(identity_dir / "bob")

    async def behaviour(peer_id: str, request: Request) -> Response:
        assert isinstance(request, GetTicket)
        return await answer_ticket_request(
            server, peer_id, request.game_id, gate(), address="127.0.0.1", known_since=OLD
        )

    handler = RecordingHandler(announcement("alice"), behaviour=behaviour)
    async with PeerServer(alice, handler, host="127.0.0.1", port=0) as peer_server:
        link = await dial(
            "127.0.0.1",
            peer_server.port,
            identity=bob,
            expected_peer_id=alice.peer_id,
            announce=lambda: announcement("bob"),
        )
        async with link:
            yield link


@pytest.fixture
async def link(
    tmp_path: Path, data_server: DataServer, library: Library
) -> AsyncIterator[PeerConnection]:
    async with control_channel(tmp_path / "ids", data_server, library.gate) as connection:
        yield connection


async def ticket(link: PeerConnection, game_id: str = GAME) -> Ticket:
    return await link.request(GetTicket(game_id=game_id))


async def collect(
    connection: DataConnection, tasks: Sequence[ChunkTask], sink: Sink
) -> list[ChunkResult]:
    async with contextlib.aclosing(connection.fetch(tasks, sink)) as results:
        return [result async for result in results]


def task_for(path: str, offset: int, length: int) -> ChunkTask:
    return ChunkTask(path, offset, length, bytes(32))


def chunk_of(library: Library, path: str, index: int = 0) -> ChunkTask:
    file = library.manifest.by_path()[path]
    chunk = file.chunks[index]
    return ChunkTask(path, chunk.offset, chunk.length, chunk.blake3)


# --- fetching -------------------------------------------------------------------------------


async def test_fetches_every_chunk_byte_exact_with_a_tls_issued_ticket(
    library: Library, data_server: DataServer, link: PeerConnection, sink: Sink
) -> None:
    """A ticket from GetTicket admits; every chunk arrives verified and lands at its offset."""
    issued = await ticket(link)
    assert (issued.data_port, issued.ttl_seconds) == (data_server.port, data_server.tickets.ttl)
    tasks = manifest_tasks(library.manifest)
    async with await DataConnection.open("127.0.0.1", issued.data_port, issued.token) as conn:
        results = await collect(conn, tasks, sink)
        assert conn.bytes_received == library.manifest.total_bytes
    assert [result.outcome for result in results] == [ChunkOutcome.OK] * len(tasks)
    assert [result.task for result in results] == list(tasks)
    for path in ("data.eti", "sub/extra.eti", "version.ini"):
        assert (sink.base / path).read_bytes() == (library.root / path).read_bytes()
    assert data_server.bytes_sent == library.manifest.total_bytes
    assert len(tasks) == 6


async def test_connection_is_counted_for_the_ticket_holder_while_open(
    data_server: DataServer, link: PeerConnection, tmp_path: Path
) -> None:
    """The server counts an admitted connection for the peer the ticket was issued to."""
    bob = load_or_create_identity(tmp_path / "ids" / "bob").peer_id
    issued = await ticket(link)
    async with await DataConnection.open("127.0.0.1", issued.data_port, issued.token):
        # Polled: the server counts connections without publishing any event.
        await wait_until(lambda: data_server.connections_of(bob) == 1, "bob's connection")
    await wait_until(lambda: data_server.connections_of(bob) == 0, "bob's connection to end")


async def test_ticket_for_a_game_that_fails_the_gate_is_refused(
    library: Library, link: PeerConnection
) -> None:
    """GetTicket answers GameNotFound for a non-catalog game and busy for an active one."""
    with pytest.raises(PeerRefused, match=r"^GameNotFound: cs16 is not served here$"):
        await ticket(link, "cs16")
    library.gate.busy.add(GAME)
    with pytest.raises(
        PeerRefused, match=r"^OperationInProgress: quake3 is busy here; retry later$"
    ):
        await ticket(link, GAME)


# --- pipelining -------------------------------------------------------------------------------


async def test_requests_are_pipelined_up_to_the_depth(library: Library, sink: Sink) -> None:
    """The client sends `depth` requests before any answer, and never more than that."""
    tasks = [chunk_of(library, "data.eti", index) for index in range(4)]
    seen: list[int] = []

    async def behaviour(sock: socket.socket, decoder: RequestDecoder) -> None:
        requests = await _receive_requests(sock, decoder, 3)
        seen.append(len(requests))
        assert _nothing_pending(sock)
        for request in requests:
            await _answer_from_disk(sock, library.root, request)
        requests = await _receive_requests(sock, decoder, 1)
        await _answer_from_disk(sock, library.root, requests[0])

    async with (
        fake_data_server(behaviour) as port,
        await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE), depth=3) as conn,
    ):
        results = await collect(conn, tasks, sink)

    assert [result.outcome for result in results] == [ChunkOutcome.OK] * 4
    assert seen == [3]


async def test_depth_out_of_bounds_is_refused(library: Library, data_server: DataServer) -> None:
    """A pipeline depth of zero is a programming error, said before dialing leaks anything."""
    issued = data_server.issue_ticket("b" * 64, GAME, address="127.0.0.1", known_since=OLD)
    with pytest.raises(ValueError, match=r"^depth must be 1 to 32, got 0$"):
        await DataConnection.open("127.0.0.1", data_server.port, issued.token, depth=0)


# --- admission ------------------------------------------------------------------------------


async def test_unknown_ticket_is_refused_and_nothing_is_sent(data_server: DataServer) -> None:
    """A token the server never issued gets TICKET_UNKNOWN and no byte of any file."""
    with pytest.raises(AdmissionRefused) as caught:
        await DataConnection.open("127.0.0.1", data_server.port, b"\x07" * TOKEN_SIZE)
    assert caught.value.status is DataStatus.TICKET_UNKNOWN
    assert str(caught.value) == (
        "TICKET_UNKNOWN: the data server refused the connection: TICKET_UNKNOWN"
    )
    assert data_server.bytes_sent == 0


async def test_used_ticket_cannot_be_replayed(
    data_server: DataServer, link: PeerConnection
) -> None:
    """A ticket admits one connection; presenting it again is refused."""
    issued = await ticket(link)
    async with await DataConnection.open("127.0.0.1", issued.data_port, issued.token):
        with pytest.raises(AdmissionRefused) as caught:
            await DataConnection.open("127.0.0.1", issued.data_port, issued.token)
    assert caught.value.status is DataStatus.TICKET_UNKNOWN


async def test_expired_ticket_is_refused(library: Library) -> None:
    """A ticket presented after its TTL is refused as expired."""
    now = [1000.0]
    server = DataServer(library.gate, host="127.0.0.1", port=0, clock=lambda: now[0])
    async with server:
        issued = server.issue_ticket("b" * 64, GAME, address="127.0.0.1", known_since=OLD)
        now[0] += server.tickets.ttl
        with pytest.raises(AdmissionRefused) as caught:
            await DataConnection.open("127.0.0.1", server.port, issued.token)
    assert caught.value.status is DataStatus.TICKET_EXPIRED
    assert server.bytes_sent == 0


async def test_ticket_for_another_game_serves_nothing_of_this_game(
    library: Library, data_server: DataServer, link: PeerConnection, sink: Sink
) -> None:
    """A doom ticket admits doom only: quake3's files are not found under it, no byte sent."""
    issued = await ticket(link, OTHER_GAME)
    tasks = [chunk_of(library, "data.eti"), chunk_of(library, "sub/extra.eti")]
    async with await DataConnection.open("127.0.0.1", issued.data_port, issued.token) as conn:
        results = await collect(conn, tasks, sink)
    assert [(r.outcome, r.status) for r in results] == [
        (ChunkOutcome.REFUSED, DataStatus.GAME_NOT_FOUND),
        (ChunkOutcome.REFUSED, DataStatus.GAME_NOT_FOUND),
    ]
    assert data_server.bytes_sent == 0


async def test_connections_per_peer_are_bounded(data_server: DataServer) -> None:
    """One connection more than MAX_DATA_CONNECTIONS_PER_PEER is refused for that peer only."""
    peer = "b" * 64
    tokens = [
        data_server.issue_ticket(peer, GAME, address="127.0.0.1", known_since=OLD).token
        for _ in range(MAX_DATA_CONNECTIONS_PER_PEER + 1)
    ]
    other = data_server.issue_ticket("c" * 64, GAME, address="127.0.0.1", known_since=OLD).token
    async with contextlib.AsyncExitStack() as stack:
        for token in tokens[:-1]:
            await stack.enter_async_context(
                await DataConnection.open("127.0.0.1", data_server.port, token)
            )
        with pytest.raises(AdmissionRefused) as caught:
            await DataConnection.open("127.0.0.1", data_server.port, tokens[-1])
        assert caught.value.status is DataStatus.TOO_MANY_CONNECTIONS
        await stack.enter_async_context(
            await DataConnection.open("127.0.0.1", data_server.port, other)
        )


async def test_other_protocol_version_is_refused(data_server: DataServer) -> None:
    """A hello of another data protocol version gets VERSION_MISMATCH, then the close."""
    token = data_server.issue_ticket("b" * 64, GAME, address="127.0.0.1", known_since=OLD).token
    async with _raw_socket(data_server.port) as sock:
        await _send(sock, encode_hello(token, version=2))
        assert await _read_all(sock) == encode_header(DataStatus.VERSION_MISMATCH)


async def test_foreign_hello_is_dropped_without_an_answer(data_server: DataServer) -> None:
    """Bytes that are not a lanspread data hello get no answer at all, just the close."""
    async with _raw_socket(data_server.port) as sock:
        await _send(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(HELLO_SIZE))
        assert await _read_all(sock) == b""


# --- the serve gate, per request ---------------------------------------------------------


async def test_every_request_passes_the_gate_and_refusals_keep_the_connection(
    library: Library, data_server: DataServer, link: PeerConnection, sink: Sink
) -> None:
    """local/, reserved names, symlinks, traversal, short files and a busy game are statuses."""
    issued = await ticket(link)
    good = chunk_of(library, "sub/extra.eti")
    refused = [
        task_for("local/saves.dat", 0, 5),
        task_for(".lanspread.json", 0, 2),
        task_for("link.eti", 0, 10),
        task_for("../doom/version.ini", 0, 3),
        task_for("data.eti", DATA_SIZE - 10, 20),
    ]
    async with await DataConnection.open("127.0.0.1", issued.data_port, issued.token) as conn:
        results = await collect(conn, [*refused, good], sink)
        assert [(r.outcome, r.status) for r in results] == [
            (ChunkOutcome.REFUSED, DataStatus.GAME_NOT_FOUND),
            (ChunkOutcome.REFUSED, DataStatus.GAME_NOT_FOUND),
            (ChunkOutcome.REFUSED, DataStatus.GAME_NOT_FOUND),
            (ChunkOutcome.REFUSED, DataStatus.GAME_NOT_FOUND),
            (ChunkOutcome.REFUSED, DataStatus.SHORT_FILE),
            (ChunkOutcome.OK, None),
        ]
        library.gate.busy.add(GAME)
        busy = await collect(conn, [good], sink)
        assert [(r.outcome, r.status, r.detail) for r in busy] == [
            (
                ChunkOutcome.REFUSED,
                DataStatus.OPERATION_IN_PROGRESS,
                "refused: OPERATION_IN_PROGRESS",
            )
        ]
        library.gate.busy.clear()
        assert [r.outcome for r in await collect(conn, [good], sink)] == [ChunkOutcome.OK]
    assert data_server.bytes_sent == 2 * good.length


async def test_chunk_longer_than_the_bound_is_a_bad_request(data_server: DataServer) -> None:
    """A request above MAX_CHUNK_LENGTH is refused with BAD_REQUEST; the connection goes on."""
    token = data_server.issue_ticket("b" * 64, GAME, address="127.0.0.1", known_since=OLD).token
    too_long = struct.pack(">QI", 0, MAX_CHUNK_LENGTH + 1) + b"data.eti"
    async with _raw_socket(data_server.port) as sock:
        await _send(sock, encode_hello(token))
        await _send(sock, struct.pack(">I", len(too_long)) + too_long)
        await _send(sock, encode_request(ChunkRequest("version.ini", 0, 3)))
        sock.shutdown(socket.SHUT_WR)
        answer = await _read_all(sock)
    assert answer == b"".join(
        [
            encode_header(DataStatus.OK),
            encode_header(DataStatus.BAD_REQUEST),
            encode_header(DataStatus.OK, 3),
            b"1.0",
        ]
    )


async def test_oversized_request_frame_closes_the_connection(data_server: DataServer) -> None:
    """A frame header above MAX_REQUEST_FRAME_SIZE ends the connection at once."""
    token = data_server.issue_ticket("b" * 64, GAME, address="127.0.0.1", known_since=OLD).token
    async with _raw_socket(data_server.port) as sock:
        await _send(sock, encode_hello(token))
        await _send(sock, struct.pack(">I", MAX_REQUEST_FRAME_SIZE + 1))
        assert await _read_all(sock) == encode_header(DataStatus.OK)
    assert data_server.bytes_sent == 0


# --- misbehaving servers ------------------------------------------------------------------


async def test_corrupted_bytes_are_a_hash_mismatch_and_the_connection_goes_on(
    library: Library, sink: Sink
) -> None:
    """A server sending wrong bytes of the right length: HASH_MISMATCH, then the next chunk OK."""
    tasks = [chunk_of(library, "data.eti", 0), chunk_of(library, "data.eti", 1)]

    async def behaviour(sock: socket.socket, decoder: RequestDecoder) -> None:
        first, second = await _receive_requests(sock, decoder, 2)
        await _answer_from_disk(sock, library.root, first, corrupt=True)
        await _answer_from_disk(sock, library.root, second)

    async with (
        fake_data_server(behaviour) as port,
        await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE)) as conn,
    ):
        results = await collect(conn, tasks, sink)
        assert conn.is_usable

    assert [(r.outcome, r.detail) for r in results] == [
        (ChunkOutcome.HASH_MISMATCH, "BLAKE3 digest differs"),
        (ChunkOutcome.OK, ""),
    ]


async def test_server_closing_mid_chunk_is_a_short_read_and_fails_the_rest(
    library: Library, sink: Sink
) -> None:
    """EOF inside a chunk: SHORT_READ for it, CONNECTION_LOST for every later task."""
    tasks = [chunk_of(library, "data.eti", index) for index in range(4)]

    async def behaviour(sock: socket.socket, decoder: RequestDecoder) -> None:
        await _receive_requests(sock, decoder, 2)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, encode_header(DataStatus.OK, tasks[0].length) + b"x" * 100)

    async with (
        fake_data_server(behaviour) as port,
        await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE), depth=2) as conn,
    ):
        results = await collect(conn, tasks, sink)
        assert not conn.is_usable

    assert [r.outcome for r in results] == [
        ChunkOutcome.SHORT_READ,
        ChunkOutcome.CONNECTION_LOST,
        ChunkOutcome.CONNECTION_LOST,
        ChunkOutcome.CONNECTION_LOST,
    ]
    assert results[0].detail == f"100 of {tasks[0].length} bytes arrived"


async def test_wrong_length_or_garbled_header_loses_the_connection(
    library: Library, sink: Sink
) -> None:
    """An OK header announcing another length than asked is a violation: all tasks fail."""
    tasks = [chunk_of(library, "version.ini"), chunk_of(library, "sub/extra.eti")]

    async def behaviour(sock: socket.socket, decoder: RequestDecoder) -> None:
        await _receive_requests(sock, decoder, 2)
        await asyncio.get_running_loop().sock_sendall(sock, encode_header(DataStatus.OK, 2))

    async with (
        fake_data_server(behaviour) as port,
        await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE)) as conn,
    ):
        results = await collect(conn, tasks, sink)

    assert [r.outcome for r in results] == [ChunkOutcome.CONNECTION_LOST] * 2
    assert results[0].detail == f"127.0.0.1:{port} announced 2 bytes for a 3-byte chunk"


async def test_failed_local_write_raises_storage_error_and_closes(
    library: Library, tmp_path: Path
) -> None:
    """A sink whose descriptor refuses writes makes fetch raise StorageError."""
    (tmp_path / "ro").write_bytes(b"")
    fd = os.open(tmp_path / "ro", os.O_RDONLY)

    class ReadOnlySink:
        def fd_for(self, task: ChunkTask) -> int:
            return fd

    async def behaviour(sock: socket.socket, decoder: RequestDecoder) -> None:
        (request,) = await _receive_requests(sock, decoder, 1)
        await _answer_from_disk(sock, library.root, request)

    try:
        async with fake_data_server(behaviour) as port:
            conn = await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE))
            with pytest.raises(StorageError, match=r"^cannot write version.ini at offset 0: "):
                async for _ in conn.fetch([chunk_of(library, "version.ini")], ReadOnlySink()):
                    pass
            assert not conn.is_usable
            await conn.close()
    finally:
        os.close(fd)


async def test_a_stalled_server_fails_the_chunk_after_the_idle_timeout(
    library: Library, sink: Sink
) -> None:
    """A server that stops sending mid-chunk: SHORT_READ once the idle timeout passes."""
    task = chunk_of(library, "data.eti")

    async def behaviour(sock: socket.socket, decoder: RequestDecoder) -> None:
        await _receive_requests(sock, decoder, 1)
        header = encode_header(DataStatus.OK, task.length)
        await asyncio.get_running_loop().sock_sendall(sock, header + b"x" * 10)
        await asyncio.Event().wait()

    async with fake_data_server(behaviour) as port:
        conn = await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE), idle_timeout=0.2)
        async with conn:
            results = await collect(conn, [task], sink)
    assert [(r.outcome, r.detail) for r in results] == [
        (
            ChunkOutcome.SHORT_READ,
            f"connection to 127.0.0.1:{port} lost: no data within the idle timeout",
        )
    ]


# --- opening and cancelling -------------------------------------------------------------


async def test_open_is_raced_against_the_cancel_event() -> None:
    """A server that never answers the hello: setting the cancel event ends the open."""
    listener = socket.create_server(("127.0.0.1", 0))
    cancel = asyncio.Event()
    try:
        port = listener.getsockname()[1]
        listener.setblocking(False)
        opening = asyncio.ensure_future(
            DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE), cancel=cancel)
        )
        accepted, _ = await asyncio.get_running_loop().sock_accept(listener)
        with accepted:
            cancel.set()
            with pytest.raises(DataPlaneCancelled, match=r"^cancelled while the data connection"):
                await opening
        with pytest.raises(DataPlaneCancelled, match=r"^cancelled before the data connection"):
            await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE), cancel=cancel)
    finally:
        listener.close()


async def test_open_times_out_and_reports_unreachable_servers() -> None:
    """A silent server times out; a closed port is a TransportError naming the cause."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        with pytest.raises(TransportError) as caught:
            await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE), connect_timeout=0.05)
        assert str(caught.value) == (f"data server 127.0.0.1:{port} did not admit us within 0.05 s")
    finally:
        listener.close()
    with pytest.raises(TransportError) as refused:
        await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE))
    assert str(refused.value) == (
        f"cannot connect to data server 127.0.0.1:{port}: Connection refused"
    )


async def test_cancelling_a_fetch_mid_chunk_cuts_the_connection(
    library: Library, sink: Sink
) -> None:
    """Cancelling the consumer while a chunk is half received stops the worker promptly."""
    task = chunk_of(library, "data.eti")
    started = asyncio.Event()

    async def behaviour(sock: socket.socket, decoder: RequestDecoder) -> None:
        await _receive_requests(sock, decoder, 1)
        await asyncio.get_running_loop().sock_sendall(
            sock, encode_header(DataStatus.OK, task.length) + b"x"
        )
        started.set()
        await asyncio.Event().wait()

    async with fake_data_server(behaviour) as port:
        conn = await DataConnection.open("127.0.0.1", port, bytes(TOKEN_SIZE))
        consumer = asyncio.ensure_future(collect(conn, [task], sink))
        await asyncio.wait_for(started.wait(), WAIT)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert not conn.is_usable
        await conn.close()


# --- fuzzing the server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    game_dir = tmp_path_factory.mktemp("fuzz") / "games"
    return Library(Gate(game_dir), _write_game(game_dir))


async def _fuzz_once(library: Library, data: bytes, framed: bool) -> None:
    async with DataServer(library.gate, host="127.0.0.1", port=0) as server:
        token = server.issue_ticket("b" * 64, GAME, address="127.0.0.1", known_since=OLD).token
        loop = asyncio.get_running_loop()
        async with _raw_socket(server.port) as sock:
            sock.setblocking(False)
            payload = struct.pack(">I", len(data)) + data if framed else data
            with contextlib.suppress(OSError):
                await loop.sock_sendall(sock, encode_hello(token) + payload)
                sock.shutdown(socket.SHUT_WR)
            async with asyncio.timeout(WAIT):
                while await loop.sock_recv(sock, 1 << 20):
                    pass
        good = server.issue_ticket("b" * 64, GAME, address="127.0.0.1", known_since=OLD).token
        async with await DataConnection.open("127.0.0.1", server.port, good) as conn:
            sink = Sink(library.gate.game_dir.parent / "fuzz-out")
            try:
                results = await collect(conn, [chunk_of(library, "version.ini")], sink)
            finally:
                sink.close()
        assert [r.outcome for r in results] == [ChunkOutcome.OK]
    current = asyncio.current_task()
    assert [task for task in asyncio.all_tasks() if task is not current] == []


FUZZ_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ_SETTINGS
@given(data=st.binary(max_size=300), framed=st.booleans())
def test_random_bytes_after_the_hello_never_crash_the_server(
    fuzz_library: Library, data: bytes, framed: bool
) -> None:
    """Any bytes after an admitted hello are answered or cut off; the server serves on."""
    asyncio.run(_fuzz_once(fuzz_library, data, framed))


# --- a fake data server for misbehaving-server tests ------------------------------------

FakeBehaviour = Callable[[socket.socket, RequestDecoder], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_data_server(behaviour: FakeBehaviour) -> AsyncIterator[int]:
    """Admits the first connection whatever its ticket, then runs ``behaviour``; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    loop = asyncio.get_running_loop()

    async def serve_one() -> None:
        sock, _ = await loop.sock_accept(listener)
        with sock:
            hello = b""
            while len(hello) < HELLO_SIZE:
                hello += await loop.sock_recv(sock, HELLO_SIZE - len(hello))
            await loop.sock_sendall(sock, encode_header(DataStatus.OK))
            await behaviour(sock, RequestDecoder())

    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(serve_one())
            try:
                yield listener.getsockname()[1]
            finally:
                task.cancel()
    finally:
        listener.close()


async def _receive_requests(
    sock: socket.socket, decoder: RequestDecoder, count: int
) -> list[ChunkRequest]:
    loop = asyncio.get_running_loop()
    requests: list[ChunkRequest] = []
    async with asyncio.timeout(WAIT):
        while len(requests) < count:
            data = await loop.sock_recv(sock, 65536)
            assert data, "the client closed early"
            requests.extend(decoder.feed(data))
    assert len(requests) == count
    return requests


def _nothing_pending(sock: socket.socket) -> bool:
    # A non-blocking peek (Windows has no MSG_DONTWAIT), then the socket's own mode again.
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)
    return False


async def _answer_from_disk(
    sock: socket.socket, root: Path, request: ChunkRequest, *, corrupt: bool = False
) -> None:
    data = bytearray((root / request.path).read_bytes()[request.offset :][: request.length])
    if corrupt:
        data[len(data) // 2] ^= 0xFF
    await asyncio.get_running_loop().sock_sendall(
        sock, encode_header(DataStatus.OK, request.length) + bytes(data)
    )


@contextlib.asynccontextmanager
async def _raw_socket(port: int) -> AsyncIterator[socket.socket]:
    """A connected non-blocking socket to use with the loop's ``sock_*`` calls."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        yield sock
    finally:
        sock.close()


async def _send(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


async def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes, bounded by WAIT.

    A server that closes with our bytes unread makes the kernel send a reset
    instead of a FIN; that is a close too.
    """
    loop = asyncio.get_running_loop()
    chunks = []
    async with asyncio.timeout(WAIT):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await loop.sock_recv(sock, 65536):
                chunks.append(chunk)
    return b"".join(chunks)


def test_header_decoding_checks_length_against_status() -> None:
    """Header helpers: a refusal carries no bytes; the header is HEADER_SIZE bytes."""
    assert decode_header(encode_header(DataStatus.OK, 7)).length == 7
    assert len(encode_header(DataStatus.GAME_NOT_FOUND)) == HEADER_SIZE
    with pytest.raises(ValueError, match=r"^only an OK header is followed by bytes$"):
        encode_header(DataStatus.GAME_NOT_FOUND, 1)


# --- the portable helpers ------------------------------------------------------------------


@pytest.mark.parametrize("native", [True, False], ids=["sendfile", "portable"])
async def test_both_send_branches_send_exact_ranges_and_refuse_short_files(
    tmp_path: Path, native: bool
) -> None:
    """The platform's branch (os.sendfile off Windows) and the Windows branch send the same
    range, and both raise FileEndedEarly when the file holds fewer bytes than asked."""
    source = tmp_path / "source.bin"
    data = os.urandom(3 * 65536 + 17)
    source.write_bytes(data)
    send = sendfile_module.send_file_range if native else sendfile_module._sendfile_portable
    left, right = socket.socketpair()
    loop = asyncio.get_running_loop()
    fd = os.open(source, os.O_RDONLY)
    try:
        left.setblocking(False)
        right.setblocking(False)

        async def receive(count: int) -> bytes:
            got = bytearray()
            while len(got) < count:
                got += await loop.sock_recv(right, count - len(got))
            return bytes(got)

        async with asyncio.TaskGroup() as group:
            reader = group.create_task(receive(len(data) - 100))
            assert await send(left, fd, 100, len(data) - 100) == len(data) - 100
        assert reader.result() == data[100:]
        with pytest.raises(FileEndedEarly):
            await send(left, fd, len(data) - 5, 10)
    finally:
        os.close(fd)
        left.close()
        right.close()


@pytest.mark.parametrize("native", [True, False], ids=["pwrite", "seek-and-write"])
def test_both_positional_write_branches_write_at_the_offset(tmp_path: Path, native: bool) -> None:
    """pwrite and the Windows seek-and-write branch put the bytes at the offset asked."""
    target = tmp_path / "target.bin"
    target.write_bytes(bytes(10))
    write = fileio.pwrite if native else fileio._pwrite_seeking
    fd = os.open(target, os.O_WRONLY)
    try:
        write(fd, memoryview(b"abc"), 4)
        pwrite_all(fd, b"z", 9)
    finally:
        os.close(fd)
    assert target.read_bytes() == b"\0\0\0\0abc\0\0z"
