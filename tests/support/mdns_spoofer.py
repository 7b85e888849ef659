"""An attacker on the switch forging lanspread's mDNS records, for the scenarios S88-S90.

mDNS is not signed: anyone can advertise any peer id at any address. The spoofer
registers lanspread records (``_lanspread._tcp.local.``, the current protocol
version, a ``peer_id`` TXT entry) that all point at its own **decoy**: a TCP
listener that says ``dialled`` for every connection, then answers TLS with the
spoofer's own certificate, so a dial expecting anyone else's id fails its pin.

* ``--claim-id ID`` advertises ``ID``'s own instance name (``instance_name(ID)``,
  what the peer of that id registers) with ``peer_id=ID``: a spoofed address for
  a live peer, or a squatted name that peer finds taken when it restarts.
* ``--fake N`` advertises ``N`` records with made-up ids (a flood), sent
  :data:`ANNOUNCE_BATCH` at a time.

Usage (inside a namespace, driven by ``JsonlProcess``, from the repository root)::

    python -m tests.support.mdns_spoofer --address 10.213.0.3 --state-dir DIR
        [--claim-id ID] [--fake N]

Events on stdout, one JSON object per line:

* ``ready`` (``peer_id`` of the spoofer's own key, ``decoy``, ``records``, ``since``:
  when the first announcement went out) once every record is registered and its
  announcements are sent;
* ``dialled`` (``remote``, ``at``: ``time.monotonic()``, the clock of every process on
  the machine) for every connection to the decoy;
* ``stats`` (``dials``) after end of stdin; then the records are withdrawn (mDNS
  goodbye) and it exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import ssl
import sys
import time

from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from lanspread.net import discovery
from lanspread.net.identity import load_or_create_identity
from lanspread.net.tls import create_listener, server_context
from lanspread.net.wire import PROTOCOL_VERSION
from tests.support.foreign_peer import emit, listener_parser, wait_for_end_of_stdin

log = logging.getLogger("mdns_spoofer")

# Records whose announcements go out together (three packets each, 225 ms apart):
# a whole flood at once would overrun a listener's socket buffer and be dropped
# there rather than be weighed by lanspread.
ANNOUNCE_BATCH = 100
# A dialer sends its ClientHello at once and hangs up when the pin fails; a dial
# that needs longer is a broken peer, not one worth waiting for.
DECOY_TIMEOUT = 5.0
# The withdrawal of every record (three goodbye packets) on a busy runner.
GOODBYE_TIMEOUT = 5.0
# One read of what a dialer sends after TLS: nothing is expected (it hangs up when
# its pin fails) and nothing is kept, so a small buffer does.
DECOY_READ_BYTES = 4096


class Decoy:
    """Counts the dials that reach the spoofer and fails each one's pin."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self.dials = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remote = writer.get_extra_info("peername")
        self.dials += 1
        emit("dialled", remote=f"{remote[0]}:{remote[1]}", at=time.monotonic())
        try:
            async with asyncio.timeout(DECOY_TIMEOUT):
                await writer.start_tls(self._context)
                while await reader.read(DECOY_READ_BYTES):
                    pass
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("dial from %s ended: %r", remote, exc)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


def record(peer_id: str, name: str, *, address: str, port: int, server: str) -> AsyncServiceInfo:
    """A lanspread record of ``peer_id`` under ``name`` pointing at ``address:port``."""
    return AsyncServiceInfo(
        discovery.SERVICE_TYPE,
        name,
        port=port,
        parsed_addresses=[address],
        server=server,
        properties={
            discovery.TXT_PROTOCOL_VERSION: str(PROTOCOL_VERSION),
            discovery.TXT_PEER_ID: peer_id,
            discovery.TXT_NAME: "spoof",
        },
    )


async def register(zeroconf: AsyncZeroconf, records: list[AsyncServiceInfo]) -> None:
    """Register ``records`` :data:`ANNOUNCE_BATCH` at a time, each batch fully announced."""
    for first in range(0, len(records), ANNOUNCE_BATCH):
        # A spoofer does not probe: it takes the names whoever holds them.
        announcing = [
            await zeroconf.async_register_service(info, cooperating_responders=True)
            for info in records[first : first + ANNOUNCE_BATCH]
        ]
        await asyncio.gather(*announcing)


async def run(args: argparse.Namespace) -> None:
    identity = await asyncio.to_thread(load_or_create_identity, args.state_dir)
    decoy = Decoy(await asyncio.to_thread(server_context, identity))
    listener = create_listener(args.address, 0)
    port = int(listener.getsockname()[1])
    server = await asyncio.start_server(decoy.handle, sock=listener)
    # The spoofer's own host name: squatting a peer's host name is another attack.
    host = f"spoof-{discovery.peer_label(identity.peer_id)}.local."
    claims = [(peer_id, discovery.instance_name(peer_id)) for peer_id in args.claim_id]
    fakes = [secrets.token_hex(32) for _ in range(args.fake)]
    claims += [(peer_id, discovery.instance_name(peer_id)) for peer_id in fakes]
    records = [
        record(peer_id, name, address=args.address, port=port, server=host)
        for peer_id, name in claims
    ]
    zeroconf = AsyncZeroconf(interfaces=[args.address])
    try:
        since = time.monotonic()
        await register(zeroconf, records)
        emit(
            "ready",
            peer_id=identity.peer_id,
            decoy=f"{args.address}:{port}",
            records=len(records),
            since=since,
        )
        await wait_for_end_of_stdin()
        emit("stats", dials=decoy.dials)
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await zeroconf.async_unregister_all_services()
        await zeroconf.async_close()


def main() -> None:
    parser = listener_parser(__doc__)
    parser.add_argument(
        "--claim-id", action="append", default=[], help="a real peer id to advertise here"
    )
    parser.add_argument("--fake", type=int, default=0, help="records with made-up ids")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
