"""Serving a partial copy on loopback: a real DataServer, real tickets, real sendfile.

The partial root holds the manifest's files at full size, but only chunks 0 and 2 of
``data.eti`` carry their real bytes (the others are zeros, as a download leaves them
before they arrive). The provider vouches for what the test says is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.net.helpers import WAIT, RecordingHandler, announcement

from lanspread.core.bitfield import ChunkBitfield
from lanspread.core.manifest import MIN_CHUNK_SIZE, GameManifest, manifest_digest
from lanspread.core.partial import ChunkLayout, VerifiedChunks
from lanspread.core.servegate import GateState, ServeErrorCode
from lanspread.errors import PeerRefused
from lanspread.files.hashing import hash_game_payload
from lanspread.net.connection import dial
from lanspread.net.datawire import (
    HEADER_SIZE,
    ChunkRequest,
    DataStatus,
    decode_header,
    encode_hello,
    encode_request,
)
from lanspread.net.identity import load_or_create_identity
from lanspread.net.peer_server import PeerServer
from lanspread.net.wire import ErrorCode, ErrorResponse, GetTicket, Request, Response, Ticket
from lanspread.seeding.dataserver import (
    _STATUS_FOR_CODE,
    DataServer,
    ServeScope,
    answer_ticket_request,
)

GAME = "quake3"
COMPLETE_GAME = "doom"
PEER = "b" * 64
OLD = -1e9
"""When the asking peer was first seen: long ago, so it is not fresh."""
CS = MIN_CHUNK_SIZE
DATA_SIZE = 3 * CS + 12_345
"""data.eti: chunks 0-3, the last one short; sub/extra.eti is chunk 4, version.ini chunk 5."""
FD_DIR = Path("/proc/self/fd")


@dataclass
class Provider:
    """The runtime's PartialProvider, as a test drives it."""

    current: dict[str, VerifiedChunks] = field(default_factory=dict)

    def verified(self, game_id: str) -> VerifiedChunks | None:
        return self.current.get(game_id)


@dataclass
class Swarm:
    """A seeder's game directory with one partial copy and one complete game."""

    game_dir: Path
    source: Path
    manifest: GameManifest
    provider: Provider = field(default_factory=Provider)

    @property
    def digest(self) -> str:
        return manifest_digest(self.manifest)

    @property
    def root(self) -> Path:
        return self.game_dir / GAME

    def scope(self) -> ServeScope:
        # The download is an active operation: the whole-game rules refuse the game.
        gate = GateState(frozenset({GAME, COMPLETE_GAME}), frozenset({GAME}))
        return ServeScope(self.game_dir, gate, self.provider)

    def vouch(self, *durable: int, digest: str | None = None) -> None:
        self.provider.current[GAME] = VerifiedChunks(
            manifest_digest=digest or self.digest,
            version="2.0",
            layout=ChunkLayout(self.manifest),
            durable=ChunkBitfield.from_indexes(self.manifest.chunk_count, durable),
        )

    def source_bytes(self, path: str, offset: int, length: int) -> bytes:
        with (self.source / path).open("rb") as file:
            file.seek(offset)
            return file.read(length)


def _build(tmp_path: Path) -> Swarm:
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "data.eti").write_bytes(os.urandom(DATA_SIZE))
    (source / "sub" / "extra.eti").write_bytes(os.urandom(5000))
    (source / "version.ini").write_text("2.0")
    manifest = hash_game_payload(source, GAME, "2.0", chunk_size=CS)
    game_dir = tmp_path / "games"
    root = game_dir / GAME
    (root / "sub").mkdir(parents=True)
    (root / "local").mkdir()
    (root / "local" / "saves.dat").write_bytes(b"secret save")
    data = bytearray(DATA_SIZE)
    real = (source / "data.eti").read_bytes()
    for index in (0, 2):
        data[index * CS : (index + 1) * CS] = real[index * CS : (index + 1) * CS]
    (root / "data.eti").write_bytes(bytes(data))
    (root / "sub" / "extra.eti").write_bytes(bytes(5000))
    # An old sentinel and a file the manifest does not list: neither is ever served.
    (root / "version.ini").write_text("1.0")
    (root / "notes.txt").write_bytes(b"not in the manifest")
    complete = game_dir / COMPLETE_GAME
    complete.mkdir()
    (complete / "version.ini").write_text("5")
    return Swarm(game_dir, source, manifest)


@pytest.fixture
def swarm(tmp_path: Path) -> Swarm:
    built = _build(tmp_path)
    built.vouch(0, 2)
    return built


@pytest.fixture(autouse=True)
def _no_leaked_fds() -> Iterator[None]:
    """Fail a test that leaves descriptors open (sockets, served files)."""
    before = set(FD_DIR.iterdir())
    yield
    leaked = set(FD_DIR.iterdir()) - before
    assert not leaked, f"test leaked descriptors: {leaked}"


