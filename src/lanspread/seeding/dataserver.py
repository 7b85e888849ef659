"""The data server: a plain-TCP chunk server with zero-copy sends.

Theory of operation
-------------------
The wire format is in :mod:`lanspread.net.datawire`; the client is
:mod:`lanspread.download.dataclient`.

:class:`DataServer` listens on its own port. Right after ``accept``,
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

Upload shaping (``core/uploads``): before a chunk's OK header the connection's
peer must hold one of the :class:`~lanspread.core.uploads.UploadScheduler`'s
slots, then the chunk is sent paced by the shared rate limit
(:class:`~lanspread.seeding.shaping.UploadShaper`, :attr:`DataServer.shaper`;
its limit changes live).

A game being downloaded here is served only on a connection whose ticket names a
manifest digest (``GetTicket.manifest_digest``). Before each of its requests the
scope's :class:`~lanspread.core.partial.PartialProvider` is asked, on the event
loop, what is durable right now; ``check_partial_game`` and ``check_partial_chunk``
(``core/servegate``, partial copies) judge the request against that before the
file is opened (``resolve_partial_for_serving``). Once the provider stops naming
the game, every request on those connections is refused. A plain ticket never
reaches a partial copy; a partial ticket never reaches a complete one.

Seeder steering (``core/steering``): with a :class:`SteeringView` (the runtime's:
this server's manifests and the availability book), a request on a plain ticket
for one whole chunk is first put to the server's
:class:`~lanspread.core.steering.SteeringRule`; a steered request is answered
``DataStatus.ELSEWHERE`` (other peers hold the chunk or are getting it now), and
every chunk sent is reported to the rule (promised before its upload turn, sent,
abandoned).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lanspread.core.admission import SlotTable
from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.partial import NO_PARTIALS, PartialProvider
from lanspread.core.refusal import Refused
from lanspread.core.servegate import (
    GateState,
    RefusalReason,
    ServeErrorCode,
    check_chunk_range,
    check_partial_game,
    check_partial_request,
)
from lanspread.core.steering import SteeringRule
from lanspread.core.tickets import (
    TOKEN_SIZE,
    IssuedTicket,
    TicketBook,
    TicketGrant,
    TicketRefusalReason,
)
from lanspread.core.uploads import UNLIMITED, UploadScheduler
from lanspread.errors import (
    ConnectionClosed,
    LanspreadError,
    ProtocolError,
    StorageError,
    VersionMismatch,
)
from lanspread.net.dataplane import (
    IDLE_TIMEOUT,
    recv_exactly,
    tune_data_socket,
)
from lanspread.net.datawire import (
    HELLO_SIZE,
    ChunkRequest,
    DataStatus,
    RequestDecoder,
    decode_hello,
    encode_header,
)
from lanspread.net.listener import AcceptingServer
from lanspread.net.sendfile import FileEndedEarly
from lanspread.net.tls import LISTEN_BACKLOG, create_listener
from lanspread.net.wire import ErrorCode, ErrorResponse, Ticket
from lanspread.seeding.serving import (
    ServedFile,
    ServeRefused,
    resolve_for_serving,
    resolve_partial_for_serving,
)
from lanspread.seeding.shaping import UploadShaper

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


# A refusal is one 8-byte header; a client that does not take it is not waited for.
REFUSAL_SEND_TIMEOUT = 2.0


class SteeringView(Protocol):
    """What seeder steering needs to know of this peer's complete games and the swarm."""

    async def locate(self, game_id: str, path: str, offset: int, length: int) -> int | None:
        """The index of the whole chunk ``path``/``offset``/``length`` in this server's
        manifest of ``game_id``; ``None`` when the range is not exactly one chunk of it."""
        ...

    def holders(self, game_id: str, index: int) -> frozenset[str]:
        """Peers that announced holding chunk ``index`` at this server's manifest."""
        ...


class TicketUnavailable(LanspreadError):
    """The ticket book refused to issue (it is full); the requester may retry later."""


@dataclass(frozen=True, slots=True)
class ServeScope:
    """What a chunk request is judged against, taken at the moment of each request."""

    game_dir: Path
    gate_state: GateState
    partials: PartialProvider = NO_PARTIALS
    """What is verified and durable of the games being downloaded here."""


_STATUS_FOR_CODE = {
    ServeErrorCode.GAME_NOT_FOUND: DataStatus.GAME_NOT_FOUND,
    ServeErrorCode.OPERATION_IN_PROGRESS: DataStatus.OPERATION_IN_PROGRESS,
    ServeErrorCode.BAD_REQUEST: DataStatus.BAD_REQUEST,
    ServeErrorCode.CHUNK_NOT_AVAILABLE: DataStatus.CHUNK_NOT_AVAILABLE,
}


