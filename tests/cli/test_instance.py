"""One instance per state folder: the lock, the UI address file, and real processes.

The in-process tests hold two :class:`InstanceLock` objects on one folder (each has
its own open file, so the OS lock conflicts just as between processes). The
subprocess tests prove what only processes can: a second ``peer-cli`` or
``lanspread`` is refused with status 3, and a killed instance leaves no lock behind.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest
from tests.support.fixtures import FixtureGame, build_library, peer_cli_argv, write_catalog
from tests.support.jsonl_process import JsonlProcess
from tests.support.platforms import KILLED_RETURNCODE
from tests.support.waiting import wait_until

from lanspread.cli.instance import (
    EXIT_ALREADY_RUNNING,
    LOCK_FILE_NAME,
    UI_URL_FILE_NAME,
    UI_URL_HEADER,
    InstanceLock,
)
from lanspread.cli.logs import LOG_FILE_NAME
from lanspread.errors import AlreadyRunning, ConfigError

URL = "http://127.0.0.1:4321/#token=abc"

# Starting a peer (Python, identity, listeners, mDNS on loopback) on a loaded machine.
START_TIMEOUT = 20.0

# A refused start only parses options and tries the lock.
REFUSAL_TIMEOUT = 20.0

LINK = re.compile(r"open (http://127\.0\.0\.1:\d+/#token=[A-Za-z0-9_-]+)")


def no_ui_message(state: Path) -> str:
    return (
        f"another instance is already running with the state folder {state}; "
        "it shows no web UI (a peer-cli, or a lanspread still starting)"
    )


def ui_message(state: Path, url: str) -> str:
    return f"another instance is already running with the state folder {state}; its UI is at {url}"


def test_a_second_lock_on_the_folder_is_refused_saying_where_the_ui_is(tmp_path: Path) -> None:
    """Before the UI listens the refusal says so; after, it gives the running UI's address."""
    with InstanceLock(tmp_path) as running:
        with pytest.raises(AlreadyRunning) as refused:
            InstanceLock(tmp_path).acquire()
        assert str(refused.value) == no_ui_message(tmp_path)
        running.publish_ui_url(URL)
        with pytest.raises(AlreadyRunning) as refused:
            InstanceLock(tmp_path).acquire()
        assert str(refused.value) == ui_message(tmp_path, URL)
    with InstanceLock(tmp_path):
        pass  # released: the folder is free again


def test_the_address_file_is_owner_only_and_gone_after_release(tmp_path: Path) -> None:
    """The file (it carries the access key) is 0600 while running and removed on release."""
    with InstanceLock(tmp_path) as running:
        running.publish_ui_url(URL)
        url_file = tmp_path / UI_URL_FILE_NAME
        assert url_file.read_text() == f"{UI_URL_HEADER}\n{URL}\n"
        if sys.platform != "win32":
            assert url_file.stat().st_mode & 0o777 == 0o600
    assert not url_file.exists()
    assert sorted(entry.name for entry in tmp_path.iterdir()) in ([], [LOCK_FILE_NAME])


def test_release_leaves_an_address_file_it_did_not_write(tmp_path: Path) -> None:
    """Someone replaced our address file: release keeps theirs, it is not ours to delete."""
    url_file = tmp_path / UI_URL_FILE_NAME
    with InstanceLock(tmp_path) as running:
        running.publish_ui_url(URL)
        url_file.write_text("somebody else's notes\n")
        running.publish_ui_url(URL)  # not ours any more: not replaced either
    assert url_file.read_text() == "somebody else's notes\n"


def test_a_dead_instances_address_file_is_cleared_on_start(tmp_path: Path) -> None:
    """Our own address file with the lock free is a leftover: the next start removes it."""
    url_file = tmp_path / UI_URL_FILE_NAME
    url_file.write_text(f"{UI_URL_HEADER}\n{URL}\n")
    with InstanceLock(tmp_path) as running:
        assert not url_file.exists()
        with pytest.raises(AlreadyRunning) as refused:
            InstanceLock(tmp_path).acquire()
        assert str(refused.value) == no_ui_message(tmp_path), "no stale address is shown"
        running.publish_ui_url(URL)


