"""A crash loop: kill -9 of a player's peer inside every operation, then convergence (S31).

The player peer (host ``h1``) downloads, installs, updates, uninstalls and
removes quake3 from a source peer (host ``h2``) whose folder is edited to a
newer version whenever the test wants an update. Each round picks, with a
seeded RNG, one operation valid for the state the player converged to, starts
it through the peer CLI, waits for the event that proves it is running
(``download-begin``, ``install-begin``, ``uninstall-begin``, ``remove-begin``)
and kills the peer with SIGKILL after a random extra delay inside a window
sized to the operation, so most kills land inside it. The window is the
shortest duration the loop has measured for that part (a download's from the
link rate it measured): before its kill a round may first run one to three
operations to their end untouched, which times them and moves the game along
(a download killed before its first journal commit starts over, so without
them the loop would rarely get past downloading). The peer is then restarted
on the same folders and, once settled, must have converged:

* ``list-games`` names a version that ``local/`` really holds: ``verify`` says
  ``ok`` for the record's version and ``local/`` holds exactly that version's
  shipped files plus the player's files; a downloaded root holds exactly the
  archives of its ``version.ini``;
* no half transaction is left behind (no staging, backup or intent), and the
  next round's command is accepted: nothing orphaned blocks the next operation;
* the player's saves and edited config in ``local/`` and the player's own files
  in the game root keep their SHA-256. An uninstall without ``keep_saves`` that
  completed deletes the saves (the player asked for it); the test seeds them
  again after the next install.

At the end the player is brought to an installed game and one full update runs
to completion and verifies. Replay a failure with the printed seed:
``LANSPREAD_CRASH_SEED=<seed> pytest tests/netns/test_crash_loop_scenarios.py -s``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lanspread.core.gameroot import (
    BACKUP_DIR,
    INSTALL_RECORD_NEXT_FILE,
    INSTALLING_DIR,
    INTENT_FILE,
    INTENT_TMP_FILE,
    LOCAL_DIR,
    RESERVED_NAMES,
)
from tests.netns.transfer_lan import (
    INSTALL_ENDINGS,
    START_SCRIPT,
    BuildLan,
    Lan,
    Peer,
)
from tests.support.archives import ArchiveFormat
from tests.support.fixtures import (
    VERSION_FILE,
    ArchiveCache,
    ArchiveSpec,
    InstallableGame,
    manifest,
)
from tests.support.trees import write_tree
from tests.support.waiting import wait_until

# Set to replay a failed run; otherwise each run draws a fresh seed and prints it.
SEED_VARIABLE = "LANSPREAD_CRASH_SEED"
# At least this many kill -9 of the player, as the scenario promises.
KILLS = 44
KiB = 1024
MiB = 1024 * KiB
# The source's link rate during the loop: the 4.3 MiB game takes about a
# second and a half, so a random moment inside it is easy to hit.
SOURCE_RATE = "28mbit"
SOURCE_BYTES_PER_SECOND = 28_000_000 / 8
# First guesses of how long each part lasts (seconds after its begin event),
# replaced by the shortest the loop measures when a part runs to its end (an
# install over an older version or kept saves, "update-install", is its own).
FIRST_GUESS = {"install": 0.5, "uninstall": 0.05, "remove": 0.05}
# A download's rate is measured only when it moved at least this much: the few
# bytes of a resumed download's last file say nothing about the link.
MIN_MEASURED_BYTES = 1 * MiB
# A kill lands at a uniform moment in this share of the part's expected
# duration: most land inside it, some just after it ended.
KILL_WINDOW_SHARE = 1.1
# Share of rounds whose operation first runs to its end untouched (measuring
# it) before the next operation is killed: without it a download killed again
# and again before its first journal commit would never let the loop reach
# install, update and uninstall.
UNTOUCHED_SHARE = 0.35
# At most this many untouched operations before the round's kill.
MAX_UNTOUCHED = 3
# Every phase (download, install, update, uninstall) gets at least this many
# kills in a run: the choice of operations favours the phases behind, and the
# loop goes on past KILLS (up to MAX_ROUNDS) while one is still short.
MIN_KILLS_PER_PHASE = 5
MAX_ROUNDS = 64
PHASES = ("download", "install", "update", "uninstall")
# The begin event of an operation comes after a manifest exchange (download)
# or at once (local operations); generous for a loaded runner.
BEGIN_TIMEOUT = 20.0
# An unkilled operation at the throttled rate ends well within this.
OPERATION_TIMEOUT = 40.0
# Start-up recovery and the first scan of one small game.
SETTLE_TIMEOUT = 20.0
# The loop takes 75-130 s on the loaded 2-core runner (44 to 64 restarts,
# many followed by a rediscovery of the source); the bound only turns a hang
# into a failure.
TEST_TIMEOUT = 360
# How often the settled check asks for the operation table (a command each time).
SETTLE_POLL = 0.05

# Many small files make install and uninstall last long enough (a few hundred
# and a few tens of ms) for a random kill to land inside them.
TEXTURES = 400

# The player's files in local/ (written after an install) and in the game root
# (written before lanspread ever ran): none of them ships with the game.
PLAYER_SAVES: dict[str, bytes] = {
    "saves/slot1.sav": b"slot 1: forty hours into the campaign",
    "saves/slot2.sav": b"slot 2: a speedrun attempt" * 64,
    "baseq3/q3config.cfg": b'seta name "player"\nseta sensitivity "4.5"\nbind F1 "vote yes"\n',
}
PLAYER_ROOT_FILES: dict[str, bytes] = {
    "my-notes.txt": b"server passwords and map rotation notes",
    "mods/my-mod.pk3": b"a mod the player dropped next to the archives",
}


def maps_archive(number: int) -> ArchiveSpec:
    """The one archive that changes with every version (new bytes, one new member)."""
    return ArchiveSpec(
        "maps.eti",
        ArchiveFormat.ZIP_DEFLATED,
        (("baseq3/maps/q3dm17.bsp", 1 * MiB), (f"baseq3/maps/v{number}.bsp", 64 * KiB)),
        seed=str(number),
    )


@functools.cache
def game_version(number: int) -> InstallableGame:
    """quake3 at version ``number``.0: only maps.eti changes from one version to the next."""
    return InstallableGame(
        "quake3",
        f"{number}.0",
        (
            ArchiveSpec(
                "game.eti",
                ArchiveFormat.TAR,
                (("baseq3/pak0.pk3", 2 * MiB),),
                programs=(("start.sh", START_SCRIPT),),
            ),
            maps_archive(number),
            ArchiveSpec("music.eti", ArchiveFormat.SEVEN_ZIP, (("music/track01.ogg", 256 * KiB),)),
            ArchiveSpec("docs.eti", ArchiveFormat.RAR5, (("docs/readme.txt", 4 * KiB),)),
            ArchiveSpec(
                "textures.eti",
                ArchiveFormat.TAR,
                tuple((f"baseq3/textures/t{n:03}.tga", 2 * KiB) for n in range(TEXTURES)),
            ),
        ),
    )


@functools.cache
def local_manifest(number: int) -> dict[str, str]:
    """What ``local/`` holds after installing version ``number`` (SHA-256 per path)."""
    return game_version(number).local_manifest()


@functools.cache
def maps_bytes(number: int) -> bytes:
    return maps_archive(number).build("quake3")


def root_manifest(cache: ArchiveCache, number: int) -> dict[str, str]:
    """SHA-256 per file of version ``number``'s root: version 1's archives (built once
    by the cache) with this version's maps.eti and version.ini."""
    return {
        **cache.manifest(game_version(1)),
        "maps.eti": sha(maps_bytes(number)),
        VERSION_FILE: sha(game_version(number).sentinel),
    }


