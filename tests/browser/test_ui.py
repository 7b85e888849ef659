"""The desktop UI in real headless Chromium, against real peers on loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from tests.browser.conftest import SCREENSHOTS, Lan, open_lan, shoot
from tests.support.archives import ArchiveFormat, write_game_root
from tests.support.download_roots import paused_root
from tests.support.events import RuntimeEvents
from tests.support.waiting import wait_until

from lanspread.core.conflict import ContentConflict, ContentSide, conflict_failure
from lanspread.core.operations import OperationKind
from lanspread.runtime.commands import Install
from lanspread.runtime.events import (
    DownloadFailed,
    DownloadProgress,
    GameExited,
    InstallFinished,
    InstallProgress,
    RuntimeFailed,
)
from lanspread.storage.settings import SettingsStore
from lanspread.web.viewmodel import RuntimeState

pytestmark = pytest.mark.browser


async def visible_cards(page: Page) -> list[str]:
    ids: list[str] = await page.locator("#grid .card:visible").evaluate_all(
        "cards => cards.map(card => card.dataset.game)"
    )
    return ids


async def test_first_run_then_library(first_run_lan: Lan) -> None:
    """The first-run screen saves name and folder, then the grid shows bravo's games."""
    lan = first_run_lan
    page = await lan.page()
    await expect(page.locator("#setup")).to_be_visible()
    await expect(page.locator("#setup-name")).to_have_value("Frag Master")
    await shoot(page, "01-first-run")

    game_dir = lan.alpha.options.game_dir.parent / "lan-games"
    await page.fill("#setup-name", "Frag Master")
    await page.fill("#setup-dir", str(game_dir))
    await page.click("#setup-submit")

    await expect(page.locator("#app")).to_be_visible()
    quake = page.locator('[data-game="quake3"]')
    await expect(quake.locator(".peer-badge")).to_have_text("1 peer")
    await expect(quake.locator(".act")).to_have_attribute("data-kind", "download")
    await expect(page.locator('[data-game="bf1942"] .act')).to_have_attribute(
        "data-kind", "unavailable"
    )
    saved = SettingsStore(lan.alpha.options.state_dir).load()
    assert (saved.display_name, saved.game_dir) == ("Frag Master", str(game_dir))
    assert lan.alpha.runtime.local.game_dir == game_dir


async def test_library_search_and_filters(lan: Lan) -> None:
    """Search narrows by name or genre; filters show installed, downloadable and updates."""
    page = await lan.page()
    aoe = page.locator('[data-game="aoe2"]')
    await expect(aoe.locator(".act")).to_have_attribute("data-kind", "update")
    await expect(page.locator('[data-game="quake3"] .peer-badge')).to_have_text("1 peer")
    await expect(page.locator('[data-count="updates"]')).to_have_text("1")
    await shoot(page, "02-library")

    await page.fill("#search", "quake")
    await expect(page.locator("#grid .card:visible")).to_have_count(1)
    assert await visible_cards(page) == ["quake3"]
    await page.fill("#search", "strategy")
    assert set(await visible_cards(page)) >= {"aoe2", "warcraft3"}
    await page.fill("#search", "no such game")
    await expect(page.locator("#empty")).to_be_visible()
    await page.fill("#search", "")

    await page.click('[data-filter="installed"]')
    await expect(page.locator("#view-title")).to_have_text("Installed")
    assert await visible_cards(page) == ["aoe2"]
    await page.click('[data-filter="downloadable"]')
    assert await visible_cards(page) == ["cs16", "openttd", "quake3", "warcraft3"]
    await page.click('[data-filter="updates"]')
    assert await visible_cards(page) == ["aoe2"]
    await page.click('[data-filter="all"]')
    await expect(page.locator("#grid .card:visible")).to_have_count(len(lan.catalog))


