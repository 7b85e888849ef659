"""Fan-out benchmark: one seeder, N downloaders on shaped links, measured against the swarm ideal.

Usage (root, iproute2 with ``tc``): ``.venv/bin/python bench/fanout.py [--peers 4]
[--size-mib 200] [--rate-mbit 100] [--late-joiner | --kill] [--at 0.5] [--chunk-mib 16]``

Every peer is a real ``lanspread peer-cli`` process in its own network namespace
on one bridge (``tests/support/netns.py``): ``seed`` holds a generated catalog game
of ``--size-mib`` MiB (the fixture generator's deterministic bytes, in archives of
at most 64 MiB), ``d1`` .. ``dN`` start empty. Every link is shaped to
``--rate-mbit`` in both directions with a ``tbf`` qdisc on the egress of both ends
of its veth: the host's ``eth0`` (what the host uploads) and its port on the
bridge (what it downloads). The peers find each other by mDNS and are also linked
by ``connect``; once each downloader sees every other peer and the seeder's offer
(the seeder has hashed the game), the ``download`` command goes to every
downloader at the same instant and the clock runs until every downloader holds a
verified copy: its ``download-finished`` (the ``version.ini`` sentinel committed
after every chunk was verified) and its own ``local-library-changed`` listing the
game Ready. The copies are then checked byte for byte (SHA-256) against the
seeder's files, outside the timed part.

Printed: that time; the seeder-only (client-server) time ``N x size / rate``; the
swarming ideal ``max(size / rate, N x size / ((N + 1) x rate))`` (every peer's
download link, and the whole swarm's upload capacity); ideal / measured; the share
of the bytes each peer served (the ``bytes_served`` upload counter of its status
reply); per peer the CPU time it used meanwhile (utime + stime from ``/proc``) and
what its link carried each way (the bridge port's byte counters); and how busy
the whole machine was, other people's work included.

``--chunk-mib``: every peer hashes at this chunk size instead of the one the
game's size calls for (``core.manifest.chunk_size_for``): to compare chunk sizes.

``--late-joiner``: one of the N downloaders gets its ``download`` command only when
the others are ``--at`` of the way (the mean of what their links carried over the
game's size); its own time is printed against its own ideal, ``size / rate``.
``--kill``: one downloader is SIGKILLed when the others are ``--at`` of the way; the
run is done twice, without and with the kill, and the others' finish times are
compared.

The rate should leave the machine's cores idle enough that the links, not the CPU,
bound the run; the report gives the peers' CPU use and what a swarm at the ideal
would need at the same cost per byte.
"""

# Waits take their own timeout (ASYNC109): failure messages name it and what was awaited.
# ruff: noqa: ASYNC109

from __future__ import annotations

import argparse
import asyncio
import enum
import functools
import hashlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lanspread.core.manifest import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, chunk_size_for
from lanspread.seeding.manifests import ManifestCache

# The namespace harness and the game generator live with the tests; make the
# checkout importable when run as ``.venv/bin/python bench/fanout.py``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.fixtures import VERSION_FILE, FixtureGame, peer_cli_argv, write_catalog
from tests.support.jsonl_process import Event, JsonlProcess
from tests.support.netns import Host, Network, open_proc_net_in
from tests.support.platforms import is_root, try_lock_exclusive

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
GAME = "fanout"
VERSION = "1.0"
SEEDER = "seed"
DEFAULT_PEERS = 4
# Each downloader is a Python process of ~60 MiB and a namespace; 32 is far more
# than two cores can drive at a useful rate.
MAX_PEERS = 32
DEFAULT_SIZE_MIB = 200
# Archives are generated in memory one at a time: 64 MiB bounds what that holds.
ARCHIVE_MAX_BYTES = 64 * MiB
DEFAULT_RATE_MBIT = 100.0
# Below 1 Mbit/s a 200 MiB game takes half an hour per copy; above 10 Gbit/s a
# veth on two cores is the limit, not the shaping.
MIN_RATE_MBIT = 1.0
MAX_RATE_MBIT = 10_000.0
DEFAULT_AT = 0.5
# A tbf bucket must hold at least one full-size (GSO) packet, or tbf drops it
# (the same figure the download scenarios throttle with).
TBF_BURST = "256kb"
# The queue behind the bucket: far above the veth's round trip, so TCP keeps the
# link busy, and short enough that control traffic (pings, handshakes) waits little.
TBF_LATENCY = "50ms"
# What a full TCP segment carries over what it costs on a veth: MSS 1448 (with
# timestamps) out of 1448 + 32 (TCP) + 20 (IP) + 14 (Ethernet) bytes. The qdisc
# counts whole frames, so no transfer of payload reaches more of the rate.
PAYLOAD_PER_WIRE_BYTE = 1448 / 1514
# A start is an interpreter start, an identity load and a first scan; N + 1 at once
# on a loaded 2-core machine take seconds.
START_TIMEOUT = 60.0
# Hashing the seeder's game (BLAKE3, a few hundred MiB/s per core) and mDNS plus
# handshakes among up to 33 peers.
HASH_TIMEOUT = 300.0
DISCOVERY_TIMEOUT = 60.0
# A run may take this many times its seeder-only time (plus the slack below)
# before it counts as stuck: today's code is close to 1x.
RUN_TIMEOUT_FACTOR = 3.0
RUN_TIMEOUT_SLACK = 120.0
# How often the links' counters are read for --at: one small /proc read each time,
# and a 200 MiB copy at 100 Mbit/s moves 0.3% in that while.
PROGRESS_POLL = 0.05
# How often the seeder's manifest cache and the peers' address books are looked at.
SETUP_POLL = 0.1
# How much of an ``ip``/``tc`` failure's output a message quotes.
OUTPUT_TAIL_CHARS = 2000
# Work folders are named so and hold an owner lock, which proves a leftover one ours.
WORKDIR_PREFIX = "lanspread-fanout-"
OWNER_LOCK = "owner.lock"
DOWNLOAD_ENDINGS = frozenset(
    {"download-finished", "download-failed", "download-cancelled", "download-all-peers-gone"}
)


