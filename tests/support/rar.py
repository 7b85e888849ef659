"""A small writer of *stored* (uncompressed) RAR archives, for tests.

No RAR writer can be installed, yet lanspread's games ship as renamed RAR
archives, so the test suite writes its own following the published formats:

* **RAR 4** ("RAR 2.9/3.x", the ``Rar!\\x1a\\x07\\x00`` signature): a marker
  block, a main archive header (``0x73``), one file header (``0x74``) per
  member followed by its bytes, and an end-of-archive block (``0x7b``). Each
  header starts with the low 16 bits of the CRC32 of the header bytes after the
  CRC field; a file header carries the CRC32 of its data. Names are UTF-8 with
  the Unicode flag set (no NUL, which readers take as "plain UTF-8") and use
  ``\\`` as the separator, as RAR 4 does. Members are written with the Unix
  host OS, so the attributes field is a full ``st_mode`` (file type included:
  that is how RAR 4 stores symlinks and device files).
* **Multi-volume RAR 4**: each volume repeats the marker and main header (with
  the volume flags); a member's data is cut at volume boundaries and each part
  gets a file header flagged "split before" / "split after". A non-final part
  carries the CRC32 of its own bytes, the final part the CRC32 of the whole
  member, as RAR does. Non-final volumes end with an end block flagged "next
  volume".
* **RAR 5** (``Rar!\\x1a\\x07\\x01\\x00``): variable-length integers, a full
  CRC32 per header, file headers with an optional file-system redirection
  record (symlinks and hard links).

Only the stored method is written: the payload is copied as is, which is all the
tests need to prove that libarchive finds, names and extracts each member.
"""

from __future__ import annotations

import enum
import stat
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

RAR4_SIGNATURE = b"Rar!\x1a\x07\x00"
RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"

FIXED_MTIME = 1_700_000_000
"""2023-11-14T22:13:20Z: an even second, so DOS time (2 s resolution) keeps it exactly."""

# RAR 4 block types and flags (RAR 2.9/3.x technical note).
_R4_MAIN_HEAD = 0x73
_R4_FILE_HEAD = 0x74
_R4_ENDARC_HEAD = 0x7B
_R4_LONG_BLOCK = 0x8000  # ADD_SIZE (the packed size) follows the header
_R4_MHD_VOLUME = 0x0001
_R4_MHD_NEWNUMBERING = 0x0010
_R4_MHD_FIRSTVOLUME = 0x0100
_R4_LHD_SPLIT_BEFORE = 0x0001
_R4_LHD_SPLIT_AFTER = 0x0002
_R4_LHD_DIRECTORY = 0x00E0
_R4_LHD_LARGE = 0x0100
_R4_LHD_UNICODE = 0x0200
_R4_EARC_NEXT_VOLUME = 0x0001
_R4_HOST_UNIX = 3
_R4_UNPACK_VERSION = 29
_R4_METHOD_STORE = 0x30
_R4_MAX_32 = 0xFFFF_FFFF

# RAR 5 header types and flags (RAR 5.0 archive format).
_R5_MAIN = 1
_R5_FILE = 2
_R5_END = 5
_R5_HFL_EXTRA = 0x0001
_R5_HFL_DATA = 0x0002
_R5_HFL_SPLIT_BEFORE = 0x0008
_R5_HFL_SPLIT_AFTER = 0x0010
_R5_MAIN_VOLUME = 0x0001
_R5_MAIN_VOLUME_NUMBER = 0x0002
_R5_FILE_DIRECTORY = 0x0001
_R5_FILE_MTIME = 0x0002
_R5_FILE_CRC = 0x0004
_R5_END_NOT_LAST = 0x0001
_R5_HOST_UNIX = 1
_R5_EXTRA_REDIRECT = 0x05
_R5_REDIRECT_UNIX_SYMLINK = 1
_R5_REDIRECT_HARDLINK = 4


class RarKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    """RAR 5 only: RAR 4 has no hard links."""
    CHAR_DEVICE = "char-device"
    FIFO = "fifo"


_MODE_TYPE = {
    RarKind.FILE: stat.S_IFREG,
    RarKind.DIR: stat.S_IFDIR,
    RarKind.SYMLINK: stat.S_IFLNK,
    RarKind.HARDLINK: stat.S_IFREG,
    RarKind.CHAR_DEVICE: stat.S_IFCHR,
    RarKind.FIFO: stat.S_IFIFO,
}


@dataclass(frozen=True)
class RarMember:
    """One member as written; ``name`` is stored as given, unchecked (tests need hostile names)."""

    name: str
    data: bytes = b""
    kind: RarKind = RarKind.FILE
    mode: int = 0o644
    """Permission bits; the file type bits come from ``kind``."""
    mtime: int = FIXED_MTIME
    link_target: str = ""
    """Target of a symlink or hard link."""
    declared_size: int | None = None
    """Unpacked size to write in the header instead of the real one (to forge a liar)."""