async def test_detail_view_with_live_progress_and_sources(lan: Lan) -> None:
    """The detail view shows bytes, speed, ETA, percent, Cancel and the per-peer sources."""
    page = await lan.page()
    runtime = lan.alpha.runtime
    runtime.local.begin_operation("quake3", OperationKind.DOWNLOADING)
    runtime.publish(
        DownloadProgress(
            game="quake3",
            downloaded_bytes=190_000_000,
            total_bytes=480_000_000,
            bytes_per_second=12_500_000.0,
            eta_seconds=23.2,
        )
    )
    runtime.local.begin_operation("cs16", OperationKind.INSTALLING)
    runtime.publish(InstallProgress(game="cs16", extracted_bytes=300, total_bytes=1000))
    act = page.locator('[data-game="quake3"] .act')
    await expect(act).to_have_attribute("data-kind", "downloading")
    await expect(act.locator(".act-label")).to_have_text("39%")
    await expect(act.locator(".act-detail")).to_have_text("12.5 MB/s")
    await expect(page.locator('[data-game="cs16"] .act .act-detail')).to_have_text("30%")
    await shoot(page, "03-downloading")

    await page.locator('[data-game="quake3"] .card-title').click()
    await expect(page.locator("#detail")).to_be_visible()
    await expect(page.locator("#detail-title")).to_have_text("Quake III Arena")
    await expect(page.locator("#progress-percent")).to_have_text("39%")
    await expect(page.locator("#progress-done")).to_have_text("190 MB of 480 MB")
    await expect(page.locator("#progress-speed")).to_have_text("12.5 MB/s")
    await expect(page.locator("#progress-eta")).to_have_text("24s left")
    await expect(page.locator("#progress-cancel")).to_be_visible()
    await expect(page.locator("#detail-sources .source")).to_have_count(1)
    await expect(page.locator("#detail-sources .peer-name")).to_have_text("Jonas' Rig")
    await expect(page.locator("#detail-sources .source-have")).to_have_text("Complete")
    await shoot(page, "04-detail-downloading")

    await runtime.local.end_operation("quake3")
    await expect(page.locator("#detail-progress")).to_be_hidden()
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "download")
    await page.keyboard.press("Escape")
    await expect(page.locator("#detail")).to_be_hidden()


async def test_remove_files_asks_first(lan: Lan) -> None:
    """Remove files warns that re-downloading takes long, and Keep cancels it."""
    page = await lan.page()
    await page.locator('[data-game="teeworlds"] .card-title').click()
    await page.click('#detail-secondary [data-action="remove"]')
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-text")).to_contain_text("can take a long time")
    await shoot(page, "05-remove-confirm")
    await page.click("#confirm-no")
    await expect(page.locator("#confirm")).to_be_hidden()
    assert (lan.alpha.runtime.local.game_dir / "teeworlds").is_dir()


async def test_peers_panel_lists_the_other_peer(lan: Lan) -> None:
    """The peers panel shows bravo's name, address and games."""
    page = await lan.page()
    peer = page.locator(f'[data-peer="{lan.bravo.peer_id}"]')
    await expect(peer.locator(".peer-name")).to_have_text("Jonas' Rig")
    await expect(peer.locator(".peer-addr")).to_have_text(lan.bravo.listen_addr)
    await expect(peer.locator(".peer-sub")).to_have_text("5 games")
    await peer.locator(".peer-row").click()
    await expect(peer.locator(".chip")).to_have_count(5)
    await expect(peer.locator(".chip").first).to_have_text("Age of Empires II")
    await expect(page.locator("#peer-count")).to_have_text("1")


async def test_connect_to_address_beside_the_peer_list(lan: Lan) -> None:
    """The Connect form sends ``connect``: a bad address is explained, a peer's is confirmed."""
    page = await lan.page()
    field = page.locator("#peer-connect-addr")
    await field.fill("nonsense")
    await page.locator("#peer-connect-submit").click()
    await expect(page.locator(".toast-text").last).to_have_text(
        "'nonsense' is not a HOST:PORT address"
    )
    await expect(field).to_have_value("nonsense")
    await field.fill(lan.bravo.listen_addr)
    await page.locator("#peer-connect-submit").click()
    await expect(page.locator(".toast-text").last).to_have_text(
        f"Jonas' Rig at {lan.bravo.listen_addr}"
    )
    await expect(field).to_have_value("")
    await expect(page.locator("#peer-count")).to_have_text("1")


async def test_stream_drop_reconnects_by_itself(lan: Lan) -> None:
    """When the server kills the stream, the page reconnects and follows new changes."""
    page = await lan.page()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await wait_until(lambda: lan.alpha.ui.stream_count == 1, "the page's stream")
    await lan.alpha.ui.drop_streams()
    await wait_until(lambda: lan.alpha.ui.stream_count == 0, "the stream to close")
    await wait_until(lambda: lan.alpha.ui.stream_count == 1, "the page to reconnect")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    lan.alpha.runtime.local.begin_operation("warcraft3", OperationKind.DOWNLOADING)
    await expect(page.locator('[data-game="warcraft3"] .act')).to_have_attribute(
        "data-kind", "downloading"
    )


