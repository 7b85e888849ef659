"""What stands at a path: one lstat, links seen and never followed, the same errors everywhere."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from tests.support.platforms import make_fifo

from lanspread.errors import StorageError
from lanspread.files.entries import (
    is_real_dir,
    is_regular_file,
    lstat_or_none,
    mode_or_none,
    require_dir_or_absent,
)
from lanspread.files.ownership import InTheWay


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A folder holding one of each kind: a folder, a file, links to both, a dangling link."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "link-to-folder").symlink_to(tmp_path / "folder")
    (tmp_path / "link-to-file").symlink_to(tmp_path / "file")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    return tmp_path


def test_a_link_is_neither_a_folder_nor_a_file(place: Path) -> None:
    """Only the folder and the file themselves count; a link to either counts as neither."""
    assert [is_real_dir(place / name) for name in ("folder", "link-to-folder", "file")] == [
        True,
        False,
        False,
    ]
    assert [is_regular_file(place / name) for name in ("file", "link-to-file", "folder")] == [
        True,
        False,
        False,
    ]
    assert not is_real_dir(place / "missing")
    assert not is_regular_file(place / "missing")


def test_a_dangling_link_holds_its_name(place: Path) -> None:
    """A link to nothing is still something at the name: its own lstat, never None."""
    info = lstat_or_none(place / "dangling")
    assert info is not None
    assert stat.S_ISLNK(info.st_mode)
    assert mode_or_none(place / "dangling") == info.st_mode
    assert lstat_or_none(place / "missing") is None
    assert mode_or_none(place / "missing") is None


def test_an_inspection_the_disk_refuses_is_a_storage_error(place: Path) -> None:
    """Anything but a missing name (here a file used as a folder) raises, naming the path."""
    with pytest.raises(StorageError) as caught:
        is_real_dir(place / "file" / "inside")
    assert str(caught.value) == f"cannot inspect {place / 'file' / 'inside'}: Not a directory"


def test_require_dir_or_absent_accepts_only_a_real_folder_or_nothing(place: Path) -> None:
    """A real folder is True, nothing is False, and a link (even to a folder), a file or a FIFO
    is refused with the same message."""
    make_fifo(place / "fifo")
    assert require_dir_or_absent(place / "folder") is True
    assert require_dir_or_absent(place / "missing") is False
    for name in ("link-to-folder", "file", "dangling", "fifo"):
        with pytest.raises(StorageError) as caught:
            require_dir_or_absent(place / name)
        assert str(caught.value) == f"{place / name} is not a folder (links are not followed)"


def test_require_dir_or_absent_raises_the_callers_error(place: Path) -> None:
    """The download's claim asks for InTheWay: the refusal comes as that class."""
    with pytest.raises(InTheWay) as caught:
        require_dir_or_absent(place / "link-to-folder", error=InTheWay)
    assert (
        str(caught.value) == f"{place / 'link-to-folder'} is not a folder (links are not followed)"
    )
