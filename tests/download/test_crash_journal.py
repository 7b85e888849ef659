"""kill -9 while a download writes chunks and commits its journal, then startup and resume.

Each case runs a real download into a game root in a child process
(:mod:`tests.support.download_crash_child`) and SIGKILLs it: at a random moment
chosen by the parent, just before the Nth call of a chosen system call, or at a
step of the sentinel transaction. The parent then settles the root as startup
does (install recovery, :func:`sweep_orphans`, :func:`classify_partial`) and
checks that **every chunk the journal calls done verifies against the manifest
on disk**, then resumes the download to completion and checks the exact tree.

A kill -9 keeps the page cache, so these runs prove the ordering "written and
verified before journaled"; the ordering "synced before journaled" is proven by
``test_commit_durable_syncs_payload_before_renaming_the_journal`` in
``test_journal.py``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.download_crash_child import SURVIVED_EXIT_CODE, crash_game_files
from tests.support.download_roots import build_manifest
from tests.support.install_roots import Snapshot, snapshot
from tests.support.platforms import KILLED_RETURNCODE, kill_hard
from tests.support.trees import write_tree

from lanspread.core.gameroot import OWNERSHIP_FILE
from lanspread.core.planning import manifest_tasks
from lanspread.download.journal import DownloadJournal, load
from lanspread.files.hashing import verify_chunk
from lanspread.files.sentinel import COMMIT_STEPS, DROP_PARKED
from lanspread.install.sweep import recover_game_root
from lanspread.runtime.startup import classify_partial, sweep_orphans

# The code under test (or the test itself) makes the root: whether it was made is part
# of what these tests prove.
pytestmark = pytest.mark.absent_root

REPO = Path(__file__).resolve().parents[2]
# A child imports lanspread and writes about 12 MiB: seconds at most even on a busy box.
CHILD_TIMEOUT_SECONDS = 60
SEED = 2
LOCAL = {"local/game.exe": b"installed", "local/saves/slot1.sav": b"the user's own save"}
# Not created by lanspread (the old version was placed by hand): an update rewrites the
# manifest's own paths but never deletes this one, though the new version dropped it.
V1_ONLY = {"quake3.v1-only.eti": b"an archive the new version dropped"}


def _child(root: Path, seed: int, stop: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.download_crash_child", str(root), str(seed), stop],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _run_until_killed(root: Path, seed: int, stop: str) -> None:
    child = _child(root, seed, stop)
    _, stderr = child.communicate(timeout=CHILD_TIMEOUT_SECONDS)
    assert child.returncode != SURVIVED_EXIT_CODE, f"kill point {stop} was never reached"
    assert child.returncode == KILLED_RETURNCODE, (
        f"child exited {child.returncode} instead of being killed: {stderr.decode()}"
    )


def _kill_after_lines(root: Path, seed: int, lines: int) -> bool:
    """Kill the child once it printed ``lines`` progress lines; False if it finished first."""
    child = _child(root, seed, "none")
    assert child.stdout is not None
    for _ in range(lines):
        if not child.stdout.readline():
            break
    kill_hard(child.pid)
    _, stderr = child.communicate(timeout=CHILD_TIMEOUT_SECONDS)
    assert child.returncode in {0, KILLED_RETURNCODE}, stderr.decode()
    return child.returncode == KILLED_RETURNCODE


def _run_to_completion(root: Path, seed: int) -> None:
    child = _child(root, seed, "none")
    stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_SECONDS)
    assert child.returncode == 0, stderr.decode()
    assert stdout.decode().splitlines()[-1] == "complete"


def _startup(root: Path) -> None:
    """What the runtime does for each root at start, in its order."""
    if root.exists():
        recover_game_root(root)
    sweep_orphans(root)


def _assert_journal_truthful(root: Path, seed: int) -> DownloadJournal | None:
    """Every chunk the journal calls done holds exactly the manifest's bytes on disk."""
    journal = load(root)
    if journal is None:
        return None
    assert journal.manifest == build_manifest(crash_game_files(seed))
    for task in manifest_tasks(journal.manifest):
        if not journal.is_done(task.key):
            continue
        with open(root / task.path, "rb") as handle:
            handle.seek(task.offset)
            data = handle.read(task.length)
        assert verify_chunk(data, task), f"journal counts {task.key} but its bytes do not verify"
    partial = classify_partial(root)
    assert partial is not None
    assert partial.done_bytes == journal.done_bytes
    return journal


