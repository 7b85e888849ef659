"""The peer network end to end: real ``lanspread peer-cli`` processes, one per namespace.

Every peer runs in its own network namespace on one bridge (``tests.support.netns``)
with mDNS on every interface, exactly as on a LAN, and is driven through JSON Lines.
Scenario ids (S1, S2, ...) are listed in ``SCENARIOS.md`` at the repository root.

Timing: discovery latencies are measured from the moment the awaited peer reported
``cli-started`` (listener bound, first scan done) and printed (run with ``-s``).
A wait returns as soon as its event arrives because every wait is started before
the event can happen.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lanspread.net.discovery import instance_name
from lanspread.net.wire import PROTOCOL_VERSION
from lanspread.platform import fileio
from tests.support.fixtures import (
    FIXTURE_CATALOG_IDS,
    FixtureGame,
    add_game,
    build_library,
    peer_cli_argv,
    remove_game,
    set_version,
    summaries,
    write_catalog,
)
from tests.support.foreign_peer import FOREIGN_PROTOCOL_VERSION
from tests.support.jsonl_process import CommandFailed, Event, JsonlProcess
from tests.support.netns import Host, Network, NetworkFactory
from tests.support.platforms import make_fifo
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
FOREIGN_PEER = REPO_ROOT / "tests" / "support" / "foreign_peer.py"

# The peer CLI's liveness settings (RuntimeOptions defaults; the CLI has no flags).
PING_INTERVAL = 2.0
PEER_TIMEOUT = 10.0
# Starting a peer is a Python start-up plus a scan; on a loaded 2-core CI
# runner five of them at once take a few seconds.
START_TIMEOUT = 30.0
# mDNS probing (~1.5 s) plus a handshake; generous so a slow runner fails on
# the latency assertions that follow, not on an opaque timeout.
DISCOVERY_TIMEOUT = 20.0
# The brief's bound for two peers: both see each other within 3 s of the last start.
TWO_PEER_DISCOVERY_BOUND = 3.0
# A goodbye is one request over an open link: the other side drops the peer at once.
GOODBYE_BOUND = 2.0
# A silent peer is dropped at the first liveness tick after PEER_TIMEOUT
# without an answer; the last answer came at most one ping interval before
# the peer went silent. One more second covers a busy runner.
SILENT_PEER_BOUND = PEER_TIMEOUT + PING_INTERVAL + 1.0
EXIT_TIMEOUT = 10.0
DEFAULT_GAMES = {
    "h1": (FixtureGame("quake3"), FixtureGame("cs16", "2.1")),
    "h2": (FixtureGame("openttd", "14.1"),),
    "h3": (FixtureGame("aoe2", "2.0"), FixtureGame("quake3")),
    "h4": (FixtureGame("factorio", "1.1.109"),),
    "h5": (FixtureGame("teeworlds", "0.7.5"), FixtureGame("cs16", "2.1")),
}


@dataclass
class Peer:
    """One peer-cli process in one namespace, with its folders and what it announced."""

    name: str
    host: Host
    process: JsonlProcess
    game_dir: Path
    state_dir: Path
    games: tuple[FixtureGame, ...]
    address: str
    """The host address others reach it at (changes when a test moves it)."""
    peer_id: str = ""
    port: int = 0
    started_at: float = 0.0
    """``time.monotonic()`` when its ``cli-started`` arrived."""

    @property
    def addr(self) -> str:
        """The address others dial: the host's bridge address and the bound port."""
        return f"{self.address}:{self.port}"

    async def started(self) -> None:
        """Wait for ``cli-started`` and ``local-ready``; record id, port and start time."""
        started = await self.process.wait_for("cli-started", START_TIMEOUT)
        self.started_at = time.monotonic()
        self.peer_id = started["peer_id"]
        self.port = int(started["listen_addr"].rsplit(":", 1)[1])
        ready = await self.process.wait_for("local-ready", START_TIMEOUT)
        assert ready["peer_id"] == self.peer_id
        assert ready["games"] == len(self.games)


