"""``lanspread demo`` and the first-run demo, as a player starts them: a subprocess."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.support.peers import loopback_options
from tests.support.waiting import wait_until

from lanspread.cli.app import main, start_demo_peer
from lanspread.core.catalog import Catalog
from lanspread.demo import DEMO_GAMES, DEMO_PEER_NAME, DemoMode
from lanspread.storage.catalog_file import load_catalog_file

LINK = re.compile(rb"open (http://127\.0\.0\.1:(\d+)/#token=([A-Za-z0-9_-]+))")
WAIT = 20.0
# A polled view is a whole HTTP request to the child: ask at most twenty times a second.
VIEW_POLL = 0.05
DEMO_IDS = {game.id for game in DEMO_GAMES}


class App:
    def __init__(self, process: asyncio.subprocess.Process, tmp: Path) -> None:
        self.process = process
        self.tmp = tmp
        self.port = 0
        self.token = ""
        self.output: list[str] = []

    async def read_link(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.output.append(line.decode())
            found = LINK.search(line)
            if found:
                self.port, self.token = int(found.group(2)), found.group(3).decode()
                return
        raise AssertionError(f"lanspread exited without its link: {''.join(self.output)}")

    async def view(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{self.port}/api/view",
                headers={"Authorization": f"Bearer {self.token}"},
            ) as response,
        ):
            assert response.status == 200
            view: dict[str, Any] = json.loads(await response.text())
            return view

    async def view_where(self, what: str, predicate: Any) -> dict[str, Any]:
        """The first view that satisfies ``predicate``, polled over HTTP (the only way in)."""

        async def showing() -> dict[str, Any] | None:
            view = await self.view()
            return view if predicate(view) else None

        return await wait_until(showing, f"the view to show {what}", timeout=WAIT, poll=VIEW_POLL)

    async def terminate(self) -> tuple[int, str]:
        """SIGTERM; the exit status and the rest of the log."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.stderr is not None
        rest = await asyncio.wait_for(self.process.stderr.read(), WAIT)
        code = await asyncio.wait_for(self.process.wait(), WAIT)
        return code, rest.decode()

    def demo_dirs(self) -> list[str]:
        return sorted(path.name for path in (self.tmp / "tmp").iterdir())


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[Any]:
    """Start ``python -m lanspread ARGS`` with its own folders and TMPDIR; killed at the end."""
    started: list[asyncio.subprocess.Process] = []

    async def start(*args: str) -> App:
        (tmp_path / "tmp").mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lanspread",
            *args,
            "--no-browser",
            "--ui-port",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--game-dir",
            str(tmp_path / "games"),
            "--state-dir",
            str(tmp_path / "state"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        started.append(process)
        app = App(process, tmp_path)
        await asyncio.wait_for(app.read_link(), WAIT)
        return app

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


def demo_peer_listed(view: dict[str, Any]) -> bool:
    return any(peer["name"] == DEMO_PEER_NAME for peer in view["peers"])


def downloadable_demo_games(view: dict[str, Any]) -> set[str]:
    return {
        card["id"]
        for card in view["games"]
        if card["id"] in DEMO_IDS and card["action"]["kind"] == "download"
    }


async def test_demo_command_serves_the_demo_peer_and_stops_cleanly(launch: Any) -> None:
    """``lanspread demo`` prints the link; the view lists the Demo peer, labelled as the demo,
    and its games; SIGTERM."""
    app: App = await launch("demo")
    assert any("demo mode: the Demo peer offers 3 small games" in line for line in app.output)
    view = await app.view_where(
        "the demo peer's games", lambda v: downloadable_demo_games(v) == DEMO_IDS
    )
    assert demo_peer_listed(view)
    (peer,) = view["peers"]
    assert peer["addr"].startswith("127.0.0.1:")
    assert peer["demo_label"] == "Demo: games from this computer"
    assert peer["games"] == ["Pixel Kart (demo)", "Starfield Skirmish (demo)", "Tower Siege (demo)"]
    assert len(view["games"]) == 24 + len(DEMO_IDS)
    first_cards = [card["id"] for card in view["games"][:3]]
    assert first_cards == ["demo-pixelkart", "demo-starfield", "demo-towersiege"]
    assert len(app.demo_dirs()) == 1
    code, log = await app.terminate()
    assert code == 0, log
    assert "lanspread stopped: stopped" in log
    assert app.demo_dirs() == []


async def test_a_first_run_starts_no_demo_by_itself(launch: Any) -> None:
    """Plain ``lanspread`` on a first run with an empty game folder shows the real network
    only: at a party, a demo peer would be listed among the real players."""
    app: App = await launch()
    view = await app.view_where("the running peer", lambda v: v["runtime"]["state"] == "running")
    assert view["setup"]["needed"] is True
    assert view["peers"] == []
    assert not any(card["id"] in DEMO_IDS for card in view["games"])
    code, _ = await app.terminate()
    assert code == 0


async def test_no_demo_flag_keeps_the_first_run_plain(launch: Any) -> None:
    """``--no-demo`` starts no demo peer, and the catalog has only its 24 real games."""
    app: App = await launch("--no-demo")
    view = await app.view_where("the running peer", lambda v: v["runtime"]["state"] == "running")
    assert view["peers"] == []
    assert not any(card["id"] in DEMO_IDS for card in view["games"])
    assert len(view["games"]) == 24
    assert app.demo_dirs() == []
    code, _ = await app.terminate()
    assert code == 0


def write_clashing_catalog(path: Path) -> Path:
    path.write_text(
        '[[game]]\nid = "demo-pixelkart"\nname = "Mine"\nsize_bytes = 1\n'
        'genre = "Racing"\nmax_players = 2\n'
    )
    return path


def test_asked_for_demo_with_a_clashing_catalog_is_a_start_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--demo`` with a catalog that uses a demo id stops with status 2 and says why."""
    catalog = write_clashing_catalog(tmp_path / "mine.toml")
    code = main(
        [
            "--demo",
            "--no-browser",
            "--catalog",
            str(catalog),
            "--game-dir",
            str(tmp_path / "games"),
            "--state-dir",
            str(tmp_path / "state"),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        f"lanspread: {catalog}: game 'demo-pixelkart' clashes with a demo game; "
        "ids starting with 'demo-' are reserved for demo mode\n"
    )


async def test_an_automatic_demo_that_cannot_start_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On a first run the app carries on without the demo when it cannot start, and logs why."""
    clashing: Catalog = load_catalog_file(write_clashing_catalog(tmp_path / "mine.toml"))
    options = loopback_options(tmp_path, "user", catalog=clashing)
    with caplog.at_level(logging.WARNING, logger="lanspread"):
        assert await start_demo_peer(options, DemoMode.AUTO) is None
    assert "starting without the demo peer: " in caplog.text
    assert "clashes with a demo game" in caplog.text
