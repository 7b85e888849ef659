"""Grouping a game root's ``.eti`` files into ordered archive sets."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.install.archive_errors import CorruptArchive
from lanspread.install.volumes import group_volumes


def test_singles_part_sets_and_old_style_sets_are_grouped_and_ordered() -> None:
    """Each naming rule forms its sets; sets sort by their first volume's name."""
    names = [
        "zeta.eti",
        "game.part2.eti",
        "game.part10.eti",
        "game.part1.eti",
        *(f"game.part{n}.eti" for n in range(3, 10)),
        "old.r01.eti",
        "old.eti",
        "old.r00.eti",
        "version.ini",
        "notes.txt",
        ".eti",
    ]
    assert group_volumes(names) == (
        tuple(f"game.part{n}.eti" for n in range(1, 11)),
        ("old.eti", "old.r00.eti", "old.r01.eti"),
        ("zeta.eti",),
    )


def test_old_style_volumes_continue_past_r99_with_s00() -> None:
    """After ``r99`` comes ``s00``, as RAR numbers old-style volumes."""
    names = ["g.eti", *(f"g.r{n:02d}.eti" for n in range(100)), "g.s00.eti", "g.s01.eti"]
    sets = group_volumes(names)
    assert sets[0][-3:] == ("g.r99.eti", "g.s00.eti", "g.s01.eti")
    assert len(sets[0]) == 103


def test_suffixes_match_in_any_case_and_stems_exactly() -> None:
    """``.ETI`` is an archive (Windows players), ``Game`` and ``game`` are different sets."""
    assert group_volumes(["Game.PART1.ETI", "game.part1.eti", "OLD.ETI", "OLD.R00.ETI"]) == (
        ("Game.PART1.ETI",),
        ("OLD.ETI", "OLD.R00.ETI"),
        ("game.part1.eti",),
    )


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a.part2.eti"], "a.part2.eti: volume a.part1.eti of its set is missing"),
        (
            ["a.part1.eti", "a.part3.eti"],
            "a.part3.eti: volume a.part2.eti of its set is missing",
        ),
        (["a.part1.eti", "a.part01.eti"], "a.part1.eti: the same volume as a.part01.eti"),
        (["b.r00.eti"], "b.r00.eti: the first volume b.eti of its set is missing"),
        (["b.eti", "b.r01.eti"], "b.r01.eti: volume b.r00.eti of its set is missing"),
    ],
)
def test_missing_or_duplicate_volumes_are_corrupt_sets(names: list[str], message: str) -> None:
    """A gap or a duplicate is reported naming the volume that is missing or doubled."""
    with pytest.raises(CorruptArchive, match=f"^{re.escape(message)}$"):
        group_volumes(names)


@given(
    st.lists(st.from_regex(r"[a-c]{1,2}(\.part[1-3]|\.r0[0-2])?\.eti", fullmatch=True), unique=True)
)
def test_every_archive_lands_in_exactly_one_set(names: list[str]) -> None:
    """Grouping either refuses the set or uses each archive file exactly once."""
    try:
        sets = group_volumes(names)
    except CorruptArchive:
        return
    grouped = [name for volumes in sets for name in volumes]
    assert sorted(grouped) == sorted(set(names))
