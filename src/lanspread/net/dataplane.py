"""The data plane: a plain-TCP chunk server with zero-copy sends, and its pipelined client.

Theory of operation
-------------------
The wire format is in :mod:`lanspread.net.datawire`; this module is its shell.

**Server.** :class:`DataServer` listens on its own port. Right after ``accept``,
before reading a byte, a connection needs an admission slot
(``core/admission``): at most :data:`MAX_UNADMITTED_PER_ADDRESS` per source
address and :data:`MAX_UNADMITTED` in all (the oldest of the biggest holder is
cut to make room). It must send its hello (magic, version, ticket token) within
:data:`ADMISSION_TIMEOUT`; the ticket is consumed from the server's
:class:`~lanspread.core.tickets.TicketBook` (known, unexpired, not revoked,
presented from the address that asked for it) and binds the connection to one
peer and one game. Admitted connections are capped per source address
(:data:`MAX_DATA_CONNECTIONS_PER_ADDRESS`), per peer
(:data:`MAX_DATA_CONNECTIONS_PER_PEER`) and in all (:data:`MAX_DATA_CONNECTIONS`).
Then requests are answered strictly in order: each passes
the serve gate again (``resolve_for_serving`` with the gate state of that
moment, so a game that became busy is refused at once), then
``check_chunk_range`` against the opened file's size, and an OK header is
followed by exactly ``length`` bytes sent with ``sendfile`` from the opened
descriptor. A refusal is a status and the connection stays usable; a protocol
violation, or a file that shrinks while it is sent, closes it. Bytes sent are
counted in :attr:`DataServer.bytes_sent`.

**Client.** :meth:`DataConnection.open` dials, sends the hello and waits for
admission, all raced against a cancellation event and a timeout.
:meth:`DataConnection.fetch` requests chunks keeping up to ``depth`` requests
in flight. Each answer is received with ``recv_into`` into one of
:data:`RECEIVE_BUFFERS` reusable buffers of :data:`RECEIVE_BUFFER_SIZE` bytes by
the connection's receive thread, while its digest thread feeds the previous
buffer to a :class:`~lanspread.download.hashing.ChunkHasher` and writes it with
a positional write at its offset (the event loop only schedules; on two cores
the socket copy overlaps the hash and the write, which bench/throughput.py
showed is worth ~1.3x). Memory is two buffers per connection whatever the
chunk or game size. It yields one :class:`ChunkResult` per task, in task
order: written bytes are *not* fsynced; the caller fsyncs and journals.

::

    ChunkOutcome   meaning                                   next
    OK             every byte arrived, digest matches        connection usable
    HASH_MISMATCH  every byte arrived, digest differs        connection usable
    REFUSED        the server answered a refusal status      connection usable
    SHORT_READ     the connection ended inside this chunk    later tasks: CONNECTION_LOST
    CONNECTION_LOST  reset, timeout, violation, or an        every later task too
                   earlier chunk already lost the connection
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import enum
import functools
import logging
import os
import secrets
import socket
import struct
import sys
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from lanspread.core.admission import Refused, SlotTable
from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.planning import ChunkFailure, ChunkTask, FailureReason
from lanspread.core.servegate import GateState, RefusalReason, ServeErrorCode, check_chunk_range
from lanspread.core.tickets import (
    TOKEN_SIZE,
    IssuedTicket,
    TicketBook,
    TicketRefusal,
    TicketRefusalReason,
)
from lanspread.download.hashing import ChunkHasher
from lanspread.errors import (
    ConnectionClosed,
    LanspreadError,
    PeerRefused,
    ProtocolError,
    StorageError,
    TransportError,
    VersionMismatch,
)
from lanspread.net.datawire import (
    HEADER_SIZE,
    HELLO_SIZE,
    ChunkRequest,
    DataStatus,
    RequestDecoder,
    decode_header,
    decode_hello,
    encode_header,
    encode_hello,
    encode_request,
)
from lanspread.net.sendfile import FileEndedEarly, pwrite_all, send_file_range
from lanspread.net.tls import LISTEN_BACKLOG, SOCKET_BUFFER_SIZE, create_listener
from lanspread.net.wire import ErrorCode, ErrorResponse, Ticket
from lanspread.storage.serving import ServedFile, ServeRefused, resolve_for_serving

log = logging.getLogger(__name__)

# From accept to a received hello: one 40-byte write right after connect, which
# takes a millisecond on a LAN. A silent socket is dropped after this, so it holds
# an admission slot for two seconds at most.
ADMISSION_TIMEOUT = 2.0
# Connections of one address that have not presented a ticket yet: a downloader
# opens a few per source at once; several peers may share a host.
MAX_UNADMITTED_PER_ADDRESS = 8
# Unadmitted connections in all. Each holds a socket and a 40-byte read; beyond
# this the oldest of the biggest holder is cut, so a flood from many addresses
# only churns itself while an honest connection is admitted within milliseconds.
MAX_UNADMITTED = 64
# Dialing a LAN peer and being admitted takes milliseconds; an unreachable host
# would otherwise hang for the kernel's SYN retries (minutes).
CONNECT_TIMEOUT = 10.0
# No byte moving for this long in either direction (a stalled reader or writer, a
# client that sends no request) ends the connection; a chunk in progress fails.
IDLE_TIMEOUT = 60.0
# A downloader opens one or two connections per source (bench/throughput.py); four
# leaves room for re-dials and still bounds what one peer takes from a seeder.
MAX_DATA_CONNECTIONS_PER_PEER = 4
# Every peer of a large party downloading from this one at once, with margin.
MAX_DATA_CONNECTIONS = 256
# Admitted connections of one address: four peers' worth (a host runs one peer, a
# test rig a few); self-made identities on one machine share this.
MAX_DATA_CONNECTIONS_PER_ADDRESS = 4 * MAX_DATA_CONNECTIONS_PER_PEER
# Requests are tiny (at most MAX_REQUEST_FRAME_SIZE); one read takes many at once.
REQUEST_READ_SIZE = 64 * 1024
# The client's one receive buffer: hashing and writing 1 MiB per call keeps the
# syscall and call overhead small next to the copy, and memory stays bounded.
RECEIVE_BUFFER_SIZE = 1024 * 1024
# Receive buffers per connection: one being filled from the socket while the other
# is hashed and written; more would only help if hashing or writing were slower than
# the network, and then the socket buffer already absorbs the bursts.
RECEIVE_BUFFERS = 2
# Requests the client keeps queued on one connection. The server answers in
# order; two queued requests already hide the request round trip, four also cover
# a slow gate check (bench/throughput.py measures depths 1 to 8).
DEFAULT_PIPELINE_DEPTH = 4
# A refusal is one 8-byte header; a client that does not take it is not waited for.
REFUSAL_SEND_TIMEOUT = 2.0
# More queued requests buy nothing and only delay noticing a failed connection.
MAX_PIPELINE_DEPTH = 32

_T = TypeVar("_T")


class DataPlaneCancelled(LanspreadError):
    """The cancellation event was set while a data connection was being opened."""


class AdmissionRefused(PeerRefused):
    """The data server refused the ticket (or its version, or had no room)."""

    def __init__(self, status: DataStatus) -> None:
        super().__init__(status.name, f"the data server refused the connection: {status.name}")
        self.status = status


class TicketUnavailable(LanspreadError):
    """The ticket book refused to issue (it is full); the requester may retry later."""


@dataclass(frozen=True, slots=True)
class ServeScope:
    """What a chunk request is judged against, taken at the moment of each request."""

    game_dir: Path
    gate_state: GateState


def tune_data_socket(sock: socket.socket, *, nodelay: bool) -> None:
    """Large kernel buffers; Nagle left on for the bulk sender, off for the requester."""
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_SIZE)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))


# --- server ------------------------------------------------------------------------------


_STATUS_FOR_CODE = {
    ServeErrorCode.GAME_NOT_FOUND: DataStatus.GAME_NOT_FOUND,
    ServeErrorCode.OPERATION_IN_PROGRESS: DataStatus.OPERATION_IN_PROGRESS,
    ServeErrorCode.BAD_REQUEST: DataStatus.BAD_REQUEST,
}
_STATUS_FOR_TICKET = {
    TicketRefusalReason.EXPIRED: DataStatus.TICKET_EXPIRED,
}


class DataServer:
    """The chunk server. Use ``async with DataServer(scope, host=..., port=...) as server``."""

    def __init__(
        self,
        scope: Callable[[], ServeScope],
        *,
        host: str,
        port: int,
        tickets: TicketBook | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_source: Callable[[int], bytes] = secrets.token_bytes,
        max_per_peer: int = MAX_DATA_CONNECTIONS_PER_PEER,
        max_connections: int = MAX_DATA_CONNECTIONS,
        max_per_address: int = MAX_DATA_CONNECTIONS_PER_ADDRESS,
        unadmitted_per_address: int = MAX_UNADMITTED_PER_ADDRESS,
        max_unadmitted: int = MAX_UNADMITTED,
        admission_timeout: float = ADMISSION_TIMEOUT,
    ) -> None:
        self._scope = scope
        self._host = host
        self._requested_port = port
        self.tickets = tickets if tickets is not None else TicketBook()
        self._clock = clock
        self._token_source = token_source
        self._max_per_peer = max_per_peer
        self._admission_timeout = admission_timeout
        self._unadmitted = SlotTable(
            per_address=unadmitted_per_address, total=max_unadmitted, evict_when_full=True
        )
        self._admitted = SlotTable(
            per_address=max_per_address, total=max_connections, evict_when_full=False
        )
        self._unadmitted_tasks: dict[int, asyncio.Task[None]] = {}
        self._per_peer: collections.Counter[str] = collections.Counter()
        self._connections: set[asyncio.Task[None]] = set()
        self._listener: socket.socket | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._port = 0
        self._bytes_sent = 0
        self._closed = asyncio.Event()

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    @property
    def bytes_sent(self) -> int:
        """Chunk bytes sent since the server started (headers not counted)."""
        return self._bytes_sent

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def connections_of(self, peer_id: str) -> int:
        """Admitted data connections of ``peer_id`` right now."""
        return self._per_peer[peer_id]

    @property
    def unadmitted_count(self) -> int:
        """Connections that have not presented an admitted ticket yet."""
        return len(self._unadmitted)

    def issue_ticket(
        self, peer_id: str, game_id: str, *, address: str, known_since: float
    ) -> IssuedTicket:
        """A fresh single-use ticket for ``peer_id`` at ``address`` to fetch ``game_id``.

        ``address`` is where the request came from; only a data connection from it
        is admitted. ``known_since`` is when the peer was first seen (on this
        server's clock). The caller has checked the serve gate. Raises
        :class:`TicketUnavailable` when the book has no room for this peer.
        """
        outcome = self.tickets.issue(
            self._token_source(TOKEN_SIZE),
            peer_id,
            game_id,
            self._clock(),
            address=address,
            known_since=known_since,
        )
        if isinstance(outcome, TicketRefusal):
            raise TicketUnavailable(f"no ticket for {game_id}: {outcome.reason.value}")
        return outcome

    async def __aenter__(self) -> DataServer:
        listener = create_listener(self._host, self._requested_port)
        tune_data_socket(listener, nodelay=False)
        self._listener = listener
        self._port = int(listener.getsockname()[1])
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._accept_task = self._task_group.create_task(
            self._accept_loop(listener), name=f"data-accept-{self._port}"
        )
        log.info(
            "data server listening on %s:%d (backlog %d)", self._host, self._port, LISTEN_BACKLOG
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop accepting, cut every connection and await every task. Idempotent."""
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            if self._listener is not None:
                await self._closed.wait()
            return
        if self._listener is not None:
            self._listener.close()
        if self._accept_task is not None:
            self._accept_task.cancel()
        for task in list(self._connections):
            task.cancel()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            self._closed.set()

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        task_group = self._task_group
        assert task_group is not None
        while True:
            try:
                sock, address = await loop.sock_accept(listener)
            except OSError as exc:
                log.warning("accepting a data connection failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            host = str(address[0])
            outcome = self._unadmitted.admit(host, self._clock())
            if isinstance(outcome, Refused):
                # Debug only: a flood would otherwise flood the log too.
                log.debug("refusing a data connection from %s: %s", host, outcome.reason.value)
                sock.close()
                continue
            if outcome.evicted is not None:
                evicted = self._unadmitted_tasks.pop(outcome.evicted, None)
                if evicted is not None:
                    evicted.cancel()
            task = task_group.create_task(
                self._serve(sock, host, outcome.slot), name=f"data-conn-{address}"
            )
            # A task cut (evicted) before it ever ran never reaches its own cleanup.
            task.add_done_callback(functools.partial(_close_socket, sock))
            self._unadmitted_tasks[outcome.slot] = task
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve(self, sock: socket.socket, host: str, unadmitted_slot: int) -> None:
        peer_id: str | None = None
        admitted_slot: int | None = None
        try:
            tune_data_socket(sock, nodelay=False)
            async with asyncio.timeout(self._admission_timeout):
                hello = await _recv_exactly(sock, HELLO_SIZE)
            self._end_unadmitted(unadmitted_slot)
            admitted_slot = await self._take_slot(sock, host)
            peer_id, game_id = await self._admit(sock, hello, host)
            await self._serve_requests(sock, game_id)
        except TimeoutError:
            log.info("dropped a data connection (peer %s): idle or no hello", peer_id or "unknown")
        except _Refused as exc:
            log.info("refused a data connection: %s", exc)
        except (ProtocolError, FileEndedEarly) as exc:
            log.info("closing a data connection (peer %s): %s", peer_id or "unknown", exc)
        except (ConnectionClosed, OSError) as exc:
            log.debug("data connection (peer %s) ended: %s", peer_id or "unknown", exc)
        finally:
            self._end_unadmitted(unadmitted_slot)
            if admitted_slot is not None:
                self._admitted.release(admitted_slot)
            if peer_id is not None:
                self._per_peer[peer_id] -= 1
                if not self._per_peer[peer_id]:
                    del self._per_peer[peer_id]
            sock.close()

    async def _take_slot(self, sock: socket.socket, host: str) -> int:
        slot = self._admitted.admit(host, self._clock())
        if isinstance(slot, Refused):
            await _send_refusal(sock, DataStatus.TOO_MANY_CONNECTIONS)
            raise _Refused(f"{host} has too many data connections ({slot.reason.value})")
        return slot.slot

    def _end_unadmitted(self, slot: int) -> None:
        self._unadmitted.release(slot)
        self._unadmitted_tasks.pop(slot, None)

    async def _admit(self, sock: socket.socket, hello: bytes, host: str) -> tuple[str, str]:
        """Register the connection for the ticket's peer; refuse and raise otherwise."""
        try:
            token = decode_hello(hello)
        except VersionMismatch as exc:
            await _send_refusal(sock, DataStatus.VERSION_MISMATCH)
            raise _Refused(str(exc)) from exc
        grant = self.tickets.admit(token, self._clock(), address=host)
        if isinstance(grant, TicketRefusal):
            await _send_refusal(
                sock, _STATUS_FOR_TICKET.get(grant.reason, DataStatus.TICKET_UNKNOWN)
            )
            raise _Refused(f"ticket {grant.reason.value}")
        if self._per_peer[grant.peer_id] >= self._max_per_peer:
            await _send_refusal(sock, DataStatus.TOO_MANY_CONNECTIONS)
            raise _Refused(f"peer {grant.peer_id} has {self._max_per_peer} data connections")
        self._per_peer[grant.peer_id] += 1
        await asyncio.get_running_loop().sock_sendall(sock, encode_header(DataStatus.OK))
        return grant.peer_id, grant.game_id

    async def _serve_requests(self, sock: socket.socket, game_id: str) -> None:
        loop = asyncio.get_running_loop()
        decoder = RequestDecoder()
        pending: collections.deque[ChunkRequest] = collections.deque()
        while True:
            if not pending:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    data = await loop.sock_recv(sock, REQUEST_READ_SIZE)
                if not data:
                    if decoder.buffered:
                        raise ProtocolError("the client closed inside a request frame")
                    return
                pending.extend(decoder.feed(data))
                continue
            await self._answer(sock, game_id, pending.popleft())

    async def _answer(self, sock: socket.socket, game_id: str, request: ChunkRequest) -> None:
        loop = asyncio.get_running_loop()
        scope = self._scope()
        try:
            served = await _resolve(scope, game_id, request.path)
        except ServeRefused as exc:
            log.debug("data request refused: %s", exc)
            await loop.sock_sendall(sock, encode_header(_STATUS_FOR_CODE[exc.code]))
            return
        except StorageError as exc:
            log.warning("cannot serve %s of %s: %s", request.path, game_id, exc)
            await loop.sock_sendall(sock, encode_header(DataStatus.INTERNAL_ERROR))
            return
        with served:
            status = _range_status(request, served)
            if status is not DataStatus.OK:
                await loop.sock_sendall(sock, encode_header(status))
                return
            await loop.sock_sendall(sock, encode_header(DataStatus.OK, request.length))
            async with asyncio.timeout(IDLE_TIMEOUT + request.length / _SLOWEST_RATE):
                await self._send_counted(sock, served, request)

    async def _send_counted(
        self, sock: socket.socket, served: ServedFile, request: ChunkRequest
    ) -> None:
        sent = await send_file_range(sock, served.fd, request.offset, request.length)
        self._bytes_sent += sent


async def _resolve(scope: ServeScope, game_id: str, path: str) -> ServedFile:
    """``resolve_for_serving`` in a thread; a result that arrives after cancellation is closed."""
    future = asyncio.get_running_loop().run_in_executor(
        None, resolve_for_serving, scope.game_dir, game_id, path, scope.gate_state
    )
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_close_late_result)
        raise


def _close_late_result(future: asyncio.Future[ServedFile]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


async def check_servable(scope: ServeScope, game_id: str) -> ErrorResponse | None:
    """``None`` when ``game_id`` passes the serve gate now, else the refusal to answer.

    The gate is the one file requests pass (catalog game, no active operation,
    a real root with a regular ``version.ini``); refusals name no file.
    """
    try:
        served = await _resolve(scope, game_id, VERSION_FILE)
    except ServeRefused as exc:
        log.debug("refusing %s: %s", game_id, exc)
        return ErrorResponse(code=ErrorCode(exc.code.value), message=_REFUSALS[exc.code](game_id))
    except StorageError as exc:
        log.warning("cannot serve %s: %s", game_id, exc)
        return ErrorResponse(
            code=ErrorCode.INTERNAL_PEER_ERROR, message=f"{game_id} cannot be read here"
        )
    served.close()
    return None


async def answer_ticket_request(
    server: DataServer,
    peer_id: str,
    game_id: str,
    scope: ServeScope,
    *,
    address: str,
    known_since: float,
) -> Ticket | ErrorResponse:
    """The control channel's answer to ``GetTicket``: a ticket iff the game passes the gate.

    ``address`` is the control connection's source; ``known_since`` when the peer
    was first seen (the data server's clock).
    """
    refusal = await check_servable(scope, game_id)
    if refusal is not None:
        return refusal
    try:
        issued = server.issue_ticket(peer_id, game_id, address=address, known_since=known_since)
    except TicketUnavailable as exc:
        log.info("%s", exc)
        return ErrorResponse(code=ErrorCode.BUSY, message="too many tickets outstanding; retry")
    return Ticket(token=issued.token, data_port=server.port, ttl_seconds=server.tickets.ttl)


_REFUSALS: dict[ServeErrorCode, Callable[[str], str]] = {
    ServeErrorCode.GAME_NOT_FOUND: lambda game_id: f"{game_id} is not served here",
    ServeErrorCode.OPERATION_IN_PROGRESS: lambda game_id: f"{game_id} is busy here; retry later",
    ServeErrorCode.BAD_REQUEST: lambda game_id: f"bad request for {game_id}",
}


# A chunk may take IDLE_TIMEOUT plus this rate's time before its send is cut:
# 1 MiB/s is far below any LAN yet bounds how long a client that stopped reading
# holds the descriptor and the slot.
_SLOWEST_RATE = 1024 * 1024


class _Refused(LanspreadError):
    """Admission was refused; the status has been sent."""


def _range_status(request: ChunkRequest, served: ServedFile) -> DataStatus:
    refusal = check_chunk_range(request.offset, request.length, served.size)
    if refusal is None:
        return DataStatus.OK
    if refusal.reason is RefusalReason.CHUNK_OUT_OF_RANGE:
        return DataStatus.SHORT_FILE
    return DataStatus.BAD_REQUEST


def _close_socket(sock: socket.socket, _: asyncio.Task[None]) -> None:
    sock.close()  # a no-op when the connection already closed it


async def _send_refusal(sock: socket.socket, status: DataStatus) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(REFUSAL_SEND_TIMEOUT):
            await asyncio.get_running_loop().sock_sendall(sock, encode_header(status))


async def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < size:
        more = await loop.sock_recv(sock, size - len(data))
        if not more:
            if data:
                raise ProtocolError(f"the connection ended after {len(data)} of {size} bytes")
            raise ConnectionClosed("the connection closed")
        data += more
    return bytes(data)


# --- client ------------------------------------------------------------------------------


class ChunkOutcome(enum.Enum):
    OK = "ok"
    HASH_MISMATCH = "hash-mismatch"
    REFUSED = "refused"
    SHORT_READ = "short-read"
    CONNECTION_LOST = "connection-lost"


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What became of one task; see the outcome table in the module docstring."""

    task: ChunkTask
    outcome: ChunkOutcome
    status: DataStatus | None = None
    """The server's refusal status (for ``REFUSED`` only)."""
    detail: str = ""
    """What went wrong, for logs and terminal failure reasons."""

    @property
    def ok(self) -> bool:
        return self.outcome is ChunkOutcome.OK

    def failure(self, source: str) -> ChunkFailure | None:
        """The planner's view of a failed chunk; ``None`` for a chunk that is OK."""
        if self.ok:
            return None
        reason = (
            FailureReason.HASH_MISMATCH
            if self.outcome is ChunkOutcome.HASH_MISMATCH
            else FailureReason.TRANSFER
        )
        return ChunkFailure(self.task, source, reason, self.detail or self.outcome.value)


class ChunkSink(Protocol):
    """Where chunks are written: an open, writable descriptor per task's file."""

    def fd_for(self, task: ChunkTask) -> int:
        """The descriptor to write ``task``'s bytes into at ``task.offset``."""
        ...


class _Lost(LanspreadError):
    """The connection can no longer carry answers."""


class DataConnection:
    """An admitted data connection. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        sock: socket.socket,
        description: str,
        *,
        depth: int,
        idle_timeout: float,
        buffer_size: int,
    ) -> None:
        _check_depth(depth)
        self._sock = sock
        self._description = description
        self._depth = depth
        self._buffers = [bytearray(buffer_size) for _ in range(RECEIVE_BUFFERS)]
        # One thread receives, the other hashes and writes what was received before:
        # on two cores the copy out of the socket overlaps the hash and the write.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"data-recv-{description}"
        )
        self._digester = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"data-digest-{description}"
        )
        self._lost: str | None = None
        self._busy = False
        self.bytes_received = 0
        """Chunk bytes received and written (verified or not)."""
        _make_blocking_with_idle_timeout(sock, idle_timeout)

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        token: bytes,
        *,
        cancel: asyncio.Event | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        depth: int = DEFAULT_PIPELINE_DEPTH,
        idle_timeout: float = IDLE_TIMEOUT,
        buffer_size: int = RECEIVE_BUFFER_SIZE,
    ) -> DataConnection:
        """Dial ``host:port``, present ``token`` and wait for admission.

        Raises :class:`TransportError` when the server cannot be reached or does
        not answer within ``connect_timeout``, :class:`AdmissionRefused` when it
        refuses the ticket, :class:`ProtocolError` for a garbled answer and
        :class:`DataPlaneCancelled` when ``cancel`` is set first.
        """
        description = f"{host}:{port}"
        # The caller's bugs are said before anything is dialled.
        _check_depth(depth)
        encode_hello(token)
        try:
            async with asyncio.timeout(connect_timeout):
                sock = await _until_cancelled(_connect_and_admit(host, port, token), cancel)
        except TimeoutError as exc:
            raise TransportError(
                f"data server {description} did not admit us within {connect_timeout} s"
            ) from exc
        return cls(
            sock, description, depth=depth, idle_timeout=idle_timeout, buffer_size=buffer_size
        )

    @property
    def is_usable(self) -> bool:
        return self._lost is None

    async def close(self) -> None:
        """Close the socket and stop the worker thread. Idempotent."""
        self._mark_lost("closed by this peer")
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._executor.shutdown(wait=True)
        self._digester.shutdown(wait=True)

    async def __aenter__(self) -> DataConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def fetch(
        self, tasks: Iterable[ChunkTask], sink: ChunkSink
    ) -> AsyncGenerator[ChunkResult, None]:
        """Fetch every task in order; yield one :class:`ChunkResult` per task.

        Raises :class:`StorageError` when writing to the sink fails (the connection
        is closed: the answer stream was left mid-chunk). Leaving the iteration
        early also closes the connection, since answers are still on their way;
        iterate inside ``contextlib.aclosing(connection.fetch(...))`` so that
        happens at once.
        """
        if self._busy:
            raise RuntimeError("one fetch at a time per data connection")
        self._busy = True
        queue = iter(tasks)
        in_flight: collections.deque[tuple[ChunkTask, int]] = collections.deque()
        finished = False
        try:
            while True:
                if self._lost is not None:
                    for task, _ in in_flight:
                        yield self._lost_result(task)
                    for task in queue:
                        yield self._lost_result(task)
                    finished = True
                    return
                outgoing = self._fill_window(queue, in_flight, sink)
                if not in_flight:
                    finished = True
                    return
                task, fd = in_flight[0]
                result = await self._in_thread(self._exchange, outgoing, task, fd)
                in_flight.popleft()
                yield result
        finally:
            self._busy = False
            if not finished:
                await self.close()

    def _fill_window(
        self,
        queue: Iterator[ChunkTask],
        in_flight: collections.deque[tuple[ChunkTask, int]],
        sink: ChunkSink,
    ) -> bytes:
        frames: list[bytes] = []
        while len(in_flight) < self._depth:
            task = next(queue, None)
            if task is None:
                break
            in_flight.append((task, sink.fd_for(task)))
            frames.append(encode_request(ChunkRequest(task.path, task.offset, task.length)))
        return b"".join(frames)

    def _lost_result(self, task: ChunkTask) -> ChunkResult:
        return ChunkResult(task, ChunkOutcome.CONNECTION_LOST, detail=self._lost or "")

    def _mark_lost(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function`` on the connection's thread; cancellation cuts the socket."""
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(function, *args)
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._mark_lost("cancelled")
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            await asyncio.wait([future])  # the cut socket ends the thread's work at once
            raise

    # -- worker thread ------------------------------------------------------------

    def _exchange(self, outgoing: bytes, task: ChunkTask, fd: int) -> ChunkResult:
        """Send the queued requests, then receive the answer for ``task`` (blocking)."""
        try:
            if outgoing:
                self._sock.sendall(outgoing)
            header = decode_header(self._recv_small(HEADER_SIZE))
        except (_Lost, ProtocolError, OSError) as exc:
            self._mark_lost(f"connection to {self._description} lost: {_why(exc)}")
            return self._lost_result(task)
        if header.status is not DataStatus.OK:
            return ChunkResult(
                task, ChunkOutcome.REFUSED, header.status, f"refused: {header.status.name}"
            )
        if header.length != task.length:
            self._mark_lost(
                f"{self._description} announced {header.length} bytes for a "
                f"{task.length}-byte chunk"
            )
            return self._lost_result(task)
        return self._receive_chunk(task, fd)

    def _receive_chunk(self, task: ChunkTask, fd: int) -> ChunkResult:
        """Receive ``task``'s bytes; the digest thread hashes and writes them meanwhile."""
        hasher = ChunkHasher(task)
        pending: collections.deque[concurrent.futures.Future[None]] = collections.deque()
        position = task.offset
        end = task.offset + task.length
        turn = 0
        while position < end:
            if len(pending) == len(self._buffers):
                pending.popleft().result()  # the buffer about to be reused is free again
            buffer = self._buffers[turn % len(self._buffers)]
            turn += 1
            view = memoryview(buffer)[: min(end - position, len(buffer))]
            try:
                got = self._fill(view)
            except OSError as exc:
                self._drain(pending)
                self._mark_lost(f"connection to {self._description} lost: {_why(exc)}")
                return ChunkResult(task, ChunkOutcome.SHORT_READ, detail=self._lost or "")
            if got:
                pending.append(
                    self._digester.submit(self._digest, hasher, fd, view[:got], position, task)
                )
                position += got
            if got < len(view):
                self._drain(pending)
                self._mark_lost(f"{self._description} closed the connection inside a chunk")
                return ChunkResult(
                    task,
                    ChunkOutcome.SHORT_READ,
                    detail=f"{hasher.received} of {task.length} bytes arrived",
                )
        self._drain(pending)
        if not hasher.matches():
            return ChunkResult(task, ChunkOutcome.HASH_MISMATCH, detail="BLAKE3 digest differs")
        return ChunkResult(task, ChunkOutcome.OK)

    @staticmethod
    def _drain(pending: collections.deque[concurrent.futures.Future[None]]) -> None:
        """Wait for every queued hash-and-write; the first failure is raised."""
        while pending:
            pending.popleft().result()

    def _digest(
        self, hasher: ChunkHasher, fd: int, data: memoryview, position: int, task: ChunkTask
    ) -> None:
        """On the digest thread: hash and write one received piece, in arrival order."""
        hasher.update(data)
        self._write(fd, data, position, task)
        self.bytes_received += len(data)

    def _fill(self, view: memoryview) -> int:
        """Receive into ``view`` until it is full or the stream ends; the bytes received."""
        got = 0
        while got < len(view):
            count = self._sock.recv_into(view[got:], 0, _WAIT_ALL)
            if not count:
                break
            got += count
        return got

    def _recv_small(self, size: int) -> bytes:
        data = bytearray(size)
        got = self._fill(memoryview(data))
        if got < size:
            raise _Lost("the server closed the connection" if not got else "truncated header")
        return bytes(data)

    def _write(self, fd: int, data: memoryview, position: int, task: ChunkTask) -> None:
        try:
            pwrite_all(fd, data, position)
        except OSError as exc:
            self._mark_lost("a local write failed")
            raise StorageError(
                f"cannot write {task.path} at offset {position}: {exc.strerror or exc}"
            ) from exc


# Ask the kernel to return only once the whole buffer is filled (or the stream ends,
# or the idle timeout passes): one wake-up per buffer instead of one per burst of
# segments, which on a busy two-core machine is CPU the hash and the write need.
_WAIT_ALL = getattr(socket, "MSG_WAITALL", 0)


def _make_blocking_with_idle_timeout(sock: socket.socket, seconds: float) -> None:
    """A blocking socket whose sends and receives fail after ``seconds`` without progress.

    Python's own socket timeout polls before every call and makes the socket
    non-blocking, which defeats ``MSG_WAITALL``; the kernel's SO_RCVTIMEO and
    SO_SNDTIMEO keep the socket blocking (a timeout surfaces as an ``OSError``).
    """
    sock.settimeout(None)
    if sys.platform == "win32":
        value = struct.pack("=I", max(1, int(seconds * 1000)))  # a DWORD of milliseconds
    else:
        whole = int(seconds)
        value = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))  # a timeval
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        sock.setsockopt(socket.SOL_SOCKET, option, value)


