"""Reading the root ``version.ini`` sentinel: what version a game root declares.

A game root is downloaded iff a regular ``version.ini`` sits at its top
(:mod:`lanspread.files.sentinel` writes it last); its bytes name the version.
:func:`read_sentinel` reads it without following a link, never blocking on a
FIFO and never holding more than ``MAX_VERSION_FILE_SIZE`` bytes, and says
whether the read can be trusted later by size and mtime alone (*settled*);
:func:`version_from_sentinel` turns the bytes into the version.

Coarse timestamps. Mtimes move in ticks (a kernel tick on ext4, 2 s on FAT), so a
change in the same tick as an observation can leave an mtime unchanged. An
observation made while the mtime was within :data:`COARSE_MTIME_WINDOW_NS` of
the clock is *unsettled* (:func:`settled`): whoever keeps it reads again before
trusting it (the library scanner does, see :mod:`lanspread.storage.scanner`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated

import msgspec

from lanspread.core.gameroot import MAX_VERSION_FILE_SIZE, VERSION_FILE, parse_version_text
from lanspread.files.atomic import read_at_most
from lanspread.platform import fileio

# FAT and exFAT store mtimes in 2 s steps, the coarsest a game directory may sit on;
# every other filesystem's tick (ext4's kernel tick, NTFS's 100 ns) is finer.
COARSE_MTIME_WINDOW_NS = 2_000_000_000

# NOFOLLOW: a sentinel swapped for a symlink is never read through; NONBLOCK: a
# FIFO swapped in after a listing cannot hang the read.
_SENTINEL_FLAGS = (
    os.O_RDONLY | fileio.O_NOFOLLOW | fileio.O_NONBLOCK | fileio.O_CLOEXEC | fileio.O_BINARY
)


class SentinelPrint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The root ``version.ini`` as it was read."""

    size: int
    mtime_ns: int
    contents: Annotated[bytes, msgspec.Meta(max_length=MAX_VERSION_FILE_SIZE)]
    """The bytes read; empty when the file is larger than a sentinel can be."""
    settled: bool
    """The mtime was older than the coarse-timestamp window when the file was read,
    so a later rewrite must move size or mtime. An unsettled sentinel is re-read."""


def settled(mtime_ns: int, now_ns: int) -> bool:
    """True when an mtime seen at ``now_ns`` is old enough that any later change moves it."""
    return mtime_ns + COARSE_MTIME_WINDOW_NS <= now_ns


def read_sentinel(root: Path, now_ns: int) -> SentinelPrint | None:
    """Read the root ``version.ini`` without following links; ``None`` when unreadable.

    At most ``MAX_VERSION_FILE_SIZE`` bytes are kept; a larger file gives empty
    contents (an unknown version). ``now_ns`` is the clock that decides whether
    the read is settled (see the module docstring).
    """
    try:
        fd = os.open(root / VERSION_FILE, _SENTINEL_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        oversized = info.st_size > MAX_VERSION_FILE_SIZE
        contents = None if oversized else read_at_most(fd, MAX_VERSION_FILE_SIZE)
    except OSError:
        return None
    finally:
        os.close(fd)
    return SentinelPrint(
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        contents=contents or b"",
        settled=settled(info.st_mtime_ns, now_ns),
    )


def version_from_sentinel(sentinel: SentinelPrint | None) -> str | None:
    """The version the sentinel's bytes declare (UTF-8, or UTF-16 with a BOM)."""
    if sentinel is None or not sentinel.contents:
        return None
    raw = sentinel.contents
    encoding = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
    return parse_version_text(raw.decode(encoding, errors="replace"))


__all__ = [
    "COARSE_MTIME_WINDOW_NS",
    "SentinelPrint",
    "read_sentinel",
    "settled",
    "version_from_sentinel",
]
