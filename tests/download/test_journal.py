"""The download journal: creation, the done bitmap, durable commits, loading and corruption."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.download_roots import GAME_ID, build_manifest, game_files
from tests.support.platforms import make_fifo

from lanspread.core.engine import (
    COMMIT_EVERY_BYTES,
    COMMIT_EVERY_CHUNKS,
    COMMIT_INTERVAL_SECONDS,
    should_commit,
)
from lanspread.core.manifest import encode_manifest, manifest_digest
from lanspread.core.planning import manifest_tasks
from lanspread.download.journal import (
    JOURNAL_FORMAT_VERSION,
    MAX_JOURNAL_FILE_SIZE,
    DownloadJournal,
    JournalCorrupt,
    load,
)
from lanspread.download.prepare import prepare_game_storage
from lanspread.errors import StorageError
from lanspread.platform import fileio

# The code under test (or the test itself) makes the root: whether it was made is part
# of what these tests prove.
pytestmark = pytest.mark.absent_root

MANIFEST = build_manifest(game_files())
TASKS = manifest_tasks(MANIFEST)
PAYLOAD_KEYS = [task.key for task in TASKS if not task.is_sentinel]
SENTINEL_KEY = next(task.key for task in TASKS if task.is_sentinel)


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _journal_file(root: Path) -> Path:
    return root / ".lanspread.download.json"


def _record(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_journal_file(root).read_bytes())
    return data


def _rewrite(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    record = _record(root)
    change(record)
    _journal_file(root).write_text(json.dumps(record))


# --- create and load ---------------------------------------------------------------------------


def test_create_writes_a_journal_that_load_reads_back(root: Path, clock: FakeClock) -> None:
    """A new journal is on disk at once, with the manifest, its digest and nothing done."""
    journal = DownloadJournal.create(root, MANIFEST, clock=clock)
    loaded = load(root)
    assert loaded is not None
    assert loaded.manifest == MANIFEST
    assert loaded.manifest_digest == manifest_digest(MANIFEST) == journal.manifest_digest
    assert (loaded.game_id, loaded.version) == (GAME_ID, "2.0")
    assert loaded.done_keys == frozenset()
    assert (loaded.done_bytes, loaded.total_bytes) == (0, MANIFEST.total_bytes)
    assert loaded.started_at == loaded.updated_at == clock.now


def test_the_record_holds_every_documented_field(root: Path, clock: FakeClock) -> None:
    """The JSON names format, game, version, chunk size, manifest (base64), digest and bitmap."""
    DownloadJournal.create(root, MANIFEST, clock=clock)
    record = _record(root)
    assert record == {
        "format": JOURNAL_FORMAT_VERSION,
        "game_id": GAME_ID,
        "version": "2.0",
        "chunk_size": MANIFEST.chunk_size,
        "manifest_digest": manifest_digest(MANIFEST),
        "manifest": base64.b64encode(encode_manifest(MANIFEST)).decode(),
        "done": base64.b64encode(bytes((len(TASKS) + 7) // 8)).decode(),
        "started_at": clock.now,
        "updated_at": clock.now,
    }


def test_load_of_a_root_without_a_journal_is_none(root: Path) -> None:
    """No journal (or no root) means no download to resume."""
    assert load(root) is None
    root.mkdir()
    assert load(root) is None


def test_create_makes_the_root_but_not_the_game_directory(tmp_path: Path) -> None:
    """A fresh download's root is created; a missing game directory is an error."""
    root = tmp_path / "missing" / GAME_ID
    with pytest.raises(StorageError) as caught:
        DownloadJournal.create(root, MANIFEST)
    assert str(caught.value) == f"cannot create {root}: No such file or directory"


def test_create_refuses_while_the_sentinel_is_in_place(root: Path) -> None:
    """A journal next to a live sentinel would look like a finished download: refused."""
    root.mkdir()
    (root / "version.ini").write_bytes(b"version = 1.0\n")
    with pytest.raises(StorageError) as caught:
        DownloadJournal.create(root, MANIFEST)
    assert str(caught.value) == (
        f"refusing to journal a download into {root}: version.ini is still in place "
        "(park it with begin_update first)"
    )
    assert not _journal_file(root).exists()


def test_create_refuses_a_root_that_is_a_link(root: Path, tmp_path: Path) -> None:
    """A linked game root is never written through."""
    (tmp_path / "elsewhere").mkdir()
    root.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(StorageError) as caught:
        DownloadJournal.create(root, MANIFEST)
    assert str(caught.value) == f"{root} is not a folder (links are not followed)"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_create_replaces_an_earlier_journal(root: Path, clock: FakeClock) -> None:
    """Starting over forgets the done set of the previous attempt."""
    first = DownloadJournal.create(root, MANIFEST, clock=clock)
    first.mark_done(PAYLOAD_KEYS[:2])
    first.commit()
    DownloadJournal.create(root, MANIFEST, clock=clock)
    loaded = load(root)
    assert loaded is not None
    assert loaded.done_keys == frozenset()


