"""The library scanner: the game-root rules on a real disk, and the index fast path."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from tests.support.platforms import make_fifo
from tests.support.trees import write_file

from lanspread.core.catalog import Catalog, parse_catalog
from lanspread.core.gameroot import MAX_VERSION_FILE_SIZE, EntryKind
from lanspread.core.install_record import make_record
from lanspread.core.library import Availability, GameSummary
from lanspread.errors import StorageError
from lanspread.files import version_ini
from lanspread.files.version_ini import COARSE_MTIME_WINDOW_NS, read_sentinel
from lanspread.storage import scanner as scanner_module
from lanspread.storage.index import INDEX_FILE_NAME, LibraryIndex
from lanspread.storage.scanner import (
    LibraryScanner,
    payload_size,
    read_root,
    root_unchanged,
    summarize,
)

AN_HOUR_NS = 3600 * 1_000_000_000
CATALOG_IDS = ("alpha", "beta", "gamma")


def make_catalog(*ids: str) -> Catalog:
    entries = "".join(
        f'[[game]]\nid = "{game_id}"\nname = "{game_id}"\nsize_bytes = 1\n'
        f'genre = "Test"\nmax_players = 2\n'
        for game_id in ids
    )
    return parse_catalog(entries, "<test>")


@dataclass
class Library:
    """A game directory, an index file and a catalog, with a settable scan clock."""

    game_dir: Path
    index_path: Path
    catalog: Catalog
    now_ns: int

    def clock(self) -> int:
        return self.now_ns

    def scanner(self, index: LibraryIndex | None = None) -> LibraryScanner:
        if index is None:
            index = LibraryIndex.load(self.index_path, self.game_dir)
        return LibraryScanner(self.game_dir, self.catalog, index, clock_ns=self.clock)

    def root(self, game_id: str) -> Path:
        path = self.game_dir / game_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def downloaded(self, game_id: str, version: str = "1.0") -> Path:
        root = self.root(game_id)
        write_file(root / "version.ini", f"[game]\nversion = {version}\n")
        write_file(root / f"{game_id}.eti", b"a" * 1000)
        return root


@pytest.fixture
def library(tmp_path: Path) -> Library:
    game_dir = tmp_path / "games"
    game_dir.mkdir()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    # An hour ahead of the files' mtimes: every observation is settled unless a
    # test moves the clock back.
    return Library(
        game_dir=game_dir,
        index_path=state_dir / INDEX_FILE_NAME,
        catalog=make_catalog(*CATALOG_IDS),
        now_ns=time.time_ns() + AN_HOUR_NS,
    )


@dataclass
class Calls:
    count: int = 0


@pytest.fixture
def sentinel_reads(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Counts every read of a ``version.ini`` by the scanner."""
    calls = Calls()
    real = version_ini.read_sentinel

    def counting(root: Path, now_ns: int) -> object:
        calls.count += 1
        return real(root, now_ns)

    monkeypatch.setattr(scanner_module, "read_sentinel", counting)
    return calls


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Counts every full listing of a game root by the scanner."""
    calls = Calls()
    real = scanner_module.read_root

    def counting(game_dir: Path, game_id: str) -> object:
        calls.count += 1
        return real(game_dir, game_id)

    monkeypatch.setattr(scanner_module, "read_root", counting)
    return calls


# -- the rules ---------------------------------------------------------------


def test_downloaded_game_reports_version_and_payload_size(library: Library) -> None:
    """A root with a regular version.ini is Ready, with its version and payload bytes."""
    root = library.downloaded("alpha", "2.5")
    write_file(root / "redist" / "setup.bin", b"r" * 300)
    write_file(root / "redist" / "deep" / "more.bin", b"m" * 20)
    sentinel_size = (root / "version.ini").stat().st_size

    summary = library.scanner().scan_game("alpha")

    assert summary == GameSummary(
        id="alpha",
        availability=Availability.READY,
        version="2.5",
        installed=False,
        size_bytes=sentinel_size + 1000 + 300 + 20,
    )


def test_reserved_names_are_never_counted(library: Library) -> None:
    """local/, installer files and sentinel transients add nothing to the payload size."""
    root = library.downloaded("alpha")
    payload = payload_size(root, read_root(library.game_dir, "alpha").payload)  # type: ignore[union-attr]
    write_file(root / "local" / "game.exe", b"x" * 5000)
    write_file(root / ".local.installing" / "part", b"x" * 5000)
    write_file(root / ".local.backup" / "old", b"x" * 5000)
    write_file(root / ".sync" / "state", b"x" * 5000)
    write_file(root / ".lanspread.json", b"x" * 5000)
    write_file(root / ".softlan_game_installed", b"x" * 5000)
    write_file(root / ".version.ini.tmp", b"x" * 5000)
    write_file(root / ".version.ini.discarded", b"x" * 5000)
    write_file(root / ".lanspread.download.json", b"x" * 5000)

    summary = library.scanner().scan_game("alpha")

    assert summary is not None
    assert summary.installed
    assert summary.size_bytes == payload


def test_reserved_names_below_the_root_are_payload(library: Library) -> None:
    """Reserved names only mean something at the root: a nested ``local`` is counted."""
    root = library.downloaded("alpha")
    before = library.scanner().scan_game("alpha")
    write_file(root / "data" / "local" / "file.bin", b"n" * 70)

    after = library.scanner().scan_game("alpha")

    assert before is not None
    assert after is not None
    assert after.size_bytes == before.size_bytes + 70


def test_installed_without_sentinel_is_local_only(library: Library) -> None:
    """local/ as a real folder without version.ini: LocalOnly, no version, payload counted."""
    root = library.root("alpha")
    write_file(root / "local" / "game.exe", b"x" * 10)
    write_file(root / "leftover.eti", b"e" * 40)

    summary = library.scanner().scan_game("alpha")

    assert summary == GameSummary(
        id="alpha",
        availability=Availability.LOCAL_ONLY,
        version=None,
        installed=True,
        size_bytes=40,
    )


def test_downloaded_and_installed_is_ready_and_installed(library: Library) -> None:
    """Sentinel plus local/: Ready and installed at once."""
    root = library.downloaded("alpha", "3")
    (root / "local").mkdir()

    summary = library.scanner().scan_game("alpha")

    assert summary is not None
    assert (summary.availability, summary.installed, summary.version) == (
        Availability.READY,
        True,
        "3",
    )


def test_payload_without_sentinel_or_install_has_no_summary(library: Library) -> None:
    """Archives alone (an unfinished download) are neither downloaded nor installed."""
    write_file(library.root("alpha") / "alpha.eti", b"a" * 10)
    scanner = library.scanner()

    assert scanner.scan_game("alpha") is None
    assert scanner.scan_all() == {}
    assert "alpha" in scanner.index.ids()


def test_nested_version_ini_is_not_a_sentinel(library: Library) -> None:
    """Only a version.ini directly at the root marks a download."""
    write_file(library.root("alpha") / "sub" / "version.ini", "1.0")

    assert library.scanner().scan_game("alpha") is None


def test_symlinked_sentinel_is_not_a_sentinel(library: Library, tmp_path: Path) -> None:
    """A version.ini that is a symlink never counts, and its target is never read or sized."""
    target = write_file(tmp_path / "elsewhere.ini", "version = 9\n" + "x" * 100)
    root = library.root("alpha")
    (root / "version.ini").symlink_to(target)
    write_file(root / "alpha.eti", b"a" * 10)

    assert library.scanner().scan_game("alpha") is None
    assert read_sentinel(root, library.now_ns) is None


def test_version_ini_directory_is_not_a_sentinel(library: Library) -> None:
    """A folder named version.ini is not a regular file, so not a sentinel."""
    write_file(library.root("alpha") / "version.ini" / "inner", "1.0")

    assert library.scanner().scan_game("alpha") is None


def test_local_as_a_file_is_not_an_install(library: Library) -> None:
    """``local`` must be a real folder to count as installed."""
    root = library.downloaded("alpha")
    write_file(root / "local", b"not a folder")

    summary = library.scanner().scan_game("alpha")

    assert summary is not None
    assert not summary.installed


def test_local_as_a_symlink_is_not_an_install(library: Library, tmp_path: Path) -> None:
    """A symlink named ``local`` pointing at a folder is not an install."""
    (tmp_path / "real").mkdir()
    root = library.downloaded("alpha")
    (root / "local").symlink_to(tmp_path / "real")

    summary = library.scanner().scan_game("alpha")

    assert summary is not None
    assert not summary.installed


def test_symlinked_root_is_ignored(library: Library, tmp_path: Path) -> None:
    """A game root that is itself a symlink is invisible, even to a full scan."""
    real = tmp_path / "outside" / "alpha"
    write_file(real / "version.ini", "1.0")
    (library.game_dir / "alpha").symlink_to(real, target_is_directory=True)
    scanner = library.scanner()

    assert read_root(library.game_dir, "alpha") is None
    assert scanner.scan_game("alpha") is None
    assert scanner.scan_all() == {}
    assert scanner.index.ids() == frozenset()


def test_root_that_is_a_file_is_absent(library: Library) -> None:
    """A root replaced by a file reads as absent, and its old index entry is dropped."""
    library.downloaded("alpha")
    scanner = library.scanner()
    assert scanner.scan_all().keys() == {"alpha"}
    for child in sorted((library.game_dir / "alpha").iterdir()):
        child.unlink()
    (library.game_dir / "alpha").rmdir()
    write_file(library.game_dir / "alpha", b"now a file")

    assert read_root(library.game_dir, "alpha") is None
    assert scanner.scan_all() == {}
    assert scanner.index.ids() == frozenset()


def test_unlistable_root_is_absent_with_a_warning(
    library: Library, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A root the OS refuses to list (EACCES) reads as absent and says why."""
    library.downloaded("alpha")
    real_scandir = os.scandir

    def refuse(path: object) -> object:
        if isinstance(path, int):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", refuse)
    if not scanner_module._USE_DIR_FD:
        pytest.skip("listing by descriptor is the POSIX path")

    with caplog.at_level(logging.WARNING, logger="lanspread.storage.scanner"):
        assert read_root(library.game_dir, "alpha") is None

    assert f"game root {library.game_dir / 'alpha'} cannot be listed" in caplog.text


