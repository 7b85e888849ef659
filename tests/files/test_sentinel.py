"""The version.ini sentinel transaction: park, commit through a temp file, roll back."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.download_roots import (
    GAME_ID,
    SENTINEL_TEXT,
    build_manifest,
    fill_disk,
    game_files,
    mounted_tmpfs,
    write_all_chunks,
)
from tests.support.install_roots import Snapshot, snapshot
from tests.support.ownership import record_as_downloaded
from tests.support.trees import write_tree

from lanspread.core.gameroot import MAX_VERSION_FILE_SIZE, OWNERSHIP_FILE
from lanspread.download.prepare import prepare_game_storage
from lanspread.errors import StorageError
from lanspread.files.atomic import DiskFull
from lanspread.files.ownership import claim_download, identify
from lanspread.files.sentinel import (
    COMMIT_STEPS,
    DROP_PARKED,
    RENAME_SENTINEL,
    WRITE_TMP,
    begin_update,
    commit_sentinel,
    rollback,
)
from lanspread.install.sweep import discard_download

OLD_SENTINEL = b"version = 1.0\n"


def _without_record(tree: Snapshot) -> Snapshot:
    return {path: data for path, data in tree.items() if path != OWNERSHIP_FILE}


def _names(root: Path) -> set[str]:
    return {child.name for child in root.iterdir()}


# --- begin_update --------------------------------------------------------------------------


def test_begin_update_parks_the_sentinel_with_its_bytes(root: Path) -> None:
    """The old version.ini moves to .version.ini.discarded: the root is no longer downloaded."""
    (root / "version.ini").write_bytes(OLD_SENTINEL)
    assert begin_update(root)
    assert not (root / "version.ini").exists()
    assert (root / ".version.ini.discarded").read_bytes() == OLD_SENTINEL


def test_begin_update_without_a_sentinel_parks_nothing(root: Path, tmp_path: Path) -> None:
    """A fresh download (no sentinel, or no root at all) parks nothing and creates nothing."""
    assert not begin_update(root)
    assert _names(root) == set()
    assert not begin_update(tmp_path / "games" / "missing")
    assert not (tmp_path / "games" / "missing").exists()


def test_begin_update_replaces_an_earlier_parked_sentinel(root: Path) -> None:
    """A parked file left by an earlier interrupted update is replaced by the current sentinel."""
    (root / ".version.ini.discarded").write_bytes(b"version = 0.9\n")
    (root / "version.ini").write_bytes(OLD_SENTINEL)
    assert begin_update(root)
    assert (root / ".version.ini.discarded").read_bytes() == OLD_SENTINEL


@pytest.mark.parametrize("kind", ["link", "folder"])
def test_begin_update_refuses_a_sentinel_that_is_not_a_regular_file(
    root: Path, tmp_path: Path, kind: str
) -> None:
    """A link or folder named version.ini is never a sentinel: it is not moved."""
    if kind == "link":
        (tmp_path / "target").write_bytes(OLD_SENTINEL)
        (root / "version.ini").symlink_to(tmp_path / "target")
    else:
        (root / "version.ini").mkdir()
    with pytest.raises(StorageError) as caught:
        begin_update(root)
    assert str(caught.value) == f"{root / 'version.ini'} is not a regular file; refusing to park it"
    assert _names(root) == {"version.ini"}


def test_begin_update_reports_an_uninspectable_sentinel(tmp_path: Path) -> None:
    """A root that is a file makes the sentinel path uninspectable: a StorageError."""
    not_a_root = tmp_path / "file"
    not_a_root.write_bytes(b"")
    with pytest.raises(StorageError) as caught:
        begin_update(not_a_root)
    assert str(caught.value) == f"cannot inspect {not_a_root / 'version.ini'}: Not a directory"


# --- commit_sentinel -------------------------------------------------------------------------


def test_commit_writes_the_sentinel_and_drops_the_transients(root: Path) -> None:
    """After a commit only version.ini remains: no temp file, no parked sentinel."""
    (root / "version.ini").write_bytes(OLD_SENTINEL)
    begin_update(root)
    commit_sentinel(root, SENTINEL_TEXT)
    assert snapshot(root) == {"version.ini": SENTINEL_TEXT}


def test_commit_runs_its_steps_in_order_with_the_documented_states(root: Path) -> None:
    """Each checkpoint sees what the previous durable step left: tmp, then rename, then drop."""
    (root / ".version.ini.discarded").write_bytes(OLD_SENTINEL)
    seen: list[tuple[str, dict[str, bytes | str]]] = []
    commit_sentinel(
        root, SENTINEL_TEXT, checkpoint=lambda step: seen.append((step, snapshot(root)))
    )
    assert [step for step, _ in seen] == list(COMMIT_STEPS)
    assert seen == [
        (WRITE_TMP, {".version.ini.discarded": OLD_SENTINEL}),
        (
            RENAME_SENTINEL,
            {".version.ini.discarded": OLD_SENTINEL, ".version.ini.tmp": SENTINEL_TEXT},
        ),
        (DROP_PARKED, {".version.ini.discarded": OLD_SENTINEL, "version.ini": SENTINEL_TEXT}),
    ]


def test_commit_never_writes_through_a_linked_temp_file(root: Path, tmp_path: Path) -> None:
    """A link planted at .version.ini.tmp is replaced, its target keeps its bytes."""
    outside = tmp_path / "outside"
    outside.write_bytes(b"not yours")
    (root / ".version.ini.tmp").symlink_to(outside)
    commit_sentinel(root, SENTINEL_TEXT)
    assert snapshot(root) == {"version.ini": SENTINEL_TEXT}
    assert outside.read_bytes() == b"not yours"


def test_commit_refuses_an_oversized_sentinel(root: Path) -> None:
    """A sentinel larger than any version.ini is a caller bug, refused before any write."""
    data = b"x" * (MAX_VERSION_FILE_SIZE + 1)
    with pytest.raises(ValueError, match="exceeds the limit") as caught:
        commit_sentinel(root, data)
    assert str(caught.value) == (
        f"a version.ini of {MAX_VERSION_FILE_SIZE + 1} bytes exceeds the limit of "
        f"{MAX_VERSION_FILE_SIZE}"
    )
    assert _names(root) == set()


def test_a_failed_rename_leaves_no_temp_and_the_root_not_downloaded(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename the disk refuses: no temp file stays behind, the parked sentinel stays."""
    (root / ".version.ini.discarded").write_bytes(OLD_SENTINEL)

    def refuse(self: Path, target: Path) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(StorageError) as caught:
        commit_sentinel(root, SENTINEL_TEXT)
    assert str(caught.value) == (
        f"cannot rename {root / '.version.ini.tmp'} to {root / 'version.ini'}: Permission denied"
    )
    assert _names(root) == {".version.ini.discarded"}


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    with mounted_tmpfs("4m") as mount_point:
        yield mount_point


