"""The UI server against a real runtime on loopback, through aiohttp's test client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.support.archives import ArchiveFormat, write_game_root
from tests.support.download_roots import paused_root
from tests.support.events import RuntimeEvents
from tests.support.peers import sideload
from tests.support.waiting import wait_until
from tests.support.webui import UiHarness, running_ui

from lanspread.core.catalog import parse_catalog
from lanspread.core.operations import OperationKind
from lanspread.core.party import party_code
from lanspread.core.uploads import DEFAULT_GAMING_CAP, UNLIMITED
from lanspread.runtime.events import (
    DownloadBegin,
    DownloadCancelled,
    DownloadProgress,
    RuntimeFailed,
)
from lanspread.storage.settings import SettingsStore
from lanspread.web.api import MAX_STREAMS
from lanspread.web.viewmodel import RuntimeState

Client = TestClient[web.Request, web.Application]

MIB = 1024 * 1024


class Api:
    """A logged-in page: the token as a bearer header and this server's Origin."""

    def __init__(self, harness: UiHarness, client: Client) -> None:
        self.harness = harness
        self.client = client
        self.origin = f"http://127.0.0.1:{client.server.port}"
        self.headers = {
            "Authorization": f"Bearer {harness.ui.guard.token}",
            "Origin": self.origin,
        }

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await self.client.post(path, data=data, headers=self.headers)
        return response.status, await response.json()

    async def post_plain(self, path: str, body: Any) -> tuple[int, Any]:
        """A POST the way the page sends it before it has a session: Origin only."""
        response = await self.client.post(
            path, data=json.dumps(body).encode(), headers={"Origin": self.origin}
        )
        return response.status, await response.json()

    async def view(self) -> Any:
        response = await self.client.get("/api/view", headers=self.headers)
        assert response.status == 200
        return await response.json()

    def stream(self, **headers: str) -> Any:
        return self.client.ws_connect("/api/stream", headers=headers or self.headers)


@contextlib.asynccontextmanager
async def logged_in(tmp_path: Path, **options: Any) -> AsyncIterator[Api]:
    """alpha's UI (``options`` go to :func:`running_ui`) served on loopback, and a page
    logged in to it."""
    async with running_ui(tmp_path, "alpha", **options) as harness:
        server = TestServer(harness.ui.app, host="127.0.0.1")
        async with TestClient(server) as client:
            assert server.port is not None
            harness.ui.guard.bind(server.port)
            yield Api(harness, client)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    sideload(tmp_path / "alpha" / "games", "quake3")
    async with logged_in(tmp_path, setup_needed=True) as api:
        yield api


def game(view: Any, game_id: str) -> Any:
    return next(card for card in view["games"] if card["id"] == game_id)


async def next_view(socket: aiohttp.ClientWebSocketResponse) -> Any:
    message = await socket.receive(timeout=10)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    payload = json.loads(message.data)
    assert payload["type"] == "view"
    return payload


async def view_where(socket: aiohttp.ClientWebSocketResponse, check: Any) -> Any:
    while True:
        payload = await next_view(socket)
        if check(payload["view"]):
            return payload["view"]


# -- access -----------------------------------------------------------------------------


async def test_view_needs_the_token(api: Api) -> None:
    """The snapshot endpoint answers 401 without the token and the view model with it."""
    response = await api.client.get("/api/view")
    assert response.status == 401
    view = await api.view()
    assert [card["id"] for card in view["games"]] == ["quake3", "aoe2", "cs16", "openttd"]
    assert view["setup"]["needed"] is True
    assert game(view, "quake3")["action"]["kind"] == "install"
    assert view["me"]["name"] == "alpha"


async def test_view_reads_only_and_refresh_reconciles(api: Api) -> None:
    """Building the view changes nothing: a download sample that the runtime's operation
    table contradicts survives any number of views, and goes only in the explicit
    refresh step (which GET /api/view takes before it builds)."""
    ui = api.harness.ui
    ui.store.apply(
        DownloadBegin(game="quake3", version="1.0", total_bytes=10, sources=(), resumed_bytes=0)
    )
    before = ui.store.overlay("quake3")
    assert before.download is not None
    first, second = ui.view(), ui.view()
    assert (first, ui.store.overlay("quake3")) == (second, before)
    ui.refresh()
    assert ui.store.overlay("quake3").download is None
    assert ui.view() == first