def test_non_catalog_root_is_invisible(library: Library) -> None:
    """A complete game folder whose name is not a catalog id never shows up."""
    library.downloaded("alpha")
    library.downloaded("not-in-catalog")
    scanner = library.scanner()

    assert scanner.scan_all().keys() == {"alpha"}
    assert scanner.scan_game("not-in-catalog") is None
    assert scanner.index.ids() == frozenset({"alpha"})


def test_oversized_version_ini_gives_unknown_version(library: Library) -> None:
    """A version.ini above MAX_VERSION_FILE_SIZE still marks a download, with no version."""
    root = library.root("alpha")
    write_file(root / "version.ini", "version = 7\n" + "#" * MAX_VERSION_FILE_SIZE)

    summary = library.scanner().scan_game("alpha")
    sentinel = read_sentinel(root, library.now_ns)

    assert summary is not None
    assert (summary.availability, summary.version) == (Availability.READY, None)
    assert sentinel is not None
    assert sentinel.contents == b""


def test_version_ini_at_the_size_limit_is_read(library: Library) -> None:
    """Exactly MAX_VERSION_FILE_SIZE bytes is still a sentinel we read."""
    text = "version = 7\n"
    write_file(
        library.root("alpha") / "version.ini", text + "#" * (MAX_VERSION_FILE_SIZE - len(text))
    )

    summary = library.scanner().scan_game("alpha")

    assert summary is not None
    assert summary.version == "7"


