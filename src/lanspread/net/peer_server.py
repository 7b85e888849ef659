"""The peer server: a TLS listener that proves dialers and serves their requests.

Theory of operation
-------------------
::

    dialer                                             PeerServer (one task per connection)
      |== TCP accept + TLS 1.3 ==========================>|  --+
      |<== preamble ==|== preamble =======================>|    | all within handshake_timeout,
      |<-- Challenge(version, fresh nonce, own id) --------|    | else the connection is dropped
      |--- Hello ----------------------------------------->|  --+
      |                verify_hello: version, id == id(public key), proof
      |<-- ErrorResponse(VersionMismatch|Unauthorized) + close     (on failure)
      |                handler.on_hello(hello, transport host) -> Announcement | ErrorResponse
      |<-- HelloAck(version, own id, announcement) --------|  or ErrorResponse + close
      |--- RequestFrame(id, body) ------------------------>|  handler.on_request(peer id, body),
      |<-- ResponseFrame(id, response) --------------------|  up to MAX_IN_FLIGHT_REQUESTS at once
      |--- (EOF) ---------------------------------------->|  handler.on_disconnect(peer id)

Strangers are bounded at every step (``core/admission`` decides, this shell applies):

* **Before TLS.** Right after ``accept`` a connection needs a pending-handshake
  slot: at most :data:`MAX_PENDING_HANDSHAKES_PER_ADDRESS` per source address
  (over it, the socket is closed at once) and :data:`MAX_PENDING_HANDSHAKES` in
  all (over it, the oldest pending handshake of the biggest holder is cut).
* **Until the Hello.** Frames above ``MAX_HANDSHAKE_FRAME_SIZE`` are refused, and
  TLS, preamble and Hello must complete within ``handshake_timeout``. So pending
  handshakes hold at most ``MAX_PENDING_HANDSHAKES x MAX_HANDSHAKE_FRAME_SIZE``
  of frame buffers, whatever the number of connections.
* **After the Hello.** A proven link takes a link slot (at most
  :data:`MAX_LINKS_PER_ADDRESS` per address, ``max_connections`` in all; over
  either the Hello is refused with ``Busy``); frames up to ``MAX_FRAME_SIZE`` are
  accepted; a link that sends nothing for ``idle_timeout`` is closed (the
  dialer pings every couple of seconds, so a silent link is a dead one); the
  requests of one address are paced by a token bucket
  (:data:`MAX_REQUESTS_PER_SECOND_PER_ADDRESS`, ``core/admission.RequestBudget``). A peer
  id holds **one** link: a second proven link for the same id replaces the first
  (and, from the same address, takes over its slot even when a cap is reached).
  Replacing, not refusing, because only the key holder can prove the id, and the
  usual cause is an honest peer whose old connection died without a FIN
  (restart, cable, sleep): refusing would lock it out until the idle timeout.

A handler exception becomes ``ErrorResponse(InternalPeerError)`` for that request
and is logged; a malformed, oversized or unknown frame gets a top-level
``ErrorResponse(BadRequest)`` where the stream still allows it, then the
connection closes. Nothing a remote peer sends ends the server.

Every task (the accept loop, each connection, each request) belongs to the
server's task group; :meth:`PeerServer.close` stops accepting, cancels the
connections and returns only once all of them have finished.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import ssl
from collections.abc import Callable
from typing import Protocol

from lanspread.core.admission import (
    Admitted,
    RequestBudget,
    SlotTable,
    normalize_address,
)
from lanspread.errors import (
    ConnectionClosed,
    FrameTooLarge,
    LanspreadError,
    ProtocolError,
    TransportError,
)
from lanspread.net.handshake import PartySession, build_hello_ack, new_challenge, verify_hello
from lanspread.net.identity import PeerIdentity
from lanspread.net.listener import AcceptingServer
from lanspread.net.stream import FramedStream
from lanspread.net.tls import accept_tls_connection, create_listener, server_context
from lanspread.net.wire import (
    MAX_ERROR_MESSAGE_LENGTH,
    MAX_FRAME_SIZE,
    MAX_HANDSHAKE_FRAME_SIZE,
    NONCE_SIZE,
    Announcement,
    Challenge,
    ErrorCode,
    ErrorResponse,
    Hello,
    Message,
    Request,
    RequestFrame,
    Response,
    ResponseFrame,
    is_answer_to,
)

log = logging.getLogger(__name__)

# From accept to a received Hello: TLS, preamble and one signature. A LAN peer
# needs milliseconds, plus a 4 MiB snapshot (0.3 s even at 100 Mbit/s); a socket
# that has not proven itself by then is dropped and frees its pending slot.
SERVER_HANDSHAKE_TIMEOUT = 5.0
# Pending handshakes of one source address. A peer dials another once (single
# flight per peer) and re-dials only after a failure; several peers on one host
# (a test rig, the demo) start dialling together. Each may pin up to
# MAX_HANDSHAKE_FRAME_SIZE, so one address pins at most 8 x 4 MiB.
MAX_PENDING_HANDSHAKES_PER_ADDRESS = 8
# Pending handshakes in all: 32 x MAX_HANDSHAKE_FRAME_SIZE = 128 MiB worst case.
# Honest handshakes take milliseconds, so even a party starting at once rarely has
# more in flight; beyond it, the oldest of the biggest holder is cut.
MAX_PENDING_HANDSHAKES = 32
# Proven links from one source address: a host runs one peer, a test rig or the
# demo a couple of dozen on loopback. Self-made identities on one machine share this.
MAX_LINKS_PER_ADDRESS = 32
# The dialer pings its link every ping interval (2 s by default) and the runtime
# drops a peer silent for 10 s; a link that carried nothing for this long is dead
# (or held open by someone who never pings) and is closed.
LINK_IDLE_TIMEOUT = 30.0
# Requests answered per second for one source address, over all its links. A peer
# pings each link every 2 s and asks a few manifests and tickets per download; a
# test rig or the demo with a dozen peers on one loopback address pinging every
# 0.2 s asks about 60. Beyond it that address's links are read more slowly, so a
# swarm of identities on one machine cannot make this peer answer without end.
MAX_REQUESTS_PER_SECOND_PER_ADDRESS = 100.0
# A download starting (a manifest, several tickets) together with library pushes
# and pings from every peer of that address, with room to spare.
REQUEST_BURST_PER_ADDRESS = 200.0
# Requests one connection may have in progress; the next frame is not read until
# one finishes, so a fast dialer gets back-pressure instead of unbounded tasks.
MAX_IN_FLIGHT_REQUESTS = 32
# A LAN party of a hundred peers needs about one inbound link each; this bounds the
# proven links (sockets, TLS sessions, buffers up to MAX_FRAME_SIZE) one server holds.
MAX_CONNECTIONS = 256
# A refusal is a few hundred bytes; a peer that does not take them is not waited for.
REFUSAL_SEND_TIMEOUT = 2.0


class ServerHandler(Protocol):
    """What the runtime supplies to a :class:`PeerServer`."""

    async def on_hello(self, hello: Hello, transport_host: str) -> Announcement | ErrorResponse:
        """A dialer proved ``hello.peer_id``; accept with our announcement or refuse.

        ``transport_host`` is the address the connection came from; use it when
        ``hello.announcement.listen_host`` is a wildcard. Never use the source port.
        """
        ...

    async def on_request(self, peer_id: str, request: Request) -> Response:
        """Answer one request; may run concurrently with others of the same peer.

        An exception becomes ``ErrorResponse(InternalPeerError)``.
        """
        ...

    async def on_disconnect(self, peer_id: str) -> None:
        """The connection of an accepted dialer ended (for any reason)."""
        ...


class PeerServer(AcceptingServer):
    """A TLS listener serving lanspread peers. Use ``async with PeerServer(...) as server``."""

    def __init__(
        self,
        identity: PeerIdentity,
        handler: ServerHandler,
        *,
        host: str,
        port: int,
        handshake_timeout: float = SERVER_HANDSHAKE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = LINK_IDLE_TIMEOUT,
        pending_per_address: int = MAX_PENDING_HANDSHAKES_PER_ADDRESS,
        max_pending: int = MAX_PENDING_HANDSHAKES,
        links_per_address: int = MAX_LINKS_PER_ADDRESS,
        requests_per_second: float = MAX_REQUESTS_PER_SECOND_PER_ADDRESS,
        request_burst: float = REQUEST_BURST_PER_ADDRESS,
        nonce_source: Callable[[int], bytes] = secrets.token_bytes,
        party_code: str | None = None,
    ) -> None:
        pending = SlotTable(
            per_address=pending_per_address, total=max_pending, evict_when_full=True
        )
        super().__init__(host, port, pending, clock=_loop_time, kind="peer")
        self._identity = identity
        self._party_code = party_code
        """In a party, only dialers proving its code are linked (``net/handshake``)."""
        self._handler = handler
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._links = SlotTable(
            per_address=links_per_address, total=max_connections, evict_when_full=False
        )
        # Pending handshakes cut to make room: aborted, no graceful close owed.
        self._evicted: set[asyncio.Task[None]] = set()
        self._budget = RequestBudget(
            rate=requests_per_second, burst=request_burst, max_addresses=max_connections
        )
        self._link_of_peer: dict[str, asyncio.Task[None]] = {}
        self._link_hosts: dict[str, str] = {}  # peer id -> source address of its link
        self._link_slots: dict[asyncio.Task[None], int] = {}  # link task -> its link slot
        self._link_streams: dict[asyncio.Task[None], FramedStream] = {}  # proven links
        self._streams: set[FramedStream] = set()
        self._nonce_source = nonce_source
        self._context: ssl.SSLContext | None = None

    @property
    def pending_handshakes(self) -> int:
        """Connections admitted before TLS that have not sent a proven Hello yet."""
        return len(self._gate)

    @property
    def link_count(self) -> int:
        """Proven links being served."""
        return len(self._links)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of incomplete frames held over every connection right now."""
        return sum(stream.buffered for stream in self._streams)

    async def __aenter__(self) -> PeerServer:
        self._context = await asyncio.to_thread(server_context, self._identity)
        await self._listen(create_listener(self._host, self._requested_port))
        log.info("peer server listening on %s:%d", self._host, self._port)
        return self

    def _evict(self, task: asyncio.Task[None]) -> None:
        self._evicted.add(task)  # aborted, no graceful close owed
        # Also when it is cut before it ever ran, so its own cleanup never runs.
        task.add_done_callback(self._evicted.discard)
        task.cancel()

    async def _serve(self, sock: socket.socket, host: str, pending_slot: int) -> None:
        context = self._context
        assert context is not None
        stream: FramedStream | None = None
        framing = False  # True once both preambles passed: frames may be sent
        peer_id: str | None = None
        try:
            async with asyncio.timeout(self._handshake_timeout):
                reader, writer = await accept_tls_connection(
                    sock, context, handshake_timeout=self._handshake_timeout
                )
                stream = FramedStream(reader, writer, max_frame_size=MAX_HANDSHAKE_FRAME_SIZE)
                self._streams.add(stream)
                await stream.exchange_preamble()
                framing = True
                challenge = new_challenge(self._identity, self._nonce_source(NONCE_SIZE))
                await stream.send(challenge)
                hello = await self._receive_hello(stream)
            self._end_admission(pending_slot)
            link = self._links.admit(host, asyncio.get_running_loop().time())
            if isinstance(link, Admitted):
                self._link_slots[_this_task()] = link.slot
            elif not self._may_take_over(hello.peer_id, host):
                log.info("refusing a link from %s: %s", host, link.reason.value)
                await _refuse(stream, ErrorCode.BUSY, f"too many connections from {host}")
                return
            announcement = await self._admit(stream, hello, challenge)
            if announcement is None:
                return
            peer_id = hello.peer_id
            self._replace_link(peer_id, host, _this_task(), stream)
            session = PartySession(self._party_code, challenge, peer_id)
            await stream.send(build_hello_ack(self._identity, announcement, session))
            stream.allow_frames_up_to(MAX_FRAME_SIZE)
            await self._serve_requests(stream, peer_id, host)
        except TimeoutError:
            log.info(
                "dropped a connection from %s: handshake did not complete within %s s",
                host,
                self._handshake_timeout,
            )
        except ConnectionClosed as exc:
            log.debug("%s", exc)
        except ProtocolError as exc:
            log.info("closing a connection (peer %s): %s", peer_id or "unproven", exc)
            if stream is not None and framing:
                await _refuse(stream, ErrorCode.BAD_REQUEST, str(exc))
        except (TransportError, OSError, ssl.SSLError) as exc:
            log.info("connection (peer %s) broke: %s", peer_id or "unproven", exc)
        finally:
            self._end_admission(pending_slot)
            link_slot = self._link_slots.pop(_this_task(), None)
            if link_slot is not None:
                self._links.release(link_slot)
            self._link_streams.pop(_this_task(), None)
            if peer_id is not None and self._link_of_peer.get(peer_id) is _this_task():
                del self._link_of_peer[peer_id]
                del self._link_hosts[peer_id]
            evicted = _this_task() in self._evicted
            if stream is not None:
                self._streams.discard(stream)
                if evicted:
                    stream.abort()  # its TLS and socket buffers go now, not after a close
                else:
                    await stream.close()
            if peer_id is not None:
                await self._notify_disconnect(peer_id)

    def _may_take_over(self, claimed_peer_id: str, host: str) -> bool:
        """At a cap, a Hello claiming an id linked from this same address may replace it.

        Only a claim: the Hello is verified next, and only a proven one replaces.
        """
        old = self._link_of_peer.get(claimed_peer_id)
        same_host = self._link_hosts.get(claimed_peer_id) == normalize_address(host)
        return old is not None and same_host and old in self._link_slots

    def _replace_link(
        self, peer_id: str, host: str, task: asyncio.Task[None], stream: FramedStream
    ) -> None:
        """Make ``task`` the one link of ``peer_id``; an older one is cut.

        A link admitted over a cap (see :meth:`_may_take_over`) takes the old link's
        slot, so a peer re-dialling never needs a second one. The old link is
        closed gracefully, not cut: answers it already wrote still reach the peer
        (it may have asked on it an instant before its new link was proven). Its
        task is not cancelled either: it ends when the connection has closed, like a
        link whose peer went away, while a cancelled one would keep its
        ``CancelledError``, whose traceback runs through the request task group that
        names the task, a cycle only a full collection frees.
        """
        old = self._link_of_peer.get(peer_id)
        self._link_of_peer[peer_id] = task
        self._link_hosts[peer_id] = normalize_address(host)
        self._link_streams[task] = stream
        if old is not None and old is not task:
            log.info("peer %s proved a new link; closing its old one", peer_id)
            if task not in self._link_slots and old in self._link_slots:
                self._link_slots[task] = self._link_slots.pop(old)
            old_stream = self._link_streams.pop(old, None)
            if old_stream is not None and self._task_group is not None:
                # Bounded: FramedStream.close aborts after CLOSE_TIMEOUT.
                self._task_group.create_task(old_stream.close(), name="lanspread-link-close")
            else:
                old.cancel()

    async def _receive_hello(self, stream: FramedStream) -> Hello:
        message = await stream.receive()
        if not isinstance(message, Hello):
            raise ProtocolError(f"expected Hello, got {type(message).__name__}")
        return message

    async def _admit(
        self, stream: FramedStream, hello: Hello, challenge: Challenge
    ) -> Announcement | None:
        """Our announcement when the Hello is proven and the handler accepts it."""
        refusal = verify_hello(hello, challenge, self._party_code)
        if refusal is None:
            try:
                outcome = await self._handler.on_hello(hello, stream.remote_host)
            except Exception:
                log.exception("the handler failed to accept a hello from %s", hello.peer_id)
                outcome = ErrorResponse(
                    code=ErrorCode.INTERNAL_PEER_ERROR,
                    message="the peer failed to accept the hello",
                )
            if isinstance(outcome, Announcement):
                return outcome
            refusal = outcome
        log.info("refused a hello from %s: %s", hello.peer_id, refusal.message)
        await _refuse(stream, refusal.code, refusal.message)
        return None

    async def _serve_requests(self, stream: FramedStream, peer_id: str, host: str) -> None:
        slots = asyncio.Semaphore(MAX_IN_FLIGHT_REQUESTS)
        answering: set[asyncio.Task[None]] = set()
        failure: LanspreadError | None = None
        async with asyncio.TaskGroup() as task_group:
            try:
                while True:
                    frame = await self._receive_within_idle_timeout(stream, peer_id)
                    if not isinstance(frame, RequestFrame):
                        raise ProtocolError(f"expected a request, got {type(frame).__name__}")
                    wait = self._budget.delay(host, asyncio.get_running_loop().time())
                    if wait > 0:
                        await asyncio.sleep(wait)  # over budget: this address waits, not others
                    await slots.acquire()
                    task = task_group.create_task(self._answer(stream, peer_id, frame, slots))
                    answering.add(task)
                    task.add_done_callback(answering.discard)
            except LanspreadError as exc:
                failure = exc
            finally:
                for task in answering:
                    task.cancel()
        if failure is not None:
            try:
                raise failure
            finally:
                failure = None  # its traceback holds this frame: no cycle left behind

    async def _receive_within_idle_timeout(self, stream: FramedStream, peer_id: str) -> Message:
        try:
            async with asyncio.timeout(self._idle_timeout):
                return await stream.receive()
        except TimeoutError:
            log.info("peer %s sent nothing for %s s: closing its link", peer_id, self._idle_timeout)
            raise ConnectionClosed(f"the link of peer {peer_id} was idle") from None

    async def _answer(
        self,
        stream: FramedStream,
        peer_id: str,
        frame: RequestFrame,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            response = await self._handle(peer_id, frame.body)
            try:
                await stream.send(ResponseFrame(id=frame.id, body=response))
            except FrameTooLarge:
                log.exception(
                    "the answer to %s for peer %s cannot be sent", _name(frame.body), peer_id
                )
                failed = _internal_error(frame.body)
                await stream.send(ResponseFrame(id=frame.id, body=failed))
        except TransportError as exc:
            log.debug("cannot answer peer %s: %s", peer_id, exc)
        finally:
            slots.release()

    async def _handle(self, peer_id: str, request: Request) -> Response:
        try:
            response = await self._handler.on_request(peer_id, request)
        except Exception:
            log.exception("the handler failed on %s from peer %s", _name(request), peer_id)
            return _internal_error(request)
        if not is_answer_to(request, response):
            log.error(
                "the handler answered %s with %s; sending an internal error",
                _name(request),
                type(response).__name__,
            )
            return _internal_error(request)
        return response

    async def _notify_disconnect(self, peer_id: str) -> None:
        try:
            await self._handler.on_disconnect(peer_id)
        except Exception:
            log.exception("the handler failed on the disconnect of peer %s", peer_id)


def _this_task() -> asyncio.Task[None]:
    """The connection task running this code.

    Looked up where needed, never kept in a local of ``_serve``: a cancelled task
    keeps its ``CancelledError``, whose traceback holds ``_serve``'s frame, so a
    local naming the task closes a cycle. Reference counting never frees a cycle;
    only a full collection does, which a flood of cut handshakes rarely triggers:
    every handshake it cut (frame, socket, TLS state) stayed in memory meanwhile,
    +90 MiB in ``bench/flood.py``.
    """
    task = asyncio.current_task()
    assert task is not None
    return task


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


async def _refuse(stream: FramedStream, code: ErrorCode, message: str) -> None:
    """Best effort: tell the peer why before the connection closes."""
    refusal = ErrorResponse(code=code, message=message[:MAX_ERROR_MESSAGE_LENGTH])
    try:
        async with asyncio.timeout(REFUSAL_SEND_TIMEOUT):
            await stream.send(refusal)
    except (TransportError, TimeoutError) as exc:
        log.debug("could not send the refusal: %s", exc)


def _internal_error(request: Request) -> ErrorResponse:
    return ErrorResponse(
        code=ErrorCode.INTERNAL_PEER_ERROR,
        message=f"the peer failed while handling {_name(request)}",
    )


def _name(request: Request) -> str:
    return type(request).__name__
