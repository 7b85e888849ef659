"""Launching, the first minute, names and paths, honest errors and the folder picker, in
real headless Chromium against real peers on loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from tests.browser.conftest import Lan, open_lan
from tests.support.archives import ArchiveFormat, Member, write_game_root
from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded

from lanspread.core.operations import OperationKind
from lanspread.runtime.commands import Install
from lanspread.runtime.events import InstallFinished

pytestmark = pytest.mark.browser

SHOTS = Path("/work/notes/r3/shots/uxlaunch")
VIEWPORTS = {"1920": {"width": 1920, "height": 1080}, "1280": {"width": 1280, "height": 720}}
FAILING_GAME = b"#!/bin/sh\necho 'no display to open' >&2\nexit 3\n"


async def shoot_both(page: Page, name: str) -> None:
    """The page at 1920x1080 and at 1280x720, under the shots folder."""
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    for label, size in VIEWPORTS.items():
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), animations="disabled")


@pytest.fixture
async def launch_lan(
    tmp_path: Path, chromium_path: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Lan]:
    """The LAN on a Linux box without Wine, with OpenTTD downloaded (its Linux launcher a
    script that fails at once), a hand-named folder, and a View files that finds no file
    manager."""
    monkeypatch.setattr("lanspread.runtime.states.runners_found", lambda programs: frozenset())
    games = tmp_path / "alpha" / "games"
    root = write_game_root(
        games / "openttd",
        {"game.eti": (ArchiveFormat.TAR, [Member("openttd", FAILING_GAME, mode=0o755)])},
        version="1.2",  # bravo's version: no update offered
    )
    record_as_downloaded(root)
    (games / "Quake 3").mkdir(parents=True)
    async with open_lan(
        tmp_path,
        chromium_path,
        setup_needed=False,
        open_fails="xdg-open could not open it (exit status 3)",
    ) as lan:
        yield lan


async def test_a_game_that_fails_at_once_then_one_that_is_stopped(launch_lan: Lan) -> None:
    """Play of a launcher that exits with code 3 shows why on the card; a running game's
    button is Stop, which ends it (after the question a changed program asks); the detail
    view shows the play time."""
    lan = launch_lan
    runtime = lan.alpha.runtime
    events = RuntimeEvents(runtime)
    await runtime.execute(Install(game="openttd"))
    await events.first(InstallFinished)
    page = await lan.page()
    card = page.locator('[data-game="openttd"]')
    await card.locator(".act").click()
    # OpenTTD is pinned by no organizer: its first program asks once.
    await expect(page.locator("#confirm-title")).to_have_text("Not pinned by the organizer")
    await page.click("#confirm-yes")
    log = runtime.lifecycle.game_log("openttd")
    await expect(card.locator(".card-error")).to_have_text(
        re.compile(rf"^OpenTTD exited with code 3 after \d+\.\d s; its output is in {log}$")
    )
    await shoot_both(page, "launch-quick-exit")

    launcher = runtime.game_dir / "openttd" / "local" / "openttd"
    launcher.write_text("#!/bin/sh\nexec sleep 600\n")
    await card.locator(".act").click()
    # Its program changed since it last ran: asked again.
    await expect(page.locator("#confirm-title")).to_have_text("Not pinned by the organizer")
    await page.click("#confirm-yes")
    button = card.locator(".act")
    await expect(button).to_have_accessible_name(re.compile("Stop"))
    await expect(card.locator(".card-error")).to_be_hidden()
    await shoot_both(page, "launch-running-stop")
    await button.click()
    await expect(button).to_have_attribute("data-kind", "play")
    await card.locator(".card-title").click()
    await expect(page.locator("#detail-played")).to_have_text(
        re.compile(r"^less than a minute · last ")
    )
    await shoot_both(page, "launch-detail-played")


async def test_a_windows_game_says_so_and_asks_before_downloading(launch_lan: Lan) -> None:
    """Counter-Strike needs Wine here: the card says so, Download asks first naming the
    size, and Cancel starts nothing."""
    page = await launch_lan.page()
    card = page.locator('[data-game="cs16"]')
    await expect(card.locator(".launch-tag")).to_have_text("Needs Wine")
    await expect(page.locator('[data-game="rocketleague"] .launch-tag')).to_have_text(
        "Windows only"
    )
    await expect(page.locator('[data-game="openttd"] .launch-tag')).to_be_hidden()
    await card.locator(".act").click()
    await expect(page.locator("#confirm-text")).to_have_text(
        "Counter-Strike 1.6 is a Windows game: it needs Wine to start on this computer, "
        "and Wine is not installed. Download 750 MB anyway?"
    )
    await expect(page.locator("#confirm-yes")).to_have_text("Download anyway")
    await shoot_both(page, "launch-needs-wine")
    await page.click("#confirm-no")
    assert "cs16" not in launch_lan.alpha.runtime.local.operations.snapshot()
    await card.locator(".card-title").click()
    await expect(page.locator("#detail-launch")).to_have_text(
        "Counter-Strike 1.6 is a Windows game: it needs Wine to start on this computer, "
        "and Wine is not installed."
    )
    await shoot_both(page, "launch-detail-needs-wine")


async def test_a_damaged_archive_is_said_plainly(launch_lan: Lan) -> None:
    """Installing teeworlds (its archive is garbage) says so in a player's words and makes
    removal the main action; View files without a file manager gives the path."""
    page = await launch_lan.page()
    card = page.locator('[data-game="teeworlds"]')
    await card.locator(".act").click()
    await expect(card.locator(".card-error")).to_have_text(
        "Install failed: data.eti is damaged or not a game archive; download it again"
    )
    await expect(card.locator(".act")).to_have_text(re.compile("Remove damaged files"))
    await shoot_both(page, "errors-damaged-archive")
    await card.locator(".card-title").click()
    await page.get_by_role("button", name="View files: Teeworlds").click()
    root = launch_lan.alpha.runtime.game_dir / "teeworlds"
    await expect(page.locator(".toast").last).to_contain_text(
        f"No file manager could open the folder here. Its path is {root}"
    )
    await shoot_both(page, "errors-view-files")


async def test_alone_the_library_explains_and_a_stray_folder_is_hinted(launch_lan: Lan) -> None:
    """With bravo gone the page explains the grey cards and what to do; the hand-named
    folder is listed as not in the catalog with the rename that makes it Quake III."""
    lan = launch_lan
    page = await lan.page()
    strays = page.locator("#guidance-stray-list li")
    await expect(strays).to_have_text(
        ["Quake 3Not in the catalog. If it is Quake III Arena, rename the folder to “quake3”."]
    )
    await expect(page.locator("#guidance-alone")).to_be_hidden()
    lan.bravo.shutdown()
    await lan.bravo.wait_stopped()
    await expect(page.locator("#guidance-title")).to_have_text("No other players yet")
    await expect(page.locator("#guidance-steps li strong")).to_have_text(
        ["Wait for friends", "Connect to an address", "Add games you own", "Just looking?"]
    )
    await shoot_both(page, "first-minute-alone")


async def test_names_and_paths_in_settings(launch_lan: Lan) -> None:
    """A relative folder and an empty name are refused with a message; a new name chosen
    during a download is saved for when it ends."""
    lan = launch_lan
    page = await lan.page()
    await page.click("#open-settings")
    await page.fill("#settings-dir", "games")
    await page.click("#settings-save")
    home = Path.home()
    await expect(page.locator("#settings-error")).to_have_text(
        f"'games' is a relative path: give the full path of the folder, such as "
        f"{home / 'Games'} (lanspread does not guess what it is relative to)"
    )
    await shoot_both(page, "names-relative-folder")
    await page.fill("#settings-dir", str(lan.alpha.runtime.game_dir))
    await page.fill("#settings-name", "   ")
    await page.click("#settings-save")
    await expect(page.locator("#settings-error")).to_have_text("the display name must not be empty")
    lan.alpha.runtime.local.begin_operation("quake3", OperationKind.DOWNLOADING)
    await page.fill("#settings-name", "Night Owl")
    await page.click("#settings-save")
    await expect(page.locator(".toast").last).to_have_text(
        "Settings saved. Other players see your new name once your downloads finish."
    )
    assert lan.alpha.runtime.name == "Frag Master"


async def test_the_folder_picker_browses_with_free_space(launch_lan: Lan) -> None:
    """Browse lists the folders of the typed path with the free space; entering one and
    choosing it fills the game folder field."""
    lan = launch_lan
    base = lan.alpha.runtime.game_dir.parent
    (base / "Big Drive").mkdir()
    page = await lan.page()
    await page.click("#open-settings")
    await page.fill("#settings-dir", str(base))
    await page.get_by_role("button", name="Browse for the game folder").last.click()
    await expect(page.locator("#picker-free")).to_have_text(re.compile(r" free$"))
    await expect(page.locator(".picker-folder", has_text="Big Drive")).to_be_visible()
    await shoot_both(page, "picker")
    await page.locator(".picker-folder", has_text="Big Drive").click()
    await expect(page.locator("#picker-path")).to_have_value(str(base / "Big Drive"))
    await page.click("#picker-use")
    await expect(page.locator("#settings-dir")).to_have_value(str(base / "Big Drive"))


async def test_the_first_run_screen_offers_the_picker(first_run_lan: Lan) -> None:
    """The first-run screen's game folder has Browse, and the picker shows free space."""
    page = await first_run_lan.page()
    await expect(page.locator("#setup")).to_be_visible()
    await page.get_by_role("button", name="Browse for the game folder").first.click()
    await expect(page.locator("#picker-free")).to_have_text(re.compile(r" free$"))
    await shoot_both(page, "setup-picker")
    await page.keyboard.press("Escape")
    await expect(page.locator("#picker")).to_be_hidden()
    await expect(page.locator("#setup")).to_be_visible()
