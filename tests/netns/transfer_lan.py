"""A LAN of peer-cli processes for the download and install scenarios (S20-S59).

Shared by ``test_download_scenarios.py`` and ``test_install_scenarios.py``:
peers in network namespaces holding :class:`~tests.support.fixtures.InstallableGame`
roots copied from a session-wide :class:`~tests.support.fixtures.ArchiveCache`.

Deterministic waits, no sleeps
------------------------------
* **A source is servable** once its manifest cache holds a manifest of the game
  that matches the payload on disk: exactly the lookup its server makes before
  answering ``GetGame`` (``ManifestCache.lookup``). :meth:`Peer.servable`
  polls that lookup from the test process (a fresh cache each time, so no
  memo hides a change). Before it holds, a download fails with "the peers are
  still preparing ...": the tests never race that.
* **A receiver sees a source** once the newest ``remote-games-changed`` of
  that peer lists the game at the version, Ready, and ``list-peers`` shows the
  peer at its current address (:meth:`Peer.sees`): a source restarted before
  its old process timed out changes no event, only its address.
* **Mid-transfer actions** (kill, cancel, shutdown) happen while the source's
  link is throttled (:meth:`Lan.throttle`, a ``tbf`` qdisc on the source
  host's ``eth0``) to a rate at which the rest of the game cannot arrive before
  the action: the transfer is provably still running when the action lands,
  and lifting the throttle (:meth:`Lan.unthrottle`) lets the rest run at full
  speed.
* **A download's durable progress** is the journal in its game root
  (``.lanspread.download.json``); :func:`journal_done_bytes` reads it the way
  the restarted peer will. A kill point is a journaled byte count; once it is
  reached the link is stalled first, so nothing more completes before the kill.
"""

# Harness calls take their own timeout (ASYNC109): failure messages name it.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lanspread.core.gameroot import INSTALLER_OWNED_NAMES, OWNERSHIP_FILE, STAGING_NAMES
from lanspread.download.journal import JournalCorrupt
from lanspread.download.journal import load as load_journal
from lanspread.seeding.manifests import ManifestCache
from tests.support.archives import ArchiveFormat
from tests.support.fixtures import (
    FIXTURE_CATALOG_IDS,
    ArchiveCache,
    ArchiveSpec,
    InstallableGame,
    manifest,
    peer_cli_argv,
    write_catalog,
)
from tests.support.jsonl_process import CommandFailed, Event, JsonlProcess
from tests.support.netns import Host, Network, NetworkFactory
from tests.support.waiting import wait_until

# Python start-up plus a scan; three peers at once on a loaded 2-core runner.
START_TIMEOUT = 30.0
# mDNS probing (~1.5 s) plus a handshake, generous for a slow runner.
DISCOVERY_TIMEOUT = 20.0
# Hashing the 47 MiB fixture game takes well under a second; a loaded runner more.
HASH_TIMEOUT = 20.0
# The largest unthrottled transfer here is ~47 MiB over a veth: well under a
# second; the bound only turns a hang into a clear failure.
TRANSFER_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
# How often the manifest cache and journal are looked at: cheap stats and a
# small file read, fine at this pace.
DISK_POLL = 0.02
# How often a peer is asked again (list-peers): a command round trip each time.
PEER_POLL = 0.05
# A tbf bucket must hold at least one full-size (GSO) packet, or tbf drops it;
# 256 KiB also keeps the queue short enough that a lifted throttle acts at once.
TBF_BURST = "256kb"
TBF_LATENCY = "200ms"
# Events that end a download, one of which every download command produces.
DOWNLOAD_ENDINGS = frozenset(
    {"download-finished", "download-failed", "download-cancelled", "download-all-peers-gone"}
)
INSTALL_ENDINGS = frozenset({"install-finished", "install-failed"})

KiB = 1024
MiB = 1024 * KiB
# A real peer-cli whose data server lies (corrupt bytes or a trickle).
PATCHED_PEER = Path(__file__).resolve().parents[1] / "support" / "patched_peer.py"
# The chunk size every peer-cli here pins (--chunk-size): the scenarios count and
# place chunks of openttd's 47 MiB at 16 MiB (DEFAULT_CHUNK_SIZE), where a game's
# size alone would cut it into 1 MiB chunks (core.manifest.chunk_size_for).
CHUNK = 16 * MiB

# The start program of quake3: it blocks reading a FIFO the test makes in local/
# (its working directory) and exits with the number written into it, so a test
# decides when "the game" ends and with which status. Without the FIFO the
# shell cannot open it and exits at once with status 2.
RELEASE_FIFO = "release.fifo"
START_SCRIPT = b'#!/bin/sh\nread -r code < ./release.fifo\nexit "$code"\n'

