"""Deterministic archives of every format a game may ship in, for tests and fixtures.

Give a ``{relative_path: bytes}`` mapping (or a list of :class:`Member` for
folders, links, devices and hostile names) and get the archive's bytes. The
same input always gives the same bytes: entries are sorted, times are fixed
(:data:`FIXED_MTIME`), owners are 0 and unnamed, and compressors get no
timestamps. Mappings are written with their parent folders first, so every
format sees explicit folder entries.

Formats: zip (stored or deflated), tar, tar.gz, 7z (files only, via py7zr),
RAR 4 and RAR 5 (stored, via :mod:`tests.support.rar`), and multi-volume RAR
sets. :func:`write_game_root` lays out a game folder with ``.eti`` archives and
a ``version.ini``, the shape peers serve and the installer extracts.
"""

from __future__ import annotations

import enum
import gzip
import io
import stat
import tarfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import py7zr
from py7zr.helpers import ArchiveTimestamp

from tests.support.rar import (
    FIXED_MTIME,
    RarKind,
    RarMember,
    rar4_archive,
    rar4_volumes,
    rar5_archive,
    rar5_volumes,
)

__all__ = [
    "FIXED_MTIME",
    "ArchiveFormat",
    "Content",
    "Kind",
    "Member",
    "build_archive",
    "build_volumes",
    "members_of",
    "write_game_root",
]

Kind = RarKind
"""Entry kinds: FILE, DIR, SYMLINK, HARDLINK, CHAR_DEVICE, FIFO."""


@dataclass(frozen=True)
class Member:
    """One archive entry; ``name`` is written as given (hostile names included)."""

    name: str
    data: bytes = b""
    kind: Kind = Kind.FILE
    mode: int = 0o644
    """Permission bits only; the type bits come from ``kind``."""
    link_target: str = ""
    mtime: int = FIXED_MTIME


Content = Mapping[str, bytes] | Sequence[Member]


class ArchiveFormat(enum.Enum):
    ZIP = "zip"
    ZIP_DEFLATED = "zip-deflated"
    TAR = "tar"
    TAR_GZ = "tar.gz"
    SEVEN_ZIP = "7z"
    RAR4 = "rar4"
    RAR5 = "rar5"


_TAR_TYPES = {
    Kind.FILE: tarfile.REGTYPE,
    Kind.DIR: tarfile.DIRTYPE,
    Kind.SYMLINK: tarfile.SYMTYPE,
    Kind.HARDLINK: tarfile.LNKTYPE,
    Kind.CHAR_DEVICE: tarfile.CHRTYPE,
    Kind.FIFO: tarfile.FIFOTYPE,
}
_ZIP_TYPES = {
    Kind.FILE: stat.S_IFREG,
    Kind.DIR: stat.S_IFDIR,
    Kind.SYMLINK: stat.S_IFLNK,
    Kind.CHAR_DEVICE: stat.S_IFCHR,
    Kind.FIFO: stat.S_IFIFO,
}
_ZIP_UNIX = 3
_MSDOS_DIRECTORY = 0x10


def members_of(content: Content) -> list[Member]:
    """The members to write: a mapping becomes its folders then files, sorted."""
    if not isinstance(content, Mapping):
        return list(content)
    folders: set[str] = set()
    for path in content:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    members = [Member(name, kind=Kind.DIR, mode=0o755) for name in folders]
    members += [Member(path, data) for path, data in content.items()]
    return sorted(members, key=lambda member: member.name)


def build_archive(fmt: ArchiveFormat, content: Content) -> bytes:
    """The bytes of one archive of ``fmt`` holding ``content``."""
    members = members_of(content)
    if fmt is ArchiveFormat.ZIP:
        return zip_bytes(members, compress=False)
    if fmt is ArchiveFormat.ZIP_DEFLATED:
        return zip_bytes(members, compress=True)
    if fmt is ArchiveFormat.TAR:
        return tar_bytes(members)
    if fmt is ArchiveFormat.TAR_GZ:
        return gzip.compress(tar_bytes(members), mtime=0)
    if fmt is ArchiveFormat.SEVEN_ZIP:
        return seven_zip_bytes(members)
    if fmt is ArchiveFormat.RAR4:
        return rar4_archive(_rar_members(members))
    return rar5_archive(_rar_members(members))


