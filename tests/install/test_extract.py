"""Extracting a game root's archives: every format, volume sets, hostile and corrupt input."""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import random
import re
import stat
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.conftest import require_tool
from tests.support.archives import (
    FIXED_MTIME,
    ArchiveFormat,
    Kind,
    Member,
    build_archive,
    build_volumes,
    write_game_root,
)
from tests.support.platforms import is_root
from tests.support.rar import RarMember, rar4_archive

from lanspread.install import extract as extract_module
from lanspread.install.extract import (
    MAX_ENTRIES,
    CorruptArchive,
    ExtractionCancelled,
    ExtractionError,
    ExtractionPlan,
    HostileArchive,
    NotEnoughSpace,
    extract,
    plan_extraction,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

REPO = Path(__file__).resolve().parents[2]
MARKER = ".lanspread_owned"

FILES = {
    "bin/game.exe": b"MZ" + bytes(range(256)) * 40,
    "data/level1.pak": os.urandom(50_000),
    "data/empty.txt": b"",
    "readme.txt": b"have fun\n",
}


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file's bytes, folder (``"dir"``) and symlink (``"-> target"``) under ``root``."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[name] = f"-> {path.readlink()}"
        elif path.is_dir():
            found[name] = "dir"
        else:
            found[name] = path.read_bytes()
    return found


def expected_tree(files: dict[str, bytes]) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {MARKER: b""}
    for name, data in files.items():
        parts = name.split("/")
        for depth in range(1, len(parts)):
            found["/".join(parts[:depth])] = "dir"
        found[name] = data
    return dict(sorted(found.items()))


def install(root: Path, dest: Path) -> ExtractionPlan:
    plan = plan_extraction(root)
    extract(plan, dest)
    return plan


def assert_nothing_extracted(dest: Path, outside: Path) -> None:
    assert not outside.exists()
    assert tree(dest) == {MARKER: b""}


# --- every format ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(ArchiveFormat))
def test_every_format_extracts_byte_for_byte(fmt: ArchiveFormat, root: Path, dest: Path) -> None:
    """zip, tar, tar.gz, 7z, RAR 4 and RAR 5 are recognised by content and extract exactly."""
    write_game_root(root, {"game.eti": (fmt, FILES)})
    plan = install(root, dest)
    assert plan.archive_sets == ((root / "game.eti",),)
    assert plan.total_bytes == sum(map(len, FILES.values()))
    assert tree(dest) == expected_tree(FILES)


def test_a_game_of_mixed_archives_and_volume_sets_extracts_into_one_tree(
    root: Path, dest: Path
) -> None:
    """Several archives, a RAR 4 set (``.partN``), a RAR 5 set and an old-style set all land."""
    big4 = {"rar4/big.bin": os.urandom(20_000), "rar4/small.txt": b"4"}
    big5 = {"rar5/big.bin": os.urandom(20_000), "rar5/small.txt": b"5"}
    old = {"old/big.bin": os.urandom(9_000)}
    for number, volume in enumerate(build_volumes(ArchiveFormat.RAR4, big4, 4_000), 1):
        (root / f"four.part{number}.eti").write_bytes(volume)
    for number, volume in enumerate(build_volumes(ArchiveFormat.RAR5, big5, 4_000), 1):
        (root / f"five.part{number:02d}.eti").write_bytes(volume)
    old_volumes = build_volumes(ArchiveFormat.RAR4, old, 4_000)
    (root / "old.eti").write_bytes(old_volumes[0])
    for number, volume in enumerate(old_volumes[1:]):
        (root / f"old.r{number:02d}.eti").write_bytes(volume)
    write_game_root(
        root,
        {
            "a.eti": (ArchiveFormat.ZIP, {"zip/a.txt": b"zip"}),
            "b.eti": (ArchiveFormat.SEVEN_ZIP, {"7z/b.txt": b"7z"}),
            "c.eti": (ArchiveFormat.TAR_GZ, {"tgz/c.txt": b"tgz"}),
        },
    )
    (root / "notes.txt").write_text("not an archive")
    plan = install(root, dest)
    assert [len(volumes) for volumes in plan.archive_sets] == [1, 1, 1, 5, 5, 3]
    everything = {
        **big4,
        **big5,
        **old,
        "zip/a.txt": b"zip",
        "7z/b.txt": b"7z",
        "tgz/c.txt": b"tgz",
    }
    assert tree(dest) == expected_tree(everything)


def test_only_regular_eti_files_at_the_root_are_archives(root: Path, dest: Path) -> None:
    """Nested archives, symlinked archives and other files are not extracted."""
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, {"a.txt": b"a"})})
    (root / "nested").mkdir()
    (root / "nested" / "other.eti").write_bytes(build_archive(ArchiveFormat.TAR, {"b": b""}))
    (root / "link.eti").symlink_to(root / "nested" / "other.eti")
    plan = install(root, dest)
    assert plan.archive_sets == ((root / "game.eti",),)
    assert tree(dest) == expected_tree({"a.txt": b"a"})


