"""TLS 1.3 over TCP: contexts, socket tuning, dialing, accepting and pinning.

Theory of operation
-------------------
Only the listener presents a certificate (its identity's self-signed one). The
dialer does not verify it against a CA: it pins it instead, computing the peer
id from the certificate's public key (:func:`pinned_peer_id`) and comparing it
with the id it meant to reach. TLS 1.3's CertificateVerify has already proven
that the listener holds the matching private key, so a peer cannot pose as
another id. The dialer proves its own id later, in the Hello (see ``handshake``).

Sockets ask for large kernel buffers (set before connect/listen so TCP window
scaling can use them; the kernel may grant less) and disable Nagle: the control
channel carries small request/response frames where latency matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import sys
from asyncio import sslproto
from functools import cache
from typing import ClassVar

from lanspread.errors import ProtocolError, TransportError
from lanspread.net.identity import PeerIdentity, peer_id_from_certificate

# Large enough for a full LAN bandwidth-delay product at 10 Gbit/s and 1 ms with
# room to spare, and for a maximum-size frame to be in flight at once.
SOCKET_BUFFER_SIZE = 4 * 1024 * 1024
# Connections the kernel queues for the accept loop; beyond this new SYNs wait or fail.
LISTEN_BACKLOG = 128
# What one TLS read of an accepted connection takes at most: two full TLS records
# (16 KiB each). asyncio's own default is 256 KiB, allocated and zeroed for every
# connection the moment its handshake starts, before the stranger sent a byte:
# the peer server's 256 links and 32 pending handshakes would pin 72 MiB, and the
# ones a flood keeps cutting more until the collector frees them. Control frames
# are small; a 4 MiB library snapshot is 128 reads, nothing noticeable.
TLS_READ_BUFFER_SIZE = 32 * 1024


def server_context(identity: PeerIdentity) -> ssl.SSLContext:
    """The listener's TLS 1.3 context presenting ``identity``. Blocking: reads two files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_NONE
    try:
        context.load_cert_chain(identity.cert_path, identity.key_path)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(
            f"cannot load the peer certificate {identity.cert_path}: {exc}"
        ) from exc
    return context


