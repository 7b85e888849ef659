"""Keyboard, screen readers and the accessibility audit, in real headless Chromium.

The audit is axe-core (a pinned npm release, fetched hash-checked by
``tools/fetch_axe.py``), evaluated in the page on every screen at 1920x1080 and
1280x720: no serious or critical violation may remain. The other tests drive the
page by keyboard alone, stop its stream to see the blocking reconnect screen, and
check that sorting is remembered and that cards never move under the pointer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, ViewportSize, expect
from tests.browser.conftest import Lan, open_lan
from tests.browser.test_downloads_view import SLOWER_UPLOAD, offer
from tests.browser.test_ui import keeper_lan  # noqa: F401 (a fixture)
from tests.conftest import IN_CI
from tests.support.events import RuntimeEvents
from tests.support.waiting import wait_until

from lanspread.core.conflict import ContentConflict, ContentSide, conflict_failure
from lanspread.runtime.commands import Download, Install, Play, SetUploadLimit
from lanspread.runtime.events import (
    DownloadFailed,
    DownloadProgress,
    GameExited,
    GameStarted,
    InstallFinished,
    RuntimeFailed,
)
from lanspread.web import api

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / ".cache" / "axe-core" / "axe-core-4.10.3" / "axe.min.js"
FETCH = "python tools/fetch_axe.py"
BLOCKING = ("serious", "critical")
VIEWPORTS = {"1920": {"width": 1920, "height": 1080}, "1280": {"width": 1280, "height": 720}}
WIDE = ViewportSize(width=1920, height=1080)
# Tab presses that walk past every control of the detail dialog and wrap at least once.
TAB_PRESSES = 30
# Every screen of the merged UI at both sizes, for the design review.
FINAL_SHOTS = Path("/work/notes/r3/shots/final")
MiB = 1024 * 1024


@pytest.fixture
def axe_source() -> str:
    """The fetched axe-core; missing is a failure under CI and a skip naming the command."""
    if not AXE.is_file():
        if IN_CI:
            pytest.fail(f"axe-core is missing; the test command must run {FETCH}")
        pytest.skip(f"axe-core is missing; run {FETCH}")
    return AXE.read_text("utf-8")


async def audit(page: Page, axe_source: str, screen: str) -> list[str]:
    """The serious and critical violations axe finds on the page as it is now (with
    motion reduced, so no dialog is measured half faded in)."""
    await page.emulate_media(reduced_motion="reduce")
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe_source)  # evaluated by the driver: the page's CSP allows it
    result: dict[str, Any] = await page.evaluate(
        "() => axe.run(document, { resultTypes: ['violations'] })"
    )
    return [
        f"{screen}: {rule['id']} ({rule['impact']}): "
        + json.dumps([node["target"] for node in rule["nodes"]][:5])
        for rule in result["violations"]
        if rule["impact"] in BLOCKING
    ]


async def shoot_final(page: Page, name: str) -> None:
    """The page as it is now, under FINAL_SHOTS."""
    await asyncio.to_thread(FINAL_SHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(FINAL_SHOTS / f"{name}.png"), animations="disabled")


async def audit_both(page: Page, axe_source: str, screen: str) -> list[str]:
    """The audit of the page as it is now at 1920x1080 and at 1280x720, each size
    screenshotted under FINAL_SHOTS as ``screen-1920.png`` and ``screen-1280.png``."""
    found: list[str] = []
    for size, viewport in VIEWPORTS.items():
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        found += await audit(page, axe_source, f"{screen}-{size}")
        await shoot_final(page, f"{screen}-{size}")
    return found


def card(page: Page, game_id: str) -> Locator:
    return page.locator(f'[data-game="{game_id}"]')


async def block_stream(lan: Lan, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the page's stream and refuse new ones: the page's peer stops answering it."""
    monkeypatch.setattr(api, "MAX_STREAMS", 0)
    await lan.alpha.ui.drop_streams()
    await wait_until(lambda: lan.alpha.ui.stream_count == 0, "the stream to close")


async def open_by_keyboard(page: Page, control: Locator, dialog: str) -> None:
    """Focus ``control``, press Enter, and see the ``dialog`` overlay open."""
    await control.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(f"#{dialog}")).to_be_visible()


