"""Child process for the download kill -9 tests: download a game from local bytes, die on cue.

Usage: ``python -m tests.support.download_crash_child ROOT SEED STOP`` where the
game is :func:`crash_game_files` of ``SEED`` and STOP is one of:

* ``none``: run to completion (the parent may SIGKILL it at any time; it prints
  one line per written piece and per journal commit so the parent can pick a
  random moment);
* ``call:NAME:N``: SIGKILL itself just before the Nth call of ``os.NAME``
  (``pwrite``, ``fdatasync``, ``fsync``, ``replace``, ``unlink``);
* ``step:NAME``: SIGKILL itself at a sentinel step: ``after-park`` (parked, not
  yet journaled), a :data:`~lanspread.files.sentinel.COMMIT_STEPS` name, or
  ``before-journal-remove`` (sentinel committed, journal still there).

It does what the orchestrator does: resume from the journal if there is one,
otherwise park the sentinel, journal, and reuse matching bytes; prepare the
storage; write each pending chunk in pieces, sometimes first as corrupt bytes
from a "bad peer" that fail verification; mark a chunk done only once its bytes
verified; commit the journal durably every :data:`COMMIT_EVERY` chunks; finally
commit the sentinel and remove the journal. Kept apart from the test module so
the child does not pay for importing pytest.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanspread.core.planning import ChunkTask, manifest_tasks
from lanspread.download.journal import DownloadJournal, load
from lanspread.download.prepare import open_for_writing, prepare_game_storage, write_at
from lanspread.download.reuse import reusable_chunks
from lanspread.files.hashing import ChunkHasher
from lanspread.files.ownership import (
    OwnershipRecord,
    claim_download,
    identify,
    load_record_or_none,
)
from lanspread.files.sentinel import begin_update, commit_sentinel
from tests.support.download_roots import CHUNK, blob, build_manifest
from tests.support.platforms import kill_hard

SURVIVED_EXIT_CODE = 3
"""Exit code when a ``call:`` or ``step:`` kill point was never reached."""
COMMIT_EVERY = 3
PIECES_PER_CHUNK = 4
# Roughly one chunk in four first arrives corrupt, as from a peer that lies.
CORRUPT_ONE_IN = 4


def crash_game_files(seed: int) -> dict[str, bytes]:
    """A 13-chunk game with uneven tails and a nested folder."""
    return {
        "quake3.eti": blob(seed, 5 * CHUNK + 123),
        "maps/dm.eti": blob(seed + 1, 4 * CHUNK),
        "quake3.part2.eti": blob(seed + 2, 2 * CHUNK + 5),
        "version.ini": f"version = {seed}\n".encode(),
    }


def _die() -> None:
    kill_hard(os.getpid())


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _arm_call(name: str, nth: int) -> None:
    real: Callable[..., Any] = getattr(os, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth:
            _die()
        return real(*args, **kwargs)

    setattr(os, name, wrapper)


def _step_killer(stop: str) -> Callable[[str], None]:
    def checkpoint(step: str) -> None:
        if stop == f"step:{step}":
            _die()

    return checkpoint


def _start(
    root: Path, files: dict[str, bytes], checkpoint: Callable[[str], None]
) -> tuple[DownloadJournal, OwnershipRecord]:
    manifest = build_manifest(files)
    # As the runtime does: claim every name first; an update of a ready game adopts
    # the manifest's own paths.
    record = claim_download(root, manifest, adopt=(root / "version.ini").is_file())
    journal = load(root)
    if journal is not None:
        return journal, record
    begin_update(root)
    checkpoint("after-park")
    journal = DownloadJournal.create(root, manifest)
    reused = reusable_chunks(root, manifest)
    if reused:
        journal.mark_done(reused)
        journal.commit_durable(sorted({path for path, _ in reused}))
    return journal, record


def _fetch(root: Path, task: ChunkTask, data: bytes, rng: random.Random) -> None:
    """Write one chunk in pieces as a network would deliver them, retrying a corrupt copy."""
    bad_first = rng.randrange(CORRUPT_ONE_IN) == 0
    fd = open_for_writing(root, task.path)
    try:
        while True:
            payload = bytes(reversed(data)) if bad_first else data
            bad_first = False
            hasher = ChunkHasher(task)
            piece = -(-len(payload) // PIECES_PER_CHUNK)
            for start in range(0, len(payload), piece):
                hasher.update(payload[start : start + piece])
                write_at(fd, payload[start : start + piece], task.offset + start, name=task.path)
                _say(f"piece {task.path} {task.offset + start}")
            if hasher.matches():
                return
    finally:
        os.close(fd)


def _child_main(root: Path, seed: int, stop: str) -> None:
    if stop.startswith("call:"):
        _, name, nth = stop.split(":")
        _arm_call(name, int(nth))
    checkpoint = _step_killer(stop)
    files = crash_game_files(seed)
    journal, record = _start(root, files, checkpoint)
    prepare_game_storage(root, journal.manifest, margin=0, owned=record)
    identify(root, load_record_or_none(root) or record)
    rng = random.Random(seed * 7919 + len(journal.done_keys))
    pending = [
        task
        for task in manifest_tasks(journal.manifest)
        if not task.is_sentinel and not journal.is_done(task.key)
    ]
    rng.shuffle(pending)
    since: list[ChunkTask] = []
    for task in pending:
        _fetch(root, task, files[task.path][task.offset : task.offset + task.length], rng)
        journal.mark_done([task.key])
        since.append(task)
        if len(since) >= COMMIT_EVERY:
            journal.commit_durable(sorted({done.path for done in since}))
            _say(f"commit {len(journal.done_keys)}")
            since.clear()
    journal.commit_durable(sorted({done.path for done in since}))
    commit_sentinel(root, files["version.ini"], checkpoint=checkpoint)
    identify(root, load_record_or_none(root) or record)
    checkpoint("before-journal-remove")
    journal.remove()
    _say("complete")


if __name__ == "__main__":
    _child_main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
    if sys.argv[3] != "none":
        sys.exit(SURVIVED_EXIT_CODE)
