"""The peer CLI and the web API parse commands and report errors through one table each.

Each test drives both front ends through their real command paths (a JSON Lines
line into the CLI's ``handle_line``, a ``POST /api/command`` into the web app)
with the runtime's ``execute`` replaced, and checks both against the tables.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.support.peers import sideload
from tests.support.webui import UiHarness, running_ui

import lanspread.errors
from lanspread.cli.peer_cli import CliEvent, ErrorEvent, Execute, Reply, handle_line
from lanspread.errors import (
    INTERNAL_ERROR,
    PUBLIC_CODES,
    LanspreadError,
    PublicCode,
    public_code,
)
from lanspread.runtime.commands import COMMANDS, AnyCommand, Command, CommandSpec, Frontend
from lanspread.runtime.events import Event

Client = TestClient[web.Request, web.Application]

REPO = Path(__file__).resolve().parents[2]

# A value for every field a command requires; a new field fails the test until added.
SAMPLE_ARGUMENTS: dict[str, Any] = {
    "game": "quake3",
    "addr": "127.0.0.1:9",
    "path": "/srv/games",
    "digest": "ab" * 32,
    "step": 1,
}


@dataclass(frozen=True)
class Answer:
    """What a front end said: a reply's data, or an error's code, message and HTTP status."""

    ok: bool
    code: str | None = None
    message: str | None = None
    status: int | None = None


class Web:
    """The web API of a running UI, its runtime's ``execute`` replaceable."""

    def __init__(self, harness: UiHarness, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
        self.harness = harness
        self.client = client
        self.monkeypatch = monkeypatch
        self.headers = {
            "Authorization": f"Bearer {harness.ui.guard.token}",
            "Origin": f"http://127.0.0.1:{client.server.port}",
        }

    async def send(self, body: bytes, execute: Execute) -> Answer:
        self.monkeypatch.setattr(self.harness.runtime, "execute", execute)
        response = await self.client.post("/api/command", data=body, headers=self.headers)
        reply = await response.json()
        if reply["ok"]:
            return Answer(ok=True)
        error = reply["error"]
        return Answer(False, error["code"], error["message"], response.status)


@pytest.fixture
async def web_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Web]:
    sideload(tmp_path / "alpha" / "games", "quake3")
    async with running_ui(tmp_path, "alpha") as harness:
        server = TestServer(harness.ui.app, host="127.0.0.1")
        async with TestClient(server) as client:
            assert server.port is not None
            harness.ui.guard.bind(server.port)
            yield Web(harness, client, monkeypatch)


async def cli_send(line: bytes, execute: Execute) -> Answer:
    """One line through the peer CLI's command path; its one reply or error event."""
    written: list[Event | CliEvent] = []
    await handle_line(execute, line, written.append)
    [event] = written
    if isinstance(event, Reply):
        return Answer(ok=True)
    assert isinstance(event, ErrorEvent), event
    return Answer(False, event.code, event.message)


def raising(exc: BaseException) -> Execute:
    async def execute(command: Command) -> None:
        raise exc

    return execute


class Recorder:
    """An ``execute`` that keeps the commands it was given and replies with nothing."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    async def __call__(self, command: Command) -> None:
        self.commands.append(command)


def every_error_class() -> list[type[BaseException]]:
    """The tree of lanspread.errors, every subclass the front ends can meet, and a bug."""
    found: list[type[BaseException]] = []
    pending: list[type[BaseException]] = [LanspreadError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return [*sorted(set(found), key=lambda kind: kind.__qualname__), RuntimeError]


def instance_of(kind: type[BaseException]) -> BaseException:
    """An instance with a known message, whatever the class's constructor wants."""
    exc = kind.__new__(kind)
    exc.args = (f"{kind.__name__} happened",)
    return exc


def sample(spec: CommandSpec) -> tuple[dict[str, Any], AnyCommand]:
    """A well-formed command of ``spec``: its JSON object and the struct it parses to."""
    arguments = {
        field.name: SAMPLE_ARGUMENTS[field.name]
        for field in msgspec.structs.fields(spec.kind)
        if field.required
    }
    return arguments, spec.kind(**arguments)


