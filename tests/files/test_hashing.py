"""Hashing game payload files into manifests, and verifying chunks, on real temp files."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import blake3
import pytest
from tests.support.platforms import make_fifo, make_null_device
from tests.support.trees import write_file, write_tree

from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.manifest import (
    DEFAULT_CHUNK_SIZE,
    MAX_FILES_PER_GAME,
    MIN_CHUNK_SIZE,
    TARGET_CHUNKS,
    ChunkDigest,
    FileManifest,
    GameManifest,
    chunk_spans,
    validate_manifest,
)
from lanspread.core.planning import ChunkTask, manifest_tasks
from lanspread.errors import ProtocolError, StorageError
from lanspread.files import hashing
from lanspread.files.hashing import (
    HASH_BLOCK_SIZE,
    ChunkHasher,
    HashingStopped,
    hash_game_payload,
    verify_chunk,
)

C = MIN_CHUNK_SIZE


def payload(size: int, seed: int) -> bytes:
    """Deterministic bytes that differ from chunk to chunk."""
    return blake3.blake3(seed.to_bytes(4, "little")).digest(length=size)


def expected_entry(path: str, data: bytes, chunk_size: int) -> FileManifest:
    """The manifest entry computed directly from the bytes, independently of the hasher."""
    chunks = tuple(
        ChunkDigest(offset, length, blake3.blake3(data[offset : offset + length]).digest())
        for offset, length in chunk_spans(len(data), chunk_size)
    )
    return FileManifest(path=path, size=len(data), chunks=chunks)


@pytest.fixture
def game_root(root: Path) -> Path:
    """The root with its version.ini: a downloaded game to hash."""
    write_file(root / VERSION_FILE, b"version = 1.0\n")
    return root


def test_manifest_matches_the_bytes(game_root: Path) -> None:
    """Every payload file is listed, sorted, with one digest per chunk of its bytes."""
    files = {
        "a.eti": payload(3 * C + 5, 1),
        "data/b.bin": payload(C, 2),
        "data/local/nested.cfg": payload(10, 3),
        "empty.cfg": b"",
    }
    write_tree(game_root, files)
    manifest = hash_game_payload(game_root, "quake3", "1.0", C)
    files[VERSION_FILE] = b"version = 1.0\n"
    assert manifest == GameManifest(
        game_id="quake3",
        version="1.0",
        chunk_size=C,
        files=tuple(expected_entry(path, files[path], C) for path in sorted(files)),
    )
    validate_manifest(manifest)


def test_chunk_size_that_is_not_a_block_multiple(game_root: Path) -> None:
    """Chunks spanning several read blocks with a remainder hash exactly their bytes."""
    chunk_size = 3 * HASH_BLOCK_SIZE + 12_345
    data = payload(2 * chunk_size + 77, 4)
    write_file(game_root / "big.eti", data)
    manifest = hash_game_payload(game_root, "quake3", None, chunk_size)
    assert manifest.by_path()["big.eti"] == expected_entry("big.eti", data, chunk_size)
    assert manifest.version is None


def test_default_chunk_size_is_used_when_not_given(game_root: Path) -> None:
    """Without a chunk size the manifest uses DEFAULT_CHUNK_SIZE."""
    assert hash_game_payload(game_root, "quake3", "1.0").chunk_size == DEFAULT_CHUNK_SIZE


def sparse_payload(game_root: Path, size: int) -> None:
    """A ``size``-byte archive of zeros that takes no disk space."""
    with open(game_root / "big.eti", "wb") as archive:
        archive.truncate(size)


def test_no_chunk_size_means_the_one_the_payload_size_calls_for(game_root: Path) -> None:
    """``None`` hashes at chunk_size_for of the payload: 2 MiB once it holds
    TARGET_CHUNKS chunks of 2 MiB, as every peer computing it from the same files."""
    sparse_payload(game_root, TARGET_CHUNKS * 2 * C)
    manifest = hash_game_payload(game_root, "quake3", "1.0", None)
    assert manifest.chunk_size == 2 * C
    assert manifest.by_path()["big.eti"].chunks[1].offset == 2 * C
    validate_manifest(manifest)


def test_payload_that_changes_size_class_while_hashed_is_a_storage_error(
    game_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the files hashed no longer call for the chunk size their sizes called for
    before (one grew in between), the manifest is refused rather than published."""
    sparse_payload(game_root, TARGET_CHUNKS * 2 * C)
    monkeypatch.setattr(hashing, "_payload_bytes", lambda root, paths: 0)
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", None)
    assert str(caught.value) == f"the payload of {game_root} changed size while it was hashed"


