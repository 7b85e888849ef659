"""The whole player flow by keyboard alone, in real headless Chromium, in demo mode.

The same demo LAN as ``test_full_flow`` (the user's UI linked to the real demo peer,
chunks held by a valve), but no mouse: Tab moves the focus, Enter and Space press.
The player downloads a demo game, cancels, downloads it again (the auto policy
installs it), plays it, uninstalls it and removes its files; the accessibility
audit runs on the detail in each state it passes through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from tests.browser.conftest import shoot
from tests.browser.test_accessibility import audit, audit_both
from tests.browser.test_full_flow import (
    CHUNKS_BEFORE_CANCEL,
    GAME,
    DemoLan,
    action,
    card,
    demo_lan,  # noqa: F401 (a fixture)
)
from tests.conftest import IN_CI
from tests.support.waiting import wait_until

from lanspread.demo.roots import MAX_PLAY_SECONDS

pytestmark = pytest.mark.browser

NAME = "Tower Siege (demo)"
AXE = Path(__file__).resolve().parents[2] / ".cache" / "axe-core" / "axe-core-4.10.3" / "axe.min.js"
# Tab presses that reach any control of the page from anywhere on it.
MAX_TABS = 120
# The longest a demo game plays: only Stop ends it while the test looks at it.
PLAY_UNTIL_STOPPED = MAX_PLAY_SECONDS


@pytest.fixture
def demo_play_seconds() -> int:
    """The demo game plays as long as it may, so only Stop ends it in this test."""
    return PLAY_UNTIL_STOPPED


async def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the focused element matches ``selector`` (fails after MAX_TABS)."""
    for _ in range(MAX_TABS):
        if await page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


