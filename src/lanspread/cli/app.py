"""The ``lanspread`` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    del argv
    print("lanspread: the peer runtime is not built yet", file=sys.stderr)
    return 1