def build_volumes(fmt: ArchiveFormat, content: Content, volume_data_size: int) -> list[bytes]:
    """A multi-volume RAR set (``RAR4`` or ``RAR5``) of ``content``."""
    members = _rar_members(members_of(content))
    if fmt is ArchiveFormat.RAR4:
        return rar4_volumes(members, volume_data_size)
    if fmt is ArchiveFormat.RAR5:
        return rar5_volumes(members, volume_data_size)
    raise ValueError(f"{fmt.value} has no multi-volume writer here")


def _rar_members(members: Sequence[Member]) -> list[RarMember]:
    return [RarMember(m.name, m.data, m.kind, m.mode, m.mtime, m.link_target) for m in members]


def zip_bytes(members: Sequence[Member], *, compress: bool) -> bytes:
    """A zip made on "Unix", so the external attributes carry the full mode."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in members:
            if member.kind is Kind.HARDLINK:
                raise ValueError("zip cannot store hard links")
            name = member.name + "/" if member.kind is Kind.DIR else member.name
            info = zipfile.ZipInfo(name, date_time=time.localtime(member.mtime)[:6])
            info.create_system = _ZIP_UNIX
            info.compress_type = method
            info.external_attr = (_ZIP_TYPES[member.kind] | member.mode) << 16
            if member.kind is Kind.DIR:
                info.external_attr |= _MSDOS_DIRECTORY
            payload = member.link_target.encode() if member.kind is Kind.SYMLINK else member.data
            archive.writestr(info, payload)
    return buffer.getvalue()


def tar_bytes(members: Sequence[Member]) -> bytes:
    """A PAX tar with fixed owners and times."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = _TAR_TYPES[member.kind]
            info.mode = member.mode
            info.mtime = member.mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.linkname = member.link_target
            data = member.data if member.kind is Kind.FILE else b""
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


class _FixedTime7z(py7zr.SevenZipFile):
    """py7zr stamps written members with the current time; this stamps FIXED_MTIME."""

    @staticmethod
    def _make_file_info_from_name(bio: Any, size: int, arcname: str) -> Any:
        info = py7zr.SevenZipFile._make_file_info_from_name(bio, size, arcname)
        stamp = ArchiveTimestamp.from_datetime(float(FIXED_MTIME))  # takes epoch seconds
        info["creationtime"] = info["lastwritetime"] = info["lastaccesstime"] = stamp
        return info


def seven_zip_bytes(members: Sequence[Member]) -> bytes:
    """A stored (copy-filter) 7z of the regular files; folders are implied by paths."""
    buffer = io.BytesIO()
    with _FixedTime7z(buffer, "w", filters=[{"id": py7zr.FILTER_COPY}]) as archive:
        for member in members:
            if member.kind is Kind.DIR:
                continue
            if member.kind is not Kind.FILE:
                raise ValueError(f"this 7z writer stores regular files only, not {member.kind}")
            archive.writestr(member.data, member.name)
    return buffer.getvalue()


def write_game_root(
    root: Path,
    archives: Mapping[str, tuple[ArchiveFormat, Content]],
    *,
    version: str | None = "1.0",
) -> Path:
    """Create a game folder: ``{name: (format, content)}`` as ``.eti`` files, then ``version.ini``.

    Names are used as given (``game.eti``, ``game.part1.eti`` ...). With
    ``version=None`` no sentinel is written (a download still in progress).
    """
    root.mkdir(parents=True, exist_ok=True)
    for name, (fmt, content) in sorted(archives.items()):
        (root / name).write_bytes(build_archive(fmt, content))
    if version is not None:
        (root / "version.ini").write_text(f"{version}\n")
    return root
