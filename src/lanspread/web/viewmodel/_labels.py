"""Numbers in words, and the artwork and avatars derived from names and ids."""

from __future__ import annotations

import hashlib
import math
import re

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
ARTWORK_PATTERNS = 4


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


def artwork(game_id: str, name: str, cover_url: str | None) -> Artwork:
    """A deterministic two-colour gradient and monogram derived from the game id."""
    digest = _digest(game_id)
    hue = int.from_bytes(digest[0:2], "big") % 360
    shift = 35 + digest[2] % 60
    return Artwork(
        cover_url=cover_url,
        color_a=f"hsl({hue} 70% 42%)",
        color_b=f"hsl({(hue + shift) % 360} 75% 18%)",
        angle=115 + digest[3] % 110,
        pattern=digest[4] % ARTWORK_PATTERNS,
        monogram=monogram(name),
    )


def avatar_color(peer_id: str) -> str:
    return f"hsl({int.from_bytes(_digest(peer_id)[0:2], 'big') % 360} 60% 45%)"
