"""Reading the version.ini sentinel: bounded, never through a link, settled by the clock."""

from __future__ import annotations

from pathlib import Path

from tests.support.platforms import make_fifo

from lanspread.core.gameroot import MAX_VERSION_FILE_SIZE
from lanspread.files.version_ini import (
    COARSE_MTIME_WINDOW_NS,
    SentinelPrint,
    read_sentinel,
    settled,
    version_from_sentinel,
)


def test_a_sentinel_is_read_with_its_size_and_mtime(tmp_path: Path) -> None:
    """The print holds the bytes, the size and the mtime the read saw."""
    (tmp_path / "version.ini").write_bytes(b"version = 2.0\n")
    info = (tmp_path / "version.ini").stat()
    sentinel = read_sentinel(tmp_path, info.st_mtime_ns + COARSE_MTIME_WINDOW_NS)
    assert sentinel == SentinelPrint(
        size=14, mtime_ns=info.st_mtime_ns, contents=b"version = 2.0\n", settled=True
    )
    assert version_from_sentinel(sentinel) == "2.0"


def test_a_read_within_the_coarse_window_is_unsettled(tmp_path: Path) -> None:
    """An mtime younger than the window may still hide a rewrite: the read is unsettled."""
    (tmp_path / "version.ini").write_bytes(b"version = 2.0\n")
    mtime = (tmp_path / "version.ini").stat().st_mtime_ns
    sentinel = read_sentinel(tmp_path, mtime + COARSE_MTIME_WINDOW_NS - 1)
    assert sentinel is not None
    assert not sentinel.settled
    assert settled(mtime, mtime + COARSE_MTIME_WINDOW_NS)
    assert not settled(mtime, mtime + COARSE_MTIME_WINDOW_NS - 1)


def test_no_regular_file_is_no_sentinel(tmp_path: Path) -> None:
    """Missing, a link (never read through), a folder or a FIFO (never blocked on): None."""
    assert read_sentinel(tmp_path, 0) is None
    (tmp_path / "elsewhere.ini").write_bytes(b"version = 9\n")
    (tmp_path / "version.ini").symlink_to(tmp_path / "elsewhere.ini")
    assert read_sentinel(tmp_path, 0) is None
    (tmp_path / "version.ini").unlink()
    (tmp_path / "version.ini").mkdir()
    assert read_sentinel(tmp_path, 0) is None
    (tmp_path / "version.ini").rmdir()
    make_fifo(tmp_path / "version.ini")
    assert read_sentinel(tmp_path, 0) is None


def test_an_oversized_sentinel_counts_but_names_no_version(tmp_path: Path) -> None:
    """Over the bound the file is still there (its size kept) but its bytes are not read."""
    (tmp_path / "version.ini").write_bytes(b"version = 7\n" + b"#" * MAX_VERSION_FILE_SIZE)
    sentinel = read_sentinel(tmp_path, 0)
    assert sentinel is not None
    assert (sentinel.size, sentinel.contents) == (MAX_VERSION_FILE_SIZE + 12, b"")
    assert version_from_sentinel(sentinel) is None


def test_a_utf16_sentinel_with_a_bom_is_decoded() -> None:
    """Windows tools write UTF-16 with a byte order mark; the version is read all the same."""
    contents = "version = 3.1\n".encode("utf-16")
    sentinel = SentinelPrint(size=len(contents), mtime_ns=0, contents=contents, settled=True)
    assert version_from_sentinel(sentinel) == "3.1"
    assert version_from_sentinel(None) is None
