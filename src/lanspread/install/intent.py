"""How lanspread proves what it owns in a game root: the intent log and ownership markers.

The intent log ``<root>/.lanspread.json`` records which install transaction is in
flight (see :mod:`lanspread.core.recovery`). It is written atomically (temp file,
fsync, rename, fsync of the root) before any directory move, and cleared by
unlinking it once the root is settled: a missing log means :attr:`Intent.NONE`,
so a game root that was never installed, or is settled, carries no log at all.

A log that cannot be decoded, names another game or has another format version
raises :class:`~lanspread.errors.IntentLogCorrupt`; recovery then treats the
intent as unknown and touches only what markers prove is lanspread's.

A reserved directory lanspread creates (``.local.installing/`` right after
``mkdir``, ``.local.backup/`` right after the rename from ``local/``) gets a
``.lanspread_owned`` marker file, so a directory of that name the user made
without one is never mistaken for ours.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

import msgspec

from lanspread.core.gameroot import INTENT_FILE, INTENT_TMP_FILE, OWNED_MARKER
from lanspread.core.recovery import Intent
from lanspread.errors import IntentLogCorrupt, StorageError
from lanspread.files.atomic import atomic_write_bytes, fsync_dir
from lanspread.platform import fileio

INTENT_FORMAT_VERSION = 1

# A record is under 100 bytes; a larger file is not one we wrote, so it is never read whole.
MAX_INTENT_FILE_SIZE = 4096

# Windows has no O_NOFOLLOW; there the lstat checks below are the guard.
_NOFOLLOW = fileio.O_NOFOLLOW

_MARKER_TEXT = b"created by lanspread; removed when its transaction settles\n"


class IntentRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The persisted intent log."""

    format: int
    game_id: str
    intent: Intent


def intent_path(root: Path) -> Path:
    return root / INTENT_FILE


def read_intent(root: Path) -> Intent:
    """The intent recorded for the game root ``root`` (its folder name is the game id).

    Raises :class:`IntentLogCorrupt` when the log exists but cannot be trusted and
    :class:`StorageError` when it cannot be read at all.
    """
    path = intent_path(root)
    data = _read_bounded_regular_file(path)
    if data is None:
        return Intent.NONE
    try:
        record = msgspec.json.decode(data, type=IntentRecord)
    except msgspec.ValidationError as exc:
        raise IntentLogCorrupt(f"{path}: not an intent record: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise IntentLogCorrupt(f"{path}: not valid JSON: {exc}") from exc
    if record.format != INTENT_FORMAT_VERSION:
        raise IntentLogCorrupt(
            f"{path}: format {record.format} is not supported (expected {INTENT_FORMAT_VERSION})"
        )
    if record.game_id != root.name:
        raise IntentLogCorrupt(f"{path}: records game {record.game_id!r}, not {root.name!r}")
    return record.intent


def write_intent(root: Path, intent: Intent) -> None:
    """Record ``intent`` durably; recording :attr:`Intent.NONE` clears the log."""
    if intent is Intent.NONE:
        clear_intent(root)
        return
    temp = root / INTENT_TMP_FILE
    if os.path.lexists(temp) and not is_our_intent_temp(root):
        raise StorageError(f"{temp} is not a file lanspread wrote; move it out of the game folder")
    record = IntentRecord(format=INTENT_FORMAT_VERSION, game_id=root.name, intent=intent)
    atomic_write_bytes(intent_path(root), msgspec.json.encode(record), temp=root / INTENT_TMP_FILE)


def is_our_intent_temp(root: Path) -> bool:
    """True when the intent log's temp file holds what :func:`write_intent` writes.

    A kill during the atomic write leaves an empty file, a prefix of the record
    or the whole record; its first bytes name the format and this game (the
    field order is fixed). Anything else, or anything but a regular file, is
    the player's and is never overwritten or deleted.
    """
    temp = root / INTENT_TMP_FILE
    try:
        data = _read_bounded_regular_file(temp)
    except (IntentLogCorrupt, StorageError):
        return False
    if data is None:
        return False
    head = msgspec.json.encode({"format": INTENT_FORMAT_VERSION, "game_id": root.name})[:-1]
    return head.startswith(data) or data.startswith(head + b",")


def clear_intent(root: Path) -> None:
    """Remove the intent log (idempotent) and make the removal durable."""
    path = intent_path(root)
    try:
        path.unlink(missing_ok=True)
        fsync_dir(root)
    except OSError as exc:
        raise StorageError(f"cannot clear {path}: {exc.strerror or exc}") from exc


def write_marker(directory: Path) -> None:
    """Mark ``directory`` as created by lanspread, durably."""
    marker = directory / OWNED_MARKER
    try:
        # O_EXCL: a file of that name is not ours (the player's, in a renamed local/).
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        try:
            os.write(fd, _MARKER_TEXT)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(directory)
    except OSError as exc:
        raise StorageError(f"cannot mark {directory}: {exc.strerror or exc}") from exc


def has_marker(directory: Path) -> bool:
    """True when ``directory`` holds lanspread's ownership marker: a regular file (links
    never count) holding exactly the text :func:`write_marker` writes."""
    return _is_our_marker(directory / OWNED_MARKER)


def remove_marker(directory: Path) -> None:
    """Drop the ownership marker (idempotent), durably; only a marker lanspread wrote.

    A file of that name holding anything but the marker text is the player's
    and stays.
    """
    marker = directory / OWNED_MARKER
    if not _is_our_marker(marker):
        return
    try:
        marker.unlink(missing_ok=True)
        fsync_dir(directory)
    except OSError as exc:
        raise StorageError(f"cannot unmark {directory}: {exc.strerror or exc}") from exc


def _is_our_marker(marker: Path) -> bool:
    try:
        data = _read_bounded_regular_file(marker)
    except (IntentLogCorrupt, StorageError):
        return False
    return data is not None and data == _MARKER_TEXT


def _read_bounded_regular_file(path: Path) -> bytes | None:
    """The file's bytes, ``None`` when absent; a link, folder or oversized file is corrupt."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise IntentLogCorrupt(f"{path}: not a regular file")
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntentLogCorrupt(f"{path}: not a regular file") from exc
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IntentLogCorrupt(f"{path}: not a regular file")
        data = os.read(fd, MAX_INTENT_FILE_SIZE + 1)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    if len(data) > MAX_INTENT_FILE_SIZE:
        raise IntentLogCorrupt(f"{path}: larger than {MAX_INTENT_FILE_SIZE} bytes")
    return data
