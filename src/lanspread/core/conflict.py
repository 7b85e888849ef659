"""Content conflicts: the sources of an unpinned version offer different content.

Without a party pin nothing vouches for a version's content, and identities cost
nothing: neither a majority of sources nor the order of digests may decide
between manifests that differ. The sources of the version are grouped by manifest
digest (:func:`find_conflict`):

* one group: its manifest is used as is;
* several groups: a :class:`ContentConflict`, one :class:`ContentSide` per digest
  with the peers offering it. The download does not start; the player sees the
  sides and chooses one (the ``choose-content`` command), and from then on only
  the sources of the chosen digest are used for that version (``check_pin`` with
  the choice as the authority).

:class:`ContentChoices` keeps, for this process's life, the last conflict of each
game and the player's choice for each (game, version). Both are bounded: a
stranger announcing fresh versions cannot grow them without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from lanspread.core.manifest import GameManifest, ManifestError, manifest_digest, validate_manifest

# Versions and games are announced by strangers; a party's catalog and its handful of
# versions per game never come close, a flood of made-up versions stops here (the
# oldest entry is forgotten first).
MAX_REMEMBERED_CHOICES = 1024
# Sides of one conflict as shown: each is a digest a source offered. A stranger
# with fresh identities can offer many; the player chooses among a few, the
# rest are summed up in one line.
MAX_CONFLICT_SIDES = 8
# Hex characters of a digest as a person reads it (the command takes the whole).
SHORT_DIGEST = 12

CHOSEN_AUTHORITY = "you chose"
"""How a rejected source is told apart from the chosen content (``check_pin``)."""


class ChoiceRefused(ValueError):
    """A choice that names no side of the game's current conflict (the player's words)."""


@dataclass(frozen=True, slots=True)
class ContentSide:
    """One content on offer: its manifest digest and the peers offering it (sorted)."""

    digest: str
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContentConflict:
    """The sources of ``game_id`` ``version`` offer different content."""

    game_id: str
    version: str
    sides: tuple[ContentSide, ...]
    """Ordered by their first peer id: neither the number of peers nor the digest
    suggests which side to trust."""
    more_sides: int = 0
    """Sides beyond :data:`MAX_CONFLICT_SIDES`, not listed."""

    def side(self, digest: str) -> ContentSide | None:
        return next((side for side in self.sides if side.digest == digest), None)


def find_conflict(
    game_id: str, version: str, offered: Mapping[str, GameManifest]
) -> ContentConflict | None:
    """The conflict between the valid manifests ``offered`` by source, if they differ.

    Invalid manifests take no side (the agreement reports them).
    """
    groups: dict[str, list[str]] = {}
    for source, manifest in offered.items():
        try:
            validate_manifest(manifest)
        except ManifestError:
            continue
        groups.setdefault(manifest_digest(manifest), []).append(source)
    if len(groups) < 2:
        return None
    sides = sorted(
        (ContentSide(digest, tuple(sorted(peers))) for digest, peers in groups.items()),
        key=lambda side: side.peers,
    )
    return ContentConflict(
        game_id,
        version,
        tuple(sides[:MAX_CONFLICT_SIDES]),
        more_sides=max(0, len(sides) - MAX_CONFLICT_SIDES),
    )


def conflict_failure(conflict: ContentConflict) -> str:
    """What the player reads: the sides, and that the choice is theirs."""
    sides = "; ".join(
        f"{', '.join(side.peers)} {'offer' if len(side.peers) > 1 else 'offers'} "
        f"content {side.digest[:SHORT_DIGEST]}"
        for side in conflict.sides
    )
    if conflict.more_sides:
        sides += f"; {conflict.more_sides} more"
    return (
        f"the peers offering {conflict.game_id} {conflict.version} disagree on its content "
        f"({sides}); the party catalog does not pin it, so choose which to trust"
    )


def chosen_failure(game_id: str, version: str, offered: int) -> str:
    """What the player reads when no source has the content they chose."""
    return (
        f"none of the {offered} peers offering {game_id} {version} has the content you "
        "chose; not downloading"
    )


class ContentChoices:
    """The last conflict of each game and the player's choices, oldest forgotten first."""

    def __init__(self, limit: int = MAX_REMEMBERED_CHOICES) -> None:
        if limit < 1:
            raise ChoiceRefused("content choices must hold at least one entry")
        self._limit = limit
        self._conflicts: OrderedDict[str, ContentConflict] = OrderedDict()
        self._chosen: OrderedDict[tuple[str, str], str] = OrderedDict()

    def record(self, conflict: ContentConflict) -> None:
        """``conflict`` is the game's current one (replacing an older one)."""
        self._conflicts[conflict.game_id] = conflict
        self._conflicts.move_to_end(conflict.game_id)
        while len(self._conflicts) > self._limit:
            self._conflicts.popitem(last=False)

    def forget(self, game_id: str) -> None:
        """The game's conflict is over (a new download of it decides afresh)."""
        self._conflicts.pop(game_id, None)

    def conflicts(self) -> dict[str, ContentConflict]:
        """Every game whose last download stopped on a conflict not chosen yet."""
        return dict(self._conflicts)

    def choose(self, game_id: str, digest: str) -> ContentConflict:
        """Trust ``digest`` for the version of the game's current conflict.

        Raises :class:`ChoiceRefused` when the game has no conflict or no side offers
        that digest.
        """
        conflict = self._conflicts.get(game_id)
        if conflict is None:
            raise ChoiceRefused(f"{game_id} has no content conflict to resolve")
        if conflict.side(digest) is None:
            raise ChoiceRefused(
                f"no peer offering {game_id} {conflict.version} offers content {digest}"
            )
        key = (game_id, conflict.version)
        self._chosen[key] = digest
        self._chosen.move_to_end(key)
        while len(self._chosen) > self._limit:
            self._chosen.popitem(last=False)
        del self._conflicts[game_id]
        return conflict

    def chosen(self, game_id: str, version: str | None) -> str | None:
        """The digest the player chose for this version, if any."""
        if version is None:
            return None
        return self._chosen.get((game_id, version))


__all__ = [
    "CHOSEN_AUTHORITY",
    "MAX_CONFLICT_SIDES",
    "MAX_REMEMBERED_CHOICES",
    "SHORT_DIGEST",
    "ChoiceRefused",
    "ContentChoices",
    "ContentConflict",
    "ContentSide",
    "chosen_failure",
    "conflict_failure",
    "find_conflict",
]
