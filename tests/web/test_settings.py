"""Persisted user settings: first run, round trip, atomic replacement, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lanspread.errors import ConfigError, StorageError
from lanspread.storage.settings import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_SETTINGS_FILE_SIZE,
    SETTINGS_FILE_NAME,
    Settings,
    SettingsStore,
    clean_display_name,
)


def test_missing_file_is_first_run(tmp_path: Path) -> None:
    """Without a file the settings are empty and not complete."""
    settings = SettingsStore(tmp_path).load()
    assert settings == Settings()
    assert not settings.complete


def test_round_trip(tmp_path: Path) -> None:
    """Saved settings load back equal, and both choices make them complete."""
    store = SettingsStore(tmp_path / "new-state")
    store.save(Settings(display_name="Frag Master", game_dir="/srv/games"))
    loaded = SettingsStore(tmp_path / "new-state").load()
    assert loaded == Settings(display_name="Frag Master", game_dir="/srv/games")
    assert loaded.complete


def test_save_leaves_no_temp_file(tmp_path: Path) -> None:
    """An atomic save leaves only the settings file behind."""
    SettingsStore(tmp_path).save(Settings(display_name="a"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [SETTINGS_FILE_NAME]


def test_temp_file_of_a_crash_is_swept(tmp_path: Path) -> None:
    """A temp file left by a crash mid-save is removed; the old settings stay."""
    store = SettingsStore(tmp_path)
    store.save(Settings(display_name="old"))
    (tmp_path / (SETTINGS_FILE_NAME + ".tmp")).write_bytes(b'{"display_na')
    assert store.load().display_name == "old"
    assert not (tmp_path / (SETTINGS_FILE_NAME + ".tmp")).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "is not JSON"),
        (b"[]", "is not valid: Expected `object`, got `array`"),
        (b'{"display_name": ""}', "is not valid: Expected `str` of length >= 1"),
        (b'{"colour": "red"}', "is not valid: Object contains unknown field `colour`"),
        (b'{"format": 9}', "has format 9, expected 1"),
    ],
)
def test_malformed_file_names_the_problem(tmp_path: Path, content: bytes, message: str) -> None:
    """Each kind of bad file raises StorageError naming the file and the defect."""
    (tmp_path / SETTINGS_FILE_NAME).write_bytes(content)
    with pytest.raises(StorageError) as caught:
        SettingsStore(tmp_path).load()
    assert str(caught.value).startswith(f"{tmp_path / SETTINGS_FILE_NAME} ")
    assert message in str(caught.value)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """A settings file larger than the bound is not parsed."""
    (tmp_path / SETTINGS_FILE_NAME).write_bytes(b" " * (MAX_SETTINGS_FILE_SIZE + 1))
    with pytest.raises(StorageError, match=f"larger than {MAX_SETTINGS_FILE_SIZE} bytes"):
        SettingsStore(tmp_path).load()


def test_unreadable_file(tmp_path: Path) -> None:
    """A settings path that cannot be read raises StorageError with the reason."""
    (tmp_path / SETTINGS_FILE_NAME).mkdir()
    with pytest.raises(StorageError) as caught:
        SettingsStore(tmp_path).load()
    assert str(caught.value) == f"cannot read {tmp_path / SETTINGS_FILE_NAME}: Is a directory"


def test_load_or_default_recovers_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken file means starting over with the first-run defaults, logged."""
    (tmp_path / SETTINGS_FILE_NAME).write_bytes(b"{")
    with caplog.at_level(logging.WARNING):
        assert SettingsStore(tmp_path).load_or_default() == Settings()
    assert "starting with default settings" in caplog.text


def test_refused_write_is_a_storage_error(tmp_path: Path) -> None:
    """A write the disk refuses (here: the temp name is taken by a folder) is a StorageError."""
    (tmp_path / (SETTINGS_FILE_NAME + ".tmp")).mkdir()
    with pytest.raises(StorageError) as caught:
        SettingsStore(tmp_path).save(Settings(display_name="a"))
    assert str(caught.value) == f"cannot write {tmp_path / SETTINGS_FILE_NAME}: Is a directory"
    assert not (tmp_path / SETTINGS_FILE_NAME).exists()


def test_save_where_a_file_blocks_the_folder(tmp_path: Path) -> None:
    """A state path whose parent is a file raises StorageError, not OSError."""
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(StorageError) as caught:
        SettingsStore(tmp_path / "blocker" / "state").save(Settings(display_name="a"))
    assert str(caught.value) == f"cannot create {tmp_path / 'blocker' / 'state'}: Not a directory"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("  Frag   Master ", "Frag Master"), ("Jönas", "Jönas"), ("x" * 64, "x" * 64)],
)
def test_display_name_is_normalised(raw: str, clean: str) -> None:
    """Names are trimmed and inner whitespace collapsed."""
    assert clean_display_name(raw) == clean


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("   ", "the display name must not be empty"),
        ("x" * (MAX_DISPLAY_NAME_LENGTH + 1), "the display name is longer than 64 characters"),
        ("bad\x00name", "the display name must not contain control characters"),
        ("bell\x07", "the display name must not contain control characters"),
    ],
)
def test_bad_display_names(raw: str, message: str) -> None:
    """Unusable names raise ConfigError with a message the player can act on."""
    with pytest.raises(ConfigError) as caught:
        clean_display_name(raw)
    assert str(caught.value) == message
