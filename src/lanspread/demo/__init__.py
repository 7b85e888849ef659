"""Demo mode: a second local peer seeded with small generated games.

``lanspread demo`` (or ``--demo``, or the first run with an empty library) starts
:class:`DemoPeer` beside the user's peer, so a newcomer can download, install and
play something on one machine within a minute. The demo games are real archives
(tar and zip) with a launcher script, generated deterministically
(:mod:`lanspread.demo.roots`); their catalog entries (ids ``demo-...``) are
added to the catalog of both peers for that run only (:func:`with_demo_games`).
"""

from lanspread.demo.firstrun import DemoMode, choose_demo_mode
from lanspread.demo.games import (
    DEFAULT_PLAY_SECONDS,
    DEMO_GAMES,
    DEMO_ID_PREFIX,
    PLAY_LOG,
    POSIX_LAUNCHER,
    WINDOWS_LAUNCHER,
    ArchiveKind,
    demo_game,
    is_demo_id,
    launcher_for,
)
from lanspread.demo.peer import DEMO_PEER_NAME, DemoPeer
from lanspread.demo.roots import root_files, with_demo_games, write_demo_library

__all__ = [
    "DEFAULT_PLAY_SECONDS",
    "DEMO_GAMES",
    "DEMO_ID_PREFIX",
    "DEMO_PEER_NAME",
    "PLAY_LOG",
    "POSIX_LAUNCHER",
    "WINDOWS_LAUNCHER",
    "ArchiveKind",
    "DemoMode",
    "DemoPeer",
    "choose_demo_mode",
    "demo_game",
    "is_demo_id",
    "launcher_for",
    "root_files",
    "with_demo_games",
    "write_demo_library",
]
