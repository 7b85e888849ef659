"""View files without a file manager, the folder picker, and the game folder the settings
accept: a relative path is refused, ``~`` is the home folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.support.peers import sideload
from tests.web.test_api import logged_in

from lanspread.errors import ConfigError
from lanspread.storage.folders import MAX_LISTED_FOLDERS, browse_start, list_folders
from lanspread.web.settings_form import format_free_space, game_dir_from_form


async def test_view_files_without_a_file_manager_gives_the_path(tmp_path: Path) -> None:
    """The opener's raw error never reaches the page: a sentence with the path does."""
    sideload(tmp_path / "alpha" / "games", "quake3")
    async with logged_in(tmp_path, open_fails="xdg-open could not open x (exit status 3)") as api:
        status, reply = await api.post("/api/games/quake3/open-folder", {})
    root = tmp_path / "alpha" / "games" / "quake3"
    assert (status, reply["data"]) == (
        200,
        {
            "path": str(root),
            "opened": False,
            "message": f"No file manager could open the folder here. Its path is {root}",
        },
    )


async def test_the_picker_lists_subfolders_with_free_space(tmp_path: Path) -> None:
    """Folders only, sorted without regard to case, hidden ones and files left out."""
    base = tmp_path / "pick"
    for name in ("b-games", "A-games", ".hidden"):
        (base / name).mkdir(parents=True)
    (base / "file.txt").write_text("x")
    async with logged_in(tmp_path) as api:
        status, reply = await api.post("/api/folders", {"path": str(base)})
        relative, refused = await api.post("/api/folders", {"path": "games"})
    assert status == 200
    data = reply["data"]
    assert (data["path"], data["parent"], data["folders"], data["note"]) == (
        str(base),
        str(tmp_path),
        ["A-games", "b-games"],
        None,
    )
    assert data["free_label"].endswith(" free")
    assert (relative, refused["error"]["code"]) == (400, "config-error")


def test_hostile_names_are_counted_not_listed(tmp_path: Path) -> None:
    """A name with a control character or invalid bytes is left out and counted; a
    symbolic link to a folder is not followed."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad\x1bname").mkdir()
    (tmp_path / os.fsdecode(b"latin\xe9")).mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "ok", target_is_directory=True)
    listing = list_folders(tmp_path)
    assert (listing.folders, listing.unnamed, listing.truncated) == (("ok",), 2, False)


def test_a_huge_folder_is_cut_at_the_bound(tmp_path: Path) -> None:
    """More subfolders than the bound: the first ones, and the listing says it is cut."""
    for index in range(MAX_LISTED_FOLDERS + 3):
        (tmp_path / f"d{index:04d}").mkdir()
    listing = list_folders(tmp_path)
    assert (len(listing.folders), listing.truncated) == (MAX_LISTED_FOLDERS, True)


def test_a_missing_or_file_path_is_a_plain_error(tmp_path: Path) -> None:
    """The picker names what is wrong with the path it was given."""
    with pytest.raises(ConfigError, match=r"does not exist$"):
        list_folders(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=r"is not a folder$"):
        list_folders(tmp_path / "f")


def test_the_game_folder_must_be_a_full_path(tmp_path: Path) -> None:
    """Relative: refused with what to type instead; ``~`` and empty: said explicitly."""
    home = tmp_path / "home"
    with pytest.raises(ConfigError) as caught:
        game_dir_from_form("games", home)
    assert str(caught.value) == (
        f"'games' is a relative path: give the full path of the folder, such as "
        f"{home / 'Games'} (lanspread does not guess what it is relative to)"
    )
    assert game_dir_from_form(" ~/lan ", home) == home / "lan"
    assert game_dir_from_form(str(tmp_path), home) == tmp_path
    with pytest.raises(ConfigError, match=r"^choose a folder for the games$"):
        game_dir_from_form("  ", home)
    assert browse_start("", home) == home


def test_free_space_in_words() -> None:
    """Bytes free as the page shows them, and an unknown amount said so."""
    assert format_free_space(412_000_000_000) == "412 GB free"
    assert format_free_space(None) == "free space unknown"