class Gate:
    """A FIFO a peer's shell waits on; opening the gates of several peers starts them together.

    The test holds the FIFO open read-write from creation until :meth:`close`, so the
    waiting shell never blocks in ``open`` and a release written before the shell
    reads is kept in the pipe.
    """

    def __init__(self, path: Path) -> None:
        make_fifo(path)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | fileio.O_CLOEXEC)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run only once the gate opens (the shell execs it: same pid)."""
        return ["sh", "-c", 'read -r _ < "$1"; shift; exec "$@"', "gate", str(self.path), *argv]

    def open(self) -> None:
        os.write(self._fd, b"go\n")

    def close(self) -> None:
        """Release the FIFO (only once the peer has read the release)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class Scenario:
    """A network of peers, built and torn down by one test."""

    network: Network
    base: Path
    catalog: Path
    peers: list[Peer] = field(default_factory=list)

    def host(self, name: str) -> Host:
        return self.network.host(name)

    def argv(self, peer: str, host: Host, **options: Any) -> list[str]:
        return peer_cli_argv(
            name=peer,
            game_dir=self.base / peer / "games",
            state_dir=self.base / peer / "state",
            catalog=options.pop("catalog", self.catalog),
            **options,
        )

    async def spawn(
        self,
        host: Host,
        games: Iterable[FixtureGame] | None = None,
        *,
        name: str | None = None,
        strays: Sequence[str] = (),
        gate: Gate | None = None,
        build: bool = True,
        **options: Any,
    ) -> Peer:
        """Build the library (unless ``build`` is False) and start a peer in ``host``.

        With ``gate``, the process waits until the gate opens before Python even starts.
        """
        peer_name = name or host.name
        chosen = tuple(DEFAULT_GAMES.get(host.name, ()) if games is None else games)
        game_dir = self.base / peer_name / "games"
        if build:
            build_library(game_dir, chosen, strays=strays)
        argv = self.argv(peer_name, host, **options)
        if gate is not None:
            argv = gate.wrap(argv)
        process = await self.network.spawn(host, argv, name=peer_name)
        peer = Peer(
            peer_name,
            host,
            process,
            game_dir,
            self.base / peer_name / "state",
            chosen,
            address=host.address,
        )
        self.peers.append(peer)
        return peer

    async def start(
        self, host: Host, games: Iterable[FixtureGame] | None = None, **kw: Any
    ) -> Peer:
        peer = await self.spawn(host, games, **kw)
        await peer.started()
        return peer

    async def start_all(self, hosts: Iterable[Host]) -> list[Peer]:
        """Start a peer on every host at once; return once all are ready."""
        peers = [await self.spawn(host) for host in hosts]
        await asyncio.gather(*(peer.started() for peer in peers))
        return peers


@pytest.fixture
async def scenario_factory(
    network_factory: NetworkFactory, tmp_path: Path, fixture_catalog: Path
) -> Any:
    async def build(hosts: int | Sequence[str]) -> Scenario:
        network = await network_factory(hosts)
        return Scenario(network, tmp_path / "peers", fixture_catalog)

    return build


@pytest.fixture(scope="session")
def fixture_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture catalog file, written once for the whole run."""
    return write_catalog(tmp_path_factory.mktemp("catalog") / "catalog.toml")


def games_of(peer: Peer) -> list[dict[str, object]]:
    """The ``remote-games-changed`` games a peer's library shows on the others."""
    return summaries(peer.games)


def remote_games(subject: Peer, games: list[dict[str, object]]) -> dict[str, Any]:
    return {"event": "remote-games-changed", "peer_id": subject.peer_id, "games": games}


async def timed(awaitable: Awaitable[Event]) -> float:
    """Wait and return ``time.monotonic()`` at the moment the event arrived."""
    await awaitable
    return time.monotonic()