# Small, installable and playable: one archive of each common format.
QUAKE3 = InstallableGame(
    "quake3",
    "1.0",
    (
        ArchiveSpec(
            "game.eti",
            ArchiveFormat.TAR,
            (("baseq3/pak0.pk3", 256 * KiB),),
            programs=(("start.sh", START_SCRIPT),),
        ),
        ArchiveSpec(
            "maps.eti", ArchiveFormat.ZIP_DEFLATED, (("baseq3/maps/q3dm17.bsp", 96 * KiB),)
        ),
        ArchiveSpec("music.eti", ArchiveFormat.SEVEN_ZIP, (("music/track01.ogg", 64 * KiB),)),
        ArchiveSpec("docs.eti", ArchiveFormat.RAR5, (("docs/readme.txt", 4 * KiB),)),
    ),
)
# The next version changes only maps.eti (1 MiB more, new bytes): an update
# reuses game.eti, music.eti and docs.eti byte for byte.
QUAKE3_V2 = QUAKE3.with_version(
    "2.0",
    ArchiveSpec(
        "maps.eti",
        ArchiveFormat.ZIP_DEFLATED,
        (("baseq3/maps/q3dm17.bsp", 1 * MiB), ("baseq3/maps/q3dm18.bsp", 64 * KiB)),
        seed="2",
    ),
)
# Several archives of similar size in RAR 4, RAR 5, 7z and tar.gz: three sources
# each get at least one file from the planner (greedy least-loaded by path).
CS16 = InstallableGame(
    "cs16",
    "1.6",
    (
        ArchiveSpec("cs16.eti", ArchiveFormat.RAR4, (("cstrike/pak0.pak", 512 * KiB),)),
        ArchiveSpec("maps.eti", ArchiveFormat.RAR5, (("cstrike/maps/de_dust2.bsp", 384 * KiB),)),
        ArchiveSpec("models.eti", ArchiveFormat.TAR_GZ, (("cstrike/models/gsg9.mdl", 256 * KiB),)),
        ArchiveSpec(
            "sound.eti", ArchiveFormat.SEVEN_ZIP, (("cstrike/sound/radio.wav", 256 * KiB),)
        ),
    ),
)
# Larger than two chunks: openttd.eti holds one 47 MiB member, so the archive is
# three chunks of about 16 MiB each (the last one 15 MiB and its tar headers);
# two sources each serve some of them, and at a throttled rate every chunk takes
# about as long, which spaces the journal's commits evenly.
OPENTTD = InstallableGame(
    "openttd",
    "14.1",
    (
        ArchiveSpec("openttd.eti", ArchiveFormat.TAR, (("baseset/opengfx.tar", 47 * MiB),)),
        ArchiveSpec("lang.eti", ArchiveFormat.ZIP, (("lang/english.txt", 8 * KiB),)),
    ),
)


def offers(events: Sequence[Event], peer_id: str, game: InstallableGame) -> bool:
    """Whether the newest ``remote-games-changed`` of ``peer_id`` offers ``game`` Ready."""
    for event in reversed(events):
        if event.get("event") == "remote-games-changed" and event.get("peer_id") == peer_id:
            return any(
                g["id"] == game.id and g["version"] == game.version and g["availability"] == "Ready"
                for g in event["games"]
            )
    return False


def root_qdisc(verb: str, *spec: str) -> list[str]:
    """``tc`` argv that adds, replaces or deletes the root qdisc of a host's ``eth0``."""
    return ["tc", "qdisc", verb, "dev", "eth0", "root", *spec]


def ending(game_id: str, endings: Iterable[str]) -> Callable[[Event], bool]:
    """Matches the first of ``endings`` for ``game_id``."""
    names = frozenset(endings)
    return lambda event: event.get("event") in names and event.get("game") == game_id


def of_game(events: Iterable[Event], name: str, game_id: str) -> list[Event]:
    """Every ``name`` event of ``game_id`` in ``events``, in order."""
    return [e for e in events if e.get("event") == name and e.get("game") == game_id]


def payload_manifest(root: Path) -> dict[str, str]:
    """SHA-256 per path of a game root, without installer-owned names (``local/``, the
    install record), a staged update and the download's ownership record (its bytes hold
    inode numbers)."""
    return {
        path: digest
        for path, digest in manifest(root).items()
        if path.split("/")[0] not in INSTALLER_OWNED_NAMES | STAGING_NAMES | {OWNERSHIP_FILE}
    }


def local_manifest(root: Path) -> dict[str, str]:
    """SHA-256 per path of what ``local/`` holds, relative to ``local/``."""
    return manifest(root / "local")


