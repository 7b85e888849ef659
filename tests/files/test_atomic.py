"""Durable file operations: all-or-nothing writes, synced steps, bounded reads, stale temps."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.download_roots import CHUNK, blob, fill_disk, mounted_tmpfs
from tests.support.platforms import make_fifo

from lanspread.errors import StorageError
from lanspread.files.atomic import (
    TEMP_SUFFIX,
    DiskFull,
    NotARegularFile,
    atomic_write_bytes,
    free_bytes,
    fsync_dir,
    make_dir_synced,
    read_at_most,
    read_regular_bounded,
    rename_synced,
    sweep_temp,
    temp_path_for,
    unlink_synced,
    write_synced_file,
)


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    with mounted_tmpfs("4m") as mount_point:
        yield mount_point


def test_temp_path_is_a_sibling_with_the_suffix(tmp_path: Path) -> None:
    """The temp file sits next to the target, so the rename stays on one filesystem."""
    target = tmp_path / "library_index.json"

    assert temp_path_for(target) == tmp_path / f"library_index.json{TEMP_SUFFIX}"


def test_write_creates_and_replaces(tmp_path: Path) -> None:
    """A first write creates the file; a second replaces it whole; no temp remains."""
    target = tmp_path / "data.json"

    atomic_write_bytes(target, b"first version, longer")
    atomic_write_bytes(target, b"second")

    assert target.read_bytes() == b"second"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.json"]


def test_write_through_a_custom_temp_path(tmp_path: Path) -> None:
    """An explicit temp path is used and consumed by the rename."""
    target = tmp_path / "version.ini"
    temp = tmp_path / ".version.ini.tmp"

    atomic_write_bytes(target, b"version=2\n", temp=temp)

    assert target.read_bytes() == b"version=2\n"
    assert not temp.exists()


def test_fsync_failure_keeps_old_bytes_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure before the rename leaves the old file untouched and cleans the temp file."""
    target = tmp_path / "data.json"
    target.write_bytes(b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError) as caught:
        atomic_write_bytes(target, b"new bytes that never land")

    assert str(caught.value) == f"cannot write {target}: Input/output error"
    assert target.read_bytes() == b"old"
    assert not temp_path_for(target).exists()


def test_rename_failure_keeps_old_bytes(tmp_path: Path) -> None:
    """When the target cannot be replaced (it is a non-empty folder) nothing is lost."""
    target = tmp_path / "data.json"
    target.mkdir()
    (target / "keep").write_bytes(b"k")

    with pytest.raises(StorageError) as caught:
        atomic_write_bytes(target, b"new")

    assert str(caught.value).startswith(f"cannot write {target}: ")
    assert (target / "keep").read_bytes() == b"k"
    assert not temp_path_for(target).exists()


@pytest.mark.parametrize("write", [atomic_write_bytes, write_synced_file])
def test_missing_folder_is_a_storage_error(
    tmp_path: Path, write: Callable[[Path, bytes], None]
) -> None:
    """Writing into a folder that does not exist is reported with the path, not raised raw,
    by the atomic replacement and by its first step alike."""
    target = tmp_path / "missing" / "data.json"

    with pytest.raises(StorageError) as caught:
        write(target, b"x")

    assert str(caught.value) == f"cannot write {target}: No such file or directory"


def test_sweep_removes_a_stale_temp(tmp_path: Path) -> None:
    """A temp file left by a crash is removed and reported; the target is kept."""
    target = tmp_path / "data.json"
    target.write_bytes(b"good")
    temp_path_for(target).write_bytes(b"half")

    assert sweep_temp(target) is True
    assert not temp_path_for(target).exists()
    assert target.read_bytes() == b"good"


def test_sweep_without_temp_reports_nothing(tmp_path: Path) -> None:
    """No temp file: nothing to do, False."""
    assert sweep_temp(tmp_path / "data.json") is False


def test_sweep_that_cannot_remove_raises(tmp_path: Path) -> None:
    """A temp path that cannot be unlinked (a folder) is a StorageError naming it."""
    target = tmp_path / "data.json"
    temp_path_for(target).mkdir()

    with pytest.raises(StorageError) as caught:
        sweep_temp(target)

    assert str(caught.value) == f"cannot remove stale {temp_path_for(target)}: Is a directory"


