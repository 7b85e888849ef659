"""Withheld copies: games whose install found a damaged archive, kept across restarts.

Kept as ``withheld.json`` in the state directory, replaced atomically on each change,
together with the game directory the marks belong to (a mark never applies to the
same game id in another directory). A missing file means nothing is withheld; an
unreadable, oversized or malformed one is logged and counted as empty: the next
install of a damaged copy marks it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from lanspread.core.catalog import MAX_CATALOG_GAMES
from lanspread.core.library import GameId
from lanspread.errors import StorageError
from lanspread.files.atomic import atomic_write_bytes
from lanspread.storage.statefile import load_state_file

log = logging.getLogger(__name__)

WITHHELD_FILE_NAME = "withheld.json"
# A damaged-archive sentence names one archive file and a fixed phrase; longer was
# not written by lanspread.
MAX_SENTENCE_LENGTH = 1024
# At most one sentence per catalog game plus the directory path; anything larger
# was not written by lanspread and is not read.
MAX_WITHHELD_FILE_SIZE = MAX_CATALOG_GAMES * (MAX_SENTENCE_LENGTH + 128) + 8192

Sentence = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SENTENCE_LENGTH)]


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    game_dir: str
    games: Annotated[dict[GameId, Sentence], msgspec.Meta(max_length=MAX_CATALOG_GAMES)] = {}


def load_withheld(state_dir: Path, game_dir: Path) -> dict[str, str]:
    """The withheld games of ``game_dir`` with their sentences; empty when unknown."""
    path = state_dir / WITHHELD_FILE_NAME
    data = load_state_file(path, MAX_WITHHELD_FILE_SIZE, _File, what="the withheld games")
    if data is None:
        return {}
    if data.game_dir != str(game_dir):
        return {}  # the marks of another game directory
    return dict(data.games)


def save_withheld(state_dir: Path, game_dir: Path, games: Mapping[str, str]) -> None:
    """Replace the file with ``games`` (of ``game_dir``); a failure is logged only."""
    path = state_dir / WITHHELD_FILE_NAME
    data = _File(
        game_dir=str(game_dir),
        games={gid: games[gid][:MAX_SENTENCE_LENGTH] for gid in sorted(games)},
    )
    try:
        atomic_write_bytes(path, msgspec.json.encode(data))
    except StorageError as exc:
        log.warning("cannot save the withheld games to %s: %s", path, exc)