async def test_page_without_the_token_is_refused(lan: Lan) -> None:
    """Opening the address without the launch link's token shows the locked screen only."""
    page = await lan.page(url=lan.base_url)
    await expect(page.locator("#refused")).to_be_visible()
    await expect(page.locator("#app")).to_be_hidden()
    status = await page.evaluate("fetch('/api/view').then(r => r.status)")
    assert status == 401
    await shoot(page, "06-locked")


async def test_token_leaves_the_address_bar(lan: Lan) -> None:
    """After the page traded the token for its cookie, the URL no longer carries it."""
    page = await lan.page()
    await expect(page.locator("#app")).to_be_visible()
    assert page.url == lan.base_url
    assert "token" not in page.url


async def test_busy_game_dir_change_is_shown(lan: Lan) -> None:
    """Changing the game folder during an operation shows the runtime's refusal."""
    page = await lan.page()
    lan.alpha.runtime.local.begin_operation("quake3", OperationKind.DOWNLOADING)
    await page.click("#open-settings")
    await page.fill("#settings-dir", str(lan.alpha.options.game_dir.parent / "elsewhere"))
    await page.click("#settings-save")
    await expect(page.locator("#settings-error")).to_have_text(
        "cannot change the game directory while busy: quake3"
    )
    await shoot(page, "07-settings-busy")


async def test_upload_limits_in_settings_and_the_status_line(lan: Lan) -> None:
    """The upload limit and the gaming-now cap are labelled fields reached by keyboard; saved,
    they reach the runtime; the status line is focusable, says the totals, and says uploads
    are capped while a game runs."""
    page = await lan.page()
    status = page.get_by_role("status", name="Upload 0 B/s, download 0 B/s", exact=True)
    await expect(status).to_be_visible()
    await page.locator("#search").focus()
    await page.keyboard.press("Tab")
    await expect(page.locator("#transfer")).to_be_focused()
    await expect(page.locator("#transfer-up")).to_have_text("↑ 0 B/s")
    await page.click("#open-settings")
    upload = page.get_by_label("Upload limit (MiB/s)")
    gaming = page.get_by_label("Upload cap while gaming (MiB/s)")
    await expect(upload).to_have_value("0")
    await expect(gaming).to_have_value("20")
    await page.locator("#settings-dir").focus()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Browse for the game folder").last).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(upload).to_be_focused()
    await page.keyboard.type("50")
    await page.keyboard.press("Tab")
    await expect(gaming).to_be_focused()
    await gaming.fill("0.5")
    await page.click("#settings-save")
    await expect(page.locator("#settings-error")).to_have_text(
        "the gaming-now cap must be 0 (unlimited) or between 1 and 10240 MiB/s"
    )
    await gaming.fill("8")
    await shoot(page, "18-settings-upload-limits")
    await page.click("#settings-save")
    await expect(page.locator("#settings")).to_be_hidden()
    uploads = lan.alpha.runtime.uploads()
    assert (uploads.upload_limit, uploads.gaming_cap) == (50 * 1024 * 1024, 8 * 1024 * 1024)
    await expect(page.locator("#transfer")).to_have_attribute(
        "aria-label", "Upload 0 B/s (limit 50 MiB/s), download 0 B/s"
    )
    seeder = lan.alpha.runtime.network.seeder
    seeder.attach_uploads(gaming=lambda: True, serves_others=lambda peer_id: False)
    await expect(page.locator("#transfer-gaming")).to_have_text(
        "Gaming now: uploads capped at 8 MiB/s"
    )
    await shoot(page, "19-status-gaming-now")


async def test_runtime_failure_banner_and_restart(lan: Lan) -> None:
    """A failed runtime raises a banner; Restart starts a new runtime and the banner goes."""
    page = await lan.page()
    old = lan.alpha.runtime
    old.publish(RuntimeFailed(component="server", error="listener died"))
    old.shutdown()
    await expect(page.locator("#banner")).to_be_visible()
    await expect(page.locator("#banner-text")).to_have_text(
        "The lanspread peer stopped (server): listener died"
    )
    await shoot(page, "08-runtime-failed")
    await page.click("#banner-restart")
    await expect(page.locator("#banner")).to_be_hidden()
    assert lan.alpha.ui.host.state.state is RuntimeState.RUNNING
    assert lan.alpha.ui.host.runtime is not old
    # The new runtime scanned the disk again: the installed game is back to its action.
    await expect(page.locator('[data-game="aoe2"] .act')).to_have_attribute(
        "data-kind",
        re.compile("^(play|installed|update)$"),  # installed: it needs Wine here
    )