async def wait_for_mesh(
    peers: Sequence[Peer], *, involving: Peer | None = None
) -> dict[tuple[str, str], float]:
    """Every peer sees every other peer's games; returns (observer, subject) -> arrival time.

    With ``involving``, only the views of and on that one peer are awaited.
    """
    pairs = [
        (a, b)
        for a, b in itertools.permutations(peers, 2)
        if involving is None or involving in (a, b)
    ]
    arrivals = await asyncio.gather(
        *(
            timed(a.process.wait_for(remote_games(b, games_of(b)), DISCOVERY_TIMEOUT))
            for a, b in pairs
        )
    )
    return {(a.name, b.name): at for (a, b), at in zip(pairs, arrivals, strict=True)}


async def assert_peer_lists(peers: Sequence[Peer]) -> None:
    """``list-peers`` on every peer names exactly the others, at their addresses, with games."""
    for peer in peers:
        reply = await peer.process.request({"cmd": "list-peers"})
        listed = sorted(
            (p["peer_id"], p["name"], p["addr"], tuple(p["games"])) for p in reply["data"]["peers"]
        )
        expected = sorted(
            (o.peer_id, o.name, o.addr, tuple(sorted(g.id for g in o.games)))
            for o in peers
            if o is not peer
        )
        assert listed == expected, f"{peer.name} lists {listed}"


def logged(peer: Peer, text: str) -> Callable[[], bool]:
    """Whether ``peer``'s stderr log contains ``text`` (for ``wait_until``)."""
    return lambda: text in peer.process.stderr_path.read_text(errors="replace")


def report(title: str, latencies: dict[str, float]) -> None:
    values = sorted(latencies.values())
    print(
        f"\n{title}: max {values[-1]:.2f}s, median {values[len(values) // 2]:.2f}s "
        f"over {len(values)} views: "
        + ", ".join(f"{key} {value:.2f}s" for key, value in sorted(latencies.items()))
    )


async def exits_cleanly(peer: Peer) -> None:
    await peer.process.exited(EXIT_TIMEOUT)
    assert peer.process.returncode == 0, peer.process.report("exit status")


# --- S1: startup and first scan --------------------------------------------------------


async def test_startup_reports_exactly_the_catalog_games(scenario_factory: Any) -> None:
    """S1: a peer emits cli-started, local-ready and its catalog games; strays stay invisible.

    The game directory holds two catalog games and a folder that looks like a game
    but is not in the catalog: the first ``local-library-changed`` lists exactly the
    two catalog games with their versions and sizes, and ``local-ready`` counts two.
    """
    scenario = await scenario_factory(["h1"])
    peer = await scenario.spawn(scenario.host("h1"), strays=["notagame"])
    started = await peer.process.wait_for("cli-started", START_TIMEOUT)
    assert started["name"] == "h1"
    assert len(started["peer_id"]) == 64
    host, _, port = started["listen_addr"].rpartition(":")
    assert (host, port.isdigit()) == ("0.0.0.0", True)
    library = await peer.process.wait_for("local-library-changed")
    assert library["games"] == games_of(peer)
    ready = await peer.process.wait_for("local-ready")
    assert (ready["peer_id"], ready["games"]) == (started["peer_id"], 2)
    assert ready["game_dir"] == str(peer.game_dir)
    status = await peer.process.request({"cmd": "status"})
    assert (status["data"]["games"], status["data"]["peers"]) == (2, 0)
    listing = await peer.process.request({"cmd": "list-games"})
    views = {game["id"]: game for game in listing["data"]["games"]}
    assert sorted(views) == sorted(FIXTURE_CATALOG_IDS)
    assert [gid for gid, view in sorted(views.items()) if view["downloaded"]] == ["cs16", "quake3"]
    assert views["cs16"]["local_version"] == "2.1"


