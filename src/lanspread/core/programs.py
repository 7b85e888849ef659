"""Whether Play may start a game's program without asking: the rule and its record.

A game whose installed version the party catalog pins runs at once: the organizer
vouched for its content, the executable included. Any other version came from
peers nobody vouches for (or from the player's own disk), so its program is
remembered by digest (BLAKE3 of the executable) each time it runs:

* a program whose digest the player ran or accepted before runs at once;
* any other program is not started: the player is asked (:func:`play_question`),
  once for a game's first program (it came from peers, or a folder, nobody vouched
  for: an attacker's "update" must not run just because it is the first seen) and
  again whenever it differs from the one last run for that game (an update, or a
  peer's replacement); a yes (``play`` with ``run_unpinned``) remembers that
  digest as accepted.

:class:`ProgramRecord` is that memory, bounded (peers announcing ever new
versions cannot grow it without limit) and encoded for the state folder.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

import msgspec

# Programs the player ran: one or two per game and update; a library of hundreds of
# games updated for years stays far below, and the file stays a few hundred KiB.
MAX_REMEMBERED_PROGRAMS = 4096
# The record file as read from the state folder: the bound above in JSON, with room.
MAX_RECORD_FILE_SIZE = 2 * 1024 * 1024


class _Stored(msgspec.Struct, frozen=True):
    last_run: dict[str, str] = {}
    accepted: list[str] = []


class ProgramRecord:
    """The digest last run of each game and every digest the player ran or accepted."""

    def __init__(
        self,
        last_run: Mapping[str, str] | None = None,
        accepted: Iterable[str] = (),
        *,
        limit: int = MAX_REMEMBERED_PROGRAMS,
    ) -> None:
        self._limit = limit
        self._last_run: OrderedDict[str, str] = OrderedDict(last_run or {})
        self._accepted: OrderedDict[str, None] = OrderedDict.fromkeys(accepted)
        self._trim()

    def last_run(self, game_id: str) -> str | None:
        return self._last_run.get(game_id)

    def is_accepted(self, digest: str) -> bool:
        return digest in self._accepted

    def ran(self, game_id: str, digest: str) -> None:
        """``digest`` was started for ``game_id``: remember it (newest now)."""
        self._last_run[game_id] = digest
        self._last_run.move_to_end(game_id)
        self._accepted[digest] = None
        self._accepted.move_to_end(digest)
        self._trim()

    def _trim(self) -> None:
        while len(self._last_run) > self._limit:
            self._last_run.popitem(last=False)
        while len(self._accepted) > self._limit:
            self._accepted.popitem(last=False)

    def encode(self) -> bytes:
        stored = _Stored(last_run=dict(self._last_run), accepted=list(self._accepted))
        return msgspec.json.encode(stored)

    @classmethod
    def decode(cls, data: bytes) -> ProgramRecord:
        """The record in ``data``; raises :class:`msgspec.DecodeError` or
        :class:`msgspec.ValidationError` for a file that is not one."""
        stored = msgspec.json.decode(data, type=_Stored)
        return cls(stored.last_run, stored.accepted)


def play_question(
    game_id: str, game_name: str, digest: str, *, pinned: bool, record: ProgramRecord
) -> str | None:
    """What to ask before starting ``game_id``'s program of ``digest``; ``None``: start it.

    See the module docstring for the rule.
    """
    if pinned or record.is_accepted(digest):
        return None
    if record.last_run(game_id) is None:
        return (
            f"This version of {game_name} was not pinned by the organizer: its program "
            "comes from other players and nobody vouched for it. Run it?"
        )
    return (
        f"This version of {game_name} was not pinned by the organizer and its program "
        "changed since you last played: run it?"
    )


__all__ = [
    "MAX_RECORD_FILE_SIZE",
    "MAX_REMEMBERED_PROGRAMS",
    "ProgramRecord",
    "play_question",
]
