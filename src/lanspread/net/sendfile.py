"""Portable zero-copy file-to-socket sends and positional writes.

:func:`send_file_range` sends ``count`` bytes of an open file from ``offset`` to a
non-blocking socket without blocking the event loop. Where ``os.sendfile``
exists (Linux, the BSDs, macOS) the kernel copies page cache to the socket
directly: Python never touches the bytes, which is what keeps a seeder's CPU
free. It is called on the non-blocking socket until it would block, then the
event loop waits for the socket to become writable. Elsewhere (Windows) the
loop's ``sock_sendfile`` is used: the proactor loop sends with ``TransmitFile``
and falls back to read + send.

:func:`pwrite_all` is :func:`lanspread.platform.fileio.pwrite` in a loop until
every byte is written (on Windows, which has no ``pwrite``, that seeks and
writes under a lock per file descriptor).
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
from typing import Final

from lanspread.platform import fileio

Buffer = bytes | bytearray | memoryview


# One sendfile call moves at most this much. The kernel caps a call near 2 GiB
# anyway; a bound in between lets the loop serve other connections between calls
# without costing syscalls (each call is one socket buffer's worth at most).
SENDFILE_BLOCK: Final = 64 * 1024 * 1024


class FileEndedEarly(OSError):
    """The file ended before ``count`` bytes were sent (it shrank meanwhile)."""


async def send_file_range(sock: socket.socket, fd: int, offset: int, count: int) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset``; return the bytes sent (== count).

    Raises :class:`FileEndedEarly` when the file holds fewer bytes than asked
    (the bytes already sent stay sent: the caller must close the connection) and
    ``OSError`` when the socket breaks.
    """
    if sys.platform == "win32":
        sent = await _sendfile_portable(sock, fd, offset, count)
    else:
        sent = await _sendfile_native(sock, fd, offset, count)
    return sent


if sys.platform != "win32":

    async def _sendfile_native(sock: socket.socket, fd: int, offset: int, count: int) -> int:
        loop = asyncio.get_running_loop()
        out = sock.fileno()
        sent = 0
        while sent < count:
            try:
                done = os.sendfile(out, fd, offset + sent, min(count - sent, SENDFILE_BLOCK))
            except (BlockingIOError, InterruptedError):
                await _writable(loop, sock)
                continue
            if done == 0:
                raise FileEndedEarly(f"the file ended after {offset + sent} bytes")
            sent += done
        return sent


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Wait until ``sock`` accepts more bytes (or fails: the next send says how)."""
    waiter: asyncio.Future[None] = loop.create_future()
    loop.add_writer(sock.fileno(), _wake, waiter)
    try:
        await waiter
    finally:
        loop.remove_writer(sock.fileno())


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _sendfile_portable(sock: socket.socket, fd: int, offset: int, count: int) -> int:
    # Windows: the proactor loop's sock_sendfile uses TransmitFile; any loop falls
    # back to reading blocks and sock_sendall when it cannot send natively.
    loop = asyncio.get_running_loop()
    with io.FileIO(fd, "rb", closefd=False) as file:
        size = os.fstat(fd).st_size
        if offset + count > size:
            raise FileEndedEarly(f"the file holds {size} bytes, {offset + count} asked")
        sent = await loop.sock_sendfile(sock, file, offset, count, fallback=True)
    if sent != count:
        raise FileEndedEarly(f"the file ended after {offset + sent} bytes")
    return sent


# --- positional writes -------------------------------------------------------------------


def pwrite_all(fd: int, data: Buffer, offset: int) -> None:
    """Write all of ``data`` at ``offset`` of ``fd`` (blocking; ``OSError`` on failure)."""
    view = memoryview(data).cast("B")
    while view:
        written = fileio.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