def test_a_root_without_archives_plans_nothing(root: Path, dest: Path) -> None:
    """No archive, no work: the plan is empty and extraction leaves the destination as it was."""
    plan = install(root, dest)
    assert plan == ExtractionPlan((), 0, 0)
    assert tree(dest) == {MARKER: b""}


def test_a_missing_game_root_is_an_extraction_error(tmp_path: Path) -> None:
    """A root that cannot be listed fails with the OS reason."""
    with pytest.raises(ExtractionError, match=f"^cannot list {tmp_path}/gone: No such file"):
        plan_extraction(tmp_path / "gone")


def test_a_destination_that_cannot_be_created_is_an_extraction_error(
    root: Path, tmp_path: Path
) -> None:
    """The staging folder's parent must exist; the error names the path."""
    plan = plan_extraction(root)
    target = tmp_path / "missing" / "dest"
    with pytest.raises(ExtractionError, match=f"^cannot create {target}: No such file"):
        extract(plan, target)


def test_later_archives_overwrite_earlier_files_in_name_order(root: Path, dest: Path) -> None:
    """Two archives holding one path: the later set (by name) wins, deterministically."""
    write_game_root(
        root,
        {
            "a.eti": (ArchiveFormat.TAR, {"same.txt": b"first"}),
            "b.eti": (ArchiveFormat.ZIP, {"same.txt": b"second"}),
        },
    )
    install(root, dest)
    assert (dest / "same.txt").read_bytes() == b"second"


def test_backslash_names_become_folders(root: Path, dest: Path) -> None:
    """A zip made on Windows with ``dir\\file`` names extracts into real folders."""
    members = [Member("dir\\sub\\file.txt", b"win")]
    write_game_root(root, {"game.eti": (ArchiveFormat.ZIP, members)})
    install(root, dest)
    assert tree(dest) == expected_tree({"dir/sub/file.txt": b"win"})


def test_a_dot_entry_for_the_root_is_skipped(root: Path, dest: Path) -> None:
    """``tar -C dir .`` archives start with ``./``; it must not touch the destination's mode."""
    members = [Member("./", kind=Kind.DIR, mode=0o700), Member("./a.txt", b"a")]
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, members)})
    dest.chmod(0o755)
    install(root, dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert tree(dest) == expected_tree({"a.txt": b"a"})


# --- modes, times, links --------------------------------------------------------------------


def test_modes_keep_exec_bits_and_drop_setuid_setgid_and_foreign_write(
    root: Path, dest: Path
) -> None:
    """Exec bits survive; setuid/setgid/sticky and group/other write never reach the disk."""
    members = [
        Member("tools", kind=Kind.DIR, mode=0o1777),
        Member("tools/run.sh", b"#!/bin/sh\n", mode=0o755),
        Member("tools/suid", b"x", mode=0o6755),
        Member("tools/open", b"x", mode=0o666),
        Member("tools/locked", b"x", mode=0o400),
    ]
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, members)})
    install(root, dest)
    modes = {
        name: stat.S_IMODE((dest / name).stat().st_mode)
        for name in ("tools", "tools/run.sh", "tools/suid", "tools/open", "tools/locked")
    }
    assert modes == {
        "tools": 0o755,
        "tools/run.sh": 0o755,
        "tools/suid": 0o755,
        "tools/open": 0o644,
        "tools/locked": 0o600,
    }


@pytest.mark.parametrize("fmt", [ArchiveFormat.TAR, ArchiveFormat.ZIP, ArchiveFormat.RAR5])
def test_mtimes_of_files_and_folders_are_preserved(
    fmt: ArchiveFormat, root: Path, dest: Path
) -> None:
    """Files and folders keep the archive's times (folders are fixed up after their content)."""
    write_game_root(root, {"game.eti": (fmt, {"dir/file.bin": b"data"})})
    install(root, dest)
    assert (dest / "dir" / "file.bin").stat().st_mtime == FIXED_MTIME
    assert (dest / "dir").stat().st_mtime == FIXED_MTIME


