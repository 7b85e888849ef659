"""The download ownership record: claim before creating, identify, and delete only with proof."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest
from tests.support.download_roots import GAME_ID, build_manifest, game_files
from tests.support.install_roots import snapshot

from lanspread.core.gameroot import OWNERSHIP_FILE, OWNERSHIP_TMP_FILE
from lanspread.download.prepare import prepare_game_storage
from lanspread.files import ownership
from lanspread.files.ownership import (
    InTheWay,
    OwnershipRecord,
    claim_download,
    identify,
    identify_sentinel,
    is_ours,
    load_record,
    load_record_or_none,
    sweep_owned,
)
from lanspread.files.sentinel import commit_sentinel
from lanspread.platform.generation import file_generation
from lanspread.runtime.startup import sweep_orphans

FILES = game_files()
MANIFEST = build_manifest(FILES)


def _download_layout(root: Path) -> OwnershipRecord:
    """Claim, prepare and identify, as the downloader does before its first payload byte."""
    record = claim_download(root, MANIFEST, adopt=False)
    prepare_game_storage(root, MANIFEST, margin=0, owned=record)
    return identify(root, record)


def test_the_claim_is_durable_before_anything_is_created(game_dir: Path) -> None:
    """The record names every manifest path, folder and transient, and the root is created
    only to hold it: no payload file exists yet."""
    root = game_dir / GAME_ID
    record = claim_download(root, MANIFEST, adopt=False)
    assert record.root_created
    assert sorted(child.name for child in root.iterdir()) == [OWNERSHIP_FILE]
    assert load_record(root) == record
    claimed = {name.path for name in record.names}
    assert set(FILES) | {"maps", "maps/extra"} <= claimed
    assert ".lanspread.download.json" in claimed
    assert all(not name.identified for name in record.names)


def test_identify_records_the_inode_and_its_generation(game_dir: Path) -> None:
    """Once created, each payload file and folder is recorded by device, inode and generation."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    entry = record.get("quake3.eti")
    assert entry is not None
    info = os.lstat(root / "quake3.eti")
    assert (entry.dev, entry.ino) == (info.st_dev, info.st_ino)
    assert entry.generation == file_generation(root / "quake3.eti")
    assert load_record(root) == record


def test_a_players_file_at_a_manifest_path_refuses_a_fresh_download(game_dir: Path) -> None:
    """A partial USB copy at the archive's path is never written into: the claim refuses
    before creating or changing anything."""
    root = game_dir / GAME_ID
    root.mkdir()
    (root / "quake3.eti").write_bytes(b"copied from a USB stick")
    before = snapshot(root)
    with pytest.raises(InTheWay) as caught:
        claim_download(root, MANIFEST, adopt=False)
    assert str(caught.value) == (
        "quake3: quake3.eti already in the game folder and not created by lanspread; "
        "move it out of the game folder to download"
    )
    assert snapshot(root) == before


def test_an_update_adopts_the_manifest_paths_but_never_deletes_them(game_dir: Path) -> None:
    """An update of a ready game may rewrite the manifest's own files; a sweep keeps them."""
    root = game_dir / GAME_ID
    root.mkdir()
    (root / "quake3.eti").write_bytes(b"placed by hand")
    (root / "version.ini").write_bytes(b"version = 1\n")
    record = claim_download(root, MANIFEST, adopt=True)
    adopted = record.get("quake3.eti")
    assert adopted is not None
    assert adopted.adopted
    assert not is_ours(root, adopted)
    report = sweep_owned(root, record)
    assert "quake3.eti" not in report.removed
    assert (root / "quake3.eti").read_bytes() == b"placed by hand"
    assert (root / "version.ini").read_bytes() == b"version = 1\n"


def test_a_players_folder_on_a_manifest_path_is_used_but_never_recorded(game_dir: Path) -> None:
    """The player's own maps/ receives the download's files and survives the sweep with theirs."""
    root = game_dir / GAME_ID
    (root / "maps").mkdir(parents=True)
    (root / "maps" / "mine.bsp").write_bytes(b"the player's map")
    record = _download_layout(root)
    assert record.get("maps") is None
    assert record.get("maps/extra") is not None
    report = sweep_owned(root, record)
    assert report.removed == (
        "maps/empty.txt",
        "maps/extra",
        "maps/extra/dm1.eti",
        "quake3.eti",
        "quake3.part2.eti",
    )
    assert snapshot(root) == {"maps": "<dir>", "maps/mine.bsp": b"the player's map"}


def test_sweep_removes_the_root_only_if_the_download_created_it(game_dir: Path) -> None:
    """Created by the download and emptied: gone. The player's empty folder: kept."""
    created = game_dir / GAME_ID
    assert sweep_owned(created, _download_layout(created)).root_removed
    assert not created.exists()
    created.mkdir()
    report = sweep_owned(created, _download_layout(created))
    assert not report.root_removed
    assert list(created.iterdir()) == []


