"""The outbound links: one reused TLS connection per peer.

Requests travel from dialer to listener, so each peer keeps its own link to
every peer it knows. A link is dialled on first use, and at most once at a time
per peer (single flight: concurrent users await the same dial and share its
result or its error). A new handshake replaces the link and closes the old one;
a link that broke is dialled again on next use. Closing a dropped link is a job
of the ``peers`` service (it may wait out a TLS close timeout); whatever is
still open or closing at shutdown is closed by :meth:`LinkTable.close_all`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Literal

from lanspread.errors import LanspreadError, PeerRefused
from lanspread.net.connection import PeerConnection

Job = Callable[[], Awaitable[None]]

# A peer whose link to us closed answers a ping over ours within this, or it is
# gone: a live peer answers in milliseconds on a LAN; one that died refuses the
# dial at once, so the wait only bounds a peer that froze.
PRESENCE_PROBE_TIMEOUT = 2.0
# A peer shutting down stops serving before it says goodbye (within its goodbye
# timeout): waiting this long first lets its goodbye, not the closed link, say why.
PRESENCE_GRACE = 1.0


Ping = Callable[[str], Awaitable[None]]
Drop = Callable[[str, Literal["disconnected"]], Awaitable[None]]


async def confirm_presence(peer_id: str, *, ping: Ping, drop: Drop) -> None:
    """A link with ``peer_id`` closed: ping it now and drop it when it does not answer,
    so a peer that quit shows offline at once, not after the liveness timeout. A peer
    that only replaced its link answers and stays."""
    await asyncio.sleep(PRESENCE_GRACE)
    try:
        async with asyncio.timeout(PRESENCE_PROBE_TIMEOUT):
            await ping(peer_id)
    except (LanspreadError, PeerRefused, OSError, TimeoutError):
        await drop(peer_id, "disconnected")


class LinkTable:
    def __init__(self, spawn: Callable[[Job], None], *, ping: Ping, drop: Drop) -> None:
        self._spawn = spawn
        self._ping = ping
        self._drop = drop
        self._links: dict[str, PeerConnection] = {}
        self._dialing: dict[str, asyncio.Future[PeerConnection]] = {}
        self._closing: set[PeerConnection] = set()

    async def ensure(
        self, peer_id: str, dial: Callable[[], Awaitable[PeerConnection]]
    ) -> PeerConnection:
        """The open link to ``peer_id``, else the result of ``dial()`` (single flight)."""
        connection = self._links.get(peer_id)
        if connection is not None and not connection.is_closed:
            return connection
        pending = self._dialing.get(peer_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[PeerConnection] = asyncio.get_running_loop().create_future()
        self._dialing[peer_id] = future
        try:
            connection = await dial()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(connection)
        finally:
            del self._dialing[peer_id]
        return connection

    async def replace(self, peer_id: str, connection: PeerConnection) -> None:
        """``connection`` is the link to ``peer_id`` now; an older one is closed."""
        old = self._links.pop(peer_id, None)
        self._links[peer_id] = connection
        self._spawn(functools.partial(self._watch, peer_id, connection))
        if old is not None and old is not connection:
            await old.close()

    def lost(self, peer_id: str) -> None:
        """A link with ``peer_id`` closed from its side: find out at once whether it is gone."""
        self._spawn(functools.partial(confirm_presence, peer_id, ping=self._ping, drop=self._drop))

    async def _watch(self, peer_id: str, connection: PeerConnection) -> None:
        """The current link closing by itself (not replaced, not dropped) is a loss."""
        await connection.wait_closed()
        if self._links.get(peer_id) is connection:
            del self._links[peer_id]
            self.lost(peer_id)

    def drop(self, peer_id: str) -> None:
        """Forget the link to ``peer_id`` and close it as a job.

        A job, not awaited: closing a link to a silent peer waits out the TLS close
        timeout, which would hold up dropping the next silent peer."""
        connection = self._links.pop(peer_id, None)
        if connection is not None:
            self._close_later(connection)

    def _close_later(self, connection: PeerConnection) -> None:
        """Close ``connection`` as a job; :meth:`close_all` finishes it if the job never ran."""
        self._closing.add(connection)

        async def close() -> None:
            try:
                await connection.close()
            finally:
                self._closing.discard(connection)

        self._spawn(close)

    async def close_all(self) -> None:
        links, self._links = list(self._links.values()), {}
        for connection in [*links, *self._closing]:
            await connection.close()
        self._closing.clear()
