"""The staged update: a new version downloaded beside the old one, then moved in.

Theory of operation
-------------------
An update of a game whose archives are here downloads into
``<root>/.lanspread.update/<game_id>/`` (the *staged root*), never over the old
archives: the old version stays playable, served and shareable byte for byte
until the new one is verified and installed. The staged root is a game root in
its own right (its own ownership record, journal and ``version.ini`` sentinel),
so every download rule applies to it unchanged; a failed or cancelled update
deletes only what its record proves the download created.

1. :func:`open_staging` names ``.lanspread.update`` in the root's ownership
   record (claim first, durably), creates it and records its identity. A
   player's file or folder of that name refuses the update (:class:`InTheWay`).
2. The download runs into :func:`staged_root`; its committed sentinel makes the
   staged copy *complete* (:func:`staged_version`).
3. Once its install committed (or at once when nothing is installed),
   :func:`move_in` moves it into the root, every step idempotent so a kill at any
   point is finished by the next start (``core.recovery.STAGE_ROWS``):

   a. the staged files are claimed in the root's record (a player's file on a
      path the new version ships is adopted: rewritten, never deleted), and the
      names they replace lose their old identity (a kill after a rename leaves an
      unidentified claim, ours while within its size);
   b. the old sentinel is parked (the root stops being "downloaded"), then the
      old payload the root's record proves ours and the new version does not
      ship is deleted;
   c. every staged file is renamed into the root, the staged sentinel last
      (recorded as ours before the rename), and the moved names are identified;
   d. :func:`drop_staging` sweeps what is left of the staged root by its own
      record and removes the empty ``.lanspread.update``.

While the staged sentinel is still in the staged root the move is unfinished
(step 3 runs again); once it moved, what is left is swept (step d).

Everything here blocks; the runtime runs it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import msgspec

from lanspread.core.gameroot import UPDATE_DIR, VERSION_FILE
from lanspread.errors import StorageError
from lanspread.files.atomic import fsync_dir, make_dir_synced
from lanspread.files.entries import is_real_dir, is_regular_file, lstat_or_none
from lanspread.files.ownership import (
    OWNERSHIP_FORMAT_VERSION,
    TRANSIENT_BOUNDS,
    InTheWay,
    OwnedName,
    OwnershipRecord,
    claim_files,
    identify,
    identify_sentinel,
    is_ours,
    load_record,
    load_record_or_none,
    save_record,
    sweep_owned,
)
from lanspread.files.sentinel import begin_update
from lanspread.files.version_ini import read_sentinel, version_from_sentinel
from lanspread.platform.generation import file_generation

log = logging.getLogger(__name__)


def staged_root(root: Path) -> Path:
    """The staged update's own game root (named like the game, so its records match)."""
    return root / UPDATE_DIR / root.name


def is_staged_root(path: Path) -> bool:
    """True for a staged update's root (``<root>/.lanspread.update/<game_id>``)."""
    return path.parent.name == UPDATE_DIR and path.name == path.parent.parent.name


def game_root_of(staged: Path) -> Path:
    """The game root a staged root belongs to."""
    return staged.parent.parent


def has_staging(root: Path) -> bool:
    """True when ``root`` holds a ``.lanspread.update`` folder."""
    return is_real_dir(root / UPDATE_DIR)


def staged_version(root: Path) -> str | None:
    """The version of the complete staged update of ``root``; ``None`` when there is none."""
    staged = staged_root(root)
    if not is_regular_file(staged / VERSION_FILE):
        return None
    return version_from_sentinel(read_sentinel(staged, time.time_ns())) or ""


def open_staging(root: Path) -> Path:
    """Name ``.lanspread.update`` in the root's record and create it; the staged root.

    Durable on return. Raises :class:`InTheWay` when something lanspread did not
    create holds the name, or the root's record is not lanspread's.
    """
    record = load_record(root) or OwnershipRecord(
        format=OWNERSHIP_FORMAT_VERSION, game_id=root.name, root_created=False, names=()
    )
    held = record.get(UPDATE_DIR)
    container = root / UPDATE_DIR
    if lstat_or_none(container) is not None:
        if held is None or not is_ours(root, held):
            raise InTheWay(
                f"{root.name}: {UPDATE_DIR} already in the game folder and not created by "
                "lanspread; move it out of the game folder to update"
            )
        return staged_root(root)
    claim = OwnedName(path=UPDATE_DIR, kind="dir")
    record = _with_name(root, record, claim)  # claimed before it exists
    make_dir_synced(container)
    info = os.lstat(container)
    identity = msgspec.structs.replace(
        claim, dev=info.st_dev, ino=info.st_ino, generation=file_generation(container)
    )
    _with_name(root, record, identity)
    return staged_root(root)


