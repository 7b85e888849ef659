"""The slice of libarchive the extractor uses, bound through ``libarchive-c``'s ffi.

``libarchive-c`` opens one file at a time; a multi-volume RAR set must be
opened as one stream of several files with ``archive_read_open_filenames``,
which it does not wrap, so it is bound here with ctypes on the same library.

Readers support only the formats a game archive comes in (RAR 4, RAR 5, 7z,
zip, tar) and the in-process decompression filters. ``format_all`` is not used
on purpose: it brings mtree, whose reader opens files named *by the archive*
from the current directory, and program-backed filters that spawn processes.

The per-entry calls are bound here too, without ``libarchive-c``'s result
check: that check only logs ``ARCHIVE_WARN``, and libarchive reports a zip or
7z CRC mismatch and a failed disk write (``EFBIG``, ``ENOSPC``) as warnings.
:func:`check` treats anything below ``ARCHIVE_OK`` as the failure it is.

Every function here raises ``libarchive.exception.ArchiveError``; the
extractor translates it at its edge. Importing this module raises
:class:`~lanspread.errors.ArchiveLibraryMissing` when libarchive cannot be loaded;
every other module reaches libarchive-c through it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lanspread.errors import ArchiveLibraryMissing
from lanspread.platform.archive_library import LOAD_ERRORS, missing_libarchive_message

# The one place lanspread imports libarchive-c, which loads the shared library on
# import: a system without it gets the typed error saying how to install it.
try:
    from libarchive import ffi as ffi
    from libarchive.entry import ArchiveEntry as ArchiveEntry
    from libarchive.exception import ArchiveError as ArchiveError
except LOAD_ERRORS as exc:
    raise ArchiveLibraryMissing(missing_libarchive_message()) from exc

READ_FORMATS = ("rar", "rar5", "7zip", "zip", "tar")
READ_FILTERS = ("gzip", "bzip2", "xz", "lzma", "zstd", "lz4")

# archive_write_disk options (archive.h).
EXTRACT_PERM = 0x0002
EXTRACT_TIME = 0x0004
EXTRACT_SECURE_SYMLINKS = 0x0100
EXTRACT_SECURE_NODOTDOT = 0x0200
# ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS (0x10000) is not set: the extractor
# hands libarchive absolute paths it built itself under the destination (the
# disk writer resolves relative paths against the process-wide working
# directory, which a worker thread must not change). Every entry name has been
# checked to be relative before it is joined to the destination.
DISK_FLAGS = EXTRACT_PERM | EXTRACT_TIME | EXTRACT_SECURE_SYMLINKS | EXTRACT_SECURE_NODOTDOT


def _bind(name: str, argtypes: list[Any], restype: Any = ctypes.c_int) -> Any:
    """A fresh function object (indexing does not share libarchive-c's cached ones)."""
    function = ffi.libarchive["archive_" + name]
    function.argtypes = argtypes
    function.restype = restype
    return function


_void_p = ctypes.c_void_p
_open_filenames = _bind(
    "read_open_filenames", [_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t]
)
_open_filenames_w = (
    _bind("read_open_filenames_w", [_void_p, ctypes.POINTER(ctypes.c_wchar_p), ctypes.c_size_t])
    if hasattr(ffi.libarchive, "archive_read_open_filenames_w")
    else None
)
read_next_header2 = _bind("read_next_header2", [_void_p, _void_p])
read_data_block = _bind(
    "read_data_block",
    [
        _void_p,
        ctypes.POINTER(_void_p),
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.POINTER(ctypes.c_int64),
    ],
)
write_header = _bind("write_header", [_void_p, _void_p])
write_data_block = _bind(
    "write_data_block", [_void_p, _void_p, ctypes.c_size_t, ctypes.c_int64], ctypes.c_ssize_t
)
write_finish_entry = _bind("write_finish_entry", [_void_p])
write_close = _bind("write_close", [_void_p])
# Freed without a result check: a free after a failure repeats the failure
# (and libarchive-c would read its message from the freed handle).
_write_free = _bind("write_free", [_void_p])
_read_free = _bind("read_free", [_void_p])


def check(archive_p: int, status: int) -> int:
    """``status`` if it is ``ARCHIVE_OK`` or ``ARCHIVE_EOF``; anything lower raises."""
    if status < ffi.ARCHIVE_OK:
        raise ffi.archive_error(archive_p, status)
    return status


@contextmanager
def open_volumes(volumes: Sequence[Path], block_size: int) -> Iterator[int]:
    """A read handle over ``volumes`` read in order as one archive."""
    archive_p: int = ffi.read_new()
    try:
        for name in READ_FILTERS:
            ffi.get_read_filter_function(name)(archive_p)
        for name in READ_FORMATS:
            ffi.get_read_format_function(name)(archive_p)
        _open(archive_p, volumes, block_size)
        yield archive_p
    finally:
        _read_free(archive_p)


def _open(archive_p: int, volumes: Sequence[Path], block_size: int) -> None:
    if sys.platform == "win32" and _open_filenames_w is not None:
        # The narrow API uses the ANSI code page on Windows; names need the wide one.
        wide = (ctypes.c_wchar_p * (len(volumes) + 1))(*map(str, volumes), None)
        status = _open_filenames_w(archive_p, wide, block_size)
    else:
        narrow = (ctypes.c_char_p * (len(volumes) + 1))(*map(os.fsencode, volumes), None)
        status = _open_filenames(archive_p, narrow, block_size)
    check(archive_p, status)


@contextmanager
def disk_writer() -> Iterator[int]:
    """A disk-writer handle; a clean exit closes it, applying deferred folder modes and times."""
    writer_p: int = ffi.write_disk_new()
    try:
        ffi.write_disk_set_options(writer_p, DISK_FLAGS)
        yield writer_p
        check(writer_p, write_close(writer_p))
    finally:
        _write_free(writer_p)


def error_message(exc: ArchiveError) -> str:
    """libarchive's message without the pointer and return code noise."""
    message = exc.msg
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return str(message or "libarchive error")
