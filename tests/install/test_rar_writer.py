"""The test suite's RAR writer produces archives that libarchive really reads."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import libarchive
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libarchive import ffi
from libarchive.entry import ArchiveEntry
from tests.support.rar import (
    FIXED_MTIME,
    RAR4_SIGNATURE,
    RAR5_SIGNATURE,
    RarKind,
    RarMember,
    rar4_archive,
    rar4_volumes,
    rar5_archive,
    rar5_volumes,
)

Listing = list[tuple[str, str, bytes, int, int, str | None]]

WRITERS = {"rar4": rar4_archive, "rar5": rar5_archive}
VOLUME_WRITERS = {"rar4": rar4_volumes, "rar5": rar5_volumes}
FORMAT_NAMES = {"rar4": "RAR", "rar5": "RAR5"}


def _kind(entry: ArchiveEntry) -> str:
    if entry.isdir:
        return "dir"
    if entry.issym:
        return "symlink"
    if entry.islnk:
        return "hardlink"
    if entry.ischr:
        return "char-device"
    if entry.isfifo:
        return "fifo"
    return "file"


def _collect(archive: Iterator[ArchiveEntry]) -> Listing:
    listing: Listing = []
    for entry in archive:
        data = b"".join(entry.get_blocks()) if entry.isreg and not entry.islnk else b""
        listing.append(
            (entry.pathname, _kind(entry), data, entry.perm, entry.mtime, entry.linkpath)
        )
    return listing


def read_memory(blob: bytes) -> tuple[str, Listing]:
    """libarchive's view of one archive: format name and every entry with its bytes."""
    with libarchive.memory_reader(blob) as archive:
        listing = _collect(archive)
        return archive.format_name.decode(), listing


@contextmanager
def _volume_reader(paths: Sequence[Path]) -> Iterator[Iterator[ArchiveEntry]]:
    archive_p = ffi.read_new()
    try:
        ffi.get_read_format_function("all")(archive_p)
        names = (ctypes.c_char_p * (len(paths) + 1))(*map(os.fsencode, paths), None)
        opener = ffi.libarchive.archive_read_open_filenames
        opener.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t]
        assert opener(archive_p, names, 65536) == ffi.ARCHIVE_OK
        yield iter(libarchive.read.ArchiveRead(archive_p))
    finally:
        ffi.read_free(archive_p)


def read_volumes(tmp_path: Path, volumes: list[bytes]) -> Listing:
    """libarchive's view of a volume set opened as one archive over several files."""
    paths = []
    for number, blob in enumerate(volumes, 1):
        path = tmp_path / f"set.part{number}.rar"
        path.write_bytes(blob)
        paths.append(path)
    with _volume_reader(paths) as archive:
        return _collect(archive)


SAMPLE = [
    RarMember("bin", kind=RarKind.DIR, mode=0o755),
    RarMember("bin/run.sh", b"#!/bin/sh\necho hi\n", mode=0o755),
    RarMember("data/blob.bin", bytes(range(256)) * 64),
    RarMember("data/empty", b""),
    RarMember("naïve/été.txt", "ünïcode".encode()),
    RarMember("run", kind=RarKind.SYMLINK, mode=0o777, link_target="bin/run.sh"),
]
EXPECTED: Listing = [
    ("bin", "dir", b"", 0o755, FIXED_MTIME, None),
    ("bin/run.sh", "file", b"#!/bin/sh\necho hi\n", 0o755, FIXED_MTIME, None),
    ("data/blob.bin", "file", bytes(range(256)) * 64, 0o644, FIXED_MTIME, None),
    ("data/empty", "file", b"", 0o644, FIXED_MTIME, None),
    ("naïve/été.txt", "file", "ünïcode".encode(), 0o644, FIXED_MTIME, None),
    ("run", "symlink", b"", 0o777, FIXED_MTIME, "bin/run.sh"),
]


@pytest.mark.parametrize("version", ["rar4", "rar5"])
def test_libarchive_lists_and_reads_every_member_byte_for_byte(version: str) -> None:
    """Folders, files (with modes and times), Unicode names and symlinks read back as written."""
    format_name, listing = read_memory(WRITERS[version](SAMPLE))
    assert format_name == FORMAT_NAMES[version]
    assert listing == EXPECTED


