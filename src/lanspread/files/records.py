"""The small JSON records lanspread keeps in a game folder, read and proven one way.

The intent log, the install record, the download journal and the download's
ownership record all start with the same two fields, ``format`` and
``game_id``, in that order, and are written atomically
(:func:`lanspread.files.atomic.atomic_write_bytes`). So a file at such a name:

* is read only when it is a regular file within its size bound, never through
  a link (:func:`load_game_record`);
* is a record lanspread wrote only when it decodes, has the supported format
  and names the game of the folder it sits in (:func:`decode_game_record`);
  anything else is the player's, or a corrupt one, and each caller raises its
  own error for it (``corrupt``), with the same wording everywhere;
* is a crash-left temp file of lanspread's only when its bytes are empty, a
  prefix of such a record, or a whole one (:func:`is_record_temp`): the atomic
  write puts the whole encoding down at once, and its first bytes name the
  format and the game.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec

from lanspread.errors import StorageError
from lanspread.files.atomic import NotARegularFile, read_regular_bounded


class GameRecord(Protocol):
    """What every game-folder record starts with."""

    @property
    def format(self) -> int: ...

    @property
    def game_id(self) -> str: ...


R = TypeVar("R", bound=GameRecord)
T = TypeVar("T")

Corrupt = Callable[[str], Exception]
"""Makes the caller's error for a file that is not its record, from the message."""


def decode_json(data: bytes, kind: type[T], *, path: Path, what: str, corrupt: Corrupt) -> T:
    """``data`` decoded as ``kind``; ``corrupt`` says ``<path>: not valid JSON: ...`` or
    ``<path>: not <what>: ...`` (``what`` with its article: ``an intent record``)."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise corrupt(f"{path}: not {what}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise corrupt(f"{path}: not valid JSON: {exc}") from exc


def decode_game_record(
    data: bytes,
    kind: type[R],
    *,
    path: Path,
    game_id: str,
    format_version: int,
    what: str,
    corrupt: Corrupt,
) -> R:
    """``data`` as a record of ``game_id`` in ``format_version``, else ``corrupt``."""
    record = decode_json(data, kind, path=path, what=what, corrupt=corrupt)
    if record.format != format_version:
        raise corrupt(
            f"{path}: format {record.format} is not supported (expected {format_version})"
        )
    if record.game_id != game_id:
        raise corrupt(f"{path}: records game {record.game_id!r}, not {game_id!r}")
    return record


def load_game_record(
    path: Path,
    kind: type[R],
    *,
    limit: int,
    format_version: int,
    what: str,
    corrupt: Corrupt,
) -> R | None:
    """The record at ``path``, of the game whose root holds it; ``None`` when absent.

    A link, folder or file over ``limit`` bytes there is ``corrupt``
    (``<path>: not a regular file``); a disk that refuses is a
    :class:`StorageError`.
    """
    try:
        data = read_regular_bounded(path, limit)
    except NotARegularFile as exc:
        raise corrupt(f"{path}: {exc.reason}") from exc
    if data is None:
        return None
    return decode_game_record(
        data,
        kind,
        path=path,
        game_id=path.parent.name,
        format_version=format_version,
        what=what,
        corrupt=corrupt,
    )


def record_head(format_version: int, game_id: str) -> bytes:
    """The first bytes of every record of ``game_id`` in ``format_version``, as encoded."""
    return msgspec.json.encode({"format": format_version, "game_id": game_id})[:-1]


def is_record_temp(path: Path, *, format_version: int, limit: int) -> bool:
    """True when ``path`` holds what an interrupted atomic write of a record left.

    That is a regular file of at most ``limit`` bytes, empty or a prefix of a
    record of the folder's game, or one whole; only its first bytes are read.
    Anything else, or anything but a regular file, is the player's.
    """
    head = record_head(format_version, path.parent.name)
    try:
        data = read_regular_bounded(path, limit, head=len(head) + 1)
    except StorageError:
        return False
    if data is None:
        return False
    return head.startswith(data) or data.startswith(head + b",")


__all__ = [
    "Corrupt",
    "GameRecord",
    "decode_game_record",
    "decode_json",
    "is_record_temp",
    "load_game_record",
    "record_head",
]