async def test_every_screen_passes_the_audit(
    lan: Lan, axe_source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Library, detail, confirmation and settings at both sizes, the locked window and
    the reconnect screen have no serious or critical accessibility violation."""
    found: list[str] = []

    async def check(page: Page, screen: str) -> None:
        found.extend(await audit(page, axe_source, screen))
        await shoot_final(page, screen)

    for size, viewport in VIEWPORTS.items():
        page = await lan.page(viewport=viewport)
        await expect(card(page, "quake3").locator(".peer-badge")).to_have_text("1 peer")
        await check(page, f"library-{size}")
        await open_by_keyboard(page, card(page, "teeworlds"), "detail")
        await check(page, f"detail-{size}")
        remove = page.locator('#detail-secondary [data-action="remove"]')
        await open_by_keyboard(page, remove, "confirm")
        await check(page, f"confirm-{size}")
        await page.keyboard.press("Escape")
        await page.keyboard.press("Escape")
        await expect(page.locator("#detail")).to_be_hidden()
        await open_by_keyboard(page, page.locator("#open-settings"), "settings")
        await check(page, f"settings-{size}")
        await page.keyboard.press("Escape")
        await expect(page.locator("#settings")).to_be_hidden()
        await page.close()

    locked = await lan.page(url=lan.base_url, viewport=VIEWPORTS["1280"])
    await expect(locked.locator("#refused")).to_be_visible()
    await check(locked, "locked-1280")

    page = await lan.page(viewport=VIEWPORTS["1280"])
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    with monkeypatch.context() as patch:
        await block_stream(lan, patch)
        await expect(page.locator("#offline")).to_be_visible()
        await check(page, "offline-1280")
        await page.set_viewport_size(WIDE)
        await shoot_final(page, "offline-1920")
    assert found == [], "\n".join(found)


async def test_the_first_run_screen_passes_the_audit(first_run_lan: Lan, axe_source: str) -> None:
    """The first-run form and the folder picker it opens, at both sizes, have no serious
    or critical violation; Escape gives the focus back to Browse."""
    found: list[str] = []
    for size, viewport in VIEWPORTS.items():
        page = await first_run_lan.page(viewport=viewport)
        await expect(page.locator("#setup")).to_be_visible()
        found += await audit(page, axe_source, f"first run {size}")
        await shoot_final(page, f"first-run-{size}")
    await open_by_keyboard(page, page.locator('[data-browse="setup-dir"]'), "picker")
    await expect(page.locator("#picker-free")).to_have_text(re.compile(r" free$"))
    found += await audit_both(page, axe_source, "picker-first-run")
    await page.keyboard.press("Escape")
    await expect(page.locator('[data-browse="setup-dir"]')).to_be_focused()
    assert found == [], "\n".join(found)


@pytest.fixture
async def screens_lan(tmp_path: Path, chromium_path: str) -> AsyncIterator[Lan]:
    """The LAN, with a Quake III folder someone copied in by hand (found, and offered by
    bravo, so it can be adopted)."""
    found = tmp_path / "alpha" / "games" / "quake3"
    found.mkdir(parents=True)
    (found / "quake3.exe").write_bytes(b"from a USB stick")
    async with open_lan(tmp_path, chromium_path, setup_needed=False) as lan:
        yield lan


async def open_detail(page: Page, game_id: str) -> None:
    """The detail of ``game_id``, opened from its focused card with Enter."""
    await open_by_keyboard(page, card(page, game_id), "detail")


async def close_top(page: Page, dialog: str) -> None:
    await page.keyboard.press("Escape")
    await expect(page.locator(f"#{dialog}")).to_be_hidden()


async def test_the_merged_screens_pass_the_audit(screens_lan: Lan, axe_source: str) -> None:
    """The Downloads panel (empty and with rows), Adopt on a found folder, the conflict
    panel, a damaged-archive card, the connect form's refusal, the folder picker from
    Settings and the guidance when alone have no serious or critical violation."""
    lan = screens_lan
    alpha, bravo = lan.alpha.runtime, lan.bravo
    found: list[str] = []
    page = await lan.page(viewport=VIEWPORTS["1920"])
    await expect(card(page, "openttd").locator(".peer-badge")).to_have_text("1 peer")

    await open_by_keyboard(page, page.locator("#open-downloads"), "downloads")
    found += await audit_both(page, axe_source, "downloads-empty")
    await close_top(page, "downloads")

    await open_detail(page, "quake3")
    await expect(page.locator('#detail-secondary [data-action="adopt"]')).to_be_visible()
    found += await audit_both(page, axe_source, "detail-found-adopt")
    await close_top(page, "detail")

    conflict = ContentConflict(
        "openttd",
        "1.2",
        (ContentSide("a" * 64, (bravo.peer_id,)), ContentSide("b" * 64, ("f" * 64,))),
    )
    alpha.downloads.record_conflict(conflict)
    alpha.publish(DownloadFailed(game="openttd", reason=conflict_failure(conflict)))
    await open_detail(page, "openttd")
    await expect(page.locator("#detail-conflict")).to_be_visible()
    found += await audit_both(page, axe_source, "detail-conflict")
    await close_top(page, "detail")

    await card(page, "teeworlds").locator(".act").click()
    await expect(card(page, "teeworlds").locator(".card-error")).to_have_text(
        "Install failed: data.eti is damaged or not a game archive; download it again"
    )
    await card(page, "teeworlds").scroll_into_view_if_needed()
    found += await audit_both(page, axe_source, "library-damaged-archive")
    await open_detail(page, "teeworlds")
    found += await audit_both(page, axe_source, "detail-damaged-archive")
    await close_top(page, "detail")

    await page.locator("#peer-connect-addr").fill("nonsense")
    await page.locator("#peer-connect-addr").press("Enter")
    await expect(page.locator(".toast-text").last).to_have_text(
        "'nonsense' is not a HOST:PORT address"
    )
    found += await audit_both(page, axe_source, "connect-refused")
    await page.locator("#peer-connect-addr").fill("")

    await open_by_keyboard(page, page.locator("#open-settings"), "settings")
    await open_by_keyboard(page, page.locator('[data-browse="settings-dir"]'), "picker")
    await expect(page.locator("#picker-free")).to_have_text(re.compile(r" free$"))
    found += await audit_both(page, axe_source, "picker-settings")
    await close_top(page, "picker")
    await close_top(page, "settings")

    await bravo.execute(SetUploadLimit(upload_limit=SLOWER_UPLOAD))
    for game_id, size in (("factorio", 40 * MiB), ("minecraft", MiB)):
        await offer(bravo, alpha, game_id, size)
    alpha.queue.limit = 1
    events = RuntimeEvents(alpha)
    for game_id in ("factorio", "minecraft"):
        await alpha.execute(Download(game=game_id))
    await events.first(DownloadProgress, where=lambda e: e.downloaded_bytes > 0)
    await open_by_keyboard(page, page.locator("#open-downloads"), "downloads")
    await expect(page.locator("#dl-list .dl-row")).to_have_count(2)
    found += await audit_both(page, axe_source, "downloads-rows")
    await page.click("#dl-pause-all")
    await close_top(page, "downloads")
    await page.evaluate("() => window.scrollTo(0, 0)")
    found += await audit_both(page, axe_source, "library-peers")

    bravo.shutdown()
    await bravo.wait_stopped()
    await expect(page.locator("#guidance-title")).to_have_text("No other players yet")
    await page.evaluate("() => window.scrollTo(0, 0)")
    found += await audit_both(page, axe_source, "library-alone")
    assert found == [], "\n".join(found)


async def test_the_program_changed_confirm_passes_the_audit(
    keeper_lan: Lan,  # noqa: F811 (the fixture)
    axe_source: str,
) -> None:
    """The question before Play of a game whose program changed, and the detail of an
    installed game and of a found folder, have no serious or critical violation."""
    lan = keeper_lan
    runtime = lan.alpha.runtime
    events = RuntimeEvents(runtime)
    await runtime.execute(Install(game="factorio"))
    await events.first(InstallFinished)
    program = runtime.game_dir / "factorio" / "local" / "bin" / "x64" / "factorio"
    program.write_bytes(b"#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    await runtime.execute(Play(game="factorio", run_unpinned=True))
    await events.first(GameExited)
    program.write_bytes(b"#!/bin/sh\nexit 1\n")
    page = await lan.page(viewport=VIEWPORTS["1920"])
    found: list[str] = []
    await open_detail(page, "factorio")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "play")
    found += await audit_both(page, axe_source, "detail-installed")
    await page.locator("#detail-action").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-title")).to_have_text("Not pinned by the organizer")
    found += await audit_both(page, axe_source, "confirm-program-changed")
    await close_top(page, "confirm")
    await close_top(page, "detail")
    await open_detail(page, "minecraft")
    found += await audit_both(page, axe_source, "detail-found")
    assert found == [], "\n".join(found)


async def test_enter_opens_the_detail_and_focus_stays_inside(lan: Lan) -> None:
    """Enter on a focused card opens its detail and nothing else (the dialog takes the
    focus, no button of it is pressed); Tab and Shift+Tab stay inside; Escape closes
    and the focus is back on the card; every button says which game it acts on."""
    page = await lan.page()
    quake = card(page, "quake3")
    await expect(quake.locator(".act")).to_have_attribute("aria-label", "Download Quake III Arena")
    await quake.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail")).to_be_visible()
    await expect(page.locator("#detail .modal")).to_be_focused()
    await expect(page.locator("#detail-action")).to_have_attribute(
        "aria-label", "Download Quake III Arena"
    )
    outside = "() => !document.getElementById('detail').contains(document.activeElement)"
    for _ in range(TAB_PRESSES):
        await page.keyboard.press("Tab")
        assert not await page.evaluate(outside)
    for _ in range(TAB_PRESSES):
        await page.keyboard.press("Shift+Tab")
        assert not await page.evaluate(outside)
    await expect(page.locator("#detail")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#detail")).to_be_hidden()
    await expect(quake).to_be_focused()

    # The confirmation over the detail: its own trap, and Escape steps back one dialog.
    await card(page, "teeworlds").focus()
    await page.keyboard.press(" ")
    remove = page.locator('#detail-secondary [data-action="remove"]')
    await expect(remove).to_have_attribute("aria-label", "Remove files: Teeworlds")
    await remove.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-no")).to_be_focused()
    for _ in range(4):
        await page.keyboard.press("Tab")
        assert await page.evaluate(
            "() => document.getElementById('confirm').contains(document.activeElement)"
        )
    await page.keyboard.press("Escape")
    await expect(page.locator("#confirm")).to_be_hidden()
    await expect(remove).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(card(page, "teeworlds")).to_be_focused()


async def test_a_silent_peer_blocks_the_page_until_it_answers(
    lan: Lan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the page's stream stops, the page turns inert (no stale Play can be
    clicked) and says it is reconnecting; the first view after reconnecting lifts it."""
    page = await lan.page()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    with monkeypatch.context() as patch:
        await block_stream(lan, patch)
        await expect(page.locator("#offline")).to_be_visible()
        await expect(page.locator("#offline-title")).to_have_text("lanspread is not answering")
        assert await page.evaluate("() => document.getElementById('app').inert")
        await expect(page.locator("#offline-box")).to_be_focused()
    await expect(page.locator("#offline")).to_be_hidden()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert not await page.evaluate("() => document.getElementById('app').inert")


async def test_a_stopped_peer_leaves_nothing_stale_to_click(lan: Lan) -> None:
    """When the peer itself stops, its last peers and Play buttons go: the library is
    inert under the banner that says why, and Settings and Restart still work."""
    page = await lan.page(viewport=VIEWPORTS["1280"])
    await expect(page.locator("#peer-count")).to_have_text("1")
    old = lan.alpha.runtime
    old.publish(RuntimeFailed(component="server", error="listener died"))
    old.shutdown()
    await expect(page.locator("#banner")).to_be_visible()
    await expect(page.locator("#peer-count")).to_have_text("0")
    await expect(card(page, "aoe2").locator(".act")).to_have_attribute("data-kind", "unavailable")
    assert await page.evaluate("() => document.getElementById('grid').inert")
    await shoot_final(page, "peer-stopped-1280")
    await page.set_viewport_size(WIDE)
    await shoot_final(page, "peer-stopped-1920")
    await open_by_keyboard(page, page.locator("#open-settings"), "settings")
    await expect(page.locator("#settings-name")).to_have_value("Frag Master")
    await page.keyboard.press("Escape")
    await page.locator("#banner-restart").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#banner")).to_be_hidden()
    assert not await page.evaluate("() => document.getElementById('grid').inert")
    await expect(page.locator("#peer-count")).to_have_text("0")


async def grid_order(page: Page) -> list[str]:
    ids: list[str] = await page.locator("#grid .card").evaluate_all(
        "cards => cards.map(card => card.dataset.game)"
    )
    return ids


async def test_sorting_is_remembered_and_cards_stay_under_the_pointer(lan: Lan) -> None:
    """Name, size, last played and availability sort the grid; the choice survives a
    reload. A state change waits to move a card until the pointer has left the grid."""
    page = await lan.page()
    await expect(card(page, "quake3").locator(".peer-badge")).to_have_text("1 peer")
    await page.select_option("#sort", "name")
    names = [game.name for game in sorted(lan.catalog, key=lambda game: game.name.lower())]
    assert (await grid_order(page))[:3] == [
        next(game.id for game in lan.catalog if game.name == name) for name in names[:3]
    ]
    await page.select_option("#sort", "size")
    biggest = max(lan.catalog, key=lambda game: game.size_bytes)
    assert (await grid_order(page))[0] == biggest.id
    await page.reload()
    await expect(page.locator("#sort")).to_have_value("size")
    assert (await grid_order(page))[0] == biggest.id
    lan.alpha.runtime.publish(GameStarted(game="openttd", pid=1))
    await page.select_option("#sort", "played")
    await expect(page.locator("#grid .card").first).to_have_attribute("data-game", "openttd")

    await page.select_option("#sort", "availability")
    before = await grid_order(page)
    await card(page, "quake3").locator(".act").click()
    # Downloaded (the sideloaded files are no real archive, so it stays at Install).
    await expect(card(page, "quake3").locator(".pill")).to_have_text("Failed")
    assert await grid_order(page) == before
    await page.mouse.move(5, 5)
    await wait_until_moved(page, "quake3", before.index("quake3"))


async def wait_until_moved(page: Page, game_id: str, index: int) -> None:
    await expect(page.locator("#grid .card").nth(index)).not_to_have_attribute("data-game", game_id)