@pytest.fixture
async def server(swarm: Swarm) -> AsyncIterator[DataServer]:
    async with DataServer(swarm.scope, host="127.0.0.1", port=0) as data_server:
        yield data_server


async def partial_ticket(
    server: DataServer, swarm: Swarm, digest: str | None = None, game_id: str = GAME
) -> Ticket | ErrorResponse:
    """What the runtime answers a GetTicket naming a manifest digest."""
    return await answer_ticket_request(
        server,
        PEER,
        game_id,
        swarm.scope(),
        address="127.0.0.1",
        known_since=OLD,
        manifest_digest=swarm.digest if digest is None else digest,
    )


class Client:
    """A raw data-plane client: one request, one answer, so a test acts in between."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def ask(self, path: str, offset: int, length: int) -> tuple[DataStatus, bytes]:
        async with asyncio.timeout(WAIT):
            self._writer.write(encode_request(ChunkRequest(path, offset, length)))
            await self._writer.drain()
            header = decode_header(await self._reader.readexactly(HEADER_SIZE))
            return header.status, await self._reader.readexactly(header.length)


@contextlib.asynccontextmanager
async def connect(port: int, ticket: Ticket | ErrorResponse) -> AsyncIterator[Client]:
    assert isinstance(ticket, Ticket), ticket
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(encode_hello(ticket.token))
        async with asyncio.timeout(WAIT):
            admitted = decode_header(await reader.readexactly(HEADER_SIZE))
        assert admitted.status is DataStatus.OK
        yield Client(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# --- what is served ---------------------------------------------------------------------------


async def test_a_verified_chunk_of_a_partial_root_is_served_byte_exact(
    swarm: Swarm, server: DataServer
) -> None:
    """Durable chunks of a game being downloaded (busy, no sentinel of its version) are sent."""
    async with connect(server.port, await partial_ticket(server, swarm)) as client:
        assert await client.ask("data.eti", 0, CS) == (
            DataStatus.OK,
            swarm.source_bytes("data.eti", 0, CS),
        )
        assert await client.ask("data.eti", 2 * CS + 7, 100) == (
            DataStatus.OK,
            swarm.source_bytes("data.eti", 2 * CS + 7, 100),
        )
    assert server.bytes_sent == CS + 100


async def test_an_unverified_chunk_is_refused_and_the_connection_stays_usable(
    swarm: Swarm, server: DataServer
) -> None:
    """A missing chunk, or a range spanning a held and a missing one, sends nothing."""
    async with connect(server.port, await partial_ticket(server, swarm)) as client:
        assert await client.ask("data.eti", CS, CS) == (DataStatus.CHUNK_NOT_AVAILABLE, b"")
        assert await client.ask("data.eti", CS - 10, 20) == (DataStatus.CHUNK_NOT_AVAILABLE, b"")
        assert await client.ask("sub/extra.eti", 0, 5000) == (DataStatus.CHUNK_NOT_AVAILABLE, b"")
        assert server.bytes_sent == 0
        status, _ = await client.ask("data.eti", 0, CS)
    assert status is DataStatus.OK


async def test_the_sentinel_and_unlisted_files_are_never_served(
    swarm: Swarm, server: DataServer
) -> None:
    """version.ini (even if a buggy provider marks it durable), local/ and unlisted files."""
    swarm.vouch(*range(swarm.manifest.chunk_count))
    async with connect(server.port, await partial_ticket(server, swarm)) as client:
        assert await client.ask("version.ini", 0, 3) == (DataStatus.CHUNK_NOT_AVAILABLE, b"")
        assert await client.ask("notes.txt", 0, 5) == (DataStatus.GAME_NOT_FOUND, b"")
        assert await client.ask("local/saves.dat", 0, 5) == (DataStatus.GAME_NOT_FOUND, b"")
        assert await client.ask(".lanspread.download.json", 0, 1) == (
            DataStatus.GAME_NOT_FOUND,
            b"",
        )
    assert server.bytes_sent == 0


async def test_a_symlink_in_place_of_a_durable_file_is_refused(
    swarm: Swarm, server: DataServer
) -> None:
    """The disk rules still hold: a link where a manifest file should be is not followed."""
    swarm.vouch(0, 2, 4)
    extra = swarm.root / "sub" / "extra.eti"
    extra.unlink()
    extra.symlink_to(swarm.root / "data.eti")
    async with connect(server.port, await partial_ticket(server, swarm)) as client:
        assert await client.ask("sub/extra.eti", 0, 5000) == (DataStatus.GAME_NOT_FOUND, b"")
    assert server.bytes_sent == 0


async def test_a_file_shorter_than_the_manifest_says_is_refused(
    swarm: Swarm, server: DataServer
) -> None:
    """A durable chunk past the end of the file on disk answers SHORT_FILE, sends nothing."""
    swarm.vouch(0, 2, 3)
    os.truncate(swarm.root / "data.eti", 3 * CS)
    async with connect(server.port, await partial_ticket(server, swarm)) as client:
        assert await client.ask("data.eti", 3 * CS, 12_345) == (DataStatus.SHORT_FILE, b"")
    assert server.bytes_sent == 0


# --- when nothing is served -----------------------------------------------------------------


async def test_nothing_is_served_once_the_provider_lets_go(
    swarm: Swarm, server: DataServer
) -> None:
    """Cancel or discard: the next request on an open connection, and any new ticket, refused."""
    ticket = await partial_ticket(server, swarm)
    async with connect(server.port, ticket) as client:
        status, _ = await client.ask("data.eti", 0, CS)
        assert status is DataStatus.OK
        del swarm.provider.current[GAME]
        assert await client.ask("data.eti", 0, CS) == (DataStatus.GAME_NOT_FOUND, b"")
    assert await partial_ticket(server, swarm) == ErrorResponse(
        code=ErrorCode.GAME_NOT_FOUND,
        message=f"{GAME} is not served here at manifest {swarm.digest}",
    )
    assert server.bytes_sent == CS


async def test_another_manifest_digest_is_refused(swarm: Swarm, server: DataServer) -> None:
    """A ticket for another manifest is refused; a download that moved on serves nothing old."""
    other = "e" * 64
    assert await partial_ticket(server, swarm, other) == ErrorResponse(
        code=ErrorCode.GAME_NOT_FOUND, message=f"{GAME} is not served here at manifest {other}"
    )
    async with connect(server.port, await partial_ticket(server, swarm)) as client:
        swarm.vouch(0, 2, digest=other)
        assert await client.ask("data.eti", 0, CS) == (DataStatus.GAME_NOT_FOUND, b"")
    assert server.bytes_sent == 0


async def test_a_plain_ticket_never_reaches_a_partial_copy(
    swarm: Swarm, server: DataServer
) -> None:
    """Without a manifest digest the whole-game rules apply: the download keeps it busy."""
    answer = await answer_ticket_request(
        server, PEER, GAME, swarm.scope(), address="127.0.0.1", known_since=OLD
    )
    assert answer == ErrorResponse(
        code=ErrorCode.OPERATION_IN_PROGRESS, message=f"{GAME} is busy here; retry later"
    )


async def test_a_partial_ticket_never_reaches_a_complete_copy(
    swarm: Swarm, server: DataServer
) -> None:
    """A complete game nobody downloads has no partial copy to serve under a digest."""
    answer = await partial_ticket(server, swarm, game_id=COMPLETE_GAME)
    assert isinstance(answer, ErrorResponse)
    assert answer.code is ErrorCode.GAME_NOT_FOUND


def test_every_serve_code_has_a_data_status() -> None:
    """The new partial code maps to its own data-plane status, like every other."""
    assert set(_STATUS_FOR_CODE) == set(ServeErrorCode)
    assert _STATUS_FOR_CODE[ServeErrorCode.CHUNK_NOT_AVAILABLE] is DataStatus.CHUNK_NOT_AVAILABLE


# --- through the control channel ----------------------------------------------------------


async def test_get_ticket_with_a_manifest_digest_over_tls(
    swarm: Swarm, server: DataServer, tmp_path: Path
) -> None:
    """GetTicket(manifest_digest) over a real TLS link gets a ticket that serves the chunk."""
    alice = load_or_create_identity(tmp_path / "ids" / "alice")
    bob = load_or_create_identity(tmp_path / "ids" / "bob")

    async def behaviour(peer_id: str, request: Request) -> Response:
        assert isinstance(request, GetTicket)
        return await answer_ticket_request(
            server,
            peer_id,
            request.game_id,
            swarm.scope(),
            address="127.0.0.1",
            known_since=OLD,
            manifest_digest=request.manifest_digest,
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
            ticket = await link.request(GetTicket(game_id=GAME, manifest_digest=swarm.digest))
            with pytest.raises(
                PeerRefused, match=rf"^GameNotFound: {GAME} is not served here at manifest e+$"
            ):
                await link.request(GetTicket(game_id=GAME, manifest_digest="e" * 64))
    async with connect(ticket.data_port, ticket) as client:
        assert await client.ask("data.eti", 2 * CS, CS) == (
            DataStatus.OK,
            swarm.source_bytes("data.eti", 2 * CS, CS),
        )


def test_the_fixture_root_is_what_the_docstring_says(tmp_path: Path) -> None:
    """Chunk numbering of the fixture: data.eti 0-3, sub/extra.eti 4, version.ini 5."""
    built = _build(tmp_path)
    layout = ChunkLayout(built.manifest)
    assert layout.chunk_count == 6
    assert [layout.index_of("data.eti", o) for o in (0, CS, 2 * CS, 3 * CS)] == [0, 1, 2, 3]
    assert (layout.index_of("sub/extra.eti", 0), layout.index_of("version.ini", 0)) == (4, 5)