async def test_every_error_class_gets_the_same_code_on_both_front_ends(web_api: Web) -> None:
    """Each exception class a command can raise (the whole tree, the subclasses other
    modules define, and a bug) is reported with its table code by the CLI and the web
    API alike, with its message, and with the table's HTTP status on the web."""
    kinds = every_error_class()
    assert len(kinds) > len(PUBLIC_CODES)  # the subclasses of other modules are in
    for kind in kinds:
        exc = instance_of(kind)
        public = public_code(exc)
        message = f"{kind.__name__} happened"
        cli = await cli_send(b'{"cmd": "status", "id": 1}', raising(exc))
        web_answer = await web_api.send(b'{"cmd": "status"}', raising(exc))
        assert cli == Answer(False, public.code, message), kind
        assert web_answer == Answer(False, public.code, message, public.http_status), kind


def test_every_class_of_the_tree_has_its_own_row() -> None:
    """Every exception class lanspread.errors defines has its own code (none is left to
    inherit one by accident), and nothing else has a row."""
    defined = {
        value
        for value in vars(lanspread.errors).values()
        if isinstance(value, type) and issubclass(value, LanspreadError)
    }
    assert set(PUBLIC_CODES) == defined
    assert public_code(ValueError("x")) == INTERNAL_ERROR == PublicCode("internal-error", 500)


def test_the_readme_lists_every_code() -> None:
    """The README's table of error codes names every code the front ends can report."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    codes = {public.code for public in PUBLIC_CODES.values()} | {INTERNAL_ERROR.code}
    assert sorted(code for code in codes if f"| `{code}` |" not in readme) == []


async def test_both_front_ends_accept_what_the_table_offers_them(web_api: Web) -> None:
    """Every command of the table parses to the same struct on each front end that
    offers it, and is an unknown command (never run) on one that does not."""
    for name, spec in COMMANDS.items():
        arguments, command = sample(spec)
        body = json.dumps({"cmd": name, **arguments}).encode()
        cli_recorder, web_recorder = Recorder(), Recorder()
        answers = {
            Frontend.PEER_CLI: (await cli_send(body, cli_recorder), cli_recorder),
            Frontend.WEB: (await web_api.send(body, web_recorder), web_recorder),
        }
        for frontend, (answer, recorder) in answers.items():
            if frontend in spec.frontends:
                assert (answer, recorder.commands) == (Answer(ok=True), [command]), name
            else:
                refused = Answer(False, "unknown-command", f"unknown command {name!r}")
                if frontend is Frontend.WEB:
                    refused = Answer(False, refused.code, refused.message, 400)
                assert (answer, recorder.commands) == (refused, []), name


def test_the_table_holds_every_command_once() -> None:
    """The table's rows are exactly the runtime's commands; only set-game-dir is left to
    one front end (the web UI changes the folder through its settings form)."""
    assert {spec.kind for spec in COMMANDS.values()} == set(get_args(AnyCommand))
    partial = {name for name, spec in COMMANDS.items() if spec.frontends != set(Frontend)}
    assert partial == {"set-game-dir"}


# Lines no front end accepts: (what, body, code, exact message or None for msgspec's).
BAD_COMMANDS: list[tuple[str, bytes, str, str | None]] = [
    ("not JSON", b"nope", "invalid-json", None),
    ("a JSON array", b"[1, 2]", "invalid-command", "a command must be a JSON object"),
    ("no cmd", b'{"game": "quake3"}', "invalid-command", "missing field 'cmd'"),
    ("unknown command", b'{"cmd": "warp"}', "unknown-command", "unknown command 'warp'"),
    ("cmd not a string", b'{"cmd": 7}', "unknown-command", "unknown command 7"),
    (
        "unknown field",
        b'{"cmd": "status", "extra": 1}',
        "invalid-command",
        "Object contains unknown field `extra`",
    ),
    (
        "missing field",
        b'{"cmd": "connect"}',
        "invalid-command",
        "Object missing required field `addr`",
    ),
    (
        "mistyped field",
        b'{"cmd": "install", "game": 5}',
        "invalid-command",
        "Expected `str`, got `int` - at `$.game`",
    ),
]


@pytest.mark.parametrize(("what", "body", "code", "message"), BAD_COMMANDS)
async def test_both_front_ends_refuse_a_bad_command_alike(
    web_api: Web, what: str, body: bytes, code: str, message: str | None
) -> None:
    """A malformed command gets the same code and message from the CLI and the web API
    (status 400 there), and nothing runs."""
    recorder = Recorder()
    cli = await cli_send(body, recorder)
    web_answer = await web_api.send(body, recorder)
    assert (cli.code, web_answer.code, web_answer.status) == (code, code, 400), what
    assert cli.message == web_answer.message, what
    assert cli.message is not None
    if message is None:
        assert cli.message.startswith("not valid JSON: "), what
    else:
        assert cli.message == message, what
    assert recorder.commands == []
