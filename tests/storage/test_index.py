"""The persisted library index: round trips, every unusable file, atomic and serialized writes."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import msgspec
import pytest

from lanspread.core.catalog import GAME_ID_PATTERN
from lanspread.core.gameroot import EntryKind
from lanspread.core.library import Availability, GameSummary
from lanspread.errors import StorageError
from lanspread.files.atomic import temp_path_for
from lanspread.files.version_ini import SentinelPrint
from lanspread.storage.index import (
    INDEX_FILE_NAME,
    INDEX_FORMAT_VERSION,
    MAX_INDEX_FILE_SIZE,
    EntryPrint,
    Fingerprint,
    IndexEntry,
    LibraryIndex,
)

LOGGER = "lanspread.storage.index"


def entry(game_id: str, version: str = "1.0") -> IndexEntry:
    sentinel = SentinelPrint(
        size=13, mtime_ns=1_000, contents=f"version={version}".encode(), settled=True
    )
    fingerprint = Fingerprint(
        entries=(
            EntryPrint(f"{game_id}.eti", EntryKind.FILE, 500, 2_000),
            EntryPrint("version.ini", EntryKind.FILE, 13, 1_000),
        ),
        sentinel=sentinel,
        local_is_dir=False,
        root_mtime_ns=3_000,
        root_settled=True,
    )
    summary = GameSummary(
        id=game_id,
        availability=Availability.READY,
        version=version,
        installed=False,
        size_bytes=513,
    )
    return IndexEntry(fingerprint=fingerprint, summary=summary)


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path / INDEX_FILE_NAME


def saved(index_path: Path, game_dir: Path, entries: dict[str, IndexEntry]) -> LibraryIndex:
    index = LibraryIndex(index_path, game_dir, entries)
    index.save()
    return index


def load_quietly(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> tuple[LibraryIndex, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        index = LibraryIndex.load(index_path, game_dir)
    return index, [record.getMessage() for record in caplog.records]


def test_round_trip(index_path: Path, game_dir: Path) -> None:
    """Saved entries load back equal, including a root with no summary."""
    entries = {
        "alpha": entry("alpha"),
        "beta": IndexEntry(fingerprint=entry("beta").fingerprint, summary=None),
    }
    saved(index_path, game_dir, entries)

    loaded = LibraryIndex.load(index_path, game_dir)

    assert loaded.ids() == {"alpha", "beta"}
    assert loaded.get("alpha") == entries["alpha"]
    assert loaded.get("beta") == entries["beta"]
    assert not loaded.changed


def test_missing_index_is_empty_without_warning(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No index yet (first start) is not worth a warning."""
    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == []


