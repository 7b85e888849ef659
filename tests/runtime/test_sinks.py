"""A data connection's request queue: it runs dry and refills, and routes copies aside."""

from __future__ import annotations

from pathlib import Path

from tests.support.download_roots import build_manifest

from lanspread.core.planning import ChunkTask
from lanspread.download.prepare import prepare_game_storage
from lanspread.runtime.sinks import FileSink, RequestQueue, ScratchFile


def task(offset: int) -> ChunkTask:
    return ChunkTask("a.eti", offset, 4, b"\0" * 32)


async def test_the_queue_runs_dry_and_refills() -> None:
    """The data client may find the queue empty and ask again later: no task is lost and
    ``ready`` says when there is something to send."""
    queue = RequestQueue(FileSink(Path("/nonexistent")), lambda: -1)
    queue.add([task(0)], scratch=False)
    assert queue.ready.is_set()
    assert [t.offset for t in queue] == [0]
    assert not queue.ready.is_set()
    queue.add([task(4), task(8)], scratch=False)
    assert next(queue).offset == 4
    assert next(queue).offset == 8


async def test_copies_go_to_scratch_and_the_rest_in_place(tmp_path: Path) -> None:
    """A task added as a copy is written into the scratch file, any other into the
    game's file; the choice follows each task as the data client takes it."""
    manifest = build_manifest({"a.eti": b"x" * 16, "version.ini": b"1.0\n"})
    prepare_game_storage(tmp_path, manifest, owned=None)
    files, scratch = FileSink(tmp_path), ScratchFile()
    try:
        queue = RequestQueue(files, scratch.fileno)
        queue.add([task(0)], scratch=True)
        queue.add([task(4)], scratch=False)
        first = next(queue)
        assert queue.fd_for(first) == scratch.fileno()
        second = next(queue)
        assert queue.fd_for(second) == files.fd_for(second)
    finally:
        files.close()
        scratch.close()
