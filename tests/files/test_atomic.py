"""Crash-safe file replacement: all-or-nothing writes and the sweep of stale temp files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lanspread.errors import StorageError
from lanspread.files.atomic import (
    TEMP_SUFFIX,
    atomic_write_bytes,
    fsync_dir,
    sweep_temp,
    temp_path_for,
)


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
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError) as caught:
        atomic_write_bytes(target, b"new bytes that never land")

    assert str(caught.value) == f"cannot write {target}: No space left on device"
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


def test_missing_folder_is_a_storage_error(tmp_path: Path) -> None:
    """Writing into a folder that does not exist is reported, not raised raw."""
    target = tmp_path / "missing" / "data.json"

    with pytest.raises(StorageError) as caught:
        atomic_write_bytes(target, b"x")

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
    """fsync_dir syncs an existing folder and raises OSError for a missing one."""
    fsync_dir(tmp_path)

    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "missing")
