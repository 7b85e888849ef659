"""Reusing bytes already on disk: which chunks an update or a resume need not fetch."""

from __future__ import annotations

import errno
import os
from io import FileIO
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.support.download_roots import CHUNK, blob, build_manifest, game_files
from tests.support.platforms import make_fifo
from tests.support.trees import write_tree

import lanspread.download.reuse as reuse
from lanspread.core.planning import manifest_tasks
from lanspread.download.reuse import REUSE_BLOCK_SIZE, reusable_chunks
from lanspread.errors import StorageError
from lanspread.files.hashing import HashingStopped

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

FILES = game_files()
MANIFEST = build_manifest(FILES)
PAYLOAD_KEYS = {task.key for task in manifest_tasks(MANIFEST) if not task.is_sentinel}


def test_a_complete_payload_is_reusable_except_the_sentinel(root: Path) -> None:
    """Every payload chunk of an identical tree matches; the sentinel is never reused."""
    write_tree(root, FILES)
    assert reusable_chunks(root, MANIFEST) == PAYLOAD_KEYS


def test_an_update_reuses_the_unchanged_chunks_only(root: Path) -> None:
    """Old-version files: unchanged chunks match, a changed chunk and a short tail do not."""
    old_big = bytearray(FILES["quake3.eti"])
    old_big[CHUNK + 5] ^= 0xFF
    write_tree(
        root,
        {
            "quake3.eti": bytes(old_big),
            "quake3.part2.eti": FILES["quake3.part2.eti"][:-1],
            "maps/extra/dm1.eti": FILES["maps/extra/dm1.eti"] + b"old trailing bytes",
        },
    )
    assert reusable_chunks(root, MANIFEST) == {
        ("quake3.eti", 0),
        ("quake3.eti", 2 * CHUNK),
        ("maps/extra/dm1.eti", 0),
        ("maps/extra/dm1.eti", CHUNK),
    }


def test_missing_files_and_a_missing_root_reuse_nothing(root: Path, tmp_path: Path) -> None:
    """Nothing on disk: nothing to reuse, and no error."""
    assert reusable_chunks(root, MANIFEST) == set()
    assert reusable_chunks(tmp_path / "games" / "absent", MANIFEST) == set()


def test_links_are_never_followed(root: Path, tmp_path: Path) -> None:
    """A link to the right bytes outside the root is not reusable: it is never read."""
    outside = tmp_path / "outside"
    (outside / "extra").mkdir(parents=True)
    (outside / "quake3.eti").write_bytes(FILES["quake3.eti"])
    (outside / "extra" / "dm1.eti").write_bytes(FILES["maps/extra/dm1.eti"])
    (root / "quake3.eti").symlink_to(outside / "quake3.eti")
    (root / "maps").mkdir()
    (root / "maps" / "extra").symlink_to(outside / "extra", target_is_directory=True)
    assert reusable_chunks(root, MANIFEST) == set()


def test_a_fifo_at_a_payload_path_is_skipped_without_blocking(root: Path) -> None:
    """A special file is not payload: it is skipped, never read (so never blocked on)."""
    make_fifo(root / "quake3.eti")
    write_tree(root, {"quake3.part2.eti": FILES["quake3.part2.eti"]})
    assert reusable_chunks(root, MANIFEST) == {("quake3.part2.eti", 0)}


def test_a_file_that_shrinks_while_read_does_not_match(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short read mid-chunk (the file shrank after the size was taken) is not a match."""
    write_tree(root, FILES)
    real_fstat = os.fstat

    def grown(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        values = list(info)
        values[6] = info.st_size + CHUNK  # st_size: pretend a chunk more is there
        return os.stat_result(values)

    monkeypatch.setattr(os, "fstat", grown)
    bigger = build_manifest(
        {**FILES, "quake3.part2.eti": FILES["quake3.part2.eti"] + blob(9, CHUNK)}
    )
    found = reusable_chunks(root, bigger)
    assert ("quake3.part2.eti", 0) not in found
    assert ("quake3.eti", 0) in found


def test_should_stop_ends_the_check(root: Path) -> None:
    """A stop request raises HashingStopped between blocks, naming the file."""
    write_tree(root, FILES)
    with pytest.raises(HashingStopped) as caught:
        reusable_chunks(root, MANIFEST, should_stop=lambda: True)
    assert str(caught.value) == f"hashing stopped at {root / 'maps/extra/dm1.eti'}"


def test_memory_is_bounded_by_one_block(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read goes into the one block-sized buffer: no read is larger than the block."""
    write_tree(root, FILES)
    sizes: list[int] = []

    class CountingReader(FileIO):
        def readinto(self, buffer: WriteableBuffer) -> int | None:
            sizes.append(memoryview(buffer).nbytes)
            return super().readinto(buffer)

    monkeypatch.setattr(reuse, "FileIO", CountingReader)
    assert reusable_chunks(root, MANIFEST) == PAYLOAD_KEYS
    assert sizes
    assert max(sizes) == REUSE_BLOCK_SIZE


def test_a_read_error_is_a_storage_error(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An I/O error while reading names the file."""
    write_tree(root, FILES)

    class BrokenReader(FileIO):
        def readinto(self, buffer: WriteableBuffer) -> int | None:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(reuse, "FileIO", BrokenReader)
    with pytest.raises(StorageError) as caught:
        reusable_chunks(root, MANIFEST)
    assert str(caught.value) == f"cannot read {root / 'maps/extra/dm1.eti'}: Input/output error"


def test_a_linked_root_is_refused(root: Path, tmp_path: Path) -> None:
    """A game root that is a link is never read through."""
    write_tree(root, FILES)
    link = tmp_path / "games" / "linked"
    link.symlink_to(root, target_is_directory=True)
    with pytest.raises(StorageError) as caught:
        reusable_chunks(link, MANIFEST)
    assert str(caught.value) == f"{link} is not a folder (links are not followed)"
