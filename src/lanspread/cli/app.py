"""The ``lanspread`` command: the desktop app, and its ``peer-cli`` sibling.

``lanspread`` starts the peer and its web UI on 127.0.0.1 and opens the UI in the
browser with the per-run access link (``--no-browser`` only prints the link, for
headless hosts). The display name and game directory come from the command line,
else from the saved settings, else from defaults the first-run screen offers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import webbrowser
from pathlib import Path

from lanspread import __version__
from lanspread.cli import peer_cli
from lanspread.cli.paths import default_game_dir, default_state_dir
from lanspread.errors import ConfigError, LanspreadError
from lanspread.runtime.events import (
    Event,
    LocalReady,
    PeerDiscovered,
    PeerLost,
    RuntimeFailed,
)
from lanspread.runtime.options import RuntimeOptions, default_display_name
from lanspread.storage.catalog_file import load_catalog
from lanspread.storage.settings import SettingsStore
from lanspread.web.server import WebUI, describe
from lanspread.web.viewmodel import RuntimeState

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
    parser.add_argument(
        "--ui-port", type=int, default=0, help="port of the local web UI (default: any free one)"
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open the browser; print the UI link instead (headless hosts)",
    )
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
        if not 0 <= args.ui_port <= 65535:
            raise ConfigError(f"--ui-port {args.ui_port}: expected 0-65535")
        state_dir = args.state_dir or default_state_dir()
        settings = SettingsStore(state_dir)
        saved = settings.load_or_default()
        options = RuntimeOptions(
            game_dir=args.game_dir or _saved_path(saved.game_dir) or default_game_dir(),
            state_dir=state_dir,
            catalog=load_catalog(args.catalog),
            name=args.name or saved.display_name or default_display_name(),
            listen_host=host,
            listen_port=port,
        )
        setup_needed = not saved.complete and not (args.game_dir and args.name)
        return asyncio.run(
            run_app(
                options,
                settings,
                setup_needed=setup_needed,
                ui_port=args.ui_port,
                open_browser=not args.no_browser,
            )
        )
    except LanspreadError as exc:
        print(f"lanspread: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _saved_path(value: str | None) -> Path | None:
    return Path(value) if value else None


async def run_app(
    options: RuntimeOptions,
    settings: SettingsStore,
    *,
    setup_needed: bool,
    ui_port: int,
    open_browser: bool,
) -> int:
    ui = WebUI(options, settings, setup_needed=setup_needed, on_event=report)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no loop signal handlers
            loop.add_signal_handler(sig, ui.stop)

    async def ready(url: str) -> None:
        print(f"lanspread is running; open {url}", file=sys.stderr, flush=True)
        if open_browser and not await asyncio.to_thread(webbrowser.open, url):
            log.warning("no browser could be started; open the link above yourself")

    ended = await ui.serve(port=ui_port, on_ready=ready)
    log.info("lanspread stopped: %s", describe(ended))
    return 1 if ended.state is RuntimeState.FAILED else 0


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
