"""The ``lanspread`` command: the desktop app, and its ``peer-cli`` sibling.

``lanspread`` starts the peer and its web UI on 127.0.0.1 and opens the UI in the
browser with the per-run access link (``--no-browser`` only prints the link, for
headless hosts). The display name and game directory come from the command line,
else from the saved settings, else from defaults the first-run screen offers.

``lanspread demo`` (or ``--demo``) also starts a second local peer, the "Demo
peer", offering a few small generated games (:mod:`lanspread.demo`). It never
starts by itself: at a real party a newcomer sees only the real players.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from lanspread import __version__
from lanspread.cli import organizer, peer_cli
from lanspread.cli.instance import EXIT_ALREADY_RUNNING, InstanceLock
from lanspread.cli.logs import add_log_arguments, file_logging, stderr_logging
from lanspread.cli.paths import default_game_dir, default_log_dir, default_state_dir
from lanspread.demo import DemoMode, DemoPeer, choose_demo_mode, with_demo_games
from lanspread.errors import AlreadyRunning, ConfigError, LanspreadError
from lanspread.runtime.events import (
    Event,
    LocalReady,
    PeerDiscovered,
    PeerLost,
    RuntimeFailed,
)
from lanspread.runtime.options import RuntimeOptions, default_display_name
from lanspread.storage.catalog_file import load_catalog
from lanspread.storage.gamedir import prepare_state_dir
from lanspread.storage.settings import SettingsStore
from lanspread.web.api import WebUI, describe
from lanspread.web.viewmodel import RuntimeFacts, RuntimeState

log = logging.getLogger("lanspread")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lanspread",
        description="Share, download, install and play the games of a LAN party, peer to peer.",
    )
    parser.add_argument("--version", action="version", version=f"lanspread {__version__}")
    add_app_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    cli = sub.add_parser("peer-cli", help="headless peer driven by JSON Lines on stdin/stdout")
    peer_cli.add_arguments(cli)
    demo = sub.add_parser(
        "demo",
        help="the app plus a local Demo peer offering a few small games to try everything",
        description=(
            "Start lanspread with a second peer on this computer, the Demo peer, which "
            "offers a few small generated games: download, install and play one to see "
            "how lanspread works. The Demo peer and its files go away when you quit."
        ),
    )
    # Options given after "demo" win; options before it stay (SUPPRESS keeps the
    # subcommand's defaults from overwriting them).
    add_app_arguments(demo, defaults=False)
    organizer.add_commands(sub)
    return parser


def add_app_arguments(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """The desktop app's options, for the main command and for ``lanspread demo``."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--game-dir", type=Path, default=default(None), help="folder with one folder per game"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=default(None), help="folder for identity and caches"
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        default=default(None),
        help="catalog TOML file (default: the bundled one)",
    )
    parser.add_argument("--name", default=default(None), help="display name other players see")
    parser.add_argument(
        "--party",
        metavar="CODE",
        default=default(None),
        help="join the party with this code (kept for later starts): only its catalog's "
        "pinned content is accepted",
    )
    parser.add_argument(
        "--listen", default=default("0.0.0.0:0"), help="HOST:PORT of the peer listener"
    )
    add_log_arguments(parser, defaults=defaults)
    peer_cli.add_upload_arguments(parser, default=default(None))
    parser.add_argument(
        "--ui-port",
        type=int,
        default=default(0),
        help="port of the local web UI (default: any free one)",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        default=default(False),
        help="do not open the browser; print the UI link instead (headless hosts)",
    )
    if not defaults:
        return  # "lanspread demo" is the demo: --demo/--no-demo would say nothing or contradict
    parser.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=default(None),
        help=(
            "also start the local Demo peer with a few small games (default: no demo; "
            "'lanspread demo' is the same)"
        ),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "peer-cli":
        return peer_cli.main(args)
    if args.command in {"party", "catalog"}:
        return organizer.main(args)
    with stderr_logging(args.log_level):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The desktop app, once logging goes to stderr: options, instance lock, log file, UI."""
    try:
        host, port = peer_cli.parse_listen(args.listen)
        if not 0 <= args.ui_port <= 65535:
            raise ConfigError(f"--ui-port {args.ui_port}: expected 0-65535")
        state_dir = prepare_state_dir(args.state_dir or default_state_dir())
        # The lock comes before the log file: a second instance must not write to,
        # or rotate, the running one's file.
        log_dir = args.log_dir or default_log_dir(state_dir if args.state_dir else None)
        with (
            InstanceLock(state_dir) as instance,
            file_logging(log_dir, args.log_level) as log_file,
        ):
            settings = SettingsStore(state_dir)
            saved = settings.load_or_default()
            limit, cap = peer_cli.upload_limits(args, saved)
            options = RuntimeOptions(
                game_dir=args.game_dir or _saved_path(saved.game_dir) or default_game_dir(),
                state_dir=state_dir,
                catalog=load_catalog(args.catalog),
                name=args.name or saved.display_name or default_display_name(),
                listen_host=host,
                listen_port=port,
                party_code=organizer.resolve_party_code(state_dir, args.party),
                upload_limit=limit,
                gaming_upload_cap=cap,
            )
            setup_needed = not saved.complete and not (args.game_dir and args.name)
            demo = choose_demo_mode(True if args.command == "demo" else args.demo)

            def ui_ready(url: str) -> None:
                if log_file is not None:
                    print(f"lanspread: logging to {log_file}", file=sys.stderr, flush=True)
                try:
                    instance.publish_ui_url(url)
                except OSError as exc:
                    log.warning("cannot write the UI address for a second start: %s", exc)

            return asyncio.run(
                run_app(
                    options,
                    settings,
                    setup_needed=setup_needed,
                    ui_port=args.ui_port,
                    open_browser=not args.no_browser,
                    demo=demo,
                    on_ui_ready=ui_ready,
                )
            )
    except AlreadyRunning as exc:
        print(f"lanspread: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
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
    demo: DemoMode = DemoMode.OFF,
    on_ui_ready: Callable[[str], None] | None = None,
) -> int:
    """Serve the UI until the runtime stops, with the demo peer beside it when asked.

    SIGINT and SIGTERM stop everything cleanly: the user's peer says goodbye, then
    the demo peer does and its temporary folder is deleted. ``on_ui_ready`` gets the
    UI address once it is printed.
    """
    switch = _StopSwitch()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no loop signal handlers
            loop.add_signal_handler(sig, switch)
    try:
        if demo is DemoMode.OFF:
            return await serve_ui(
                options, settings, switch, setup_needed, ui_port, open_browser, None, on_ui_ready
            )
        peer = await start_demo_peer(options, demo)
        if peer is None:
            return await serve_ui(
                options, settings, switch, setup_needed, ui_port, open_browser, None, on_ui_ready
            )
        try:
            if switch.requested:
                return 0
            demo_options = replace(options, catalog=peer.runtime.local.catalog)
            return await serve_ui(
                demo_options,
                settings,
                switch,
                setup_needed,
                ui_port,
                open_browser,
                peer,
                on_ui_ready,
            )
        finally:
            await peer.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


async def start_demo_peer(options: RuntimeOptions, demo: DemoMode) -> DemoPeer | None:
    """The started demo peer; ``None`` when an automatic demo cannot start (logged)."""
    try:
        peer = DemoPeer(with_demo_games(options.catalog))
        await peer.start()
    except LanspreadError as exc:
        if demo is DemoMode.ON:
            raise
        log.warning("starting without the demo peer: %s", exc)
        return None
    return peer


async def serve_ui(
    options: RuntimeOptions,
    settings: SettingsStore,
    switch: _StopSwitch,
    setup_needed: bool,
    ui_port: int,
    open_browser: bool,
    demo: DemoPeer | None = None,
    on_ui_ready: Callable[[str], None] | None = None,
) -> int:
    def on_event(event: Event) -> None:
        report(event)
        if demo is not None:
            demo.watch(event)

    ui = WebUI(options, settings, setup_needed=setup_needed, on_event=on_event)
    if demo is not None:
        ui.host.demo_peer_id = demo.peer_id
    switch.attach(ui.stop)

    async def ready(url: str) -> None:
        if demo is not None:
            print(
                f"demo mode: the Demo peer offers {len(demo.runtime.local.snapshot.games)} "
                "small games from this computer; it and its files go away when you quit",
                file=sys.stderr,
                flush=True,
            )
        print(f"lanspread is running; open {url}", file=sys.stderr, flush=True)
        if on_ui_ready is not None:
            on_ui_ready(url)
        if open_browser and not await asyncio.to_thread(webbrowser.open, url):
            log.warning("no browser could be started; open the link above yourself")

    if demo is None:
        ended = await ui.serve(port=ui_port, on_ready=ready)
    else:
        ended = await _serve_linked(ui, demo, ui_port, ready)
    log.info("lanspread stopped: %s", describe(ended))
    return 1 if ended.state is RuntimeState.FAILED else 0


async def _serve_linked(
    ui: WebUI, demo: DemoPeer, ui_port: int, ready: Callable[[str], Awaitable[None]]
) -> RuntimeFacts:
    """``ui.serve`` while a task dials the demo peer from each runtime the UI starts."""
    failure: LanspreadError | None = None
    ended = ui.host.state
    async with asyncio.TaskGroup() as group:
        linker = group.create_task(demo.keep_linked(lambda: ui.host.runtime), name="demo:linker")
        try:
            ended = await ui.serve(port=ui_port, on_ready=ready)
        except LanspreadError as exc:
            failure = exc  # raised below: a task group would wrap it in an exception group
        finally:
            linker.cancel()
    if failure is not None:
        raise failure
    return ended


class _StopSwitch:
    """The signal handler: remembers a stop asked for before the UI exists, then stops it."""

    def __init__(self) -> None:
        self.requested = False
        self._stop: Callable[[], None] | None = None

    def attach(self, stop: Callable[[], None]) -> None:
        self._stop = stop
        if self.requested:
            stop()

    def __call__(self) -> None:
        self.requested = True
        if self._stop is not None:
            self._stop()


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
