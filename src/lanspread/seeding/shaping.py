"""Upload shaping for the data server: fair slots and a live rate limit around each chunk.

Theory of operation
-------------------
The rules are pure (``core/uploads``); :class:`UploadShaper` applies them with
the server's clock. Before a chunk's OK header the connection's peer must hold
one of the :class:`~lanspread.core.uploads.UploadScheduler`'s slots
(:meth:`UploadShaper.turn`): it waits in line, woken when a holder finishes or
leaves or when the scheduler says a slot frees by itself, at most
:data:`MAX_SLOT_WAIT`; past that it is served anyway, so the client never meets
its idle timeout (a refusal would count as a failed source). The chunk is then
sent (:meth:`UploadShaper.send`) in pieces of :data:`PACING_PIECE` bytes, each
after the wait the one :class:`~lanspread.core.uploads.TokenBucket` of the server
asks for, so every connection shares the limit. :meth:`UploadShaper.set_limit`,
or the limit source the shaper was given (asked before each piece), changes the
rate from the next piece on. Bytes sent are metered per peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable

from lanspread.core.uploads import UNLIMITED, PeerRates, TokenBucket, UploadScheduler
from lanspread.net.dataplane import IDLE_TIMEOUT
from lanspread.net.sendfile import send_file_range

log = logging.getLogger(__name__)


# The longest a chunk waits in line for an upload slot: half the client's idle
# timeout, so a waiting downloader is never cut off as silent.
MAX_SLOT_WAIT = IDLE_TIMEOUT / 2


# Under a rate limit a chunk goes in pieces of this size, each after the bucket's
# wait: the client sees bytes often (its idle timeout is per read) and connections
# sharing the limit interleave. Unlimited, a chunk goes in one sendfile.
PACING_PIECE = 256 * 1024


# A piece may take IDLE_TIMEOUT plus this rate's time before its send is cut:
# 1 MiB/s is far below any LAN yet bounds how long a client that stopped reading
# holds the descriptor and the slot.
SLOWEST_RATE = 1024 * 1024


# A wake-up for a slot that frees by itself comes this much after the moment the
# scheduler named, so the clock has surely passed it.
_CLOCK_SLACK = 0.01


class UploadShaper:
    """Slots, the rate limit and upload rates of one data server."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        upload_limit: int | Callable[[], int] = UNLIMITED,
        slots: UploadScheduler | None = None,
        serves_others: Callable[[str], bool] = lambda peer_id: False,
    ) -> None:
        self._clock = clock
        self._limit_source = upload_limit if callable(upload_limit) else None
        self._bucket = TokenBucket(self._current_limit(upload_limit), clock())
        self._slots = slots if slots is not None else UploadScheduler()
        self._changed = asyncio.Event()
        self._serves_others = serves_others
        self._rates = PeerRates()

    @staticmethod
    def _current_limit(limit: int | Callable[[], int]) -> int:
        return limit() if callable(limit) else limit

    @property
    def limit(self) -> int:
        """The upload limit in force, bytes a second (0: unlimited)."""
        if self._limit_source is not None:
            self._bucket.set_rate(self._limit_source(), self._clock())
        return self._bucket.rate

    def set_limit(self, rate: int) -> None:
        """Apply ``rate`` (bytes a second, 0: unlimited) from the next piece on.

        A shaper given a limit source asks it again before each piece instead.
        """
        self._bucket.set_rate(rate, self._clock())

    def rates(self) -> dict[str, float]:
        """Bytes a second sent to each peer lately (peers with recent bytes only)."""
        return self._rates.rates(self._clock())

    @property
    def serving(self) -> frozenset[str]:
        """The peers holding an upload slot now."""
        return self._slots.holders

    @property
    def waiting(self) -> tuple[str, ...]:
        """The peers waiting in line for an upload slot, first first."""
        return self._slots.waiting

    def leave(self, peer_id: str) -> None:
        """``peer_id``'s last data connection closed."""
        self._slots.leave(peer_id, self._clock())
        self._wake()

    @contextlib.asynccontextmanager
    async def turn(self, peer_id: str) -> AsyncIterator[None]:
        """Hold ``peer_id``'s slot for one chunk (waiting for it first)."""
        slotted = await self._take_slot(peer_id)
        try:
            yield
        finally:
            if slotted:
                self._slots.finished(peer_id, self._clock())
                self._wake()

    async def send(
        self, sock: socket.socket, fd: int, offset: int, length: int, peer_id: str
    ) -> int:
        """Send ``length`` bytes of ``fd`` from ``offset``, paced; the bytes sent."""
        end = offset + length
        while offset < end:
            size = end - offset
            if self.limit != UNLIMITED:
                size = min(size, PACING_PIECE)
            delay = self._bucket.take(size, self._clock())
            if delay > 0:
                await asyncio.sleep(delay)
            async with asyncio.timeout(IDLE_TIMEOUT + size / SLOWEST_RATE):
                sent = await send_file_range(sock, fd, offset, size)
            self._rates.add(peer_id, sent, self._clock())
            offset += sent
        return length

    async def _take_slot(self, peer_id: str) -> bool:
        """Wait for ``peer_id``'s turn; False when :data:`MAX_SLOT_WAIT` passed first."""
        start = self._clock()
        serves = self._serves_others(peer_id)
        while True:
            wake = self._changed
            now = self._clock()
            if self._slots.request(peer_id, now, serves_others=serves):
                return True
            if now - start >= MAX_SLOT_WAIT:
                log.info(
                    "peer %s waited %.0f s for an upload slot; serving it", peer_id, now - start
                )
                return False
            timeout = start + MAX_SLOT_WAIT - now
            change = self._slots.next_change(now)
            if change is not None:
                timeout = min(timeout, change + _CLOCK_SLACK)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
