"""``lanspread peer-cli --demo``: a headless peer with the Demo peer beside it, on loopback.

The Demo peer gives a lone peer-cli (a guest with nothing but the program) a
source: its address comes first in ``demo-started``, ``connect`` links to it and
every demo game can then be downloaded, installed and played.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.demo_session import START_TIMEOUT, play_a_demo_game
from tests.support.fixtures import peer_cli_argv, write_catalog
from tests.support.jsonl_process import JsonlProcess

from lanspread.demo import DEMO_PEER_NAME


def demo_argv(tmp_path: Path, catalog: Path | None = None) -> list[str]:
    return [
        *peer_cli_argv(
            name="guest",
            game_dir=tmp_path / "games",
            state_dir=tmp_path / "state",
            catalog=catalog,
            listen="127.0.0.1:0",
            mdns_interfaces=["127.0.0.1"],
            install_policy="manual",
        ),
        "--demo",
    ]


async def test_demo_flag_gives_a_source_to_download_install_and_play_from(
    tmp_path: Path,
) -> None:
    """demo-started comes first; a demo game downloads, installs, plays; exit 0, no leftovers."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    cli = await JsonlProcess.start(
        demo_argv(tmp_path),
        name="peer-cli-demo",
        stderr_path=tmp_path / "cli.stderr",
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        session = await play_a_demo_game(cli, tmp_path / "games")
    finally:
        await cli.kill()
    assert [event["event"] for event in cli.events[:2]] == ["demo-started", "cli-started"]
    peers = [e for e in cli.events if e["event"] == "peer-discovered"]
    assert [(e["peer_id"], e["name"]) for e in peers] == [(session.demo_peer_id, DEMO_PEER_NAME)]
    assert list(temp.iterdir()) == []  # the Demo peer deleted its temporary folder


async def test_demo_flag_with_a_clashing_catalog_is_a_start_error(tmp_path: Path) -> None:
    """A catalog that already uses a demo id stops the start with one error event, status 2."""
    catalog = write_catalog(tmp_path / "catalog.toml", ["quake3", "demo-starfield"])
    cli = await JsonlProcess.start(
        demo_argv(tmp_path, catalog), name="peer-cli-demo", stderr_path=tmp_path / "cli.stderr"
    )
    try:
        event = await cli.wait_for("error", START_TIMEOUT)
        assert await cli.close() == 2
    finally:
        await cli.kill()
    assert (event["code"], event["message"]) == (
        "catalog-error",
        f"{catalog}: game 'demo-starfield' clashes with a demo game; "
        "ids starting with 'demo-' are reserved for demo mode",
    )
