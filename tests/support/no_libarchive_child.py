"""Child for the start-up tests: the ``lanspread`` command on a system without libarchive.

Before anything of lanspread is imported it patches the dynamic loader to refuse
every library and the system to read as Linux (Ubuntu), then runs the command's entry point with
its arguments, as the installed ``lanspread`` script would.
"""

from __future__ import annotations

import ctypes
import platform
import sys

import pytest


def _no_library(name: str | None) -> ctypes.CDLL:
    raise OSError(f"{name}: cannot open shared object file: No such file or directory")


def _ubuntu() -> dict[str, str]:
    return {"ID": "ubuntu"}


def run() -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ctypes.cdll, "LoadLibrary", _no_library)
        patch.setattr(platform, "freedesktop_os_release", _ubuntu)
        patch.setattr(sys, "platform", "linux")
        from lanspread.cli.entry import main

        return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(run())
