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

import os
from pathlib import Path

import msgspec

from lanspread.core.gameroot import INTENT_FILE, INTENT_TMP_FILE, OWNED_MARKER
from lanspread.core.recovery import Intent
from lanspread.errors import IntentLogCorrupt, StorageError
from lanspread.files.atomic import (
    atomic_write_bytes,
    fsync_dir,
    read_regular_bounded,
    unlink_synced,
)
from lanspread.files.records import is_record_temp, load_game_record
from lanspread.platform import fileio

INTENT_FORMAT_VERSION = 1

# A record is under 100 bytes; a larger file is not one we wrote, so it is never read whole.
MAX_INTENT_FILE_SIZE = 4096

# Windows has no O_NOFOLLOW; there the marker is created with O_EXCL, which never follows one.
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
    record = load_game_record(
        intent_path(root),
        IntentRecord,
        limit=MAX_INTENT_FILE_SIZE,
        format_version=INTENT_FORMAT_VERSION,
        what="an intent record",
        corrupt=IntentLogCorrupt,
    )
    return Intent.NONE if record is None else record.intent


def write_intent(root: Path, intent: Intent) -> None:
    """Record ``intent`` durably; recording :attr:`Intent.NONE` clears the log."""
    if intent is Intent.NONE:
        clear_intent(root)
        return
    temp = root / INTENT_TMP_FILE
    if os.path.lexists(temp) and not is_our_intent_temp(root):
        raise StorageError(f"{temp} is not a file lanspread wrote; move it out of the game folder")
    record = IntentRecord(format=INTENT_FORMAT_VERSION, game_id=root.name, intent=intent)
    atomic_write_bytes(intent_path(root), msgspec.json.encode(record), temp=temp)


def is_our_intent_temp(root: Path) -> bool:
    """True when the intent log's temp file holds what :func:`write_intent` writes.

    A kill during the atomic write leaves an empty file, a prefix of the record
    or the whole record (:func:`lanspread.files.records.is_record_temp`).
    Anything else, or anything but a regular file, is the player's and is never
    overwritten or deleted.
    """
    return is_record_temp(
        root / INTENT_TMP_FILE, format_version=INTENT_FORMAT_VERSION, limit=MAX_INTENT_FILE_SIZE
    )


def clear_intent(root: Path) -> None:
    """Remove the intent log (idempotent) and make the removal durable."""
    path = intent_path(root)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot clear {path}: {exc.strerror or exc}") from exc
    fsync_dir(root)


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
    except OSError as exc:
        raise StorageError(f"cannot mark {directory}: {exc.strerror or exc}") from exc
    fsync_dir(directory)


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
    if _is_our_marker(marker):
        unlink_synced(marker)


def _is_our_marker(marker: Path) -> bool:
    try:
        data = read_regular_bounded(marker, len(_MARKER_TEXT))
    except StorageError:
        return False
    return data == _MARKER_TEXT
