"""Running a bundled command-line tool, portably.

Two concerns differ per platform:

* **Names in the tool's output.** 7-Zip on Linux and macOS converts file names
  with the C library's locale, so a child started under ``LANG=C`` would print
  non-ASCII names as ``?``. The child gets a UTF-8 locale (``C.UTF-8`` on
  Linux, which glibc always has; ``en_US.UTF-8`` on macOS, which has no
  ``C.UTF-8`` before macOS 14). Windows tools take wide-character arguments
  and 7-Zip's ``-scc``/``-scs`` switches pick the console and list-file
  charsets, so the environment is left as it is.
* **Aliases for archive volumes.** 7-Zip finds the next volume of a RAR set by
  name, and only under RAR's own names; a set renamed to ``.eti`` needs aliases
  with those names. POSIX aliases are symlinks in a private temporary folder
  (any filesystem); Windows creates symlinks only with a privilege most users
  lack, so its aliases are hard links, which must live on the archive's own
  volume: :func:`alias_folder_parent` says where to put the folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def utf8_child_environment() -> dict[str, str]:
    """The environment a tool child runs with, so that it reads and prints names as UTF-8."""
    environment = dict(os.environ)
    if sys.platform == "darwin":
        environment["LC_ALL"] = environment["LANG"] = "en_US.UTF-8"
    elif sys.platform != "win32":
        environment["LC_ALL"] = environment["LANG"] = "C.UTF-8"
    return environment


def executable_name(stem: str) -> str:
    """A tool's file name on this platform (``7zz`` or ``7zz.exe``)."""
    return stem + ".exe" if sys.platform == "win32" else stem


def alias_folder_parent(archive_folder: Path) -> Path | None:
    """Where a folder of volume aliases must be created (None: the system's temporary folder)."""
    return archive_folder if sys.platform == "win32" else None


def create_alias(source: Path, alias: Path) -> None:
    """Make ``alias`` name the file ``source`` (a symlink on POSIX, a hard link on Windows)."""
    if sys.platform == "win32":
        os.link(source, alias)
    else:
        alias.symlink_to(source.resolve())
