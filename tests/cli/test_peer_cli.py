"""``lanspread peer-cli`` as a subprocess: its JSON Lines contract, on loopback only.

Every CLI here listens on ``127.0.0.1`` and runs mDNS on loopback alone
(``--mdns-interface 127.0.0.1``), so nothing leaves the machine. Bad input must
give an ``error`` event with a stable code and leave the CLI running; bad start
options must give one ``error`` event naming the problem and exit status 2.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.archives import ArchiveFormat, write_game_root
from tests.support.download_roots import paused_root
from tests.support.fixtures import FixtureGame, build_library, peer_cli_argv, write_catalog
from tests.support.jsonl_process import CommandFailed, Event, JsonlProcess

from lanspread.cli.peer_cli import MAX_COMMAND_LINE

START_TIMEOUT = 20.0
# End of input or shutdown: goodbyes (none here), mDNS goodbye (~0.25 s), exit.
EXIT_BOUND = 5.0


class CliProcess(JsonlProcess):
    """A JsonlProcess that can also write raw bytes (lines no JSON encoder would produce)."""

    async def send_raw(self, data: bytes) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(data)
        await stdin.drain()

    async def exit_status(self, timeout: float = EXIT_BOUND) -> int:  # noqa: ASYNC109
        """Wait for the process to exit on its own; return its status."""
        return await self.exited(timeout)


StartCli = Callable[..., Awaitable[CliProcess]]


@pytest.fixture
async def start_cli(tmp_path: Path) -> AsyncIterator[StartCli]:
    """Start peer-cli processes on loopback; every one is killed at the end of the test."""
    catalog = write_catalog(tmp_path / "catalog.toml")
    build_library(tmp_path / "games", [FixtureGame("quake3")])
    started: list[CliProcess] = []

    async def start(**overrides: Any) -> CliProcess:
        options: dict[str, Any] = {
            "name": "solo",
            "game_dir": tmp_path / "games",
            "state_dir": tmp_path / "state",
            "catalog": catalog,
            "listen": "127.0.0.1:0",
            "mdns_interfaces": ["127.0.0.1"],
        }
        options.update(overrides)
        process = await CliProcess.start(
            peer_cli_argv(**options),
            name=f"peer-cli-{len(started) + 1}",
            stderr_path=tmp_path / f"peer-cli-{len(started) + 1}.stderr",
        )
        assert isinstance(process, CliProcess)  # start() builds cls
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            await process.kill()


async def started(cli: CliProcess) -> Event:
    """Wait until the CLI is up and ready; return its ``cli-started`` event."""
    event = await cli.wait_for("cli-started", START_TIMEOUT)
    await cli.wait_for("local-ready", START_TIMEOUT)
    return event


async def assert_still_running(cli: CliProcess) -> None:
    reply = await cli.request({"cmd": "status"})
    assert (reply["ok"], reply["data"]["games"]) == (True, 1)


async def start_failure(cli: CliProcess) -> Event:
    """The one ``error`` event of a CLI that must refuse to start, after its exit with 2."""
    assert await cli.exit_status(START_TIMEOUT) == 2
    assert [event["event"] for event in cli.events] == ["error"]
    return cli.events[0]


# Lines that are not commands: (what, line, id echoed, code, exact message or None).
# The JSON decoder's own wording is msgspec's, so only its prefix is pinned.
BAD_LINES: list[tuple[str, bytes, Any, str, str | None]] = [
    ("not JSON", b"nope\n", None, "invalid-json", None),
    ("a JSON array", b"[1, 2]\n", None, "invalid-command", "a command must be a JSON object"),
    ("a JSON string", b'"status"\n', None, "invalid-command", "a command must be a JSON object"),
    ("no cmd", b'{"id": 3}\n', 3, "invalid-command", "missing field 'cmd'"),
    (
        "unknown command",
        b'{"cmd": "frobnicate", "id": "u1"}\n',
        "u1",
        "unknown-command",
        "unknown command 'frobnicate'",
    ),
    (
        "missing field",
        b'{"cmd": "connect", "id": 4}\n',
        4,
        "invalid-command",
        "Object missing required field `addr`",
    ),
    (
        "wrong field type",
        b'{"cmd": "connect", "addr": 5, "id": 5}\n',
        5,
        "invalid-command",
        "Expected `str`, got `int` - at `$.addr`",
    ),
    (
        "empty path",
        b'{"cmd": "set-game-dir", "path": "", "id": 6}\n',
        6,
        "invalid-command",
        "Expected `str` of length >= 1 - at `$.path`",
    ),
    (
        "unknown field",
        b'{"cmd": "status", "extra": 1, "id": 7}\n',
        7,
        "invalid-command",
        "Object contains unknown field `extra`",
    ),
    (
        "over-long line",
        b'{"cmd": "status", "pad": "' + b"x" * (MAX_COMMAND_LINE + 10) + b'"}\n',
        None,
        "invalid-json",
        f"line longer than {MAX_COMMAND_LINE} bytes",
    ),
]


async def test_every_bad_line_gets_an_error_and_the_cli_keeps_running(
    start_cli: StartCli,
) -> None:
    """Each malformed line yields one ``error`` event with its code and message, then
    ``status`` still works: not JSON, non-objects, no ``cmd``, unknown commands, missing,
    mistyped and unknown fields, and a line longer than the command bound."""
    cli = await start_cli()
    await started(cli)
    for what, line, correlation, code, message in BAD_LINES:
        await cli.send_raw(line)
        error = await cli.wait_for("error", what=f"the error for {what}")
        assert (error["id"], error["code"]) == (correlation, code), what
        if message is None:
            assert error["message"].startswith("not valid JSON: "), what
        else:
            assert error["message"] == message, what
        await assert_still_running(cli)
    assert cli.returncode is None


async def test_blank_lines_are_ignored(start_cli: StartCli) -> None:
    """Empty and whitespace-only lines produce no event at all."""
    cli = await start_cli()
    await started(cli)
    await cli.send_raw(b"\n   \n\t\n")
    reply = await cli.request({"cmd": "status", "id": "after-blank"})
    assert reply["id"] == "after-blank"
    assert [e for e in cli.events if e["event"] == "error"] == []


@pytest.mark.parametrize("correlation", ["req-1", 42, 0, -7, ""])
async def test_correlation_ids_are_echoed(start_cli: StartCli, correlation: Any) -> None:
    """String and integer ids come back unchanged on replies and on errors."""
    cli = await start_cli()
    await started(cli)
    reply = await cli.request({"cmd": "list-peers", "id": correlation})
    assert (reply["id"], reply["data"]) == (correlation, {"peers": []})
    with pytest.raises(CommandFailed) as failed:
        await cli.request({"cmd": "connect", "addr": "no-port", "id": correlation})
    assert failed.value.event["id"] == correlation


async def test_ids_that_are_not_strings_or_integers_are_dropped(start_cli: StartCli) -> None:
    """A boolean, float, list or missing id is answered with ``id: null``."""
    cli = await start_cli()
    await started(cli)
    for line in (
        b'{"cmd": "status", "id": true}\n',
        b'{"cmd": "status", "id": 1.5}\n',
        b'{"cmd": "status", "id": [1]}\n',
        b'{"cmd": "status"}\n',
    ):
        await cli.send_raw(line)
        reply = await cli.wait_for("reply")
        assert (reply["id"], reply["ok"]) == (None, True), line


async def test_end_of_input_exits_cleanly_and_fast(start_cli: StartCli) -> None:
    """Closing stdin shuts the peer down with status 0 within a few seconds."""
    cli = await start_cli()
    await started(cli)
    began = time.monotonic()
    assert await cli.close(timeout=EXIT_BOUND) == 0
    took = time.monotonic() - began
    print(f"\nexit after end of input: {took:.2f}s")
    assert took < EXIT_BOUND


async def test_shutdown_command_exits_cleanly(start_cli: StartCli) -> None:
    """``shutdown`` is acknowledged and the process exits with status 0 while stdin is open."""
    cli = await start_cli()
    await started(cli)
    reply = await cli.request({"cmd": "shutdown", "id": "bye"})
    assert (reply["id"], reply["ok"], reply["data"]) == ("bye", True, None)
    assert await cli.exit_status() == 0


async def test_cli_started_names_the_peer_and_its_listener(start_cli: StartCli) -> None:
    """``cli-started`` carries the peer id, the bound loopback address and the name."""
    cli = await start_cli(name="solo-peer")
    event = await started(cli)
    host, _, port = event["listen_addr"].rpartition(":")
    assert (event["name"], host, len(event["peer_id"])) == ("solo-peer", "127.0.0.1", 64)
    status = await cli.request({"cmd": "status"})
    assert status["data"]["listen_addr"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize("listen", ["nowhere", "127.0.0.1:99999", "127.0.0.1:port", ""])
async def test_bad_listen_option_is_refused(start_cli: StartCli, listen: str) -> None:
    """A ``--listen`` that is not HOST:PORT ends the CLI with one config error and status 2."""
    error = await start_failure(await start_cli(listen=listen))
    assert (error["code"], error["message"]) == (
        "config-error",
        f"--listen {listen!r}: expected HOST:PORT",
    )


async def test_listen_port_in_use_is_refused(start_cli: StartCli) -> None:
    """A ``--listen`` port another socket holds ends the CLI with a config error naming it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        error = await start_failure(await start_cli(listen=f"127.0.0.1:{port}"))
    assert error["code"] == "config-error"
    assert error["message"] == f"cannot listen on 127.0.0.1:{port}: Address already in use"