def test_utf16_version_ini_is_decoded(library: Library) -> None:
    """A version.ini saved as UTF-16 with a byte-order mark (Windows Notepad) is read."""
    write_file(library.root("alpha") / "version.ini", "version=4.2\r\n".encode("utf-16"))

    summary = library.scanner().scan_game("alpha")

    assert summary is not None
    assert summary.version == "4.2"


def test_empty_version_ini_is_downloaded_with_unknown_version(library: Library) -> None:
    """An empty sentinel still marks the download complete; the version is unknown."""
    write_file(library.root("alpha") / "version.ini", b"")

    summary = library.scanner().scan_game("alpha")

    assert summary is not None
    assert (summary.availability, summary.version, summary.size_bytes) == (
        Availability.READY,
        None,
        0,
    )


def test_links_inside_payload_are_not_followed(library: Library, tmp_path: Path) -> None:
    """Nested symlinks (to files or folders) count nothing and are never walked."""
    root = library.downloaded("alpha")
    base = library.scanner().scan_game("alpha")
    big = write_file(tmp_path / "big.bin", b"b" * 10_000)
    write_file(tmp_path / "tree" / "x.bin", b"x" * 10_000)
    (root / "data").mkdir()
    (root / "data" / "file-link").symlink_to(big)
    (root / "data" / "dir-link").symlink_to(tmp_path / "tree", target_is_directory=True)
    (root / "root-link.eti").symlink_to(big)

    summary = library.scanner().scan_game("alpha")

    assert base is not None
    assert summary is not None
    assert summary.size_bytes == base.size_bytes