def _finished(seed: int, extra: dict[str, bytes] | None = None) -> Snapshot:
    files = {**crash_game_files(seed), **(extra or {})}
    expected: Snapshot = dict(files)
    for path in files:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            expected["/".join(parts[:depth])] = "<dir>"
    return expected


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_kills_never_journal_a_chunk_that_does_not_verify(root: Path, seed: int) -> None:
    """Kill at random moments, settle, check every journaled chunk, repeat; then finish exactly."""
    rng = random.Random(seed)
    partial_seen = False
    for _ in range(4):
        if not _kill_after_lines(root, seed, rng.randrange(1, 45)):
            break
        _startup(root)
        journal = _assert_journal_truthful(root, seed)
        if journal is not None and 0 < journal.done_bytes < journal.total_bytes:
            partial_seen = True
    assert partial_seen, "no kill landed mid-download; the case proves nothing"
    _run_to_completion(root, seed)
    _startup(root)
    assert _settled(root) == _finished(seed)


@pytest.mark.parametrize(
    "stop",
    [
        "call:pwrite:1",
        "call:pwrite:6",
        "call:pwrite:31",
        "call:fdatasync:1",
        "call:fdatasync:4",
        "call:fsync:1",
        "call:fsync:5",
        "call:fsync:12",
        "call:replace:1",
        "call:replace:2",
        "call:replace:5",
        "call:unlink:1",
    ],
)
def test_a_kill_at_any_system_call_is_settled_and_resumed(root: Path, stop: str) -> None:
    """Before a write, sync, rename or unlink: the journal stays truthful and resume finishes."""
    _run_until_killed(root, SEED, stop)
    _startup(root)
    _assert_journal_truthful(root, SEED)
    if not (root / "version.ini").exists():
        _run_to_completion(root, SEED)
        _startup(root)
    assert _settled(root) == _finished(SEED)


def _old_version() -> dict[str, bytes]:
    """One archive changed, one gone since, placed by hand (no ownership record)."""
    new = crash_game_files(SEED)
    changed = bytearray(new["maps/dm.eti"])
    changed[0] ^= 0xFF
    return {
        **new,
        "maps/dm.eti": bytes(changed),
        **V1_ONLY,
        "version.ini": b"version = 1\n",
        **LOCAL,
    }


def _settled(root: Path) -> Snapshot:
    """The root's tree without the ownership record (its bytes hold inode numbers)."""
    tree = snapshot(root)
    tree.pop(OWNERSHIP_FILE, None)
    return tree


def _installed_old_version(root: Path) -> None:
    """An installed game one version behind: one archive changed, one gone since."""
    write_tree(root, _old_version())


@pytest.mark.parametrize("step", ["after-park", *COMMIT_STEPS, "before-journal-remove"])
def test_the_sentinel_transaction_recovers_at_every_step(root: Path, step: str) -> None:
    """Updating an installed game, killed at each sentinel step: local/ always survives.

    Parked but never journaled settles as local-only; killed before the rename it
    resumes as a paused download that only lacks the sentinel; killed after the
    rename the update counts as finished and its leftovers are dropped.
    """
    root.mkdir()
    _installed_old_version(root)
    _run_until_killed(root, SEED, f"step:{step}")
    _startup(root)
    if step == "after-park":
        assert _settled(root) == _finished_local_only()
        assert classify_partial(root) is None
    elif step in COMMIT_STEPS[: COMMIT_STEPS.index(DROP_PARKED)]:
        journal = _assert_journal_truthful(root, SEED)
        assert journal is not None
        total_payload = journal.total_bytes - len(crash_game_files(SEED)["version.ini"])
        assert journal.done_bytes == total_payload
        assert not (root / "version.ini").exists()
        assert (root / ".version.ini.discarded").read_bytes() == b"version = 1\n"
    else:
        assert load(root) is None
        assert _settled(root) == _finished(SEED, {**LOCAL, **V1_ONLY})
        return
    _run_to_completion(root, SEED)
    _startup(root)
    assert _settled(root) == _finished(SEED, {**LOCAL, **V1_ONLY})


def _finished_local_only() -> Snapshot:
    """The update's own transients are gone; the archives it never created stay."""
    expected: Snapshot = {
        path: data for path, data in _old_version().items() if path != "version.ini"
    }
    for path in list(expected):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            expected["/".join(parts[:depth])] = "<dir>"
    return expected
