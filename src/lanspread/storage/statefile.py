"""Reading a small convenience file of the state directory, where damage is no reason to stop.

Such a file (play time, withheld copies) is replaced atomically by its writer. A
reader sweeps a crash-left temp file, reads only a regular file within its size
bound, and decodes it; anything unreadable, oversized or malformed is logged and
treated as absent.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeVar

import msgspec

from lanspread.errors import StorageError
from lanspread.files.atomic import read_regular_bounded, sweep_temp

log = logging.getLogger(__name__)

T = TypeVar("T")


def load_state_file(path: Path, limit: int, kind: type[T], *, what: str) -> T | None:
    """``path`` decoded as ``kind``; ``None`` when missing or unusable (logged, naming
    ``what``, e.g. ``the play time``)."""
    try:
        sweep_temp(path)
        raw = read_regular_bounded(path, limit)
    except (OSError, StorageError) as exc:
        log.warning("cannot read %s in %s (ignored): %s", what, path, exc)
        return None
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        log.warning("%s does not hold %s (ignored): %s", path, what, exc)
        return None
