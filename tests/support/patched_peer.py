"""A real ``lanspread peer-cli`` whose data server lies: corrupt bytes or a trickle.

Used by the trust scenarios (``tests/netns/test_trust_scenarios.py``). Everything
is the real peer (discovery, handshake, manifests, tickets, the serve gate) except
how a chunk's bytes leave: the upload shaper's ``send`` is replaced before the
peer starts.

* ``corrupt``: every chunk is sent whole and at once, with one byte flipped, so
  the receiver's hash check fails while the connection stays healthy;
* ``trickle``: the right bytes at :data:`TRICKLE_RATE`, a source that never
  fails, only stalls whatever waits on it.

Each chunk it starts to serve adds a ``lie-served`` event (the asker's
``peer_id``, the chunk's ``offset`` and ``length``) to the peer-cli's own events
on stdout, so a test sees what the liar was asked for.

Usage (inside a namespace, driven by ``JsonlProcess``)::

    python patched_peer.py --lie corrupt|trickle peer-cli --name ... (peer-cli arguments)
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

from lanspread.cli.entry import main
from lanspread.seeding.shaping import UploadShaper

# The reported trickler: correct bytes at 2 KiB/s, which kept a download at 46%
# for 150 s where the honest source alone took under a second.
TRICKLE_RATE = 2 * 1024
# Sent at a time by the trickler: a few TCP segments' worth, every eighth of a second.
TRICKLE_PIECE = TRICKLE_RATE // 8
# Where in a chunk the corrupting liar flips a byte: any offset fails the hash.
FLIPPED_BYTE = 0


def read_at(fd: int, offset: int, length: int) -> bytes:
    """``length`` bytes of ``fd`` from ``offset``."""
    if sys.platform == "win32":  # no pread there
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, length)
    else:
        data = os.pread(fd, length, offset)
    return data


def emit(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def send_corrupt(
    self: UploadShaper, sock: socket.socket, fd: int, offset: int, length: int, peer_id: str
) -> int:
    emit("lie-served", lie="corrupt", peer_id=peer_id, offset=offset, length=length)
    data = bytearray(read_at(fd, offset, length))
    if data:
        data[FLIPPED_BYTE] ^= 0xFF
    await asyncio.get_running_loop().sock_sendall(sock, bytes(data))
    return length


async def send_trickle(
    self: UploadShaper, sock: socket.socket, fd: int, offset: int, length: int, peer_id: str
) -> int:
    emit("lie-served", lie="trickle", peer_id=peer_id, offset=offset, length=length)
    loop = asyncio.get_running_loop()
    end = offset + length
    while offset < end:
        piece = read_at(fd, offset, min(TRICKLE_PIECE, end - offset))
        await loop.sock_sendall(sock, piece)
        offset += len(piece)
        await asyncio.sleep(len(piece) / TRICKLE_RATE)
    return length


LIES = {"corrupt": send_corrupt, "trickle": send_trickle}


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "--lie" or sys.argv[2] not in LIES:
        sys.exit(f"usage: {sys.argv[0]} --lie {{{','.join(LIES)}}} peer-cli ARGS...")
    UploadShaper.send = LIES[sys.argv[2]]  # type: ignore[method-assign]
    sys.exit(main(sys.argv[3:]))
