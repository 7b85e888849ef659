"""Which ``.eti`` files of a game root form one archive, and in which order.

A game root holds its archives as ``.eti`` files (renamed archives). Some are
whole archives, some are volumes of one multi-volume RAR set. The rule, applied
to the root's file names only (case-insensitive suffixes, exact stems):

1. ``STEM.partN.eti`` (``N`` one or more digits): volume ``N`` of the set
   ``STEM``. The numbers must run 1, 2, 3, ... with no gap and no duplicate
   (``part1`` and ``part01`` are the same volume). This is RAR's "new"
   volume naming, ``STEM.partN.rar`` renamed.
2. ``STEM.eti`` together with ``STEM.rNN.eti`` (then ``sNN``, ``tNN`` ... up to
   ``zNN``): RAR's "old" volume naming (``STEM.rar``, ``STEM.r00``, ...) with
   ``.eti`` appended. ``STEM.eti`` is the first volume, then ``r00``, ``r01``,
   ..., ``r99``, ``s00``, ... in that order, with no gap.
3. Any other ``NAME.eti`` is an archive of its own.

Sets are returned sorted by the name of their first volume, so extraction order
(and which file wins when two archives hold the same path) is stable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lanspread.core.gameroot import ARCHIVE_SUFFIX
from lanspread.install.archive_errors import CorruptArchive

_PART_RE = re.compile(r"^(?P<stem>.+)\.part(?P<number>[0-9]+)\.eti$", re.IGNORECASE)
_OLD_RE = re.compile(r"^(?P<stem>.+)\.(?P<letter>[r-z])(?P<number>[0-9]{2})\.eti$", re.IGNORECASE)
_OLD_VOLUMES_PER_LETTER = 100


def is_archive_name(name: str) -> bool:
    """True for a root file name that is an archive or an archive volume."""
    return name.lower().endswith(ARCHIVE_SUFFIX) and len(name) > len(ARCHIVE_SUFFIX)


@dataclass
class _Numbered:
    """Volumes of one set seen so far, by their position (0 = first volume)."""

    stem: str
    by_position: dict[int, str]


def group_volumes(names: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Group archive file names into ordered volume sets (see the module docstring)."""
    singles: list[str] = []
    part_sets: dict[str, _Numbered] = {}
    old_sets: dict[str, _Numbered] = {}
    for name in sorted(name for name in names if is_archive_name(name)):
        part = _PART_RE.match(name)
        old = _OLD_RE.match(name)
        if part is not None:
            _add(part_sets, part["stem"], int(part["number"]) - 1, name)
        elif old is not None:
            position = 1 + _old_index(old["letter"], int(old["number"]))
            _add(old_sets, old["stem"], position, name)
        else:
            singles.append(name)
    for numbered in old_sets.values():
        first = _first_old_volume(numbered.stem, singles)
        if first is None:
            some = min(numbered.by_position.items())[1]
            raise CorruptArchive(
                f"{some}: the first volume {numbered.stem}{ARCHIVE_SUFFIX} of its set is missing"
            )
        singles.remove(first)
        numbered.by_position[0] = first
    sets = [_ordered(numbered, _part_name) for numbered in part_sets.values()]
    sets += [_ordered(numbered, _old_name) for numbered in old_sets.values()]
    sets += [(name,) for name in singles]
    return tuple(sorted(sets, key=lambda volumes: volumes[0]))


def _first_old_volume(stem: str, singles: list[str]) -> str | None:
    """``STEM.eti`` among the single archives (the suffix in any case)."""
    for name in singles:
        if name[: len(stem)] == stem and name[len(stem) :].lower() == ARCHIVE_SUFFIX:
            return name
    return None


def _old_index(letter: str, number: int) -> int:
    return (ord(letter.lower()) - ord("r")) * _OLD_VOLUMES_PER_LETTER + number


def _part_name(stem: str, position: int) -> str:
    return f"{stem}.part{position + 1}{ARCHIVE_SUFFIX}"


def _old_name(stem: str, position: int) -> str:
    index = position - 1
    letter = chr(ord("r") + index // _OLD_VOLUMES_PER_LETTER)
    return f"{stem}.{letter}{index % _OLD_VOLUMES_PER_LETTER:02d}{ARCHIVE_SUFFIX}"


def _add(sets: dict[str, _Numbered], stem: str, position: int, name: str) -> None:
    numbered = sets.setdefault(stem, _Numbered(stem, {}))
    previous = numbered.by_position.get(position)
    if previous is not None:
        raise CorruptArchive(f"{name}: the same volume as {previous}")
    numbered.by_position[position] = name


def _ordered(numbered: _Numbered, name_of: Callable[[str, int], str]) -> tuple[str, ...]:
    """The volumes in order; a gap means a volume is missing."""
    positions = sorted(numbered.by_position)
    for expected, position in enumerate(positions):
        if position != expected:
            found = numbered.by_position[position]
            missing = name_of(numbered.stem, expected)
            raise CorruptArchive(f"{found}: volume {missing} of its set is missing")
    return tuple(numbered.by_position[position] for position in positions)