# --- S2-S4: discovery ----------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 5])
async def test_discovery_builds_a_symmetric_full_mesh(scenario_factory: Any, count: int) -> None:
    """S2: 2, 3 and 5 peers started together all see all others' games over mDNS.

    Every ordered pair (observer, subject) gets ``remote-games-changed`` with the
    subject's exact library, and ``list-peers`` agrees everywhere. Two peers see
    each other within 3 s of the later one's start; latencies are printed.
    """
    scenario = await scenario_factory(count)
    peers = await scenario.start_all(scenario.network.hosts)
    arrivals = await wait_for_mesh(peers)
    last_start = max(peer.started_at for peer in peers)
    latencies = {f"{a}<-{b}": at - last_start for (a, b), at in arrivals.items()}
    report(f"discovery of {count} peers after the last start", latencies)
    if count == 2:
        assert max(latencies.values()) < TWO_PEER_DISCOVERY_BOUND, latencies
    await assert_peer_lists(peers)


async def test_cold_start_race_ends_symmetric(scenario_factory: Any, tmp_path: Path) -> None:
    """S3: four peers released at the same instant (before Python starts) end in a full mesh.

    Each peer's shell waits on a FIFO; all four are opened in one loop, so the
    peers import, scan, bind and probe mDNS concurrently on two cores: the
    original's cold-start race ("A sees B but B never sees A") must not happen.
    """
    scenario = await scenario_factory(4)
    gates = [Gate(tmp_path / f"gate-{host.name}") for host in scenario.network.hosts]
    try:
        peers = [
            await scenario.spawn(host, gate=gate)
            for host, gate in zip(scenario.network.hosts, gates, strict=True)
        ]
        released = time.monotonic()
        for gate in gates:
            gate.open()
        await asyncio.gather(*(peer.started() for peer in peers))
    finally:
        for gate in gates:
            gate.close()
    arrivals = await wait_for_mesh(peers)
    report(
        "cold start: views after the simultaneous release",
        {f"{a}<-{b}": at - released for (a, b), at in arrivals.items()},
    )
    await assert_peer_lists(peers)


# --- S4: protocol version mismatch ---------------------------------------------------


async def test_peer_of_another_protocol_version_is_ignored(
    scenario_factory: Any, tmp_path: Path
) -> None:
    """S4: a peer of the next version is never listed; a connect to it names both versions.

    The foreign peer advertises itself before the real peers start. Each real peer's
    discovery resolves the advertisement and rejects it (its debug log says why),
    the two real peers still find each other, nobody dials the foreign listener,
    and an explicit ``connect`` stops at its preamble.
    """
    scenario = await scenario_factory(3)
    foreign_host = scenario.host("h3")
    foreign = await scenario.network.spawn(
        foreign_host,
        [
            sys.executable,
            str(FOREIGN_PEER),
            "--address",
            foreign_host.address,
            "--state-dir",
            str(tmp_path / "foreign"),
        ],
        name="foreign",
    )
    ready = await foreign.wait_for("ready", START_TIMEOUT)
    assert ready["protocol_version"] == FOREIGN_PROTOCOL_VERSION
    peers = [await scenario.spawn(scenario.host(n), log_level="debug") for n in ("h1", "h2")]
    await asyncio.gather(*(peer.started() for peer in peers))
    await wait_for_mesh(peers)
    rejection = (
        f"ignoring {instance_name(ready['peer_id'])}: "
        f"protocol version {FOREIGN_PROTOCOL_VERSION}, we speak {PROTOCOL_VERSION}"
    )
    for peer in peers:
        await wait_until(
            logged(peer, rejection), f"{peer.name} to log {rejection!r}", timeout=DISCOVERY_TIMEOUT
        )
    await assert_peer_lists(peers)
    assert [e for e in foreign.events if e["event"] == "connection"] == []

    with pytest.raises(CommandFailed) as failed:
        await peers[0].process.request({"cmd": "connect", "addr": ready["listen_addr"]})
    assert failed.value.event["code"] == "protocol-error"
    assert failed.value.event["message"] == (
        f"the remote peer speaks protocol version {FOREIGN_PROTOCOL_VERSION}, "
        f"this peer speaks version {PROTOCOL_VERSION}"
    )
    connection = await foreign.wait_for("connection")
    assert connection["preamble_version"] == PROTOCOL_VERSION
    assert connection["remote"].startswith(f"{peers[0].address}:")
    await assert_peer_lists(peers)
    assert await foreign.close() == 0