@pytest.mark.parametrize("fmt", [ArchiveFormat.TAR, ArchiveFormat.ZIP, ArchiveFormat.RAR4])
def test_symlinks_inside_the_game_are_extracted(fmt: ArchiveFormat, root: Path, dest: Path) -> None:
    """A relative symlink that stays inside is created as a symlink, not followed."""
    members = [
        Member("lib", kind=Kind.DIR, mode=0o755),
        Member("lib/libfoo.so.1", b"elf"),
        Member("lib/libfoo.so", kind=Kind.SYMLINK, mode=0o777, link_target="libfoo.so.1"),
        Member("bin", kind=Kind.DIR, mode=0o755),
        Member("bin/lib", kind=Kind.SYMLINK, mode=0o777, link_target="../lib"),
    ]
    write_game_root(root, {"game.eti": (fmt, members)})
    install(root, dest)
    assert (dest / "lib" / "libfoo.so").readlink() == Path("libfoo.so.1")
    assert (dest / "bin" / "lib").readlink() == Path("../lib")
    assert (dest / "bin" / "lib" / "libfoo.so").read_bytes() == b"elf"


@pytest.mark.parametrize("fmt", [ArchiveFormat.TAR, ArchiveFormat.RAR5])
def test_hard_links_inside_the_game_share_the_file(
    fmt: ArchiveFormat, root: Path, dest: Path
) -> None:
    """A hard link to an earlier file becomes a second name of the same inode."""
    members = [
        Member("a.bin", b"shared"),
        Member("copy", kind=Kind.DIR, mode=0o755),
        Member("copy/b.bin", kind=Kind.HARDLINK, link_target="a.bin"),
    ]
    write_game_root(root, {"game.eti": (fmt, members)})
    install(root, dest)
    assert (dest / "copy" / "b.bin").read_bytes() == b"shared"
    assert (dest / "copy" / "b.bin").stat().st_ino == (dest / "a.bin").stat().st_ino


# --- hostile archives -----------------------------------------------------------------------

HOSTILE: dict[str, tuple[list[Member], str]] = {
    "traversal": ([Member("../../outside", b"x")], "'..' component"),
    "nested traversal": ([Member("ok/../../../outside", b"x")], "'..' component"),
    "backslash traversal": ([Member("..\\..\\outside", b"x")], "'..' component"),
    "absolute": ([Member("{outside}", b"x")], "absolute path"),
    "drive letter": (
        [Member("C:\\outside", b"x")],
        "drive letter or stream name in component 'C:'",
    ),
    "unc": ([Member("\\\\server\\share\\outside", b"x")], "absolute path"),
    "symlink escape": (
        [Member("link", kind=Kind.SYMLINK, mode=0o777, link_target="../../outside")],
        "symlink target '../../outside' leaves the destination",
    ),
    "absolute symlink": (
        [Member("link", kind=Kind.SYMLINK, mode=0o777, link_target="{outside}")],
        "absolute link target '{outside}'",
    ),
    "write through symlink": (
        [
            Member("link", kind=Kind.SYMLINK, mode=0o777, link_target="."),
            Member("link/x", b"x"),
        ],
        "passes through symlink 'link'",
    ),
    "hardlink escape": (
        [Member("h", kind=Kind.HARDLINK, link_target="../../outside")],
        "hard link target '../../outside': '..' component",
    ),
    "absolute hardlink": (
        [Member("h", kind=Kind.HARDLINK, link_target="{outside}")],
        "hard link target '{outside}': absolute path",
    ),
    "hardlink to nothing": (
        [Member("h", kind=Kind.HARDLINK, link_target="later"), Member("later", b"x")],
        "hard link target 'later' is not a regular file extracted earlier",
    ),
    "char device": ([Member("tty", kind=Kind.CHAR_DEVICE)], "character device not allowed"),
    "fifo": ([Member("pipe", kind=Kind.FIFO)], "FIFO not allowed"),
    "reserved name": ([Member("data/aux.pak", b"x")], "Windows reserved device name 'aux.pak'"),
}
# What each format can express: zip and RAR 4 have no hard links; zip has no FIFOs.
_NO_HARDLINKS = {"hardlink escape", "absolute hardlink", "hardlink to nothing"}
UNSUPPORTED = {
    ArchiveFormat.TAR: set(),
    ArchiveFormat.ZIP: _NO_HARDLINKS | {"fifo"},
    ArchiveFormat.RAR4: _NO_HARDLINKS,
    ArchiveFormat.RAR5: set(),
}
HOSTILE_CASES = [
    pytest.param(fmt, case, id=f"{fmt.value}-{case}")
    for fmt in UNSUPPORTED
    for case in HOSTILE
    if case not in UNSUPPORTED[fmt]
]


