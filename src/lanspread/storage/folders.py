"""The folder picker's listing: the subfolders of one folder and the free space there.

Only folders are listed, never files; hidden folders (a leading dot) are left out,
symbolic links are not followed (a link is no folder to pick and may loop), and a
name that cannot be shown (not valid Unicode, or holding control characters) is
counted, not listed. A folder of a million entries costs at most
:data:`MAX_SCANNED_ENTRIES` reads, and the answer at most :data:`MAX_LISTED_FOLDERS`
names.
"""

from __future__ import annotations

import difflib
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from lanspread.core.catalog import Catalog
from lanspread.errors import ConfigError, LanspreadError, StorageError
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


# A game folder holding more unknown folders than this is not a game folder that needs
# a hint per folder; the first ones make the point.
MAX_STRAY_FOLDERS = 20


@dataclass(frozen=True, slots=True)
class StrayFolder:
    """A folder in the game folder whose name is no catalog id: invisible to the library."""

    name: str
    suggestion: str | None
    """The catalog id it most likely means (``quake3`` for ``Quake 3``), if any."""


def _squashed(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def closest_game_id(name: str, catalog: Catalog) -> str | None:
    """The catalog id a hand-named folder most likely means: its letters and digits equal
    an id's or a name's, or are close enough to one (``difflib``)."""
    keys: dict[str, str] = {}
    for game in catalog:
        keys.setdefault(_squashed(game.id), game.id)
        keys.setdefault(_squashed(game.name), game.id)
    wanted = _squashed(name)
    if not wanted:
        return None
    if wanted in keys:
        return keys[wanted]
    close = difflib.get_close_matches(wanted, list(keys), n=1, cutoff=0.75)
    return keys[close[0]] if close else None


def stray_folders(game_dir: Path, catalog: Catalog) -> tuple[StrayFolder, ...]:
    """Folders in ``game_dir`` named like no catalog game (hidden ones and lanspread's own
    dot-names left out), at most :data:`MAX_STRAY_FOLDERS`, by name."""
    try:
        listing = list_folders(game_dir)
    except LanspreadError:
        return ()  # the scan reports an unreadable game folder itself
    names = [name for name in listing.folders if name not in catalog]
    return tuple(
        StrayFolder(name, closest_game_id(name, catalog)) for name in names[:MAX_STRAY_FOLDERS]
    )