def test_fifo_in_payload_counts_nothing(library: Library) -> None:
    """A special file at the root is recorded as OTHER and adds no bytes."""
    root = library.downloaded("alpha")
    base = library.scanner().scan_game("alpha")
    make_fifo(root / "pipe")

    listing = read_root(library.game_dir, "alpha")
    summary = library.scanner().scan_game("alpha")

    assert listing is not None
    assert {entry.name: entry.kind for entry in listing.payload}["pipe"] is EntryKind.OTHER
    assert base is not None
    assert summary is not None
    assert summary.size_bytes == base.size_bytes


def test_summarize_rules() -> None:
    """summarize: Ready only when downloaded, LocalOnly when only installed, else nothing."""
    from lanspread.core.gameroot import RootState

    ready = summarize("alpha", RootState(True, False, True), "1", 5)
    local_only = summarize("alpha", RootState(False, True, False), "ignored", 0)
    nothing = summarize("alpha", RootState(False, False, True), None, 9)

    assert ready == GameSummary("alpha", Availability.READY, "1", False, 5)
    assert local_only == GameSummary("alpha", Availability.LOCAL_ONLY, None, True, 0)
    assert nothing is None


# -- full scans ----------------------------------------------------------------


def test_scan_all_returns_every_catalog_game_with_a_summary(library: Library) -> None:
    """Each catalog game with a downloaded or installed root is returned, keyed by id."""
    library.downloaded("alpha", "1")
    library.downloaded("beta", "2")

    found = library.scanner().scan_all()

    assert {game_id: summary.version for game_id, summary in found.items()} == {
        "alpha": "1",
        "beta": "2",
    }


def test_scan_all_leaves_skipped_games_alone(library: Library, listings: Calls) -> None:
    """Skipped ids are not read, not returned, and keep their index entry."""
    library.downloaded("alpha")
    library.downloaded("beta")
    scanner = library.scanner()
    scanner.scan_all()
    kept = scanner.index.get("beta")
    write_file(library.game_dir / "beta" / "new.eti", b"n")
    listings.count = 0

    found = scanner.scan_all(skip={"beta"})

    assert found.keys() == {"alpha"}
    assert scanner.index.get("beta") is kept
    assert listings.count == 0


def test_scan_all_drops_entries_of_removed_games(library: Library) -> None:
    """An index entry for a root that disappeared is dropped and the index saved."""
    library.downloaded("alpha")
    library.downloaded("beta")
    library.scanner().scan_all()
    for child in sorted((library.game_dir / "beta").iterdir()):
        child.unlink()
    (library.game_dir / "beta").rmdir()

    library.scanner().scan_all()

    assert LibraryIndex.load(library.index_path, library.game_dir).ids() == {"alpha"}


def test_scan_all_without_game_dir_raises(library: Library) -> None:
    """A game directory that cannot be listed is a StorageError, not an empty library."""
    missing = library.game_dir / "gone"
    scanner = LibraryScanner(
        missing, library.catalog, LibraryIndex(library.index_path, missing), clock_ns=library.clock
    )

    with pytest.raises(StorageError) as caught:
        scanner.scan_all()

    assert str(caught.value) == f"cannot list game directory {missing}: No such file or directory"