def _hostile_members(case: str, outside: Path) -> tuple[list[Member], str]:
    members, reason = HOSTILE[case]
    fill = {"outside": str(outside)}
    return [
        dataclasses.replace(m, name=m.name.format(**fill), link_target=m.link_target.format(**fill))
        for m in members
    ], reason.format(**fill)


@pytest.mark.parametrize(("fmt", "case"), HOSTILE_CASES)
def test_hostile_archives_are_refused_before_anything_is_written(
    fmt: ArchiveFormat, case: str, root: Path, dest: Path, tmp_path: Path
) -> None:
    """Every escape, link trick and device is refused at planning, naming archive and entry."""
    outside = tmp_path / "outside"
    members, reason = _hostile_members(case, outside)
    benign = [Member("aaa-first.txt", b"fine")]
    write_game_root(root, {"game.eti": (fmt, benign + members)})
    pattern = rf"^game\.eti: refused entry '.+': {re.escape(reason)}$"
    with pytest.raises(HostileArchive, match=pattern):
        plan_extraction(root)
    assert_nothing_extracted(dest, outside)


@pytest.mark.parametrize("fmt", [ArchiveFormat.TAR, ArchiveFormat.ZIP, ArchiveFormat.RAR4])
def test_an_entry_may_not_overwrite_what_was_in_the_destination_before(
    fmt: ArchiveFormat, root: Path, dest: Path
) -> None:
    """The transaction's ownership marker (or anything already there) is never overwritten."""
    write_game_root(root, {"game.eti": (fmt, [Member("a", b"a"), Member(MARKER, b"x")])})
    plan = plan_extraction(root)
    reason = f"would overwrite '{MARKER}', which was there before extraction"
    with pytest.raises(HostileArchive, match=f"^game\\.eti: refused entry '{MARKER}': {reason}$"):
        extract(plan, dest)
    assert tree(dest) == {MARKER: b""}


def test_a_symlink_chain_escape_is_refused_across_archives(
    root: Path, dest: Path, tmp_path: Path
) -> None:
    """``l -> .`` and ``x -> l/..`` in two archives each look safe; together they escape."""
    write_game_root(
        root,
        {
            "a.eti": (ArchiveFormat.TAR, [Member("l", kind=Kind.SYMLINK, link_target=".")]),
            "b.eti": (ArchiveFormat.ZIP, [Member("x", kind=Kind.SYMLINK, link_target="l/..")]),
        },
    )
    message = "b.eti: refused symlink 'x': resolves outside the destination"
    with pytest.raises(HostileArchive, match=f"^{re.escape(message)}$"):
        plan_extraction(root)
    assert_nothing_extracted(dest, tmp_path / "outside")


def test_an_archive_swapped_for_a_hostile_one_after_planning_leaves_nothing_behind(
    root: Path, dest: Path, tmp_path: Path
) -> None:
    """Extraction checks every entry again; what it wrote before the bad entry is removed."""
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, {"a/first.bin": b"x" * 5000})})
    plan = plan_extraction(root)
    outside = tmp_path / "outside"
    hostile = [Member("a", kind=Kind.DIR), Member("a/first.bin", b"y"), Member("../outside", b"z")]
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, hostile)})
    with pytest.raises(HostileArchive, match=r"^game\.eti: refused entry '\.\./outside'"):
        extract(plan, dest)
    assert_nothing_extracted(dest, outside)