def test_fsync_dir_accepts_a_folder_and_refuses_a_missing_one(tmp_path: Path) -> None:
    """fsync_dir syncs an existing folder; a missing one is a StorageError naming it."""
    fsync_dir(tmp_path)

    with pytest.raises(StorageError) as caught:
        fsync_dir(tmp_path / "missing")
    assert str(caught.value) == f"cannot sync {tmp_path / 'missing'}: No such file or directory"


# --- the steps of a durable write --------------------------------------------------------------


def test_write_synced_file_replaces_a_link_without_writing_through_it(
    tmp_path: Path,
) -> None:
    """A link at the target is unlinked first; the new file is regular; the target is untouched."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not yours")
    path = tmp_path / "file.tmp"
    path.symlink_to(outside)
    write_synced_file(path, b"new")
    assert not path.is_symlink()
    assert path.read_bytes() == b"new"
    assert outside.read_bytes() == b"not yours"


def test_write_synced_file_refuses_a_folder(tmp_path: Path) -> None:
    """A folder at the target is not ours to delete."""
    (tmp_path / "file.tmp").mkdir()
    with pytest.raises(StorageError) as caught:
        write_synced_file(tmp_path / "file.tmp", b"x")
    assert str(caught.value) == f"cannot write {tmp_path / 'file.tmp'}: Is a directory"
    assert (tmp_path / "file.tmp").is_dir()


def test_write_synced_file_on_a_full_disk_leaves_no_partial_file(tmpfs: Path) -> None:
    """A small durable file that does not fit fails as DiskFull and deletes its partial bytes."""
    fill_disk(tmpfs / "filler")
    with pytest.raises(DiskFull) as caught:
        write_synced_file(tmpfs / "journal.tmp", blob(8, CHUNK))
    assert str(caught.value).startswith(f"disk full while writing {tmpfs / 'journal.tmp'}")
    assert not (tmpfs / "journal.tmp").exists()


def test_rename_and_unlink_synced(tmp_path: Path) -> None:
    """rename_synced replaces the target; unlink_synced reports whether there was a file."""
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")
    rename_synced(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == b"new"
    assert unlink_synced(tmp_path / "b")
    assert not unlink_synced(tmp_path / "b")
    with pytest.raises(StorageError) as caught:
        rename_synced(tmp_path / "a", tmp_path / "b")
    assert str(caught.value) == (
        f"cannot rename {tmp_path / 'a'} to {tmp_path / 'b'}: No such file or directory"
    )


def test_unlink_synced_leaves_a_folder(tmp_path: Path) -> None:
    """A folder at a file's name is never deleted: False, and it stays with what it holds."""
    (tmp_path / "name").mkdir()
    (tmp_path / "name" / "inside").write_bytes(b"x")
    assert unlink_synced(tmp_path / "name") is False
    assert (tmp_path / "name" / "inside").read_bytes() == b"x"


def test_unlink_synced_removes_a_link_and_never_its_target(tmp_path: Path) -> None:
    """A link is unlinked itself; what it points at stays."""
    (tmp_path / "target").write_bytes(b"kept")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert unlink_synced(tmp_path / "link") is True
    assert not os.path.lexists(tmp_path / "link")
    assert (tmp_path / "target").read_bytes() == b"kept"


