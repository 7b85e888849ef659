"""The version is defined once, in ``lanspread._version``, and ``--version`` prints it."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from lanspread import __version__
from lanspread._version import __version__ as defined_version

# A Python start plus the argument parser; seconds only on a loaded machine.
VERSION_TIMEOUT = 30.0


def test_installed_metadata_carries_the_version_of_version_py() -> None:
    """The package metadata's version comes from ``_version.py`` (pyproject reads it)."""
    assert metadata.version("lanspread") == defined_version == __version__


def test_version_option_prints_the_version() -> None:
    """``lanspread --version`` prints ``lanspread <version>`` and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "lanspread", "--version"],
        capture_output=True,
        text=True,
        timeout=VERSION_TIMEOUT,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"lanspread {__version__}\n", "")
