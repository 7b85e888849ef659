"""Game-folder records: read bounded, decoded with one wording, crash-left temps proven by bytes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.errors import StorageError
from lanspread.files.records import (
    decode_game_record,
    decode_json,
    is_record_temp,
    load_game_record,
    record_head,
)

GAME_ID = "quake3"
FORMAT = 3
LIMIT = 200


class Note(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    game_id: str
    text: str


class Corrupt(StorageError):
    """The caller's own error for a file that is not its record."""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / GAME_ID
    path.mkdir()
    return path


def _load(path: Path) -> Note | None:
    return load_game_record(
        path, Note, limit=LIMIT, format_version=FORMAT, what="a note", corrupt=Corrupt
    )


def _encoded(game_id: str = GAME_ID, format_version: int = FORMAT) -> bytes:
    return msgspec.json.encode(Note(format=format_version, game_id=game_id, text="hello"))


def test_a_record_of_this_game_loads_and_a_missing_one_is_none(root: Path) -> None:
    """The record the folder's game wrote comes back decoded; no file is no record."""
    (root / "note.json").write_bytes(_encoded())
    assert _load(root / "note.json") == Note(format=FORMAT, game_id=GAME_ID, text="hello")
    assert _load(root / "missing.json") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{oops", "not valid JSON: JSON is malformed: object keys must be strings (byte 1)"),
        (b'{"format": 3}', "not a note: Object missing required field `game_id`"),
        (_encoded(format_version=9), "format 9 is not supported (expected 3)"),
        (_encoded(game_id="doom"), "records game 'doom', not 'quake3'"),
    ],
)
def test_anything_but_a_record_of_this_game_is_the_callers_error(
    root: Path, data: bytes, message: str
) -> None:
    """Bad JSON, another shape, another format and another game each raise the caller's error,
    naming the file and the reason."""
    path = root / "note.json"
    path.write_bytes(data)
    with pytest.raises(Corrupt) as caught:
        _load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_a_link_or_an_oversized_file_is_not_read(root: Path, tmp_path: Path) -> None:
    """A link to a good record is not one; a file over the bound is refused unread."""
    (tmp_path / "elsewhere.json").write_bytes(_encoded())
    (root / "linked.json").symlink_to(tmp_path / "elsewhere.json")
    (root / "big.json").write_bytes(b" " * (LIMIT + 1))
    with pytest.raises(Corrupt) as caught:
        _load(root / "linked.json")
    assert str(caught.value) == f"{root / 'linked.json'}: not a regular file"
    with pytest.raises(Corrupt) as caught:
        _load(root / "big.json")
    assert str(caught.value) == f"{root / 'big.json'}: larger than {LIMIT} bytes"


def test_decode_game_record_checks_the_game_it_is_given(tmp_path: Path) -> None:
    """Decoding bytes already read checks the same format and game as a load."""
    note = decode_game_record(
        _encoded(),
        Note,
        path=tmp_path / "n",
        game_id=GAME_ID,
        format_version=FORMAT,
        what="a note",
        corrupt=Corrupt,
    )
    assert note.text == "hello"


def test_decode_json_names_the_shape_it_wanted(tmp_path: Path) -> None:
    """A record without game fields still gets the one wording."""
    with pytest.raises(Corrupt) as caught:
        decode_json(b"[]", Note, path=tmp_path / "n", what="a note", corrupt=Corrupt)
    assert str(caught.value) == f"{tmp_path / 'n'}: not a note: Expected `object`, got `array`"


def test_the_head_is_the_start_of_every_record() -> None:
    """Field order is fixed, so every record of a game starts with the same bytes."""
    assert record_head(FORMAT, GAME_ID) == b'{"format":3,"game_id":"quake3"'
    assert _encoded().startswith(record_head(FORMAT, GAME_ID))


@given(cut=st.integers(min_value=0, max_value=len(_encoded())))
def test_every_prefix_of_a_record_is_a_temp_of_ours(cut: int) -> None:
    """Whatever a kill left of an atomic write (empty, any prefix, the whole) is proven ours."""
    assert _is_temp_holding(_encoded()[:cut])


@pytest.mark.parametrize(
    "data",
    [
        b"the player's notes",
        _encoded(game_id="doom"),
        _encoded(format_version=9),
        b'{"format":3,"game_id":"quake3x"',
        _encoded() + b" " * LIMIT,
    ],
)
def test_anything_else_at_a_temp_name_is_the_players(data: bytes) -> None:
    """Other bytes, another game's or format's record, or a file over the bound prove nothing."""
    assert not _is_temp_holding(data)


def test_a_link_or_folder_at_a_temp_name_is_the_players(root: Path, tmp_path: Path) -> None:
    """A link to a valid temp, or a folder, is never taken for lanspread's temp file."""
    (tmp_path / "elsewhere").write_bytes(_encoded())
    (root / "linked.tmp").symlink_to(tmp_path / "elsewhere")
    (root / "folder.tmp").mkdir()
    for name in ("linked.tmp", "folder.tmp", "missing.tmp"):
        assert not is_record_temp(root / name, format_version=FORMAT, limit=LIMIT)


def _is_temp_holding(data: bytes) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / GAME_ID
        root.mkdir()
        (root / "note.tmp").write_bytes(data)
        return is_record_temp(root / "note.tmp", format_version=FORMAT, limit=LIMIT)