def test_scan_all_saves_the_index_once_and_only_when_changed(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan that changed entries writes the index once; an unchanged rescan writes nothing."""
    library.downloaded("alpha")
    library.downloaded("beta")
    saves = Calls()
    real_save = LibraryIndex.save

    def counting_save(self: LibraryIndex) -> None:
        saves.count += 1
        real_save(self)

    monkeypatch.setattr(LibraryIndex, "save", counting_save)
    scanner = library.scanner()

    scanner.scan_all()
    assert saves.count == 1
    scanner.scan_all()
    assert saves.count == 1
    assert LibraryIndex.load(library.index_path, library.game_dir).ids() == {"alpha", "beta"}


def test_index_save_failure_does_not_fail_the_scan(
    library: Library, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A disk that refuses the index write only costs a warning; the scan still answers."""
    library.downloaded("alpha")

    def refuse(self: LibraryIndex) -> None:
        raise StorageError("cannot write index: No space left on device")

    monkeypatch.setattr(LibraryIndex, "save", refuse)
    with caplog.at_level(logging.WARNING, logger="lanspread.storage.scanner"):
        found = library.scanner().scan_all()

    assert found.keys() == {"alpha"}
    assert "library index not saved: cannot write index: No space left on device" in caplog.text


def test_scan_game_updates_the_entry_and_flush_persists_it(library: Library) -> None:
    """scan_game changes the in-memory entry; flush (or the next full scan) writes it."""
    library.downloaded("alpha", "1")
    scanner = library.scanner()
    scanner.scan_all()
    write_file(library.game_dir / "alpha" / "version.ini", "version = 22\n")

    summary = scanner.scan_game("alpha")
    on_disk_before = LibraryIndex.load(library.index_path, library.game_dir).get("alpha")
    scanner.flush()
    on_disk_after = LibraryIndex.load(library.index_path, library.game_dir).get("alpha")

    assert summary is not None
    assert summary.version == "22"
    assert on_disk_before is not None
    assert on_disk_before.summary is not None
    assert on_disk_before.summary.version == "1"
    assert on_disk_after is not None
    assert on_disk_after.summary == summary


def test_scan_game_promotes_local_only_to_ready(library: Library) -> None:
    """An installed game that gains a root version.ini becomes Ready, still installed."""
    root = library.root("alpha")
    (root / "local").mkdir()
    scanner = library.scanner()
    first = scanner.scan_game("alpha")
    write_file(root / "version.ini", "version = 5\n")

    second = scanner.scan_game("alpha")

    assert first is not None
    assert first.availability is Availability.LOCAL_ONLY
    assert second is not None
    assert (second.availability, second.installed, second.version) == (
        Availability.READY,
        True,
        "5",
    )


# -- the warm path ---------------------------------------------------------------


def test_warm_scan_reuses_entries_without_reading(
    library: Library, sentinel_reads: Calls, listings: Calls
) -> None:
    """With a loaded index and nothing changed, no version.ini is read and no root listed."""
    for game_id in CATALOG_IDS:
        write_file(library.downloaded(game_id) / "redist" / "x.bin", b"x" * 10)
    cold = library.scanner().scan_all()
    assert sentinel_reads.count == len(CATALOG_IDS)
    sentinel_reads.count = listings.count = 0

    warm = library.scanner().scan_all()

    assert warm == cold
    assert sentinel_reads.count == 0
    expected_listings = 0 if scanner_module._USE_DIR_FD else len(CATALOG_IDS)
    assert listings.count == expected_listings


def _touch(path: Path, delta_ns: int) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + delta_ns))


def test_changed_archive_size_invalidates(library: Library) -> None:
    """An archive grown in place (same name, no root change) is noticed by the warm scan."""
    root = library.downloaded("alpha")
    scanner = library.scanner()
    before = scanner.scan_all()["alpha"]
    with open(root / "alpha.eti", "ab") as handle:
        handle.write(b"more")

    after = scanner.scan_all()["alpha"]

    assert after.size_bytes == before.size_bytes + 4


