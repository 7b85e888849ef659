"""The folder picker's listing: the subfolders of one folder and the free space there.

Only folders are listed, never files; hidden folders (a leading dot) are left out,
symbolic links are not followed (a link is no folder to pick and may loop), and a
name that cannot be shown (not valid Unicode, or holding control characters) is
counted, not listed. A folder of a million entries costs at most
:data:`MAX_SCANNED_ENTRIES` reads, and the answer at most :data:`MAX_LISTED_FOLDERS`
names.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from lanspread.errors import ConfigError, StorageError
from lanspread.files.atomic import free_bytes

# A picker shows a screenful or two; past this, the player types the path.
MAX_LISTED_FOLDERS = 500
# Entries read from one folder, files included: bounds the time a huge folder costs.
MAX_SCANNED_ENTRIES = 20_000


@dataclass(frozen=True, slots=True)
class FolderListing:
    path: str
    """The folder listed, absolute."""
    parent: str | None
    """Its parent; ``None`` at the root of a drive."""
    folders: tuple[str, ...]
    """Subfolder names, sorted without regard to case."""
    free_bytes: int | None
    """Free space on its disk; ``None`` when the system does not say."""
    truncated: bool
    """More subfolders exist than were listed."""
    unnamed: int
    """Subfolders left out because their names cannot be shown."""


def browse_start(text: str, home: Path) -> Path:
    """The folder a picker request names: ``home`` for an empty text, ``~`` expanded
    against ``home``; a relative path is refused (it would depend on where lanspread
    was started)."""
    wanted = text.strip()
    if not wanted:
        return home
    if wanted == "~" or wanted.startswith(("~/", "~\\")):
        return home / wanted[2:]
    path = Path(wanted)
    if not path.is_absolute():
        raise ConfigError(
            f"{wanted!r} is a relative path: give the full path of the folder, such as "
            f"{home / 'Games'} (lanspread does not guess what it is relative to)"
        )
    return path


def showable(name: str) -> bool:
    """A name the page can show as it is: valid Unicode, no control characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in name)


def list_folders(path: Path) -> FolderListing:
    """The subfolders of the absolute folder ``path`` (see the module's rules)."""
    try:
        folder = path.resolve(strict=True)
        entries = os.scandir(folder)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist") from exc
    except NotADirectoryError as exc:
        raise ConfigError(f"{path} is not a folder") from exc
    except OSError as exc:
        raise StorageError(f"cannot list {path}: {exc.strerror or exc}") from exc
    names: list[str] = []
    unnamed = scanned = 0
    truncated = False
    with entries:
        for entry in entries:
            scanned += 1
            if scanned > MAX_SCANNED_ENTRIES:
                truncated = True
                break
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            if entry.name.startswith("."):
                continue
            if not showable(entry.name):
                unnamed += 1
                continue
            names.append(entry.name)
    names.sort(key=lambda name: (name.casefold(), name))
    if len(names) > MAX_LISTED_FOLDERS:
        names, truncated = names[:MAX_LISTED_FOLDERS], True
    try:
        free: int | None = free_bytes(folder)
    except StorageError:
        free = None
    parent = folder.parent
    return FolderListing(
        path=str(folder),
        parent=str(parent) if parent != folder else None,
        folders=tuple(names),
        free_bytes=free,
        truncated=truncated,
        unnamed=unnamed,
    )
