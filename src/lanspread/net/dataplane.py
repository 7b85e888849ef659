"""The data plane's shared pieces: the socket tuning and reads both ends use.

The wire format is in :mod:`lanspread.net.datawire`. The server half lives in
:mod:`lanspread.seeding.dataserver` (it serves what a peer seeds), the client
half in :mod:`lanspread.download.dataclient` (it fetches what a download needs).
Both sit on this module so neither imports the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from lanspread.errors import (
    ConnectionClosed,
    LanspreadError,
    PeerRefused,
    ProtocolError,
)
from lanspread.net.datawire import (
    DataStatus,
)
from lanspread.net.tls import SOCKET_BUFFER_SIZE

log = logging.getLogger(__name__)


# No byte moving for this long in either direction (a stalled reader or writer, a
# client that sends no request) ends the connection; a chunk in progress fails.
IDLE_TIMEOUT = 60.0


class DataPlaneCancelled(LanspreadError):
    """The cancellation event was set while a data connection was being opened."""


class AdmissionRefused(PeerRefused):
    """The data server refused the ticket (or its version, or had no room)."""

    def __init__(self, status: DataStatus) -> None:
        super().__init__(status.name, f"the data server refused the connection: {status.name}")
        self.status = status


def tune_data_socket(sock: socket.socket, *, nodelay: bool) -> None:
    """Large kernel buffers; Nagle left on for the bulk sender, off for the requester."""
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_SIZE)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))


async def recv_exactly(sock: socket.socket, size: int) -> bytes:
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