def test_a_symlink_chain_swapped_in_after_planning_is_caught_and_removed(
    root: Path, dest: Path, tmp_path: Path
) -> None:
    """The end-of-extraction check catches a chain escape that got past the plan."""
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, {"a": b"x" * 100})})
    plan = plan_extraction(root)
    chain = [
        Member("l", kind=Kind.SYMLINK, link_target="."),
        Member("x", kind=Kind.SYMLINK, link_target="l/.."),
    ]
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, chain)})
    with pytest.raises(HostileArchive, match=r"^game\.eti: refused symlink 'x'"):
        extract(plan, dest)
    assert_nothing_extracted(dest, tmp_path / "outside")


def test_archives_that_grew_since_planning_are_refused(root: Path, dest: Path) -> None:
    """The space check's bound holds: more declared bytes than planned stops extraction."""
    write_game_root(root, {"game.eti": (ArchiveFormat.ZIP, {"a": b"x"})})
    plan = plan_extraction(root)
    write_game_root(root, {"game.eti": (ArchiveFormat.ZIP, {"a": b"x" * 10})})
    message = "game.eti: the archives changed since they were planned"
    with pytest.raises(ExtractionError, match=f"^{re.escape(message)}$"):
        extract(plan, dest)
    assert tree(dest) == {MARKER: b""}


def test_an_entry_longer_than_its_header_says_is_corrupt(root: Path, dest: Path) -> None:
    """A header that under-declares its data cannot smuggle bytes past the space check.

    7-Zip decodes exactly the declared size, so the member's checksum (taken
    over all its data) fails and nothing is left behind.
    """
    liar = RarMember("liar.bin", b"x" * 10_000, declared_size=100)
    (root / "game.eti").write_bytes(rar4_archive([liar]))
    plan = plan_extraction(root)
    assert plan.total_bytes == 100
    message = "game.eti: cannot read archive at entry 'liar.bin': checksum mismatch"
    with pytest.raises(CorruptArchive, match=f"^{re.escape(message)}$"):
        extract(plan, dest)
    assert tree(dest) == {MARKER: b""}


def test_too_many_entries_are_refused(
    root: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry bound caps what the link checks keep in memory."""
    monkeypatch.setattr(extract_module, "MAX_ENTRIES", 3)
    files = {f"f{n}": b"" for n in range(4)}
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, files)})
    with pytest.raises(HostileArchive, match=r"^game\.eti: more than 3 entries$"):
        plan_extraction(root)
    assert MAX_ENTRIES == 1_000_000


# --- corrupt archives -----------------------------------------------------------------------


_rng = random.Random(7)
CORRUPT_CONTENT = [
    Member("a.bin", _rng.randbytes(1024)),
    Member("b.bin", _rng.randbytes(64_000)),
    Member("c.bin", _rng.randbytes(1024)),
]
# Deflate codes compressible data with Huffman blocks, where a flipped byte breaks the stream.
COMPRESSIBLE_CONTENT = [Member(f"{n}.txt", b"level data %d\n" % n * 5000) for n in range(3)]


def _flip(blob: bytes, fmt: ArchiveFormat) -> bytes:
    """Flip four bytes mid-archive where the format protects them.

    zip and 7z check every member's data CRC, so the data in the middle is hit.
    tar has no data checksum, and libarchive 3.6 does not check a stored RAR
    member's data CRC (later versions do), so for those the middle member's
    header is hit instead: its name, covered by the header checksum.
    """
    data = bytearray(blob)
    middle = len(data) // 2
    if fmt in (ArchiveFormat.TAR, ArchiveFormat.RAR4, ArchiveFormat.RAR5):
        middle = blob.index(b"b.bin")
    for offset in range(middle, middle + 4):
        data[offset] ^= 0xFF
    return bytes(data)


def _plan_and_extract(root: Path, dest: Path) -> None:
    extract(plan_extraction(root), dest)


@pytest.mark.parametrize("fmt", list(ArchiveFormat))
@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_corrupt_archives_fail_cleanly(
    fmt: ArchiveFormat, damage: str, root: Path, dest: Path
) -> None:
    """Flipped or truncated archives of every format raise CorruptArchive and leave nothing."""
    content = COMPRESSIBLE_CONTENT if fmt is ArchiveFormat.TAR_GZ else CORRUPT_CONTENT
    blob = build_archive(fmt, content)
    damaged = _flip(blob, fmt) if damage == "flipped" else blob[: len(blob) // 2]
    (root / "game.eti").write_bytes(damaged)
    with pytest.raises(CorruptArchive, match=r"^game\.eti: cannot read archive"):
        _plan_and_extract(root, dest)
    assert tree(dest) == {MARKER: b""}


@pytest.mark.parametrize("content", [b"", b"this is not an archive at all" * 10])
def test_files_that_are_no_archive_are_corrupt(content: bytes, root: Path) -> None:
    """An empty or foreign ``.eti`` is reported, with libarchive's reason."""
    (root / "game.eti").write_bytes(content)
    with pytest.raises(CorruptArchive, match=r"^game\.eti: cannot read archive: .+"):
        plan_extraction(root)


def test_a_truncated_volume_in_a_set_fails_cleanly(root: Path, dest: Path) -> None:
    """Damage in a later volume is reported against the set's first volume."""
    volumes = build_volumes(ArchiveFormat.RAR4, {"big.bin": os.urandom(20_000)}, 5_000)
    volumes[2] = volumes[2][:100]
    for number, volume in enumerate(volumes, 1):
        (root / f"game.part{number}.eti").write_bytes(volume)
    with pytest.raises(CorruptArchive, match=r"^game\.part1\.eti: cannot read archive"):
        _plan_and_extract(root, dest)
    assert tree(dest) == {MARKER: b""}


def test_a_missing_volume_is_reported_before_reading(root: Path) -> None:
    """A gap in ``.partN`` numbering is found from the names alone."""
    volumes = build_volumes(ArchiveFormat.RAR5, {"big.bin": os.urandom(9_000)}, 4_000)
    for number, volume in enumerate(volumes, 1):
        if number != 2:
            (root / f"game.part{number}.eti").write_bytes(volume)
    message = "game.part3.eti: volume game.part2.eti of its set is missing"
    with pytest.raises(CorruptArchive, match=f"^{re.escape(message)}$"):
        plan_extraction(root)


# --- space, progress, cancellation ------------------------------------------------------------


def test_not_enough_space_fails_early_naming_needed_and_available(root: Path, dest: Path) -> None:
    """The check runs before any write and names both numbers."""
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, FILES)})
    plan = dataclasses.replace(plan_extraction(root), total_bytes=1 << 60)
    needed = plan.space_needed
    pattern = (
        rf"^not enough free space in {re.escape(str(dest))}:"
        rf" needed {needed} bytes, available \d+ bytes$"
    )
    with pytest.raises(NotEnoughSpace, match=pattern) as info:
        extract(plan, dest)
    assert info.value.needed == needed
    assert 0 <= info.value.available < needed
    assert tree(dest) == {MARKER: b""}