def test_corrupt_index_is_empty_with_reason(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage bytes give an empty index and a warning saying the file is not an index."""
    index_path.write_bytes(b"\x00\xffnot json")

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == [
        f"library index {index_path} ignored, the next scan rebuilds it: "
        "not a library index: JSON is malformed: invalid character (byte 0)"
    ]


def test_truncated_index_is_empty(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-written file (what a non-atomic write leaves) gives an empty index."""
    saved(index_path, game_dir, {"alpha": entry("alpha")})
    data = index_path.read_bytes()
    index_path.write_bytes(data[: len(data) // 2])

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert len(warnings) == 1
    assert "ignored, the next scan rebuilds it: " in warnings[0]


def test_wrong_format_version_is_empty_with_reason(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An index of another format version is ignored, saying which versions."""
    future = {"format_version": INDEX_FORMAT_VERSION + 1, "whatever": [1, 2, 3]}
    index_path.write_bytes(msgspec.json.encode(future))

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == [
        f"library index {index_path} ignored, the next scan rebuilds it: "
        f"format version {INDEX_FORMAT_VERSION + 1}, this peer reads {INDEX_FORMAT_VERSION}"
    ]


def test_index_of_another_game_dir_is_empty(
    index_path: Path, game_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fingerprints of another game directory are never applied to this one."""
    other = tmp_path / "other"
    saved(index_path, other, {"alpha": entry("alpha")})

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == [
        f"library index {index_path} ignored, the next scan rebuilds it: "
        f"it describes game directory {other}, not {game_dir}"
    ]


def _document(game_dir: Path, games: dict[str, object]) -> bytes:
    return msgspec.json.encode(
        {"format_version": INDEX_FORMAT_VERSION, "game_dir": str(game_dir), "games": games}
    )


def test_entry_with_unsafe_id_is_refused(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A game id that is not one safe path component makes the whole file unusable."""
    good = msgspec.to_builtins(entry("alpha"))
    index_path.write_bytes(_document(game_dir, {"../x": good}))

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == [
        f"library index {index_path} ignored, the next scan rebuilds it: "
        f"malformed entry: Expected `str` matching regex {GAME_ID_PATTERN!r} "
        "- at `key` in `$.games`"
    ]


def test_entry_holding_another_games_summary_is_refused(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry whose summary names a different game cannot be trusted."""
    index_path.write_bytes(_document(game_dir, {"beta": msgspec.to_builtins(entry("alpha"))}))

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == [
        f"library index {index_path} ignored, the next scan rebuilds it: "
        "entry 'beta' holds the summary of 'alpha'"
    ]


def test_oversized_index_is_not_parsed(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file above MAX_INDEX_FILE_SIZE is refused before being read."""
    with open(index_path, "wb") as handle:
        handle.truncate(MAX_INDEX_FILE_SIZE + 1)

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == [
        f"library index {index_path} ignored, the next scan rebuilds it: "
        f"{MAX_INDEX_FILE_SIZE + 1} bytes is larger than an index can be"
    ]


def test_unreadable_index_is_empty(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An index path the OS cannot read (here: a folder) gives an empty index and the reason."""
    index_path.mkdir()

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == frozenset()
    assert warnings == [
        f"library index {index_path} ignored, the next scan rebuilds it: "
        "cannot read: Is a directory"
    ]


def test_temp_file_left_by_a_crash_is_swept(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A temp file from an interrupted save is removed; the canonical index still loads."""
    saved(index_path, game_dir, {"alpha": entry("alpha")})
    temp = temp_path_for(index_path)
    temp.write_bytes(b'{"format_version": 1, "gam')

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert not temp.exists()
    assert index.ids() == {"alpha"}
    assert warnings == []


def test_unremovable_temp_file_is_only_a_warning(
    index_path: Path, game_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stale temp path that cannot be removed (a folder) is reported; loading goes on."""
    saved(index_path, game_dir, {"alpha": entry("alpha")})
    temp_path_for(index_path).mkdir()

    index, warnings = load_quietly(index_path, game_dir, caplog)

    assert index.ids() == {"alpha"}
    assert len(warnings) == 1
    assert warnings[0].startswith(f"library index: cannot remove stale {temp_path_for(index_path)}")


def test_failed_save_leaves_the_previous_index_whole(
    index_path: Path, game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync failure mid-save raises StorageError, keeps the old file and leaves no temp."""
    saved(index_path, game_dir, {"alpha": entry("alpha", "1")})
    before = index_path.read_bytes()
    index = LibraryIndex.load(index_path, game_dir)
    index.put("alpha", entry("alpha", "2"))
    index.put("beta", entry("beta"))

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)

    with pytest.raises(StorageError) as caught:
        index.save()

    assert str(caught.value) == f"cannot write {index_path}: Input/output error"
    assert index_path.read_bytes() == before
    assert not temp_path_for(index_path).exists()
    assert index.changed
    monkeypatch.undo()
    reloaded = LibraryIndex.load(index_path, game_dir)
    assert reloaded.get("alpha") == entry("alpha", "1")


def test_changed_tracks_puts_drops_and_saves(index_path: Path, game_dir: Path) -> None:
    """changed is set by real modifications only and cleared by a save."""
    index = LibraryIndex(index_path, game_dir, {"alpha": entry("alpha")})
    observed = [index.changed]

    index.put("alpha", entry("alpha"))
    index.drop("missing")
    index.retain({"alpha", "other"})
    observed += [index.changed, index.save_if_changed(), index_path.exists()]

    index.put("beta", entry("beta"))
    observed += [index.changed, index.save_if_changed(), index.changed]

    index.drop("beta")
    observed.append(index.changed)

    assert observed == [False, False, False, False, True, True, False, True]


def test_retain_drops_games_no_longer_present(index_path: Path, game_dir: Path) -> None:
    """retain keeps only the listed ids."""
    index = LibraryIndex(
        index_path, game_dir, {game_id: entry(game_id) for game_id in ("a", "b", "c")}
    )

    index.retain({"b", "z"})

    assert index.ids() == {"b"}
    assert index.changed


def test_concurrent_writers_are_serialized(index_path: Path, game_dir: Path) -> None:
    """Threads putting and saving at once always leave a complete, loadable index."""
    index = LibraryIndex(index_path, game_dir)
    ids = [f"game-{number}" for number in range(40)]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(chunk: list[str]) -> None:
        try:
            start.wait(timeout=10)
            for game_id in chunk:
                index.put(game_id, entry(game_id))
                index.save()
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(ids[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert LibraryIndex.load(index_path, game_dir).ids() == frozenset(ids)
    assert not temp_path_for(index_path).exists()