# --- the done set -----------------------------------------------------------------------------


def test_marks_are_in_memory_until_committed(root: Path, clock: FakeClock) -> None:
    """mark_done changes the journal object only; commit makes it what load returns."""
    journal = DownloadJournal.create(root, MANIFEST, clock=clock)
    journal.mark_done(PAYLOAD_KEYS[:3])
    assert journal.done_keys == frozenset(PAYLOAD_KEYS[:3])
    assert journal.is_done(PAYLOAD_KEYS[0])
    assert not journal.is_done(PAYLOAD_KEYS[3])
    before = load(root)
    assert before is not None
    assert before.done_keys == frozenset()
    clock.now += 5
    journal.commit()
    after = load(root)
    assert after is not None
    assert after.done_keys == frozenset(PAYLOAD_KEYS[:3])
    assert after.done_bytes == sum(task.length for task in TASKS[:3])
    assert (after.started_at, after.updated_at) == (clock.now - 5, clock.now)


def test_a_chunk_marked_twice_counts_once(root: Path) -> None:
    """Done bytes count each chunk once, however often it is marked."""
    journal = DownloadJournal.create(root, MANIFEST)
    journal.mark_done([PAYLOAD_KEYS[0], PAYLOAD_KEYS[0]])
    journal.mark_done([PAYLOAD_KEYS[0]])
    assert journal.done_bytes == TASKS[0].length


def test_unknown_and_sentinel_keys_are_refused_and_nothing_is_marked(root: Path) -> None:
    """A key outside the manifest or of the sentinel is a caller bug; the batch is not applied."""
    journal = DownloadJournal.create(root, MANIFEST)
    with pytest.raises(ValueError, match="not part of the manifest") as unknown:
        journal.mark_done([PAYLOAD_KEYS[0], ("quake3.eti", 12345)])
    assert str(unknown.value) == "chunk ('quake3.eti', 12345) is not part of the manifest of quake3"
    with pytest.raises(ValueError, match="sentinel") as sentinel:
        journal.mark_done([SENTINEL_KEY])
    assert (
        str(sentinel.value) == "chunk ('version.ini', 0) is the sentinel's; it is never journaled"
    )
    assert journal.done_keys == frozenset()
    assert not journal.is_done(("nope", 0))


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(PAYLOAD_KEYS)))
def test_any_done_set_survives_a_commit_and_load(done: set[tuple[str, int]]) -> None:
    """Whatever subset is marked, load returns exactly it and its byte count."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / GAME_ID
        journal = DownloadJournal.create(root, MANIFEST)
        journal.mark_done(done)
        journal.commit()
        loaded = load(root)
        assert loaded is not None
        assert loaded.done_keys == frozenset(done)
        assert loaded.done_bytes == sum(task.length for task in TASKS if task.key in done)


def test_the_journal_stays_compact(root: Path) -> None:
    """The bitmap is one bit a chunk: a journal is the manifest plus a few hundred bytes."""
    journal = DownloadJournal.create(root, MANIFEST)
    journal.mark_done(PAYLOAD_KEYS)
    journal.commit()
    manifest_in_base64 = len(base64.b64encode(encode_manifest(MANIFEST)))
    assert _journal_file(root).stat().st_size < manifest_in_base64 + 400


# --- durable commits ---------------------------------------------------------------------------


def test_commit_durable_syncs_payload_before_renaming_the_journal(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payload file is synced strictly before the journal's rename makes the marks visible."""
    prepare_game_storage(root, MANIFEST, margin=0)
    journal = DownloadJournal.create(root, MANIFEST)
    events: list[str] = []
    real_sync, real_replace = fileio.data_sync, os.replace

    def sync(fd: int) -> None:
        events.append(f"sync:{os.fstat(fd).st_size}")
        real_sync(fd)

    def replace(source: Any, target: Any) -> None:
        events.append(f"rename:{Path(target).name}")
        real_replace(source, target)

    monkeypatch.setattr(fileio, "data_sync", sync)
    monkeypatch.setattr(os, "replace", replace)
    journal.mark_done([PAYLOAD_KEYS[0]])
    journal.commit_durable(["quake3.eti"])
    assert events == [
        f"sync:{len(game_files()['quake3.eti'])}",
        "rename:.lanspread.download.json",
    ]


