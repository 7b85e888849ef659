"""Peers that sent corrupt bytes for a game: not asked for that game again.

A peer whose chunk failed verification against the agreed manifest lied once
(or its disk rots); asking it again only wastes a round and the player's time.
:class:`LiarRecord` remembers each (game, peer) pair for the life of this
process, across downloads, resumes and updates of the game; a restart forgets
it, so a peer that fixed its files gets another chance. The record is bounded:
a stranger cannot grow it without limit by joining under fresh ids.
"""

from __future__ import annotations

from collections.abc import Iterable

from lanspread.core.bounded import BoundedTable
from lanspread.core.lifecycle import Refusal

# Peer ids are chosen by strangers: a party of a few dozen peers and a catalog of a
# few hundred games never comes close, while a flood of fresh ids cannot grow the
# record past a few hundred kilobytes. The oldest pair is forgotten first.
MAX_REMEMBERED_LIARS = 4096


def all_liars_message(game_id: str) -> str:
    """Why a download whose every source is a remembered liar does not start."""
    return Refusal.ALL_SOURCES_LIED.message(game_id)


class LiarRecord:
    """(game, peer id) pairs of sources that sent corrupt bytes, oldest first."""

    def __init__(self, limit: int = MAX_REMEMBERED_LIARS) -> None:
        if limit < 1:
            raise ValueError("a liar record must hold at least one pair")
        self._pairs: BoundedTable[tuple[str, str], None] = BoundedTable(limit)
        # The same pairs by game: a game list asks for every game's liars.
        self._by_game: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._pairs)

    def record(self, game_id: str, peer_id: str) -> None:
        """Remember that ``peer_id`` sent corrupt bytes for ``game_id`` (newest now)."""
        self._by_game.setdefault(game_id, set()).add(peer_id)
        for (game, peer), _ in self._pairs.put((game_id, peer_id), None):
            peers = self._by_game[game]
            peers.discard(peer)
            if not peers:
                del self._by_game[game]

    def is_liar(self, game_id: str, peer_id: str) -> bool:
        return (game_id, peer_id) in self._pairs

    def exclude(self, game_id: str, sources: Iterable[str]) -> tuple[str, ...]:
        """``sources`` without the peers remembered as liars for ``game_id``, in order."""
        return tuple(peer for peer in sources if (game_id, peer) not in self._pairs)

    def by_game(self) -> dict[str, tuple[str, ...]]:
        """Every game with remembered liars, and its liars sorted."""
        return {game: tuple(sorted(peers)) for game, peers in self._by_game.items()}

    def excluded(self, game_id: str) -> tuple[str, ...]:
        """The peers remembered as liars for ``game_id``, sorted."""
        return tuple(sorted(self._by_game.get(game_id, ())))
