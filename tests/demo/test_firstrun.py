"""When the app starts the demo by itself, and how ``lanspread demo`` parses its options."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanspread.cli.app import build_parser
from lanspread.demo import DemoMode, choose_demo_mode, library_is_empty
from lanspread.storage.catalog_file import load_bundled_catalog

CATALOG = load_bundled_catalog()


def test_missing_or_unrelated_folders_make_an_empty_library(tmp_path: Path) -> None:
    """No folder, other folders, demo folders and files named like games are no library."""
    games = tmp_path / "games"
    assert library_is_empty(games, CATALOG)
    games.mkdir()
    (games / "holiday-photos").mkdir()
    (games / "demo-pixelkart").mkdir()
    (games / "quake3").write_text("a file, not a game root")
    assert library_is_empty(games, CATALOG)


def test_one_catalog_game_folder_is_a_library(tmp_path: Path) -> None:
    """A folder named after a catalog game means the player already has games."""
    (tmp_path / "quake3").mkdir()
    assert not library_is_empty(tmp_path, CATALOG)


def test_a_game_dir_below_a_file_counts_as_empty(tmp_path: Path) -> None:
    """A path through a file cannot hold games (the peer's start reports it)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert library_is_empty(blocker / "games", CATALOG)


def test_an_unreadable_game_dir_is_not_called_empty(tmp_path: Path) -> None:
    """A folder that cannot be listed (a symlink loop here) gets no demo on top of its error."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert not library_is_empty(loop, CATALOG)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(None, DemoMode.OFF), (True, DemoMode.ON), (False, DemoMode.OFF)],
)
def test_the_demo_runs_only_when_asked(requested: bool | None, expected: DemoMode) -> None:
    """--demo and ``lanspread demo`` start it; nothing else does, a first run included."""
    assert choose_demo_mode(requested) is expected


def test_demo_subcommand_takes_the_app_options_before_or_after_it() -> None:
    """Options after ``demo`` win; options before it are kept; defaults stay the app's."""
    parser = build_parser()
    plain = parser.parse_args(["demo"])
    assert (plain.command, plain.name, plain.ui_port, plain.no_browser, plain.demo) == (
        "demo",
        None,
        0,
        False,
        None,
    )
    before = parser.parse_args(["--name", "Alex", "--ui-port", "8123", "demo"])
    assert (before.name, before.ui_port) == ("Alex", 8123)
    after = parser.parse_args(["--name", "Alex", "demo", "--name", "Sam", "--no-browser"])
    assert (after.name, after.no_browser) == ("Sam", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--no-demo"])
    assert parser.parse_args(["--no-demo"]).demo is False
    assert parser.parse_args(["--demo"]).demo is True