_STATUS_FOR_TICKET = {
    TicketRefusalReason.EXPIRED: DataStatus.TICKET_EXPIRED,
}


class DataServer(AcceptingServer):
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
        upload_limit: int | Callable[[], int] = UNLIMITED,
        slots: UploadScheduler | None = None,
        serves_others: Callable[[str], bool] = lambda peer_id: False,
        steering: SteeringView | None = None,
    ) -> None:
        unadmitted = SlotTable(
            per_address=unadmitted_per_address, total=max_unadmitted, evict_when_full=True
        )
        super().__init__(host, port, unadmitted, clock=clock, kind="data")
        self._scope = scope
        self.tickets = tickets if tickets is not None else TicketBook()
        self._token_source = token_source
        self._max_per_peer = max_per_peer
        self._admission_timeout = admission_timeout
        self._admitted = SlotTable(
            per_address=max_per_address, total=max_connections, evict_when_full=False
        )
        self._per_peer: collections.Counter[str] = collections.Counter()
        self._bytes_sent = 0
        self.shaper = UploadShaper(
            clock, upload_limit=upload_limit, slots=slots, serves_others=serves_others
        )
        """Upload slots, the rate limit and per-peer upload rates."""
        self._steering = steering
        self.steering_rule = SteeringRule()
        """Which chunks went to whom recently, and which requests go elsewhere."""

    @property
    def bytes_sent(self) -> int:
        """Chunk bytes sent since the server started (headers not counted)."""
        return self._bytes_sent

    def connections_of(self, peer_id: str) -> int:
        """Admitted data connections of ``peer_id`` right now."""
        return self._per_peer[peer_id]

    @property
    def unadmitted_count(self) -> int:
        """Connections that have not presented an admitted ticket yet."""
        return len(self._gate)

    def issue_ticket(
        self,
        peer_id: str,
        game_id: str,
        *,
        address: str,
        known_since: float,
        manifest_digest: str | None = None,
    ) -> IssuedTicket:
        """A fresh single-use ticket for ``peer_id`` at ``address`` to fetch ``game_id``.

        ``address`` is where the request came from; only a data connection from it
        is admitted. ``known_since`` is when the peer was first seen (on this
        server's clock). ``manifest_digest`` makes it a ticket for the partial copy
        of that manifest. The caller has checked the serve gate. Raises
        :class:`TicketUnavailable` when the book has no room for this peer.
        """
        outcome = self.tickets.issue(
            self._token_source(TOKEN_SIZE),
            peer_id,
            game_id,
            self._clock(),
            address=address,
            known_since=known_since,
            manifest_digest=manifest_digest,
        )
        if isinstance(outcome, Refused):
            raise TicketUnavailable(f"no ticket for {game_id}: {outcome.reason.value}")
        return outcome

    def ticket_refusal(
        self, peer_id: str, game_id: str, *, address: str, known_since: float
    ) -> TicketUnavailable | None:
        """What :meth:`issue_ticket` would raise for ``peer_id`` now, else ``None``."""
        reason = self.tickets.refusal(
            peer_id, self._clock(), address=address, known_since=known_since
        )
        if reason is None:
            return None
        return TicketUnavailable(f"no ticket for {game_id}: {reason.value}")

    async def __aenter__(self) -> DataServer:
        listener = create_listener(self._host, self._requested_port)
        tune_data_socket(listener, nodelay=False)
        await self._listen(listener)
        log.info(
            "data server listening on %s:%d (backlog %d)", self._host, self._port, LISTEN_BACKLOG
        )
        return self

    async def _serve(self, sock: socket.socket, host: str, unadmitted_slot: int) -> None:
        peer_id: str | None = None
        admitted_slot: int | None = None
        try:
            tune_data_socket(sock, nodelay=False)
            async with asyncio.timeout(self._admission_timeout):
                hello = await recv_exactly(sock, HELLO_SIZE)
            self._end_admission(unadmitted_slot)
            admitted_slot = await self._take_slot(sock, host)
            grant = await self._admit(sock, hello, host)
            peer_id = grant.peer_id
            await self._serve_requests(sock, grant)
        except TimeoutError:
            log.info("dropped a data connection (peer %s): idle or no hello", peer_id or "unknown")
        except _Refused as exc:
            log.info("refused a data connection: %s", exc)
        except (ProtocolError, FileEndedEarly) as exc:
            log.info("closing a data connection (peer %s): %s", peer_id or "unknown", exc)
        except (ConnectionClosed, OSError) as exc:
            log.debug("data connection (peer %s) ended: %s", peer_id or "unknown", exc)
        finally:
            self._end_admission(unadmitted_slot)
            if admitted_slot is not None:
                self._admitted.release(admitted_slot)
            if peer_id is not None:
                self._per_peer[peer_id] -= 1
                if not self._per_peer[peer_id]:
                    del self._per_peer[peer_id]
                    self.shaper.leave(peer_id)
            sock.close()

    async def _take_slot(self, sock: socket.socket, host: str) -> int:
        slot = self._admitted.admit(host, self._clock())
        if isinstance(slot, Refused):
            await _send_refusal(sock, DataStatus.TOO_MANY_CONNECTIONS)
            raise _Refused(f"{host} has too many data connections ({slot.reason.value})")
        return slot.slot

    async def _admit(self, sock: socket.socket, hello: bytes, host: str) -> TicketGrant:
        """Register the connection for the ticket's peer; refuse and raise otherwise."""
        try:
            token = decode_hello(hello)
        except VersionMismatch as exc:
            await _send_refusal(sock, DataStatus.VERSION_MISMATCH)
            raise _Refused(str(exc)) from exc
        grant = self.tickets.admit(token, self._clock(), address=host)
        if isinstance(grant, Refused):
            await _send_refusal(
                sock, _STATUS_FOR_TICKET.get(grant.reason, DataStatus.TICKET_UNKNOWN)
            )
            raise _Refused(f"ticket {grant.reason.value}")
        if self._per_peer[grant.peer_id] >= self._max_per_peer:
            await _send_refusal(sock, DataStatus.TOO_MANY_CONNECTIONS)
            raise _Refused(f"peer {grant.peer_id} has {self._max_per_peer} data connections")
        self._per_peer[grant.peer_id] += 1
        await asyncio.get_running_loop().sock_sendall(sock, encode_header(DataStatus.OK))
        return grant

    async def _serve_requests(self, sock: socket.socket, grant: TicketGrant) -> None:
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
            await self._answer(sock, grant, pending.popleft())

    async def _answer(self, sock: socket.socket, grant: TicketGrant, request: ChunkRequest) -> None:
        loop = asyncio.get_running_loop()
        index = await self._steerable(grant, request)
        if index is not None and self.steering_rule.ask(
            grant.peer_id,
            grant.game_id,
            index,
            self._clock(),
            self._holders(grant.game_id, index),
        ):
            log.debug("steering %s of %s elsewhere", request.path, grant.game_id)
            await loop.sock_sendall(sock, encode_header(DataStatus.ELSEWHERE))
            return
        try:
            served = await _open_for(self._scope(), grant, request)
        except ServeRefused as exc:
            log.debug("data request refused: %s", exc)
            await loop.sock_sendall(sock, encode_header(_STATUS_FOR_CODE[exc.code]))
            return
        except StorageError as exc:
            log.warning("cannot serve %s of %s: %s", request.path, grant.game_id, exc)
            await loop.sock_sendall(sock, encode_header(DataStatus.INTERNAL_ERROR))
            return
        with served:
            status = _range_status(request, served)
            if status is not DataStatus.OK:
                await loop.sock_sendall(sock, encode_header(status))
                return
            await self._send(sock, grant, request, served, index)

    async def _send(
        self,
        sock: socket.socket,
        grant: TicketGrant,
        request: ChunkRequest,
        served: ServedFile,
        index: int | None,
    ) -> None:
        """Send one chunk's OK header and bytes in ``peer``'s upload turn, reporting it to
        the steering rule from the moment it is promised: a second asker of the same chunk
        while the first waits for its turn is steered to it, not sent a second copy."""
        rule, peer_id, game_id = self.steering_rule, grant.peer_id, grant.game_id
        if index is not None:
            rule.sending(peer_id, game_id, index, self._clock())
        try:
            async with self.shaper.turn(peer_id):
                await asyncio.get_running_loop().sock_sendall(
                    sock, encode_header(DataStatus.OK, request.length)
                )
                self._bytes_sent += await self.shaper.send(
                    sock, served.fd, request.offset, request.length, peer_id
                )
        except BaseException:
            if index is not None:
                rule.abandoned(peer_id, game_id, index, self._clock())
            raise
        if index is not None:
            rule.sent(peer_id, game_id, index, self._clock())

    async def _steerable(self, grant: TicketGrant, request: ChunkRequest) -> int | None:
        """The chunk index the steering rule judges this request by; ``None``: serve it."""
        if self._steering is None or grant.manifest_digest is not None:
            return None
        return await self._steering.locate(
            grant.game_id, request.path, request.offset, request.length
        )

    def _holders(self, game_id: str, index: int) -> frozenset[str]:
        return frozenset() if self._steering is None else self._steering.holders(game_id, index)