def edit_source(root: Path, number: int) -> None:
    """Turn the source's root into version ``number``: maps.eti, then ``version.ini``.

    Each file is written beside the root and renamed over its target, as a
    careful person copying files would, so the source never reads half a file.
    """
    for name, data in (
        ("maps.eti", maps_bytes(number)),
        (VERSION_FILE, game_version(number).sentinel),
    ):
        staging = root.parent / f".{name}.edit"
        staging.write_bytes(data)
        staging.rename(root / name)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digests(base: Path, files: dict[str, bytes]) -> dict[str, str]:
    """SHA-256 of each of ``files`` under ``base`` as it is now ("missing" when gone)."""
    return {
        relative: sha((base / relative).read_bytes()) if (base / relative).is_file() else "missing"
        for relative in files
    }


def want(files: dict[str, bytes]) -> dict[str, str]:
    return {relative: sha(data) for relative, data in files.items()}


@dataclass
class Loop:
    """The crash loop's state: the peers, the versions and what was counted."""

    lan: Lan
    player: Peer
    source: Peer
    rng: random.Random
    seed: int
    source_version: int = 1
    saves_expected: bool = False
    kills: Counter[str] = field(default_factory=Counter)
    inside: Counter[str] = field(default_factory=Counter)
    converged: int = 0
    """Checks passed (after every restart and every untouched operation)."""
    restarts_converged: int = 0
    files_compared: int = 0
    """Byte-for-byte comparisons of one player's file with what the player wrote."""
    log: list[str] = field(default_factory=list)
    expected: dict[str, float] = field(default_factory=lambda: dict(FIRST_GUESS))
    bytes_per_second: float = SOURCE_BYTES_PER_SECOND

    @property
    def root(self) -> Path:
        return self.player.root("quake3")

    def fail(self, message: str) -> str:
        """A failure message naming the seed and the rounds so far."""
        history = "\n  ".join(self.log[-12:])
        return self.player.process.report(
            f"{message}\nseed {self.seed} (replay: {SEED_VARIABLE}={self.seed})\n  {history}"
        )

    # -- the source ------------------------------------------------------------

    async def bump_source(self) -> None:
        """Edit the source's folder to the next version; wait until the player sees it."""
        self.source_version += 1
        new = game_version(self.source_version)
        await asyncio.to_thread(edit_source, self.source.root("quake3"), self.source_version)
        await self.ready(new)

    async def ready(self, game: InstallableGame | None = None) -> None:
        """The source serves the current version and the player sees it offered."""
        await self.lan.ready_to_fetch(
            self.player, [self.source], game or game_version(self.source_version)
        )

    # -- the player ------------------------------------------------------------

    async def view(self) -> dict[str, Any]:
        return (await self.player.games())["quake3"]

    async def restart(self) -> None:
        self.player = await self.lan.restart(self.player)
        await self.settled()

    async def settled(self) -> None:
        """Start-up recovery is done and no operation runs."""

        async def idle() -> bool:
            status = await self.player.process.request({"cmd": "status"})
            return bool(status["data"]["operations"] == {})

        await wait_until(
            idle, "the player to have no operation", timeout=SETTLE_TIMEOUT, poll=SETTLE_POLL
        )

    async def check_converged(self) -> dict[str, Any]:
        """The settled player is consistent, playable and holds every player's file."""
        view = await self.view()
        assert view["operation"] is None, self.fail(f"still busy: {view}")
        root = self.root
        assert digests(root, PLAYER_ROOT_FILES) == want(PLAYER_ROOT_FILES), self.fail(
            "the player's root files changed"
        )
        self.files_compared += len(PLAYER_ROOT_FILES)
        left = sorted(
            name
            for name in (INSTALLING_DIR, BACKUP_DIR, INTENT_FILE, INTENT_TMP_FILE)
            if (root / name).exists()
        )
        left += [INSTALL_RECORD_NEXT_FILE] if (root / INSTALL_RECORD_NEXT_FILE).exists() else []
        assert left == [], self.fail(f"half a transaction left in {root}: {left}")
        local = root / LOCAL_DIR
        if view["installed"]:
            await self.check_installed(view)
        elif local.exists():
            kept = manifest(local)
            assert self.saves_expected, self.fail(f"local/ of an uninstalled game: {sorted(kept)}")
            assert kept == want(PLAYER_SAVES), self.fail(
                f"local/ of an uninstalled game holds more than the kept saves: {sorted(kept)}"
            )
        if view["downloaded"]:
            self.check_downloaded(view)
        if self.saves_expected:
            if local.is_dir():
                assert digests(local, PLAYER_SAVES) == want(PLAYER_SAVES), self.fail(
                    f"the player's saves changed: {digests(local, PLAYER_SAVES)}"
                )
                self.files_compared += len(PLAYER_SAVES)
            else:
                assert "uninstall keep_saves=False" in self.log[-1], self.fail(
                    "local/ with the player's saves is gone, and no uninstall deleting them ran"
                )
                self.saves_expected = False
        if view["installed"] and not self.saves_expected:
            write_tree(local, PLAYER_SAVES)
            self.saves_expected = True
        self.converged += 1
        return view

    async def check_installed(self, view: dict[str, Any]) -> None:
        reply = await self.player.process.request({"cmd": "verify", "game": "quake3"})
        verified = reply["data"]
        version = view["installed_version"]
        assert verified["ok"] is True, self.fail(f"verify of quake3 {version}: {verified}")
        assert verified["version"] == version, self.fail(f"verify of {version}: {verified}")
        number = int(version.split(".")[0])
        local = manifest(self.root / LOCAL_DIR)
        players = want(PLAYER_SAVES) if self.saves_expected else {}
        expected = {**local_manifest(number), **players}
        assert local == expected, self.fail(
            f"local/ is not quake3 {version} plus the player's files: "
            f"extra {sorted(set(local) - set(expected))}, "
            f"missing {sorted(set(expected) - set(local))}, "
            f"changed {sorted(p for p in set(local) & set(expected) if local[p] != expected[p])}"
        )
        assert sorted(verified["added"]) == sorted(players), self.fail(f"verify: {verified}")

    def check_downloaded(self, view: dict[str, Any]) -> None:
        number = int(view["local_version"].split(".")[0])
        payload = {
            path: digest
            for path, digest in manifest(self.root).items()
            if path.split("/")[0] not in RESERVED_NAMES and path not in PLAYER_ROOT_FILES
        }
        expected = root_manifest(self.lan.cache, number)
        assert payload == expected, self.fail(
            f"the downloaded root is not quake3 {view['local_version']}: "
            f"{sorted(set(payload) ^ set(expected))}"
        )

    # -- one round -------------------------------------------------------------

    def lagging(self) -> bool:
        """Some phase has had fewer than MIN_KILLS_PER_PHASE kills."""
        return min(self.kills[phase] for phase in PHASES) < MIN_KILLS_PER_PHASE

    def choose(self, view: dict[str, Any]) -> tuple[str, str]:
        """The next operation valid in ``view``: (command, phase it counts under).

        Where two are valid, each is weighted by how few kills the phase it
        leads to has had so far, which spreads the kills over the phases.
        """
        local = (self.root / LOCAL_DIR).is_dir()
        if view["installed"]:
            other = view["downloaded"] and view["local_version"] != view["installed_version"]
            if other or view["state"] == "update-staged":  # e.g. verified beside, not installed
                return "install", "update"  # the archives of an update wait to be installed
            if not view["downloaded"] or view["update_available"]:
                return "update", "update"
            return self.pick({"uninstall": "uninstall", "bump": "update"})
        if view["downloaded"]:
            # A remove leads back to downloading; not while local/ holds kept saves.
            return self.pick({"install": "install"} | ({} if local else {"remove": "download"}))
        return "download", "download"

    def pick(self, leads_to: dict[str, str]) -> tuple[str, str]:
        """One of ``leads_to`` (command -> the phase it leads to), fewest kills favoured."""
        commands = sorted(leads_to)
        weights = [1 / (1 + self.kills[leads_to[command]]) for command in commands]
        [command] = self.rng.choices(commands, weights)
        return command, "remove" if command == "remove" else leads_to[command]

    async def start(self, number: int, *, untouched: bool) -> tuple[str, str]:
        """Start the next operation valid in the current state; return it and its phase."""
        view = await self.view()
        command, phase = self.choose(view)
        if command == "bump":
            await self.bump_source()
            command = "update"
        if command in ("download", "update"):
            await self.ready()
        request: dict[str, Any] = {"cmd": command, "game": "quake3"}
        label = command
        if command == "uninstall":
            request["keep_saves"] = self.rng.random() < 0.5
            label = f"uninstall keep_saves={request['keep_saves']}"
        self.log.append(
            f"round {number}: {label}{' (untouched)' if untouched else ''}, installed "
            f"{view['installed_version']}, downloaded {view['local_version']}, "
            f"source {self.source_version}.0"
        )
        await self.player.process.request(request)
        return command, phase

    async def untouched(self, number: int) -> None:
        """Run one operation to its end, timing each part, and check the result."""
        command, _ = await self.start(number, untouched=True)
        process = self.player.process
        parts = {
            "download": ["download"],
            "update": ["download", "install"],
            "install": ["install"],
        }.get(command, [command])
        for part in parts:
            begin = await process.wait_for(
                {"event": f"{part}-begin", "game": "quake3"}, BEGIN_TIMEOUT
            )
            began = time.monotonic()
            endings = {f"{part}-finished", f"{part}-failed"} | (
                {"download-cancelled", "download-all-peers-gone"} if part == "download" else set()
            )
            done = await self.player.outcome("quake3", endings, timeout=OPERATION_TIMEOUT)
            assert done["event"] == f"{part}-finished", self.fail(f"{command} ended with {done}")
            took = time.monotonic() - began
            if part == "download":
                moved = begin["total_bytes"] - begin["resumed_bytes"]
                if moved >= MIN_MEASURED_BYTES:
                    self.bytes_per_second = moved / took
            else:
                key = "update-install" if begin.get("update") else part
                self.expected[key] = min(took, self.expected.get(key, took))
        self.log[-1] += " finished"
        print(self.log[-1])
        await self.settled()
        await self.check_converged()

    async def round(self, number: int) -> None:
        """Maybe a few untouched operations, then one killed inside, restart and check."""
        for _ in range(MAX_UNTOUCHED):
            if self.rng.random() >= UNTOUCHED_SHARE:
                break
            await self.untouched(number)
        command, phase = await self.start(number, untouched=False)
        delay, endings = await self.kill_moment(command)
        await asyncio.sleep(delay)  # the random kill moment itself, not a wait for a state
        events = self.player.process.events
        landed = not any(e.get("event") in endings and e.get("game") == "quake3" for e in events)
        await self.lan.network.kill(self.player.process)
        self.kills[phase] += 1
        self.inside[phase] += landed
        progress = [e for e in events if e.get("event") == "download-progress"]
        got = f", {progress[-1]['downloaded_bytes']} B" if progress and command != "install" else ""
        where = "inside" if landed else "after the end"
        self.log[-1] += f", killed {delay * 1000:.0f} ms after its begin, {where}{got}"
        print(self.log[-1])
        await self.restart()
        await self.check_converged()
        self.restarts_converged += 1

    async def kill_moment(self, command: str) -> tuple[float, frozenset[str]]:
        """Wait for the begin event of the part to kill; return the delay and its endings."""
        process = self.player.process
        install_part = command == "install" or (command == "update" and self.rng.random() < 0.5)
        if command in ("download", "update") and not install_part:
            begin = await process.wait_for(
                {"event": "download-begin", "game": "quake3"}, BEGIN_TIMEOUT
            )
            remaining = begin["total_bytes"] - begin["resumed_bytes"]
            window = KILL_WINDOW_SHARE * remaining / self.bytes_per_second
            return self.rng.uniform(0, window), frozenset({"download-finished", "download-failed"})
        part = "install" if install_part else command
        begin = await process.wait_for(
            {"event": f"{part}-begin", "game": "quake3"}, OPERATION_TIMEOUT
        )
        key = "update-install" if begin.get("update") else part
        window = KILL_WINDOW_SHARE * self.expected.get(key, self.expected["install"])
        return self.rng.uniform(0, window), frozenset({f"{part}-finished", f"{part}-failed"})

    # -- runs without a kill ---------------------------------------------------

    async def complete(self, command: str, endings: frozenset[str]) -> dict[str, Any]:
        """Run ``command`` to its end; fail on anything but ``*-finished``."""
        if command in ("download", "update"):
            await self.ready()
        await self.player.command(command, "quake3")
        done = await self.player.outcome("quake3", endings, timeout=OPERATION_TIMEOUT)
        assert done["event"].endswith("-finished"), self.fail(f"{command} ended with {done}")
        return done