def test_a_replaced_file_with_the_same_inode_is_not_ours(game_dir: Path) -> None:
    """The player deleted our archive and wrote their own in its place: even when the file
    system reuses the inode number, the generation tells them apart."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    (root / "quake3.part2.eti").unlink()
    (root / "quake3.part2.eti").write_bytes(b"theirs")
    entry = record.get("quake3.part2.eti")
    assert entry is not None
    assert not is_ours(root, entry)
    report = sweep_owned(root, record)
    assert report.kept == ("quake3.part2.eti",)
    assert (root / "quake3.part2.eti").read_bytes() == b"theirs"


def test_a_file_grown_past_its_bound_is_not_ours(game_dir: Path) -> None:
    """A recorded file larger than the manifest allows was changed by someone else: kept."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    with open(root / "quake3.eti", "ab") as handle:
        handle.write(b"appended by the player")
    assert "quake3.eti" in sweep_owned(root, record).kept
    assert (root / "quake3.eti").exists()


def test_a_name_reached_through_a_link_is_not_ours(game_dir: Path, tmp_path: Path) -> None:
    """A recorded folder swapped for a link: nothing is deleted through it."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    outside = tmp_path / "outside"
    (outside / "extra").mkdir(parents=True)
    (outside / "extra" / "dm1.eti").write_bytes(b"outside the root")
    for name in ("maps/empty.txt", "maps/extra/dm1.eti"):
        (root / name).unlink()
    (root / "maps" / "extra").rmdir()
    (root / "maps").rmdir()
    (root / "maps").symlink_to(outside, target_is_directory=True)
    sweep_owned(root, record)
    assert (outside / "extra" / "dm1.eti").read_bytes() == b"outside the root"
    assert (root / "maps").is_symlink()


def test_a_foreign_record_is_never_trusted_or_replaced(game_dir: Path) -> None:
    """A file named like the record that is not ours proves nothing and stays as it is."""
    root = game_dir / GAME_ID
    root.mkdir()
    (root / OWNERSHIP_FILE).write_bytes(b"the player's notes")
    with pytest.raises(InTheWay) as caught:
        load_record(root)
    assert str(caught.value) == (
        f"{root / OWNERSHIP_FILE}: not valid JSON: JSON is malformed: invalid character (byte 4)"
    )
    assert load_record_or_none(root) is None
    with pytest.raises(InTheWay):
        claim_download(root, MANIFEST, adopt=False)
    assert (root / OWNERSHIP_FILE).read_bytes() == b"the player's notes"


def test_a_record_of_another_game_is_foreign(game_dir: Path) -> None:
    """A record copied from another game's folder proves nothing here."""
    record = _download_layout(game_dir / GAME_ID)
    other = game_dir / "doom"
    other.mkdir()
    (other / OWNERSHIP_FILE).write_bytes(msgspec.json.encode(record))
    with pytest.raises(InTheWay) as caught:
        load_record(other)
    assert str(caught.value) == f"{other / OWNERSHIP_FILE}: records game 'quake3', not 'doom'"


def test_a_players_temp_file_blocks_the_record_write(game_dir: Path) -> None:
    """The record's temp name held by the player's file is neither overwritten nor deleted."""
    root = game_dir / GAME_ID
    root.mkdir()
    (root / OWNERSHIP_TMP_FILE).write_bytes(b"the player's")
    with pytest.raises(InTheWay) as caught:
        claim_download(root, MANIFEST, adopt=False)
    assert str(caught.value) == (
        f"{root / OWNERSHIP_TMP_FILE} is not a file lanspread wrote; move it out of the game folder"
    )
    assert (root / OWNERSHIP_TMP_FILE).read_bytes() == b"the player's"


def test_a_crash_left_record_temp_of_ours_is_replaced(game_dir: Path) -> None:
    """A prefix of our own record (a kill mid-write) is recognised and replaced."""
    root = game_dir / GAME_ID
    root.mkdir()
    (root / OWNERSHIP_TMP_FILE).write_bytes(b'{"format":1,"game_id":"quak')
    claim_download(root, MANIFEST, adopt=False)
    assert not (root / OWNERSHIP_TMP_FILE).exists()
    assert load_record(root) is not None


