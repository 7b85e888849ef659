"""Game roots on disk for the install-layer tests, a fake unpacker and tree snapshots."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

import blake3
import msgspec

from lanspread.core.gameroot import INSTALL_RECORD_FILE
from lanspread.core.install_record import InstallRecord, RecordedFile, make_record
from lanspread.errors import StorageError
from lanspread.install.record import read_record
from lanspread.install.transaction import ProgressCallback
from tests.support.trees import write_tree

GAME_ID = "quake3"

ARCHIVES = {"quake3.eti": b"archive one" * 10, "quake3.part2.eti": b"archive two" * 10}
CONFIG = "baseq3/q3config.cfg"
OLD_SHIPPED = {"quake3.exe": b"old exe", "baseq3/pak0.pk3": b"old pak", CONFIG: b"bind w +fwd"}
"""What version 1.0's archives extracted (its install record lists exactly these)."""
SAVE = {"saves/slot1.sav": b"the user's own save"}
MY_CONFIG = {CONFIG: b"bind e +fwd"}
"""The player's edit of a shipped config."""
OLD_INSTALL = {**OLD_SHIPPED, **MY_CONFIG, **SAVE}
NEW_FILES = {
    "quake3.exe": b"new exe",
    "baseq3/pak0.pk3": b"new pak",
    "baseq3/pak1.pk3": b"pak1",
    CONFIG: b"bind w +forward",
}
UPDATED = {**NEW_FILES, **SAVE, CONFIG + ".mine": MY_CONFIG[CONFIG]}
"""``local/`` after an update of a recorded ``OLD_INSTALL``: the save kept, the edit renamed."""
UPDATED_UNRECORDED = {**NEW_FILES, **SAVE}
"""``local/`` after an update of ``OLD_INSTALL`` without a record: shipped paths replaced."""
KEPT = {**MY_CONFIG, **SAVE}
"""``local/`` after an uninstall of a recorded ``OLD_INSTALL`` that keeps the player's files."""

Snapshot = dict[str, bytes | str]


def make_root(
    game_dir: Path,
    *,
    installed: Mapping[str, bytes] | None = None,
    version: str = "1.0",
    recorded: Mapping[str, bytes] | None = None,
    recorded_version: str = "1.0",
) -> Path:
    """A downloaded game root (archives and ``version.ini``), installed when asked.

    ``recorded`` writes an install record listing those files at ``recorded_version``
    (without it an installed root has no record, as an install made by hand).
    """
    root = game_dir / GAME_ID
    root.mkdir(parents=True)
    write_tree(root, ARCHIVES)
    (root / "version.ini").write_text(f"version = {version}\n")
    if installed is not None:
        (root / "local").mkdir()
        write_tree(root / "local", installed)
    if recorded is not None:
        write_record(root, recorded, recorded_version)
    return root


def recorded_file(path: str, data: bytes) -> RecordedFile:
    return RecordedFile(path=path, size=len(data), blake3=blake3.blake3(data).hexdigest())


def record_of(
    files: Mapping[str, bytes], version: str | None, *, installed: bool = True
) -> InstallRecord:
    rows = [recorded_file(path, data) for path, data in files.items()]
    return make_record(GAME_ID, version, rows, installed=installed)


def write_record(root: Path, files: Mapping[str, bytes], version: str | None) -> None:
    (root / INSTALL_RECORD_FILE).write_bytes(msgspec.json.encode(record_of(files, version)))


def recorded(root: Path) -> tuple[str | None, dict[str, str]] | None:
    """The committed record as ``(version, {path: blake3})``; ``None`` when there is none."""
    record = read_record(root)
    if record is None:
        return None
    return record.version, {entry.path: entry.blake3 for entry in record.files}


def digests(files: Mapping[str, bytes]) -> dict[str, str]:
    return {path: blake3.blake3(data).hexdigest() for path, data in files.items()}


def snapshot(base: Path, *, with_record: bool = False) -> Snapshot:
    """Every entry under ``base`` by relative path: file bytes, ``"<dir>"`` or ``"-> target"``.

    The install record at ``base`` is left out unless ``with_record`` (its contents
    are checked with :func:`recorded`).
    """
    result: Snapshot = {}
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = Path(folder) / name
            relative = path.relative_to(base).as_posix()
            if relative == INSTALL_RECORD_FILE and not with_record:
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                result[relative] = f"-> {path.readlink()}"
            elif stat.S_ISDIR(mode):
                result[relative] = "<dir>"
            else:
                result[relative] = path.read_bytes()
    return result


def installed_snapshot(files: Mapping[str, bytes], version: str = "1.0") -> Snapshot:
    """What a settled root holding ``files`` in ``local/`` looks like."""
    expected: Snapshot = {**ARCHIVES, "version.ini": f"version = {version}\n".encode()}
    expected["local"] = "<dir>"
    for relative, data in files.items():
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            expected["local/" + "/".join(parts[:depth])] = "<dir>"
        expected["local/" + relative] = data
    return expected


def downloaded_snapshot(version: str = "1.0") -> Snapshot:
    return {**ARCHIVES, "version.ini": f"version = {version}\n".encode()}


class FakeUnpacker:
    """Writes ``files`` into the destination, reporting progress after each one.

    ``fail_after`` raises a :class:`StorageError` once that many files are
    written; ``conflict`` creates a non-empty ``local/`` next to staging at the
    end, as a racing writer would; ``on_file`` runs after each file.
    """

    def __init__(
        self,
        files: Mapping[str, bytes] = NEW_FILES,
        *,
        fail_after: int | None = None,
        conflict: Mapping[str, bytes] | None = None,
        on_file: Callable[[int], None] | None = None,
    ) -> None:
        self.files = dict(files)
        self.fail_after = fail_after
        self.conflict = conflict
        self.on_file = on_file
        self.calls: list[tuple[Path, Path]] = []

    def __call__(self, archives_root: Path, destination: Path, progress: ProgressCallback) -> None:
        self.calls.append((archives_root, destination))
        total = len(self.files)
        for done, (relative, data) in enumerate(self.files.items(), start=1):
            if self.fail_after is not None and done > self.fail_after:
                raise StorageError(f"fake archive is corrupt at {relative}")
            write_tree(destination, {relative: data})
            progress(done, total)
            if self.on_file is not None:
                self.on_file(done)
        if self.conflict is not None:
            write_tree(archives_root / "local", self.conflict)