def test_changed_archive_mtime_invalidates(library: Library, sentinel_reads: Calls) -> None:
    """An archive whose mtime moved (same size) sends the game down the cold path."""
    root = library.downloaded("alpha")
    scanner = library.scanner()
    scanner.scan_all()
    sentinel_reads.count = 0
    _touch(root / "alpha.eti", 1_000_000)

    scanner.scan_all()

    assert sentinel_reads.count == 1


def test_nested_folder_change_invalidates(library: Library) -> None:
    """A file added to a nested payload folder moves that folder's mtime: cold read."""
    root = library.downloaded("alpha")
    write_file(root / "redist" / "a.bin", b"a")
    scanner = library.scanner()
    before = scanner.scan_all()["alpha"]
    write_file(root / "redist" / "b.bin", b"bb")
    _touch(root / "redist", 1)  # in case the addition landed in the same tick

    after = scanner.scan_all()["alpha"]

    assert after.size_bytes == before.size_bytes + 2


def test_added_root_entry_invalidates(library: Library) -> None:
    """A new archive at the root is noticed even though no known entry changed."""
    root = library.downloaded("alpha")
    scanner = library.scanner()
    before = scanner.scan_all()["alpha"]
    write_file(root / "extra.eti", b"e" * 33)
    _touch(root, 1)  # in case the addition landed in the same tick

    after = scanner.scan_all()["alpha"]

    assert after.size_bytes == before.size_bytes + 33


def test_removed_sentinel_invalidates(library: Library) -> None:
    """Deleting version.ini turns a Ready game into no summary at the next warm scan."""
    root = library.downloaded("alpha")
    scanner = library.scanner()
    assert scanner.scan_all().keys() == {"alpha"}
    (root / "version.ini").unlink()
    _touch(root, 1)

    assert scanner.scan_all() == {}


def test_same_size_version_rewrite_is_noticed(library: Library) -> None:
    """A same-length rewrite of version.ini within the same mtime is caught.

    The scan clock sits right after the write, so the sentinel is unsettled and
    read again; the rewrite keeps size and mtime exactly.
    """
    root = library.downloaded("alpha", "1.0")
    sentinel = root / "version.ini"
    info = sentinel.stat()
    library.now_ns = info.st_mtime_ns + COARSE_MTIME_WINDOW_NS // 2
    scanner = library.scanner()
    assert scanner.scan_all()["alpha"].version == "1.0"

    sentinel.write_text("[game]\nversion = 2.0\n")
    os.utime(sentinel, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.utime(root, ns=(root.stat().st_atime_ns, root.stat().st_mtime_ns))
    assert sentinel.stat().st_size == info.st_size

    assert scanner.scan_all()["alpha"].version == "2.0"


def test_unsettled_sentinel_settles_after_the_window(
    library: Library, sentinel_reads: Calls
) -> None:
    """An unsettled sentinel is re-read once after the window, then trusted from the index."""
    root = library.downloaded("alpha")
    mtime = (root / "version.ini").stat().st_mtime_ns
    library.now_ns = mtime
    scanner = library.scanner()
    scanner.scan_all()
    library.now_ns = mtime + COARSE_MTIME_WINDOW_NS
    sentinel_reads.count = 0

    scanner.scan_all()
    reads_while_settling = sentinel_reads.count
    scanner.scan_all()

    entry = scanner.index.get("alpha")
    assert entry is not None
    assert entry.fingerprint.sentinel is not None
    assert entry.fingerprint.sentinel.settled
    assert (reads_while_settling, sentinel_reads.count) == (1, 1)


def test_unsettled_root_is_listed_again(library: Library, listings: Calls) -> None:
    """A root listed within the coarse window of its mtime is not trusted without a listing."""
    root = library.downloaded("alpha")
    library.now_ns = root.stat().st_mtime_ns
    scanner = library.scanner()
    scanner.scan_all()
    listings.count = 0

    scanner.scan_all()

    assert listings.count == 1


def test_root_unchanged_requires_a_settled_fingerprint(library: Library) -> None:
    """root_unchanged answers True only for a settled fingerprint of an untouched root."""
    root = library.downloaded("alpha")
    scanner = library.scanner()
    scanner.scan_all()
    entry = scanner.index.get("alpha")
    assert entry is not None
    unsettled = entry.fingerprint.__class__(
        entries=entry.fingerprint.entries,
        sentinel=entry.fingerprint.sentinel,
        local_is_dir=entry.fingerprint.local_is_dir,
        root_mtime_ns=entry.fingerprint.root_mtime_ns,
        root_settled=False,
    )

    assert root_unchanged(root, entry.fingerprint) is scanner_module._USE_DIR_FD
    assert root_unchanged(root, unsettled) is False
    assert root_unchanged(library.game_dir / "missing", entry.fingerprint) is False


def test_index_of_another_game_dir_is_not_reused(
    library: Library, sentinel_reads: Calls, tmp_path: Path
) -> None:
    """Switching the game directory starts from an empty index: every root read cold."""
    library.downloaded("alpha")
    library.scanner().scan_all()
    other = tmp_path / "other-games"
    write_file(other / "alpha" / "version.ini", "version = 8\n")
    sentinel_reads.count = 0

    index = LibraryIndex.load(library.index_path, other)
    found = LibraryScanner(other, library.catalog, index, clock_ns=library.clock).scan_all()

    assert found["alpha"].version == "8"
    assert sentinel_reads.count == 1


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda root: (root / "local").mkdir(), id="installed"),
        pytest.param(lambda root: write_file(root / ".lanspread.json", b"{}"), id="reserved-added"),
    ],
)
def test_root_level_changes_reach_the_summary(
    library: Library, mutate: Callable[[Path], object]
) -> None:
    """Changes outside the payload (local/, reserved files) still reach the next scan."""
    root = library.downloaded("alpha")
    scanner = library.scanner()
    before = scanner.scan_all()["alpha"]
    mutate(root)
    _touch(root, 1)

    after = scanner.scan_all()["alpha"]

    expected_installed = (root / "local").is_dir()
    assert after.installed is expected_installed
    assert after.size_bytes == before.size_bytes