async def test_stream_needs_token_and_origin(api: Api) -> None:
    """The stream refuses a missing token (401) and a foreign Origin (403)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as no_token:
        await api.stream(Origin=api.origin)
    assert no_token.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
        await api.stream(Origin="http://evil.example", Authorization=api.headers["Authorization"])
    assert foreign.value.status == 403
    async with api.stream() as socket:
        first = await next_view(socket)
        assert game(first["view"], "quake3")["name"] == "Quake3"


async def test_wrong_host_and_foreign_origin_are_refused(api: Api) -> None:
    """Host and Origin are checked on the real app, before any command runs."""
    evil_host = await api.client.get("/api/view", headers={**api.headers, "Host": "evil.example"})
    assert evil_host.status == 403
    response = await api.client.post(
        "/api/command",
        data=b'{"cmd": "shutdown"}',
        headers={**api.headers, "Origin": "http://evil.example"},
    )
    assert response.status == 403
    assert api.harness.ui.host.state.state is RuntimeState.RUNNING


async def test_session_trades_the_token_for_a_cookie(api: Api) -> None:
    """A right token sets the session cookie; a wrong one is 401 and sets nothing."""
    status, body = await api.post_plain("/api/session", {"token": "wrong"})
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, body = await api.post_plain("/api/session", {"token": api.harness.ui.guard.token})
    assert (status, body) == (200, {"data": None, "ok": True})
    response = await api.client.get("/api/view")
    assert response.status == 200


async def test_page_is_served_with_its_headers(api: Api) -> None:
    """The page and its assets load without the token, with the CSP that forbids inline code."""
    for path, kind in (
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ):
        response = await api.client.get(path)
        assert response.status == 200
        assert response.content_type == kind
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"


# -- commands ------------------------------------------------------------------------------


async def test_command_is_forwarded_to_the_runtime(api: Api) -> None:
    """A command JSON runs on the runtime and its reply comes back as data."""
    status, body = await api.post("/api/command", {"cmd": "status"})
    assert status == 200
    assert body["ok"] is True
    assert body["data"]["peer_id"] == api.harness.runtime.peer_id


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{nope", 400, "invalid-json", None),
        (b"[1]", 400, "invalid-command", "a command must be a JSON object"),
        ({"game": "quake3"}, 400, "invalid-command", "missing field 'cmd'"),
        ({"cmd": "warp", "game": "quake3"}, 400, "unknown-command", "unknown command 'warp'"),
        (
            {"cmd": "status", "extra": 1},
            400,
            "invalid-command",
            "Object contains unknown field `extra`",
        ),
        (
            {"cmd": "install", "game": "doom"},
            404,
            "unknown-game",
            "'doom' is not a game of the catalog",
        ),
        ({"cmd": "uninstall", "game": "quake3"}, 409, "invalid-state", "Quake3 is not installed"),
        (
            {"cmd": "connect", "addr": "127.0.0.1:1"},
            502,
            "connect-failed",
            None,
        ),
    ],
)
async def test_command_errors_are_clear_json(
    api: Api, body: Any, status: int, code: str, message: str | None
) -> None:
    """Malformed commands and runtime refusals map to a status, a code and the message."""
    got_status, reply = await api.post("/api/command", body)
    assert (got_status, reply["ok"], reply["error"]["code"]) == (status, False, code)
    if message is not None:
        assert reply["error"]["message"] == message


async def test_busy_game_dir_change_is_refused(api: Api, tmp_path: Path) -> None:
    """Changing the game folder while an operation runs answers 409 with the runtime's reason."""
    api.harness.runtime.local.begin_operation("quake3", OperationKind.DOWNLOADING)
    status, reply = await api.post(
        "/api/settings", {"display_name": "alpha", "game_dir": str(tmp_path / "elsewhere")}
    )
    assert (status, reply["error"]["code"]) == (409, "operation-in-progress")
    assert reply["error"]["message"] == "cannot change the game directory while busy: quake3"
    assert not SettingsStore(api.harness.options.state_dir).path.exists()