@cache
def client_context() -> ssl.SSLContext:
    """The dialer's TLS 1.3 context: no CA verification, the caller pins the peer id."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def pinned_peer_id(writer: asyncio.StreamWriter) -> str:
    """The peer id proven by the certificate the remote listener presented."""
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise ProtocolError("the remote listener presented no certificate")
    return peer_id_from_certificate(der)


def tune_socket(sock: socket.socket) -> None:
    """Ask for large buffers and disable Nagle; refusals are not errors."""
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_SIZE)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def create_listener(host: str, port: int) -> socket.socket:
    """A bound, listening, non-blocking TCP socket (``port`` 0 picks a free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise TransportError(f"cannot resolve listen address {host}:{port}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        _allow_quick_rebind(sock)
        tune_socket(sock)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _allow_quick_rebind(sock: socket.socket) -> None:
    # The listen port is stable across restarts: rebind despite TIME_WAIT leftovers.
    # On Windows SO_REUSEADDR would let another process steal the port instead.
    if sys.platform == "win32":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
    elif os.name == "posix":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


async def open_tls_connection(
    host: str, port: int, *, connect_timeout: float, handshake_timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Dial ``host:port`` over TCP (tuned socket) and run the TLS 1.3 client handshake."""
    sock = await _connect_tcp(host, port, connect_timeout)
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()  # no transport, or asyncio closed the one it made
        raise
    # TLS on top of the plain transport, undone by closing the transport, never the
    # socket under it (see accept_tls_connection: the dialled listener may stall).
    try:
        async with asyncio.timeout(handshake_timeout):
            await writer.start_tls(
                client_context(), server_hostname=host, ssl_handshake_timeout=handshake_timeout
            )
    except TimeoutError as exc:
        writer.transport.abort()
        raise TransportError(
            f"TLS handshake with {host}:{port} did not complete within {handshake_timeout} s"
        ) from exc
    except (OSError, ssl.SSLError) as exc:
        writer.transport.abort()
        raise TransportError(f"TLS handshake with {host}:{port} failed: {exc}") from exc
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer


async def _connect_tcp(host: str, port: int, connect_timeout: float) -> socket.socket:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(connect_timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            last_error: OSError | None = None
            for family, kind, proto, _, address in infos:
                sock = socket.socket(family, kind, proto)
                try:
                    tune_socket(sock)
                    sock.setblocking(False)
                    await loop.sock_connect(sock, address)
                except OSError as exc:
                    sock.close()
                    last_error = exc
                    continue
                except BaseException:
                    sock.close()
                    raise
                return sock
    except TimeoutError as exc:
        raise TransportError(
            f"cannot connect to {host}:{port}: no answer within {connect_timeout} s"
        ) from exc
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {_reason(exc)}") from exc
    reason = _reason(last_error) if last_error is not None else "no address"
    raise TransportError(f"cannot connect to {host}:{port}: {reason}") from last_error


def _reason(exc: OSError) -> str:
    # asyncio's connect errors carry "Connect call failed (...)" as strerror; the
    # errno's own text ("Connection refused") is what a user understands.
    return os.strerror(exc.errno) if exc.errno else str(exc)


async def accept_tls_connection(
    sock: socket.socket, context: ssl.SSLContext, *, handshake_timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Run the TLS 1.3 server handshake on an accepted socket (closed on failure).

    Two steps, plain transport first and TLS on top (``loop.start_tls``), so that a
    failed or cancelled handshake is undone by closing the *transport*: closing the
    socket under a transport that is not closing yet frees its descriptor number
    while the loop still maps it to that transport, and the next socket to get the
    number is refused by asyncio ("File descriptor ... is used by transport").
    Pending handshakes are cut routinely under a flood, so this must be exact.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    try:
        tune_socket(sock)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
    except OSError as exc:
        sock.close()  # no transport, or asyncio closed the one it made
        raise TransportError(f"TLS handshake failed: {exc}") from exc
    except BaseException:
        sock.close()
        raise
    try:
        tls_transport = await _start_server_tls(
            loop, transport, protocol, context, handshake_timeout
        )
    except (OSError, ssl.SSLError) as exc:
        transport.abort()
        raise TransportError(f"TLS handshake failed: {exc}") from exc
    except BaseException:
        transport.abort()
        raise
    if tls_transport is None:  # only for a transport that was closed meanwhile
        transport.abort()
        raise TransportError("TLS handshake failed: the connection closed")
    writer = asyncio.StreamWriter(tls_transport, protocol, reader, loop)
    # What StreamWriter.start_tls does after loop.start_tls: the protocol then knows
    # it runs over TLS (no half-close on EOF). Its start_tls cannot be used here: it
    # only does the server side for protocols made by asyncio.start_server.
    protocol._replace_writer(writer)  # type: ignore[attr-defined]
    return reader, writer


class _BoundedTLSProtocol(sslproto.SSLProtocol):
    """asyncio's TLS protocol reading at most :data:`TLS_READ_BUFFER_SIZE` at a time,
    and giving its read buffer back as soon as the connection is lost (the
    transport, protocol and task frames of a cut connection form cycles that only
    the garbage collector frees, and a flood cuts thousands)."""

    max_size: ClassVar[int] = TLS_READ_BUFFER_SIZE

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._ssl_buffer = bytearray()
        self._ssl_buffer_view = memoryview(self._ssl_buffer)


async def _start_server_tls(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.BaseTransport,
    protocol: asyncio.BaseProtocol,
    context: ssl.SSLContext,
    handshake_timeout: float,
) -> asyncio.Transport | None:
    """``loop.start_tls(server_side=True)`` with :class:`_BoundedTLSProtocol`.

    The same steps as asyncio's own (which has no way to choose the protocol
    class): pause reading, swap the protocol, let it start the handshake, resume.
    """
    assert isinstance(transport, asyncio.Transport)
    waiter = loop.create_future()
    tls = _BoundedTLSProtocol(
        loop,
        protocol,
        context,
        waiter,
        server_side=True,
        # The stub says int; asyncio takes any positive number of seconds.
        ssl_handshake_timeout=handshake_timeout,  # type: ignore[arg-type]
        call_connection_made=False,
    )
    # Paused first so no data reaches the TLS protocol before its connection_made.
    transport.pause_reading()
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    app_transport: asyncio.Transport | None = tls._app_transport
    return app_transport
