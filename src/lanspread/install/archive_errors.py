"""The errors of archive extraction, a branch of lanspread's one exception tree.

::

    StorageError                    (lanspread.errors)
    └── ExtractionError             an archive set cannot be extracted
        ├── HostileArchive              an entry would escape the destination or is a device
        ├── CorruptArchive              unreadable, truncated or inconsistent archive data
        ├── EncryptedArchive            the archive needs a password
        └── NotEnoughSpace              the destination's disk lacks room for the game
    LanspreadError                  (lanspread.errors)
    └── ExtractionCancelled         the caller asked extraction to stop

Every message names the archive (the first volume of its set) and, where one is
to blame, the entry. libarchive's and 7-Zip's own errors never leave the install layer.
"""

from __future__ import annotations

from pathlib import Path

from lanspread.errors import LanspreadError, StorageError
from lanspread.files.atomic import free_bytes


class ExtractionError(StorageError):
    """An archive set cannot be extracted; the message names the archive and entry."""


class HostileArchive(ExtractionError):
    """An entry would land outside the destination, or is a device, FIFO or socket."""


class CorruptArchive(ExtractionError):
    """The archive data is unreadable, truncated, inconsistent or a volume is missing."""


class EncryptedArchive(ExtractionError):
    """An entry or the headers are encrypted: the game cannot be installed without a password."""


class NotEnoughSpace(ExtractionError):
    """The destination's filesystem has less room than the extracted game needs."""

    def __init__(self, message: str, *, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available


class ExtractionCancelled(LanspreadError):
    """``should_stop`` returned True; what was extracted so far has been removed."""


def disk_full(root: Path, doing: str) -> NotEnoughSpace:
    """The disk of ``root`` filled up while ``doing`` (``extracting a.rar``)."""
    available = free_bytes(root, error=ExtractionError)
    return NotEnoughSpace(f"disk full in {root} while {doing}", needed=0, available=available)


def write_error(archive: str, root: Path, name: str, reason: str, *, full: bool) -> ExtractionError:
    """A write of entry ``name`` of ``archive`` into ``root`` the disk refused for
    ``reason``; :class:`NotEnoughSpace` when the disk is ``full``."""
    if full:
        return disk_full(root, f"writing entry {name!r} of {archive}: {reason}")
    return ExtractionError(f"{archive}: cannot write entry {name!r}: {reason}")
