"""The whole player flow in real headless Chromium, against the real demo peer.

The user's peer runs behind the real web UI; the second peer is the
:class:`~lanspread.demo.DemoPeer` itself (a real runtime serving real tar and zip
archives), linked by a direct connect on loopback. The player downloads a game,
cancels, downloads again (installed by the default auto policy), plays it,
uninstalls it and removes its files, all by clicking.

Loopback moves a demo game in milliseconds: too fast to see the progress bar or
to press Cancel. So the demo peer's chunk sends pass a :class:`ChunkValve`
(``send_file_range`` of the data plane, patched for this test only) that holds
every chunk until the test lets it through: two chunks of Tower Siege's five
(1 MiB chunks) give a bar that stands still at an intermediate percentage.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Locator, Page, async_playwright, expect
from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP, EXPECTED_CONSOLE, PAGE_TIMEOUT_MS, shoot
from tests.support.waiting import wait_until
from tests.support.webui import UiHarness, running_ui

from lanspread.demo import DEMO_GAMES, DEMO_PEER_NAME, PLAY_LOG, DemoPeer, with_demo_games
from lanspread.net.sendfile import send_file_range
from lanspread.seeding import shaping
from lanspread.storage.catalog_file import load_bundled_catalog

pytestmark = pytest.mark.browser

GAME = "demo-towersiege"
# Long enough to catch the Running card in a screenshot, short enough for the suite.
PLAY_SECONDS = 3
# Chunks of Tower Siege let through before Cancel: 2 of 5 is an honest "mid-download".
CHUNKS_BEFORE_CANCEL = 2

SendFileRange = Callable[[socket.socket, int, int, int], Awaitable[int]]


class ChunkValve:
    """Holds every chunk a data server sends until the test lets it through."""

    def __init__(self, send: SendFileRange) -> None:
        self._send = send
        self._credit = 0
        self._open = False
        self._changed = asyncio.Condition()
        self.passed = 0

    async def send_file_range(self, sock: socket.socket, fd: int, offset: int, count: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self._open or self._credit > 0)
            if not self._open:
                self._credit -= 1
        sent = await self._send(sock, fd, offset, count)
        self.passed += 1
        return sent

    async def let_through(self, chunks: int) -> None:
        async with self._changed:
            self._credit += chunks
            self._changed.notify_all()

    async def open(self) -> None:
        """From now on every chunk passes at once (held ones too)."""
        async with self._changed:
            self._open = True
            self._changed.notify_all()


@dataclass
class DemoLan:
    alpha: UiHarness
    demo: DemoPeer
    browser: Browser
    valve: ChunkValve
    errors: list[str] = field(default_factory=list)

    def root(self, game_id: str = GAME) -> Path:
        return self.alpha.runtime.local.game_dir / game_id

    async def page(self) -> Page:
        context = await self.browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        page = await context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        await page.goto(self.alpha.ui.guard.launch_url)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(EXPECTED_CONSOLE):
            self.errors.append(message.text)


@contextlib.asynccontextmanager
async def open_demo_lan(
    base: Path, chromium_path: str, monkeypatch: pytest.MonkeyPatch, play_seconds: int
) -> AsyncIterator[DemoLan]:
    """The user's UI linked to a demo peer whose games play ``play_seconds``, whose
    chunks pass a valve, and a Chromium."""
    catalog = with_demo_games(load_bundled_catalog(), play_seconds=play_seconds)
    valve = ChunkValve(send_file_range)
    monkeypatch.setattr(shaping, "send_file_range", valve.send_file_range)
    async with (
        DemoPeer(catalog, play_seconds=play_seconds, parent_dir=base) as demo,
        running_ui(base, "alpha", serve=True, catalog=catalog, display_name="Newcomer") as ui,
        async_playwright() as playwright,
    ):
        assert await demo.link(lambda: ui.runtime)
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        lan = DemoLan(alpha=ui, demo=demo, browser=browser, valve=valve)
        try:
            yield lan
        finally:
            await valve.open()
            await browser.close()
        assert lan.errors == []


@pytest.fixture
def demo_play_seconds() -> int:
    """How long a demo game plays (a test module may override it)."""
    return PLAY_SECONDS


@pytest.fixture
async def demo_lan(
    tmp_path: Path, chromium_path: str, monkeypatch: pytest.MonkeyPatch, demo_play_seconds: int
) -> AsyncIterator[DemoLan]:
    """The user's UI linked to a demo peer whose chunks pass a valve, and a Chromium."""
    async with open_demo_lan(tmp_path, chromium_path, monkeypatch, demo_play_seconds) as lan:
        yield lan


def card(page: Page, game_id: str = GAME) -> Locator:
    return page.locator(f'[data-game="{game_id}"]')


def action(page: Page, game_id: str = GAME) -> Locator:
    return card(page, game_id).locator(".act")


async def open_detail(page: Page, game_id: str = GAME) -> None:
    await card(page, game_id).locator(".card-title").click()
    await expect(page.locator("#detail")).to_be_visible()


async def close_detail(page: Page) -> None:
    await page.keyboard.press("Escape")
    await expect(page.locator("#detail")).to_be_hidden()


