"""Comparing a found folder with an offered manifest: exact, read-only, and says what differs."""

from __future__ import annotations

from pathlib import Path

from tests.support.download_roots import build_manifest, game_files
from tests.support.install_roots import snapshot

from lanspread.download.adoption import compare_folder

FILES = game_files()
MANIFEST = build_manifest(FILES)


def _copy(root: Path, *, skip: tuple[str, ...] = ("version.ini",)) -> None:
    """The game's files as a player copies them (no ``version.ini``)."""
    for path, data in FILES.items():
        if path in skip:
            continue
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def test_an_exact_copy_without_version_ini_matches_and_is_only_read(root: Path) -> None:
    """Every game file with the manifest's size and bytes matches; the missing sentinel and
    the player's own files do not count; nothing on disk changes."""
    _copy(root)
    (root / "notes.txt").write_bytes(b"the player's")
    before = snapshot(root)
    assert compare_folder(root, MANIFEST) == ()
    assert snapshot(root) == before


def test_each_difference_is_named_by_file(root: Path) -> None:
    """A missing file, a file of another size and one with other bytes are each named."""
    _copy(root, skip=("version.ini", "quake3.part2.eti"))
    (root / "maps/empty.txt").write_bytes(b"x")
    data = bytearray(FILES["quake3.eti"])
    data[-1] ^= 0xFF
    (root / "quake3.eti").write_bytes(bytes(data))
    assert compare_folder(root, MANIFEST) == (
        "maps/empty.txt: 1 bytes, the game's has 0",
        "quake3.eti: other content",
        "quake3.part2.eti: missing",
    )


def test_a_file_reached_through_a_link_is_missing(root: Path, tmp_path: Path) -> None:
    """A folder that is a link is never followed: its files count as missing."""
    _copy(root)
    elsewhere = tmp_path / "elsewhere"
    (root / "maps").rename(elsewhere)
    (root / "maps").symlink_to(elsewhere)
    assert compare_folder(root, MANIFEST) == (
        "maps/empty.txt: missing",
        "maps/extra/dm1.eti: missing",
    )
