"""Where lanspread keeps its files by default, per platform."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_data_dir() -> Path:
    """The per-user data folder: ``%LOCALAPPDATA%\\lanspread`` or ``$XDG_DATA_HOME/lanspread``."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "lanspread"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "lanspread"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lanspread"


def default_game_dir() -> Path:
    return user_data_dir() / "games"


def default_state_dir() -> Path:
    return user_data_dir() / "state"
