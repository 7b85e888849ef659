"""The entry point of the ``lanspread`` command (the app and ``lanspread peer-cli``).

It loads the app inside a guard: a system that lacks a shared library the app
needs (libarchive) gets one line saying what is missing and how to install it,
and a clean exit status, instead of an import traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from lanspread.errors import ArchiveLibraryMissing

# The status of any start-up failure, as the app itself returns for a bad option.
EXIT_START_FAILED = 2

AppMain = Callable[[list[str] | None], int]


def main(argv: list[str] | None = None) -> int:
    """Run ``lanspread`` with ``argv``; 2 with a message on stderr when it cannot start."""
    try:
        app_main = load_app()
    except ArchiveLibraryMissing as exc:
        print(f"lanspread: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    return app_main(argv)


def load_app() -> AppMain:
    """Import the app, which loads libarchive on the way (through the installer)."""
    from lanspread.cli.app import main as app_main

    return app_main