async def test_mistyped_party_code_is_refused(start_cli: StartCli) -> None:
    """A ``--party`` that is not a party code ends the CLI with one party error and status 2."""
    error = await start_failure(await start_cli(party="7KQ2-M9XD"))
    assert (error["code"], error["message"]) == (
        "party-error",
        "a party code has 20 characters (like 7KQ2-7KQ2-7KQ2-7KQ2-7KQ2), got 8",
    )


async def test_malformed_catalog_is_refused(start_cli: StartCli, tmp_path: Path) -> None:
    """A catalog with a bad game id ends the CLI with a catalog error naming file, game, field."""
    catalog = tmp_path / "broken.toml"
    catalog.write_text(
        '[[game]]\nid = "Bad Id"\nname = "x"\nsize_bytes = 1\ngenre = "g"\nmax_players = 1\n'
    )
    error = await start_failure(await start_cli(catalog=catalog))
    assert error["code"] == "catalog-error"
    assert error["message"] == (
        f"{catalog}: game #1: field 'id': 'Bad Id' is not a single path component "
        "of [a-z0-9._-] (at most 64 characters)"
    )


async def test_unreadable_catalog_is_refused(start_cli: StartCli, tmp_path: Path) -> None:
    """A catalog path that does not exist ends the CLI with a catalog error naming it."""
    missing = tmp_path / "missing.toml"
    error = await start_failure(await start_cli(catalog=missing))
    assert (error["code"], error["message"]) == (
        "catalog-error",
        f"{missing}: cannot read: No such file or directory",
    )


