"""Loading catalog files: the bundled catalog, the user's file, and every unreadable file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanspread.core.catalog import is_valid_game_id
from lanspread.errors import CatalogError
from lanspread.storage.catalog_file import (
    BUNDLED_SOURCE,
    MAX_CATALOG_FILE_SIZE,
    load_bundled_catalog,
    load_catalog,
    load_catalog_file,
)

ONE_GAME = """
[[game]]
id = "quake3"
name = "Quake III Arena"
size_bytes = 480_000_000
genre = "Shooter"
max_players = 16
"""


def test_bundled_catalog_is_valid() -> None:
    """The catalog shipped in the package parses, is not empty and names its source."""
    catalog = load_bundled_catalog()

    assert catalog.source == BUNDLED_SOURCE
    assert len(catalog) > 0
    assert all(is_valid_game_id(game.id) for game in catalog)


def test_load_catalog_without_path_is_the_bundled_one() -> None:
    """No --catalog option means the bundled catalog."""
    assert load_catalog(None).ids == load_bundled_catalog().ids


def test_user_catalog_file_is_loaded(tmp_path: Path) -> None:
    """A user's file is parsed and named by its path in the catalog source."""
    path = tmp_path / "catalog.toml"
    path.write_text(ONE_GAME, "utf-8")

    catalog = load_catalog(path)

    assert catalog.ids == {"quake3"}
    assert catalog.source == str(path)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 give a CatalogError with the offending position."""
    path = tmp_path / "catalog.toml"
    path.write_bytes(b'[[game]]\nid = "caf\xe9"\n')

    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)

    assert str(caught.value) == f"{path}: not UTF-8 text (invalid continuation byte at byte 18)"


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """A path that does not exist is a CatalogError, not a raw OSError."""
    path = tmp_path / "nope.toml"

    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)

    assert str(caught.value) == f"{path}: cannot read: No such file or directory"


def test_folder_instead_of_file_is_refused(tmp_path: Path) -> None:
    """A folder given as the catalog is a CatalogError."""
    with pytest.raises(CatalogError) as caught:
        load_catalog_file(tmp_path)

    assert str(caught.value) == f"{tmp_path}: cannot read: Is a directory"


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    """A file above MAX_CATALOG_FILE_SIZE is refused from its size alone."""
    path = tmp_path / "catalog.toml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_CATALOG_FILE_SIZE + 1)

    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)

    assert str(caught.value) == (
        f"{path}: {MAX_CATALOG_FILE_SIZE + 1} bytes is larger than a catalog can be"
    )


def test_parse_errors_name_the_file(tmp_path: Path) -> None:
    """A malformed entry's message starts with the file's path."""
    path = tmp_path / "catalog.toml"
    path.write_text(ONE_GAME.replace("max_players = 16", "max_players = 0"), "utf-8")

    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)

    assert str(caught.value) == (
        f"{path}: game #1 ('quake3'): field 'max_players': must be at least 1, got 0"
    )
