"""A peer that lies in its peer exchange: it names a real peer's id at another address.

Used by the party scenario S87 (``tests/netns/test_party_scenarios.py``). It dials
the target with its own identity and a Hello whose hints put ``--claim-id`` at
``--claim-host:--claim-port``, then says ``lied``; every line on stdin sends the
same lie again in a Ping (answered: the target has weighed it) and says ``lied``
again. It exits with status 0 at the end of stdin.

Usage (inside a namespace, driven by ``JsonlProcess``)::

    python gossip_liar.py --target 10.213.0.1 --port 7000 --state-dir DIR
        --claim-id <64 hex> --claim-host 10.213.0.3 --claim-port 7001
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from lanspread.core.library import make_snapshot
from lanspread.net.connection import dial
from lanspread.net.identity import load_or_create_identity
from lanspread.net.wire import Announcement, PeerHint, Ping

# Any port: the liar never listens, and nobody it lies to is meant to reach it.
UNREACHABLE_PORT = 9


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(args: argparse.Namespace) -> None:
    identity = await asyncio.to_thread(load_or_create_identity, Path(args.state_dir))
    lie = (PeerHint(peer_id=args.claim_id, host=args.claim_host, port=args.claim_port),)
    announcement = Announcement(
        name="liar",
        listen_host="0.0.0.0",
        listen_port=UNREACHABLE_PORT,
        library=make_snapshot(1, []),
        peers=lie,
    )
    link = await dial(
        args.target,
        args.port,
        identity=identity,
        expected_peer_id=None,
        announce=lambda: announcement,
    )
    async with link:
        emit("lied", peer_id=identity.peer_id)
        while await asyncio.to_thread(sys.stdin.readline):
            await link.request(Ping(peers=lie))
            emit("lied", peer_id=identity.peer_id)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="lie about a peer's address in gossip")
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--claim-id", required=True)
    parser.add_argument("--claim-host", required=True)
    parser.add_argument("--claim-port", type=int, required=True)
    asyncio.run(main(parser.parse_args()))