class Scenario(enum.Enum):
    PLAIN = "plain"
    LATE_JOINER = "late-joiner"
    KILL = "kill"


@dataclass(frozen=True)
class Config:
    """What one invocation measures."""

    peers: int
    size_bytes: int
    rate_bps: float
    scenario: Scenario
    at: float
    workdir: Path
    verify: bool
    chunk_size: int | None = None
    """Pinned on every peer; ``None``: the one the game's size calls for."""

    @property
    def downloaders(self) -> list[str]:
        return [f"d{index}" for index in range(1, self.peers + 1)]

    @property
    def odd_one(self) -> str:
        """The downloader that joins late or is killed: the last one."""
        return self.downloaders[-1]


# --- pure parts: ideals, parsing, /proc and tc read-outs -----------------------------------


def transfer_seconds(size_bytes: int, rate_bps: float) -> float:
    """How long ``size_bytes`` take at ``rate_bps`` bits per second."""
    return size_bytes * 8 / rate_bps


def seeder_only_seconds(size_bytes: int, downloaders: int, rate_bps: float) -> float:
    """Client-server: the seeder's upload carries every copy, ``N x size / rate``."""
    return transfer_seconds(downloaders * size_bytes, rate_bps)


def swarm_ideal_seconds(size_bytes: int, downloaders: int, rate_bps: float) -> float:
    """The swarming bound ``max(size / rate, N x size / ((N + 1) x rate))``.

    Each downloader's own link must carry the whole game; all N copies must cross
    the N + 1 uploads together.
    """
    return max(
        transfer_seconds(size_bytes, rate_bps),
        transfer_seconds(downloaders * size_bytes, (downloaders + 1) * rate_bps),
    )


