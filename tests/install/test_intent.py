"""The intent log and the ownership markers on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lanspread.core.recovery import Intent
from lanspread.errors import IntentLogCorrupt, StorageError
from lanspread.install.intent import (
    INTENT_FORMAT_VERSION,
    MAX_INTENT_FILE_SIZE,
    clear_intent,
    has_marker,
    read_intent,
    remove_marker,
    write_intent,
    write_marker,
)


def test_missing_log_means_none(root: Path) -> None:
    """A root without ``.lanspread.json`` has no transaction in flight."""
    assert read_intent(root) is Intent.NONE


@pytest.mark.parametrize("intent", [Intent.INSTALLING, Intent.UPDATING, Intent.UNINSTALLING])
def test_recorded_intent_round_trips_with_id_and_format(root: Path, intent: Intent) -> None:
    """A written intent reads back, and the file names the game and the format version."""
    write_intent(root, intent)
    assert read_intent(root) is intent
    document = json.loads((root / ".lanspread.json").read_text())
    assert document == {
        "format": INTENT_FORMAT_VERSION,
        "game_id": "quake3",
        "intent": intent.value,
    }
    assert sorted(p.name for p in root.iterdir()) == [".lanspread.json"]


def test_recording_none_clears_the_log(root: Path) -> None:
    """Writing NONE removes the file, so a settled root carries no log."""
    write_intent(root, Intent.UPDATING)
    write_intent(root, Intent.NONE)
    assert not (root / ".lanspread.json").exists()
    assert read_intent(root) is Intent.NONE


def test_clear_is_idempotent(root: Path) -> None:
    """Clearing twice, or with nothing recorded, is not an error."""
    clear_intent(root)
    write_intent(root, Intent.INSTALLING)
    clear_intent(root)
    clear_intent(root)
    assert read_intent(root) is Intent.NONE


def test_a_persisted_none_record_reads_as_none(root: Path) -> None:
    """A record whose intent is "None" is valid and means nothing in flight."""
    (root / ".lanspread.json").write_text('{"format": 1, "game_id": "quake3", "intent": "None"}')
    assert read_intent(root) is Intent.NONE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"format": 1, "game_id": "quake3", "intent": "Exploding"}', "not an intent record"),
        (b'{"format": 1, "game_id": "quake3"}', "not an intent record"),
        (
            b'{"format": 1, "game_id": "quake3", "intent": "Installing", "extra": 1}',
            "not an intent record",
        ),
        (b'["Installing"]', "not an intent record"),
        (
            b'{"format": 2, "game_id": "quake3", "intent": "Installing"}',
            "format 2 is not supported (expected 1)",
        ),
        (
            b'{"format": 1, "game_id": "doom", "intent": "Installing"}',
            "records game 'doom', not 'quake3'",
        ),
        (b" " * (MAX_INTENT_FILE_SIZE + 1), f"larger than {MAX_INTENT_FILE_SIZE} bytes"),
    ],
    ids=[
        "garbage",
        "empty",
        "unknown-intent",
        "missing-field",
        "unknown-field",
        "not-an-object",
        "other-format",
        "other-game",
        "oversized",
    ],
)
def test_corrupt_log_is_a_typed_error(root: Path, content: bytes, message: str) -> None:
    """Every way a log can be untrustworthy raises IntentLogCorrupt naming the file and why."""
    (root / ".lanspread.json").write_bytes(content)
    with pytest.raises(IntentLogCorrupt) as caught:
        read_intent(root)
    assert str(caught.value).startswith(f"{root / '.lanspread.json'}: {message}")


def test_a_link_is_never_read_even_to_a_valid_record(root: Path, tmp_path: Path) -> None:
    """A symlink at the log's name proves nothing: the log is reported corrupt."""
    elsewhere = tmp_path / "record.json"
    elsewhere.write_text('{"format": 1, "game_id": "quake3", "intent": "Uninstalling"}')
    (root / ".lanspread.json").symlink_to(elsewhere)
    with pytest.raises(IntentLogCorrupt, match=r"\.lanspread\.json: not a regular file$"):
        read_intent(root)


def test_a_folder_at_the_log_name_is_corrupt(root: Path) -> None:
    """A directory named like the log is not a log."""
    (root / ".lanspread.json").mkdir()
    with pytest.raises(IntentLogCorrupt, match=r"\.lanspread\.json: not a regular file$"):
        read_intent(root)


def test_write_into_a_missing_root_is_a_storage_error(tmp_path: Path) -> None:
    """The disk refusing the write surfaces as StorageError, not OSError."""
    with pytest.raises(StorageError, match=r"^cannot write .*\.lanspread\.json: "):
        write_intent(tmp_path / "gone", Intent.INSTALLING)


def test_write_leaves_no_temp_file(root: Path) -> None:
    """The atomic write's temp file (a reserved transient name) is gone after the rename."""
    write_intent(root, Intent.INSTALLING)
    write_intent(root, Intent.UPDATING)
    assert not (root / ".lanspread.json.tmp").exists()
    assert read_intent(root) is Intent.UPDATING


def test_marker_round_trip(root: Path) -> None:
    """A written marker is seen; removing it (twice) leaves the directory unmarked."""
    staging = root / ".local.installing"
    staging.mkdir()
    assert not has_marker(staging)
    write_marker(staging)
    assert has_marker(staging)
    assert (staging / ".lanspread_owned").is_file()
    remove_marker(staging)
    remove_marker(staging)
    assert not has_marker(staging)
    assert list(staging.iterdir()) == []


def test_a_linked_or_folder_marker_does_not_prove_ownership(root: Path, tmp_path: Path) -> None:
    """Only a regular file counts: a link to a marker elsewhere, or a folder, does not."""
    elsewhere = tmp_path / "real-marker"
    elsewhere.write_text("x")
    linked = root / ".local.backup"
    linked.mkdir()
    (linked / ".lanspread_owned").symlink_to(elsewhere)
    assert not has_marker(linked)
    folder = root / ".local.installing"
    (folder / ".lanspread_owned").mkdir(parents=True)
    assert not has_marker(folder)


def test_marker_write_never_follows_a_planted_link(root: Path, tmp_path: Path) -> None:
    """Writing a marker where a link sits fails instead of writing through the link."""
    target = tmp_path / "victim"
    target.write_text("keep me")
    staging = root / ".local.installing"
    staging.mkdir()
    (staging / ".lanspread_owned").symlink_to(target)
    with pytest.raises(StorageError, match=r"^cannot mark .*\.local\.installing: "):
        write_marker(staging)
    assert target.read_text() == "keep me"


def test_marker_in_a_missing_directory_is_a_storage_error(root: Path) -> None:
    """Marking a directory that does not exist is a StorageError."""
    with pytest.raises(StorageError, match=r"^cannot mark .*\.local\.backup: "):
        write_marker(root / ".local.backup")


def test_a_players_file_named_like_the_marker_proves_nothing_and_stays(tmp_path: Path) -> None:
    """Only the exact text lanspread writes is a marker: the player's file of that name
    neither proves ownership nor is overwritten or removed."""
    folder = tmp_path / ".local.backup"
    folder.mkdir()
    (folder / ".lanspread_owned").write_bytes(b"the player's file")
    assert not has_marker(folder)
    with pytest.raises(StorageError) as caught:
        write_marker(folder)
    assert str(caught.value).startswith(f"cannot mark {folder}: ")
    remove_marker(folder)
    assert (folder / ".lanspread_owned").read_bytes() == b"the player's file"
