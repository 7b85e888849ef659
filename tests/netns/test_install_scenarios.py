"""Install, update, play, uninstall and remove through real peer processes (S40-S59).

Each lifecycle command goes through the peer CLI of a peer in its own network
namespace; the other peer watches the library change arrive over the network.
Trees are proved by SHA-256 manifests: ``local/`` against what the archives
hold, the payload against the source's root. Waiting is described in
``transfer_lan.py``. Scenario ids are listed in ``SCENARIOS.md``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lanspread.core.launching import QUICK_EXIT_SECONDS
from lanspread.platform import fileio
from tests.netns.transfer_lan import (
    INSTALL_ENDINGS,
    QUAKE3,
    QUAKE3_V2,
    RELEASE_FIFO,
    BuildLan,
    Peer,
    local_manifest,
    of_game,
    payload_manifest,
)
from tests.support.fixtures import ArchiveCache, InstallableGame
from tests.support.platforms import make_fifo

# Every game command of the peer CLI.
GAME_COMMANDS = (
    "download",
    "cancel",
    "update",
    "install",
    "uninstall",
    "remove",
    "play",
    "adopt",
)
# The exit status the test makes the game's start script return.
GAME_EXIT_STATUS = 7


async def library_seen(watcher: Peer, subject: Peer, games: list[dict[str, Any]]) -> None:
    """Wait until ``watcher`` gets ``subject``'s library as exactly ``games``."""
    await watcher.process.wait_for(
        {"event": "remote-games-changed", "peer_id": subject.peer_id, "games": games},
        what=f"{subject.name}'s library {games} on {watcher.name}",
    )


def summary(peer: Peer, game: InstallableGame, *, installed: bool) -> dict[str, Any]:
    """The summary ``peer`` reports for its root of ``game`` (payload size from disk)."""
    root = peer.root(game.id)
    size = sum((root / path).stat().st_size for path in payload_manifest(root))
    return game.summary(size_bytes=size, installed=installed)


@contextmanager
def release_valve(local: Path) -> Iterator[int]:
    """The FIFO the start script blocks on, held open read-write by the test.

    Holding it read-write means neither side ever blocks in ``open``; writing a
    status line into it lets the running game exit with that status.
    """
    fifo = local / RELEASE_FIFO
    make_fifo(fifo)
    fd = os.open(fifo, os.O_RDWR | fileio.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)
        fifo.unlink(missing_ok=True)


# --- S40: the whole lifecycle -----------------------------------------------------------