def test_space_needed_adds_a_block_per_entry_and_the_safety_margin() -> None:
    """The check asks for the bytes, a filesystem block per entry and the named margin."""
    plan = ExtractionPlan((), total_bytes=1000, entry_count=3)
    assert plan.space_needed == (
        1000
        + 3 * extract_module.ENTRY_SPACE_ALLOWANCE_BYTES
        + extract_module.SPACE_SAFETY_MARGIN_BYTES
    )


def test_progress_is_throttled_monotonic_and_ends_at_the_total(
    root: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports come at least a step apart, only grow, and the last one is (total, total)."""
    step = 64 * 1024
    monkeypatch.setattr(extract_module, "PROGRESS_STEP_BYTES", step)
    files = {f"f{n}.bin": os.urandom(100_000) for n in range(10)}
    write_game_root(root, {"game.eti": (ArchiveFormat.ZIP, files)})
    plan = plan_extraction(root)
    reports: list[tuple[int, int]] = []
    extract(plan, dest, progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (plan.total_bytes, plan.total_bytes) == (1_000_000, 1_000_000)
    assert {total for _, total in reports} == {plan.total_bytes}
    done = [d for d, _ in reports]
    assert len(done) >= 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(done[:-1])]
    assert min(gaps) >= step
    assert done == sorted(done)


def test_should_stop_cancels_and_removes_what_was_extracted(
    root: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop request mid-way raises ExtractionCancelled; only the pre-existing marker remains."""
    monkeypatch.setattr(extract_module, "PROGRESS_STEP_BYTES", 1)
    files = {f"f{n}.bin": os.urandom(1000) for n in range(5)}
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, files)})
    plan = plan_extraction(root)
    polls: list[int] = []

    def stop_on_fourth_poll() -> bool:
        polls.append(1)
        return len(polls) >= 4

    with pytest.raises(ExtractionCancelled, match=r"^extraction was cancelled$"):
        extract(plan, dest, should_stop=stop_on_fourth_poll)
    assert len(polls) == 4
    assert tree(dest) == {MARKER: b""}