def drop_staging(root: Path) -> bool:
    """Delete the staged update as far as the records prove it ours; True when it is gone.

    The staged root's own record proves its files (a staged root without one is
    left whole); the root's record proves ``.lanspread.update``, removed only once
    empty. Raises :class:`StorageError` when the disk refuses.
    """
    staged = staged_root(root)
    if is_real_dir(staged):
        record = load_record_or_none(staged)
        if record is not None:
            report = sweep_owned(staged, record)
            if report.removed:
                log.info("discarded the staged update of %s: %s", root, ", ".join(report.removed))
    record = load_record_or_none(root)
    if record is None or record.get(UPDATE_DIR) is None:
        return not has_staging(root)
    others = [name.path for name in record.names if name.path != UPDATE_DIR]
    sweep_owned(root, record, keep=others, drop_record=False)
    return not has_staging(root)


def move_in(root: Path) -> bool:
    """Move the complete staged update into ``root`` (see the module doc); True when moved.

    Idempotent: a start that finds the staged sentinel still staged runs it again.
    Raises :class:`InTheWay` when a player's folder or link holds a path the new
    version ships, and :class:`StorageError` when the disk refuses; the staged
    update then stays where it is.
    """
    staged = staged_root(root)
    if not is_regular_file(staged / VERSION_FILE):
        return False
    staged_record = load_record(staged)
    if staged_record is None:
        raise StorageError(f"{staged}: no download record; the staged update is left as it is")
    files = [
        name
        for name in staged_record.names
        if name.kind == "file" and name.path not in TRANSIENT_BOUNDS
    ]
    record = claim_files(root, ((name.path, name.max_size) for name in files), adopt=True)
    shipped = {name.path for name in files}
    record = _forget_identities(root, record, shipped)
    begin_update(root)
    wanted = {name.path for name in record.names if name.kind == "dir" and _under(name, shipped)}
    sweep_owned(root, record, keep=shipped | wanted | {UPDATE_DIR}, drop_record=False)
    for name in sorted(files, key=lambda name: name.path):
        if name.path != VERSION_FILE and is_ours(staged, name):
            _move(staged, root, name.path)
    record = load_record(root) or record
    record = identify_sentinel(root, record, staged / VERSION_FILE)
    _move(staged, root, VERSION_FILE)
    identify(root, record)
    log.info("moved the staged update of %s into place", root.name)
    drop_staging(root)
    return True


def _with_name(root: Path, record: OwnershipRecord, name: OwnedName) -> OwnershipRecord:
    names = [held for held in record.names if held.path != name.path] + [name]
    updated = msgspec.structs.replace(record, names=tuple(sorted(names, key=_path)))
    save_record(root, updated)
    return updated


def _forget_identities(root: Path, record: OwnershipRecord, paths: set[str]) -> OwnershipRecord:
    """The names the staged files replace become bare claims (identified after the move)."""
    names = tuple(
        OwnedName(path=name.path, kind="file", max_size=name.max_size)
        if name.path in paths and name.kind == "file"
        else name
        for name in record.names
    )
    if names == record.names:
        return record
    updated = msgspec.structs.replace(record, names=names)
    save_record(root, updated)
    return updated


def _under(folder: OwnedName, paths: set[str]) -> bool:
    return any(path.startswith(f"{folder.path}/") for path in paths)


def _move(staged: Path, root: Path, relative: str) -> None:
    """Rename ``staged/relative`` over ``root/relative``, creating folders; durable."""
    target = root / relative
    folder = root
    for part in relative.split("/")[:-1]:
        folder = folder / part
        make_dir_synced(folder, exist_ok=True)
    try:
        (staged / relative).replace(target)
    except OSError as exc:
        raise StorageError(f"cannot move {relative} into {root}: {exc.strerror or exc}") from exc
    fsync_dir(target.parent)
    fsync_dir((staged / relative).parent)


def _path(name: OwnedName) -> str:
    return name.path


__all__ = [
    "drop_staging",
    "game_root_of",
    "has_staging",
    "is_staged_root",
    "move_in",
    "open_staging",
    "staged_root",
    "staged_version",
]
