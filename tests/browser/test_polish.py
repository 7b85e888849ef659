"""Cover art, rows that stay in line, the sticky header and the tab icon, in real Chromium."""

from __future__ import annotations

import contextlib
import math
import struct
import zlib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect
from tests.browser.conftest import CHROMIUM_ARGS, Lan, shoot
from tests.support.peers import sideload
from tests.support.webui import running_ui

from lanspread.runtime.events import InstallFailed
from lanspread.storage.catalog_file import load_catalog_file

pytestmark = pytest.mark.browser

COVERED = ("quake3", "cs16", "aoe2", "openttd")
"""Games given a real picture beside the catalog."""
FAKE_COVER = "teeworlds"
"""A game whose "picture" is text: the page falls back to generated art."""
COVER_SIZE = (320, 180)
VIEWPORT = {"width": 1280, "height": 720}
LONG_ERROR = (
    "the archive data.eti ends before its last file: it was copied while the download "
    "was still running, so part of it is missing"
)


def png(width: int, height: int, seed: int) -> bytes:
    """A small real PNG: a diagonal gradient with rings, different for every seed."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            ring = int(math.hypot(x - width * 0.7, y - height * 0.3)) // 12 % 2
            row += bytes(
                (
                    (x * 255 // width + seed * 70) % 256,
                    (y * 255 // height + seed * 40) % 256,
                    (120 + 80 * ring + seed * 30) % 256,
                )
            )
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
    return b"\x89PNG\r\n\x1a\n" + chunks + chunk(b"IEND", b"")


def covered_catalog(folder: Path) -> Path:
    """The bundled catalog as a file, with covers for a few games beside it."""
    text = resources.files("lanspread.data").joinpath("catalog.toml").read_text("utf-8")
    folder.mkdir(parents=True)
    for seed, game_id in enumerate(COVERED):
        (folder / f"{game_id}.png").write_bytes(png(*COVER_SIZE, seed))
    (folder / f"{FAKE_COVER}.png").write_text("not a picture")
    for game_id in (*COVERED, FAKE_COVER):
        line = f'id = "{game_id}"\n'
        text = text.replace(line, f'{line}cover = "{game_id}.png"\n')
    path = folder / "catalog.toml"
    path.write_text(text, "utf-8")
    return path


@contextlib.asynccontextmanager
async def covered_page(base: Path, chromium: str) -> AsyncIterator[Page]:
    catalog = load_catalog_file(covered_catalog(base / "catalog"))
    sideload(base / "alpha" / "games", "quake3")
    async with (
        running_ui(base, "alpha", serve=True, catalog=catalog, display_name="Art Lover") as ui,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            await page.goto(ui.ui.guard.launch_url)
            yield page
        finally:
            await browser.close()


async def test_covers_beside_the_catalog_show_and_a_fake_one_falls_back(
    tmp_path: Path, chromium_path: str
) -> None:
    """A catalog's cover pictures are drawn on their cards and in the detail; a "picture"
    that is not one is refused by the peer and the card keeps its generated art."""
    async with covered_page(tmp_path, chromium_path) as page:
        for game_id in COVERED:
            cover = page.locator(f'[data-game="{game_id}"] img.cover')
            await expect(cover).to_be_visible()
            assert await cover.evaluate("img => img.complete && img.naturalWidth") == COVER_SIZE[0]
        fake = page.locator(f'[data-game="{FAKE_COVER}"]')
        await expect(fake.locator("img.cover")).to_be_hidden()
        await expect(fake.locator(".emblem svg")).to_be_visible()
        await shoot(page, "uxfront-covers-1280")
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await shoot(page, "uxfront-covers-1920")
        await page.locator('[data-game="quake3"] .card-title').click()
        await expect(page.locator("#detail-cover")).to_be_visible()
        await shoot(page, "uxfront-covers-detail-1920")


async def test_a_card_with_an_error_keeps_its_row_in_line(lan: Lan) -> None:
    """A long failure on one card does not push its button out of line with its row."""
    page = await lan.page(viewport=VIEWPORT)
    lan.alpha.runtime.publish(InstallFailed(game="teeworlds", reason=LONG_ERROR))
    error = page.locator('[data-game="teeworlds"] .card-error')
    await expect(error).to_be_visible()
    await expect(error).to_have_attribute("title", f"Install failed: {LONG_ERROR}")
    boxes = await page.locator("#grid .card .act").evaluate_all(
        """buttons => buttons.map(b => [
          b.getBoundingClientRect().top, b.closest('.card').getBoundingClientRect().top,
        ])"""
    )
    rows: dict[float, set[float]] = {}
    for button_top, card_top in boxes:
        rows.setdefault(card_top, set()).add(round(button_top))
    assert all(len(tops) == 1 for tops in rows.values()), rows
    await shoot(page, "uxfront-error-in-line-1280")


async def test_the_sticky_header_paints_the_page_behind_it(lan: Lan) -> None:
    """Scrolled at 1280 px, the header shows the page's own fixed background (no band of
    another colour under it), and the tab has an icon."""
    page = await lan.page(viewport=VIEWPORT)
    await expect(page.locator('[data-game="quake3"] .peer-badge')).to_have_text("1 peer")
    await page.evaluate("() => window.scrollTo(0, 400)")
    await page.wait_for_function("() => window.scrollY > 0")
    same = await page.evaluate(
        """() => {
          const body = getComputedStyle(document.body);
          const bar = getComputedStyle(document.querySelector('.topbar'));
          return [
            bar.backgroundImage === body.backgroundImage,
            bar.backgroundAttachment === body.backgroundAttachment,
            bar.backgroundAttachment.split(", ").every((layer) => layer === "fixed"),
          ];
        }"""
    )
    assert same == [True, True, True]
    await shoot(page, "uxfront-header-scrolled-1280")
    icon = await page.locator('link[rel="icon"]').get_attribute("href")
    assert icon is not None
    assert icon.startswith("data:image/svg+xml,")