def test_reserved_root_names_are_not_payload(game_root: Path) -> None:
    """local/, install transaction folders, intent logs and transients are skipped."""
    for relative in [
        "local/game.exe",
        ".local.installing/x",
        ".local.backup/x",
        ".lanspread.json",
        ".softlan_game_installed",
        ".sync/state",
        ".version.ini.tmp",
        ".version.ini.discarded",
        ".lanspread.download.json",
    ]:
        write_file(game_root / relative, b"not payload")
    write_file(game_root / "a.eti", b"payload")
    manifest = hash_game_payload(game_root, "quake3", "1.0", C)
    assert [file.path for file in manifest.files] == ["a.eti", VERSION_FILE]


def test_symlinks_are_never_followed_or_listed(game_root: Path, tmp_path: Path) -> None:
    """Links to files or folders, inside or outside the root, are not payload."""
    outside = tmp_path / "outside"
    outside.mkdir()
    write_file(outside / "secret.txt", b"secret")
    write_file(game_root / "a.eti", b"payload")
    (game_root / "link-file").symlink_to(outside / "secret.txt")
    (game_root / "link-dir").symlink_to(outside)
    (game_root / "sub").mkdir()
    (game_root / "sub" / "inner").symlink_to(game_root / "a.eti")
    manifest = hash_game_payload(game_root, "quake3", "1.0", C)
    assert [file.path for file in manifest.files] == ["a.eti", VERSION_FILE]


def test_symlinked_root_is_refused(game_root: Path, tmp_path: Path) -> None:
    """A game root that is a link is not hashed through."""
    link = tmp_path / "linked"
    link.symlink_to(game_root)
    with pytest.raises(StorageError) as caught:
        hash_game_payload(link, "quake3", "1.0", C)
    assert str(caught.value) == f"game root {link} is not a folder (symlinks are not followed)"


def test_missing_root_is_a_storage_error(tmp_path: Path) -> None:
    """A vanished game root is reported with the OS reason."""
    missing = tmp_path / "gone"
    with pytest.raises(StorageError) as caught:
        hash_game_payload(missing, "quake3", "1.0", C)
    assert str(caught.value) == f"cannot read game root {missing}: No such file or directory"


def test_fifo_is_refused(game_root: Path) -> None:
    """A FIFO in the payload is refused rather than read (it could block forever)."""
    make_fifo(game_root / "pipe")
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C)
    assert str(caught.value) == (
        f"{game_root / 'pipe'} is not a regular file or folder; refusing to hash it"
    )


def test_device_file_is_refused(game_root: Path) -> None:
    """A device node in the payload is refused (it could be endless or harmful to read)."""
    try:
        make_null_device(game_root / "null")
    except PermissionError:
        pytest.skip("creating device nodes needs root")
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C)
    assert str(caught.value) == (
        f"{game_root / 'null'} is not a regular file or folder; refusing to hash it"
    )


def test_missing_sentinel_is_a_storage_error(tmp_path: Path) -> None:
    """A root without version.ini does not describe a downloaded game."""
    root = tmp_path / "quake3"
    write_file(root / "a.eti", b"x")
    with pytest.raises(StorageError) as caught:
        hash_game_payload(root, "quake3", "1.0", C)
    assert str(caught.value) == (
        f"cannot describe the payload of {root}: manifest of 'quake3': no root version.ini"
    )


def test_unsafe_local_name_is_a_storage_error(game_root: Path) -> None:
    """A local file whose name peers could not use safely makes the payload unservable."""
    write_file(game_root / "a\\b.eti", b"x")
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C)
    assert str(caught.value) == (
        f"cannot describe the payload of {game_root}: unsafe path 'a\\\\b.eti': "
        "forbidden character '\\\\'"
    )


