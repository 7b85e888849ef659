"""A TLS stream that speaks frames: the asyncio shell around :class:`FrameDecoder`.

Both ends of a connection use it. It translates every foreign exception at the
edge: an end of stream between frames is :class:`ConnectionClosed`, inside a frame
:class:`ProtocolError`, a reset or TLS failure :class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl

from lanspread.errors import ConnectionClosed, ProtocolError, TransportError
from lanspread.net.wire import (
    MAX_FRAME_SIZE,
    PREAMBLE_SIZE,
    FrameDecoder,
    Message,
    check_preamble,
    encode_frame,
    encode_preamble,
)

log = logging.getLogger(__name__)

# One read asks for this much; TLS hands out at most one 16 KiB record per call
# anyway, so larger reads only matter for bursts of already-decrypted records.
READ_CHUNK_SIZE = 256 * 1024
# A graceful close (TLS close_notify) that the other side does not complete within
# this time is cut short with an abort, so shutdown stays bounded.
CLOSE_TIMEOUT = 2.0


class FramedStream:
    """Send and receive whole messages over one TLS connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame_size)
        self._ready: collections.deque[Message] = collections.deque()
        self._send_lock = asyncio.Lock()
        self._close_started = False
        self._close_done = asyncio.Event()
        peer = writer.get_extra_info("peername")
        self.remote_host: str = str(peer[0]) if peer else "?"
        self.remote_port: int = int(peer[1]) if peer else 0

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self._writer

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held right now."""
        return self._decoder.buffered

    def allow_frames_up_to(self, size: int) -> None:
        """Accept frames of up to ``size`` bytes from now on (after the Hello proved the peer)."""
        self._decoder.max_frame_size = size

    @property
    def description(self) -> str:
        return f"{self.remote_host}:{self.remote_port}"

    async def exchange_preamble(self, version: int | None = None) -> None:
        """Send our preamble, then read and check the remote one.

        ``version`` overrides the announced version (tests impersonating other versions).
        """
        await self.send_bytes(encode_preamble() if version is None else encode_preamble(version))
        try:
            data = await self._reader.readexactly(PREAMBLE_SIZE)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ConnectionClosed(
                    f"{self.description} closed the connection before its preamble"
                ) from exc
            raise ProtocolError(
                f"{self.description} sent a truncated preamble ({len(exc.partial)} bytes)"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"connection to {self.description} broke: {exc}") from exc
        check_preamble(data)

    async def send(self, message: Message) -> None:
        await self.send_bytes(encode_frame(message))

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (OSError, ssl.SSLError, RuntimeError) as exc:
                # RuntimeError: asyncio refuses writes on a transport it is closing.
                raise TransportError(f"cannot send to {self.description}: {exc}") from exc

    async def receive(self) -> Message:
        """The next message; raises when the stream ends or breaks."""
        while not self._ready:
            try:
                data = await self._reader.read(READ_CHUNK_SIZE)
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(f"connection to {self.description} broke: {exc}") from exc
            if not data:
                self._decoder.feed_eof()
                raise ConnectionClosed(f"{self.description} closed the connection")
            self._ready.extend(self._decoder.feed(data))
        return self._ready.popleft()

    async def close(self) -> None:
        """Close gracefully (TLS close_notify, FIN); abort after :data:`CLOSE_TIMEOUT`.

        Only the first call waits on the transport; later or concurrent calls wait for
        it to finish. ``wait_closed`` awaits the protocol's one close future, and a
        timed-out wait cancels that future: a second wait on it would raise a
        ``CancelledError`` nobody asked for into the caller.
        """
        if self._close_started:
            await self._close_done.wait()
            return
        self._close_started = True
        # A partial frame (up to the frame bound) is garbage now; free it before the
        # graceful close waits, or connections cut in a flood hold theirs meanwhile.
        self._decoder.discard()
        self._ready.clear()
        try:
            self._writer.close()
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.debug("closing %s: %s; aborting", self.description, exc)
            self._writer.transport.abort()
        except BaseException:
            self._writer.transport.abort()
            raise
        finally:
            self._close_done.set()

    def abort(self) -> None:
        """Cut the connection at once (no close_notify); a partial frame is freed."""
        self._decoder.discard()
        self._ready.clear()
        self._writer.transport.abort()