def sha256(path: Path) -> str:
    """SHA-256 of one file, as :func:`~tests.support.fixtures.manifest` records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_done_bytes(root: Path) -> int:
    """Bytes the download journal in ``root`` records as durable (0 when there is none)."""
    try:
        journal = load_journal(root)
    except JournalCorrupt:
        return 0
    return 0 if journal is None else journal.done_bytes


def journal_chunks(root: Path, path: str) -> int:
    """Chunks of ``path`` the download journal in ``root`` records as durable (any order:
    each download orders equally rare chunks its own way)."""
    try:
        journal = load_journal(root)
    except JournalCorrupt:
        return 0
    return 0 if journal is None else sum(key[0] == path for key in journal.done_keys)


@dataclass
class Peer:
    """One peer-cli process in one namespace, with its folders."""

    name: str
    host: Host
    process: JsonlProcess
    game_dir: Path
    state_dir: Path
    peer_id: str = ""
    port: int = 0

    def root(self, game_id: str) -> Path:
        return self.game_dir / game_id

    async def started(self) -> None:
        """Wait for ``cli-started`` and ``local-ready``; record the peer id and port."""
        started = await self.process.wait_for("cli-started", START_TIMEOUT)
        self.peer_id = started["peer_id"]
        self.port = int(started["listen_addr"].rsplit(":", 1)[1])
        ready = await self.process.wait_for("local-ready", START_TIMEOUT)
        assert ready["peer_id"] == self.peer_id

    async def command(self, cmd: str, game: str) -> Event:
        """Send a game command; return its ``reply`` (fails on an ``error``)."""
        return await self.process.request({"cmd": cmd, "game": game})

    async def refused(self, cmd: str, game: str) -> tuple[str, str]:
        """Send a game command that must fail; return the error's code and message."""
        with pytest.raises(CommandFailed) as failed:
            await self.process.request({"cmd": cmd, "game": game})
        return failed.value.event["code"], failed.value.event["message"]

    async def games(self) -> dict[str, dict[str, Any]]:
        """``list-games`` by game id."""
        reply = await self.process.request({"cmd": "list-games"})
        return {game["id"]: game for game in reply["data"]["games"]}

    async def outcome(
        self, game_id: str, endings: Iterable[str] = DOWNLOAD_ENDINGS, timeout: float = 30.0
    ) -> Event:
        """The next of ``endings`` for ``game_id``."""
        return await self.process.wait_for(
            ending(game_id, endings), timeout, what=f"the end of {game_id} ({sorted(endings)})"
        )

    async def finished(self, game_id: str, expected: str = "download-finished") -> Event:
        """Wait for the download of ``game_id`` to end and check it ended with ``expected``."""
        event = await self.outcome(game_id, timeout=TRANSFER_TIMEOUT)
        assert event["event"] == expected, self.process.report(f"{game_id} ended with {event}")
        return event

    async def servable(self, game: InstallableGame) -> None:
        """Wait until this peer's server would answer ``GetGame`` for ``game`` (hashed)."""

        def hashed() -> bool:
            found = ManifestCache(self.state_dir, chunk_size=CHUNK).lookup(self.game_dir, game.id)
            return found is not None and found.version == game.version

        await wait_until(
            hashed,
            f"{self.name} to hash {game.id} {game.version}",
            timeout=HASH_TIMEOUT,
            poll=DISK_POLL,
        )

    async def sees(self, source: Peer, game: InstallableGame) -> None:
        """Wait until ``source`` offers ``game`` here, at its current address.

        The offer is the newest ``remote-games-changed`` of ``source`` listing the
        game Ready at its version; the address is what ``list-peers`` shows. A
        peer restarted before the old one timed out changes neither the library
        nor any event, only the address (the handshake moves it).
        """
        addr = f"{source.host.address}:{source.port}"

        async def offered_here() -> bool:
            if not offers(self.process.events, source.peer_id, game):
                return False
            reply = await self.process.request({"cmd": "list-peers"})
            return any(
                p["peer_id"] == source.peer_id and p["addr"] == addr for p in reply["data"]["peers"]
            )

        await wait_until(
            offered_here,
            f"{self.name} to see {source.name} at {addr} offering {game.id} {game.version}",
            timeout=DISCOVERY_TIMEOUT,
            poll=PEER_POLL,
        )

    async def exited(self) -> int:
        return await self.process.exited(EXIT_TIMEOUT)