def test_too_many_files_stop_the_walk(game_root: Path) -> None:
    """The walk stops as soon as the file count passes MAX_FILES_PER_GAME."""
    folder = game_root / "many"
    folder.mkdir()
    for index in range(MAX_FILES_PER_GAME):
        (folder / f"{index}").touch()
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C)
    assert str(caught.value) == (f"{game_root} holds more than {MAX_FILES_PER_GAME} payload files")


def test_unlistable_folder_is_a_storage_error(
    game_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the OS refuses to list is reported with the OS reason, not skipped."""
    write_file(game_root / "data/a.eti", b"x")
    blocked = game_root / "data"
    real_scandir = os.scandir

    def scandir(path: Path) -> object:
        if Path(path) == blocked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C)
    assert str(caught.value) == f"cannot list {blocked}: Permission denied"


def stop_after(calls: int, action: Callable[[], None] = lambda: None) -> Callable[[], bool]:
    """A should_stop that runs ``action`` on its first call and says stop after ``calls``."""
    seen = 0

    def should_stop() -> bool:
        nonlocal seen
        seen += 1
        if seen == 1:
            action()
        return seen > calls

    return should_stop


def test_should_stop_ends_hashing_between_blocks(game_root: Path) -> None:
    """Hashing stops at the next block once should_stop says so."""
    write_file(game_root / "a.eti", payload(3 * HASH_BLOCK_SIZE, 5))
    with pytest.raises(HashingStopped) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C, stop_after(2))
    assert str(caught.value) == f"hashing stopped at {game_root / 'a.eti'}"


def test_event_set_before_start_stops_at_once(game_root: Path) -> None:
    """A threading.Event's is_set works as should_stop."""
    write_file(game_root / "a.eti", b"x")
    event = threading.Event()
    event.set()
    with pytest.raises(HashingStopped):
        hash_game_payload(game_root, "quake3", "1.0", C, event.is_set)


def test_file_removed_after_the_scan_is_a_storage_error(game_root: Path) -> None:
    """A file that vanishes between the walk and its turn is reported, not skipped."""
    write_file(game_root / "a.eti", b"x")
    write_file(game_root / "b.eti", b"y")
    victim = game_root / "b.eti"
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C, stop_after(99, victim.unlink))
    assert str(caught.value) == f"cannot open {victim}: No such file or directory"


def test_file_swapped_for_a_link_after_the_scan_is_refused(game_root: Path) -> None:
    """A file replaced by a symlink after the walk is not followed when opened."""
    write_file(game_root / "a.eti", b"x")
    write_file(game_root / "b.eti", b"y")
    victim = game_root / "b.eti"

    def swap() -> None:
        victim.unlink()
        victim.symlink_to(game_root / "a.eti")

    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C, stop_after(99, swap))
    assert str(caught.value) == f"cannot open {victim}: Too many levels of symbolic links"


def test_file_swapped_for_a_fifo_after_the_scan_is_refused(game_root: Path) -> None:
    """A file replaced by a FIFO after the walk is opened without blocking and refused."""
    write_file(game_root / "a.eti", b"x")
    write_file(game_root / "b.eti", b"y")
    victim = game_root / "b.eti"

    def swap() -> None:
        victim.unlink()
        make_fifo(victim)

    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C, stop_after(99, swap))
    assert str(caught.value) == f"{victim} is not a regular file; refusing to hash it"


def test_file_shrinking_while_hashed_is_a_storage_error(game_root: Path) -> None:
    """A file truncated under the hasher is reported instead of hashed short."""
    victim = game_root / "a.eti"
    write_file(game_root / "a.eti", payload(2 * HASH_BLOCK_SIZE, 6))

    def truncate() -> None:
        os.truncate(victim, 10)

    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C, stop_after(99, truncate))
    assert str(caught.value) == f"{victim} shrank while it was hashed"


class _FailingReader:
    def __enter__(self) -> _FailingReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def readinto(self, buffer: memoryview) -> int:
        raise OSError(5, "Input/output error")


