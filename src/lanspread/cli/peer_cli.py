"""``lanspread peer-cli``: a headless peer driven by JSON Lines.

One JSON command per line on stdin (``{"cmd": "status", "id": 1}``), one JSON
event per line on stdout (``{"event": "reply", "id": 1, "ok": true, "data": ...}``);
logs go to stderr. A line that is not JSON, an unknown command, a missing field or
a non-catalog game id produces an ``error`` event and the CLI keeps running. End
of stdin shuts the peer down cleanly (goodbyes to peers, then exit).

Commands are parsed through the runtime's command table
(:data:`lanspread.runtime.commands.COMMANDS`) and errors reported with the codes of
:data:`lanspread.errors.PUBLIC_CODES`, exactly as the web API does.

Commands run one at a time in arrival order, so a script can rely on a command's
effect being visible to the next one.

``--demo`` also starts the Demo peer (:mod:`lanspread.demo`) in the same process,
on 127.0.0.1 and without mDNS, and adds the demo games to the catalog. Its
address comes first, in a ``demo-started`` event; a script links to it with the
``connect`` command. That gives a peer with nothing but this one program (a
frozen bundle on a machine with no network) a source to download from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from lanspread.cli.instance import EXIT_ALREADY_RUNNING, InstanceLock
from lanspread.cli.logs import (
    PEER_CLI_LOG_DIR_HELP,
    add_log_arguments,
    file_logging,
    stderr_logging,
)
from lanspread.cli.organizer import resolve_party_code
from lanspread.cli.paths import default_log_dir
from lanspread.core.manifest import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE
from lanspread.core.uploads import MAX_LIMIT, MIN_LIMIT, check_limit
from lanspread.demo import DemoPeer, with_demo_games
from lanspread.errors import (
    AlreadyRunning,
    ConfigError,
    InvalidJson,
    LanspreadError,
    OperationError,
    public_code,
)
from lanspread.runtime.commands import Command, Frontend, decode_object, parse_command
from lanspread.runtime.events import Event
from lanspread.runtime.options import InstallPolicy, RuntimeOptions
from lanspread.runtime.runtime import PeerRuntime
from lanspread.storage.catalog_file import load_catalog
from lanspread.storage.gamedir import prepare_state_dir
from lanspread.storage.settings import Settings, SettingsStore

log = logging.getLogger("lanspread.peer_cli")

# One command is a short JSON object; a megabyte-long line is garbage or an attack.
MAX_COMMAND_LINE = 64 * 1024
# What the reader passes on instead of an over-long line (no JSON starts with NUL).
TOO_LONG = b"\x00too-long"

CorrelationId = str | int | None

Execute = Callable[[Command], Awaitable[msgspec.Struct | None]]
"""What runs a parsed command (:meth:`PeerRuntime.execute`)."""


class CliEvent(msgspec.Struct, frozen=True, tag_field="event"):
    """Events only the CLI emits (runtime events are written as they are)."""


class _PeerListening(CliEvent, frozen=True):
    peer_id: str
    listen_addr: str


class CliStarted(_PeerListening, frozen=True, tag="cli-started"):
    """This peer runs; commands are read from now on."""

    name: str


class DemoStarted(_PeerListening, frozen=True, tag="demo-started"):
    """The Demo peer of ``--demo`` serves its games; ``connect`` to ``listen_addr`` to see them."""


class _Answer(CliEvent, frozen=True):
    id: CorrelationId
    """The command's ``id`` (``null`` when it had none, or the line could not be read)."""


class Reply(_Answer, frozen=True, tag="reply"):
    ok: bool
    data: msgspec.Struct | None
    """The command's reply (``null`` for ``shutdown``)."""


class ErrorEvent(_Answer, frozen=True, tag="error", omit_defaults=True):
    code: str
    """A code of :data:`lanspread.errors.PUBLIC_CODES`."""
    message: str
    reason: str | None = None
    """Which lifecycle rule refused a game command (``core.lifecycle.Refusal``: e.g.
    ``not-installed``); left out when no rule did."""


def error_event(correlation: CorrelationId, exc: BaseException) -> ErrorEvent:
    """The ``error`` event reporting ``exc``."""
    reason = exc.reason if isinstance(exc, OperationError) else None
    return ErrorEvent(id=correlation, code=public_code(exc).code, message=str(exc), reason=reason)