async def test_download_install_play_uninstall_remove(build_lan: BuildLan) -> None:
    """S40: download with install policy auto, play, uninstall and remove, all through the CLI.

    The download hands over to the install (``download-finished`` then
    ``install-begin``, ``install-progress`` up to the total, ``install-finished``);
    ``local/`` then holds exactly the archives' members. ``play`` starts the
    start script (``game-started`` with the replied pid, ``running`` in
    ``list-games``); while it runs, ``uninstall`` and a second ``play`` are refused
    with ``operation-in-progress`` and ``remove`` with ``invalid-state``; released,
    it ends with ``game-exited`` and its status. ``uninstall`` deletes ``local/``
    and keeps the archives; ``remove`` deletes the root. The other peer sees
    every library change (installed, uninstalled, gone).
    """
    lan = await build_lan(2)
    player, source = await lan.start([("h1", ()), ("h2", (QUAKE3,))], install_policy="auto")
    await lan.ready_to_fetch(player, [source], QUAKE3)
    await player.command("download", "quake3")
    await player.finished("quake3")
    installed = await player.outcome("quake3", INSTALL_ENDINGS)
    assert installed["event"] == "install-finished", player.process.report(str(installed))
    events = player.process.events
    order = [
        e["event"]
        for e in events
        if e.get("game") == "quake3" and e["event"] in ("download-finished", "install-begin")
    ]
    assert order == ["download-finished", "install-begin"]
    assert of_game(events, "install-begin", "quake3")[0]["update"] is False
    last = of_game(events, "install-progress", "quake3")[-1]
    assert (
        last["extracted_bytes"]
        == last["total_bytes"]
        == sum(len(data) for data in QUAKE3.extracted().values())
    )
    root = player.root("quake3")
    assert local_manifest(root) == QUAKE3.local_manifest()
    assert payload_manifest(root) == lan.cache.manifest(QUAKE3)
    await library_seen(source, player, [summary(player, QUAKE3, installed=True)])

    # No organizer pinned this version: the first Play asks and starts nothing.
    assert await player.refused("play", "quake3") == (
        "program-changed",
        "This version of Fixture quake3 was not pinned by the organizer: its program comes "
        "from other players and nobody vouched for it. Run it?",
    )
    assert not of_game(player.process.events, "game-started", "quake3")
    with release_valve(root / "local") as valve:
        started = await player.process.request(
            {"cmd": "play", "game": "quake3", "run_unpinned": True}
        )
        pid = started["data"]["pid"]
        assert started["data"] == {"game": "quake3", "pid": pid}
        assert (await player.process.wait_for("game-started"))["pid"] == pid
        assert (await player.games())["quake3"]["running"] is True
        assert await player.refused("uninstall", "quake3") == (
            "operation-in-progress",
            "cannot uninstall Fixture quake3 while it is running",
        )
        assert await player.refused("play", "quake3") == (
            "operation-in-progress",
            "Fixture quake3 is already running",
        )
        assert await player.refused("remove", "quake3") == (
            "invalid-state",
            "Fixture quake3 is installed: uninstall it first",
        )
        os.write(valve, f"{GAME_EXIT_STATUS}\n".encode())
        exited = await player.process.wait_for("game-exited")
    assert (exited["game"], exited["returncode"], exited["stopped"]) == (
        "quake3",
        GAME_EXIT_STATUS,
        False,
    )
    # An error code within QUICK_EXIT_SECONDS of the start is told to the player.
    told = f"Fixture quake3 exited with code {GAME_EXIT_STATUS} after {exited['seconds']:.1f} s"
    if exited["seconds"] < QUICK_EXIT_SECONDS:
        assert exited["message"].startswith(told), exited
    else:
        assert exited["message"] is None, exited
    assert (await player.games())["quake3"]["running"] is False

    await player.command("uninstall", "quake3")
    await player.process.wait_for({"event": "uninstall-begin", "game": "quake3"})
    await player.outcome("quake3", ["uninstall-finished", "uninstall-failed"])
    assert not (root / "local").exists()
    assert payload_manifest(root) == lan.cache.manifest(QUAKE3)
    view = (await player.games())["quake3"]
    assert (view["installed"], view["downloaded"]) == (False, True)
    await library_seen(source, player, [summary(player, QUAKE3, installed=False)])

    await player.command("remove", "quake3")
    await player.process.wait_for({"event": "remove-begin", "game": "quake3"})
    removed = await player.outcome("quake3", ["remove-finished", "remove-failed"])
    assert removed["event"] == "remove-finished"
    assert not root.exists()
    view = (await player.games())["quake3"]
    assert (view["installed"], view["downloaded"], view["local_version"]) == (False, False, None)
    await library_seen(source, player, [])


# --- S41: update of an installed game ------------------------------------------------------


def edit_to_version(cache: ArchiveCache, root: Path, new: InstallableGame) -> None:
    """Turn a sideloaded root into ``new`` in place: changed archives, then ``version.ini``.

    Each file is written beside its target and renamed over it, as a careful
    person copying files would, so a reader never sees half a file.
    """
    built = cache.root(new)
    changed = [path.name for path in sorted(built.iterdir())]
    for name in sorted(changed, key=lambda name: name == "version.ini"):
        if (root / name).exists() and (root / name).read_bytes() == (built / name).read_bytes():
            continue
        staging = root.parent / f".{name}.edit"
        staging.write_bytes((built / name).read_bytes())
        staging.rename(root / name)