async def test_game_dir_that_is_a_file_is_refused_at_start(
    start_cli: StartCli, tmp_path: Path
) -> None:
    """A ``--game-dir`` naming a file, or a folder below a file, ends the CLI with status 2."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    error = await start_failure(await start_cli(game_dir=a_file))
    assert (error["code"], error["message"]) == (
        "config-error",
        f"game directory {a_file} is a file, not a folder",
    )
    below = a_file / "games"
    error = await start_failure(await start_cli(game_dir=below, state_dir=tmp_path / "s2"))
    assert (error["code"], error["message"]) == (
        "config-error",
        f"cannot create game directory {below}: Not a directory",
    )


async def test_set_game_dir_to_a_file_is_refused_and_keeps_the_old_dir(
    start_cli: StartCli, tmp_path: Path
) -> None:
    """``set-game-dir`` to a file answers a config error; the peer keeps its game dir."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cli = await start_cli()
    await started(cli)
    with pytest.raises(CommandFailed) as failed:
        await cli.request({"cmd": "set-game-dir", "path": str(a_file)})
    assert (failed.value.event["code"], failed.value.event["message"]) == (
        "config-error",
        f"game directory {a_file} is a file, not a folder",
    )
    status = await cli.request({"cmd": "status"})
    assert (status["data"]["game_dir"], status["data"]["games"]) == (str(tmp_path / "games"), 1)


