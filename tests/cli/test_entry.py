"""Start-up without libarchive: a clear message and a clean exit, never a traceback."""

from __future__ import annotations

import ctypes
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from lanspread.cli import entry
from lanspread.errors import ArchiveLibraryMissing
from lanspread.platform import archive_library

MISSING_ON_UBUNTU = (
    "cannot load libarchive, the library lanspread unpacks games with. "
    "On Debian or Ubuntu install it with: apt-get install libarchive13."
)

# Modules kept across the simulation: the error tree, the platform helpers and the
# entry point itself, so the error class the test catches is the one raised.
_KEPT = ("lanspread.errors", "lanspread.platform", "lanspread.cli.entry", "lanspread._version")


def _reimported(name: str) -> bool:
    if name == "libarchive" or name.startswith("libarchive."):
        return True
    return name.startswith("lanspread.") and not name.startswith(_KEPT)


def _restore(saved: dict[str, ModuleType]) -> None:
    for name in [name for name in sys.modules if _reimported(name)]:
        del sys.modules[name]
    for name, module in saved.items():
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)


@pytest.fixture
def libarchive_unloadable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The app imported afresh on an Ubuntu system whose dynamic loader has no libarchive."""

    def no_library(name: str | None) -> ctypes.CDLL:
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(ctypes.cdll, "LoadLibrary", no_library)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(archive_library, "_os_release", lambda: {"ID": "ubuntu"})
    saved = {name: module for name, module in sys.modules.items() if _reimported(name)}
    _restore({})
    try:
        yield
    finally:
        _restore(saved)


@pytest.mark.usefixtures("libarchive_unloadable")
def test_the_installer_raises_the_typed_error_naming_the_install_step() -> None:
    """Importing the libarchive binding raises ArchiveLibraryMissing with the install step."""
    with pytest.raises(ArchiveLibraryMissing) as caught:
        importlib.import_module("lanspread.install._libarchive")
    assert str(caught.value) == MISSING_ON_UBUNTU


@pytest.mark.usefixtures("libarchive_unloadable")
@pytest.mark.parametrize("argv", [[], ["peer-cli"]], ids=["app", "peer-cli"])
def test_start_up_without_libarchive_says_what_is_missing(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``lanspread`` and ``lanspread peer-cli`` print one line and exit 2, without a traceback."""
    assert entry.main(argv) == entry.EXIT_START_FAILED
    captured = capsys.readouterr()
    assert captured.err == f"lanspread: {MISSING_ON_UBUNTU}\n"
    assert captured.out == ""


def test_start_up_with_libarchive_runs_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the library present the entry point hands argv to the app and returns its status."""
    seen: list[list[str] | None] = []

    def app_main(argv: list[str] | None) -> int:
        seen.append(argv)
        return 7

    monkeypatch.setattr(entry, "load_app", lambda: app_main)
    assert entry.main(["peer-cli", "--help"]) == 7
    assert seen == [["peer-cli", "--help"]]


CHILD = Path(__file__).resolve().parents[1] / "support" / "no_libarchive_child.py"
# Start-up of a fresh interpreter that fails at once; far above the second it takes.
CHILD_TIMEOUT_SECONDS = 60


@pytest.mark.parametrize("argv", [[], ["peer-cli"]], ids=["app", "peer-cli"])
def test_the_command_without_libarchive_exits_cleanly_in_a_fresh_process(argv: list[str]) -> None:
    """The real command, its whole package imported afresh, prints one line and exits 2."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(CHILD), *argv],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        entry.EXIT_START_FAILED,
        "",
        f"lanspread: {MISSING_ON_UBUNTU}\n",
    )