def archive_sizes(size_bytes: int, largest: int = ARCHIVE_MAX_BYTES) -> tuple[int, ...]:
    """Sizes of the archives that make up a game of ``size_bytes``: as even as possible,
    none above ``largest``."""
    if size_bytes < 1:
        raise ValueError(f"a game holds at least one byte, not {size_bytes}")
    count = -(-size_bytes // largest)
    base, extra = divmod(size_bytes, count)
    return tuple(base + 1 if index < extra else base for index in range(count))


def fanout_game(size_bytes: int) -> FixtureGame:
    """The benchmark's catalog game: fixture archives of ``size_bytes`` in all."""
    archives = tuple(
        (f"part{index:02d}.eti", size) for index, size in enumerate(archive_sizes(size_bytes))
    )
    return FixtureGame(GAME, VERSION, archives)


def cpu_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of ``/proc/<pid>/stat``."""
    # The command name in parentheses may hold spaces; the fields after it start at
    # field 3 (state), so utime and stime (fields 14 and 15) are at 11 and 12.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


@dataclass(frozen=True)
class MachineTicks:
    """Clock ticks of all CPUs together, from ``/proc/stat``."""

    busy: int
    """Everything but idle and iowait; steal (time the hypervisor gave to others)
    counts as busy, as it is a core this machine did not get."""
    softirq: int
    """The kernel's deferred packet work (shaping, veths, TCP), whoever's packets."""
    total: int

    def __sub__(self, earlier: MachineTicks) -> MachineTicks:
        return MachineTicks(
            self.busy - earlier.busy, self.softirq - earlier.softirq, self.total - earlier.total
        )


def machine_ticks(stat: str) -> MachineTicks:
    """The machine's CPU ticks from the text of ``/proc/stat``."""
    first = stat.splitlines()[0].split()
    if first[0] != "cpu":
        raise ValueError(f"/proc/stat starts with {first[0]!r}, not 'cpu'")
    # user nice system idle iowait irq softirq steal; guest time is in user already.
    ticks = [int(value) for value in first[1:9]]
    total = sum(ticks)
    return MachineTicks(busy=total - ticks[3] - ticks[4], softirq=ticks[6], total=total)


def interface_bytes(net_dev: str) -> dict[str, tuple[int, int]]:
    """(received, transmitted) bytes per interface from the text of ``/proc/net/dev``."""
    found = {}
    for line in net_dev.splitlines()[2:]:  # two header lines
        name, _, figures = line.partition(":")
        fields = figures.split()
        # Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        found[name.strip()] = (int(fields[0]), int(fields[8]))
    return found


def tbf_argv(namespace: str, device: str, rate_bps: float) -> list[str]:
    """``tc`` argv shaping what ``device`` in ``namespace`` sends to ``rate_bps``."""
    return [
        "tc",
        "-netns",
        namespace,
        "qdisc",
        "replace",
        "dev",
        device,
        "root",
        "tbf",
        "rate",
        f"{round(rate_bps)}bit",
        "burst",
        TBF_BURST,
        "latency",
        TBF_LATENCY,
    ]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (exclusive)")
    return value


def parse_config(argv: Sequence[str] | None = None) -> Config:
    """The configuration from the command line; bad values exit with a usage error."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--peers", type=int, default=DEFAULT_PEERS, help="downloaders (N)")
    parser.add_argument("--size-mib", type=int, default=DEFAULT_SIZE_MIB, help="game size")
    parser.add_argument(
        "--rate-mbit", type=float, default=DEFAULT_RATE_MBIT, help="every link, each way"
    )
    odd = parser.add_mutually_exclusive_group()
    odd.add_argument(
        "--late-joiner",
        action="store_true",
        help="the last downloader starts when the others are --at of the way",
    )
    odd.add_argument(
        "--kill",
        action="store_true",
        help="also run once with the last downloader killed when the others are --at of the way",
    )
    parser.add_argument("--at", type=_fraction, default=DEFAULT_AT, help="0.5: halfway")
    parser.add_argument("--workdir", default="/var/tmp", help="not tmpfs: the copies are real")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the SHA-256 check of every copy"
    )
    parser.add_argument(
        "--chunk-mib", type=int, help="pin every peer's chunk size (default: by the game's size)"
    )
    args = parser.parse_args(argv)
    chunk_size = None if args.chunk_mib is None else args.chunk_mib * MiB
    if chunk_size is not None and not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        parser.error(
            f"--chunk-mib must be {MIN_CHUNK_SIZE // MiB} to {MAX_CHUNK_SIZE // MiB},"
            f" not {args.chunk_mib}"
        )
    if not 1 <= args.peers <= MAX_PEERS:
        parser.error(f"--peers must be 1 to {MAX_PEERS}, not {args.peers}")
    if (args.late_joiner or args.kill) and args.peers < 2:
        parser.error("--late-joiner and --kill need at least 2 downloaders")
    if args.size_mib < 1:
        parser.error(f"--size-mib must be at least 1, not {args.size_mib}")
    if not MIN_RATE_MBIT <= args.rate_mbit <= MAX_RATE_MBIT:
        parser.error(
            f"--rate-mbit must be {MIN_RATE_MBIT:g} to {MAX_RATE_MBIT:g}, not {args.rate_mbit:g}"
        )
    scenario = (
        Scenario.LATE_JOINER if args.late_joiner else Scenario.KILL if args.kill else Scenario.PLAIN
    )
    return Config(
        peers=args.peers,
        size_bytes=args.size_mib * MiB,
        rate_bps=args.rate_mbit * 1e6,
        scenario=scenario,
        at=args.at,
        workdir=Path(args.workdir),
        verify=not args.no_verify,
        chunk_size=chunk_size,
    )


# --- the machine: /proc and tc ---------------------------------------------------------------


def clock_tick() -> int:
    """Clock ticks per second, the unit of ``/proc`` CPU times."""
    if sys.platform == "win32":
        tick = 1  # never used: there is no /proc to read CPU times from
    else:
        tick = os.sysconf("SC_CLK_TCK")
    return tick


def process_cpu_seconds(pid: int) -> float:
    return cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / clock_tick()


def machine_now() -> MachineTicks:
    return machine_ticks(Path("/proc/stat").read_text())


async def run_tool(argv: Sequence[str]) -> str:
    """Run ``ip`` or ``tc`` to completion; fail with its output."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited with {process.returncode}: "
            f"{(out + err).decode(errors='replace')[-OUTPUT_TAIL_CHARS:]}"
        )
    return out.decode()


