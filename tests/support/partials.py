"""Partial availability for tests: builders and hypothesis strategies."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import strategies as st

from lanspread.core.bitfield import ChunkBitfield, PartialAvailability
from lanspread.core.library import Availability, GameSummary

DIGEST = "d" * 64
"""A manifest digest for tests that need one but no manifest."""
OTHER_DIGEST = "e" * 64


def partial(count: int, held: Iterable[int] = (), digest: str = DIGEST) -> PartialAvailability:
    return PartialAvailability.of(digest, ChunkBitfield.from_indexes(count, held))


def partial_game(
    game_id: str,
    count: int = 8,
    held: Iterable[int] = (),
    *,
    digest: str = DIGEST,
    version: str | None = "2.0",
) -> GameSummary:
    return GameSummary(
        id=game_id,
        availability=Availability.PARTIAL,
        version=version,
        installed=False,
        size_bytes=0,
        partial=partial(count, held, digest),
    )


@st.composite
def partials(draw: st.DrawFn, max_chunks: int = 40) -> PartialAvailability:
    """A valid partial availability over up to ``max_chunks`` chunks."""
    count = draw(st.integers(min_value=0, max_value=max_chunks))
    held = draw(st.sets(st.integers(min_value=0, max_value=count - 1))) if count else set()
    digest = draw(st.sampled_from([DIGEST, OTHER_DIGEST]))
    return partial(count, held, digest)


complete_availabilities = st.sampled_from([Availability.READY, Availability.LOCAL_ONLY])
"""Availabilities that go without a partial."""
