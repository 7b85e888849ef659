"""Flood benchmark: an honest download from a peer under a stranger's flood, on loopback.

Usage: ``.venv/bin/python bench/flood.py [--mib 256] [--rounds 3] [--share-cores]``

The attacked peer runs in a child process (so its RSS is its own): a
``PeerServer`` and a ``DataServer`` whose handler answers pings and
``GetTicket`` the way the runtime does (ticket bound to the link's address,
freshness from the peer's first Hello). The parent is the honest peer, at
127.0.0.1; the stranger (``tests/support/stranger.py``) is another child, at
127.0.1.1-60 (Linux routes all of 127.0.0.0/8 over loopback, so these are
other source addresses).

1. **unflooded**: the honest peer downloads the ``--mib`` MiB game over one data
   connection, ``--rounds`` times; median MiB/s;
2. the honest peer waits until it is no longer *fresh* (``FRESH_PEER_AGE`` after
   its first Hello), as a peer that was at the party before the attack;
3. **flooded**: the same downloads while the stranger (its own process) keeps 600 idle sockets
   open on each port (re-opening every one the peer cuts) and 256 self-made
   identities, 32 per address, hold links and ask for tickets in a loop;

and prints both speeds, their ratio, the attacked peer's RSS before, its peak
(``VmHWM``) growth, and what the Sybils got.

At a party the stranger floods from a machine of its own: its CPU is not the
attacked peer's. Here all three share one machine, so by default the stranger
gets the last core to itself and the honest pair the others, in both phases: the
ratio then measures what the flood costs the attacked peer, not what the
stranger's own process takes from the others. ``--share-cores`` lets the three
share every core (on a 2-core machine, a far harsher test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from lanspread.core.library import make_snapshot
from lanspread.core.manifest import GameManifest
from lanspread.core.planning import manifest_tasks
from lanspread.core.servegate import GateState
from lanspread.core.tickets import FRESH_PEER_AGE
from lanspread.download.dataclient import ChunkOutcome, DataConnection
from lanspread.files.hashing import hash_game_payload
from lanspread.net.connection import PeerConnection, dial
from lanspread.net.identity import load_or_create_identity
from lanspread.net.peer_server import PeerServer
from lanspread.net.wire import (
    Announcement,
    ErrorCode,
    ErrorResponse,
    GetTicket,
    Hello,
    Ping,
    Pong,
    Request,
    Response,
    Ticket,
)
from lanspread.seeding.dataserver import DataServer, ServeScope, answer_ticket_request

# The chunk sink is the data-plane tests' own; make the checkout importable when run
# as ``.venv/bin/python bench/flood.py``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.sink import Sink

GAME = "flood"
HONEST = "127.0.0.1"
# The stranger's addresses: sixty, so its 600 idle sockets per port come ten per
# address and its 256 identities 32 per address (tests/support/stranger.py).
STRANGERS = tuple(f"127.0.1.{n}" for n in range(1, 61))
STRANGER = Path(__file__).resolve().parent.parent / "tests" / "support" / "stranger.py"
# The honest peer pings its link like the runtime does, so the idle timeout spares it.
PING_INTERVAL = 2.0
# Any one step of the benchmark that takes longer than this has failed.
STEP_TIMEOUT = 120.0


def announce(name: str) -> Announcement:
    return Announcement(name=name, listen_host=HONEST, listen_port=9, library=make_snapshot(1, []))


# --- the attacked peer (child process) -----------------------------------------------------


class VictimHandler:
    """Answers like the runtime: pings, and tickets bound to the link's address and age."""

    def __init__(self) -> None:
        self.data: DataServer | None = None
        self.scope: ServeScope | None = None
        self.first_seen: dict[str, float] = {}
        self.hosts: dict[str, str] = {}

    async def on_hello(self, hello: Hello, transport_host: str) -> Announcement | ErrorResponse:
        self.first_seen.setdefault(hello.peer_id, time.monotonic())
        self.hosts[hello.peer_id] = transport_host
        return announce("victim")

    async def on_request(self, peer_id: str, request: Request) -> Response:
        if isinstance(request, Ping):
            return Pong()
        if isinstance(request, GetTicket):
            assert self.data is not None
            assert self.scope is not None
            return await answer_ticket_request(
                self.data,
                peer_id,
                request.game_id,
                self.scope,
                address=self.hosts[peer_id],
                known_since=self.first_seen[peer_id],
            )
        return ErrorResponse(code=ErrorCode.BAD_REQUEST, message="not in this benchmark")

    async def on_disconnect(self, peer_id: str) -> None:
        return None


