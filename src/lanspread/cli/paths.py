"""Where lanspread keeps its files by default, per platform."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_data_dir() -> Path:
    """The per-user data folder: ``%LOCALAPPDATA%\\lanspread`` or ``$XDG_DATA_HOME/lanspread``."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "lanspread"


def default_game_dir() -> Path:
    return user_data_dir() / "games"


def default_state_dir() -> Path:
    return user_data_dir() / "state"
