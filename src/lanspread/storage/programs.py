"""The record of the programs the player ran, in the state folder (``programs.json``).

The rule and the record's shape live in ``core/programs``; this module reads and
writes the file, atomically. A missing, unreadable or malformed file is an empty
record with a warning: the worst outcome is one more question before Play.
"""

from __future__ import annotations

import logging
from pathlib import Path

import blake3
import msgspec

from lanspread.core.programs import MAX_RECORD_FILE_SIZE, ProgramRecord
from lanspread.errors import StorageError
from lanspread.files.atomic import atomic_write_bytes, read_regular_bounded

log = logging.getLogger(__name__)

PROGRAMS_FILE = "programs.json"
# Executables are read in pieces of this size to hash them.
READ_SIZE = 1024 * 1024


def load_programs(state_dir: Path) -> ProgramRecord:
    """The record in ``state_dir`` (blocking); an empty one when there is none or it is bad."""
    path = state_dir / PROGRAMS_FILE
    try:
        data = read_regular_bounded(path, MAX_RECORD_FILE_SIZE)
        return ProgramRecord() if data is None else ProgramRecord.decode(data)
    except (StorageError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("ignoring the record of programs run, %s: %s", path, exc)
        return ProgramRecord()


def save_programs(state_dir: Path, record: ProgramRecord) -> None:
    """Replace the record in ``state_dir`` (blocking, atomic, durable)."""
    atomic_write_bytes(state_dir / PROGRAMS_FILE, record.encode())


def program_digest(executable: Path) -> str:
    """Hex BLAKE3 of the executable's bytes (blocking)."""
    hasher = blake3.blake3()
    try:
        with executable.open("rb") as program:
            while piece := program.read(READ_SIZE):
                hasher.update(piece)
    except OSError as exc:
        raise StorageError(f"cannot read {executable}: {exc.strerror or exc}") from exc
    return hasher.hexdigest()
