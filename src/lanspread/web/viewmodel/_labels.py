"""Numbers in words, and the artwork and avatars derived from names and ids."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable

from lanspread.core.units import format_bytes as format_bytes
from lanspread.web.viewmodel._views import Artwork

_SECONDS_PER_MINUTE = 60
_SECONDS_PER_HOUR = 3600
# Beyond this an ETA is noise (a stalled or crawling link): say so instead of a number.
MAX_ETA_HOURS = 99


def format_speed(bytes_per_second: float) -> str:
    """``"12.5 MB/s"``; a negative or non-finite speed reads as zero."""
    if not math.isfinite(bytes_per_second) or bytes_per_second < 0:
        bytes_per_second = 0.0
    return f"{format_bytes(round(bytes_per_second))}/s"


_MIB = 1024 * 1024


def mib_per_second(limit: int) -> float:
    """A limit in bytes a second as MiB a second, to two decimals (0 stays 0)."""
    return round(limit / _MIB, 2)


def format_limit(limit: int) -> str:
    """``"20 MiB/s"``; 0 reads ``"unlimited"``."""
    return "unlimited" if limit <= 0 else f"{mib_per_second(limit):g} MiB/s"


def format_eta(seconds: float | None) -> str | None:
    """``"42s"``, ``"3m 05s"``, ``"1h 12m"``; ``None`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    whole = math.ceil(seconds)
    if whole >= MAX_ETA_HOURS * _SECONDS_PER_HOUR:
        return f"more than {MAX_ETA_HOURS}h"
    if whole < _SECONDS_PER_MINUTE:
        return f"{whole}s"
    if whole < _SECONDS_PER_HOUR:
        minutes, rest = divmod(whole, _SECONDS_PER_MINUTE)
        return f"{minutes}m {rest:02d}s"
    hours, rest = divmod(whole, _SECONDS_PER_HOUR)
    return f"{hours}h {rest // _SECONDS_PER_MINUTE:02d}m"


def percent_of(done: int, total: int) -> float:
    """Share of ``total`` done, clamped to 0-100 (0 for an empty total)."""
    if total <= 0:
        return 0.0
    return min(max(done / total * 100.0, 0.0), 100.0)


def format_percent(percent: float) -> str:
    """Whole percent, rounded down: a bar never says 100% before it is done."""
    return f"{math.floor(min(max(percent, 0.0), 100.0))}%"


def count_label(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


# -- artwork ---------------------------------------------------------------------------

_STOP_WORDS = frozenset({"a", "an", "and", "of", "the", "to"})
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
ARTWORK_PATTERNS = 8


def monogram(name: str) -> str:
    """Up to two capitals for artwork and avatars: ``"Age of Empires II"`` gives ``"AE"``."""
    words: list[str] = _WORD_RE.findall(name)
    significant = [word for word in words if word.lower() not in _STOP_WORDS] or words
    if not significant:
        return "?"
    if len(significant) == 1:
        return significant[0][:2].upper()
    return (significant[0][0] + significant[1][0]).upper()


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()


ArtSlot = tuple[int, int]
"""A game's place among the catalog's artwork: (index, of how many)."""

# Genre words and the emblem drawn on a game's generated art (first match wins).
_EMBLEMS = (
    ("shooter", "crosshair"),
    ("rpg", "sword"),
    ("racing", "flag"),
    ("sport", "ball"),
    ("moba", "tower"),
    ("strategy", "tower"),
    ("simulation", "gear"),
    ("sandbox", "cube"),
)
DEFAULT_EMBLEM = "controller"


def emblem(genre: str) -> str:
    """The emblem of a genre: ``"Co-op Shooter"`` gives ``"crosshair"``."""
    words = genre.lower()
    return next((mark for word, mark in _EMBLEMS if word in words), DEFAULT_EMBLEM)


def art_slots(game_ids: Iterable[str]) -> dict[str, ArtSlot]:
    """Each game's artwork slot, ordered by the digest of its id.

    Evenly spaced slots keep every two games of one catalog apart: their hues differ,
    and two games with one pattern are :data:`ARTWORK_PATTERNS` slots apart on the
    colour wheel. The order does not follow names, so neighbours on the shelf differ.
    """
    ordered = sorted(set(game_ids), key=lambda game_id: (_digest(game_id), game_id))
    return {game_id: (index, len(ordered)) for index, game_id in enumerate(ordered)}


# Steps through the patterns coprime with their count: neighbouring slots never share one.
_PATTERN_STEP = 3


def artwork(
    game_id: str,
    name: str,
    cover_url: str | None,
    *,
    slot: ArtSlot | None = None,
    genre: str = "",
) -> Artwork:
    """A deterministic two-colour gradient, pattern and genre emblem for a game.

    With its catalog ``slot`` the hue and pattern come from the slot (distinct across
    the catalog); without one, from the id's digest alone.
    """
    digest = _digest(game_id)
    if slot is None:
        hue = int.from_bytes(digest[0:2], "big") % 360
        pattern = digest[4] % ARTWORK_PATTERNS
    else:
        index, total = slot
        hue = round(index * 360 / max(total, 1)) % 360
        pattern = index * _PATTERN_STEP % ARTWORK_PATTERNS
    shift = 35 + digest[2] % 60
    return Artwork(
        cover_url=cover_url,
        color_a=f"hsl({hue} 70% 42%)",
        color_b=f"hsl({(hue + shift) % 360} 75% 18%)",
        angle=115 + digest[3] % 110,
        pattern=pattern,
        monogram=monogram(name),
        emblem=emblem(genre),
    )


def avatar_color(peer_id: str) -> str:
    """A peer's avatar colour from its id: dark enough at every hue for white initials
    to pass WCAG AA (4.5:1)."""
    return f"hsl({int.from_bytes(_digest(peer_id)[0:2], 'big') % 360} 60% 29%)"
