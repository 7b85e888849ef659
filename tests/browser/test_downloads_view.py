"""The Downloads view and a source leaving mid-download, in real headless Chromium."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from tests.browser.conftest import Lan
from tests.support.events import RuntimeEvents
from tests.support.peers import sideload
from tests.support.waiting import wait_until

from lanspread.runtime.commands import Download, SetUploadLimit
from lanspread.runtime.events import DownloadProgress
from lanspread.runtime.runtime import PeerRuntime
from lanspread.seeding.manifests import HashState

pytestmark = pytest.mark.browser

MiB = 1024 * 1024
SHOTS = Path("/work/notes/r3/shots/uxdl")
SIZES = {"1920": {"width": 1920, "height": 1080}, "1280": {"width": 1280, "height": 720}}
# Slow enough that a 40 MiB game takes about ten seconds: the view can be looked at.
SLOW_UPLOAD = 4 * MiB
# Slower still while the Downloads view is clicked through: forty seconds for 40 MiB.
SLOWER_UPLOAD = MiB
STARCRAFT = "StarCraft: Brood War"


async def shoot_both(page: Page, name: str) -> None:
    """Screenshots of the page at both sizes, for the notes."""
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    for label, size in SIZES.items():
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), animations="disabled")


async def offer(owner: PeerRuntime, seeker: PeerRuntime, game_id: str, size: int) -> None:
    """``owner`` holds ``game_id`` (``size`` bytes) ready to serve, and ``seeker`` sees it
    offered."""
    await asyncio.to_thread(sideload, owner.local.game_dir, game_id, "1.0", bytes(size))
    await owner.local.full_scan()

    async def offered() -> bool:
        hashed = await owner.hashing.state(game_id) is HashState.READY
        return hashed and bool(seeker.network.sources_for(game_id)[1])

    await wait_until(offered, f"{game_id} to be offered", timeout=20.0)


async def test_downloads_view_orders_pauses_and_shows_who_pulls(lan: Lan) -> None:
    """The Downloads view lists the running download then the queued ones in order,
    moves a queued one down, pauses and resumes them all, shows the totals, free space
    and the peer pulling from us, and the tab title carries the progress; Escape closes
    it back to its button, and a queued game's card says it waits its turn."""
    alpha, bravo = lan.alpha.runtime, lan.bravo
    await bravo.execute(SetUploadLimit(upload_limit=SLOWER_UPLOAD))
    await alpha.execute(SetUploadLimit(upload_limit=SLOWER_UPLOAD))
    for game_id, size in (("factorio", 40 * MiB), ("minecraft", MiB), ("starcraft", MiB)):
        await offer(bravo, alpha, game_id, size)
    await offer(alpha, bravo, "diablo2", 40 * MiB)
    alpha.queue.limit = 1
    events = RuntimeEvents(alpha)
    for game_id in ("factorio", "minecraft", "starcraft"):
        await alpha.execute(Download(game=game_id))
    await bravo.execute(Download(game="diablo2"))
    # The first chunk landed: the shaped seeder sends whole chunks, so in-flight bytes are
    # rarely seen between two progress reports.
    await events.first(DownloadProgress, where=lambda e: e.downloaded_bytes > 0)

    page = await lan.page()
    await expect(page.locator("#downloads-count")).to_have_text("3")
    await expect(page).to_have_title(re.compile(r"^\[\d+%\] lanspread$"))
    await page.click("#open-downloads")
    rows = page.locator("#dl-list .dl-row")
    await expect(rows).to_have_count(3)
    await expect(rows.locator(".dl-name")).to_have_text(["Factorio", "Minecraft", STARCRAFT])
    await expect(rows.locator(".pill")).to_have_text(["Downloading", "Queued", "Queued"])
    await expect(rows.nth(0).locator(".dl-speed")).to_have_text(re.compile(r"B/s$"))
    await expect(page.locator("#dl-down")).not_to_have_text("↓ 0 B/s")
    await expect(rows.nth(1).get_by_role("button", name="Move up Minecraft")).to_have_count(0)
    await expect(page.locator("#dl-free")).to_have_text(re.compile(r" free in the game folder$"))
    upload = page.locator("#dl-uploads .dl-upload")
    await expect(upload.locator(".dl-peer")).to_have_text("Jonas' Rig")
    await expect(upload.locator(".dl-game")).to_have_text("Diablo II")
    await shoot_both(page, "downloads-view")

    await page.get_by_role("button", name="Move down Minecraft").click()
    await expect(rows.locator(".dl-name")).to_have_text(["Factorio", STARCRAFT, "Minecraft"])

    await page.click("#dl-pause-all")
    await expect(rows.locator(".pill")).to_have_text(["Paused", "Paused", "Paused"])
    await expect(rows.nth(0).locator(".dl-note")).to_have_text("Paused by you")
    await expect(rows.nth(0).locator(".bar")).to_be_visible()
    await expect(rows.nth(1).locator(".bar")).to_be_hidden()
    await expect(page.locator("#dl-down")).to_have_text("↓ 0 B/s")
    await expect(page).to_have_title("lanspread")
    await shoot_both(page, "downloads-paused-all")

    await page.click("#dl-resume-all")
    await expect(rows.locator(".pill")).to_have_text(["Downloading", "Queued", "Queued"])
    await page.keyboard.press("Escape")
    await expect(page.locator("#downloads")).to_be_hidden()
    await expect(page.locator("#open-downloads")).to_be_focused()
    queued_note = "Queued: starts when a running download finishes"
    await expect(page.locator('[data-game="minecraft"] .card-note')).to_have_text(queued_note)
    await expect(page.locator('#grid [data-game="minecraft"] .pill')).to_have_text("Queued")
    await expect(page.locator('#grid [data-game="factorio"] .pill')).to_have_text("Downloading")
    await shoot_both(page, "library-with-queue")


