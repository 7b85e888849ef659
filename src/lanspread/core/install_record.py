"""The install record: what an install extracted, and the rules that keep the player's files.

Theory of operation
-------------------
Every install or update writes a record of the tree it extracted (before the
player's files are carried in) to the reserved game-root name
``.lanspread.install.json``: every regular file with its relative path, size and
BLAKE3 hash, and the version string of the archives it came from. The record sits
at the game root, not in ``local/``, so the game never sees it, serving never
offers it (reserved names are never served) and an uninstall that keeps the
player's files leaves ``local/`` holding exactly those files.

Against the record, every entry of ``local/`` is one of:

* **shipped** (recorded, same size and hash): lanspread's to replace or delete;
* **changed** (recorded, size or hash differs): a shipped file the player edited,
  such as a ``q3config.cfg`` with their key bindings;
* **missing** (recorded, gone);
* **added** (not recorded): the player's own file (saves, mods, configs).

An update carries every *added* and *changed* file into the new tree at its own
path when the new version does not ship that path; when it does, the player's
copy is kept beside the new one as ``<name>.mine`` (``<name>.mine.1`` and so on
when that is taken too). A changed file whose bytes equal what the new version
ships needs no copy. Without a record (an install made before records existed,
or by hand) nothing can prove which files are the player's: a path the new
version ships is then treated as shipped, every other file as the player's.

The record's version is the installed version: it is committed with the tree it
describes (see :mod:`lanspread.install.transaction`), so after any crash the
version it names is the one in ``local/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated

import msgspec

from lanspread.core.gameroot import MAX_VERSION_LENGTH

INSTALL_RECORD_FORMAT = 1

MINE_SUFFIX = ".mine"

# Each further ``.mine.N`` needs an earlier one the player kept; past this many the
# update refuses rather than search forever through a folder someone filled on purpose.
MAX_MINE_COPIES = 1000

# 4096 is the longest path Linux accepts; a longer recorded path is not one we wrote.
MAX_RECORDED_PATH_LENGTH = 4096

# Far above any real game (large ones ship some 100,000 files); bounds a decoded record.
MAX_RECORDED_FILES = 2_000_000

# A row is a path, a size and a 64-digit hash: about 150 bytes for MAX_RECORDED_FILES
# stays under this; a larger file is not one we wrote and is never read whole.
MAX_INSTALL_RECORD_SIZE = 512 * 1024 * 1024


class RecordedFile(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """One extracted regular file: a compact ``[path, size, blake3]`` JSON row."""

    path: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_RECORDED_PATH_LENGTH)]
    """Relative to ``local/``, ``/``-separated."""
    size: Annotated[int, msgspec.Meta(ge=0)]
    blake3: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class InstallRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The persisted install record of one game root."""

    format: int
    game_id: str
    version: Annotated[str, msgspec.Meta(max_length=MAX_VERSION_LENGTH)] | None
    """The version of the archives extracted (the root ``version.ini``); ``None`` if unknown."""
    installed: bool
    """False after an uninstall that kept the player's files: ``local/`` then holds only those."""
    files: Annotated[tuple[RecordedFile, ...], msgspec.Meta(max_length=MAX_RECORDED_FILES)]
    """Sorted by path."""

    def by_path(self) -> dict[str, RecordedFile]:
        return {entry.path: entry for entry in self.files}


class RecordHeader(msgspec.Struct, frozen=True):
    """The part of a record the library scan needs (the file list is skipped, not built)."""

    format: int
    game_id: str
    version: str | None
    installed: bool


def make_record(
    game_id: str, version: str | None, files: Iterable[RecordedFile], *, installed: bool = True
) -> InstallRecord:
    return InstallRecord(
        format=INSTALL_RECORD_FORMAT,
        game_id=game_id,
        version=version,
        installed=installed,
        files=tuple(sorted(files, key=lambda entry: entry.path)),
    )


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file found under ``local/``; ``blake3`` is ``None`` when not hashed."""

    path: str
    size: int
    blake3: str | None = None


@dataclass(frozen=True, slots=True)
class LocalDiff:
    """How ``local/`` differs from its record (every tuple sorted)."""

    changed: tuple[str, ...]
    missing: tuple[str, ...]
    added: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.added)

    @property
    def players(self) -> tuple[str, ...]:
        """The files that are the player's: added ones and edited shipped ones."""
        return tuple(sorted((*self.changed, *self.added)))


def needs_hash(recorded: RecordedFile | None, size: int) -> bool:
    """Only a recorded file of the recorded size needs its bytes hashed to be classified."""
    return recorded is not None and recorded.size == size


