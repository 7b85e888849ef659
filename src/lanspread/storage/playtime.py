"""Play time per game: how long each was played here in all, and when it last ended.

Kept as ``playtime.json`` in the state directory and replaced atomically after each
session. A missing file means nothing was played yet; an unreadable or malformed one
is logged and counted as empty (play time is a convenience, never a reason to stop).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import msgspec

from lanspread.core.catalog import MAX_CATALOG_GAMES
from lanspread.core.launching import PlayTime
from lanspread.errors import StorageError
from lanspread.files.atomic import atomic_write_bytes
from lanspread.storage.statefile import load_state_file

log = logging.getLogger(__name__)

PLAYTIME_FILE_NAME = "playtime.json"
# Two numbers per catalog game; anything near this size was not written by lanspread.
MAX_PLAYTIME_FILE_SIZE = MAX_CATALOG_GAMES * 256


class _Entry(msgspec.Struct, frozen=True):
    total_seconds: float
    last_played: float | None = None


class _File(msgspec.Struct, frozen=True):
    games: dict[str, _Entry] = {}


class PlayTimeStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / PLAYTIME_FILE_NAME
        self._times: dict[str, PlayTime] | None = None

    def all(self) -> Mapping[str, PlayTime]:
        """Every game's play time (read from disk once)."""
        if self._times is None:
            self._times = self._load()
        return self._times

    def get(self, game_id: str) -> PlayTime:
        return self.all().get(game_id, PlayTime())

    def record(self, game_id: str, seconds: float, ended_at: float) -> PlayTime:
        """Add a session that ended at ``ended_at`` and save; returns the game's new total."""
        times = dict(self.all())
        times[game_id] = times.get(game_id, PlayTime()).add(seconds, ended_at)
        self._times = times
        data = _File({gid: _Entry(t.total_seconds, t.last_played) for gid, t in times.items()})
        try:
            atomic_write_bytes(self.path, msgspec.json.encode(data))
        except StorageError:
            log.warning("cannot save the play time to %s", self.path, exc_info=True)
        return times[game_id]

    def _load(self) -> dict[str, PlayTime]:
        data = load_state_file(self.path, MAX_PLAYTIME_FILE_SIZE, _File, what="the play time")
        if data is None:
            return {}
        return {gid: PlayTime(e.total_seconds, e.last_played) for gid, e in data.games.items()}
