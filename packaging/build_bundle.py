"""Build the offline bundle: ``python packaging/build_bundle.py [--dist DIR] [--work DIR]``.

Runs PyInstaller on ``packaging/lanspread.spec`` with the interpreter running
this script (so in the environment where lanspread and PyInstaller are
installed) and leaves the one-folder bundle in ``DIST/lanspread`` (default
``dist/lanspread``). The same command builds on Linux, Windows and macOS; on
Windows set ``LANSPREAD_LIBARCHIVE_DLL`` to libarchive's DLL first (see the spec).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "lanspread.spec"
BUNDLE_NAME = "lanspread"
MiB = 1024 * 1024


def build(dist: Path, work: Path) -> Path:
    """Build the bundle into ``dist / "lanspread"`` and return that folder."""
    try:
        import PyInstaller  # noqa: F401  (only to say clearly when it is missing)
    except ImportError:
        raise SystemExit(
            f"PyInstaller is not installed for {sys.executable}; "
            "`make bundle` installs it, or: python -m pip install pyinstaller"
        ) from None
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(SPEC),
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    return dist / BUNDLE_NAME


def size_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build lanspread's one-folder offline bundle.")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    bundle = build(args.dist, args.work)
    print(
        f"built {bundle} in {time.monotonic() - started:.0f} s: {size_bytes(bundle) / MiB:.0f} MiB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
