"""Withheld marks are kept across restarts for their own game directory, and a
hostile or damaged file is ignored with a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lanspread.storage.withheld import (
    MAX_SENTENCE_LENGTH,
    MAX_WITHHELD_FILE_SIZE,
    WITHHELD_FILE_NAME,
    load_withheld,
    save_withheld,
)

SENTENCE = "data.eti is damaged or not a game archive; download it again"


def test_marks_are_read_back_for_their_game_directory_only(tmp_path: Path) -> None:
    """Saved marks come back for the same game directory, not for another one, and an
    empty save lifts them."""
    games = tmp_path / "games"
    save_withheld(tmp_path, games, {"quake3": SENTENCE})
    assert load_withheld(tmp_path, games) == {"quake3": SENTENCE}
    assert load_withheld(tmp_path, tmp_path / "other") == {}
    save_withheld(tmp_path, games, {})
    assert load_withheld(tmp_path, games) == {}


def test_a_missing_file_withholds_nothing(tmp_path: Path) -> None:
    """No file yet: nothing is withheld, and nothing is logged."""
    assert load_withheld(tmp_path, tmp_path / "games") == {}


def test_an_overlong_sentence_is_cut_so_the_file_stays_readable(tmp_path: Path) -> None:
    """A sentence longer than the limit is saved cut to it, so the file still loads."""
    games = tmp_path / "games"
    save_withheld(tmp_path, games, {"quake3": "x" * (MAX_SENTENCE_LENGTH + 5)})
    assert load_withheld(tmp_path, games) == {"quake3": "x" * MAX_SENTENCE_LENGTH}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "does not hold the withheld games (ignored)"),
        (
            b'{"game_dir": "g", "games": {"../etc": "x"}}',
            "does not hold the withheld games (ignored)",
        ),
        (
            b'{"game_dir": "g", "games": {}, "extra": 1}',
            "does not hold the withheld games (ignored)",
        ),
        (b" " * (MAX_WITHHELD_FILE_SIZE + 1), "cannot read the withheld games in"),
    ],
    ids=["garbage", "bad-game-id", "unknown-field", "oversized"],
)
def test_a_hostile_file_is_ignored_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, message: str
) -> None:
    """Garbage, a bad game id, an unknown field or an oversized file withholds nothing
    and says so in the log."""
    (tmp_path / WITHHELD_FILE_NAME).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="lanspread.storage.statefile"):
        assert load_withheld(tmp_path, Path("g")) == {}
    assert message in caplog.text


def test_a_directory_in_place_of_the_file_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A directory named like the file is not read: nothing is withheld, with a log line."""
    (tmp_path / WITHHELD_FILE_NAME).mkdir()
    with caplog.at_level(logging.WARNING, logger="lanspread.storage.statefile"):
        assert load_withheld(tmp_path, Path("g")) == {}
    assert "cannot read the withheld games in" in caplog.text