async def test_saving_settings_keeps_the_party_code(tmp_path: Path) -> None:
    """The settings form does not show the party code, and saving it never drops it."""
    code = party_code(bytes(32))
    async with logged_in(tmp_path, setup_needed=True, party_code=code) as api:
        harness = api.harness
        status, _ = await api.post(
            "/api/settings", {"display_name": "alpha", "game_dir": str(tmp_path / "g")}
        )
    assert status == 200
    saved = SettingsStore(harness.options.state_dir).load()
    assert (saved.display_name, saved.party_code) == ("alpha", code)


async def test_settings_finish_first_run_and_persist(api: Api, tmp_path: Path) -> None:
    """Saving settings switches the game folder, stores both choices and ends the first run."""
    new_dir = tmp_path / "lan-games"
    status, reply = await api.post(
        "/api/settings", {"display_name": "  alpha ", "game_dir": str(new_dir)}
    )
    assert status == 200
    assert reply["data"] == {
        "display_name": "alpha",
        "game_dir": str(new_dir),
        "restarting": False,
        "upload_limit": UNLIMITED,
        "gaming_upload_cap": DEFAULT_GAMING_CAP,
        "name_later": False,
    }
    saved = SettingsStore(api.harness.options.state_dir).load()
    assert (saved.display_name, saved.game_dir) == ("alpha", str(new_dir))
    view = await api.view()
    assert view["setup"]["needed"] is False
    assert view["me"]["game_dir"] == str(new_dir)


async def test_upload_limits_are_applied_at_once_kept_and_bounded(api: Api) -> None:
    """The form's limits reach the running data server, the settings file and the view;
    one out of bounds is a 400 naming the bounds and changes nothing."""
    status, reply = await api.post(
        "/api/settings", {"upload_limit": 30 * MIB, "gaming_upload_cap": 5 * MIB}
    )
    assert status == 200
    assert (reply["data"]["upload_limit"], reply["data"]["gaming_upload_cap"]) == (
        30 * MIB,
        5 * MIB,
    )
    saved = SettingsStore(api.harness.options.state_dir).load()
    assert (saved.upload_limit, saved.gaming_upload_cap) == (30 * MIB, 5 * MIB)
    assert api.harness.runtime.uploads().effective_limit == 30 * MIB
    view = await api.view()
    assert (view["transfer"]["upload_limit_mib"], view["transfer"]["gaming_cap_mib"]) == (30, 5)
    assert view["transfer"]["line"] == "Upload 0 B/s (limit 30 MiB/s), download 0 B/s"
    status, reply = await api.post("/api/settings", {"upload_limit": 1000})
    assert (status, reply["error"]["message"]) == (
        400,
        "the upload limit must be 0 (unlimited) or between 1 and 10240 MiB/s",
    )
    assert api.harness.runtime.uploads().upload_limit == 30 * MIB


async def test_bad_settings_are_refused(api: Api, tmp_path: Path) -> None:
    """An empty name, a file as game folder and unknown fields are clear 400 errors."""
    status, reply = await api.post("/api/settings", {"display_name": "   "})
    assert (status, reply["error"]["message"]) == (400, "the display name must not be empty")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    status, reply = await api.post("/api/settings", {"game_dir": str(blocker)})
    assert (status, reply["error"]["message"]) == (
        400,
        f"game directory {blocker} is a file, not a folder",
    )
    status, reply = await api.post("/api/settings", {"colour": "red"})
    assert (status, reply["error"]["code"]) == (400, "invalid-request")


async def test_rename_restarts_the_runtime_with_the_new_name(api: Api) -> None:
    """A new display name takes effect through a fresh runtime, in process."""
    old = api.harness.runtime
    status, reply = await api.post("/api/settings", {"display_name": "Frag Master"})
    assert (status, reply["data"]["restarting"]) == (200, True)
    fresh = await api.harness.wait_running(other_than=old)
    assert fresh.name == "Frag Master"
    assert fresh.peer_id == old.peer_id
    assert (await api.view())["me"]["name"] == "Frag Master"


async def test_rename_while_busy_waits_for_the_operation(api: Api) -> None:
    """A rename restarts the runtime, so during a download it is saved at once and takes
    effect when no operation runs any more."""
    old = api.harness.runtime
    old.local.begin_operation("quake3", OperationKind.DOWNLOADING)
    status, reply = await api.post("/api/settings", {"display_name": "someone"})
    assert (status, reply["data"]["restarting"], reply["data"]["name_later"]) == (
        200,
        False,
        True,
    )
    assert old.name == "alpha"
    assert SettingsStore(api.harness.options.state_dir).load().display_name == "someone"
    await old.local.end_operation("quake3")
    fresh = await api.harness.wait_running(other_than=old)
    assert fresh.name == "someone"


