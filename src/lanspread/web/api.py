"""The local web UI server: the page, its API and its live view stream.

Routes (all behind :func:`~lanspread.web.security.guard_middleware`)::

    GET  /  /app.js  /app.css  /downloads.js   the page (public: it holds no data)
    POST /api/session                 trade the launch token for the session cookie
    GET  /api/view                    the whole view model
    GET  /api/stream                  WebSocket: the view model on connect and on change
    POST /api/command                 a runtime command: {"cmd": "download", "game": "x"}
    POST /api/settings                display name, game directory, upload limits
    POST /api/restart                 a new runtime with the same options
    POST /api/games/{id}/open-folder  show the game root in the file manager (or say where)
    POST /api/folders                 the folder picker: subfolders of a path, free space
    POST /api/games/{id}/uninstall-plan  the uninstall dialog, from the runtime's dry run
    POST /api/games/{id}/verify       Verify files, as the detail view shows the result
    GET  /api/covers/{id}             a catalog game's cover image

Replies are ``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {"code", "message"}}``.
Commands are parsed through the runtime's command table
(:data:`lanspread.runtime.commands.COMMANDS`: every command but ``set-game-dir``,
which the settings route does) and errors reported with the codes and statuses of
:data:`lanspread.errors.PUBLIC_CODES`, exactly as the peer CLI does.

The stream sends ``{"type": "view", "seq": n, "view": {...}}``. Changes are
coalesced: the view is rebuilt at most every :data:`COALESCE_INTERVAL` seconds,
and each stream sends only the newest view, so a slow tab never delays another.
Progress samples are changes like any other and travel the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import WSCloseCode, web

from lanspread.core.catalog import is_valid_game_id
from lanspread.core.lifecycle import Command, Refusal
from lanspread.errors import (
    BadRequest,
    ConfigError,
    InvalidGameState,
    InvalidJson,
    LanspreadError,
    UnknownGame,
)
from lanspread.platform.files import open_folder
from lanspread.runtime.commands import (
    AnyCommand,
    Frontend,
    GameCommand,
    SetGameDir,
    SetUploadLimit,
    Uninstall,
    Verify,
    command_name,
    decode_object,
    parse_command,
)
from lanspread.runtime.events import Event
from lanspread.runtime.options import RuntimeOptions
from lanspread.runtime.replies import UninstallPlan, VerifyReply
from lanspread.runtime.runtime import GameDirReply, PeerRuntime
from lanspread.storage.gamedir import prepare_game_dir
from lanspread.storage.settings import Settings, SettingsStore, clean_display_name
from lanspread.web.covers import read_cover
from lanspread.web.host import RuntimeFactory, RuntimeHost
from lanspread.web.local_routes import FolderOpener, LocalRoutes
from lanspread.web.replies import error_response, ok_response, per_game
from lanspread.web.security import (
    LOOPBACK_HOST,
    AccessGuard,
    add_security_headers,
    guard_middleware,
    refusal,
)
from lanspread.web.settings_form import (
    SettingsReply,
    SettingsRequest,
    bounded_limit,
    game_dir_from_form,
)
from lanspread.web.state import UiState
from lanspread.web.viewmodel import (
    OPTIMISTIC_COMMANDS,
    RuntimeFacts,
    RuntimeState,
    UninstallDialogView,
    VerifyView,
    ViewModel,
    build_view,
    uninstall_dialog,
    unrecorded_verify_view,
    verify_view,
)

log = logging.getLogger(__name__)

# Ten redraws a second look instant; more only burns CPU during a fast download.
COALESCE_INTERVAL = 0.1


# How often the rates of the status line and the peers panel are looked at: rates are
# averaged over seconds (core.uploads.RATE_WINDOW), so once a second follows them.
RATE_REFRESH_INTERVAL = 1.0
# A command or settings body is a short JSON object.
MAX_REQUEST_BYTES = 64 * 1024
# The page never sends on the stream; anything beyond a ping frame is refused.
MAX_STREAM_MESSAGE = 4 * 1024
# A player has a tab or two open; a bound keeps a runaway reconnect loop harmless.
MAX_STREAMS = 16
# Detects a tab that vanished without closing its socket (laptop lid, killed browser).
STREAM_HEARTBEAT = 20.0
STATIC_FILES = {
    "/": ("index.html", "text/html"),
    "/index.html": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/app.css": ("app.css", "text/css"),
    "/downloads.js": ("downloads.js", "text/javascript"),
}


class StreamMessage(msgspec.Struct, frozen=True, tag_field="type", tag="view"):
    seq: int
    view: ViewModel


class SessionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: str


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise InvalidJson(f"not valid JSON: {exc}") from exc


def _static_dir() -> Any:
    return resources.files("lanspread.web").joinpath("static")


class _Stream:
    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
        self.wake = asyncio.Event()


class WebUI:
    """The runtime host plus the page, its API and its stream."""

    def __init__(
        self,
        options: RuntimeOptions,
        settings: SettingsStore,
        *,
        setup_needed: bool,
        guard: AccessGuard | None = None,
        factory: RuntimeFactory = PeerRuntime,
        opener: FolderOpener = open_folder,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.guard = guard if guard is not None else AccessGuard()
        self.store = UiState()
        self.host = RuntimeHost(
            options, self.store, self.notify, factory=factory, on_event=on_event
        )
        self._settings = settings
        self._setup_needed = setup_needed
        self._opener = opener
        self._dirty = asyncio.Event()
        self._seq = 0
        self._latest: bytes | None = None
        self._renaming: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._streams: set[_Stream] = set()
        self._static = {
            path: (_static_dir().joinpath(name).read_bytes(), kind)
            for path, (name, kind) in STATIC_FILES.items()
        }
        self.app = self._build_app()

    # -- wiring ------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[guard_middleware(self.guard)], client_max_size=MAX_REQUEST_BYTES
        )
        app.on_response_prepare.append(add_security_headers)
        for path in STATIC_FILES:
            app.router.add_get(path, self._static_file)
        app.router.add_post("/api/session", self._session)
        app.router.add_get("/api/view", self._view)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_post("/api/command", self._command)
        app.router.add_post("/api/settings", self._save_settings)
        app.router.add_post("/api/restart", self._restart)
        LocalRoutes(self.host, self._opener).register(app)
        app.router.add_post("/api/games/{game}/uninstall-plan", per_game(self._uninstall_dialog))
        app.router.add_post("/api/games/{game}/verify", per_game(self._verify_view))
        app.router.add_get("/api/covers/{game}", self._cover)
        return app

    async def serve(
        self, *, port: int = 0, on_ready: Callable[[str], Awaitable[None]] | None = None
    ) -> RuntimeFacts:
        """Listen on 127.0.0.1, run until the runtime stops; returns how it ended."""
        runner = web.AppRunner(self.app, access_log=None, handler_cancellation=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, LOOPBACK_HOST, port)
            try:
                await site.start()
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {LOOPBACK_HOST}:{port}: {exc.strerror or exc}"
                ) from exc
            self.guard.bind(_bound_port(runner))
            if on_ready is not None:
                await on_ready(self.guard.launch_url)
            await self.run_services()
        finally:
            await self.drop_streams()
            await runner.cleanup()
        return self.host.state

    async def run_services(self) -> None:
        """The runtime host and the view publisher; returns when the runtime stops."""
        async with asyncio.TaskGroup() as group:
            publisher = group.create_task(self._publish_views(), name="web:publisher")
            rates = group.create_task(self._follow_rates(), name="web:rates")
            try:
                await self.host.run()
            finally:
                publisher.cancel()
                rates.cancel()

    async def _follow_rates(self) -> None:
        """Redraw when the status line would change: rates move without any event."""
        shown: str | None = None
        while True:
            await asyncio.sleep(RATE_REFRESH_INTERVAL)
            with contextlib.suppress(LanspreadError):  # between states: an event redraws
                transfer = self.view().transfer
                if (line := transfer.line if transfer else None) != shown:
                    shown = line
                    self.notify()

    def stop(self) -> None:
        if self._renaming is not None:
            self._renaming.cancel()
        self.host.stop()

    # -- views -----------------------------------------------------------------------------

    def notify(self) -> None:
        """Something the view shows may have changed; redraw soon."""
        self._dirty.set()
        self._changed.set()

    def view(self) -> ViewModel:
        """The view model of the facts as they are; changes nothing (see :meth:`refresh`)."""
        return build_view(self.host.view_input(setup_needed=self._setup_needed))

    def refresh(self) -> None:
        """Bring the store's overlays in line with the runtime's snapshots, before a view."""
        self.host.reconcile()

    def _next_message(self) -> bytes:
        """The next stream message: a fresh view under the next sequence number."""
        self.refresh()
        self._seq += 1
        return msgspec.json.encode(StreamMessage(seq=self._seq, view=self.view()))

    async def _publish_views(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self._latest = self._next_message()
            for stream in self._streams:
                stream.wake.set()
            await asyncio.sleep(COALESCE_INTERVAL)

    async def drop_streams(self) -> None:
        """Close every stream (the page reconnects by itself); used at shutdown and in tests."""
        for stream in list(self._streams):
            await stream.socket.close(code=WSCloseCode.SERVICE_RESTART, message=b"dropped")

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    # -- handlers ----------------------------------------------------------------------------

    async def _static_file(self, request: web.Request) -> web.Response:
        body, kind = self._static[request.path]
        return web.Response(
            body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "no-cache"}
        )

    async def _session(self, request: web.Request) -> web.Response:
        try:
            session = _decode(await request.read(), SessionRequest)
        except LanspreadError as exc:
            return error_response(exc)
        if not self.guard.token_matches(session.token):
            return refusal(401, "unauthorized", "this link's access key is not valid any more")
        response = ok_response()
        self.guard.set_session_cookie(response)
        return response

    async def _view(self, request: web.Request) -> web.Response:
        self.refresh()
        return web.Response(body=msgspec.json.encode(self.view()), content_type="application/json")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if len(self._streams) >= MAX_STREAMS:
            return refusal(503, "too-many-streams", f"at most {MAX_STREAMS} open windows")
        socket = web.WebSocketResponse(heartbeat=STREAM_HEARTBEAT, max_msg_size=MAX_STREAM_MESSAGE)
        await socket.prepare(request)
        stream = _Stream(socket)
        self._streams.add(stream)
        try:
            async with asyncio.TaskGroup() as group:
                sender = group.create_task(self._send_views(stream), name="web:stream-sender")
                async for _message in socket:
                    pass  # the page never sends; this loop ends when the socket closes
                sender.cancel()
        finally:
            self._streams.discard(stream)
        return socket

    async def _send_views(self, stream: _Stream) -> None:
        payload = self._next_message()
        while True:
            try:
                await stream.socket.send_str(payload.decode("utf-8"))
            except (ConnectionError, RuntimeError):
                return  # the socket closed under us; the handler's loop ends too
            await stream.wake.wait()
            stream.wake.clear()
            if self._latest is not None:
                payload = self._latest

    async def _command(self, request: web.Request) -> web.Response:
        try:
            command = parse_command(decode_object(await request.read()), Frontend.WEB)
        except LanspreadError as exc:
            return error_response(exc)
        pending = _optimistic(command)
        if pending is not None:
            self.store.mark_pending(*pending)
            self.notify()
        try:
            data = await self.host.runtime.execute(command)
        except Exception as exc:
            if not isinstance(exc, LanspreadError):
                log.exception("command %s failed unexpectedly", command_name(type(command)))
            return error_response(exc)
        finally:
            if pending is not None and self.store.clear_pending(*pending):
                self.notify()
        return ok_response(data)

    async def _save_settings(self, request: web.Request) -> web.Response:
        try:
            reply = await self._apply_settings(_decode(await request.read(), SettingsRequest))
        except LanspreadError as exc:
            return error_response(exc)
        return ok_response(reply)

    async def _apply_settings(self, wanted: SettingsRequest) -> SettingsReply:
        if self.host.state.state in {RuntimeState.FAILED, RuntimeState.STOPPED}:
            return await self._settings_for_stopped_peer(wanted)
        runtime = self.host.runtime
        current_name = runtime.name
        name = _wanted_name(wanted, current_name)
        renaming = name != current_name
        # A new name needs a restart; one that would cut a download or an install short
        # waits until they are over (the name is saved now).
        later = renaming and bool(runtime.local.operations.snapshot())
        game_dir = str(runtime.local.game_dir)
        if wanted.upload_limit is not None or wanted.gaming_upload_cap is not None:
            await runtime.execute(
                SetUploadLimit(
                    upload_limit=wanted.upload_limit, gaming_cap=wanted.gaming_upload_cap
                )
            )
        limit, cap = runtime.network.seeder.upload_limits
        chosen = (
            None if wanted.game_dir is None else game_dir_from_form(wanted.game_dir, Path.home())
        )
        # The form sends the folder with every save: the same one is no change (and no
        # refusal while a download runs, when only the name changed).
        if chosen is not None and chosen != runtime.local.game_dir:
            reply = await runtime.execute(SetGameDir(path=str(chosen)))
            assert isinstance(reply, GameDirReply)
            game_dir = reply.game_dir
            if self.store.game_dir_changed():
                self.notify()
            self.host.update_options(game_dir=Path(game_dir))
        # The party joined with --party stays: the settings form does not show it.
        settings = Settings(
            display_name=name,
            game_dir=game_dir,
            party_code=self.host.options.party_code,
            upload_limit=limit,
            gaming_upload_cap=cap,
        )
        await asyncio.to_thread(self._settings.save, settings)
        self._setup_needed = False
        self.host.update_options(upload_limit=limit, gaming_upload_cap=cap)
        if later:
            self._rename_when_idle(name)
        elif renaming:
            self.host.restart(replace(self.host.options, name=name))
        self.notify()
        return SettingsReply(
            display_name=name,
            game_dir=game_dir,
            restarting=renaming and not later,
            name_later=later,
            upload_limit=limit,
            gaming_upload_cap=cap,
        )

    async def _settings_for_stopped_peer(self, wanted: SettingsRequest) -> SettingsReply:
        """The peer is down (maybe its folder is unusable): validate, save, start it again."""
        options = self.host.options
        name = _wanted_name(wanted, options.name)
        game_dir = options.game_dir
        if wanted.game_dir is not None:
            chosen = game_dir_from_form(wanted.game_dir, Path.home())
            game_dir = await asyncio.to_thread(prepare_game_dir, chosen)
        limit = bounded_limit(wanted.upload_limit, options.upload_limit, "upload limit")
        cap = bounded_limit(wanted.gaming_upload_cap, options.gaming_upload_cap, "gaming-now cap")
        await asyncio.to_thread(
            self._settings.save,
            Settings(
                display_name=name,
                game_dir=str(game_dir),
                party_code=options.party_code,
                upload_limit=limit,
                gaming_upload_cap=cap,
            ),
        )
        self._setup_needed = False
        options = replace(options, upload_limit=limit, gaming_upload_cap=cap)
        self.host.restart(replace(options, name=name, game_dir=game_dir))
        self.notify()
        return SettingsReply(
            display_name=name,
            game_dir=str(game_dir),
            restarting=True,
            upload_limit=limit,
            gaming_upload_cap=cap,
        )

    def _rename_when_idle(self, name: str) -> None:
        """Restart under ``name`` once no operation runs (a newer choice replaces it)."""
        if self._renaming is not None:
            self._renaming.cancel()

        async def wait_then_restart() -> None:
            while self.host.runtime.local.operations.snapshot():
                self._changed.clear()
                await self._changed.wait()  # every operation change redraws the view
            self.host.restart(replace(self.host.options, name=name))

        self._renaming = asyncio.create_task(wait_then_restart(), name="web:rename")

    async def _restart(self, request: web.Request) -> web.Response:
        try:
            self.host.restart()
        except LanspreadError as exc:
            return error_response(exc)
        return ok_response(status=202)

    async def _uninstall_dialog(self, game_id: str) -> UninstallDialogView:
        """One dry run (it reads every game file): what goes, and what keeping would keep."""
        runtime = self.host.runtime
        name = _game_name(runtime, game_id)
        plan = await runtime.execute(Uninstall(game=game_id, dry_run=True))
        assert isinstance(plan, UninstallPlan)
        return uninstall_dialog(name, plan)

    async def _verify_view(self, game_id: str) -> VerifyView:
        runtime = self.host.runtime
        name = _game_name(runtime, game_id)
        try:
            reply = await runtime.execute(Verify(game=game_id))
        except InvalidGameState as exc:
            if exc.reason != Refusal.NO_INSTALL_RECORD.value:
                raise
            # Installed without a record: say so, and offer the repair that makes one.
            return unrecorded_verify_view(
                game_id, name, repairable=_allows(runtime, game_id, Command.REPAIR)
            )
        assert isinstance(reply, VerifyReply)
        return verify_view(name, reply, repairable=_allows(runtime, game_id, Command.REPAIR))

    async def _cover(self, request: web.Request) -> web.Response:
        game_id = request.match_info["game"]
        cover = await asyncio.to_thread(read_cover, self.host.options.catalog, game_id)
        if cover is None:
            return refusal(404, "no-cover", f"{game_id!r} has no cover image")
        body, content_type = cover
        return web.Response(body=body, content_type=content_type)


def _optimistic(command: AnyCommand) -> tuple[str, str] | None:
    """``(game, command name)`` to mark pending for a click on ``command``, if any."""
    if not isinstance(command, GameCommand):
        return None
    name = command_name(type(command))
    return (command.game, name) if name in OPTIMISTIC_COMMANDS else None


def _wanted_name(wanted: SettingsRequest, current: str) -> str:
    """The name the form asks for: ``current`` when the form leaves it out, and an empty
    one refused (never silently replaced by the host name)."""
    return current if wanted.display_name is None else clean_display_name(wanted.display_name)


def _allows(runtime: PeerRuntime, game_id: str, command: Command) -> bool:
    """The runtime would accept ``command`` for the game now (its snapshot says so)."""
    view = next((view for view in runtime.games() if view.id == game_id), None)
    return view is not None and command in view.actions


def _game_name(runtime: PeerRuntime, game_id: str) -> str:
    """The catalog name of ``game_id``; :class:`UnknownGame` for anything else."""
    game = runtime.local.catalog.get(game_id) if is_valid_game_id(game_id) else None
    if game is None:
        raise UnknownGame(f"{game_id!r} is not a game of the catalog")
    return game.name


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise ConfigError("the UI server has no listening address")


def describe(state: RuntimeFacts) -> str:
    """How a runtime ended, for the command line."""
    if state.state is RuntimeState.FAILED:
        return f"failed in {state.component}: {state.error}"
    return str(state.state.value)
