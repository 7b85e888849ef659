"""Where lanspread keeps its files by default, on every platform.

The folders come from :mod:`platformdirs`, so each one is where the platform's
conventions want it:

========  ==========================================  =====================================
folder    Linux (XDG)                                 Windows / macOS
========  ==========================================  =====================================
data      ``$XDG_DATA_HOME/lanspread``                ``%LOCALAPPDATA%\\lanspread`` /
                                                      ``~/Library/Application Support/lanspread``
state     ``$XDG_STATE_HOME/lanspread``               the data folder
log       ``$XDG_STATE_HOME/lanspread/log``           ``%LOCALAPPDATA%\\lanspread\\Logs`` /
                                                      ``~/Library/Logs/lanspread``
========  ==========================================  =====================================

The game folder stays ``<data>/games``. Versions up to 0.1.0 kept the state in
``<data>/state``; a user who has that folder keeps using it (see
:func:`default_state_dir`), so an upgrade never loses the peer identity or the settings.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "lanspread"

LEGACY_STATE_FOLDER = "state"
"""The state folder inside the data folder, where versions up to 0.1.0 kept it."""

LOG_FOLDER = "log"
"""The log folder inside a state folder given on the command line."""


def user_data_dir() -> Path:
    """The per-user data folder (it holds the default game folder)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def default_game_dir() -> Path:
    """``<data>/games``: the same folder on every version, so nothing moves on upgrade."""
    return user_data_dir() / "games"


def legacy_state_dir() -> Path:
    """The default state folder of versions up to 0.1.0: ``<data>/state``."""
    return user_data_dir() / LEGACY_STATE_FOLDER


def default_state_dir() -> Path:
    """The platform's per-user state folder, unless an older version's one exists.

    Versions up to 0.1.0 kept the identity, settings and caches in
    :func:`legacy_state_dir`. When that folder exists it stays the default: moving
    it would risk the peer identity other peers know us by, and keeping it costs
    nothing. New installs use the platform's state folder.
    """
    legacy = legacy_state_dir()
    if legacy.is_dir():
        return legacy
    return platformdirs.user_state_path(APP_NAME, appauthor=False)


def default_log_dir(state_dir: Path | None) -> Path:
    """Where the log file goes for ``state_dir`` (``None``: the default state folder).

    With the default state folder, the platform's log folder. A state folder given
    on the command line is its own instance (tests, several peers on one machine),
    so its log goes inside it, ``<state_dir>/log``: two instances never share, and
    rotate, one file.
    """
    if state_dir is None:
        return platformdirs.user_log_path(APP_NAME, appauthor=False)
    return state_dir / LOG_FOLDER