async def test_a_source_leaving_pauses_the_card_with_its_name(lan: Lan) -> None:
    """When the only source quits mid-download, the card says who left and how far, a
    toast says the same, and the source is shown offline at once."""
    alpha, bravo = lan.alpha.runtime, lan.bravo
    await bravo.execute(SetUploadLimit(upload_limit=SLOW_UPLOAD))
    await offer(bravo, alpha, "factorio", 40 * MiB)
    page = await lan.page()
    events = RuntimeEvents(alpha)
    await page.locator('[data-game="factorio"] .act').click()
    await events.first(DownloadProgress, where=lambda e: e.downloaded_bytes > 0)
    bravo.shutdown()
    await bravo.wait_stopped()

    card = page.locator('[data-game="factorio"]')
    note = re.compile(r"^Paused: Jonas' Rig left at \d+%$")
    await expect(card.locator(".card-note")).to_have_text(note)
    await expect(card.locator(".act .act-label")).to_have_text("Resume")
    toast = page.locator(".toast.warn")
    await expect(toast.locator(".toast-title")).to_have_text("Factorio")
    await expect(toast.locator(".toast-text")).to_have_text(note)
    await expect(page.locator("#peer-count")).to_have_text("0")
    await shoot_both(page, "paused-source-left")


# Records what the page asks of the browser's notifications, which headless Chromium
# would otherwise show nowhere a test can see.
NOTIFICATION_SPY = """
(() => {
  const Real = window.Notification;
  window.__notified = [];
  class Spy {
    constructor(title, options) { window.__notified.push([title, options.body]); }
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
  }
  window.Notification = Spy;
})();
"""


async def test_a_finished_download_notifies_the_desktop_once_allowed(lan: Lan) -> None:
    """Ticking the setting asks for permission; once it is granted, a finished download
    shows a desktop notification naming the game, besides the toast."""
    alpha, bravo = lan.alpha.runtime, lan.bravo
    await offer(bravo, alpha, "minecraft", MiB)
    page = await lan.page()
    await page.context.grant_permissions(["notifications"], origin=lan.base_url)
    await page.context.add_init_script(NOTIFICATION_SPY)
    await page.reload()
    await page.click("#open-downloads")
    await page.check("#dl-notify")
    await expect(page.locator("#dl-notify")).to_be_checked()
    await page.keyboard.press("Escape")
    await alpha.execute(Download(game="minecraft"))
    toast = page.locator(".toast.ok", has_text="Download finished")
    await expect(toast.locator(".toast-title")).to_have_text("Minecraft")
    notified = await page.evaluate("window.__notified")
    assert notified == [["Minecraft", "Download finished"]]