class JsonlWriter:
    """Writes one JSON object per line and flushes, so a driver sees each event at once."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._encoder = msgspec.json.Encoder()

    def write(self, event: Event | CliEvent) -> None:
        self._stream.write(self._encoder.encode(event) + b"\n")
        self._stream.flush()


class CommandReader:
    """Reads stdin lines on a daemon thread (a blocked read never delays exit)."""

    def __init__(self, stream: BinaryIO, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._lines: asyncio.Queue[bytes | None] = asyncio.Queue()

    def start(self) -> None:
        threading.Thread(target=self._pump, name="peer-cli-stdin", daemon=True).start()

    def _pump(self) -> None:
        try:
            while True:
                line = self._stream.readline(MAX_COMMAND_LINE + 1)
                if not line:
                    break
                if len(line) > MAX_COMMAND_LINE and not line.endswith(b"\n"):
                    self._discard_rest_of_line()
                    line = TOO_LONG
                self._post(line)
        except (OSError, ValueError):
            pass
        self._post(None)

    def _discard_rest_of_line(self) -> None:
        while True:
            chunk = self._stream.readline(MAX_COMMAND_LINE)
            if not chunk or chunk.endswith(b"\n"):
                return

    def _post(self, line: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: we are exiting
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)

    async def next_line(self) -> bytes | None:
        return await self._lines.get()


def read_line(line: bytes) -> dict[str, Any]:
    """The JSON object of one line (the reader marks an over-long line)."""
    if line.startswith(TOO_LONG):
        raise InvalidJson(f"line longer than {MAX_COMMAND_LINE} bytes")
    return decode_object(line)


def take_correlation(raw: dict[str, Any]) -> CorrelationId:
    """Remove and return the ``id``; one that is no string or integer is dropped."""
    correlation = raw.pop("id", None)
    if not isinstance(correlation, str | int) or isinstance(correlation, bool):
        return None
    return correlation


async def serve_commands(
    runtime: PeerRuntime, reader: CommandReader, write: Callable[[Event | CliEvent], None]
) -> None:
    while True:
        line = await reader.next_line()
        if line is None:
            log.info("end of input: shutting down")
            runtime.shutdown()
            return
        if not line.strip():
            continue
        await handle_line(runtime.execute, line, write)


async def handle_line(
    execute: Execute, line: bytes, write: Callable[[Event | CliEvent], None]
) -> None:
    """Parse one line, run its command with ``execute`` and write the reply or error."""
    correlation: CorrelationId = None
    try:
        raw = read_line(line)
        correlation = take_correlation(raw)
        command = parse_command(raw, Frontend.PEER_CLI)
        data = await execute(command)
    except Exception as exc:
        if not isinstance(exc, LanspreadError):
            log.exception("command failed unexpectedly: %s", line[:200])
        write(error_event(correlation, exc))
    else:
        write(Reply(id=correlation, ok=True, data=data))


async def run_peer_cli(
    options: RuntimeOptions, stdin: BinaryIO, stdout: BinaryIO, *, demo: bool = False
) -> int:
    """Serve commands until the peer stops; with ``demo``, beside a started Demo peer.

    ``options.catalog`` must already hold the demo games when ``demo`` is set.
    """
    writer = JsonlWriter(stdout)
    if not demo:
        return await _serve_peer(options, stdin, writer)
    peer = DemoPeer(options.catalog)
    try:
        await peer.start()
    except LanspreadError as exc:
        writer.write(error_event(None, exc))
        return 2
    try:
        writer.write(DemoStarted(peer_id=peer.peer_id, listen_addr=peer.listen_addr))
        return await _serve_peer(options, stdin, writer)
    finally:
        await peer.stop()


async def _serve_peer(options: RuntimeOptions, stdin: BinaryIO, writer: JsonlWriter) -> int:
    runtime = PeerRuntime(options)
    events = runtime.subscribe()
    try:
        await runtime.start()
    except LanspreadError as exc:
        writer.write(error_event(None, exc))
        return 2
    writer.write(
        CliStarted(peer_id=runtime.peer_id, listen_addr=runtime.listen_addr, name=runtime.name)
    )
    reader = CommandReader(stdin, asyncio.get_running_loop())
    reader.start()
    async with asyncio.TaskGroup() as group:
        commands = group.create_task(serve_commands(runtime, reader, writer.write))
        async for event in events:
            writer.write(event)
        commands.cancel()
    await runtime.wait_stopped()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="display name other peers see")
    parser.add_argument(
        "--game-dir", required=True, type=Path, help="folder holding one folder per game"
    )
    parser.add_argument(
        "--state-dir", required=True, type=Path, help="folder for identity and caches"
    )
    parser.add_argument("--catalog", type=Path, help="catalog TOML file (default: the bundled one)")
    parser.add_argument("--listen", default="0.0.0.0:0", help="HOST:PORT of the peer listener")
    parser.add_argument(
        "--party",
        metavar="CODE",
        help="join the party with this code (kept in the state folder's settings)",
    )
    parser.add_argument(
        "--mdns-interface",
        action="append",
        dest="mdns_interfaces",
        metavar="ADDR",
        help="run mDNS only on the interface with this address (repeatable; default: all)",
    )
    parser.add_argument(
        "--install-policy",
        choices=[policy.value for policy in InstallPolicy],
        default=InstallPolicy.AUTO.value,
        help="install a game as soon as its download finishes (auto) or on command (manual)",
    )
    add_log_arguments(parser, log_dir_help=PEER_CLI_LOG_DIR_HELP)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also start the local Demo peer with a few small games (see the demo-started event)",
    )
    add_upload_arguments(parser)
    # Every peer hashes at the chunk size a game's size calls for; scenarios whose
    # expectations count chunks of a fixed size pin one (every peer the same).
    parser.add_argument("--chunk-size", type=_chunk_size, default=None, help=argparse.SUPPRESS)


def _chunk_size(text: str) -> int:
    value = int(text)
    if not MIN_CHUNK_SIZE <= value <= MAX_CHUNK_SIZE:
        raise argparse.ArgumentTypeError(
            f"--chunk-size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"
        )
    return value


def add_upload_arguments(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    """``--upload-limit`` and ``--gaming-cap`` (MiB/s) for this start; else the saved ones."""
    parser.add_argument(
        "--upload-limit",
        type=float,
        metavar="MIB_S",
        default=default,
        help="upload at most this many MiB a second in all (0: unlimited; default: as saved)",
    )
    parser.add_argument(
        "--gaming-cap",
        type=float,
        metavar="MIB_S",
        default=default,
        help="while a game started here runs, upload at most this many MiB a second "
        "(0: no cap; default: as saved, else 20)",
    )


def limit_from_mib(value: float, option: str) -> int:
    """``value`` MiB a second as bytes a second, within ``core.uploads``' bounds."""
    rate = round(value * 1024 * 1024) if value >= 0 else -1
    try:
        return check_limit(rate, option)
    except ValueError as exc:
        raise ConfigError(
            f"{option} {value:g}: expected 0 or {MIN_LIMIT // 1024 // 1024}-"
            f"{MAX_LIMIT // 1024 // 1024} MiB/s"
        ) from exc