async def test_the_whole_flow_by_keyboard(demo_lan: DemoLan) -> None:  # noqa: F811 (the fixture)
    """Downloads panel, folder picker, download, cancel, download, install, play, stop,
    uninstall and remove with keys only; every button heard names the game, every
    closed dialog gives the focus back to its button; no serious accessibility
    violation on the way."""
    if not AXE.is_file() and IN_CI:
        pytest.fail("axe-core is missing; the test command must run python tools/fetch_axe.py")
    axe = AXE.read_text("utf-8") if AXE.is_file() else None
    lan = demo_lan
    page = await lan.page()
    found: list[str] = []

    async def check(screen: str) -> None:
        if axe is not None:
            found.extend(await audit(page, axe, screen))

    async def check_both(screen: str) -> None:
        """The audit at both review sizes, each saved for the design review."""
        if axe is not None:
            found.extend(await audit_both(page, axe, screen))

    button = f'[data-game="{GAME}"] .act'
    await expect(action(page)).to_have_attribute("aria-label", f"Download {NAME}")

    # The Downloads panel: Enter opens it, Escape closes it back onto its button.
    await tab_to(page, "#open-downloads")
    await page.keyboard.press("Enter")
    await expect(page.locator("#downloads")).to_be_visible()
    await expect(page.locator("#downloads-close")).to_be_focused()
    await check("downloads panel")
    await page.keyboard.press("Escape")
    await expect(page.locator("#downloads")).to_be_hidden()
    await expect(page.locator("#open-downloads")).to_be_focused()

    # The folder picker from Settings: enter a subfolder, use it, back on Browse.
    game_dir = lan.alpha.runtime.local.game_dir
    (game_dir / "Big Drive").mkdir(parents=True)
    browse = '[data-browse="settings-dir"]'
    await tab_to(page, "#open-settings")
    await page.keyboard.press("Enter")
    await expect(page.locator("#settings")).to_be_visible()
    await tab_to(page, browse)
    await page.keyboard.press("Enter")
    await expect(page.locator("#picker")).to_be_visible()
    # The subfolders arrive from the peer after the picker opens: Tab once they are there.
    await expect(page.locator(".picker-folder").first).to_be_visible()
    await tab_to(page, ".picker-folder")
    await page.keyboard.press("Enter")
    await expect(page.locator("#picker-path")).to_have_value(str(game_dir / "Big Drive"))
    await check("folder picker")
    await tab_to(page, "#picker-use")
    await page.keyboard.press("Enter")
    await expect(page.locator("#picker")).to_be_hidden()
    await expect(page.locator(browse)).to_be_focused()
    await expect(page.locator("#settings-dir")).to_have_value(str(game_dir / "Big Drive"))
    await page.keyboard.press("Escape")
    await expect(page.locator("#settings")).to_be_hidden()
    await expect(page.locator("#open-settings")).to_be_focused()

    # Download from the card's button, then cancel from the detail's progress panel.
    await tab_to(page, button)
    await shoot(page, "uxfront-keyboard-01-focus")
    await page.keyboard.press("Enter")
    await expect(action(page)).to_have_attribute("data-kind", "downloading")
    await lan.valve.let_through(CHUNKS_BEFORE_CANCEL)
    await tab_to(page, f'[data-game="{GAME}"]')
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail .modal")).to_be_focused()
    await expect(page.locator("#detail-size-title")).to_have_text("Download size")
    await check_both("detail-downloading")
    await shoot(page, "uxfront-keyboard-02-detail-downloading")
    await tab_to(page, "#progress-cancel")
    await expect(page.locator("#progress-cancel")).to_have_attribute(
        "aria-label", f"Cancel the download of {NAME}"
    )
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "download")
    await wait_until(lambda: not lan.root().exists(), "the cancelled download's folder to go")
    # Cancel vanished with the progress panel: the focus went back to the dialog.
    await expect(page.locator("#detail .modal")).to_be_focused()

    # Download again from the detail: the auto policy installs it, Play is offered.
    await lan.valve.open()
    await tab_to(page, "#detail-action")
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "play")
    await expect(page.locator("#detail-action")).to_have_attribute("aria-label", f"Play {NAME}")
    await check("detail installed")

    # Play: nobody pinned the demo game, so its first program asks once (yes, by
    # keyboard); Stop while the launcher runs; Enter on it ends the game, Play is back.
    await tab_to(page, "#detail-action")
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-title")).to_have_text("Not pinned by the organizer")
    await check("confirm not pinned")
    await tab_to(page, "#confirm-yes")
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "running")
    await expect(page.locator("#detail-action")).to_have_attribute(
        "aria-label", f"Stop {NAME}, Running"
    )
    await check_both("detail-running")
    await shoot(page, "uxfront-keyboard-03-running")
    await tab_to(page, "#detail-action")
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "play")

    # Uninstall: the confirmation opens on Cancel; Space clears "keep", Enter confirms.
    await tab_to(page, '#detail-secondary [data-action="uninstall"]')
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-no")).to_be_focused()
    await check("uninstall confirm")
    await shoot(page, "uxfront-keyboard-04-uninstall-confirm")
    await tab_to(page, "#confirm-keep")
    await page.keyboard.press(" ")
    await expect(page.locator("#confirm-keep")).not_to_be_checked()
    await tab_to(page, "#confirm-yes")
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm")).to_be_hidden()
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "install")
    await wait_until(lambda: not (lan.root() / "local").exists(), "local/ to be removed")

    # Remove files: confirmed by keyboard, the folder goes, Download is offered again.
    await tab_to(page, '#detail-secondary [data-action="remove"]')
    await page.keyboard.press("Enter")
    await tab_to(page, "#confirm-yes")
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "download")
    await wait_until(lambda: not lan.root().exists(), "the removed game's folder to go")

    # Escape closes the detail and the focus is back on the game's card.
    await page.keyboard.press("Escape")
    await expect(page.locator("#detail")).to_be_hidden()
    await expect(card(page)).to_be_focused()
    await shoot(page, "uxfront-keyboard-05-back-on-card")
    assert found == [], "\n".join(found)