async def _open_for(scope: ServeScope, grant: TicketGrant, request: ChunkRequest) -> ServedFile:
    """The file a request may be answered from under ``grant``; :class:`ServeRefused` if none."""
    if grant.manifest_digest is None:
        return await _resolve(scope, grant.game_id, request.path)
    refusal = check_partial_request(
        grant.game_id,
        grant.manifest_digest,
        scope.partials.verified(grant.game_id),
        request,
        catalog_ids=scope.gate_state.catalog_ids,
    )
    if refusal is not None:
        raise ServeRefused.from_refusal(refusal)
    return await _resolve(scope, grant.game_id, request.path, resolve=resolve_partial_for_serving)


async def _resolve(
    scope: ServeScope,
    game_id: str,
    path: str,
    *,
    resolve: Callable[[Path, str, str, GateState], ServedFile] = resolve_for_serving,
) -> ServedFile:
    """``resolve`` in a thread; a result that arrives after cancellation is closed."""
    future = asyncio.get_running_loop().run_in_executor(
        None, resolve, scope.game_dir, game_id, path, scope.gate_state
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


def check_partial_servable(
    scope: ServeScope, game_id: str, manifest_digest: str
) -> ErrorResponse | None:
    """``None`` when a partial copy of ``game_id`` at ``manifest_digest`` is served now.

    Pure and immediate: the provider's word decides; each chunk request is judged
    again, on the disk too.
    """
    refusal = check_partial_game(
        game_id,
        manifest_digest,
        scope.partials.verified(game_id),
        catalog_ids=scope.gate_state.catalog_ids,
    )
    if refusal is None:
        return None
    log.debug("refusing a partial ticket for %s: %s", game_id, refusal.detail)
    return ErrorResponse(
        code=ErrorCode(refusal.reason.code.value),
        message=f"{game_id} is not served here at manifest {manifest_digest}",
    )


async def answer_ticket_request(
    server: DataServer,
    peer_id: str,
    game_id: str,
    scope: ServeScope,
    *,
    address: str,
    known_since: float,
    manifest_digest: str | None = None,
) -> Ticket | ErrorResponse:
    """The control channel's answer to ``GetTicket``: a ticket iff the game passes the gate.

    ``address`` is the control connection's source; ``known_since`` when the peer
    was first seen (the data server's clock). ``manifest_digest`` (the request's)
    asks for the partial copy of that manifest: see the module docstring.
    """
    # The book is asked first: a swarm of identities it refuses never reaches the
    # disk check, a trip to a worker thread that competes with the sends for the
    # interpreter. It is asked again when issuing: the disk check waits.
    unavailable = server.ticket_refusal(peer_id, game_id, address=address, known_since=known_since)
    if unavailable is not None:
        return _busy(unavailable)
    if manifest_digest is None:
        refusal = await check_servable(scope, game_id)
    else:
        refusal = check_partial_servable(scope, game_id, manifest_digest)
    if refusal is not None:
        return refusal
    try:
        issued = server.issue_ticket(
            peer_id,
            game_id,
            address=address,
            known_since=known_since,
            manifest_digest=manifest_digest,
        )
    except TicketUnavailable as exc:
        return _busy(exc)
    return Ticket(token=issued.token, data_port=server.port, ttl_seconds=server.tickets.ttl)


def _busy(unavailable: TicketUnavailable) -> ErrorResponse:
    log.info("%s", unavailable)
    return ErrorResponse(code=ErrorCode.BUSY, message="too many tickets outstanding; retry")


_REFUSALS: dict[ServeErrorCode, Callable[[str], str]] = {
    ServeErrorCode.GAME_NOT_FOUND: lambda game_id: f"{game_id} is not served here",
    ServeErrorCode.OPERATION_IN_PROGRESS: lambda game_id: f"{game_id} is busy here; retry later",
    ServeErrorCode.BAD_REQUEST: lambda game_id: f"bad request for {game_id}",
    ServeErrorCode.CHUNK_NOT_AVAILABLE: lambda game_id: f"{game_id}: chunk not available here",
}


class _Refused(LanspreadError):
    """Admission was refused; the status has been sent."""


def _range_status(request: ChunkRequest, served: ServedFile) -> DataStatus:
    refusal = check_chunk_range(request.offset, request.length, served.size)
    if refusal is None:
        return DataStatus.OK
    if refusal.reason is RefusalReason.CHUNK_OUT_OF_RANGE:
        return DataStatus.SHORT_FILE
    return DataStatus.BAD_REQUEST


async def _send_refusal(sock: socket.socket, status: DataStatus) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(REFUSAL_SEND_TIMEOUT):
            await asyncio.get_running_loop().sock_sendall(sock, encode_header(status))
