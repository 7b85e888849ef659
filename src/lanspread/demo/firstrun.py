"""When the ``lanspread`` command starts the demo peer by itself."""

from __future__ import annotations

import enum
import os
from pathlib import Path

from lanspread.core.catalog import Catalog


class DemoMode(enum.Enum):
    OFF = "off"
    AUTO = "auto"
    """First run with an empty library: start the demo, or carry on without it if it fails."""
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


def choose_demo_mode(
    requested: bool | None, *, first_run: bool, game_dir: Path, catalog: Catalog
) -> DemoMode:
    """``--demo``/``--no-demo`` decide when given; else a first run with no games gets one."""
    if requested is not None:
        return DemoMode.ON if requested else DemoMode.OFF
    if first_run and library_is_empty(game_dir, catalog):
        return DemoMode.AUTO
    return DemoMode.OFF