@dataclass
class Lan:
    """A network of peers built by one test; games come from the session's archive cache."""

    network: Network
    base: Path
    catalog: Path
    cache: ArchiveCache
    peers: list[Peer] = field(default_factory=list)

    def host(self, name: str) -> Host:
        return self.network.host(name)

    async def spawn(
        self,
        host: Host,
        games: Iterable[InstallableGame] = (),
        *,
        name: str | None = None,
        install_policy: str = "manual",
        lie: str | None = None,
        party: str | None = None,
    ) -> Peer:
        """Copy ``games`` into a fresh game dir (kept if it exists) and start a peer.

        With ``lie`` (``corrupt`` or ``trickle``) the peer's data server lies that way
        (``tests/support/patched_peer.py``); everything else is the real peer.
        With ``party`` (a party code) the peer joins that party.
        """
        peer_name = name or host.name
        game_dir = self.base / peer_name / "games"
        state_dir = self.base / peer_name / "state"
        game_dir.mkdir(parents=True, exist_ok=True)
        for game in games:  # the first copy of a game builds its archives: seconds of work
            await asyncio.to_thread(self.cache.place, game_dir, game)
        argv = peer_cli_argv(
            name=peer_name,
            game_dir=game_dir,
            state_dir=state_dir,
            catalog=self.catalog,
            install_policy=install_policy,
            chunk_size=CHUNK,
            party=party,
        )
        if lie is not None:  # argv runs "python -m lanspread peer-cli ..."
            argv[1:3] = [str(PATCHED_PEER), "--lie", lie]
        process = await self.network.spawn(host, argv, name=peer_name)
        peer = Peer(peer_name, host, process, game_dir, state_dir)
        self.peers.append(peer)
        return peer

    async def start(
        self, specs: Sequence[tuple[str, Sequence[InstallableGame]]], **options: Any
    ) -> list[Peer]:
        """Start one peer per ``(host name, games)`` concurrently; return once all are ready."""
        peers = [await self.spawn(self.host(host), games, **options) for host, games in specs]
        await asyncio.gather(*(peer.started() for peer in peers))
        return peers

    async def restart(self, peer: Peer, **options: Any) -> Peer:
        """Start ``peer`` again in its host with the same game and state dirs."""
        again = await self.spawn(peer.host, name=peer.name, **options)
        await again.started()
        assert again.peer_id == peer.peer_id
        return again

    async def ready_to_fetch(
        self, receiver: Peer, sources: Sequence[Peer], game: InstallableGame
    ) -> None:
        """Every source has hashed ``game`` and the receiver sees each one offer it."""
        await asyncio.gather(
            *(source.servable(game) for source in sources),
            *(receiver.sees(source, game) for source in sources),
        )

    async def throttle(self, peer: Peer, rate: str) -> None:
        """Limit what ``peer``'s host sends to ``rate`` (tc units: ``120mbit``)."""
        await self.network.run(
            peer.host,
            root_qdisc("replace", "tbf", "rate", rate, "burst", TBF_BURST, "latency", TBF_LATENCY),
        )

    async def unthrottle(self, peer: Peer) -> None:
        """Lift the limit :meth:`throttle` set."""
        await self.network.run(peer.host, root_qdisc("del"))

    async def isolate(self, a: Host, b: Host) -> None:
        """Make hosts ``a`` and ``b`` unable to reach each other (both still reach the rest).

        A ``prohibit`` route on each side fails every connect at once; mDNS still
        shows each to the other, so each one's discovery tries, fails and logs.
        """
        for near, far in ((a, b), (b, a)):
            await self.network.run(near, ["ip", "route", "add", "prohibit", f"{far.address}/32"])


BuildLan = Callable[[int], Awaitable["Lan"]]
"""``await build_lan(hosts)``: a network of ``hosts`` hosts for one test's peers."""


def session_archive_cache(factory: pytest.TempPathFactory) -> ArchiveCache:
    """The session's archive cache: one folder, so every scenario file shares its roots."""
    return ArchiveCache(factory.getbasetemp() / "fixture-archives")


def session_catalog(factory: pytest.TempPathFactory) -> Path:
    """The fixture catalog with ``start.sh`` as quake3's start program, written once."""
    path = factory.getbasetemp() / "transfer-catalog" / "catalog.toml"
    if not path.exists():
        write_catalog(path, FIXTURE_CATALOG_IDS, {QUAKE3.id: "start.sh"})
    return path


def lan_builder(
    network_factory: NetworkFactory, base: Path, catalog: Path, cache: ArchiveCache
) -> Callable[[int], Awaitable[Lan]]:
    """``await build(hosts)``: a started network of ``hosts`` hosts and an empty LAN on it."""

    async def build(hosts: int) -> Lan:
        return Lan(await network_factory(hosts), base, catalog, cache)

    return build