# --- S5: direct connect without multicast -------------------------------------------


MULTICAST_PROBE_GROUP = "239.255.77.1"
MULTICAST_PROBE_PORT = 45_077
# After the unicast marker arrived, a multicast datagram sent before it could
# only still be on its way if the two were reordered; a moment covers that.
MULTICAST_QUIET = 0.2


async def multicast_reaches(network: Network, sender: Host, receiver: Host) -> bool:
    """Whether a multicast datagram from ``sender`` reaches ``receiver``.

    The multicast datagram is sent first, then a unicast marker on the same path,
    so a forwarded multicast arrives before the marker: no fixed wait is needed
    when it does.
    """
    loop = asyncio.get_running_loop()
    group = socket.inet_aton(MULTICAST_PROBE_GROUP)
    with (
        network.socket(receiver, socket.AF_INET, socket.SOCK_DGRAM) as rx,
        network.socket(sender, socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("0.0.0.0", MULTICAST_PROBE_PORT))
        membership = group + socket.inet_aton(receiver.address)
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        rx.setblocking(False)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sender.address))
        tx.sendto(b"multicast", (MULTICAST_PROBE_GROUP, MULTICAST_PROBE_PORT))
        tx.sendto(b"unicast", (receiver.address, MULTICAST_PROBE_PORT))
        received: list[bytes] = []
        async with asyncio.timeout(DISCOVERY_TIMEOUT):
            while b"unicast" not in received:
                received.append(await loop.sock_recv(rx, 64))
        if b"multicast" not in received:
            try:
                async with asyncio.timeout(MULTICAST_QUIET):
                    received.append(await loop.sock_recv(rx, 64))
            except TimeoutError:
                pass
        return b"multicast" in received


async def block_multicast(network: Network, hosts: Iterable[Host]) -> None:
    """Make the switch stop flooding multicast to ``hosts`` (a filtering switch or AP)."""
    lines = "".join(
        f"link set dev {host.switch_port} type bridge_slave mcast_flood off\n" for host in hosts
    )
    process = await asyncio.create_subprocess_exec(
        "ip", "-n", network.switch_namespace, "-batch", "-", stdin=asyncio.subprocess.PIPE
    )
    await process.communicate(lines.encode())
    assert process.returncode == 0


async def test_direct_connect_works_without_multicast(scenario_factory: Any) -> None:
    """S5: with multicast filtered by the switch, a connect by address links two peers.

    A datagram probe shows multicast crossing the bridge before the filter and not
    after. Neither peer can discover the other, yet one ``connect`` gives both
    sides each other's games, and ``list-peers`` agrees on both sides.
    """
    scenario = await scenario_factory(2)
    h1, h2 = scenario.network.hosts
    # A fresh bridge may drop the very first datagram of a group it has not yet
    # seen a membership report for; one probe of three getting through proves the path.
    assert any([await multicast_reaches(scenario.network, h1, h2) for _ in range(3)])
    await block_multicast(scenario.network, [h1, h2])
    assert not await multicast_reaches(scenario.network, h1, h2)
    assert not await multicast_reaches(scenario.network, h2, h1)
    alpha, bravo = await scenario.start_all([h1, h2])
    views = asyncio.gather(
        alpha.process.wait_for(remote_games(bravo, games_of(bravo))),
        bravo.process.wait_for(remote_games(alpha, games_of(alpha))),
    )
    reply = await alpha.process.request({"cmd": "connect", "addr": bravo.addr})
    assert reply["data"] == {
        "peer_id": bravo.peer_id,
        "name": "h2",
        "addr": bravo.addr,
        "games": sorted(game.id for game in bravo.games),
    }
    await views
    await assert_peer_lists([alpha, bravo])