async def test_an_empty_name_is_refused(api: Api) -> None:
    """A blank name is an error the form shows, never the host name in silence."""
    status, reply = await api.post("/api/settings", {"display_name": "   "})
    assert (status, reply["error"]["message"]) == (400, "the display name must not be empty")


# -- live updates and failures ---------------------------------------------------------------


async def test_stream_follows_snapshots_and_progress(api: Api) -> None:
    """An operation and its progress reach the page; the end of the operation clears both."""
    runtime = api.harness.runtime
    async with api.stream() as socket:
        await next_view(socket)
        runtime.local.begin_operation("cs16", OperationKind.DOWNLOADING)
        runtime.publish(
            DownloadProgress(
                game="cs16",
                downloaded_bytes=50,
                total_bytes=200,
                bytes_per_second=12_500_000.0,
                eta_seconds=3.0,
            )
        )
        view = await view_where(socket, lambda v: game(v, "cs16")["action"]["percent"] == 25.0)
        assert game(view, "cs16")["action"]["label"] == "25%"
        assert game(view, "cs16")["action"]["detail"] == "12.5 MB/s"
        await runtime.local.end_operation("cs16")
        view = await view_where(
            socket, lambda v: game(v, "cs16")["action"]["kind"] != "downloading"
        )
        assert game(view, "cs16")["progress"] is None


async def test_dropped_stream_closes_and_a_new_one_gets_the_view(api: Api) -> None:
    """A stream killed by the server closes; a reconnect gets the full view again."""
    async with api.stream() as socket:
        await next_view(socket)
        await api.harness.ui.drop_streams()
        closing = await socket.receive(timeout=10)
        assert closing.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
    await wait_until(lambda: api.harness.ui.stream_count == 0, "the stream to be forgotten")
    async with api.stream() as again:
        assert (await next_view(again))["view"]["games"]


async def test_stream_count_is_bounded(api: Api) -> None:
    """More streams than the bound are refused with 503, the others keep working."""
    sockets = [await api.stream() for _ in range(MAX_STREAMS)]
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.stream()
        assert refused.value.status == 503
    finally:
        for socket in sockets:
            await socket.close()


async def test_runtime_failure_shows_banner_and_restart_recovers(api: Api) -> None:
    """A failed runtime is reported with its reason; commands say so; restart brings it back."""
    old = api.harness.runtime
    old.publish(RuntimeFailed(component="server", error="listener died"))
    old.shutdown()
    await wait_until(
        lambda: api.harness.ui.host.state.state is RuntimeState.FAILED, "the failed state"
    )
    view = await api.view()
    assert view["runtime"] == {
        "state": "failed",
        "message": "The lanspread peer stopped (server): listener died",
        "can_restart": True,
    }
    # Nothing stale: no peers, and no card offers a command the stopped peer cannot run.
    assert view["peers"] == []
    assert {game["action"]["command"] for game in view["games"]} == {None}
    status, reply = await api.post("/api/command", {"cmd": "status"})
    assert (status, reply["error"]["code"]) == (503, "runtime-unavailable")
    status, _ = await api.post("/api/restart", {})
    assert status == 202
    await api.harness.wait_running(other_than=old)
    assert (await api.view())["runtime"]["message"] is None


async def test_settings_revive_a_peer_whose_folder_failed(api: Api, tmp_path: Path) -> None:
    """When the peer cannot start in its folder, choosing another one starts it there."""
    old = api.harness.runtime
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    api.harness.ui.host.update_options(game_dir=blocker)
    old.publish(RuntimeFailed(component="server", error="listener died"))
    old.shutdown()
    await wait_until(lambda: api.harness.ui.host.state.component == "server", "the first failure")
    status, _ = await api.post("/api/restart", {})
    assert status == 202
    await wait_until(lambda: api.harness.ui.host.state.component == "start", "the failed start")
    view = await api.view()
    assert view["runtime"]["message"] == (
        f"The lanspread peer stopped (start): game directory {blocker} is a file, not a folder"
    )
    status, reply = await api.post("/api/settings", {"game_dir": str(blocker)})
    assert (status, reply["error"]["code"]) == (400, "config-error")
    good = tmp_path / "good-games"
    status, reply = await api.post("/api/settings", {"game_dir": str(good)})
    assert (status, reply["data"]["restarting"]) == (200, True)
    fresh = await api.harness.wait_running(other_than=old)
    assert fresh.local.game_dir == good
    assert SettingsStore(api.harness.options.state_dir).load().game_dir == str(good)


