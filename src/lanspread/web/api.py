"""The local web UI server: the page, its API and its live view stream.

Routes (all behind :func:`~lanspread.web.security.guard_middleware`)::

    GET  /  /app.js  /app.css  /downloads.js   the page (public: it holds no data)
    POST /api/session                 trade the launch token for the session cookie
    GET  /api/view                    the whole view model
    GET  /api/stream                  WebSocket: the view model on connect and on change
    POST /api/command                 a runtime command: {"cmd": "download", "game": "x"}
    POST /api/settings                display name, game directory, upload limits
    POST /api/restart                 a new runtime with the same options
    POST /api/games/{id}/open-folder  show the game root in the file manager
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
    OperationError,
    OperationInProgress,
    UnknownGame,
    public_code,
)
from lanspread.platform.files import open_folder, resolve_game_root
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
from lanspread.storage.catalog_file import BUNDLED_SOURCE
from lanspread.storage.gamedir import prepare_game_dir
from lanspread.storage.settings import Settings, SettingsStore, clean_display_name
from lanspread.web.host import RuntimeFactory, RuntimeHost
from lanspread.web.security import (
    LOOPBACK_HOST,
    AccessGuard,
    add_security_headers,
    guard_middleware,
    refusal,
)
from lanspread.web.settings_form import SettingsReply, SettingsRequest, bounded_limit
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
# Cover art is a picture of a box, not a data set.
MAX_COVER_BYTES = 8 * 1024 * 1024
COVER_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
STATIC_FILES = {
    "/": ("index.html", "text/html"),
    "/index.html": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/app.css": ("app.css", "text/css"),
    "/downloads.js": ("downloads.js", "text/javascript"),
}

FolderOpener = Callable[[Path], Awaitable[None]]


class StreamMessage(msgspec.Struct, frozen=True, tag_field="type", tag="view"):
    seq: int
    view: ViewModel


class Ok(msgspec.Struct, frozen=True):
    data: Any
    ok: bool = True


class SessionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: str


def error_response(exc: BaseException) -> web.Response:
    """A clear JSON error for an exception a request raised (with the lifecycle rule's
    reason when one refused a game command)."""
    public = public_code(exc)
    reason = exc.reason if isinstance(exc, OperationError) else None
    return refusal(public.http_status, public.code, str(exc), reason)


def ok_response(data: Any = None, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(Ok(data=data)), status=status, content_type="application/json"
    )


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
        app.router.add_post("/api/games/{game}/open-folder", _per_game(self._open_folder))
        app.router.add_post("/api/games/{game}/uninstall-plan", _per_game(self._uninstall_dialog))
        app.router.add_post("/api/games/{game}/verify", _per_game(self._verify_view))
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
        self.host.stop()

    # -- views -----------------------------------------------------------------------------

    def notify(self) -> None:
        """Something the view shows may have changed; redraw soon."""
        self._dirty.set()

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
        name = clean_display_name(wanted.display_name) if wanted.display_name else current_name
        renaming = name != current_name
        if renaming:
            busy = sorted(runtime.local.operations.snapshot())
            if busy:
                raise OperationInProgress(
                    f"cannot change the display name while busy: {', '.join(busy)}"
                )
        game_dir = str(runtime.local.game_dir)
        if wanted.upload_limit is not None or wanted.gaming_upload_cap is not None:
            await runtime.execute(
                SetUploadLimit(
                    upload_limit=wanted.upload_limit, gaming_cap=wanted.gaming_upload_cap
                )
            )
        limit, cap = runtime.network.seeder.upload_limits
        if wanted.game_dir is not None:
            if not wanted.game_dir.strip():
                raise ConfigError("choose a folder for the games")
            reply = await runtime.execute(SetGameDir(path=wanted.game_dir.strip()))
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
        if renaming:
            self.host.restart(replace(self.host.options, name=name))
        self.notify()
        return SettingsReply(
            display_name=name,
            game_dir=game_dir,
            restarting=renaming,
            upload_limit=limit,
            gaming_upload_cap=cap,
        )

    async def _settings_for_stopped_peer(self, wanted: SettingsRequest) -> SettingsReply:
        """The peer is down (maybe its folder is unusable): validate, save, start it again."""
        options = self.host.options
        name = clean_display_name(wanted.display_name) if wanted.display_name else options.name
        game_dir = options.game_dir
        if wanted.game_dir is not None:
            if not wanted.game_dir.strip():
                raise ConfigError("choose a folder for the games")
            game_dir = await asyncio.to_thread(prepare_game_dir, Path(wanted.game_dir.strip()))
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

    async def _restart(self, request: web.Request) -> web.Response:
        try:
            self.host.restart()
        except LanspreadError as exc:
            return error_response(exc)
        return ok_response(status=202)

    async def _open_folder(self, game_id: str) -> dict[str, str]:
        local = self.host.runtime.local
        root = await asyncio.to_thread(resolve_game_root, local.game_dir, local.catalog, game_id)
        await self._opener(root)
        return {"path": str(root)}

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

    async def _cover(self, request: web.Request) -> web.StreamResponse:
        game_id = request.match_info["game"]
        catalog = self.host.options.catalog
        game = catalog.get(game_id) if is_valid_game_id(game_id) else None
        if game is None or game.cover is None or catalog.source == BUNDLED_SOURCE:
            return refusal(404, "no-cover", f"{game_id!r} has no cover image")
        folder = Path(catalog.source).parent
        path = await asyncio.to_thread(_cover_file, folder, game.cover)
        if path is None:
            return refusal(404, "no-cover", f"the cover of {game_id!r} cannot be read")
        return web.FileResponse(path, headers={"Content-Type": COVER_TYPES[path.suffix.lower()]})


def _per_game(
    answer: Callable[[str], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A route for ``/api/games/{game}/...``: ``answer(game)`` as data, or the error."""

    async def route(request: web.Request) -> web.Response:
        try:
            data = await answer(request.match_info["game"])
        except LanspreadError as exc:
            return error_response(exc)
        return ok_response(data)

    return route


def _optimistic(command: AnyCommand) -> tuple[str, str] | None:
    """``(game, command name)`` to mark pending for a click on ``command``, if any."""
    if not isinstance(command, GameCommand):
        return None
    name = command_name(type(command))
    return (command.game, name) if name in OPTIMISTIC_COMMANDS else None


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


def _cover_file(folder: Path, relative: str) -> Path | None:
    """The cover file inside the catalog's folder, if it is a picture of a sane size."""
    base = folder.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or path.suffix.lower() not in COVER_TYPES:
        return None
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_size <= MAX_COVER_BYTES:
            return path
    return None


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