# --- S6: self-connect ---------------------------------------------------------------


async def test_connect_to_itself_is_refused(scenario_factory: Any) -> None:
    """S6: a connect to the peer's own listener, by bridge or loopback address, is refused."""
    scenario = await scenario_factory(1)
    peer = await scenario.start(scenario.host("h1"))
    for addr in (peer.addr, f"127.0.0.1:{peer.port}"):
        with pytest.raises(CommandFailed) as failed:
            await peer.process.request({"cmd": "connect", "addr": addr})
        assert failed.value.event["code"] == "self-connect"
        assert failed.value.event["message"] == f"{addr} is this peer: self-connect refused"
    status = await peer.process.request({"cmd": "status"})
    assert status["data"]["peers"] == 0


# --- S7-S8: losing peers ----------------------------------------------------------------


def lost(subject: Peer, reason: str) -> dict[str, str]:
    return {"event": "peer-lost", "peer_id": subject.peer_id, "reason": reason}


async def test_killed_peer_is_lost_as_disconnected(scenario_factory: Any) -> None:
    """S7: after kill -9 of one peer, the others drop it with reason ``disconnected``.

    The kernel closes the dead peer's links; each survivor pings it once over its own
    link, gets no answer and drops it at once, not after the peer timeout (the timeout
    path is S12's cut cable). Bounded by the peer timeout plus one ping interval (plus a
    second of slack); the measured times are printed.
    """
    scenario = await scenario_factory(3)
    peers = await scenario.start_all(scenario.network.hosts)
    await wait_for_mesh(peers)
    *survivors, victim = peers
    drops = [
        timed(p.process.wait_for(lost(victim, "disconnected"), 2 * PEER_TIMEOUT)) for p in survivors
    ]
    waiting = asyncio.gather(*drops)
    killed = time.monotonic()
    assert await scenario.network.kill(victim.process) == -9
    latencies = {
        f"{p.name} lost {victim.name}": at - killed
        for p, at in zip(survivors, await waiting, strict=True)
    }
    report("kill -9 detected", latencies)
    assert max(latencies.values()) < SILENT_PEER_BOUND, latencies
    for peer in survivors:
        count = await peer.process.wait_for({"event": "peer-count-updated", "count": 1})
        assert count["count"] == 1
        gone = await peer.process.wait_for(remote_games(victim, []))
        assert gone["games"] == []
    await assert_peer_lists(survivors)


@pytest.mark.parametrize("how", ["shutdown-command", "end-of-input"])
async def test_clean_shutdown_is_a_goodbye(scenario_factory: Any, how: str) -> None:
    """S8: a peer stopped by ``shutdown`` or by the end of stdin is lost as ``goodbye`` at once.

    The other side sees ``peer-lost`` with reason ``goodbye`` within 2 s, and the
    stopped peer exits with status 0.
    """
    scenario = await scenario_factory(2)
    stays, leaves = await scenario.start_all(scenario.network.hosts)
    await wait_for_mesh([stays, leaves])
    goodbye = asyncio.ensure_future(timed(stays.process.wait_for(lost(leaves, "goodbye"))))
    began = time.monotonic()
    if how == "shutdown-command":
        reply = await leaves.process.request({"cmd": "shutdown"})
        assert (reply["ok"], reply["data"]) == (True, None)
        await exits_cleanly(leaves)
    else:
        assert await leaves.process.close(EXIT_TIMEOUT) == 0
    took = await goodbye - began
    print(f"\ngoodbye after {how}: {took:.2f}s")
    assert took < GOODBYE_BOUND
    assert (await stays.process.request({"cmd": "status"}))["data"]["peers"] == 0