async def test_restart_is_refused_while_busy(api: Api) -> None:
    """Restarting a working runtime would kill its operations: refused with the reason."""
    api.harness.runtime.local.begin_operation("quake3", OperationKind.INSTALLING)
    status, reply = await api.post("/api/restart", {})
    assert (status, reply["error"]["message"]) == (409, "cannot restart while busy: quake3")


async def test_view_files_never_follows_a_symlinked_root(api: Api, tmp_path: Path) -> None:
    """A game root that is a symbolic link is not opened: it could point anywhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (api.harness.runtime.local.game_dir / "cs16").symlink_to(elsewhere, target_is_directory=True)
    status, reply = await api.post("/api/games/cs16/open-folder", {})
    assert (status, reply["error"]["message"]) == (
        409,
        "the folder of cs16 is a symbolic link; not opening it",
    )
    assert api.harness.opened == []


# -- files and covers ---------------------------------------------------------------------------


async def test_view_files_opens_the_game_root(api: Api) -> None:
    """View files hands exactly the game's root folder to the file manager."""
    status, reply = await api.post("/api/games/quake3/open-folder", {})
    root = api.harness.runtime.local.game_dir / "quake3"
    assert (status, reply["data"]) == (200, {"path": str(root), "opened": True})
    assert api.harness.opened == [root]


@pytest.mark.parametrize(
    ("game_id", "status", "message"),
    [
        ("doom", 404, "'doom' is not a game of the catalog"),
        ("QUAKE3", 404, "'QUAKE3' is not a game of the catalog"),
        ("cs16", 409, None),
    ],
)
async def test_view_files_refuses_what_is_not_a_game_root(
    api: Api, game_id: str, status: int, message: str | None
) -> None:
    """Non-catalog ids and games without files open nothing."""
    got, reply = await api.post(f"/api/games/{game_id}/open-folder", {})
    assert got == status
    if message is not None:
        assert reply["error"]["message"] == message
    assert api.harness.opened == []


async def test_cover_served_from_the_catalog_folder(tmp_path: Path) -> None:
    """A catalog cover is served from beside the catalog file; a missing one is 404."""
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "q3.png").write_bytes(b"\x89PNG\r\n\x1a\n fake")
    catalog_file = folder / "catalog.toml"
    text = (
        '[[game]]\nid = "quake3"\nname = "Quake"\nsize_bytes = 1\ngenre = "Shooter"\n'
        'max_players = 2\ncover = "q3.png"\n\n'
        '[[game]]\nid = "cs16"\nname = "CS"\nsize_bytes = 1\ngenre = "Shooter"\n'
        'max_players = 2\ncover = "missing.png"\n'
    )
    catalog_file.write_text(text)
    catalog = parse_catalog(text, str(catalog_file))
    async with logged_in(tmp_path, catalog=catalog) as api:
        harness = api.harness
        client = api.client
        auth = {"Authorization": f"Bearer {harness.ui.guard.token}"}
        cover = await client.get("/api/covers/quake3", headers=auth)
        assert (cover.status, cover.content_type) == (200, "image/png")
        assert await cover.read() == b"\x89PNG\r\n\x1a\n fake"
        assert (await client.get("/api/covers/cs16", headers=auth)).status == 404
        assert (await client.get("/api/covers/doom", headers=auth)).status == 404
        assert (await client.get("/api/covers/quake3")).status == 401