async def test_a_download_paused_across_a_restart_resumes_or_discards(lan: Lan) -> None:
    """A download journaled before a restart shows paused with how far and why, Resume on
    the card and Discard in the detail view; Discard asks first and deletes it."""
    page = await lan.page()
    old = lan.alpha.runtime
    game_dir = old.local.game_dir
    done, total = await asyncio.to_thread(paused_root, game_dir, done=2)
    percent = int(done * 100 / total)
    old.publish(RuntimeFailed(component="server", error="listener died"))
    old.shutdown()
    await page.click("#banner-restart")
    await expect(page.locator("#banner")).to_be_hidden()
    card = page.locator('[data-game="quake3"]')
    await expect(card.locator(".act")).to_have_attribute("data-kind", "paused")
    await expect(card.locator(".act .act-label")).to_have_text("Resume")
    await expect(card.locator(".card-note")).to_have_text(
        f"Paused at {percent}% — interrupted by a restart"
    )
    await expect(card.locator(".pill")).to_have_text("Paused")
    await shoot(page, "10-paused-after-restart")

    await card.locator(".card-title").click()
    await expect(page.locator("#detail-note")).to_have_text(
        f"Paused at {percent}% — interrupted by a restart"
    )
    await page.click('#detail-secondary [data-action="discard"]')
    await expect(page.locator("#confirm-text")).to_contain_text("Discard the paused download")
    await page.click("#confirm-yes")
    # The new runtime has not dialled bravo again: nothing offers the game now.
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "unavailable")
    await expect(page.locator("#detail-note")).to_be_hidden()
    assert not (game_dir / "quake3").exists()


async def test_narrow_window_stays_usable(lan: Lan) -> None:
    """On a narrow window the grid reflows and the sidebar moves on top."""
    page = await lan.page(viewport={"width": 760, "height": 1000})
    await expect(page.locator('[data-game="quake3"] .peer-badge')).to_have_text("1 peer")
    box = await page.locator("#grid .card").first.bounding_box()
    assert box is not None
    assert box["width"] > 200
    await shoot(page, "09-narrow")


# -- the player's files ------------------------------------------------------------------------

FACTORIO = {
    "bin/x64/factorio.exe": b"exe 1.1" * 1000,
    "config/config.ini": b"[graphics]\nquality=normal\n",
    "data/base.dat": b"base" * 5000,
}
SAVES = tuple(f"saves/base-{n}.zip" for n in range(1, 8))


@pytest.fixture
async def keeper_lan(tmp_path: Path, chromium_path: str) -> AsyncIterator[Lan]:
    """The LAN, with Factorio downloaded from a real archive and a Minecraft folder that
    someone copied in by hand (found, not from lanspread)."""
    games = tmp_path / "alpha" / "games"
    write_game_root(games / "factorio", {"game.eti": (ArchiveFormat.ZIP, FACTORIO)}, version="1.1")
    found = games / "minecraft"
    found.mkdir(parents=True)
    (found / "minecraft.exe").write_bytes(b"from a USB stick")
    async with open_lan(tmp_path, chromium_path, setup_needed=False) as lan:
        yield lan


async def installed_and_played(lan: Lan) -> Path:
    """Install Factorio, then play it: seven saves, an edited config, a lost data file."""
    runtime = lan.alpha.runtime
    events = RuntimeEvents(runtime)
    await runtime.execute(Install(game="factorio"))
    await events.first(InstallFinished)
    local = runtime.game_dir / "factorio" / "local"
    (local / "saves").mkdir()
    for save in SAVES:
        (local / save).write_bytes(b"a factory" * 100)
    (local / "config" / "config.ini").write_bytes(b"[graphics]\nquality=high\n")
    (local / "data" / "base.dat").unlink()
    return local