@pytest.mark.parametrize(
    "content",
    [
        "my own file\n",
        f"{UI_URL_HEADER}\nftp://example/\n",
        f"{UI_URL_HEADER}\n{URL}\nmore\n",
        UI_URL_HEADER + "\n" + "http://" + "x" * 5000 + "\n",
    ],
    ids=["foreign", "not-http", "extra-line", "oversized"],
)
def test_a_foreign_file_under_the_address_name_is_left_alone(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A file we cannot prove ours is neither removed, replaced nor shown as the running UI."""
    url_file = tmp_path / UI_URL_FILE_NAME
    url_file.write_text(content)
    with InstanceLock(tmp_path) as running:
        assert url_file.read_text() == content
        running.publish_ui_url(URL)
        assert url_file.read_text() == content
        with pytest.raises(AlreadyRunning) as refused:
            InstanceLock(tmp_path).acquire()
        assert str(refused.value) == no_ui_message(tmp_path)
    assert url_file.read_text() == content
    assert [record.getMessage() for record in caplog.records] == [
        f"not writing the UI address: {url_file} is not a file of ours"
    ]
    assert sorted(entry.name for entry in tmp_path.iterdir()) in (
        [UI_URL_FILE_NAME],
        [LOCK_FILE_NAME, UI_URL_FILE_NAME],
    ), "no temporary file left behind"


async def test_a_second_peer_cli_is_refused_and_a_killed_one_blocks_nothing(
    tmp_path: Path,
) -> None:
    """Same state folder: the second exits 3 with ``already-running``; after SIGKILL of
    the first, a third starts, and it appends to the same log file."""
    catalog = write_catalog(tmp_path / "catalog.toml")
    build_library(tmp_path / "games", [FixtureGame("quake3")])
    state = tmp_path / "state"
    argv = peer_cli_argv(
        name="solo",
        game_dir=tmp_path / "games",
        state_dir=state,
        catalog=catalog,
        listen="127.0.0.1:0",
        mdns_interfaces=["127.0.0.1"],
    )
    processes: list[JsonlProcess] = []

    async def start(label: str) -> JsonlProcess:
        process = await JsonlProcess.start(
            argv, name=label, stderr_path=tmp_path / f"{label}.stderr"
        )
        processes.append(process)
        return process

    try:
        first = await start("first")
        await first.wait_for("cli-started", START_TIMEOUT)

        second = await start("second")
        await second.exited(REFUSAL_TIMEOUT)
        assert second.returncode == EXIT_ALREADY_RUNNING
        await second.close()
        assert [(e["event"], e["code"], e["message"]) for e in second.events] == [
            ("error", "already-running", no_ui_message(state))
        ]

        assert await first.kill() == KILLED_RETURNCODE
        third = await start("third")
        started = await third.wait_for("cli-started", START_TIMEOUT)
        assert started["name"] == "solo"
        log_file = state / "log" / LOG_FILE_NAME
        stderr = third.stderr_path.read_text()
        assert f"lanspread peer-cli: logging to {log_file}\n" in stderr
        assert log_file.read_text().count("peer server listening on 127.0.0.1:") == 2
        assert await third.close() == 0
    finally:
        for process in processes:
            if process.returncode is None:
                await process.kill()


async def read_until(stream: asyncio.StreamReader, pattern: re.Pattern[str]) -> re.Match[str]:
    """Read lines until one matches ``pattern``."""
    while line := await stream.readline():
        found = pattern.search(line.decode())
        if found:
            return found
    raise AssertionError(f"the stream ended before a line matching {pattern.pattern}")


async def start_app(command: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    """Start the app; return it and its UI address once both start-up lines are out."""
    app = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert app.stderr is not None
    url = (await asyncio.wait_for(read_until(app.stderr, LINK), START_TIMEOUT)).group(1)
    await asyncio.wait_for(read_until(app.stderr, LOGGING_TO), START_TIMEOUT)
    return app, url


LOGGING_TO = re.compile(r"^lanspread: logging to ")


def text_or_none(path: Path) -> str | None:
    """The file's text, or ``None`` while it does not exist (it may vanish meanwhile)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


async def test_a_second_app_points_at_the_running_ones_ui(private_home: Path) -> None:
    """Default folders (a private home): a second ``lanspread`` exits 3 naming the first
    one's UI address; after SIGKILL of the first, a third starts and replaces the dead
    one's address; its clean stop removes the file; all three log to one file."""
    state = private_home / "xdg_state_home" / "lanspread"
    url_file = state / UI_URL_FILE_NAME
    log_file = state / "log" / LOG_FILE_NAME
    command = [sys.executable, "-m", "lanspread", "--no-browser", "--no-demo"]
    apps: list[asyncio.subprocess.Process] = []
    try:
        first, first_url = await start_app([*command, "--listen", "127.0.0.1:0"])
        apps.append(first)
        await wait_until(url_file.exists, "the UI address file", timeout=START_TIMEOUT)

        second = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        apps.append(second)
        _, err = await asyncio.wait_for(second.communicate(), REFUSAL_TIMEOUT)
        assert second.returncode == EXIT_ALREADY_RUNNING
        assert err.decode() == f"lanspread: {ui_message(state, first_url)}\n"

        first.kill()
        assert await asyncio.wait_for(first.wait(), START_TIMEOUT) == KILLED_RETURNCODE
        assert url_file.read_text() == f"{UI_URL_HEADER}\n{first_url}\n", "left by the dead"

        third, third_url = await start_app([*command, "--listen", "127.0.0.1:0"])
        apps.append(third)
        assert third_url != first_url, "a new access key per run"
        await wait_until(
            lambda: text_or_none(url_file) == f"{UI_URL_HEADER}\n{third_url}\n",
            "the third app's address in the file",
            timeout=START_TIMEOUT,
        )
        third.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(third.wait(), START_TIMEOUT) == 0
        assert not url_file.exists()
        assert log_file.read_text().count("lanspread stopped: ") == 1, "only the third stopped"
    finally:
        for app in apps:
            if app.returncode is None:
                app.kill()
                await app.wait()


def test_a_state_folder_that_cannot_be_locked_is_a_config_error(tmp_path: Path) -> None:
    """A lock file that cannot be opened (here a folder in its place) is a clear start error."""
    (tmp_path / LOCK_FILE_NAME).mkdir()
    with pytest.raises(ConfigError) as refused:
        InstanceLock(tmp_path).acquire()
    # The reason after the colon is the OS's wording.
    assert str(refused.value).startswith(f"cannot lock the state folder {tmp_path}: ")
