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
from types import TracebackType
from typing import Protocol

from lanspread.errors import (
    ConnectionClosed,
    FrameTooLarge,
    LanspreadError,
    ProtocolError,
    TransportError,
)
from lanspread.net.handshake import build_hello_ack, new_challenge, verify_hello
from lanspread.net.identity import PeerIdentity
from lanspread.net.stream import FramedStream
from lanspread.net.tls import accept_tls_connection, create_listener, server_context
from lanspread.net.wire import (
    MAX_ERROR_MESSAGE_LENGTH,
    NONCE_SIZE,
    Announcement,
    Challenge,
    ErrorCode,
    ErrorResponse,
    Hello,
    Request,
    RequestFrame,
    Response,
    ResponseFrame,
    is_answer_to,
)

log = logging.getLogger(__name__)

# From accept to a received Hello: TLS, preamble and one signature. A LAN peer
# needs milliseconds (plus a 4 MiB snapshot); a silent socket is dropped after this.
SERVER_HANDSHAKE_TIMEOUT = 10.0
# Requests one connection may have in progress; the next frame is not read until
# one finishes, so a fast dialer gets back-pressure instead of unbounded tasks.
MAX_IN_FLIGHT_REQUESTS = 32
# A LAN party of a hundred peers needs about one inbound connection each; this bounds
# the sockets, TLS sessions and buffers (up to MAX_FRAME_SIZE each) one server holds.
MAX_CONNECTIONS = 256
# A failed accept (usually out of file descriptors) is retried after this pause
# instead of spinning; established connections keep being served meanwhile.
ACCEPT_RETRY_DELAY = 0.1
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


class PeerServer:
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
        nonce_source: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._identity = identity
        self._handler = handler
        self._host = host
        self._requested_port = port
        self._handshake_timeout = handshake_timeout
        self._max_connections = max_connections
        self._nonce_source = nonce_source
        self._listener: socket.socket | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._accept_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._port = 0

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    @property
    def host(self) -> str:
        return self._host

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def __aenter__(self) -> PeerServer:
        context = await asyncio.to_thread(server_context, self._identity)
        listener = create_listener(self._host, self._requested_port)
        self._listener = listener
        self._port = int(listener.getsockname()[1])
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._accept_task = self._task_group.create_task(
            self._accept_loop(listener, context), name=f"lanspread-accept-{self._port}"
        )
        log.info("peer server listening on %s:%d", self._host, self._port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop accepting, close every connection and await every task. Idempotent."""
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            if self._listener is not None:
                await self._closed.wait()  # another caller is closing it
            return
        if self._accept_task is not None:
            self._accept_task.cancel()
        for task in list(self._connections):
            task.cancel()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            if self._listener is not None:
                self._listener.close()
            self._closed.set()
            log.info("peer server on port %d closed", self._port)

    async def wait_closed(self) -> None:
        """Return once :meth:`close` has finished."""
        await self._closed.wait()

    async def _accept_loop(self, listener: socket.socket, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        task_group = self._task_group
        assert task_group is not None
        while True:
            try:
                sock, address = await loop.sock_accept(listener)
            except OSError as exc:
                # Out of file descriptors and the like: keep serving what we have.
                log.warning("accepting a connection failed: %s", exc)
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            if len(self._connections) >= self._max_connections:
                log.warning("refusing %s: %d connections already", address, len(self._connections))
                sock.close()
                continue
            task = task_group.create_task(
                self._serve_connection(sock, context), name=f"lanspread-conn-{address}"
            )
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve_connection(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        stream: FramedStream | None = None
        framing = False  # True once both preambles passed: frames may be sent
        peer_id: str | None = None
        try:
            async with asyncio.timeout(self._handshake_timeout):
                reader, writer = await accept_tls_connection(
                    sock, context, handshake_timeout=self._handshake_timeout
                )
                stream = FramedStream(reader, writer)
                await stream.exchange_preamble()
                framing = True
                challenge = new_challenge(self._identity, self._nonce_source(NONCE_SIZE))
                await stream.send(challenge)
                hello = await self._receive_hello(stream)
            announcement = await self._admit(stream, hello, challenge)
            if announcement is None:
                return
            peer_id = hello.peer_id
            await stream.send(build_hello_ack(self._identity, announcement))
            await self._serve_requests(stream, peer_id)
        except TimeoutError:
            log.info(
                "dropped a connection: handshake did not complete within %s s",
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
            if stream is not None:
                await stream.close()
            if peer_id is not None:
                await self._notify_disconnect(peer_id)

    async def _receive_hello(self, stream: FramedStream) -> Hello:
        message = await stream.receive()
        if not isinstance(message, Hello):
            raise ProtocolError(f"expected Hello, got {type(message).__name__}")
        return message

    async def _admit(
        self, stream: FramedStream, hello: Hello, challenge: Challenge
    ) -> Announcement | None:
        """Our announcement when the Hello is proven and the handler accepts it."""
        refusal = verify_hello(hello, challenge)
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

    async def _serve_requests(self, stream: FramedStream, peer_id: str) -> None:
        slots = asyncio.Semaphore(MAX_IN_FLIGHT_REQUESTS)
        answering: set[asyncio.Task[None]] = set()
        failure: LanspreadError | None = None
        async with asyncio.TaskGroup() as task_group:
            try:
                while True:
                    frame = await stream.receive()
                    if not isinstance(frame, RequestFrame):
                        raise ProtocolError(f"expected a request, got {type(frame).__name__}")
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
            raise failure

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