def test_rar4_starts_with_the_marker_block_and_rar5_with_its_signature() -> None:
    """Each writer emits its format's signature, so content sniffing picks the right reader."""
    assert rar4_archive([]).startswith(RAR4_SIGNATURE)
    assert rar5_archive([]).startswith(RAR5_SIGNATURE)


@pytest.mark.parametrize("version", ["rar4", "rar5"])
def test_the_writer_is_deterministic(version: str) -> None:
    """The same members always give the same bytes (fixtures can be compared and cached)."""
    assert WRITERS[version](SAMPLE) == WRITERS[version](list(SAMPLE))


def test_rar5_stores_hard_links_and_devices() -> None:
    """RAR 5 redirection records give hard links; Unix modes give devices and FIFOs."""
    members = [
        RarMember("a", b"payload"),
        RarMember("b", kind=RarKind.HARDLINK, link_target="a"),
        RarMember("tty", kind=RarKind.CHAR_DEVICE),
        RarMember("pipe", kind=RarKind.FIFO),
    ]
    _, listing = read_memory(rar5_archive(members))
    assert [(name, kind, link) for name, kind, _, _, _, link in listing] == [
        ("a", "file", None),
        ("b", "hardlink", "a"),
        ("tty", "char-device", None),
        ("pipe", "fifo", None),
    ]


def test_rar4_refuses_hard_links() -> None:
    """RAR 4 has no hard links; the writer says so instead of writing something else."""
    with pytest.raises(ValueError, match=r"^RAR 4 cannot store hard links$"):
        rar4_archive([RarMember("b", kind=RarKind.HARDLINK, link_target="a")])


@pytest.mark.parametrize("version", ["rar4", "rar5"])
def test_a_multi_volume_set_reads_as_one_archive(version: str, tmp_path: Path) -> None:
    """Members cut across volumes come back whole, each exactly once, in order."""
    members = [
        RarMember("big.bin", os.urandom(10_000)),
        RarMember("link", kind=RarKind.SYMLINK, mode=0o777, link_target="big.bin"),
        RarMember("small.txt", b"small"),
        RarMember("last.bin", os.urandom(5_000)),
    ]
    volumes = VOLUME_WRITERS[version](members, 3_000)
    assert len(volumes) >= 5
    listing = read_volumes(tmp_path, volumes)
    assert [(name, data) for name, _, data, _, _, _ in listing] == [
        ("big.bin", members[0].data),
        ("link", b""),
        ("small.txt", b"small"),
        ("last.bin", members[3].data),
    ]


@pytest.mark.parametrize("version", ["rar4", "rar5"])
def test_a_file_ending_exactly_at_a_volume_boundary_still_reads(
    version: str, tmp_path: Path
) -> None:
    """The next member starts in the same volume, as RAR does, so readers never lose it."""
    members = [RarMember("a", b"x" * 2_000), RarMember("b", b"y" * 1_500)]
    listing = read_volumes(tmp_path, VOLUME_WRITERS[version](members, 1_000))
    assert [(name, data) for name, _, data, _, _, _ in listing] == [
        ("a", b"x" * 2_000),
        ("b", b"y" * 1_500),
    ]


@pytest.mark.parametrize("version", ["rar4", "rar5"])
def test_volume_writer_refuses_a_set_that_fits_one_volume(version: str) -> None:
    """A "multi-volume" set of one volume would test nothing; the writer refuses it."""
    with pytest.raises(ValueError, match=r"^the members fit in one volume"):
        VOLUME_WRITERS[version]([RarMember("a", b"x")], 1_000)
    with pytest.raises(ValueError, match=r"^volume_data_size must be positive$"):
        VOLUME_WRITERS[version]([RarMember("a", b"x")], 0)


_names = st.text(alphabet="abcdefgh_-éü0123456789", min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.dictionaries(
        st.lists(_names, min_size=1, max_size=3).map("/".join),
        st.binary(max_size=3000),
        min_size=1,
        max_size=6,
    ),
    version=st.sampled_from(["rar4", "rar5"]),
)
def test_any_set_of_files_round_trips(files: dict[str, bytes], version: str) -> None:
    """Whatever names and bytes go in, libarchive reads back exactly those files."""
    members = [RarMember(name, data) for name, data in sorted(files.items())]
    _, listing = read_memory(WRITERS[version](members))
    assert {name: data for name, _, data, _, _, _ in listing} == files