def test_a_chunk_marked_during_the_sync_waits_for_the_next_commit(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The done set is snapshotted before the sync, so a later mark is never journaled early."""
    prepare_game_storage(root, MANIFEST, margin=0)
    journal = DownloadJournal.create(root, MANIFEST)
    real_sync = fileio.data_sync

    def sync_while_another_chunk_completes(fd: int) -> None:
        journal.mark_done([PAYLOAD_KEYS[1]])
        real_sync(fd)

    monkeypatch.setattr(fileio, "data_sync", sync_while_another_chunk_completes)
    journal.mark_done([PAYLOAD_KEYS[0]])
    journal.commit_durable(["quake3.eti"])
    loaded = load(root)
    assert loaded is not None
    assert loaded.done_keys == frozenset(PAYLOAD_KEYS[:1])
    assert journal.done_keys == frozenset(PAYLOAD_KEYS[:2])


def test_commit_durable_accepts_open_descriptors(root: Path) -> None:
    """Descriptors the data plane holds are synced directly, paths are opened and synced."""
    prepare_game_storage(root, MANIFEST, margin=0)
    journal = DownloadJournal.create(root, MANIFEST)
    fd = os.open(root / "quake3.eti", os.O_RDWR)
    try:
        journal.mark_done(PAYLOAD_KEYS[:3])
        journal.commit_durable([fd, "quake3.part2.eti"])
    finally:
        os.close(fd)
    loaded = load(root)
    assert loaded is not None
    assert loaded.done_keys == frozenset(PAYLOAD_KEYS[:3])


def test_a_failed_sync_keeps_the_previous_commit_on_disk(root: Path) -> None:
    """If the payload cannot be synced the journal is not rewritten."""
    journal = DownloadJournal.create(root, MANIFEST)
    journal.mark_done(PAYLOAD_KEYS[:1])
    with pytest.raises(StorageError) as caught:
        journal.commit_durable(["quake3.eti"])
    assert str(caught.value) == (
        f"{root / 'quake3.eti'} does not exist (prepare the game storage first)"
    )
    loaded = load(root)
    assert loaded is not None
    assert loaded.done_keys == frozenset()


def test_a_failed_rename_leaves_no_temp_file(root: Path) -> None:
    """A folder in the journal's place fails the commit, naming the journal; the temp file is
    deleted."""
    journal = DownloadJournal.create(root, MANIFEST)
    _journal_file(root).unlink()
    _journal_file(root).mkdir()
    (_journal_file(root) / "x").write_bytes(b"")
    with pytest.raises(StorageError) as caught:
        journal.commit()
    assert str(caught.value) == f"cannot write {_journal_file(root)}: Is a directory"
    assert not (root / ".lanspread.download.json.tmp").exists()


def test_remove_deletes_the_journal_and_its_temp_file(root: Path) -> None:
    """remove leaves no journal file behind and is idempotent."""
    journal = DownloadJournal.create(root, MANIFEST)
    (root / ".lanspread.download.json.tmp").write_bytes(b"half")
    journal.remove()
    journal.remove()
    assert list(root.iterdir()) == []


# --- corrupt journals --------------------------------------------------------------------------


def _tasks_bitmap(indexes: list[int]) -> str:
    bitmap = bytearray((len(TASKS) + 7) // 8)
    for index in indexes:
        bitmap[index >> 3] |= 1 << (index & 7)
    return base64.b64encode(bytes(bitmap)).decode()


SENTINEL_INDEX = next(index for index, task in enumerate(TASKS) if task.is_sentinel)
OTHER_MANIFEST = build_manifest({"a.eti": b"a", "version.ini": b"v"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(format=2), "format 2 is not supported (expected 1)"),
        (lambda r: r.update(game_id="doom"), "records game 'doom', not 'quake3'"),
        (
            lambda r: r.update(manifest=base64.b64encode(b"\x93\x01").decode()),
            "the recorded manifest is unusable: malformed manifest: ",
        ),
        (
            lambda r: r.update(manifest_digest="0" * 64),
            "the recorded manifest does not match its digest",
        ),
        (
            lambda r: r.update(version="3.0"),
            "the header ('quake3', '3.0', 1048576) does not match the manifest's "
            "('quake3', '2.0', 1048576)",
        ),
        (
            lambda r: r.update(done=base64.b64encode(b"\0" * 9).decode()),
            "done bitmap of 9 bytes, expected 1",
        ),
        (
            lambda r: r.update(done=_tasks_bitmap([len(TASKS)])),
            f"done bit {len(TASKS)} is past the last chunk",
        ),
        (
            lambda r: r.update(done=_tasks_bitmap([SENTINEL_INDEX])),
            "a sentinel chunk is recorded as done",
        ),
        (lambda r: r.update(extra=1), "not a download journal: Object contains unknown field"),
        (lambda r: r.pop("done"), "not a download journal: Object missing required field"),
        (lambda r: r.update(chunk_size="big"), "not a download journal: Expected `int`"),
    ],
)
def test_a_journal_that_cannot_be_trusted_is_journal_corrupt(
    root: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    """Every way a journal can be foreign, of another format or inconsistent is named."""
    DownloadJournal.create(root, MANIFEST)
    _rewrite(root, change)
    with pytest.raises(JournalCorrupt) as caught:
        load(root)
    assert str(caught.value).startswith(f"{_journal_file(root)}: {message}")


def test_a_manifest_of_another_game_is_foreign(root: Path) -> None:
    """The record's header and manifest must agree: a manifest of another game is refused."""
    DownloadJournal.create(root, MANIFEST)
    other = build_manifest({"a.eti": b"a", "version.ini": b"v"}, game_id="doom")
    _rewrite(
        root,
        lambda r: r.update(
            manifest=base64.b64encode(encode_manifest(other)).decode(),
            manifest_digest=manifest_digest(other),
        ),
    )
    with pytest.raises(JournalCorrupt) as caught:
        load(root)
    assert str(caught.value) == (
        f"{_journal_file(root)}: the header ('quake3', '2.0', 1048576) does not match the "
        "manifest's ('doom', '2.0', 1048576)"
    )


def test_bytes_that_are_not_json_are_corrupt(root: Path) -> None:
    """A torn or foreign file is not a journal."""
    root.mkdir()
    _journal_file(root).write_bytes(b"\x00garbage")
    with pytest.raises(JournalCorrupt) as caught:
        load(root)
    assert str(caught.value).startswith(f"{_journal_file(root)}: not valid JSON: ")


def test_an_oversized_file_is_corrupt_without_being_read_whole(root: Path) -> None:
    """A file larger than any journal we write is refused by its size."""
    root.mkdir()
    with open(_journal_file(root), "wb") as handle:
        handle.truncate(MAX_JOURNAL_FILE_SIZE + 1)
    with pytest.raises(JournalCorrupt) as caught:
        load(root)
    assert str(caught.value) == (
        f"{_journal_file(root)}: larger than {MAX_JOURNAL_FILE_SIZE} bytes"
    )


@pytest.mark.parametrize("kind", ["link", "folder", "fifo"])
def test_a_journal_that_is_not_a_regular_file_is_corrupt(
    root: Path, tmp_path: Path, kind: str
) -> None:
    """A link (never followed), a folder or a FIFO (never blocked on) is not a journal."""
    DownloadJournal.create(tmp_path / "games" / "doom", OTHER_MANIFEST)
    root.mkdir()
    if kind == "link":
        _journal_file(root).symlink_to(tmp_path / "games" / "doom" / ".lanspread.download.json")
    elif kind == "folder":
        _journal_file(root).mkdir()
    else:
        make_fifo(_journal_file(root))
    with pytest.raises(JournalCorrupt) as caught:
        load(root)
    assert str(caught.value) == f"{_journal_file(root)}: not a regular file"


def test_an_unreadable_journal_is_a_storage_error(root: Path) -> None:
    """A root that is a file cannot hold a journal: the read error is a StorageError."""
    root.write_bytes(b"")
    with pytest.raises(StorageError) as caught:
        load(root)
    assert not isinstance(caught.value, JournalCorrupt)
    assert str(caught.value) == f"cannot read {_journal_file(root)}: Not a directory"


# --- should_commit -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "chunks", "size", "expected"),
    [
        (100.0, 0, 0, False),
        (COMMIT_INTERVAL_SECONDS - 0.01, 1, 1, False),
        (COMMIT_INTERVAL_SECONDS, 1, 1, True),
        (0.0, COMMIT_EVERY_CHUNKS - 1, 1, False),
        (0.0, COMMIT_EVERY_CHUNKS, 1, True),
        (0.0, 1, COMMIT_EVERY_BYTES - 1, False),
        (0.0, 1, COMMIT_EVERY_BYTES, True),
    ],
)
def test_should_commit_policy(elapsed: float, chunks: int, size: int, expected: bool) -> None:
    """Commit on time, chunk count or byte count, whichever comes first; never with nothing new."""
    assert (
        should_commit(
            now=50.0 + elapsed, last_commit_at=50.0, chunks_since=chunks, bytes_since=size
        )
        is expected
    )


@given(
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=1e6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**12),
)
def test_should_commit_is_monotone_and_never_commits_nothing(
    last: float, elapsed: float, chunks: int, size: int
) -> None:
    """More time, chunks or bytes never turn a commit into a wait; zero chunks never commit."""
    now = last + elapsed
    decided = should_commit(now=now, last_commit_at=last, chunks_since=chunks, bytes_since=size)
    if chunks == 0:
        assert not decided
    if decided:
        assert should_commit(
            now=now + 1, last_commit_at=last, chunks_since=chunks + 1, bytes_since=size + 1
        )
