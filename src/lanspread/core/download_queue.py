"""Rules of the download queue: order, auto-resume, the pause reason and free space.

Pure decisions the runtime's download queue (``runtime.download_queue``) applies:

* **Order.** Downloads start in the order the player asked for them; beyond
  the active limit they wait, queued, and the player may move one up or down
  (:func:`move`). :func:`to_start` says which queued ones a freed slot starts.
* **Auto-resume.** A download paused because its sources left resumes by
  itself once a source offers the same version and manifest again
  (:func:`should_auto_resume`). One the player paused never does: the player
  resumes it.
* **Why it paused.** :func:`source_left_message` names the source that left
  and how far the download had got ("Alice left at 35%").
* **Free space.** :func:`space_refusal` refuses a download the game folder's
  filesystem cannot hold, giving both sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lanspread.core.engine import ALL_PEERS_GONE
from lanspread.core.units import format_bytes

# Why a download is paused, beyond the engine's ALL_PEERS_GONE.
PLAYER = "player"
"""The player paused it: it resumes only when the player says so."""
QUEUED = "queued"
"""Waiting for a free download slot; starts by itself in queue order."""

AUTO_RESUMABLE = frozenset({ALL_PEERS_GONE})
"""Pause reasons a returning source ends by itself."""

# Kept free beyond the download itself: a filesystem filled to the last byte fails
# the journal and the install record written next to the payload.
SPACE_MARGIN_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Offer:
    """One peer's offer of a game as the auto-resume rule compares it."""

    version: str | None
    manifest_digest: str | None
    """The manifest the offer is of, when known before asking (a partial copy, a
    pinned version); ``None`` for a complete copy, whose manifest the resumed
    download compares with its journal when it asks."""


def should_auto_resume(
    reason: str, *, version: str | None, manifest_digest: str, offers: Iterable[Offer]
) -> bool:
    """Whether a paused download (why: ``reason``) of ``version`` at ``manifest_digest``
    resumes by itself, given what peers offer now."""
    if reason not in AUTO_RESUMABLE:
        return False
    return any(
        offer.version == version and offer.manifest_digest in (None, manifest_digest)
        for offer in offers
    )


def move(order: Sequence[str], game_id: str, step: int) -> tuple[str, ...]:
    """``order`` with ``game_id`` moved ``step`` places later (negative: earlier),
    clamped to the ends; unchanged when it is not in the queue."""
    items = list(order)
    if game_id not in items:
        return tuple(items)
    index = items.index(game_id)
    items.pop(index)
    items.insert(max(0, min(len(items), index + step)), game_id)
    return tuple(items)


def to_start(queued: Sequence[str], active: int, limit: int) -> tuple[str, ...]:
    """The queued downloads (first first) that start when ``active`` run of ``limit``."""
    return tuple(queued[: max(0, limit - active)])


def source_left_message(peer_name: str | None, percent: float) -> str:
    """Why a download paused when its last source left, for the player."""
    who = peer_name if peer_name else "Every source"
    return f"{who} left at {int(percent)}%"


def space_refusal(name: str, needed: int, free: int) -> str | None:
    """The refusal of a download of ``needed`` bytes with ``free`` bytes left, if any."""
    if needed + SPACE_MARGIN_BYTES <= free:
        return None
    sizes = f"it needs {format_bytes(needed)}, {format_bytes(free)} free"
    return f"not enough disk space for {name}: {sizes}"
