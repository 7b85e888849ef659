"""The ``lanspread`` command: starts the peer and its UI, prints the access link, stops cleanly."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.support.waiting import wait_until

from lanspread.cli.app import main
from lanspread.storage.settings import Settings, SettingsStore

LINK = re.compile(rb"open (http://127\.0\.0\.1:(\d+)/#token=([A-Za-z0-9_-]+))")
WAIT = 20.0
# A polled view is a whole HTTP request to the child: ask at most twenty times a second.
VIEW_POLL = 0.05


async def start_app(*args: str) -> tuple[asyncio.subprocess.Process, int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lanspread",
        "--no-browser",
        "--listen",
        "127.0.0.1:0",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None

    async def link() -> tuple[int, str]:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            found = LINK.search(line)
            if found:
                return int(found.group(2)), found.group(3).decode()
        raise AssertionError("lanspread exited without printing its link")

    port, token = await asyncio.wait_for(link(), WAIT)
    return process, port, token


@pytest.fixture
async def stop_processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    yield started
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def get_view(port: int, token: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/api/view", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status, json.loads(await response.text())


async def running_view(port: int, token: str) -> dict[str, Any]:
    """The view once the peer runs (the link is printed while it still starts).

    Polled: the child process is seen only through its HTTP answers.
    """

    async def running() -> dict[str, Any] | None:
        _, view = await get_view(port, token)
        assert isinstance(view, dict)
        return view if view["runtime"]["state"] == "running" else None

    return await wait_until(running, "the peer to run", timeout=WAIT, poll=VIEW_POLL)


async def test_app_serves_the_ui_and_stops_on_sigterm(
    tmp_path: Path, stop_processes: list[asyncio.subprocess.Process]
) -> None:
    """The command prints the token link, the UI answers with it, and SIGTERM exits 0."""
    process, port, token = await start_app(
        "--game-dir", str(tmp_path / "games"), "--state-dir", str(tmp_path / "state")
    )
    stop_processes.append(process)
    status, view = await get_view(port, token)
    assert status == 200
    assert isinstance(view, dict)
    assert view["setup"]["needed"] is True, "no name chosen yet: first run"
    assert (await get_view(port, "wrong"))[0] == 401
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), WAIT) == 0


async def test_saved_settings_skip_the_first_run(
    tmp_path: Path, stop_processes: list[asyncio.subprocess.Process]
) -> None:
    """With settings saved, the app starts with them and shows the library at once."""
    state = tmp_path / "state"
    SettingsStore(state).save(Settings(display_name="Frag Master", game_dir=str(tmp_path / "g")))
    process, port, token = await start_app("--state-dir", str(state))
    stop_processes.append(process)
    view: dict[str, Any] = await running_view(port, token)
    assert view["setup"]["needed"] is False
    assert view["me"]["name"] == "Frag Master"
    assert view["me"]["game_dir"] == str(tmp_path / "g")
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), WAIT) == 0


def test_bad_ui_port_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """An out-of-range UI port is a clear start error with exit status 2."""
    assert main(["--no-browser", "--ui-port", "70000"]) == 2
    assert capsys.readouterr().err == "lanspread: --ui-port 70000: expected 0-65535\n"


def test_busy_ui_port_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A UI port another program holds is reported, not a traceback, as the last word."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(
            [
                "--no-browser",
                "--ui-port",
                str(port),
                "--listen",
                "127.0.0.1:0",
                "--game-dir",
                str(tmp_path / "games"),
                "--state-dir",
                str(tmp_path / "state"),
            ]
        )
    assert code == 2
    last_line = capsys.readouterr().err.splitlines()[-1]
    assert last_line.startswith(f"lanspread: cannot listen on 127.0.0.1:{port}: ")