async def test_a_download_paused_before_the_start_shows_resume_and_discards(
    tmp_path: Path,
) -> None:
    """A fresh runtime and page (no event ever seen) show the journaled download as
    paused with how far and why, Resume as the action, Discard aside; Discard deletes it."""
    done, total = paused_root(tmp_path / "alpha" / "games", done=2)
    percent = int(done * 100 / total)
    async with logged_in(tmp_path) as api:
        card = game(await api.view(), "quake3")
        assert card["note"] == f"Paused at {percent}% — interrupted by a restart"
        assert (card["action"]["label"], card["action"]["command"]) == ("Resume", "download")
        assert card["action"]["detail"] == f"{percent}%"
        assert card["status"]["label"] == "Paused"
        discard = next(action for action in card["actions"] if action["id"] == "discard")
        runtime = api.harness.runtime
        events = RuntimeEvents(runtime)
        status, reply = await api.post(
            "/api/command", {"cmd": discard["command"], "game": "quake3"}
        )
        assert (status, reply["ok"]) == (200, True)
        await events.first(DownloadCancelled)
        assert not (runtime.game_dir / "quake3").exists()
        card = game(await api.view(), "quake3")
        assert card["note"] is None
        assert card["action"]["label"] in {"Download", "Unavailable"}


# -- the player's files: uninstall plan, verify, repair, found folders ---------------------

V1 = {"q3.exe": b"exe 1.0", "baseq3/q3config.cfg": b"bind w +forward"}
SAVE = "saves/slot1.sav"
CONFIG = "baseq3/q3config.cfg"


@pytest.fixture
async def saves_api(tmp_path: Path) -> AsyncIterator[Api]:
    """Quake 3 installed from a real archive, then played: a save and an edited config."""
    write_game_root(
        tmp_path / "alpha" / "games" / "quake3",
        {"game.eti": (ArchiveFormat.ZIP, V1)},
        version="1.0",
    )
    async with logged_in(tmp_path) as api:
        harness = api.harness
        status, _ = await api.post("/api/command", {"cmd": "install", "game": "quake3"})
        assert status == 200
        await wait_until(lambda: _installed(harness, "quake3"), "quake3 to install")
        local = harness.runtime.game_dir / "quake3" / "local"
        (local / "saves").mkdir()
        (local / SAVE).write_bytes(b"level 7")
        (local / CONFIG).write_bytes(b"bind e +forward")
        yield api


def _installed(harness: UiHarness, game_id: str) -> bool:
    view = next(view for view in harness.runtime.games() if view.id == game_id)
    return view.installed and view.operation is None


def _uninstalled(harness: UiHarness, game_id: str) -> bool:
    view = next(view for view in harness.runtime.games() if view.id == game_id)
    return not view.installed and view.operation is None


async def test_uninstall_plan_is_the_dialog_from_the_dry_run(saves_api: Api) -> None:
    """The uninstall dialog counts what goes with and without keep_saves, lists the
    player's files and ticks Keep; nothing is deleted by asking."""
    status, reply = await saves_api.post("/api/games/quake3/uninstall-plan", {})
    assert (status, reply["ok"]) == (200, True)
    dialog = reply["data"]
    assert dialog["title"] == "Uninstall Quake3?"
    assert dialog["delete_label"] == "Deletes 3 files, 29 B, yours included"
    assert dialog["keep_delete_label"] == "Deletes 1 file, 7 B; your 2 files stay"
    assert dialog["players_title"] == "Your own files here (saves, settings): 2"
    assert dialog["players"] == {"paths": [CONFIG, SAVE], "more_label": None}
    assert (dialog["keep_offered"], dialog["keep_default"]) == (True, True)
    assert (saves_api.harness.runtime.game_dir / "quake3" / "local" / SAVE).is_file()


async def test_uninstall_with_keep_saves_leaves_the_players_files(saves_api: Api) -> None:
    """The dialog's checkbox travels as keep_saves: the game goes, the save stays, and
    the view carries a notice saying so."""
    status, _ = await saves_api.post(
        "/api/command", {"cmd": "uninstall", "game": "quake3", "keep_saves": True}
    )
    assert status == 200
    harness = saves_api.harness
    await wait_until(lambda: _uninstalled(harness, "quake3"), "the uninstall")
    local = harness.runtime.game_dir / "quake3" / "local"
    assert (local / SAVE).read_bytes() == b"level 7"
    assert not (local / "q3.exe").exists()
    notices = (await saves_api.view())["notices"]
    assert notices[-1]["title"] == "Quake3"
    assert notices[-1]["text"] == "Kept your 2 files in its folder"


