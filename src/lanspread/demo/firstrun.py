"""When the ``lanspread`` command starts the demo peer.

Only when asked (``lanspread demo``, ``--demo``). It used to start by itself on a
first run with an empty game folder, and so it did at a real party too, listed
among the real players; a newcomer now sees the real network, and the library
says how to try the demo when nobody else is there.
"""

from __future__ import annotations

import enum


class DemoMode(enum.Enum):
    OFF = "off"
    AUTO = "auto"
    """Start the demo, or carry on without it if it fails (no start chooses this any more;
    kept for a caller that wants a demo it can do without)."""
    ON = "on"
    """Asked for (``lanspread demo``, ``--demo``): a demo that cannot start is an error."""


def choose_demo_mode(requested: bool | None) -> DemoMode:
    """The demo runs when asked for (``lanspread demo``, ``--demo``), never by itself."""
    return DemoMode.ON if requested else DemoMode.OFF
