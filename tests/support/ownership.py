"""Ownership records for roots a test lays out by hand as if lanspread had downloaded them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lanspread.core.gameroot import (
    DOWNLOAD_JOURNAL_FILE,
    DOWNLOAD_JOURNAL_TMP_FILE,
    VERSION_DISCARDED_FILE,
    VERSION_TMP_FILE,
    is_reserved_name,
)
from lanspread.files.ownership import (
    OWNERSHIP_FORMAT_VERSION,
    TRANSIENT_BOUNDS,
    Kind,
    OwnedName,
    OwnershipRecord,
    save_record,
)
from lanspread.platform.generation import file_generation

_TRANSIENTS = (
    VERSION_TMP_FILE,
    VERSION_DISCARDED_FILE,
    DOWNLOAD_JOURNAL_FILE,
    DOWNLOAD_JOURNAL_TMP_FILE,
)


def record_as_downloaded(root: Path, *, root_created: bool = True) -> OwnershipRecord:
    """Record every payload entry now in ``root`` (and the transient names) as lanspread's.

    Reserved names and everything under them (``local/`` ...) are not recorded,
    just as a download never records them.
    """
    names: list[OwnedName] = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        relative_base = base.relative_to(root)
        if relative_base == Path():
            dirs[:] = [name for name in dirs if not is_reserved_name(name)]
            files = [name for name in files if not is_reserved_name(name)]
        for name in (*dirs, *files):
            info = os.lstat(base / name)
            relative = (relative_base / name).as_posix()
            kind: Kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
            size = 0 if kind == "dir" else info.st_size
            names.append(
                OwnedName(
                    path=relative,
                    kind=kind,
                    max_size=size,
                    dev=info.st_dev,
                    ino=info.st_ino,
                    generation=file_generation(base / name),
                )
            )
    names.extend(
        OwnedName(path=name, kind="file", max_size=TRANSIENT_BOUNDS[name]) for name in _TRANSIENTS
    )
    record = OwnershipRecord(
        format=OWNERSHIP_FORMAT_VERSION,
        game_id=root.name,
        root_created=root_created,
        names=tuple(sorted(names, key=lambda name: name.path)),
    )
    save_record(root, record)
    return record