@pytest.mark.soak
@pytest.mark.timeout(TEST_TIMEOUT)
async def test_a_crash_loop_never_loses_a_players_file(build_lan: BuildLan) -> None:
    """S31: 44 kill -9 during download, install, update, uninstall and remove all converge.

    At least five kills land in each of download, install, update and
    uninstall (the loop runs past 44 rounds while one is short). Each round
    runs an operation valid for the player's state (seeded RNG, seed printed)
    and kills the peer a random moment after its begin event; the restarted
    peer settles to a state where ``list-games``, ``verify``, the shipped files
    of ``local/`` and the downloaded archives all name the same versions, no
    staging, backup or intent is left, the next command is accepted, and the
    player's saves, edited config and root files keep their SHA-256 (saves go
    only with a completed uninstall without ``keep_saves``).
    A final update runs to completion and verifies.
    """
    seed = int(os.environ.get(SEED_VARIABLE) or secrets.randbits(32))
    print(f"\ncrash loop seed {seed} (replay: {SEED_VARIABLE}={seed})")
    started = time.monotonic()
    lan = await build_lan(2)
    player_games = lan.base / "h1" / "games"
    write_tree(player_games / "quake3", PLAYER_ROOT_FILES)
    await asyncio.to_thread(lan.cache.root, game_version(1))
    player, source = await lan.start([("h1", ()), ("h2", (game_version(1),))])
    loop = Loop(lan, player, source, random.Random(seed), seed)
    await lan.throttle(source, SOURCE_RATE)
    await loop.check_converged()

    number = 0
    while number < KILLS or (loop.lagging() and number < MAX_ROUNDS):
        number += 1
        await loop.round(number)

    await lan.unthrottle(source)
    view = await loop.view()
    if not view["installed"]:
        if not view["downloaded"]:
            await loop.complete("download", frozenset({"download-finished", "download-failed"}))
        await loop.complete("install", INSTALL_ENDINGS)
        await loop.check_converged()
        view = await loop.view()
    if view["downloaded"] and view["local_version"] != view["installed_version"]:
        await loop.complete("install", INSTALL_ENDINGS)
    elif not view["downloaded"] or view["update_available"]:
        await loop.player.command("update", "quake3")
        await loop.player.outcome("quake3", INSTALL_ENDINGS, timeout=OPERATION_TIMEOUT)
    await loop.check_converged()
    await loop.bump_source()
    await loop.player.command("update", "quake3")
    updated = await loop.player.outcome("quake3", INSTALL_ENDINGS, timeout=OPERATION_TIMEOUT)
    assert updated["event"] == "install-finished", loop.fail(f"the final update: {updated}")
    final = await loop.check_converged()
    assert final["installed_version"] == final["local_version"] == f"{loop.source_version}.0"
    assert loop.saves_expected

    kills = sum(loop.kills.values())
    phases = (*PHASES, "remove")
    print(
        f"crash loop seed {seed}: kills {kills}, by phase "
        + "/".join(f"{phase} {loop.kills[phase]}" for phase in phases)
        + ", inside the operation "
        + "/".join(f"{loop.inside[phase]}" for phase in phases)
        + f", converged {loop.restarts_converged}/{kills} restarts "
        f"({loop.converged} checks), files lost 0 of {loop.files_compared} compared, "
        f"{time.monotonic() - started:.0f} s"
    )
    assert kills == loop.restarts_converged >= KILLS
    assert not loop.lagging(), loop.fail(f"kills by phase: {dict(loop.kills)}")
