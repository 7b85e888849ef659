"""The default folders: the platform's own, and an older version's state folder kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lanspread.cli.paths import (
    default_game_dir,
    default_log_dir,
    default_state_dir,
    legacy_state_dir,
    user_data_dir,
)

# The XDG variables (set into tmp_path by conftest.py) place the folders on Linux only;
# elsewhere these tests would reach the real user folders.
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="XDG folders are Linux's")


def test_folders_follow_the_xdg_variables(private_home: Path) -> None:
    """Data (with the games) in XDG_DATA_HOME, state in XDG_STATE_HOME, logs inside state."""
    data = private_home / "xdg_data_home" / "lanspread"
    state = private_home / "xdg_state_home" / "lanspread"
    assert user_data_dir() == data
    assert default_game_dir() == data / "games"
    assert default_state_dir() == state
    assert default_log_dir(None) == state / "log"


def test_the_game_folder_is_where_older_versions_put_it(private_home: Path) -> None:
    """``<data>/games`` under XDG_DATA_HOME, the very folder version 0.1.0 used."""
    assert default_game_dir() == private_home / "xdg_data_home" / "lanspread" / "games"


def test_an_older_versions_state_folder_stays_the_default() -> None:
    """When ``<data>/state`` exists (made by 0.1.0), it is the default, not the new folder."""
    legacy = legacy_state_dir()
    assert legacy == user_data_dir() / "state"
    assert default_state_dir() != legacy, "no old folder yet: the platform's state folder"
    legacy.mkdir(parents=True)
    assert default_state_dir() == legacy


def test_a_file_where_the_old_state_folder_was_is_not_used() -> None:
    """Only a folder counts as an older version's state; a stray file changes nothing."""
    legacy = legacy_state_dir()
    legacy.parent.mkdir(parents=True)
    legacy.write_text("not a folder")
    assert default_state_dir() != legacy


def test_a_given_state_folder_keeps_its_log_inside(tmp_path: Path) -> None:
    """With ``--state-dir``, the log goes to ``<state_dir>/log``, never a shared folder."""
    assert default_log_dir(tmp_path / "peer") == tmp_path / "peer" / "log"
