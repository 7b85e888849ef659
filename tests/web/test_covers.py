"""Cover images: only pictures the catalog names, from beside the catalog, of a sane size."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanspread.core.catalog import Catalog, parse_catalog
from lanspread.storage.catalog_file import load_bundled_catalog
from lanspread.web.covers import MAX_COVER_BYTES, catalog_folder, is_picture, read_cover

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
GAME = '[[game]]\nid = "{id}"\nname = "G"\nsize_bytes = 1\ngenre = "x"\nmax_players = 2\n'


def catalog_with(folder: Path, covers: dict[str, str]) -> Catalog:
    text = "\n".join(
        GAME.format(id=game_id) + f'cover = "{cover}"\n' for game_id, cover in covers.items()
    )
    return parse_catalog(text, str(folder / "catalog.toml"))


@pytest.mark.parametrize(
    ("head", "content_type", "expected"),
    [
        (PNG, "image/png", True),
        (b"\xff\xd8\xff\xe0rest", "image/jpeg", True),
        (b"GIF89a....", "image/gif", True),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp", True),
        (b"RIFF\0\0\0\0WAVEfmt ", "image/webp", False),
        (b"<svg onload=alert(1)>", "image/png", False),
        (PNG, "text/html", False),
    ],
)
def test_a_picture_is_known_by_its_first_bytes(
    head: bytes, content_type: str, expected: bool
) -> None:
    """Each type's signature is required; a page or a sound named like a picture is not one."""
    assert is_picture(head, content_type) is expected


def test_only_named_pictures_inside_the_catalog_folder_are_read(tmp_path: Path) -> None:
    """The catalog's picture is read; a link out of the folder (the catalog itself refuses
    ``..``), a non-picture suffix, a file that is no picture, an oversized one and a
    missing one are all refused."""
    folder = tmp_path / "catalog"
    folder.mkdir()
    (tmp_path / "secret.png").write_bytes(PNG)
    (folder / "ok.png").write_bytes(PNG)
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    (folder / "notes.txt").write_bytes(PNG)
    (folder / "fake.png").write_bytes(b"<html>")
    (folder / "huge.png").write_bytes(PNG + b"\0" * MAX_COVER_BYTES)
    catalog = catalog_with(
        folder,
        {
            "ok": "ok.png",
            "escape": "link.png",
            "text": "notes.txt",
            "fake": "fake.png",
            "huge": "huge.png",
            "gone": "gone.png",
        },
    )
    assert read_cover(catalog, "ok") == (PNG, "image/png")
    for game_id in ("escape", "text", "fake", "huge", "gone", "not-in-catalog", "../ok"):
        assert read_cover(catalog, game_id) is None, game_id


def test_the_bundled_catalog_reads_from_the_package_data() -> None:
    """Pictures shipped beside the bundled catalog are looked for in the package's data."""
    folder = catalog_folder(load_bundled_catalog())
    assert (folder / "catalog.toml").is_file()