# --- S9: library mutations -------------------------------------------------------------


async def test_library_mutations_reach_every_watching_peer(scenario_factory: Any) -> None:
    """S9: adding, deleting and re-versioning a game folder each reach the other peers.

    The changing peer publishes its new library and both watchers get
    ``remote-games-changed`` with exactly the new game list, one change at a time.
    """
    scenario = await scenario_factory(3)
    peers = await scenario.start_all(scenario.network.hosts)
    await wait_for_mesh(peers)
    changer, *watchers = peers
    quake3, cs16 = changer.games
    steps: list[tuple[str, Callable[[], object], list[FixtureGame]]] = [
        (
            "add aoe2",
            lambda: add_game(changer.game_dir, FixtureGame("aoe2", "2.0")),
            [FixtureGame("aoe2", "2.0"), quake3, cs16],
        ),
        (
            "delete cs16",
            lambda: remove_game(changer.game_dir, "cs16"),
            [FixtureGame("aoe2", "2.0"), quake3],
        ),
        (
            "edit quake3 version",
            lambda: set_version(changer.game_dir, "quake3", "1.1"),
            [FixtureGame("aoe2", "2.0"), FixtureGame("quake3", "1.1")],
        ),
    ]
    for what, mutate, expected in steps:
        games = summaries(expected)
        seen = asyncio.gather(
            changer.process.wait_for({"event": "local-library-changed", "games": games}),
            *(w.process.wait_for(remote_games(changer, games)) for w in watchers),
        )
        began = time.monotonic()
        mutate()
        await seen
        print(f"\n{what}: seen by every watcher after {time.monotonic() - began:.2f}s")


# --- S10: restart at a new address ---------------------------------------------------------


async def test_restarted_peer_keeps_its_identity_at_a_new_address(scenario_factory: Any) -> None:
    """S10: a peer restarted with the same state dir, a new IP and a new port is the same peer.

    The peer leaves (goodbye), its namespace's address changes from .2 to .12 and it
    comes back on another ``--listen`` port: the other side discovers the same peer
    id at the new address, with its games, and ``list-peers`` shows the new address.
    """
    scenario = await scenario_factory(2)
    h1, h2 = scenario.network.hosts
    stays = await scenario.start(h1)
    moves = await scenario.start(h2, listen="0.0.0.0:47001")
    await wait_for_mesh([stays, moves])
    assert moves.port == 47001
    first = await stays.process.wait_for({"event": "peer-discovered", "peer_id": moves.peer_id})
    assert first["addr"] == f"{h2.address}:47001"
    goodbye = asyncio.ensure_future(stays.process.wait_for(lost(moves, "goodbye")))
    await moves.process.request({"cmd": "shutdown"})
    await exits_cleanly(moves)
    await goodbye

    new_address = "10.213.0.12"
    for change in (["del", f"{h2.address}/24"], ["add", f"{new_address}/24"]):
        await scenario.network.run(h2, ["ip", "addr", *change, "dev", "eth0"])
    back = await scenario.spawn(h2, moves.games, build=False, listen="0.0.0.0:47002")
    back.address = new_address
    found = asyncio.ensure_future(
        stays.process.wait_for({"event": "peer-discovered", "peer_id": moves.peer_id}, 30)
    )
    await back.started()
    assert (back.peer_id, back.port) == (moves.peer_id, 47002)
    discovered = await found
    assert (discovered["addr"], discovered["name"]) == (f"{new_address}:47002", "h2")
    await wait_for_mesh([stays, back])
    await assert_peer_lists([stays, back])


# --- S11: catalog boundaries on the wire -------------------------------------------------


# Addresses a person could type that are not HOST:PORT; each is refused locally.
MALFORMED_ADDRESSES = ["no-port-here", "10.213.0.1:", "10.213.0.1:0", "10.213.0.1:65536", ":7000"]


