"""The portable file calls: each platform's branch, run here where it can be."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.platforms import allocated_bytes, fd_is_blocking

from lanspread.platform import fileio

ReadAt = Callable[[int, int, int], bytes]


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDWR | fileio.O_BINARY)
    try:
        yield fd
    finally:
        os.close(fd)


def test_pread_reads_at_the_offset_and_stops_at_the_end(fd: int) -> None:
    """pread returns the bytes at the offset asked, and fewer only where the file ends."""
    assert fileio.pread(fd, 3, 4) == b"456"
    assert fileio.pread(fd, 100, 7) == b"789"
    assert fileio.pread(fd, 5, 10) == b""


def test_pread_continues_short_reads(fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read that returns fewer bytes than asked before the end is continued."""
    lengths: list[int] = []
    real = fileio._pread_seeking

    def one_byte(fd: int, length: int, offset: int) -> bytes:
        lengths.append(length)
        return real(fd, 1, offset)

    # The same loop wraps both branches; the portable one is the one every platform has.
    monkeypatch.setattr(os, "pread", one_byte, raising=False)
    monkeypatch.setattr(fileio, "_pread_seeking", one_byte)
    assert fileio.pread(fd, 4, 2) == b"2345"
    assert lengths == [4, 3, 2, 1]


def test_the_windows_read_branch_reads_at_the_offset(fd: int) -> None:
    """The seek-and-read branch Windows uses returns the same bytes as pread."""
    assert fileio._pread_seeking(fd, 3, 4) == b"456"
    assert fileio._pread_seeking(fd, 3, 0) == b"012"


@pytest.mark.parametrize(
    "write", [fileio.pwrite, fileio._pwrite_seeking], ids=["platform", "seek-and-write"]
)
def test_both_write_branches_write_at_the_offset(
    fd: int, tmp_path: Path, write: Callable[[int, fileio.Buffer, int], int]
) -> None:
    """The platform's positional write and the Windows branch put the bytes where asked."""
    assert write(fd, b"ab", 3) == 2
    assert (tmp_path / "data.bin").read_bytes() == b"012ab56789"


def test_data_sync_and_directory_sync_accept_real_files(fd: int, tmp_path: Path) -> None:
    """Syncing a written file and its folder succeeds (each platform's call is accepted)."""
    fileio.pwrite(fd, b"x", 0)
    fileio.data_sync(fd)
    fileio.fsync_directory(tmp_path)
    assert fileio.pread(fd, 1, 0) == b"x"


@pytest.mark.skipif(sys.platform == "win32", reason="Windows does not sync folders")
def test_directory_sync_reports_a_missing_folder(tmp_path: Path) -> None:
    """A folder that does not exist is an OSError on POSIX, never a silent success."""
    with pytest.raises(FileNotFoundError):
        fileio.fsync_directory(tmp_path / "missing")


def test_make_blocking_undoes_a_non_blocking_open(tmp_path: Path) -> None:
    """A descriptor opened with O_NONBLOCK blocks again after make_blocking."""
    path = tmp_path / "file.bin"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY | fileio.O_NONBLOCK)
    try:
        fileio.make_blocking(fd)
        assert fd_is_blocking(fd)
    finally:
        os.close(fd)


def test_reserve_blocks_reports_whether_it_reserved(fd: int) -> None:
    """Blocks are reserved where the platform has posix_fallocate, and only there."""
    reserved = fileio.reserve_blocks(fd, 1 << 20)
    assert reserved is (sys.platform not in {"darwin", "win32"})
    if reserved:
        assert allocated_bytes(os.fstat(fd)) >= 1 << 20
