"""Play time is kept per game across restarts, and a damaged file starts from zero."""

from __future__ import annotations

from pathlib import Path

from lanspread.core.launching import PlayTime
from lanspread.storage.playtime import PLAYTIME_FILE_NAME, PlayTimeStore


def test_sessions_add_up_and_survive_a_new_store(tmp_path: Path) -> None:
    """Two sessions are summed, saved, and read back by a fresh store."""
    store = PlayTimeStore(tmp_path)
    store.record("quake3", 60.0, 1000.0)
    assert store.record("quake3", 30.0, 2000.0) == PlayTime(90.0, 2000.0)
    again = PlayTimeStore(tmp_path)
    assert again.get("quake3") == PlayTime(90.0, 2000.0)
    assert again.get("aoe2") == PlayTime()


def test_a_damaged_file_counts_as_nothing_played(tmp_path: Path) -> None:
    """Garbage in playtime.json is not an error: the times start from zero."""
    (tmp_path / PLAYTIME_FILE_NAME).write_text("{not json")
    assert dict(PlayTimeStore(tmp_path).all()) == {}
