"""When the ``lanspread`` command starts the demo peer.

Only when asked (``lanspread demo``, ``--demo``). It used to start by itself on a
first run with an empty game folder, and so it did at a real party too, listed
among the real players; a newcomer now sees the real network, and the library
says how to try the demo when nobody else is there.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from lanspread.core.catalog import Catalog


class DemoMode(enum.Enum):
    OFF = "off"
    AUTO = "auto"
    """Start the demo, or carry on without it if it fails (no start chooses this any more;
    kept for a caller that wants a demo it can do without)."""
    ON = "on"
    """Asked for (``lanspread demo``, ``--demo``): a demo that cannot start is an error."""


def library_is_empty(game_dir: Path, catalog: Catalog) -> bool:
    """True when ``game_dir`` holds no folder named after a game of ``catalog``.

    A missing folder is empty. A folder that cannot be read is not called empty:
    the peer's start reports that problem, and a demo on top would only hide it.
    Demo games (``demo-...``) are not in a plain catalog, so they never count.
    """
    try:
        with os.scandir(game_dir) as entries:
            return not any(
                entry.name in catalog and entry.is_dir(follow_symlinks=False) for entry in entries
            )
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False


def choose_demo_mode(requested: bool | None) -> DemoMode:
    """The demo runs when asked for (``lanspread demo``, ``--demo``), never by itself."""
    return DemoMode.ON if requested else DemoMode.OFF