def rar4_archive(members: Iterable[RarMember]) -> bytes:
    """A single-volume RAR 4 archive holding ``members`` in order."""
    out = bytearray(RAR4_SIGNATURE)
    out += _r4_main_header(0)
    for member in members:
        payload = _r4_payload(member)
        out += _r4_file_header(member, payload, _declared(member, payload), zlib.crc32(payload), 0)
        out += payload
    out += _r4_block(_R4_ENDARC_HEAD, 0, b"")
    return bytes(out)


def rar4_volumes(members: Sequence[RarMember], volume_data_size: int) -> list[bytes]:
    """A multi-volume RAR 4 set of about ``volume_data_size`` member bytes per volume.

    Volumes are meant to be named ``NAME.part1.rar``, ``NAME.part2.rar``, ...
    (the "new numbering" flag is set). A volume only ever ends inside a
    regular file, as RAR's own volumes do; symlinks are never cut.
    """
    volumes = _layout(members, _r4_payload, volume_data_size)
    result = []
    for number, pieces in enumerate(volumes):
        main_flags = _R4_MHD_VOLUME | _R4_MHD_NEWNUMBERING
        if number == 0:
            main_flags |= _R4_MHD_FIRSTVOLUME
        out = bytearray(RAR4_SIGNATURE + _r4_main_header(main_flags))
        for piece in pieces:
            flags = (_R4_LHD_SPLIT_BEFORE if piece.split_before else 0) | (
                _R4_LHD_SPLIT_AFTER if piece.split_after else 0
            )
            crc = zlib.crc32(piece.data if piece.split_after else piece.whole)
            out += _r4_file_header(piece.member, piece.data, len(piece.whole), crc, flags)
            out += piece.data
        last = number == len(volumes) - 1
        out += _r4_block(_R4_ENDARC_HEAD, 0 if last else _R4_EARC_NEXT_VOLUME, b"")
        result.append(bytes(out))
    return result


@dataclass(frozen=True)
class _Piece:
    """The part of one member that lands in one volume."""

    member: RarMember
    data: bytes
    whole: bytes
    split_before: bool
    split_after: bool


def _layout(
    members: Sequence[RarMember],
    payload_of: Callable[[RarMember], bytes],
    volume_data_size: int,
) -> list[list[_Piece]]:
    """Cut members across volumes; a new volume starts only inside a regular file."""
    if volume_data_size <= 0:
        raise ValueError("volume_data_size must be positive")
    volumes: list[list[_Piece]] = [[]]
    room = volume_data_size
    for member in members:
        payload = payload_of(member)
        if member.kind is not RarKind.FILE or len(payload) <= room:
            volumes[-1].append(_Piece(member, payload, payload, False, False))
            room -= len(payload)
            continue
        first = max(room, 1)  # at least a byte here, so no volume ends between members
        rest = payload[first:]
        cuts = [payload[:first]] + [
            rest[start : start + volume_data_size]
            for start in range(0, len(rest), volume_data_size)
        ]
        for index, cut in enumerate(cuts):
            if index > 0:
                volumes.append([])
            volumes[-1].append(_Piece(member, cut, payload, index > 0, index < len(cuts) - 1))
        room = volume_data_size - len(cuts[-1])
    if len(volumes) < 2:
        raise ValueError("the members fit in one volume: lower volume_data_size")
    return volumes


def _declared(member: RarMember, payload: bytes) -> int:
    return len(payload) if member.declared_size is None else member.declared_size


def _r4_payload(member: RarMember) -> bytes:
    if member.kind is RarKind.SYMLINK:
        return member.link_target.encode()
    if member.kind is RarKind.FILE:
        return member.data
    if member.kind is RarKind.HARDLINK:
        raise ValueError("RAR 4 cannot store hard links")
    return b""


def _r4_block(head_type: int, flags: int, body: bytes) -> bytes:
    size = 7 + len(body)
    rest = struct.pack("<BHH", head_type, flags, size) + body
    return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest


def _r4_main_header(flags: int) -> bytes:
    return _r4_block(_R4_MAIN_HEAD, flags, b"\x00" * 6)


def _r4_file_header(
    member: RarMember, part: bytes, unpacked_size: int, crc: int, split_flags: int
) -> bytes:
    name = member.name.replace("/", "\\").encode()
    flags = _R4_LONG_BLOCK | _R4_LHD_UNICODE | split_flags
    if member.kind is RarKind.DIR:
        flags |= _R4_LHD_DIRECTORY
    large = len(part) > _R4_MAX_32 or unpacked_size > _R4_MAX_32
    if large:
        flags |= _R4_LHD_LARGE
    body = struct.pack(
        "<IIBIIBBHI",
        len(part) & _R4_MAX_32,
        unpacked_size & _R4_MAX_32,
        _R4_HOST_UNIX,
        crc,
        _dos_time(member.mtime),
        _R4_UNPACK_VERSION,
        _R4_METHOD_STORE,
        len(name),
        _MODE_TYPE[member.kind] | member.mode,
    )
    if large:
        body += struct.pack("<II", len(part) >> 32, unpacked_size >> 32)
    return _r4_block(_R4_FILE_HEAD, flags, body + name)


