"""A LAN in a box for the browser tests: two real peers on loopback and real Chromium.

``alpha`` runs the desktop UI (served on 127.0.0.1), ``bravo`` is a plain runtime
holding a few games; alpha connects to bravo by address (mDNS is off). Chromium
is Debian's, driven by Playwright with ``executable_path``; ``playwright
install`` is never used.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright
from tests.conftest import require_tool
from tests.support.peers import loopback_options, sideload
from tests.support.waiting import wait_until
from tests.support.webui import UiHarness, running_ui

from lanspread.core.catalog import Catalog
from lanspread.runtime.commands import Connect
from lanspread.runtime.runtime import PeerRuntime
from lanspread.storage.catalog_file import load_bundled_catalog

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PAGE_TIMEOUT_MS = 10_000
DESKTOP = {"width": 1440, "height": 900}

BRAVO_GAMES = ("aoe2", "cs16", "openttd", "quake3", "warcraft3")


# The browser reports refused requests and dropped sockets as console errors; those
# are states the tests cause on purpose. Script exceptions always fail a test.
EXPECTED_CONSOLE = ("Failed to load resource", "WebSocket connection to")


@dataclass
class Lan:
    alpha: UiHarness
    bravo: PeerRuntime
    browser: Browser
    catalog: Catalog
    errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.alpha.ui.guard.launch_url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.alpha.ui.guard.port}/"

    async def page(self, *, url: str | None = None, viewport: dict[str, int] = DESKTOP) -> Page:
        context = await self.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        await page.goto(url or self.url)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(EXPECTED_CONSOLE):
            self.errors.append(message.text)

    def script_errors(self) -> list[str]:
        return list(self.errors)


async def shoot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), animations="disabled")
    return path


@pytest.fixture
def chromium_path() -> str:
    return require_tool("chromium")


async def start_bravo(base: Path, catalog: Catalog) -> PeerRuntime:
    for game_id in BRAVO_GAMES:
        sideload(base / "bravo" / "games", game_id, version="1.2")
    options = replace(loopback_options(base, "bravo", catalog=catalog), name="Jonas' Rig")
    bravo = PeerRuntime(options)
    await bravo.start()
    return bravo


def alpha_library(base: Path) -> None:
    games = base / "alpha" / "games"
    root = sideload(games, "aoe2", version="1.0")
    (root / "local").mkdir()
    sideload(games, "teeworlds", version="0.7")


@contextlib.asynccontextmanager
async def open_lan(
    base: Path, chromium: str, *, setup_needed: bool, **ui: Any
) -> AsyncIterator[Lan]:
    """alpha's UI (``ui`` goes to :func:`running_ui`) linked to bravo, and a Chromium."""
    catalog = load_bundled_catalog()
    alpha_library(base)
    bravo = await start_bravo(base, catalog)
    try:
        async with (
            running_ui(
                base,
                "alpha",
                serve=True,
                setup_needed=setup_needed,
                catalog=catalog,
                display_name="Frag Master",
                **ui,
            ) as alpha,
            async_playwright() as playwright,
        ):
            await alpha.runtime.execute(Connect(addr=bravo.listen_addr))
            await wait_until(lambda: _has_bravo(alpha), "alpha to see bravo's games")
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            lan = Lan(alpha=alpha, bravo=bravo, browser=browser, catalog=catalog)
            try:
                yield lan
            finally:
                await browser.close()
            assert lan.script_errors() == []
    finally:
        bravo.shutdown()
        await bravo.wait_stopped()


@pytest.fixture
async def lan(tmp_path: Path, chromium_path: str) -> AsyncIterator[Lan]:
    """Alpha's UI (settings already chosen) connected to bravo, and a Chromium."""
    async with open_lan(tmp_path, chromium_path, setup_needed=False) as lan:
        yield lan


@pytest.fixture
async def first_run_lan(tmp_path: Path, chromium_path: str) -> AsyncIterator[Lan]:
    """The same, on a machine where lanspread runs for the first time."""
    async with open_lan(tmp_path, chromium_path, setup_needed=True) as lan:
        yield lan


def _has_bravo(alpha: UiHarness) -> bool:
    return any(view.peer_count > 0 for view in alpha.runtime.games())
