"""Dialing a peer and multiplexing requests over one TLS connection.

Theory of operation
-------------------
:func:`dial` runs the whole client side of the handshake and returns a
:class:`PeerConnection` only when the remote peer is proven and has accepted us::

    dial()                                               PeerServer
      |== TCP + TLS 1.3 ===================================>|
      |   pinned id = id(certificate); != expected -> PeerIdMismatch
      |<== preamble ==|== preamble ========================>|  other version -> VersionMismatch
      |<-- Challenge ---------------------------------------|
      |--- Hello (announce() called now, proof signed) ---->|
      |<-- HelloAck ----------------------------------------|  ErrorResponse -> PeerRefused
      |   PeerConnection starts its reader task             |
      |--- RequestFrame(1, GetGame) ----------------------->|
      |--- RequestFrame(2, Ping) -------------------------->|
      |<-- ResponseFrame(2, Pong) --------------------------|  matched by id,
      |<-- ResponseFrame(1, ManifestResponse) --------------|  in any order

The connection owns one reader task that routes each response to the future of
its request. When the stream ends, breaks or violates the protocol, the reader
records the reason, fails every pending request with it at once and closes the
socket. :meth:`PeerConnection.wait_closed` returns that reason:
:class:`ConnectionClosed` for an orderly close by either side,
:class:`TransportError` for a broken one, :class:`ProtocolError` for a violation,
:class:`PeerRefused` when the listener refused us with a top-level error frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar, overload

from lanspread.errors import (
    ConnectionClosed,
    LanspreadError,
    PeerIdMismatch,
    PeerRefused,
    ProtocolError,
    SelfConnect,
    TransportError,
)
from lanspread.net import wire
from lanspread.net.handshake import PartySession, build_hello, check_challenge, check_hello_ack
from lanspread.net.identity import PeerIdentity
from lanspread.net.listener import Closing
from lanspread.net.stream import FramedStream
from lanspread.net.tls import open_tls_connection, pinned_peer_id
from lanspread.net.wire import MAX_FRAME_SIZE, MAX_HANDSHAKE_FRAME_SIZE, MAX_REQUEST_ID

log = logging.getLogger(__name__)

# A LAN peer answers a TCP SYN in well under a millisecond; seconds mean it is gone.
CONNECT_TIMEOUT = 5.0
# TLS + preamble + challenge + hello/ack; generous for a busy gaming PC with a
# 4 MiB snapshot in each direction, short enough that a stuck peer is given up.
HANDSHAKE_TIMEOUT = 10.0
# Control requests are small and answered from memory or a quick disk look-up.
REQUEST_TIMEOUT = 30.0

AnnouncementBuilder = Callable[[], wire.Announcement]
"""Called once per handshake, right before the Hello is sent, so it carries the
current library snapshot."""


async def dial(
    host: str,
    port: int,
    *,
    identity: PeerIdentity,
    expected_peer_id: str | None,
    announce: AnnouncementBuilder,
    forbidden_peer_id: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    party_code: str | None = None,
) -> PeerConnection:
    """Connect to the listener at ``host:port`` and complete the handshake.

    ``expected_peer_id`` pins the listener's id (``None`` accepts any id, for a
    first contact by address). A listener whose certificate proves
    ``forbidden_peer_id`` (our own id: the address is this very peer) is left at
    once with :class:`SelfConnect`, before any Hello is sent. With ``party_code`` the
    Hello proves membership of that party and the listener must prove it back.

    Raises :class:`TransportError` (cannot connect, TLS failure, timeout),
    :class:`PeerIdMismatch`, :class:`SelfConnect`, :class:`VersionMismatch`,
    :class:`ProtocolError`, :class:`PeerRefused` (the listener refused the Hello),
    or :class:`ConnectionClosed` (it hung up during the handshake).
    """
    reader, writer = await open_tls_connection(
        host, port, connect_timeout=connect_timeout, handshake_timeout=handshake_timeout
    )
    # Until the HelloAck proves the listener, nothing larger than a handshake is held.
    stream = FramedStream(reader, writer, max_frame_size=MAX_HANDSHAKE_FRAME_SIZE)
    try:
        async with asyncio.timeout(handshake_timeout):
            ack = await _client_handshake(
                stream, identity, expected_peer_id, forbidden_peer_id, announce, party_code
            )
    except TimeoutError as exc:
        await stream.close()
        raise TransportError(
            f"handshake with {host}:{port} did not complete within {handshake_timeout} s"
        ) from exc
    except BaseException:
        await stream.close()
        raise
    stream.allow_frames_up_to(MAX_FRAME_SIZE)
    return PeerConnection._start(stream, ack)


async def _client_handshake(
    stream: FramedStream,
    identity: PeerIdentity,
    expected_peer_id: str | None,
    forbidden_peer_id: str | None,
    announce: AnnouncementBuilder,
    party_code: str | None = None,
) -> wire.HelloAck:
    server_id = pinned_peer_id(stream.writer)
    if server_id == forbidden_peer_id:
        raise SelfConnect(f"the listener is this peer ({server_id}): self-connect refused")
    if expected_peer_id is not None and server_id != expected_peer_id:
        raise PeerIdMismatch(expected_peer_id, server_id)
    await stream.exchange_preamble()
    challenge = _expect(await stream.receive(), wire.Challenge)
    check_challenge(challenge, server_id)
    await stream.send(build_hello(identity, challenge, server_id, announce(), party_code))
    ack = _expect(await stream.receive(), wire.HelloAck)
    check_hello_ack(ack, server_id, PartySession(party_code, challenge, identity.peer_id))
    return ack


_Expected = TypeVar("_Expected", wire.Challenge, wire.HelloAck)


def _expect(message: wire.Message, kind: type[_Expected]) -> _Expected:
    if isinstance(message, wire.ErrorResponse):
        raise PeerRefused(message.code, message.message)
    if not isinstance(message, kind):
        raise ProtocolError(f"expected {kind.__name__}, got {type(message).__name__}")
    return message


class PeerConnection(Closing):
    """A proven, accepted connection to one listener; requests may overlap.

    Create it with :func:`dial`. Use ``async with`` or call :meth:`close`.
    """

    def __init__(self, stream: FramedStream, hello_ack: wire.HelloAck) -> None:
        self._stream = stream
        self._hello_ack = hello_ack
        self._pending: dict[int, asyncio.Future[wire.Response]] = {}
        self._last_id = 0
        self._reason: LanspreadError | None = None
        self._closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def _start(cls, stream: FramedStream, hello_ack: wire.HelloAck) -> PeerConnection:
        connection = cls(stream, hello_ack)
        connection._reader = asyncio.get_running_loop().create_task(
            connection._read_responses(), name=f"lanspread-reader-{stream.description}"
        )
        return connection

    @property
    def peer_id(self) -> str:
        """The listener's id, proven by its certificate and echoed by its HelloAck."""
        return self._hello_ack.peer_id

    @property
    def hello_ack(self) -> wire.HelloAck:
        return self._hello_ack

    @property
    def remote_address(self) -> tuple[str, int]:
        return self._stream.remote_host, self._stream.remote_port

    @property
    def is_closed(self) -> bool:
        return self._reason is not None

    @overload
    async def request(
        self,
        message: wire.Ping,
        *,
        timeout: float = ...,  # noqa: ASYNC109
    ) -> wire.Pong: ...
    @overload
    async def request(
        self,
        message: wire.Goodbye,
        *,
        timeout: float = ...,  # noqa: ASYNC109
    ) -> wire.GoodbyeAck: ...
    @overload
    async def request(
        self,
        message: wire.PushLibraryDelta,
        *,
        timeout: float = ...,  # noqa: ASYNC109
    ) -> wire.LibraryDeltaAck | wire.ResyncRequired: ...
    @overload
    async def request(
        self,
        message: wire.PushHaveDelta,
        *,
        timeout: float = ...,  # noqa: ASYNC109
    ) -> wire.HaveDeltaAck: ...
    @overload
    async def request(
        self,
        message: wire.GetGame,
        *,
        timeout: float = ...,  # noqa: ASYNC109
    ) -> wire.ManifestResponse: ...
    @overload
    async def request(
        self,
        message: wire.GetTicket,
        *,
        timeout: float = ...,  # noqa: ASYNC109
    ) -> wire.Ticket: ...
    @overload
    async def request(
        self,
        message: wire.OfferCatalog,
        *,
        timeout: float = ...,  # noqa: ASYNC109
    ) -> wire.CatalogAck: ...

    async def request(
        self,
        message: wire.Request,
        *,
        # Each in-flight request keeps its own deadline; asyncio.timeout around the
        # call would also cover waiting for the send lock, which is not the peer's fault.
        timeout: float = REQUEST_TIMEOUT,  # noqa: ASYNC109
    ) -> wire.Response:
        """Send ``message`` and await its answer.

        Raises :class:`PeerRefused` for an :class:`ErrorResponse`, :class:`TransportError`
        when no answer arrives within ``timeout`` seconds (the connection stays open),
        :class:`ProtocolError` for an answer of the wrong kind, and the close reason
        when the connection is or becomes closed.
        """
        self._raise_if_closed()
        request_id = self._allocate_id()
        future: asyncio.Future[wire.Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._stream.send(wire.RequestFrame(id=request_id, body=message))
            async with asyncio.timeout(timeout):
                response = await future
        except TimeoutError as exc:
            raise TransportError(
                f"no answer to {type(message).__name__} from peer {self.peer_id} within {timeout} s"
            ) from exc
        finally:
            self._pending.pop(request_id, None)
        if isinstance(response, wire.ErrorResponse):
            raise PeerRefused(response.code, response.message)
        if not wire.is_answer_to(message, response):
            raise ProtocolError(
                f"peer {self.peer_id} answered {type(message).__name__} "
                f"with {type(response).__name__}"
            )
        return response

    async def close(self) -> None:
        """Close gracefully; pending requests fail with :class:`ConnectionClosed`."""
        self._finish(ConnectionClosed(f"connection to peer {self.peer_id} closed by this peer"))
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._stream.close()
        self._closed.set()

    async def wait_closed(self) -> LanspreadError:
        """Wait until the connection is closed for any reason; return the reason."""
        await self._closed.wait()
        assert self._reason is not None
        return self._reason

    async def __aenter__(self) -> PeerConnection:
        return self

    def _allocate_id(self) -> int:
        while True:
            self._last_id = self._last_id % MAX_REQUEST_ID + 1
            if self._last_id not in self._pending:
                return self._last_id

    def _raise_if_closed(self) -> None:
        if self._reason is not None:
            raise _fresh(self._reason)

    async def _read_responses(self) -> None:
        try:
            while True:
                self._route(await self._stream.receive())
        except LanspreadError as exc:
            log.debug("connection to peer %s ended: %s", self.peer_id, exc)
            self._finish(exc)
        finally:
            # Only a bug gets here without a reason; pending requests must still fail.
            self._finish(TransportError(f"connection to peer {self.peer_id} failed"))
            await self._stream.close()
            self._closed.set()

    def _route(self, message: wire.Message) -> None:
        if isinstance(message, wire.ErrorResponse):
            raise PeerRefused(message.code, message.message)
        if not isinstance(message, wire.ResponseFrame):
            raise ProtocolError(
                f"peer {self.peer_id} sent {type(message).__name__} where a response belongs"
            )
        future = self._pending.get(message.id)
        if future is None or future.done():
            # The request timed out or its caller was cancelled; the answer is moot.
            log.debug("peer %s answered request %d that no one awaits", self.peer_id, message.id)
            return
        future.set_result(message.body)

    def _finish(self, reason: LanspreadError) -> None:
        if self._reason is not None:
            return
        self._reason = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_fresh(reason))
        self._pending.clear()


def _fresh(reason: LanspreadError) -> LanspreadError:
    """A new exception equal to ``reason``, so each raiser gets its own traceback."""
    if isinstance(reason, PeerRefused):
        return PeerRefused(reason.code, reason.message)
    if isinstance(reason, PeerIdMismatch):
        return PeerIdMismatch(reason.expected, reason.actual)
    return type(reason)(str(reason))
