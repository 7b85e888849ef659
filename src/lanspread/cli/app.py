"""The ``lanspread`` command: the desktop app, and its ``peer-cli`` sibling."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from lanspread import __version__
from lanspread.cli import peer_cli
from lanspread.cli.paths import default_game_dir, default_state_dir
from lanspread.errors import LanspreadError
from lanspread.runtime.events import (
    Event,
    LocalReady,
    PeerDiscovered,
    PeerLost,
    RuntimeFailed,
)
from lanspread.runtime.options import RuntimeOptions, default_display_name
from lanspread.runtime.runtime import PeerRuntime
from lanspread.storage.catalog_file import load_catalog

log = logging.getLogger("lanspread")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lanspread",
        description="Share, download, install and play the games of a LAN party, peer to peer.",
    )
    parser.add_argument("--version", action="version", version=f"lanspread {__version__}")
    parser.add_argument(
        "--game-dir", type=Path, default=None, help="folder with one folder per game"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="folder for identity and caches"
    )
    parser.add_argument("--catalog", type=Path, help="catalog TOML file (default: the bundled one)")
    parser.add_argument("--name", default=None, help="display name other players see")
    parser.add_argument("--listen", default="0.0.0.0:0", help="HOST:PORT of the peer listener")
    parser.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    sub = parser.add_subparsers(dest="command")
    cli = sub.add_parser("peer-cli", help="headless peer driven by JSON Lines on stdin/stdout")
    peer_cli.add_arguments(cli)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "peer-cli":
        return peer_cli.main(args)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        host, port = peer_cli.parse_listen(args.listen)
        options = RuntimeOptions(
            game_dir=args.game_dir or default_game_dir(),
            state_dir=args.state_dir or default_state_dir(),
            catalog=load_catalog(args.catalog),
            name=args.name or default_display_name(),
            listen_host=host,
            listen_port=port,
        )
        return asyncio.run(run_app(options))
    except LanspreadError as exc:
        print(f"lanspread: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def run_app(options: RuntimeOptions) -> int:
    runtime = PeerRuntime(options)
    events = runtime.subscribe()
    await runtime.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no loop signal handlers
            loop.add_signal_handler(sig, runtime.shutdown)
    failed = False
    async for event in events:
        report(event)
        failed = failed or isinstance(event, RuntimeFailed)
    await runtime.wait_stopped()
    return 1 if failed else 0


def report(event: Event) -> None:
    match event:
        case LocalReady():
            log.info(
                "ready: peer %s listening on %s, %d games in %s",
                event.peer_id,
                event.listen_addr,
                event.games,
                event.game_dir,
            )
        case PeerDiscovered():
            log.info("peer %s (%s) at %s", event.name, event.peer_id, event.addr)
        case PeerLost():
            log.info("peer %s left (%s)", event.peer_id, event.reason)
        case RuntimeFailed():
            log.error("runtime failed in %s: %s", event.component, event.error)
        case _:
            log.debug("%s", event)