async def test_update_replaces_local_and_reuses_unchanged_archives(build_lan: BuildLan) -> None:
    """S41: a source edited to a newer version is an update; unchanged archives are reused.

    The player installed quake3 1.0 through the CLI; the source's folder is then
    edited to 2.0 (one archive replaced, ``version.ini`` rewritten). The player
    sees the update (``update_available``, ``latest_version``); ``update``
    reuses the three unchanged archives (``download-begin.resumed_bytes`` is
    exactly their size), fetches only ``maps.eti``, and with install policy auto
    hands over to an update install: ``local/`` becomes exactly 2.0's members and
    the payload equals the source's.
    """
    lan = await build_lan(2)
    player, source = await lan.start([("h1", (QUAKE3,)), ("h2", (QUAKE3,))], install_policy="auto")
    await player.command("install", "quake3")
    assert (await player.outcome("quake3", INSTALL_ENDINGS))["event"] == "install-finished"
    assert local_manifest(player.root("quake3")) == QUAKE3.local_manifest()

    await asyncio.to_thread(edit_to_version, lan.cache, source.root("quake3"), QUAKE3_V2)
    await lan.ready_to_fetch(player, [source], QUAKE3_V2)
    view = (await player.games())["quake3"]
    assert (view["update_available"], view["latest_version"]) == (True, "2.0")
    reply = await player.command("update", "quake3")
    assert reply["data"] == {"game": "quake3", "operation": "downloading"}
    await player.finished("quake3")
    updated = await player.outcome("quake3", INSTALL_ENDINGS)
    assert updated["event"] == "install-finished", player.process.report(str(updated))

    events = player.process.events
    [begin] = of_game(events, "download-begin", "quake3")
    unchanged = [a.name for a in QUAKE3_V2.archives if a.name != "maps.eti"]
    root = player.root("quake3")
    assert begin["resumed_bytes"] == sum((root / name).stat().st_size for name in unchanged)
    assert {e["path"] for e in of_game(events, "chunk-finished", "quake3")} == {"maps.eti"}
    assert [e["update"] for e in of_game(events, "install-begin", "quake3")] == [False, True]
    assert local_manifest(root) == QUAKE3_V2.local_manifest()
    assert payload_manifest(root) == payload_manifest(source.root("quake3"))
    assert payload_manifest(root) == lan.cache.manifest(QUAKE3_V2)
    view = (await player.games())["quake3"]
    assert (view["local_version"], view["installed"], view["update_available"]) == (
        "2.0",
        True,
        False,
    )


# --- S42-S43: refused commands -----------------------------------------------------------


async def test_game_commands_are_refused_outside_the_catalog_and_in_the_wrong_state(
    build_lan: BuildLan,
) -> None:
    """S42-S43: every game command refuses a non-catalog id; wrong states are named.

    Each of the eight game commands with ``doom`` (not in the catalog) or a path
    as its id answers ``unknown-game`` before touching anything. On a catalog
    game that is not here, ``install``, ``uninstall``, ``remove``, ``play``,
    ``update``, ``cancel``, ``download`` (nobody offers it) and ``adopt`` each answer
    ``invalid-state`` with the reason; no operation was started and nothing was
    created in the game directory.
    """
    lan = await build_lan(1)
    [peer] = await lan.start([("h1", ())])
    for cmd in GAME_COMMANDS:
        for game in ("doom", "../quake3"):
            assert await peer.refused(cmd, game) == (
                "unknown-game",
                f"{game!r} is not a game of the catalog",
            ), cmd
    wrong_state = {
        "install": "Fixture quake3 is not downloaded",
        "uninstall": "Fixture quake3 is not installed",
        "remove": "Fixture quake3 is not downloaded",
        "play": "Fixture quake3 is not installed",
        "update": "Fixture quake3 is not here to update: download it",
        "cancel": "Fixture quake3 has no download to cancel",
        "download": "no peer offers Fixture quake3 right now",
        "adopt": "Fixture quake3 is not a folder lanspread found: nothing to adopt",
    }
    for cmd, message in wrong_state.items():
        assert await peer.refused(cmd, "quake3") == ("invalid-state", message), cmd
    status = await peer.process.request({"cmd": "status"})
    assert (status["data"]["operations"], status["data"]["games"]) == ({}, 0)
    assert list(peer.game_dir.iterdir()) == []