async def test_non_catalog_games_never_cross_the_wire(
    scenario_factory: Any, tmp_path: Path
) -> None:
    """S11: a game only the sender's catalog knows never shows on a peer whose catalog lacks it.

    h1's catalog has an extra ``secretgame`` and h1 holds it: h1's own library lists
    it, but h2 sees only h1's other game (events, ``list-peers``, ``list-games``).
    Connect addresses that are not HOST:PORT are refused with ``config-error``.
    """
    scenario = await scenario_factory(2)
    h1, h2 = scenario.network.hosts
    wider = write_catalog(tmp_path / "wider.toml", [*FIXTURE_CATALOG_IDS, "secretgame"])
    quake3, secret = FixtureGame("quake3"), FixtureGame("secretgame")
    sender = await scenario.spawn(h1, [quake3, secret], catalog=wider)
    receiver = await scenario.spawn(h2, [FixtureGame("cs16")])
    await asyncio.gather(sender.started(), receiver.started())
    own = await sender.process.wait_for("local-library-changed")
    assert own["games"] == summaries([quake3, secret])
    await asyncio.gather(
        receiver.process.wait_for(remote_games(sender, summaries([quake3])), DISCOVERY_TIMEOUT),
        sender.process.wait_for(remote_games(receiver, games_of(receiver)), DISCOVERY_TIMEOUT),
    )
    peers = (await receiver.process.request({"cmd": "list-peers"}))["data"]["peers"]
    assert [(p["peer_id"], p["games"]) for p in peers] == [(sender.peer_id, ["quake3"])]
    listing = (await receiver.process.request({"cmd": "list-games"}))["data"]["games"]
    assert sorted(game["id"] for game in listing) == sorted(FIXTURE_CATALOG_IDS)
    assert [g["id"] for g in listing if g["peer_count"]] == ["quake3"]
    assert all("secretgame" not in str(e) for e in receiver.process.events)

    for addr in MALFORMED_ADDRESSES:
        with pytest.raises(CommandFailed) as failed:
            await receiver.process.request({"cmd": "connect", "addr": addr})
        assert failed.value.event["code"] == "config-error"
        assert failed.value.event["message"] == f"{addr!r} is not a HOST:PORT address"


# --- S12: link cut ----------------------------------------------------------------------------


async def test_cut_link_loses_the_peer_and_restoring_it_finds_it_again(
    scenario_factory: Any,
) -> None:
    """S12: unplugging a host drops it (``timeout``) on both sides; plugging it back rejoins it.

    The two hosts that stay connected keep each other throughout; after the link
    comes back every peer sees every other peer's games again.
    """
    scenario = await scenario_factory(3)
    peers = await scenario.start_all(scenario.network.hosts)
    await wait_for_mesh(peers)
    *connected, cut = peers
    drops = asyncio.gather(
        *(timed(p.process.wait_for(lost(cut, "timeout"), 2 * PEER_TIMEOUT)) for p in connected),
        *(timed(cut.process.wait_for(lost(p, "timeout"), 2 * PEER_TIMEOUT)) for p in connected),
    )
    began = time.monotonic()
    await scenario.network.cut_link(cut.host)
    times = await drops
    report("link cut detected", {f"view {i}": at - began for i, at in enumerate(times)})
    assert max(times) - began < SILENT_PEER_BOUND
    for peer in connected:
        assert not [
            e
            for e in peer.process.events
            if e["event"] == "peer-lost" and e["peer_id"] != cut.peer_id
        ], f"{peer.name} lost a connected peer"

    rejoined = asyncio.ensure_future(wait_for_mesh(peers, involving=cut))
    restored = time.monotonic()
    await scenario.network.restore_link(cut.host)
    arrivals = await rejoined
    report(
        "rediscovery after the link came back",
        {f"{a}<-{b}": at - restored for (a, b), at in arrivals.items()},
    )
    await assert_peer_lists(peers)