def test_read_error_is_a_storage_error(game_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An I/O error while reading is translated, and the descriptor is still closed."""
    write_file(game_root / "a.eti", b"x")
    opened: list[int] = []

    def open_reader(fd: int) -> _FailingReader:
        opened.append(fd)
        return _FailingReader()

    monkeypatch.setattr(hashing, "_open_reader", open_reader)
    with pytest.raises(StorageError) as caught:
        hash_game_payload(game_root, "quake3", "1.0", C)
    assert str(caught.value) == f"cannot read {game_root / 'a.eti'}: Input/output error"
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(opened[0])


# --- chunk verification -----------------------------------------------------------------


def chunk_of(data: bytes) -> ChunkDigest:
    return ChunkDigest(0, len(data), blake3.blake3(data).digest())


def test_chunk_hasher_accepts_the_right_bytes_fed_in_pieces() -> None:
    """Bytes fed in uneven pieces (bytes, bytearray, memoryview) verify as one chunk."""
    data = payload(100_000, 7)
    hasher = ChunkHasher(chunk_of(data))
    hasher.update(data[:1])
    hasher.update(bytearray(data[1:50_000]))
    assert not hasher.matches()
    assert (hasher.received, hasher.remaining) == (50_000, 50_000)
    hasher.update(memoryview(data)[50_000:])
    assert hasher.remaining == 0
    assert hasher.matches()


def test_chunk_hasher_rejects_wrong_or_missing_bytes() -> None:
    """Flipped bytes or a short chunk never match."""
    data = payload(1000, 8)
    wrong = ChunkHasher(chunk_of(data))
    wrong.update(b"\x00" + data[1:])
    assert not wrong.matches()
    short = ChunkHasher(chunk_of(data))
    short.update(data[:-1])
    assert not short.matches()


def test_chunk_hasher_refuses_an_overrun() -> None:
    """More bytes than the chunk's length is a protocol violation, named with the counts."""
    hasher = ChunkHasher(chunk_of(b"abcd"))
    hasher.update(b"abc")
    with pytest.raises(ProtocolError) as caught:
        hasher.update(b"de")
    assert str(caught.value) == "chunk data overran its length of 4 bytes (5 received)"
    assert hasher.received == 3


def test_chunk_hasher_accepts_a_planned_task() -> None:
    """A planning ChunkTask carries what the hasher needs."""
    data = payload(10, 9)
    task = ChunkTask("a.eti", 0, len(data), blake3.blake3(data).digest())
    hasher = ChunkHasher(task)
    hasher.update(data)
    assert hasher.matches()


def test_verify_chunk() -> None:
    """Whole chunks verify by length and digest."""
    data = payload(5000, 10)
    expected = chunk_of(data)
    assert verify_chunk(data, expected)
    assert verify_chunk(memoryview(bytearray(data)), expected)
    assert not verify_chunk(data[:-1], expected)
    assert not verify_chunk(b"\xff" + data[1:], expected)


def test_hashed_manifest_verifies_the_files_it_describes(game_root: Path) -> None:
    """Every chunk of a hashed manifest verifies against the bytes read back from disk."""
    write_file(game_root / "a.eti", payload(2 * C + 3, 11))
    manifest = hash_game_payload(game_root, "quake3", "1.0", C)
    for task in manifest_tasks(manifest):
        with open(game_root / task.path, "rb") as handle:
            handle.seek(task.offset)
            assert verify_chunk(handle.read(task.length), task)


def test_hash_next_reads_block_by_block_and_tells_a_short_file(tmp_path: Path) -> None:
    """The digest of a range equals BLAKE3 of those bytes, whatever the buffer size; a file
    that ends first gives None, and a stop request raises before the next block."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    buffer = bytearray(3)
    with path.open("rb", buffering=0) as reader:
        assert isinstance(reader, io.FileIO)
        reader.seek(2)
        assert hashing.hash_next(reader, 7, buffer, lambda: False, path) == (
            blake3.blake3(b"2345678").digest()
        )
        assert hashing.hash_next(reader, 5, buffer, lambda: False, path) is None
        with pytest.raises(hashing.HashingStopped) as caught:
            hashing.hash_next(reader, 1, buffer, lambda: True, path)
    assert str(caught.value) == f"hashing stopped at {path}"