def _dos_time(epoch: int) -> int:
    """DOS date and time in local time, as RAR 4 stores them (2-second resolution)."""
    t = time.localtime(epoch)
    return (
        ((t.tm_year - 1980) << 25)
        | (t.tm_mon << 21)
        | (t.tm_mday << 16)
        | (t.tm_hour << 11)
        | (t.tm_min << 5)
        | (t.tm_sec // 2)
    )


def rar5_archive(members: Iterable[RarMember]) -> bytes:
    """A single-volume RAR 5 archive holding ``members`` in order."""
    out = bytearray(RAR5_SIGNATURE)
    out += _r5_header(_R5_MAIN, 0, _vint(0))
    for member in members:
        data = _r5_payload(member)
        out += _r5_file_header(member, data, _declared(member, data), zlib.crc32(data), 0)
        out += data
    out += _r5_header(_R5_END, 0, _vint(0))
    return bytes(out)


def rar5_volumes(members: Sequence[RarMember], volume_data_size: int) -> list[bytes]:
    """A multi-volume RAR 5 set (``NAME.partN.rar``), cut as :func:`rar4_volumes` cuts."""
    volumes = _layout(members, _r5_payload, volume_data_size)
    result = []
    for number, pieces in enumerate(volumes):
        archive_flags = _R5_MAIN_VOLUME
        main_body = b""
        if number > 0:
            archive_flags |= _R5_MAIN_VOLUME_NUMBER
            main_body = _vint(number)
        out = bytearray(RAR5_SIGNATURE)
        out += _r5_header(_R5_MAIN, 0, _vint(archive_flags) + main_body)
        for piece in pieces:
            flags = (_R5_HFL_SPLIT_BEFORE if piece.split_before else 0) | (
                _R5_HFL_SPLIT_AFTER if piece.split_after else 0
            )
            crc = zlib.crc32(piece.data if piece.split_after else piece.whole)
            out += _r5_file_header(piece.member, piece.data, len(piece.whole), crc, flags)
            out += piece.data
        last = number == len(volumes) - 1
        out += _r5_header(_R5_END, 0, _vint(0 if last else _R5_END_NOT_LAST))
        result.append(bytes(out))
    return result


def _r5_payload(member: RarMember) -> bytes:
    return member.data if member.kind is RarKind.FILE else b""


def _r5_header(
    head_type: int, flags: int, body: bytes, *, extra: bytes = b"", data_size: int | None = None
) -> bytes:
    fields = _vint(head_type)
    if extra:
        flags |= _R5_HFL_EXTRA
    if data_size is not None:
        flags |= _R5_HFL_DATA
    fields += _vint(flags)
    if extra:
        fields += _vint(len(extra))
    if data_size is not None:
        fields += _vint(data_size)
    fields += body + extra
    sized = _vint(len(fields)) + fields
    return struct.pack("<I", zlib.crc32(sized)) + sized


def _r5_file_header(
    member: RarMember, part: bytes, unpacked_size: int, crc: int, split_flags: int
) -> bytes:
    name = member.name.encode()
    file_flags = _R5_FILE_MTIME | _R5_FILE_CRC
    if member.kind is RarKind.DIR:
        file_flags |= _R5_FILE_DIRECTORY
    mode = _MODE_TYPE[member.kind] | member.mode
    body = (
        _vint(file_flags)
        + _vint(unpacked_size)
        + _vint(mode)
        + struct.pack("<II", member.mtime, crc)
        + _vint(0)  # compression information: version 0, not solid, method 0 (store)
        + _vint(_R5_HOST_UNIX)
        + _vint(len(name))
        + name
    )
    extra = b""
    if member.kind in (RarKind.SYMLINK, RarKind.HARDLINK):
        extra = _r5_redirect(member)
    return _r5_header(_R5_FILE, split_flags, body, extra=extra, data_size=len(part))


def _r5_redirect(member: RarMember) -> bytes:
    target = member.link_target.encode()
    kind = _R5_REDIRECT_UNIX_SYMLINK if member.kind is RarKind.SYMLINK else _R5_REDIRECT_HARDLINK
    record = _vint(_R5_EXTRA_REDIRECT) + _vint(kind) + _vint(0) + _vint(len(target)) + target
    return _vint(len(record)) + record


def _vint(value: int) -> bytes:
    """RAR 5 variable-length integer: 7 bits a byte, low bits first, high bit = more."""
    if value < 0:
        raise ValueError("vint cannot hold a negative value")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
