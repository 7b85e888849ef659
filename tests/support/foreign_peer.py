"""A peer of another protocol version, for the version-mismatch scenario.

It looks like a lanspread peer from the future: it advertises
``<label>._lanspread._tcp.local.`` over mDNS with ``proto=<version>`` (2 by
default) and a real peer id, and its TLS listener presents a real Ed25519
peer certificate, then sends the preamble ``b"LSPR"`` + ``<version>``. It never
speaks frames: a peer of the current version must stop at the preamble.

Usage (inside a namespace, driven by ``JsonlProcess``)::

    python foreign_peer.py --address 10.213.0.3 --state-dir DIR [--protocol-version N]

Events on stdout, one JSON object per line:

* ``ready`` (``peer_id``, ``listen_addr``, ``protocol_version``) once the
  listener is bound and the mDNS announcement is out;
* ``connection`` (``remote``, ``preamble_version``) for every TLS connection
  that reached the preamble; ``preamble_version`` is the version the dialer
  announced, or ``null`` when it hung up before sending a whole preamble.

End of stdin unregisters the service (mDNS goodbye) and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import ssl
import struct
import sys
from pathlib import Path
from typing import Any

from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from lanspread.net.discovery import (
    SERVICE_TYPE,
    TXT_NAME,
    TXT_PEER_ID,
    TXT_PROTOCOL_VERSION,
    instance_name,
    peer_label,
)
from lanspread.net.identity import load_or_create_identity
from lanspread.net.tls import create_listener, server_context
from lanspread.net.wire import PREAMBLE_MAGIC, PREAMBLE_SIZE, PROTOCOL_VERSION, encode_preamble

log = logging.getLogger("foreign_peer")

# The version after ours: a peer of a newer release, whatever version ours is.
FOREIGN_PROTOCOL_VERSION = PROTOCOL_VERSION + 1
# A dialer sends its preamble right after TLS; a LAN peer that needs longer is broken.
PREAMBLE_TIMEOUT = 5.0
# Bounds the TLS server handshake of one dialer, like the real server does.
TLS_HANDSHAKE_TIMEOUT = 5.0
_PREAMBLE = struct.Struct(">4sI")


def emit(event: str, **fields: Any) -> None:
    """Write one event line to stdout and flush it at once."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def preamble_version(data: bytes) -> int | None:
    """The version a lanspread preamble announces, or None for anything else."""
    if len(data) != PREAMBLE_SIZE:
        return None
    magic, version = _PREAMBLE.unpack(data)
    return int(version) if magic == PREAMBLE_MAGIC else None


class ForeignPeer:
    """The listener half: TLS, a foreign preamble, then hang up."""

    def __init__(self, version: int) -> None:
        self._version = version

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remote = writer.get_extra_info("peername")
        announced: int | None = None
        try:
            writer.write(encode_preamble(self._version))
            await writer.drain()
            async with asyncio.timeout(PREAMBLE_TIMEOUT):
                announced = preamble_version(await reader.readexactly(PREAMBLE_SIZE))
        except (asyncio.IncompleteReadError, OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("connection from %s ended before its preamble: %r", remote, exc)
        finally:
            emit("connection", remote=f"{remote[0]}:{remote[1]}", preamble_version=announced)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def wait_for_end_of_stdin() -> None:
    """Return when stdin closes (the test is done with us)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run(address: str, state_dir: Path, version: int) -> None:
    identity = await asyncio.to_thread(load_or_create_identity, state_dir)
    context = await asyncio.to_thread(server_context, identity)
    listener = create_listener(address, 0)
    port = int(listener.getsockname()[1])
    peer = ForeignPeer(version)
    server = await asyncio.start_server(
        peer.handle, sock=listener, ssl=context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
    )
    zeroconf = AsyncZeroconf(interfaces=[address])
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        instance_name(identity.peer_id),
        port=port,
        parsed_addresses=[address],
        server=f"{peer_label(identity.peer_id)}.local.",
        properties={
            TXT_PROTOCOL_VERSION: str(version),
            TXT_PEER_ID: identity.peer_id,
            TXT_NAME: "foreign",
        },
    )
    try:
        # The instance name is our own peer id: no other responder holds it, so
        # the one-second conflict probe would only slow the test down.
        announced = await zeroconf.async_register_service(info, cooperating_responders=True)
        await announced
        emit(
            "ready",
            peer_id=identity.peer_id,
            listen_addr=f"{address}:{port}",
            protocol_version=version,
        )
        await wait_for_end_of_stdin()
    finally:
        server.close()
        await server.wait_closed()
        await zeroconf.async_unregister_all_services()
        await zeroconf.async_close()


def listener_parser(doc: str) -> argparse.ArgumentParser:
    """The options of a child that listens and announces itself: ``--address`` and
    ``--state-dir`` (its identity); the first line of ``doc`` describes it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--address", required=True, help="IPv4 address to listen and announce on")
    parser.add_argument("--state-dir", required=True, type=Path, help="folder for the identity")
    return parser


def main() -> None:
    parser = listener_parser(__doc__)
    parser.add_argument("--protocol-version", type=int, default=FOREIGN_PROTOCOL_VERSION)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(run(args.address, args.state_dir, args.protocol_version))


if __name__ == "__main__":
    main()
