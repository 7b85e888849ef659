"""Content conflicts of unpinned versions: found by digest, chosen by the player, bounded."""

from __future__ import annotations

import pytest
from tests.core.test_engine import entry, make_manifest

from lanspread.core.conflict import (
    MAX_CONFLICT_SIDES,
    ChoiceRefused,
    ContentChoices,
    ContentConflict,
    ContentSide,
    conflict_failure,
    find_conflict,
)
from lanspread.core.manifest import GameManifest, manifest_digest

C = 1024 * 1024


def variant(salt: str) -> GameManifest:
    return make_manifest(entry("a.eti", C, salt=salt))


def test_one_content_is_no_conflict_and_invalid_manifests_take_no_side() -> None:
    """Identical manifests agree; a manifest breaking the rules is left to the agreement."""
    good = variant("")
    broken = make_manifest(entry("../escape", C))
    assert find_conflict("quake3", "1.0", {"a": good, "b": good, "c": broken}) is None


def test_sides_are_ordered_by_peer_whatever_their_size_or_digest() -> None:
    """Three liars against one honest peer: each side lists its peers, the lone
    honest peer first because of its name, not last because it is outnumbered."""
    honest, fake = variant(""), variant("x")
    conflict = find_conflict("quake3", "1.0", {"aaron": honest, "x1": fake, "x2": fake, "x3": fake})
    assert conflict == ContentConflict(
        "quake3",
        "1.0",
        (
            ContentSide(manifest_digest(honest), ("aaron",)),
            ContentSide(manifest_digest(fake), ("x1", "x2", "x3")),
        ),
    )


def test_a_flood_of_contents_lists_a_bounded_number_of_sides() -> None:
    """Fresh identities each offering other content: MAX_CONFLICT_SIDES sides, the rest counted."""
    offered = {f"p{n:02}": variant(str(n)) for n in range(MAX_CONFLICT_SIDES + 3)}
    conflict = find_conflict("quake3", "1.0", offered)
    assert conflict is not None
    assert len(conflict.sides) == MAX_CONFLICT_SIDES
    assert conflict.more_sides == 3
    assert conflict_failure(conflict).endswith(
        "; 3 more); the party catalog does not pin it, so choose which to trust"
    )


def test_a_choice_names_a_side_of_the_current_conflict_and_ends_it() -> None:
    """Choosing records the digest for that version and clears the conflict; a digest no
    side offers, or a game without a conflict, is refused in the player's words."""
    honest, fake = variant(""), variant("x")
    conflict = find_conflict("quake3", "1.0", {"a": honest, "b": fake})
    assert conflict is not None
    choices = ContentChoices()
    choices.record(conflict)
    assert choices.conflicts() == {"quake3": conflict}
    with pytest.raises(ChoiceRefused) as caught:
        choices.choose("quake3", "00" * 32)
    assert str(caught.value) == f"no peer offering quake3 1.0 offers content {'00' * 32}"
    assert choices.choose("quake3", manifest_digest(fake)) == conflict
    assert choices.chosen("quake3", "1.0") == manifest_digest(fake)
    assert choices.chosen("quake3", "2.0") is None
    assert choices.conflicts() == {}
    with pytest.raises(ChoiceRefused) as caught:
        choices.choose("quake3", manifest_digest(fake))
    assert str(caught.value) == "quake3 has no content conflict to resolve"


def test_choices_and_conflicts_are_bounded_oldest_first() -> None:
    """A stranger announcing ever new games or versions cannot grow the record; a game's
    conflict is forgotten when a new download of it starts."""
    choices = ContentChoices(limit=2)
    for game in ("a", "b", "c"):
        conflict = find_conflict(game, "1.0", {"p": variant(""), "q": variant("x")})
        assert conflict is not None
        choices.record(conflict)
    assert sorted(choices.conflicts()) == ["b", "c"]
    choices.forget("b")
    choices.forget("nothing")
    assert sorted(choices.conflicts()) == ["c"]
    with pytest.raises(ChoiceRefused) as caught:
        ContentChoices(limit=0)
    assert str(caught.value) == "content choices must hold at least one entry"