async def run_victim(game_dir: Path, state_dir: Path) -> None:
    identity = await asyncio.to_thread(load_or_create_identity, state_dir)
    handler = VictimHandler()
    scope = ServeScope(game_dir, GateState(frozenset({GAME}), frozenset()))
    handler.scope = scope
    async with (
        PeerServer(identity, handler, host=HONEST, port=0) as control,
        DataServer(lambda: scope, host=HONEST, port=0) as data,
    ):
        handler.data = data
        print(json.dumps({"control": control.port}), flush=True)
        await asyncio.to_thread(sys.stdin.read)


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


# --- the honest peer ------------------------------------------------------------------------


async def download(link: PeerConnection, manifest: GameManifest, dest: Path) -> float:
    """One full download over one data connection; MiB/s."""
    began = time.perf_counter()
    ticket = await link.request(GetTicket(game_id=GAME))
    assert isinstance(ticket, Ticket)
    sink = Sink(dest)
    try:
        async with await DataConnection.open(HONEST, ticket.data_port, ticket.token) as conn:
            fetch = conn.fetch(manifest_tasks(manifest), sink)
            async with contextlib.aclosing(fetch) as results:
                outcomes = [result.outcome async for result in results]
    finally:
        sink.close()
    elapsed = time.perf_counter() - began
    # Gone before the next round: a few rounds' worth of dirty pages would make the
    # kernel throttle the writes, and the benchmark would time the disk.
    shutil.rmtree(dest)
    assert set(outcomes) == {ChunkOutcome.OK}, outcomes
    return manifest.total_bytes / (1024 * 1024) / elapsed


async def keep_pinging(link: PeerConnection) -> None:
    while True:
        await asyncio.sleep(PING_INTERVAL)
        await link.request(Ping())


# --- driver -----------------------------------------------------------------------------------


def split_cores(share: bool) -> tuple[set[int], set[int]] | None:
    """The cores of the honest pair and the stranger's own; None when they share."""
    split: tuple[set[int], set[int]] | None = None
    if sys.platform == "linux":  # CPU affinity is Linux's; elsewhere the three share
        cores = sorted(os.sched_getaffinity(0))
        if not share and len(cores) >= 2:
            split = set(cores[:-1]), {cores[-1]}
    return split


def pin(pid: int, cores: set[int]) -> None:
    """Run process ``pid`` (0: this one) on ``cores`` only."""
    if sys.platform == "linux":
        os.sched_setaffinity(pid, cores)


async def bench(mib: int, rounds: int, share_cores: bool) -> None:
    cores = split_cores(share_cores)
    if cores is not None:
        pin(0, cores[0])  # the attacked peer, a child, inherits it
    with tempfile.TemporaryDirectory(prefix="lanspread-flood-") as tmp:
        base = Path(tmp)
        root = base / "games" / GAME
        root.mkdir(parents=True)
        block = os.urandom(1024 * 1024)
        with (root / "data.eti").open("wb") as out:
            for _ in range(mib):
                out.write(block)
        (root / "version.ini").write_text("1.0")
        manifest = await asyncio.to_thread(hash_game_payload, root, GAME, "1.0")
        async with child("--victim", str(base / "games"), str(base / "victim")) as victim:
            hello = await victim.read()
            await measure(victim, hello["control"], manifest, base, rounds, cores)