def test_atomic_write_replaces_a_link_at_the_temp_name_without_writing_through_it(
    tmp_path: Path,
) -> None:
    """A link standing at the temp name is unlinked, never written through."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not yours")
    target = tmp_path / "data.json"
    temp_path_for(target).symlink_to(outside)

    atomic_write_bytes(target, b"new")

    assert target.read_bytes() == b"new"
    assert outside.read_bytes() == b"not yours"
    assert not os.path.lexists(temp_path_for(target))


def test_atomic_write_refuses_a_folder_at_the_temp_name(tmp_path: Path) -> None:
    """A folder at the temp name is not ours to delete: refused, the target untouched."""
    target = tmp_path / "data.json"
    target.write_bytes(b"old")
    temp_path_for(target).mkdir()

    with pytest.raises(StorageError) as caught:
        atomic_write_bytes(target, b"new")

    assert str(caught.value) == f"cannot write {target}: Is a directory"
    assert temp_path_for(target).is_dir()
    assert target.read_bytes() == b"old"


def test_atomic_write_on_a_full_disk_is_disk_full_and_keeps_the_old_bytes(tmpfs: Path) -> None:
    """No room for the temp file: DiskFull naming the target, old bytes kept, no temp left."""
    target = tmpfs / "data.json"
    target.write_bytes(b"old")
    fill_disk(tmpfs / "filler")

    with pytest.raises(DiskFull) as caught:
        atomic_write_bytes(target, blob(8, CHUNK))

    assert str(caught.value) == f"disk full while writing {target}: No space left on device"
    assert target.read_bytes() == b"old"
    assert not temp_path_for(target).exists()


# --- folders ----------------------------------------------------------------------------------


def test_make_dir_synced_creates_once(tmp_path: Path) -> None:
    """A new folder is created (True); an existing one is fine only when asked (False)."""
    folder = tmp_path / "game"
    assert make_dir_synced(folder) is True
    assert folder.is_dir()
    assert make_dir_synced(folder, exist_ok=True) is False
    with pytest.raises(StorageError) as caught:
        make_dir_synced(folder)
    assert str(caught.value) == f"cannot create {folder}: File exists"


def test_make_dir_synced_refuses_a_link_to_a_folder(tmp_path: Path) -> None:
    """A link in the folder's place is refused even with exist_ok: never used as the folder."""
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "game"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StorageError) as caught:
        make_dir_synced(link, exist_ok=True)
    assert str(caught.value) == f"{link} is not a folder (links are not followed)"


def test_make_dir_synced_in_a_missing_parent_is_a_storage_error(tmp_path: Path) -> None:
    """A create the disk refuses names the folder."""
    folder = tmp_path / "missing" / "game"
    with pytest.raises(StorageError) as caught:
        make_dir_synced(folder)
    assert str(caught.value) == f"cannot create {folder}: No such file or directory"


# --- bounded reads ----------------------------------------------------------------------------


def test_read_regular_bounded_reads_a_file_within_its_bound(tmp_path: Path) -> None:
    """A regular file of at most the bound is read whole; a missing one is None."""
    (tmp_path / "small").write_bytes(b"12345")
    assert read_regular_bounded(tmp_path / "small", 5) == b"12345"
    assert read_regular_bounded(tmp_path / "missing", 5) is None


def test_read_regular_bounded_refuses_what_is_not_a_bounded_regular_file(tmp_path: Path) -> None:
    """A link (even to a small file), a folder, a FIFO and a file over the bound are refused,
    each with the reason."""
    (tmp_path / "small").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "small")
    (tmp_path / "folder").mkdir()
    make_fifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"123456")
    for name in ("link", "folder", "fifo"):
        with pytest.raises(NotARegularFile) as caught:
            read_regular_bounded(tmp_path / name, 5)
        assert str(caught.value) == f"{tmp_path / name} is not a regular file"
    with pytest.raises(NotARegularFile) as caught:
        read_regular_bounded(tmp_path / "big", 5)
    assert caught.value.reason == "larger than 5 bytes"


def test_read_regular_bounded_head_reads_only_the_first_bytes(tmp_path: Path) -> None:
    """With head only the first bytes come back, but the whole file is still held to the bound."""
    (tmp_path / "file").write_bytes(b"abcdefgh")
    assert read_regular_bounded(tmp_path / "file", 8, head=3) == b"abc"
    with pytest.raises(NotARegularFile):
        read_regular_bounded(tmp_path / "file", 7, head=3)


def test_read_at_most_tells_a_file_over_the_limit(tmp_path: Path) -> None:
    """Up to the limit the bytes come back; one more byte and the answer is None."""
    (tmp_path / "file").write_bytes(b"abcd")
    fd = os.open(tmp_path / "file", os.O_RDONLY)
    try:
        assert read_at_most(fd, 4) == b"abcd"
        os.lseek(fd, 0, os.SEEK_SET)
        assert read_at_most(fd, 3) is None
    finally:
        os.close(fd)


# --- free space -------------------------------------------------------------------------------


def test_free_bytes_reads_the_disk_and_names_a_path_it_cannot(tmpfs: Path) -> None:
    """The free space of a small test disk is at most its size; a missing path raises the
    caller's error class, naming the path."""

    class Unknown(StorageError):
        """The caller's own error."""

    assert 0 < free_bytes(tmpfs) <= 4 * 1024 * 1024
    with pytest.raises(Unknown) as caught:
        free_bytes(tmpfs / "missing", error=Unknown)
    assert str(caught.value) == (
        f"cannot read the free space of {tmpfs / 'missing'}: No such file or directory"
    )