def test_a_resumed_claim_keeps_identities_and_a_freed_name_is_claimed_afresh(
    game_dir: Path,
) -> None:
    """Claiming again keeps what is still ours; a name now free loses its stale identity."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    (root / "quake3.part2.eti").unlink()
    again = claim_download(root, MANIFEST, adopt=False)
    kept, freed = again.get("quake3.eti"), again.get("quake3.part2.eti")
    assert kept == record.get("quake3.eti")
    assert freed is not None
    assert not freed.identified


@pytest.mark.parametrize(
    "name",
    [".lanspread.download.json", ".lanspread.download.json.tmp", ".version.ini.tmp"],
)
def test_a_players_file_at_a_transient_name_refuses_the_download(game_dir: Path, name: str) -> None:
    """The journal and sentinel helpers replace and delete their names: the claim refuses
    to start while the player's file holds one, so those helpers never meet it."""
    root = game_dir / GAME_ID
    root.mkdir()
    (root / name).write_bytes(b"the player's")
    with pytest.raises(InTheWay) as caught:
        claim_download(root, MANIFEST, adopt=True)
    assert str(caught.value).startswith(f"quake3: {name} already in the game folder")
    assert (root / name).read_bytes() == b"the player's"


def test_a_version_ini_the_player_puts_in_a_downloading_root_survives(game_dir: Path) -> None:
    """The sentinel is created last by the commit: until it is identified no version.ini
    is ours, so a cancel keeps the player's."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    (root / "version.ini").write_bytes(b"v")
    report = sweep_owned(root, record)
    assert "version.ini" not in report.removed
    assert (root / "version.ini").read_bytes() == b"v"


def test_a_committed_sentinel_is_identified_and_swept(game_dir: Path) -> None:
    """Once the commit made it and identify recorded it, the sentinel is ours."""
    root = game_dir / GAME_ID
    _download_layout(root)
    commit_sentinel(root, FILES["version.ini"])
    record = load_record(root)
    assert record is not None
    record = identify(root, record)
    assert "version.ini" in sweep_owned(root, record).removed


def test_identify_releases_the_claims_of_names_never_made(game_dir: Path) -> None:
    """Preparation failed before creating a file: its claim goes, so a file the player
    later puts at that path is never taken for ours."""
    root = game_dir / GAME_ID
    record = claim_download(root, MANIFEST, adopt=False)
    released = identify(root, record)
    assert released.get("quake3.eti") is None
    assert released.get("version.ini") is not None
    assert released.get(".lanspread.download.json") is not None
    (root / "quake3.eti").write_bytes(b"the player's copy")
    sweep_owned(root, released)
    assert (root / "quake3.eti").read_bytes() == b"the player's copy"


class _Killed(BaseException):
    """Stands for a kill -9 between two deletions of a sweep."""


def test_a_sweep_cut_short_never_leaves_the_sentinel(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remove killed after its first deletion leaves no ``version.ini``: the root is no
    longer a downloaded game with archives missing, and the next start's orphan sweep
    (record, no sentinel, no journal) deletes the rest."""
    root = game_dir / GAME_ID
    _download_layout(root)
    commit_sentinel(root, FILES["version.ini"])
    record = load_record(root)
    assert record is not None
    record = identify(root, record)
    unlinked: list[str] = []

    def unlink_then_die(path: Path) -> None:
        if unlinked:
            raise _Killed
        unlinked.append(path.name)
        path.unlink()

    monkeypatch.setattr(ownership, "_unlink", unlink_then_die)
    with pytest.raises(_Killed):
        sweep_owned(root, record)
    assert unlinked == ["version.ini"]
    assert not (root / "version.ini").exists()
    monkeypatch.undo()
    assert sweep_orphans(root)
    assert not root.exists()


def test_a_sentinel_is_proven_ours_the_moment_its_rename_lands(game_dir: Path) -> None:
    """The commit records the temp file's identity before renaming it into place, so a
    kill right after the rename (no bookkeeping after it) still leaves a ``version.ini``
    that a remove deletes with everything else."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    commit_sentinel(
        root,
        FILES["version.ini"],
        on_written=lambda temp: identify_sentinel(root, record, temp),
    )
    recorded = load_record(root)
    assert recorded is not None
    sentinel = next(name for name in recorded.names if name.path == "version.ini")
    assert is_ours(root, sentinel)
    report = sweep_owned(root, recorded)
    assert "version.ini" in report.removed
    assert report.kept == ()
    assert not root.exists()


def test_a_players_sentinel_in_place_of_ours_is_never_proven(game_dir: Path) -> None:
    """The identity recorded is the temp file's: a ``version.ini`` the player puts in its
    place afterwards is a different file and is left alone."""
    root = game_dir / GAME_ID
    record = _download_layout(root)
    commit_sentinel(
        root,
        FILES["version.ini"],
        on_written=lambda temp: identify_sentinel(root, record, temp),
    )
    (root / "version.ini").unlink()
    (root / "version.ini").write_bytes(b"9.9\n")
    recorded = load_record(root)
    assert recorded is not None
    report = sweep_owned(root, recorded)
    assert report.kept == ("version.ini",)
    assert (root / "version.ini").read_bytes() == b"9.9\n"