def test_extract_creates_a_missing_destination(root: Path, tmp_path: Path) -> None:
    """The staging folder is created when the caller has not made it yet."""
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, {"a": b"a"})})
    target = tmp_path / "fresh"
    extract(plan_extraction(root), target)
    assert tree(target) == {"a": b"a"}


# --- write failures and memory, in child processes ------------------------------------------


def _run_child(code: str, *, wrapper: list[str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter at the repository root; its stdout."""
    command = [*(wrapper or []), sys.executable, "-c", textwrap.dedent(code)]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


_EXTRACT_IN_CHILD = """
    from pathlib import Path
    from lanspread.install import extract as ex
    def attempt(root, dest):
        plan = ex.plan_extraction(Path(root))
        try:
            ex.extract(plan, Path(dest), progress=lambda done, total: None)
        except ex.ExtractionError as exc:
            print(type(exc).__name__, exc, sorted(p.name for p in Path(dest).iterdir()))
"""


def test_a_write_failure_is_an_extraction_error_and_cleans_up(root: Path, tmp_path: Path) -> None:
    """A file-size limit makes libarchive's write fail; we report the entry and remove it."""
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, {"big.bin": b"x" * 3_000_000})})
    dest = tmp_path / "dest"
    output = _run_child(
        _EXTRACT_IN_CHILD
        + f"""
    import resource, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
    attempt({str(root)!r}, {str(dest)!r})
    """
    )
    assert re.fullmatch(
        r"ExtractionError game\.eti: cannot write entry 'big\.bin': Write failed \[\]", output
    )


def test_a_disk_filling_up_mid_way_is_not_enough_space(root: Path, tmp_path: Path) -> None:
    """ENOSPC from a real (tmpfs) filesystem becomes NotEnoughSpace, and the partial game goes."""
    if not is_root():
        pytest.skip("mounting a small tmpfs needs root")
    unshare = require_tool("unshare")
    write_game_root(root, {"game.eti": (ArchiveFormat.TAR, {"big.bin": b"x" * 3_000_000})})
    mount = tmp_path / "small"
    mount.mkdir()
    mount_tmpfs = f"""
    import subprocess
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "none", {str(mount)!r}], check=True)
    """
    fill_after_check = f"""
    ex.SPACE_SAFETY_MARGIN_BYTES = 0
    real_check = ex._check_space
    def check_then_fill(root, needed):
        real_check(root, needed)
        # Something else takes the room once the check has passed.
        Path({str(mount)!r}, "other.bin").write_bytes(b"o" * 2_000_000)
    ex._check_space = check_then_fill
    attempt({str(root)!r}, {str(mount / "dest")!r})
    """
    code = mount_tmpfs + _EXTRACT_IN_CHILD + fill_after_check
    output = _run_child(code, wrapper=[unshare, "--mount"])
    assert re.fullmatch(
        rf"NotEnoughSpace disk full in {re.escape(str(mount))}/dest while writing entry"
        r" 'big\.bin' of game\.eti: Write failed \[\]",
        output,
    )


class _Zeros(io.RawIOBase):
    """A readable stream of ``size`` zero bytes, so the test never holds the payload."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self.left)
        view[:count] = bytes(count)
        self.left -= count
        return count


def test_extraction_streams_in_bounded_memory(root: Path, tmp_path: Path) -> None:
    """A 256 MiB entry extracts with far less than 256 MiB of extra resident memory."""
    size = 256 * 1024 * 1024
    with tarfile.open(root / "game.eti", "w") as archive:
        info = tarfile.TarInfo("huge.bin")
        info.size = size
        archive.addfile(info, io.BufferedReader(_Zeros(size)))
    dest = tmp_path / "dest"
    output = _run_child(
        f"""
        import resource
        from pathlib import Path
        from lanspread.install import extract as ex
        plan = ex.plan_extraction(Path({str(root)!r}))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ex.extract(plan, Path({str(dest)!r}))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(after - before, Path({str(dest)!r}, "huge.bin").stat().st_size)
        """
    )
    grown_kib, extracted = map(int, output.split())
    assert extracted == size
    assert grown_kib < 32 * 1024, f"resident memory grew by {grown_kib} KiB"