async def test_download_cancel_install_play_uninstall_remove(demo_lan: DemoLan) -> None:
    """Every step a player takes with a demo game, each checked on screen and on disk."""
    lan = demo_lan
    page = await lan.page()

    # The grid leads with the demo peer's games, each offered by one peer.
    for game in DEMO_GAMES:
        await expect(card(page, game.id).locator(".peer-badge")).to_have_text("1 peer")
        await expect(action(page, game.id)).to_have_attribute("data-kind", "download")
    assert await page.locator("#grid .card").first.get_attribute("data-game") == "demo-pixelkart"
    demo_row = page.locator(f'[data-peer="{lan.demo.peer_id}"]')
    await expect(demo_row.locator(".peer-name")).to_have_text(DEMO_PEER_NAME)
    await expect(demo_row.locator(".peer-sub")).to_have_text("3 games")
    await shoot(page, "flow-01-library")

    # Download: the valve lets two chunks through, the bar stops part-way.
    await action(page).click()
    await expect(action(page)).to_have_attribute("data-kind", "downloading")
    await lan.valve.let_through(CHUNKS_BEFORE_CANCEL)
    # Each download picks its own order among equally rare chunks, so the two chunks
    # may be small files: the bar is part-way, not at a given share.
    await expect(action(page).locator(".act-label")).to_have_text(re.compile(r"^[0-9]{1,2}%$"))
    await expect(card(page).locator(".pill")).to_have_text("Downloading")
    await shoot(page, "flow-02-downloading")
    await open_detail(page)
    await expect(page.locator("#progress-percent")).to_have_text(re.compile(r"^[0-9]{1,2}%$"))
    done = re.compile(r"^(\d+ KB|\d\.\d MB) of 4\.1 MB$")
    await expect(page.locator("#progress-done")).to_have_text(done)
    await expect(page.locator("#detail-sources .peer-name")).to_have_text(DEMO_PEER_NAME)
    await shoot(page, "flow-03-detail-downloading")

    # Cancel mid-download: back to Download, the game's folder is gone.
    await page.click("#progress-cancel")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "download")
    await expect(page.locator("#detail-progress")).to_be_hidden()
    await wait_until(lambda: not lan.root().exists(), "the cancelled download's folder to go")
    assert lan.valve.passed == CHUNKS_BEFORE_CANCEL
    await close_detail(page)
    await expect(action(page)).to_have_attribute("data-kind", "download")
    await shoot(page, "flow-04-cancelled")

    # Download again with the valve open: the auto policy installs it, the card says Play.
    await lan.valve.open()
    await action(page).click()
    await expect(action(page)).to_have_attribute("data-kind", "play")
    await expect(card(page).locator(".pill")).to_have_text("Installed")
    local = lan.root() / "local"
    assert (local / "play.sh").stat().st_mode & 0o111
    await shoot(page, "flow-05-installed")

    # Play: nobody pinned the demo game, so its first program asks once; then Running
    # while the launcher runs, Play again once it exits (0).
    await action(page).click()
    await expect(page.locator("#confirm-title")).to_have_text("Not pinned by the organizer")
    await page.click("#confirm-yes")
    await expect(action(page)).to_have_attribute("data-kind", "running")
    await expect(card(page).locator(".pill")).to_have_text("Running")
    await shoot(page, "flow-06-running")
    await expect(action(page)).to_have_attribute("data-kind", "play", timeout=PLAY_SECONDS * 4000)
    assert (local / PLAY_LOG).read_text().splitlines()[-1] == (
        "Tower Siege (demo): match over, well played"
    )

    # Uninstall (asks first). The match left play.log in local/: a file the install
    # did not ship, so the dialog offers to keep it, ticked. Unticked, local/ goes
    # whole, the archives stay, the card offers Install.
    await open_detail(page)
    await page.click('#detail-secondary [data-action="uninstall"]')
    await expect(page.locator("#confirm-text")).to_contain_text("The downloaded files stay")
    await expect(page.locator("#confirm-no")).to_have_text("Cancel")
    await expect(page.locator("#confirm-keep")).to_be_checked()
    await shoot(page, "flow-07-uninstall-confirm")
    await page.locator("#confirm-keep").uncheck()
    await page.click("#confirm-yes")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "install")
    await wait_until(lambda: not local.exists(), "local/ to be removed")
    assert (lan.root() / "towersiege.eti").is_file()
    await shoot(page, "flow-08-uninstalled")

    # Remove files: Cancel keeps them, confirming removes the folder.
    await page.click('#detail-secondary [data-action="remove"]')
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-text")).to_contain_text("can take a long time")
    await shoot(page, "flow-09-remove-confirm")
    await page.click("#confirm-no")
    await expect(page.locator("#confirm")).to_be_hidden()
    assert lan.root().is_dir()
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "install")
    await page.click('#detail-secondary [data-action="remove"]')
    await page.click("#confirm-yes")
    await expect(page.locator("#detail-action")).to_have_attribute("data-kind", "download")
    await wait_until(lambda: not lan.root().exists(), "the removed game's folder to go")
    await close_detail(page)
    await expect(card(page).locator(".pill")).to_have_text("On the network")
    await shoot(page, "flow-10-removed")


async def test_demo_peer_leaving_turns_its_games_unavailable(demo_lan: DemoLan) -> None:
    """When the demo peer stops (the app quits it), its cards stop offering Download."""
    lan = demo_lan
    page = await lan.page()
    await expect(action(page, "demo-starfield")).to_have_attribute("data-kind", "download")
    await lan.demo.stop()
    await expect(action(page, "demo-starfield")).to_have_attribute("data-kind", "unavailable")
    await expect(page.locator("#peer-count")).to_have_text("0")