def _check_depth(depth: int) -> None:
    if not 1 <= depth <= MAX_PIPELINE_DEPTH:
        raise ValueError(f"depth must be 1 to {MAX_PIPELINE_DEPTH}, got {depth}")


def _why(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, BlockingIOError)):
        # SO_RCVTIMEO expiring surfaces as EAGAIN on a blocking socket.
        return "no data within the idle timeout"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def _until_cancelled(work: Coroutine[Any, Any, _T], cancel: asyncio.Event | None) -> _T:
    """Await ``work``; cancel it and raise :class:`DataPlaneCancelled` once ``cancel`` is set."""
    if cancel is None:
        return await work
    if cancel.is_set():
        work.close()
        raise DataPlaneCancelled("cancelled before the data connection was opened")
    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(work)
            watcher = group.create_task(cancel.wait())
            task.add_done_callback(lambda _: watcher.cancel())
            watcher.add_done_callback(lambda _: task.cancel())
    except BaseExceptionGroup as failed:
        # Only ``work`` can fail (the watcher only waits): re-raise its own error.
        raise failed.exceptions[0] from None
    if task.cancelled():
        raise DataPlaneCancelled("cancelled while the data connection was being opened")
    return task.result()


async def _connect_and_admit(host: str, port: int, token: bytes) -> socket.socket:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TransportError(f"cannot resolve data server {host}:{port}: {exc}") from exc
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            tune_data_socket(sock, nodelay=True)
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, encode_hello(token))
            header = decode_header(await _recv_exactly(sock, HEADER_SIZE))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except ConnectionClosed as exc:
            sock.close()
            raise TransportError(f"data server {host}:{port} closed without answering") from exc
        except BaseException:
            sock.close()
            raise
        if header.status is not DataStatus.OK:
            sock.close()
            raise AdmissionRefused(header.status)
        return sock
    # asyncio's connect errors carry "Connect call failed (...)" as strerror; the
    # errno's own text ("Connection refused") is what a user understands.
    reason = (os.strerror(last.errno) if last.errno else str(last)) if last else "no address"
    raise TransportError(f"cannot connect to data server {host}:{port}: {reason}") from last
