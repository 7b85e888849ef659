"""Runtime hook of the frozen bundle: load the libarchive shipped inside it.

libarchive-c opens the library named by the ``LIBARCHIVE`` environment variable,
else whatever ``find_library("archive")`` finds on the system: on a guest's
machine that may be missing or another build. The spec bundles one copy at the
top of the bundle and writes its file name into ``lanspread-libarchive.txt``;
this hook points ``LIBARCHIVE`` at it, imports libarchive-c once so the copy is
loaded, then puts the variable back as it was, so the games lanspread starts do
not inherit it.
"""

import os
import sys
from pathlib import Path

LIBARCHIVE_NAME_FILE = "lanspread-libarchive.txt"


def _load_bundled_libarchive(bundle: Path) -> None:
    name = (bundle / LIBARCHIVE_NAME_FILE).read_text(encoding="utf-8").strip()
    before = os.environ.get("LIBARCHIVE")
    os.environ["LIBARCHIVE"] = str(bundle / name)
    try:
        import libarchive.ffi  # noqa: F401  (loads the library, once per process)
    finally:
        if before is None:
            del os.environ["LIBARCHIVE"]
        else:
            os.environ["LIBARCHIVE"] = before


# The bootloader of a frozen app sets both; a plain interpreter has neither.
_BUNDLE = getattr(sys, "_MEIPASS", None)
if getattr(sys, "frozen", False) and _BUNDLE is not None:
    _load_bundled_libarchive(Path(_BUNDLE))