class Child:
    """A benchmark role in its own process, speaking JSON lines on stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    async def read(self) -> dict[str, int]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), STEP_TIMEOUT)
        result: dict[str, int] = json.loads(line)
        result.pop("event", None)
        return result

    def stop(self) -> None:
        assert self.process.stdin is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()


@contextlib.asynccontextmanager
async def child(*args: str, script: Path = Path(__file__)) -> AsyncIterator[Child]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    role = Child(process)
    try:
        yield role
    finally:
        role.stop()
        await asyncio.wait_for(process.wait(), STEP_TIMEOUT)


async def measure(
    victim: Child,
    control: int,
    manifest: GameManifest,
    base: Path,
    rounds: int,
    cores: tuple[set[int], set[int]] | None,
) -> None:
    honest = await asyncio.to_thread(load_or_create_identity, base / "honest")
    link = await dial(
        HONEST, control, identity=honest, expected_peer_id=None, announce=lambda: announce("honest")
    )
    first_hello = time.monotonic()
    async with link, asyncio.TaskGroup() as group:
        pinger = group.create_task(keep_pinging(link))
        quiet = [await download(link, manifest, base / f"quiet{n}") for n in range(rounds)]
        rss_before = status_kib(victim.pid, "VmRSS")
        data_port = (await link.request(GetTicket(game_id=GAME))).data_port
        stranger_args = (
            "--target",
            HONEST,
            "--port",
            str(control),
            "--sources",
            ",".join(STRANGERS),
            "--state-dir",
            str(base / "sybils"),
            "--game",
            GAME,
        )
        async with child(*stranger_args, script=STRANGER) as attacker:
            if cores is not None:
                pin(attacker.pid, cores[1])
            assert (await attacker.read())["data_port"] == data_port
            await asyncio.sleep(max(0.0, first_hello + FRESH_PEER_AGE + 1 - time.monotonic()))
            await asyncio.sleep(3.0)  # let the flood reach its steady state
            flooded = [await download(link, manifest, base / f"flood{n}") for n in range(rounds)]
            rss_flooded = status_kib(victim.pid, "VmRSS")
            hwm = status_kib(victim.pid, "VmHWM")
            attacker.stop()
            stats = await attacker.read()
        pinger.cancel()
    quiet_speed, flood_speed = statistics.median(quiet), statistics.median(flooded)
    print(f"game: {manifest.total_bytes / 2**20:.0f} MiB, {rounds} rounds, one data connection")
    if cores is None:
        print("cores: shared by the stranger, the attacked peer and the honest peer")
    else:
        print(f"cores: honest pair {sorted(cores[0])}, stranger {sorted(cores[1])}")
    print(f"unflooded: {quiet_speed:8.1f} MiB/s  (rounds: {_rounds(quiet)})")
    print(f"flooded:   {flood_speed:8.1f} MiB/s  (rounds: {_rounds(flooded)})")
    print(f"ratio:     {flood_speed / quiet_speed:8.2f}")
    print(f"attacked peer RSS before the flood: {rss_before / 1024:.1f} MiB")
    growth = (rss_flooded - rss_before) / 1024
    print(f"attacked peer RSS under the flood:  {rss_flooded / 1024:.1f} MiB (+{growth:.1f} MiB)")
    peak = (hwm - rss_before) / 1024
    print(f"attacked peer peak RSS (VmHWM):     {hwm / 1024:.1f} MiB (+{peak:.1f} MiB)")
    for key in sorted(stats):
        print(f"  stranger {key}: {stats[key]}")


def _rounds(speeds: list[float]) -> str:
    return ", ".join(f"{speed:.0f}" for speed in speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--share-cores", action="store_true", help="do not give the stranger a core of its own"
    )
    parser.add_argument("--victim", nargs=2, metavar=("GAME_DIR", "STATE_DIR"), help="internal")
    args = parser.parse_args()
    if args.victim:
        asyncio.run(run_victim(Path(args.victim[0]), Path(args.victim[1])))
        return
    asyncio.run(bench(args.mib, args.rounds, args.share_cores))


if __name__ == "__main__":
    main()