def upload_limits(args: argparse.Namespace, saved: Settings) -> tuple[int, int]:
    """The upload limit and gaming cap given on the command line, else the saved ones."""
    limit, cap = saved.upload_limit, saved.gaming_upload_cap
    # "lanspread demo" leaves options it was not given out of the namespace.
    if (wanted := getattr(args, "upload_limit", None)) is not None:
        limit = limit_from_mib(wanted, "--upload-limit")
    if (wanted := getattr(args, "gaming_cap", None)) is not None:
        cap = limit_from_mib(wanted, "--gaming-cap")
    return limit, cap


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port_text)


def options_from_args(args: argparse.Namespace) -> RuntimeOptions:
    host, port = parse_listen(args.listen)
    interfaces = tuple(args.mdns_interfaces) if args.mdns_interfaces else None
    return RuntimeOptions(
        game_dir=args.game_dir,
        state_dir=args.state_dir,
        catalog=load_catalog(args.catalog),
        name=args.name,
        listen_host=host,
        listen_port=port,
        mdns_interfaces=interfaces,
        install_policy=InstallPolicy(args.install_policy),
        chunk_size=args.chunk_size,
    )


def main(args: argparse.Namespace) -> int:
    with stderr_logging(args.log_level), contextlib.ExitStack() as stack:
        writer = JsonlWriter(sys.stdout.buffer)
        try:
            options = options_from_args(args)
            options = replace(options, state_dir=prepare_state_dir(options.state_dir))
            options = replace(options, party_code=resolve_party_code(options.state_dir, args.party))
            limit, cap = upload_limits(args, SettingsStore(options.state_dir).load_or_default())
            options = replace(options, upload_limit=limit, gaming_upload_cap=cap)
            # The lock comes before the log file: a second instance must not write
            # to, or rotate, the running one's file.
            stack.enter_context(InstanceLock(options.state_dir))
            if args.demo:
                options = replace(options, catalog=with_demo_games(options.catalog))
        except LanspreadError as exc:
            writer.write(error_event(None, exc))
            return EXIT_ALREADY_RUNNING if isinstance(exc, AlreadyRunning) else 2
        log_dir = args.log_dir or default_log_dir(options.state_dir)
        log_file = stack.enter_context(file_logging(log_dir, args.log_level))
        if log_file is not None:
            print(f"lanspread peer-cli: logging to {log_file}", file=sys.stderr, flush=True)
        # The stdin thread may still be blocked in a read when we exit. It reads through
        # a private reader on fd 0, never closed: had it locked sys.stdin's own buffer,
        # interpreter shutdown would abort on that lock ("could not acquire lock").
        stdin = open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115
        return asyncio.run(run_peer_cli(options, stdin, sys.stdout.buffer, demo=args.demo))
