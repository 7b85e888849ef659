"""The ``version.ini`` sentinel transaction of a download.

A game is *downloaded* iff a regular ``version.ini`` sits at its root, so a
download must make the sentinel appear last, and an update must make the old
one disappear first:

1. :func:`begin_update` parks an existing ``version.ini`` as
   ``.version.ini.discarded`` (and syncs the root) before any payload byte
   changes. From then on the root is no longer "downloaded": it is neither
   served nor offered for install while its archives are rewritten.
2. The download runs; the sentinel's bytes are fetched last and held in memory.
3. :func:`commit_sentinel` writes them to ``.version.ini.tmp``, syncs it,
   renames it over ``version.ini``, syncs the root, then drops the parked file.
   The rename is the commit point. **The caller guarantees every payload byte
   is durable before calling** (fsync the payload files, or commit the journal
   with :meth:`~lanspread.download.journal.DownloadJournal.commit_durable`):
   the sentinel must never vouch for bytes a power loss could still take back.
   The caller then removes the download journal.
4. On cancel or failure, :func:`rollback` deletes ``.version.ini.tmp`` and
   ``.version.ini.discarded``; the caller then discards the payload
   (:func:`lanspread.install.sweep.discard_download`).

Every step here writes or deletes only names the download claimed first in its
ownership record (:func:`lanspread.files.ownership.claim_download`, which
refuses to start over a player's file of such a name).

Rollback does **not** restore a parked sentinel: a root whose archives were
rewritten in place settles as not downloaded. An update of a game whose
archives are here never gets there: it downloads into its own staged root
(:mod:`lanspread.files.staging`), where this transaction runs unchanged, and the
old root keeps its sentinel until the staged files move in.

After a kill, startup recovery settles each window
(:mod:`lanspread.runtime.startup`): parked but not journaled, the update is
swept like a cancel; a temp file is deleted and the sentinel refetched on
resume; a committed sentinel next to a parked one or a journal means the
download finished and both are dropped.

Everything here blocks; the runtime runs it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from lanspread.core.gameroot import (
    MAX_VERSION_FILE_SIZE,
    VERSION_DISCARDED_FILE,
    VERSION_FILE,
    VERSION_TMP_FILE,
)
from lanspread.errors import StorageError
from lanspread.files.atomic import rename_synced, unlink_synced, write_synced_file
from lanspread.files.entries import mode_or_none
from lanspread.files.ownership import load_record_or_none, owned_transient

Checkpoint = Callable[[str], None]
"""Called with a step name before each durable step (tests inject kills there)."""

WRITE_TMP = "write-tmp"
RENAME_SENTINEL = "rename-sentinel"
DROP_PARKED = "drop-parked"
COMMIT_STEPS = (WRITE_TMP, RENAME_SENTINEL, DROP_PARKED)


def _no_checkpoint(step: str) -> None:
    del step


def begin_update(root: Path) -> bool:
    """Park an existing ``version.ini`` as ``.version.ini.discarded``; True when one was parked.

    A missing root or sentinel parks nothing (a fresh download). A previous
    parked file is replaced. Raises :class:`StorageError` when ``version.ini``
    is not a regular file (a link or folder is never a sentinel we move) or the
    disk refuses.
    """
    sentinel = root / VERSION_FILE
    mode = mode_or_none(sentinel)
    if mode is None:
        return False
    if not stat.S_ISREG(mode):
        raise StorageError(f"{sentinel} is not a regular file; refusing to park it")
    rename_synced(sentinel, root / VERSION_DISCARDED_FILE)
    return True


def commit_sentinel(
    root: Path,
    data: bytes,
    *,
    checkpoint: Checkpoint | None = None,
    on_written: Callable[[Path], object] | None = None,
) -> None:
    """Make ``data`` the root's ``version.ini`` atomically, then drop the parked sentinel.

    ``on_written`` gets the synced temp file before it is renamed into place (the
    download records its identity there, so the sentinel is proven ours the moment
    it exists).

    Call only once every payload byte is durable (see the module docstring).
    Raises :class:`ValueError` when ``data`` is larger than a sentinel can be,
    :class:`~lanspread.files.atomic.DiskFull` or :class:`StorageError` when
    the disk refuses; a failure before the rename leaves no temp file and the
    root not downloaded, a failure after it leaves the game downloaded.
    """
    if len(data) > MAX_VERSION_FILE_SIZE:
        raise ValueError(
            f"a {VERSION_FILE} of {len(data)} bytes exceeds the limit of {MAX_VERSION_FILE_SIZE}"
        )
    if os.path.lexists(root / VERSION_FILE):
        # Parked or never there when the download began: whatever appeared since is
        # not ours to replace.
        raise StorageError(f"{root / VERSION_FILE} appeared during the download; not replacing it")
    step = checkpoint or _no_checkpoint
    temp = root / VERSION_TMP_FILE
    step(WRITE_TMP)
    write_synced_file(temp, data)
    if on_written is not None:
        on_written(temp)
    step(RENAME_SENTINEL)
    try:
        rename_synced(temp, root / VERSION_FILE)
    except StorageError:
        unlink_synced(temp)
        raise
    step(DROP_PARKED)
    unlink_synced(root / VERSION_DISCARDED_FILE)


def rollback(root: Path) -> None:
    """Delete ``.version.ini.tmp`` and ``.version.ini.discarded`` (idempotent).

    Only when the root's ownership record claims them
    (:mod:`lanspread.files.ownership`): a file of either name the player put
    there is never deleted.

    The parked sentinel is deleted, not restored: a cancelled update settles
    as local-only (see the module docstring). ``version.ini`` itself is left
    alone: the payload discard that follows a rollback removes it with the rest.
    """
    record = load_record_or_none(root)
    for name in (VERSION_TMP_FILE, VERSION_DISCARDED_FILE):
        if owned_transient(root, record, name):
            unlink_synced(root / name)


__all__ = [
    "COMMIT_STEPS",
    "DROP_PARKED",
    "RENAME_SENTINEL",
    "WRITE_TMP",
    "Checkpoint",
    "begin_update",
    "commit_sentinel",
    "rollback",
]