async def shape(net: Network, rate_bps: float) -> None:
    """A tbf on the egress of both ends of every veth: the host's ``eth0`` (its upload)
    and its port on the bridge (its download)."""
    ends = [(host.namespace, "eth0") for host in net.hosts]
    ends += [(net.switch_namespace, host.switch_port) for host in net.hosts]
    await asyncio.gather(*(run_tool(tbf_argv(ns, dev, rate_bps)) for ns, dev in ends))


class Links:
    """What each host's link carried, from the switch's side: what the bridge port
    received is the host's upload, what it sent the host's download.

    A veth passes a TCP send of up to 64 KiB as one packet and counts its headers once,
    so these counters stay within a fraction of a percent of the payload (the qdiscs,
    which count every segment's headers, show ~4.5% more).
    """

    def __init__(self, net: Network) -> None:
        self._ports = {host.name: host.switch_port for host in net.hosts}
        self._file = open_proc_net_in(net.switch_namespace, "dev")
        self._zero = self._read()

    def _read(self) -> dict[str, tuple[int, int]]:
        self._file.seek(0)
        counters = interface_bytes(self._file.read().decode())
        return {name: counters[port] for name, port in self._ports.items()}

    def reset(self) -> None:
        self._zero = self._read()

    def carried(self) -> dict[str, tuple[int, int]]:
        """(uploaded, downloaded) bytes per host since :meth:`reset`."""
        now = self._read()
        return {
            name: (up - self._zero[name][0], down - self._zero[name][1])
            for name, (up, down) in now.items()
        }

    def close(self) -> None:
        self._file.close()


# --- peers -------------------------------------------------------------------------------------


@dataclass
class Peer:
    """One ``lanspread peer-cli`` in its namespace, driven through JSON Lines."""

    name: str
    host: Host
    process: JsonlProcess
    game_dir: Path
    state_dir: Path
    peer_id: str = ""
    port: int = 0

    @property
    def addr(self) -> str:
        return f"{self.host.address}:{self.port}"

    async def started(self) -> None:
        started = await self.process.wait_for("cli-started", START_TIMEOUT)
        self.peer_id = started["peer_id"]
        self.port = int(started["listen_addr"].rsplit(":", 1)[1])
        await self.process.wait_for("local-ready", START_TIMEOUT)

    async def request(self, cmd: str, **fields: str) -> Any:
        """A command's reply data (a failure raises with the peer's recent events and log)."""
        return (await self.process.request({"cmd": cmd, **fields}))["data"]

    def offered_by(self, source: Peer) -> bool:
        """Whether the newest library ``source`` sent here lists the game Ready."""
        for event in reversed(self.process.events):
            if event["event"] == "remote-games-changed" and event["peer_id"] == source.peer_id:
                return any(_ready(game) for game in event["games"])
        return False


def _ready(game: dict[str, Any]) -> bool:
    return bool(
        game["id"] == GAME and game["version"] == VERSION and game["availability"] == "Ready"
    )


def _ending(event: Event) -> bool:
    return event["event"] in DOWNLOAD_ENDINGS and event.get("game") == GAME


def _ready_here(event: Event) -> bool:
    return event["event"] == "local-library-changed" and any(
        _ready(game) for game in event["games"]
    )


async def spawn(
    net: Network, host: Host, folder: Path, catalog: Path, chunk_size: int | None
) -> Peer:
    game_dir, state_dir = folder / "games", folder / "state"
    game_dir.mkdir(parents=True, exist_ok=True)
    argv = peer_cli_argv(
        name=host.name,
        game_dir=game_dir,
        state_dir=state_dir,
        catalog=catalog,
        listen=f"{host.address}:0",
        mdns_interfaces=[host.address],
        install_policy="manual",  # installing is not part of the fan-out
        chunk_size=chunk_size,
    )
    process = await net.spawn(host, argv, name=host.name)
    return Peer(host.name, host, process, game_dir, state_dir)


