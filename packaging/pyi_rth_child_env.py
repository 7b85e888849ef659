"""Runtime hook of the frozen bundle: games must not inherit the bundle's libraries.

On Linux the bundle's launcher puts its own library folder first in
``LD_LIBRARY_PATH`` (saving the user's value in ``LD_LIBRARY_PATH_ORIG``), and
every game lanspread starts would inherit it: a native game would then load the
bundle's libstdc++ or OpenSSL instead of the system's. The dynamic loader read
the variable when this process started and keeps using what it read, so giving
the user's value back here changes nothing for lanspread itself, only for the
processes it starts. ``PYINSTALLER_RESET_ENVIRONMENT`` makes a game that is
itself a frozen program start as its own, not as a child of this one.
macOS and Windows launchers do not use ``LD_LIBRARY_PATH``; the branch is a no-op.
"""

import os
import sys


def _restore_child_environment() -> None:
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)
    os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"


if getattr(sys, "frozen", False):
    _restore_child_environment()