async def test_verify_shows_changes_and_repair_keeps_the_config_as_mine(saves_api: Api) -> None:
    """Verify reports the edited config as changed and the save apart; after a missing
    file, Repair restores it and the view's notice says the config is kept as .mine."""
    local = saves_api.harness.runtime.game_dir / "quake3" / "local"
    (local / "q3.exe").unlink()
    status, reply = await saves_api.post("/api/games/quake3/verify", {})
    assert (status, reply["ok"]) == (200, True)
    result = reply["data"]
    assert result["headline"] == "1 changed, 1 missing"
    assert result["changed"] == {"paths": [CONFIG], "more_label": None}
    assert result["missing"] == {"paths": ["q3.exe"], "more_label": None}
    assert result["players_label"] == "1 file of your own (saves, settings, mods) not counted"
    assert result["can_repair"] is True

    status, _ = await saves_api.post("/api/command", {"cmd": "repair", "game": "quake3"})
    assert status == 200
    await wait_until(lambda: (local / "q3.exe").is_file(), "the repair")
    await wait_until(lambda: _installed(saves_api.harness, "quake3"), "the repair to end")
    view = await saves_api.view()
    assert view["notices"][-1]["text"] == (
        "Kept your 1 file; your changed q3config.cfg is kept as q3config.cfg.mine"
    )
    status, reply = await saves_api.post("/api/games/quake3/verify", {})
    assert reply["data"]["headline"] == "All 2 game files are intact"


NOT_INSTALLED = {"code": "invalid-state", "message": "Cs16 is not installed"}
NOT_IN_CATALOG = {"code": "unknown-game", "message": "'doom' is not a game of the catalog"}


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/games/cs16/verify", 409, {**NOT_INSTALLED, "reason": "not-installed"}),
        ("/api/games/cs16/uninstall-plan", 409, {**NOT_INSTALLED, "reason": "not-installed"}),
        ("/api/games/doom/verify", 404, NOT_IN_CATALOG),
        ("/api/games/doom/uninstall-plan", 404, NOT_IN_CATALOG),
    ],
)
async def test_verify_and_plan_refusals_are_clear_json(
    api: Api, path: str, status: int, error: dict[str, str]
) -> None:
    """Asking about a game that is not installed, or not in the catalog, is refused; a
    lifecycle refusal names its rule as ``reason``."""
    got_status, reply = await api.post(path, {})
    assert (got_status, reply["ok"], reply["error"]) == (status, False, error)


async def test_a_found_folder_offers_only_view_files(tmp_path: Path) -> None:
    """A catalog-named folder lanspread did not make shows as found with why, offers
    View files (which opens it) and no Remove or Uninstall."""
    found = tmp_path / "alpha" / "games" / "cs16"
    found.mkdir(parents=True)
    (found / "hl.exe").write_bytes(b"someone else's")
    async with logged_in(tmp_path) as api:
        harness = api.harness
        card = game(await api.view(), "cs16")
        assert card["status"]["label"] == "Found — not from lanspread"
        assert card["status"]["reason"].startswith("no version.ini")
        assert (card["action"]["kind"], card["action"]["command"]) == ("found", None)
        assert [action["id"] for action in card["actions"]] == ["view-files"]
        assert card["explanation"].startswith("lanspread never changes or deletes")
        status, _ = await api.post("/api/games/cs16/open-folder", {})
        assert status == 200
        assert harness.opened == [found]
        assert (found / "hl.exe").read_bytes() == b"someone else's"


async def test_verify_of_an_install_without_a_record_offers_repair(tmp_path: Path) -> None:
    """A game installed before install records existed cannot be checked: Verify says so
    instead of failing, and offers the Repair that records it."""
    root = sideload(tmp_path / "alpha" / "games", "quake3")
    (root / "local").mkdir()
    (root / "local" / "q3.exe").write_bytes(b"old install")
    async with logged_in(tmp_path) as api:
        status, reply = await api.post("/api/games/quake3/verify", {})
        assert (status, reply["ok"]) == (200, True)
        result = reply["data"]
        assert result["headline"] == (
            "lanspread has no record of these files, so it cannot check them"
        )
        assert (result["can_repair"], result["repair_title"]) == (True, "Repair Quake3?")