async def test_verify_reports_what_the_player_changed(start_cli: StartCli, tmp_path: Path) -> None:
    """``verify`` over JSON Lines: changed, missing and added files against the install
    record; a game that is not installed gets an ``invalid-state`` error."""
    root = tmp_path / "games" / "quake3"
    (root / "data.eti").unlink()
    write_game_root(
        root,
        {"game.eti": (ArchiveFormat.ZIP, {"q3.exe": b"exe", "q3config.cfg": b"bind w"})},
    )
    cli = await start_cli()
    await started(cli)
    with pytest.raises(CommandFailed) as refused:
        await cli.request({"cmd": "verify", "game": "quake3"})
    assert (refused.value.event["code"], refused.value.event["message"]) == (
        "invalid-state",
        "Fixture quake3 is not installed",
    )
    await cli.request({"cmd": "install", "game": "quake3"})
    finished = await cli.wait_for("install-finished", START_TIMEOUT)
    assert finished["version"] == "1.0"
    local = root / "local"
    (local / "q3config.cfg").write_bytes(b"bind e")
    (local / "q3.exe").unlink()
    (local / "slot1.sav").write_bytes(b"level 7")
    reply = await cli.request({"cmd": "verify", "game": "quake3"})
    assert reply["data"] == {
        "game": "quake3",
        "version": "1.0",
        "ok": False,
        "changed": ["q3config.cfg"],
        "missing": ["q3.exe"],
        "added": ["slot1.sav"],
        "shipped_files": 2,
    }


async def test_list_games_reports_a_download_paused_by_a_restart(
    start_cli: StartCli, tmp_path: Path
) -> None:
    """``list-games`` carries a journaled download's state as facts to render: paused, why,
    how far and that ``cancel`` can discard it; ``cancel`` then deletes it."""
    shutil.rmtree(tmp_path / "games" / "quake3")
    done, total = paused_root(tmp_path / "games", done=2)
    cli = await start_cli()
    await started(cli)
    reply = await cli.request({"cmd": "list-games"})
    game = next(g for g in reply["data"]["games"] if g["id"] == "quake3")
    assert game["download_state"] == {
        "state": "paused",
        "reason": "restart",
        "message": "interrupted by a restart",
        "done_bytes": done,
        "total_bytes": total,
        "discardable": True,
    }
    assert (game["paused_bytes"], game["paused_total_bytes"]) == (done, total)
    assert (game["state"], game["actions"]) == ("paused", ["download", "cancel"])
    await cli.request({"cmd": "cancel", "game": "quake3"})
    await cli.wait_for("download-cancelled", START_TIMEOUT)
    assert not (tmp_path / "games" / "quake3").exists()
    reply = await cli.request({"cmd": "list-games"})
    game = next(g for g in reply["data"]["games"] if g["id"] == "quake3")
    assert game["download_state"] is None
    assert (game["state"], game["actions"]) == ("unavailable", [])


async def test_a_refused_game_command_names_the_rule(start_cli: StartCli) -> None:
    """A game command the lifecycle table refuses answers with an ``error`` event that
    keeps its code and words and adds the rule's ``reason``; other errors have none."""
    cli = await start_cli()
    await started(cli)
    await cli.send({"cmd": "play", "game": "cs16", "id": "p"})
    error = await cli.wait_for("error")
    assert error == {
        "event": "error",
        "id": "p",
        "code": "invalid-state",
        "message": "Fixture cs16 is not installed",
        "reason": "not-installed",
    }
    await cli.send({"cmd": "play", "game": "doom", "id": "d"})
    error = await cli.wait_for("error")
    assert "reason" not in error
    assert error["code"] == "unknown-game"
