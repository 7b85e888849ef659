"""One guest's first session against ``lanspread peer-cli --demo``, driven over JSON Lines.

The same script drives the peer-cli run from the source tree and the one frozen
in the offline bundle: link to the Demo peer, see its games, download one,
install it, play it, shut down. Each step waits for the event that proves it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from lanspread.demo import PLAY_LOG, demo_game
from tests.support.jsonl_process import Event, JsonlProcess

# The demo game shipped as a tar and a zip: installing it runs both of libarchive's readers.
DEMO_GAME_ID = "demo-towersiege"
# Start-up includes the Demo peer hashing its games (about 11 MiB).
START_TIMEOUT = 30.0
# Downloading, installing and playing the demo game on loopback takes seconds;
# these bounds are far above that and still fail a hung step within a minute.
STEP_TIMEOUT = 30.0
# A demo game plays for DEFAULT_PLAY_SECONDS (4 s) before it exits.
PLAY_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class DemoSession:
    """What the session saw: the Demo peer's and the guest's ``peer_id``."""

    demo_peer_id: str
    guest_peer_id: str


def offers(event: Event, peer_id: str, game_id: str) -> bool:
    """Whether ``event`` is ``peer_id``'s game list offering ``game_id`` Ready."""
    return bool(
        event.get("event") == "remote-games-changed"
        and event.get("peer_id") == peer_id
        and any(g["id"] == game_id and g["availability"] == "Ready" for g in event["games"])
    )


GameStartedHook = Callable[[int], Awaitable[None]]


async def play_a_demo_game(
    cli: JsonlProcess, game_dir: Path, on_game_started: GameStartedHook | None = None
) -> DemoSession:
    """Link, download, install and play :data:`DEMO_GAME_ID`, then shut down (exit 0).

    ``on_game_started`` gets the game's pid while it runs (it plays for seconds).
    """
    demo = await cli.wait_for("demo-started", START_TIMEOUT)
    guest = await cli.wait_for("cli-started", START_TIMEOUT)
    await cli.wait_for("local-ready", START_TIMEOUT)
    demo_id: str = demo["peer_id"]
    await cli.request({"cmd": "connect", "addr": demo["listen_addr"]}, STEP_TIMEOUT)
    await cli.wait_for(lambda event: offers(event, demo_id, DEMO_GAME_ID), STEP_TIMEOUT)

    await cli.request({"cmd": "download", "game": DEMO_GAME_ID}, STEP_TIMEOUT)
    await cli.wait_for({"event": "download-finished", "game": DEMO_GAME_ID}, STEP_TIMEOUT)
    await cli.request({"cmd": "install", "game": DEMO_GAME_ID}, STEP_TIMEOUT)
    await cli.wait_for({"event": "install-finished", "game": DEMO_GAME_ID}, STEP_TIMEOUT)
    local = game_dir / DEMO_GAME_ID / "local"
    for archive in demo_game(DEMO_GAME_ID).archives:
        for name, size in archive.data_files:
            assert (local / name).stat().st_size == size, name

    # Demo games are not pinned by any organizer: the player says yes to running them.
    await cli.request({"cmd": "play", "game": DEMO_GAME_ID, "run_unpinned": True}, STEP_TIMEOUT)
    started = await cli.wait_for({"event": "game-started", "game": DEMO_GAME_ID}, STEP_TIMEOUT)
    if on_game_started is not None:
        await on_game_started(started["pid"])
    exited = await cli.wait_for({"event": "game-exited", "game": DEMO_GAME_ID}, PLAY_TIMEOUT)
    assert exited["returncode"] == 0
    assert (local / PLAY_LOG).is_file()

    await cli.request({"cmd": "shutdown"}, STEP_TIMEOUT)
    await cli.exited(EXIT_TIMEOUT)
    assert cli.returncode == 0
    return DemoSession(demo_peer_id=demo_id, guest_peer_id=guest["peer_id"])