# -- the install record --------------------------------------------------------


def _record(root: Path, version: str | None, *, installed: bool = True) -> None:
    record = make_record(root.name, version, [], installed=installed)
    tmp = root / ".lanspread.install.json.new"
    tmp.write_bytes(msgspec.json.encode(record))
    tmp.replace(root / ".lanspread.install.json")


def test_installed_version_comes_from_the_record(library: Library) -> None:
    """The installed version is the record's, even when version.ini says another."""
    root = library.downloaded("alpha", "2.0")
    (root / "local").mkdir()
    _record(root, "1.0")
    summary = library.scanner().scan_game("alpha")
    assert summary is not None
    assert (summary.version, summary.installed, summary.installed_version) == ("2.0", True, "1.0")


def test_a_replaced_record_is_seen_even_when_the_root_listing_looks_the_same(
    library: Library, listings: Calls
) -> None:
    """A record renamed into place is a new inode: the stored summary is not reused."""
    root = library.downloaded("alpha", "2.0")
    (root / "local").mkdir()
    _record(root, "1.0")
    scanner = library.scanner()
    scanner.scan_game("alpha")
    library.now_ns = time.time_ns()  # the root's mtime is now unsettled: it is listed again
    _record(root, "2.0")
    summary = scanner.scan_game("alpha")
    assert summary is not None
    assert summary.installed_version == "2.0"


def test_a_local_dir_of_kept_files_is_not_an_install(library: Library) -> None:
    """local/ holding only the files a keep-saves uninstall left is not installed."""
    root = library.downloaded("alpha", "1.0")
    write_file(root / "local" / "saves" / "slot1.sav", b"save")
    _record(root, None, installed=False)
    summary = library.scanner().scan_game("alpha")
    assert summary is not None
    assert (summary.installed, summary.installed_version) == (False, None)


def test_a_broken_record_costs_only_the_version_label(
    library: Library, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupt record is logged and the game still shows as installed, version unknown."""
    root = library.downloaded("alpha", "1.0")
    (root / "local").mkdir()
    write_file(root / ".lanspread.install.json", b"{broken")
    with caplog.at_level(logging.WARNING):
        summary = library.scanner().scan_game("alpha")
    assert summary is not None
    assert (summary.installed, summary.installed_version) == (True, None)
    assert "install record" in caplog.text