async def poll(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    """Ask ``check`` every :data:`SETUP_POLL` until it holds (state with no event)."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(SETUP_POLL)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout:g}s waiting until {what}") from None


async def ready_to_fetch(seeder: Peer, downloaders: Sequence[Peer], chunk_size: int | None) -> None:
    """The seeder has hashed the game; every downloader knows every peer and sees the offer."""

    async def hashed() -> bool:
        cache = ManifestCache(seeder.state_dir, chunk_size=chunk_size)
        found = cache.lookup(seeder.game_dir, GAME)
        return found is not None and found.version == VERSION

    await poll(hashed, timeout=HASH_TIMEOUT, what="the seeder has hashed the game")
    everyone = [seeder, *downloaders]
    for index, peer in enumerate(downloaders):
        for other in [seeder, *downloaders[:index]]:
            await peer.request("connect", addr=other.addr)

    async def meshed(peer: Peer) -> bool:
        known = {view["peer_id"] for view in (await peer.request("list-peers"))["peers"]}
        return known >= {other.peer_id for other in everyone if other is not peer}

    for peer in downloaders:

        async def offered(peer: Peer = peer) -> bool:
            return peer.offered_by(seeder)

        await poll(
            offered, timeout=DISCOVERY_TIMEOUT, what=f"{peer.name} sees the seeder offer {GAME}"
        )
        await poll(
            functools.partial(meshed, peer),
            timeout=DISCOVERY_TIMEOUT,
            what=f"{peer.name} knows every other peer",
        )


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Finish:
    began: float
    """Seconds from the common start to this downloader's ``download`` command."""
    finished: float
    """Seconds from the common start to its verified copy (finished and Ready)."""

    @property
    def took(self) -> float:
        return self.finished - self.began


@dataclass
class PeerFigures:
    cpu_seconds: float
    served_bytes: int
    link_up: int = 0
    link_down: int = 0


@dataclass
class RunResult:
    label: str
    total_bytes: int
    """What one copy is, as the downloaders' ``download-begin`` says (sentinel included)."""
    finishes: dict[str, Finish]
    peers: dict[str, PeerFigures]
    window: float
    """Seconds from the common start to the last verified copy."""
    machine: MachineTicks
    """The whole machine's CPU ticks over the window."""
    cores: int
    odd_moment: float | None = None
    """Seconds from the start to the late join or the kill."""
    odd_progress: float | None = None
    """The others' mean progress at that moment."""
    killed: str | None = None
    notes: list[str] = field(default_factory=list)

    def done(self, names: Sequence[str]) -> float:
        """When the last of ``names`` held its copy."""
        return max(self.finishes[name].finished for name in names)


class Clock:
    def __init__(self) -> None:
        self.zero = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.zero


async def verified_copy(peer: Peer, clock: Clock, began: float, timeout: float) -> Finish:
    """Wait for ``peer``'s download to end finished and its library to list the game Ready."""
    ending = await peer.process.wait_for(_ending, timeout, what=f"the end of {GAME}")
    if ending["event"] != "download-finished":
        raise RuntimeError(peer.process.report(f"the download ended with {ending}"))
    await peer.process.wait_for(_ready_here, timeout, what=f"{GAME} listed Ready")
    return Finish(began, clock.now())


async def others_reach(
    links: Links, names: Sequence[str], copy_bytes: int, fraction: float
) -> float:
    """Wait until the downloaders ``names`` are ``fraction`` of the way on average; return
    the mean then. The way is the bytes their links carried over the size of a copy:
    finer than the download's own progress, which moves a chunk at a time."""
    while True:
        carried = links.carried()
        mean = statistics.fmean(min(1.0, carried[name][1] / copy_bytes) for name in names)
        if mean >= fraction:
            return mean
        await asyncio.sleep(PROGRESS_POLL)


async def run_swarm(
    config: Config, scenario: Scenario, work: Path, seeder_folder: Path, label: str
) -> RunResult:
    """One seeder and N downloaders on a fresh network; the downloads timed as one."""
    run_dir = work / label
    names = [SEEDER, *config.downloaders]
    try:
        async with Network(names, log_dir=run_dir / "logs") as net:
            await shape(net, config.rate_bps)
            catalog = work / "catalog.toml"
            peers = [
                await spawn(
                    net,
                    net.host(name),
                    seeder_folder if name == SEEDER else run_dir / name,
                    catalog,
                    config.chunk_size,
                )
                for name in names
            ]
            await asyncio.gather(*(peer.started() for peer in peers))
            await ready_to_fetch(peers[0], peers[1:], config.chunk_size)
            links = Links(net)
            try:
                return await Run(config, scenario, net, links, peers, label).timed()
            finally:
                links.close()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


class Run:
    """The timed part of one run: from the download commands to the last verified copy."""

    def __init__(
        self,
        config: Config,
        scenario: Scenario,
        net: Network,
        links: Links,
        peers: list[Peer],
        label: str,
    ) -> None:
        self.config = config
        self.scenario = scenario
        self.net = net
        self.links = links
        self.everyone = peers
        self.seeder, self.downloaders = peers[0], peers[1:]
        self.odd = next(peer for peer in self.downloaders if peer.name == config.odd_one)
        self.others = [peer for peer in self.downloaders if peer is not self.odd]
        self.timeout = (
            seeder_only_seconds(config.size_bytes, config.peers, config.rate_bps)
            * RUN_TIMEOUT_FACTOR
            + RUN_TIMEOUT_SLACK
        )
        self.clock = Clock()
        self.cpu_before: dict[str, float] = {}
        self.figures: dict[str, PeerFigures] = {}
        self.result = RunResult(
            label, 0, {}, self.figures, 0.0, MachineTicks(0, 0, 0), os.cpu_count() or 1
        )
        self.watchers: dict[str, asyncio.Future[Finish]] = {}

    async def timed(self) -> RunResult:
        # The late joiner starts apart; the victim of a kill starts with the others and
        # is in the swarm until it dies, but its copy is never waited for.
        late = self.scenario is Scenario.LATE_JOINER
        together = self.others if late else self.downloaders
        watched = self.downloaders if self.scenario is Scenario.PLAIN else self.others
        self.cpu_before = {peer.name: self.cpu(peer) for peer in self.everyone}
        machine_before = machine_now()
        self.links.reset()
        self.clock = Clock()
        await asyncio.gather(*(peer.request("download", game=GAME) for peer in together))
        for peer in watched:
            self.watch(peer, 0.0)
        try:
            async with asyncio.timeout(self.timeout):
                if self.scenario is not Scenario.PLAIN:
                    await self.odd_moment()
                for name, watcher in self.watchers.items():
                    self.result.finishes[name] = await watcher
        finally:
            for watcher in self.watchers.values():
                watcher.cancel()
            await asyncio.gather(*self.watchers.values(), return_exceptions=True)
        await self.account(machine_before)
        return self.result

    def cpu(self, peer: Peer) -> float:
        return process_cpu_seconds(peer.process.pid)

    def watch(self, peer: Peer, began: float) -> None:
        self.watchers[peer.name] = asyncio.ensure_future(
            verified_copy(peer, self.clock, began, self.timeout)
        )

    async def odd_moment(self) -> None:
        """Once the others are ``--at`` of the way: start the late joiner or kill the victim."""
        self.result.odd_progress = await others_reach(
            self.links, [peer.name for peer in self.others], self.config.size_bytes, self.config.at
        )
        self.result.odd_moment = self.clock.now()
        odd = self.odd
        if self.scenario is Scenario.LATE_JOINER:
            began = self.clock.now()
            await odd.request("download", game=GAME)
            self.watch(odd, began)
            return
        status = await odd.request("status")
        self.figures[odd.name] = PeerFigures(
            self.cpu(odd) - self.cpu_before[odd.name], status["bytes_served"]
        )
        await self.net.kill(odd.process)
        self.result.killed = odd.name

    async def account(self, machine_before: MachineTicks) -> None:
        """CPU, link and upload figures of the window just ended; then the copies' check."""
        result = self.result
        result.window = self.clock.now()
        result.machine = machine_now() - machine_before
        carried = self.links.carried()
        for peer in self.everyone:
            if peer.name not in self.figures:
                self.figures[peer.name] = PeerFigures(
                    self.cpu(peer) - self.cpu_before[peer.name], 0
                )
            self.figures[peer.name].link_up, self.figures[peer.name].link_down = carried[peer.name]
        begin = next(
            event
            for event in self.downloaders[0].process.events
            if event["event"] == "download-begin" and event.get("game") == GAME
        )
        result.total_bytes = begin["total_bytes"]
        if self.config.verify:
            source = self.seeder.game_dir / GAME
            await asyncio.gather(
                *(
                    asyncio.to_thread(check_copy, source, peer.game_dir / GAME)
                    for peer in self.downloaders
                    if peer.name in result.finishes
                )
            )
        for peer in self.everyone:
            if peer.name != result.killed:
                status = await peer.request("status")
                self.figures[peer.name].served_bytes = status["bytes_served"]
        result.peers = {peer.name: self.figures[peer.name] for peer in self.everyone}


def check_copy(source: Path, copy: Path) -> None:
    """Every payload file of ``source`` is in ``copy`` with the same SHA-256."""
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        with open(path, "rb") as want, open(copy / path.name, "rb") as got:
            if hashlib.file_digest(want, "sha256").digest() != (
                hashlib.file_digest(got, "sha256").digest()
            ):
                raise RuntimeError(f"{copy / path.name} differs from the seeder's {path}")


# --- the game -----------------------------------------------------------------------------------


def write_game(game_dir: Path, game: FixtureGame) -> Path:
    """``game``'s root in ``game_dir``, one archive in memory at a time.

    A one-archive game has that archive's bytes (they depend only on the game id,
    version and archive name), so the fixture generator makes each file alone.
    """
    root = game_dir / game.id
    root.mkdir(parents=True, exist_ok=True)
    for name, size in game.archives:
        files = replace(game, archives=((name, size),)).files()
        (root / name).write_bytes(files[name])
    (root / VERSION_FILE).write_text(game.version)
    return root


# --- report -------------------------------------------------------------------------------------


def mib(count: float) -> str:
    return f"{count / MiB:.1f}"


def report(config: Config, result: RunResult, names: Sequence[str], who: str) -> None:
    """The figures of one run; ``names`` are the downloaders whose copies are timed (and
    whose count N the ideals use), ``who`` says which they are."""
    size = result.total_bytes
    n = len(names)
    rate = config.rate_bps
    measured = result.done(names)
    client_server = seeder_only_seconds(size, n, rate)
    ideal = swarm_ideal_seconds(size, n, rate)
    print(f"\n[{result.label}] {who} hold verified copies (finished, Ready): {measured:.1f} s")
    print(f"  seeder-only (client-server) N x size / rate:                {client_server:7.1f} s")
    print(f"  swarming ideal max(size/rate, N x size / ((N+1) x rate)):    {ideal:7.1f} s")
    print(
        f"  ideal / measured: {ideal / measured:.3f}   (client-server / measured:"
        f" {client_server / measured:.3f}; headers cap either at {PAYLOAD_PER_WIRE_BYTE:.3f})"
    )
    served = {name: figures.served_bytes for name, figures in result.peers.items()}
    all_served = sum(served.values())
    if all_served:
        shares = ", ".join(f"{name} {count / all_served:.1%}" for name, count in served.items())
        print(f"  bytes served ({mib(all_served)} MiB in all, upload counters): {shares}")
    print(
        "  peer   began s  done s  took s   served MiB  link up MiB  link down MiB  CPU s"
        "  CPU % of window"
    )
    for name, figures in result.peers.items():
        finish = result.finishes.get(name)
        began = f"{finish.began:7.1f}" if finish else "      -"
        done = (
            f"{finish.finished:7.1f}"
            if finish
            else ("killed " if name == result.killed else "      -")
        )
        took = f"{finish.took:7.1f}" if finish else "      -"
        print(
            f"  {name:5s} {began} {done} {took}  {mib(figures.served_bytes):>11s}"
            f"  {mib(figures.link_up):>11s}  {mib(figures.link_down):>13s}"
            f"  {figures.cpu_seconds:5.1f}  {figures.cpu_seconds / result.window:15.1%}"
        )
    cpu = sum(figures.cpu_seconds for figures in result.peers.values())
    used = cpu / (result.window * result.cores)
    machine = result.machine
    busy = machine.busy / machine.total if machine.total else 0.0
    softirq = machine.softirq / machine.total if machine.total else 0.0
    print(
        f"  CPU: the peers used {cpu:.1f} s over {result.window:.1f} s, {used:.1%} of"
        f" {result.cores} cores; the whole machine was {busy:.1%} busy (other people's work"
        f" included), {softirq:.1%} in softirq (the kernel's packet work, everyone's)"
    )
    moved = sum(figures.link_down for name, figures in result.peers.items() if name != SEEDER)
    if moved:
        per_gib = cpu / (moved / GiB)
        at_ideal = per_gib * (n * size / GiB) / ideal / result.cores
        softirq_per_gib = machine.softirq / clock_tick() / (moved / GiB)
        print(
            f"  peers' CPU per GiB delivered: {per_gib:.1f} s (softirq meanwhile, everyone's:"
            f" {softirq_per_gib:.1f} s per GiB); a swarm at the ideal would need"
            f" {at_ideal:.0%} of the {result.cores} cores for the peers alone at that cost"
        )


def claim_workdir(parent: Path) -> tuple[Path, int]:
    """A new work folder under ``parent`` and the open, locked descriptor of its owner
    lock: while this process lives nobody else can take that lock."""
    work = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=parent))
    fd = os.open(work / OWNER_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    if not try_lock_exclusive(fd):
        os.close(fd)
        raise RuntimeError(f"{work / OWNER_LOCK} is locked by another process")
    return work, fd


def sweep_stale_workdirs(parent: Path) -> list[Path]:
    """Delete the work folders of benchmark runs that died without cleaning up (SIGKILL,
    a power cut); return them. A folder counts only when its name has the benchmark's
    prefix and it holds an owner lock that nobody holds any more: a live run's folder,
    or anything else, is left alone."""
    removed = []
    for folder in sorted(parent.glob(f"{WORKDIR_PREFIX}*")):
        lock = folder / OWNER_LOCK
        if folder.is_symlink() or not lock.is_file():
            continue
        fd = os.open(lock, os.O_RDWR)
        try:
            if not try_lock_exclusive(fd):
                continue
            shutil.rmtree(folder)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


async def bench(config: Config) -> None:
    for folder in sweep_stale_workdirs(config.workdir):
        print(f"removed {folder}, left by a benchmark run that was killed")
    work, lock = claim_workdir(config.workdir)
    try:
        write_catalog(work / "catalog.toml", [GAME])
        seeder_folder = work / SEEDER
        game = fanout_game(config.size_bytes)
        await asyncio.to_thread(write_game, seeder_folder / "games", game)
        parts = len(game.archives)
        chunk = config.chunk_size or chunk_size_for(game.size_bytes)
        print(
            f"fan-out: 1 seeder -> {config.peers} downloaders, game {mib(game.size_bytes)} MiB"
            f" in {parts} archive{'s' if parts > 1 else ''}, every link"
            f" {config.rate_bps / 1e6:g} Mbit/s each way (tbf), scenario {config.scenario.value},"
            f" chunks of {mib(chunk)} MiB{' (pinned)' if config.chunk_size else ''}"
        )
        if config.scenario is Scenario.KILL:
            baseline = await run_swarm(config, Scenario.PLAIN, work, seeder_folder, "no kill")
            report(config, baseline, config.downloaders, f"all {config.peers} downloaders")
            killed = await run_swarm(config, Scenario.KILL, work, seeder_folder, "kill")
            survivors = [name for name in config.downloaders if name != config.odd_one]
            report(config, killed, survivors, f"the {len(survivors)} survivors")
            assert killed.odd_moment is not None
            assert killed.odd_progress is not None
            without, with_kill = baseline.done(survivors), killed.done(survivors)
            print(
                f"\n{config.odd_one} killed at {killed.odd_moment:.1f} s (the others"
                f" {killed.odd_progress:.0%} of the way): the other {len(survivors)} held their"
                f" copies after {with_kill:.1f} s, against {without:.1f} s without the kill"
                f" ({with_kill / without:.2f}x)"
            )
        elif config.scenario is Scenario.LATE_JOINER:
            result = await run_swarm(config, Scenario.LATE_JOINER, work, seeder_folder, "late")
            early = [name for name in config.downloaders if name != config.odd_one]
            report(config, result, early, f"the {len(early)} that started together")
            late = result.finishes[config.odd_one]
            own = transfer_seconds(result.total_bytes, config.rate_bps)
            assert result.odd_progress is not None
            print(
                f"\nlate joiner {config.odd_one}: started at {late.began:.1f} s (the others"
                f" {result.odd_progress:.0%} of the way), took {late.took:.1f} s against its own"
                f" ideal size / rate = {own:.1f} s (ideal / measured {own / late.took:.3f})"
            )
        else:
            result = await run_swarm(config, Scenario.PLAIN, work, seeder_folder, "plain")
            report(config, result, config.downloaders, f"all {config.peers} downloaders")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(lock)


async def main(config: Config) -> None:
    """The bench as a task that SIGTERM cancels as Ctrl-C does, so every
    namespace, qdisc, peer and folder goes on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    await bench(config)


def check_machine(platform: str) -> None:
    """Exit with the reason unless this machine can run the benchmark.

    ``platform`` is ``sys.platform`` passed in, so the type checker still proves the
    rest of the script for every platform rather than for Linux alone.
    """
    if not platform.startswith("linux"):
        raise SystemExit("the fan-out benchmark runs peers in Linux network namespaces")
    if not is_root():
        raise SystemExit("the fan-out benchmark makes network namespaces: run it as root")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"the fan-out benchmark needs {tool} (Debian package iproute2)")


def run_to_the_end(benchmark: Coroutine[Any, Any, None]) -> None:
    """Run ``benchmark``; an interrupt exits with a word that its cleanup ran."""
    try:
        asyncio.run(benchmark)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise SystemExit(
            "interrupted: the namespaces, peers and files of the run are removed"
        ) from None


if __name__ == "__main__":
    parsed = parse_config()
    check_machine(sys.platform)
    run_to_the_end(main(parsed))
