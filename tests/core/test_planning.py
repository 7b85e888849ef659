"""The chunks of a manifest as tasks (which source fetches them: tests/core/test_engine.py)."""

from __future__ import annotations

import blake3

from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.manifest import (
    MIN_CHUNK_SIZE,
    ChunkDigest,
    FileManifest,
    GameManifest,
    chunk_spans,
)
from lanspread.core.planning import ChunkTask, manifest_tasks

C = MIN_CHUNK_SIZE


def entry(path: str, size: int) -> FileManifest:
    chunks = tuple(
        ChunkDigest(offset, length, blake3.blake3(f"{path}:{offset}".encode()).digest())
        for offset, length in chunk_spans(size, C)
    )
    return FileManifest(path=path, size=size, chunks=chunks)


def make_manifest(*files: FileManifest) -> GameManifest:
    listed = [*files, entry(VERSION_FILE, 12)]
    return GameManifest(
        game_id="quake3",
        version="1.0",
        chunk_size=C,
        files=tuple(sorted(listed, key=lambda file: file.path)),
    )


def test_every_chunk_is_a_task_in_path_and_offset_order() -> None:
    """Tasks list every chunk of every file, the sentinel included, in (path, offset) order;
    empty files have none."""
    manifest = make_manifest(entry("b/c.eti", C), entry("a.eti", 2 * C + 5), entry("e.txt", 0))
    assert [task.key for task in manifest_tasks(manifest)] == [
        ("a.eti", 0),
        ("a.eti", C),
        ("a.eti", 2 * C),
        ("b/c.eti", 0),
        (VERSION_FILE, 0),
    ]


def test_tasks_carry_the_manifest_digests_and_know_the_sentinel() -> None:
    """Each task names its chunk, its length and the digest its bytes must have."""
    manifest = make_manifest(entry("a.eti", C + 5))
    tail = manifest_tasks(manifest)[1]
    assert tail == ChunkTask("a.eti", C, 5, blake3.blake3(f"a.eti:{C}".encode()).digest())
    assert not tail.is_sentinel
    assert manifest_tasks(manifest)[-1].is_sentinel