def test_a_commit_on_a_full_disk_is_disk_full_with_no_temp_left(tmpfs: Path) -> None:
    """With no block left the temp file cannot be written: DiskFull, no temp, no sentinel."""
    root = tmpfs / GAME_ID
    root.mkdir()
    (root / ".version.ini.discarded").write_bytes(OLD_SENTINEL)
    fill_disk(tmpfs / "filler")
    with pytest.raises(DiskFull) as caught:
        commit_sentinel(root, SENTINEL_TEXT)
    assert str(caught.value).startswith(f"disk full while writing {root / '.version.ini.tmp'}")
    assert _names(root) == {".version.ini.discarded"}


def test_rollback_deletes_both_transients_and_nothing_else(root: Path) -> None:
    """The temp and parked sentinels the download claimed go; version.ini and payload are
    left for the discard."""
    files = {
        ".version.ini.tmp": b"half",
        ".version.ini.discarded": OLD_SENTINEL,
        "version.ini": SENTINEL_TEXT,
        "quake3.eti": b"payload",
    }
    write_tree(root, files)
    record_as_downloaded(root)
    rollback(root)
    assert _without_record(snapshot(root)) == {
        "version.ini": SENTINEL_TEXT,
        "quake3.eti": b"payload",
    }
    rollback(root)
    rollback(root.parent / "missing")


def test_rollback_never_deletes_the_players_files_of_those_names(root: Path) -> None:
    """Without an ownership record claiming them, files named like the transients stay."""
    files = {".version.ini.tmp": b"the player's", ".version.ini.discarded": b"also theirs"}
    write_tree(root, files)
    rollback(root)
    assert snapshot(root) == files


def test_rollback_leaves_a_folder_at_a_transient_name(root: Path) -> None:
    """A folder named like a transient is not ours to delete: the rollback leaves it."""
    (root / ".version.ini.tmp").mkdir()
    (root / ".version.ini.tmp" / "inside").write_bytes(b"x")
    record_as_downloaded(root)
    rollback(root)
    assert (root / ".version.ini.tmp" / "inside").read_bytes() == b"x"


def test_a_cancelled_update_of_an_installed_game_settles_as_local_only(root: Path) -> None:
    """Park, partial download, rollback and discard: local/ survives, the game is not downloaded."""
    (root / "version.ini").write_bytes(OLD_SENTINEL)
    (root / "quake3.eti").write_bytes(b"old archive")
    (root / "local").mkdir()
    (root / "local" / "save.sav").write_bytes(b"the user's own save")
    (root / ".lanspread.json").write_bytes(b"{}")
    record_as_downloaded(root)
    files = game_files()
    manifest = build_manifest(files)
    record = claim_download(root, manifest, adopt=True)
    begin_update(root)
    prepare_game_storage(root, manifest, margin=0, owned=record)
    identify(root, record)
    write_all_chunks(root, {"quake3.eti": files["quake3.eti"]})
    rollback(root)
    discard_download(root)
    assert snapshot(root) == {
        "local": "<dir>",
        "local/save.sav": b"the user's own save",
        ".lanspread.json": b"{}",
    }


def test_commit_never_replaces_a_version_ini_that_appeared_meanwhile(root: Path) -> None:
    """The download parked the old sentinel (or there was none): a version.ini that exists
    at commit time is someone else's and stays."""
    (root / "version.ini").write_bytes(b"the player's")
    with pytest.raises(StorageError) as caught:
        commit_sentinel(root, SENTINEL_TEXT)
    assert str(caught.value) == (
        f"{root / 'version.ini'} appeared during the download; not replacing it"
    )
    assert (root / "version.ini").read_bytes() == b"the player's"
