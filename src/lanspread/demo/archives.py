"""Deterministic tar and zip bytes with Unix file modes, for the demo games.

The same members always give the same bytes: entries are written in the given
order with a fixed time (:data:`FIXED_MTIME`), owner 0 and no owner names, and
zip entries are stored (a deflater's output may change with the zlib build).
Both formats record the Unix mode, so the installer restores the launcher's
executable bit.
"""

from __future__ import annotations

import io
import stat
import tarfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

FIXED_MTIME = 1_704_067_200
"""2024-01-01 00:00:00 UTC: any fixed time after zip's 1980 epoch works."""
_ZIP_MADE_ON_UNIX = 3
_MSDOS_DIRECTORY = 0x10


@dataclass(frozen=True, slots=True)
class ArchiveMember:
    """A folder (``data is None``) or a regular file; ``name`` uses ``/`` separators."""

    name: str
    data: bytes | None
    mode: int = 0o644
    """Permission bits only."""

    @property
    def is_dir(self) -> bool:
        return self.data is None


def with_folders(files: Sequence[ArchiveMember]) -> list[ArchiveMember]:
    """``files`` preceded by an explicit entry for every parent folder, all sorted by name."""
    folders: set[str] = set()
    for member in files:
        parts = member.name.split("/")[:-1]
        folders.update("/".join(parts[: depth + 1]) for depth in range(len(parts)))
    members = [ArchiveMember(folder, None, 0o755) for folder in folders]
    members.extend(files)
    return sorted(members, key=lambda member: member.name)


def tar_bytes(members: Sequence[ArchiveMember]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = tarfile.DIRTYPE if member.is_dir else tarfile.REGTYPE
            info.mode = member.mode
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.size = 0 if member.data is None else len(member.data)
            archive.addfile(info, None if member.data is None else io.BytesIO(member.data))
    return buffer.getvalue()


def zip_bytes(members: Sequence[ArchiveMember]) -> bytes:
    buffer = io.BytesIO()
    stamp = time.gmtime(FIXED_MTIME)[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for member in members:
            name = member.name + "/" if member.is_dir else member.name
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = _ZIP_MADE_ON_UNIX
            info.compress_type = zipfile.ZIP_STORED
            kind = stat.S_IFDIR if member.is_dir else stat.S_IFREG
            info.external_attr = (kind | member.mode) << 16
            if member.is_dir:
                info.external_attr |= _MSDOS_DIRECTORY
            archive.writestr(info, member.data or b"")
    return buffer.getvalue()