async def test_verify_repair_and_uninstall_keeping_saves(keeper_lan: Lan) -> None:
    """Verify shows what changed and what is missing, the saves counted apart; Repair asks
    and says configs are kept as .mine, and a toast tells what was kept; the uninstall
    dialog counts what goes, lists the saves and keeps them when the box stays ticked."""
    lan = keeper_lan
    local = await installed_and_played(lan)
    page = await lan.page()
    await page.locator('[data-game="factorio"] .card-title').click()
    verify = page.get_by_role("button", name="Verify files: Factorio")
    await verify.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#verify-headline")).to_have_text("1 changed, 1 missing")
    await expect(page.locator("#verify-changed li")).to_have_text(["config/config.ini"])
    await expect(page.locator("#verify-missing li")).to_have_text(["data/base.dat"])
    await expect(page.locator("#verify-players")).to_have_text(
        "7 files of your own (saves, settings, mods) not counted"
    )
    await shoot(page, "11-verify-result")

    await page.get_by_role("button", name="Repair Factorio").click()
    await expect(page.locator("#confirm-title")).to_have_text("Repair Factorio?")
    await expect(page.locator("#confirm-text")).to_contain_text(
        "kept beside the fresh one as config.ini.mine"
    )
    await shoot(page, "12-repair-confirm")
    await page.click("#confirm-yes")
    toast = page.locator(".toast.ok", has_text="Factorio")
    await expect(toast).to_contain_text(
        "Kept your 7 files; your changed config.ini is kept as config.ini.mine"
    )
    await expect(page.locator("#detail-verify")).to_be_hidden()
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "play")
    await shoot(page, "13-repair-kept-toast")
    assert (local / "config" / "config.ini.mine").read_bytes() == b"[graphics]\nquality=high\n"

    await verify.click()
    await expect(page.locator("#verify-headline")).to_have_text("All 3 game files are intact")
    await expect(page.get_by_role("button", name="Repair Factorio")).to_be_hidden()
    await shoot(page, "14-verify-intact")

    await page.get_by_role("button", name="Uninstall: Factorio").click()
    await expect(page.locator("#confirm-title")).to_have_text("Uninstall Factorio?")
    keep = page.get_by_role("checkbox", name="Keep my saves and settings of Factorio")
    await expect(keep).to_be_checked()
    await expect(page.locator("#confirm-players-title")).to_have_text(
        "Your own files here (saves, settings): 8"
    )
    await expect(page.locator("#confirm-players li")).to_have_count(6)
    await expect(page.locator("#confirm-players li.more")).to_have_text("and 3 more")
    kept_label = await page.locator("#confirm-deletes").text_content()
    assert kept_label is not None
    assert re.fullmatch(r"Deletes 3 files, [\d.]+ KB; your 8 files stay", kept_label)
    await shoot(page, "15-uninstall-keep-saves")
    await page.keyboard.press("Shift+Tab")
    await expect(keep).to_be_focused()
    await page.keyboard.press("Space")
    await expect(keep).not_to_be_checked()
    await expect(page.locator("#confirm-deletes")).to_contain_text(
        re.compile(r"^Deletes 11 files, [\d.]+ KB, yours included$")
    )
    await page.keyboard.press("Space")
    await expect(page.locator("#confirm-deletes")).to_have_text(kept_label)
    await page.click("#confirm-yes")
    await expect(page.locator(".toast.ok", has_text="in its folder")).to_contain_text(
        "Kept your 8 files in its folder"
    )
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "install")
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == [
        "config/config.ini.mine",
        *SAVES,
    ]

    # Each notice is shown once: not again after a reload, nor in a tab opened later.
    await page.reload()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator(".toast")).to_have_count(0)
    later = await lan.page()
    await expect(later.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(later.locator(".toast")).to_have_count(0)


async def test_a_found_folder_is_left_alone(keeper_lan: Lan) -> None:
    """A folder lanspread did not make reads "Found — not from lanspread" with why, offers
    View files only while no peer offers the game, and the detail view says lanspread
    never touches the player's files there."""
    lan = keeper_lan
    page = await lan.page()
    card = page.locator('[data-game="minecraft"]')
    await expect(card.locator(".pill")).to_have_text("Found — not from lanspread")
    await expect(card.locator(".card-note")).to_contain_text("No version.ini")
    await expect(card.locator(".act")).to_have_attribute("data-kind", "found")
    await expect(card.locator(".act")).to_be_disabled()
    await card.scroll_into_view_if_needed()
    await card.screenshot(path=str(SCREENSHOTS / "16-found-card.png"), animations="disabled")
    await card.locator(".card-title").click()
    await expect(page.locator("#detail-explanation")).to_have_text(
        "lanspread never changes or deletes your files in this folder. A download adds "
        "the game's files beside them, and stops if one of yours has a name the game needs."
    )
    await expect(page.locator("#detail-secondary button")).to_have_count(1)
    view_files = page.get_by_role("button", name="View files: Minecraft")
    await shoot(page, "17-found-detail")
    await view_files.focus()
    await page.keyboard.press("Enter")
    found = lan.alpha.runtime.game_dir / "minecraft"
    await wait_until(lambda: lan.alpha.opened == [found], "the folder to open")
    assert (found / "minecraft.exe").read_bytes() == b"from a USB stick"


async def test_a_changed_program_of_an_unpinned_game_asks_before_play(keeper_lan: Lan) -> None:
    """Play of Factorio, not pinned by any organizer: its first program asks once (a yes
    is remembered), and once the program changed the page asks the runtime's question
    again; Cancel starts nothing, Run it starts it."""
    lan = keeper_lan
    runtime = lan.alpha.runtime
    events = RuntimeEvents(runtime)
    await runtime.execute(Install(game="factorio"))
    await events.first(InstallFinished)
    local = runtime.game_dir / "factorio" / "local"
    program = local / "bin" / "x64" / "factorio"  # the Linux launcher named in the catalog
    # The first program runs until the test lets it end, so the page is seen showing
    # it running and then playable again: a click before the page took in the exit
    # would land on the running game's button.
    program.write_bytes(
        b"#!/bin/sh\necho first >> ran.txt\nwhile [ ! -e quit ]; do sleep 0.05; done\n"
    )
    program.chmod(0o755)
    page = await lan.page()
    play = page.locator('[data-game="factorio"] .act')
    await expect(play).to_have_attribute("data-kind", "play")
    await play.click()
    await expect(page.locator("#confirm-title")).to_have_text("Not pinned by the organizer")
    await expect(page.locator("#confirm-text")).to_have_text(
        "This version of Factorio was not pinned by the organizer: its program comes from "
        "other players and nobody vouched for it. Run it?"
    )
    await page.click("#confirm-yes")
    await expect(page.locator("#confirm")).to_be_hidden()
    await expect(play).to_have_attribute("data-kind", "running")
    (local / "quit").touch()
    await events.first(GameExited)
    assert (local / "ran.txt").read_text() == "first\n"
    program.write_bytes(b"#!/bin/sh\necho replaced >> ran.txt\n")
    await expect(play).to_have_attribute("data-kind", "play")
    await expect(play).to_be_enabled()
    await play.click()
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-title")).to_have_text("Not pinned by the organizer")
    await expect(page.locator("#confirm-text")).to_have_text(
        "This version of Factorio was not pinned by the organizer and its program changed "
        "since you last played: run it?"
    )
    await expect(page.locator("#confirm-yes")).to_have_text("Run it")
    await shoot(page, "20-program-changed")
    await page.click("#confirm-no")
    await expect(page.locator("#confirm")).to_be_hidden()
    assert (local / "ran.txt").read_text() == "first\n"
    await play.click()
    await page.click("#confirm-yes")
    await wait_until(lambda: len(events.of(GameExited)) == 2, "the accepted program to exit")
    assert (local / "ran.txt").read_text() == "first\nreplaced\n"


async def test_a_content_conflict_is_shown_by_peer_and_the_player_chooses(lan: Lan) -> None:
    """A download of an unpinned Quake III stopped on a conflict: the detail view lists
    each content with the peers behind it by name (an id for a peer gone), and Trust
    this sends that content's digest, which ends the conflict."""
    page = await lan.page()
    runtime = lan.alpha.runtime
    stranger = "f" * 64
    conflict = ContentConflict(
        "quake3",
        "1.32",
        (ContentSide("a" * 64, (lan.bravo.peer_id,)), ContentSide("b" * 64, (stranger,))),
    )
    runtime.downloads.record_conflict(conflict)
    runtime.publish(DownloadFailed(game="quake3", reason=conflict_failure(conflict)))
    await page.locator('[data-game="quake3"] .card-title').click()
    panel = page.locator("#detail-conflict")
    await expect(panel).to_be_visible()
    await expect(panel.locator(".conflict-headline")).to_have_text(
        "The peers offering version 1.32 disagree on its content, and the organizer did not "
        "pin it. Choose the one you trust:"
    )
    await expect(panel.locator(".conflict-peers")).to_have_text(["Jonas' Rig", stranger])
    await expect(panel.locator(".conflict-digest")).to_have_text(["a" * 12, "b" * 12])
    await shoot(page, "21-content-conflict")
    await panel.locator('button[data-digest="' + "b" * 64 + '"]').click()
    await expect(panel).to_be_hidden()
    assert runtime.downloads.conflicts == {}