def diff_local(record: InstallRecord | None, found: Iterable[LocalFile]) -> LocalDiff:
    """Classify what ``local/`` holds against ``record`` (``None``: every file is added)."""
    recorded = record.by_path() if record is not None else {}
    changed: list[str] = []
    added: list[str] = []
    seen: set[str] = set()
    for local in found:
        seen.add(local.path)
        entry = recorded.get(local.path)
        if entry is None:
            added.append(local.path)
        elif entry.size != local.size or local.blake3 != entry.blake3:
            changed.append(local.path)
    missing = [path for path in recorded if path not in seen]
    return LocalDiff(
        changed=tuple(sorted(changed)), missing=tuple(sorted(missing)), added=tuple(sorted(added))
    )


@dataclass(frozen=True, slots=True)
class Carry:
    """Copy the old tree's ``source`` into the new tree at ``target``."""

    source: str
    target: str

    @property
    def renamed(self) -> bool:
        return self.source != self.target


@dataclass(frozen=True, slots=True)
class CarryPlan:
    carries: tuple[Carry, ...]

    @property
    def kept(self) -> tuple[str, ...]:
        """Player files carried to their own path."""
        return tuple(c.source for c in self.carries if not c.renamed)

    @property
    def renamed(self) -> tuple[Carry, ...]:
        """Player files kept beside a new shipped file of the same name."""
        return tuple(c for c in self.carries if c.renamed)


class CarryConflict(Exception):
    """A player's file cannot be placed in the new tree (a new file sits where its folder was)."""


def plan_carry(
    old_record: InstallRecord | None,
    old_files: Iterable[LocalFile],
    new_files: Mapping[str, RecordedFile],
    new_tree: Mapping[str, bool],
) -> CarryPlan:
    """Which of the old tree's files go into the new tree, and under which names.

    ``old_files`` are the old ``local/``'s regular files (hashed where
    :func:`needs_hash` says so), ``new_files`` the new tree's record and
    ``new_tree`` every path the new tree holds, mapped to whether it is a real
    folder. Raises :class:`CarryConflict` when a player's file needs a folder
    where the new tree has something else (a file or a link).
    """
    recorded = old_record.by_path() if old_record is not None else None
    used = set(new_tree)
    blocking = {path for path, is_dir in new_tree.items() if not is_dir}
    players = [
        local.path
        for local in sorted(old_files, key=lambda f: f.path)
        if _is_players(recorded, local, new_files) and not _shipped_as_is(local, new_files)
    ]
    for path in players:
        _require_folders(path, blocking)
    # Files that keep their own path claim it first, so a .mine an earlier update made
    # keeps its name and the new copy takes the next free one.
    in_place = {path for path in players if path not in used}
    used |= in_place
    carries = []
    for path in players:
        target = path if path in in_place else mine_name(path, used)
        used.add(target)
        carries.append(Carry(source=path, target=target))
    return CarryPlan(carries=tuple(carries))


def _shipped_as_is(local: LocalFile, new_files: Mapping[str, RecordedFile]) -> bool:
    """The player's copy is exactly what the new version ships at that path."""
    shipped = new_files.get(local.path)
    return shipped is not None and local.blake3 == shipped.blake3


def _is_players(
    recorded: Mapping[str, RecordedFile] | None,
    local: LocalFile,
    new_files: Mapping[str, RecordedFile],
) -> bool:
    if recorded is None:
        # No record: a path the new version ships is taken to be the old version's file.
        return local.path not in new_files
    entry = recorded.get(local.path)
    return entry is None or entry.size != local.size or entry.blake3 != local.blake3


def _require_folders(path: str, blocking: Set[str]) -> None:
    for parent in PurePosixPath(path).parents:
        folder = parent.as_posix()
        if folder != "." and folder in blocking:
            raise CarryConflict(
                f"cannot keep your file {path}: the new version has a file named {folder}"
            )


def mine_name(path: str, taken: Set[str]) -> str:
    """``<path>.mine``, or ``<path>.mine.N`` with the smallest free ``N``."""
    candidate = path + MINE_SUFFIX
    for number in range(1, MAX_MINE_COPIES + 1):
        if candidate not in taken:
            return candidate
        candidate = f"{path}{MINE_SUFFIX}.{number}"
    raise CarryConflict(f"cannot keep your file {path}: {MAX_MINE_COPIES} copies already exist")


def local_update_pending(
    installed: bool, downloaded: bool, installed_version: str | None, version: str | None
) -> bool:
    """True when the downloaded archives are another version than the one installed.

    An install without a record (``installed_version`` unknown) proves nothing, so
    it never claims an update.
    """
    return (
        installed and downloaded and installed_version is not None and installed_version != version
    )


__all__ = [
    "INSTALL_RECORD_FORMAT",
    "MAX_INSTALL_RECORD_SIZE",
    "MAX_MINE_COPIES",
    "MINE_SUFFIX",
    "Carry",
    "CarryConflict",
    "CarryPlan",
    "InstallRecord",
    "LocalDiff",
    "LocalFile",
    "RecordHeader",
    "RecordedFile",
    "diff_local",
    "local_update_pending",
    "make_record",
    "mine_name",
    "needs_hash",
    "plan_carry",
]
