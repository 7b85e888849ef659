"""The install record through the transactions: written, carried across updates, dropped."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.install_roots import (
    CONFIG,
    KEPT,
    MY_CONFIG,
    NEW_FILES,
    OLD_INSTALL,
    OLD_SHIPPED,
    SAVE,
    UPDATED,
    FakeUnpacker,
    digests,
    downloaded_snapshot,
    installed_snapshot,
    make_root,
    recorded,
    snapshot,
)
from tests.support.trees import write_tree

from lanspread.core.install_record import Carry, CarryPlan
from lanspread.core.recovery import RecoveryOutcome
from lanspread.errors import InstallRecordCorrupt, InvalidGameState, StorageError
from lanspread.install.record import (
    carry_over,
    commit_pending_record,
    diff_tree,
    drop_record,
    read_record,
    write_pending_record,
)
from lanspread.install.sweep import recover_game_root
from lanspread.install.transaction import (
    COMMIT_RECORD,
    PROMOTE,
    UPDATE_STEPS,
    install_game,
    uninstall_game,
    update_game,
)


class InjectedFailure(RuntimeError):
    pass


def _fail_at(step: str) -> Callable[[str], None]:
    def checkpoint(name: str) -> None:
        if name == step:
            raise InjectedFailure(f"injected at {step}")

    return checkpoint


def _updatable(game_dir: Path) -> Path:
    """What a finished download of 2.0 leaves over a recorded 1.0 install."""
    return make_root(game_dir, installed=OLD_INSTALL, version="2.0", recorded=OLD_SHIPPED)


def test_install_records_every_extracted_file_and_the_version(tmp_path: Path) -> None:
    """The record lists each extracted file with its size and BLAKE3, and version.ini's version."""
    root = make_root(tmp_path, version="1.0")
    result = install_game(root, FakeUnpacker())
    record = read_record(root)
    assert record is not None
    assert (record.version, record.installed, result.version) == ("1.0", True, "1.0")
    assert {entry.path: entry.size for entry in record.files} == {
        path: len(data) for path, data in NEW_FILES.items()
    }
    assert recorded(root) == ("1.0", digests(NEW_FILES))
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [
        ".lanspread.install.json"
    ]


def test_update_keeps_saves_and_the_players_edited_config(tmp_path: Path) -> None:
    """The save survives, the edited shipped config is kept as .mine, and both are reported."""
    root = _updatable(tmp_path)
    result = update_game(root, FakeUnpacker())
    assert snapshot(root) == installed_snapshot(UPDATED, "2.0")
    assert recorded(root) == ("2.0", digests(NEW_FILES))
    assert result.kept == ("saves/slot1.sav",)
    assert result.renamed == (Carry(CONFIG, CONFIG + ".mine"),)


def test_a_second_update_keeps_the_first_mine_and_adds_the_next(tmp_path: Path) -> None:
    """An earlier .mine is the player's file; a new edit goes to .mine.1."""
    root = _updatable(tmp_path)
    update_game(root, FakeUnpacker())
    write_tree(root / "local", {CONFIG: b"bind r +fwd"})
    result = update_game(root, FakeUnpacker())
    assert (root / "local" / (CONFIG + ".mine")).read_bytes() == MY_CONFIG[CONFIG]
    assert (root / "local" / (CONFIG + ".mine.1")).read_bytes() == b"bind r +fwd"
    assert result.renamed == (Carry(CONFIG, CONFIG + ".mine.1"),)


@pytest.mark.parametrize("step", UPDATE_STEPS[: UPDATE_STEPS.index(PROMOTE) + 1])
def test_a_failed_update_keeps_the_old_files_and_the_old_version(tmp_path: Path, step: str) -> None:
    """A failure before the commit leaves 1.0 installed and recorded as 1.0, save included."""
    root = _updatable(tmp_path)
    with pytest.raises(InjectedFailure, match=f"^injected at {step}$"):
        update_game(root, FakeUnpacker(), checkpoint=_fail_at(step))
    assert snapshot(root) == installed_snapshot(OLD_INSTALL, "2.0")
    assert recorded(root) == ("1.0", digests(OLD_SHIPPED))
    assert not (root / ".lanspread.install.next.json").exists()


def test_a_corrupt_archive_during_update_keeps_the_old_version(tmp_path: Path) -> None:
    """A failing unpacker (not a kill) rolls back to the recorded old install."""
    root = _updatable(tmp_path)
    with pytest.raises(StorageError, match=r"^fake archive is corrupt at baseq3/pak1.pk3$"):
        update_game(root, FakeUnpacker(fail_after=2))
    assert recorded(root) == ("1.0", digests(OLD_SHIPPED))
    assert snapshot(root) == installed_snapshot(OLD_INSTALL, "2.0")


def test_a_save_folder_the_new_version_has_as_a_file_refuses_the_update(tmp_path: Path) -> None:
    """When a player's file cannot be placed the update stops and changes nothing."""
    root = _updatable(tmp_path)
    with pytest.raises(
        InvalidGameState,
        match=(
            r"^quake3: cannot keep your file saves/slot1.sav: the new version has a file "
            r"named saves; your files are unchanged$"
        ),
    ):
        update_game(root, FakeUnpacker({**NEW_FILES, "saves": b"a file"}))
    assert snapshot(root) == installed_snapshot(OLD_INSTALL, "2.0")


def test_uninstall_drops_the_record(tmp_path: Path) -> None:
    """A plain uninstall deletes local/ and the record with it."""
    root = _updatable(tmp_path)
    uninstall_game(root)
    assert snapshot(root, with_record=True) == downloaded_snapshot("2.0")


def test_uninstall_keeping_saves_leaves_only_the_players_files(tmp_path: Path) -> None:
    """keep_saves deletes the shipped files and keeps the save and the edited config."""
    root = _updatable(tmp_path)
    result = uninstall_game(root, keep_saves=True)
    assert snapshot(root) == installed_snapshot(KEPT, "2.0")
    assert recorded(root) == (None, {})
    record = read_record(root)
    assert record is not None
    assert not record.installed
    assert result.kept == tuple(sorted(KEPT))


def test_uninstall_keeping_saves_with_nothing_to_keep_removes_local(tmp_path: Path) -> None:
    """With no player files, keep_saves ends like a plain uninstall."""
    root = make_root(tmp_path, installed=OLD_SHIPPED, recorded=OLD_SHIPPED)
    uninstall_game(root, keep_saves=True)
    assert snapshot(root, with_record=True) == downloaded_snapshot()


def test_installing_over_kept_files_brings_them_back(tmp_path: Path) -> None:
    """Install after a keep_saves uninstall carries the kept files into the new install."""
    root = _updatable(tmp_path)
    uninstall_game(root, keep_saves=True)
    result = install_game(root, FakeUnpacker())
    assert snapshot(root) == installed_snapshot(UPDATED, "2.0")
    assert recorded(root) == ("2.0", digests(NEW_FILES))
    assert result.kept == tuple(SAVE)


def test_install_over_a_real_install_is_still_refused(tmp_path: Path) -> None:
    """A local/ with an installed record is not overwritten by install."""
    root = _updatable(tmp_path)
    with pytest.raises(InvalidGameState, match=r"^quake3 is already installed$"):
        install_game(root, FakeUnpacker())


def test_diff_tree_reports_changed_missing_and_added(tmp_path: Path) -> None:
    """Verify's view: the edited config is changed, a deleted pak missing, the save added."""
    root = _updatable(tmp_path)
    (root / "local" / "baseq3" / "pak0.pk3").unlink()
    diff = diff_tree(root / "local", read_record(root))
    assert (diff.changed, diff.missing, diff.added) == (
        (CONFIG,),
        ("baseq3/pak0.pk3",),
        ("saves/slot1.sav",),
    )


def test_a_corrupt_record_is_refused_with_its_reason(tmp_path: Path) -> None:
    """A record that is not one is a clear error, never a crash."""
    root = make_root(tmp_path, installed=OLD_INSTALL)
    path = root / ".lanspread.install.json"
    path.write_bytes(b"{not json")
    with pytest.raises(InstallRecordCorrupt) as caught:
        read_record(root)
    assert str(caught.value) == (
        f"{path}: not valid JSON: JSON is malformed: object keys must be strings (byte 1)"
    )
    path.write_bytes(b'{"format": 1, "game_id": "quake3"}')
    with pytest.raises(InstallRecordCorrupt) as caught:
        read_record(root)
    assert str(caught.value) == (
        f"{path}: not an install record: Object missing required field `version`"
    )


def test_a_record_of_another_game_is_refused(tmp_path: Path) -> None:
    """A record naming another game id is not trusted."""
    other = make_root(tmp_path / "a", recorded=OLD_SHIPPED)
    root = make_root(tmp_path / "b", installed=OLD_INSTALL)
    data = (other / ".lanspread.install.json").read_bytes().replace(b'"quake3"', b'"doom"')
    (root / ".lanspread.install.json").write_bytes(data)
    with pytest.raises(InstallRecordCorrupt, match=r"records game 'doom', not 'quake3'$"):
        read_record(root)


def test_keeping_saves_needs_a_record(tmp_path: Path) -> None:
    """Without a record the player's files cannot be told apart: keep_saves is refused."""
    root = make_root(tmp_path, installed=OLD_INSTALL)
    with pytest.raises(
        InvalidGameState,
        match=(
            r"^quake3 has no install record, so its files cannot be told from yours; "
            r"repair it first, or uninstall without keep_saves$"
        ),
    ):
        uninstall_game(root, keep_saves=True)
    assert snapshot(root) == installed_snapshot(OLD_INSTALL)


def test_player_files_are_copied_where_hard_links_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a filesystem without hard links (FAT, exFAT) the save is copied instead."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    root = _updatable(tmp_path)
    update_game(root, FakeUnpacker())
    assert snapshot(root) == installed_snapshot(UPDATED, "2.0")


def test_recovery_drops_a_pending_record_no_transaction_owns(tmp_path: Path) -> None:
    """A pending record (and its temp file) with no intent is a leftover: recovery deletes it
    and keeps the committed record."""
    root = _updatable(tmp_path)
    ours = (root / ".lanspread.install.json").read_bytes()
    (root / ".lanspread.install.next.json").write_bytes(ours)
    (root / ".lanspread.install.next.json.tmp").write_bytes(ours[:20])
    recover_game_root(root)
    assert snapshot(root) == installed_snapshot(OLD_INSTALL, "2.0")
    assert recorded(root) == ("1.0", digests(OLD_SHIPPED))


_PLAYERS_BYTES = b"the player's own notes"


@pytest.mark.parametrize(
    "name", [".lanspread.install.next.json", ".lanspread.install.next.json.tmp"]
)
def test_recovery_keeps_the_players_file_at_a_pending_record_name(
    tmp_path: Path, name: str
) -> None:
    """A file the player made at a pending record name is no record of this game: every start's
    recovery leaves it exactly as it is."""
    root = _updatable(tmp_path)
    (root / name).write_bytes(_PLAYERS_BYTES)
    recover_game_root(root)
    assert (root / name).read_bytes() == _PLAYERS_BYTES
    assert recorded(root) == ("1.0", digests(OLD_SHIPPED))


def test_recovery_keeps_a_pending_record_of_another_game(tmp_path: Path) -> None:
    """A valid record naming another game is not this root's: recovery never deletes it."""
    root = _updatable(tmp_path)
    other = (root / ".lanspread.install.json").read_bytes().replace(b'"quake3"', b'"doom"')
    (root / ".lanspread.install.next.json").write_bytes(other)
    recover_game_root(root)
    assert (root / ".lanspread.install.next.json").read_bytes() == other


@pytest.mark.parametrize(
    "name",
    [
        ".lanspread.install.json",
        ".lanspread.install.next.json",
        ".lanspread.install.next.json.tmp",
    ],
)
def test_transactions_refuse_the_players_file_at_a_record_name(tmp_path: Path, name: str) -> None:
    """Install, update and uninstall would write, rename or drop the record files: a file the
    player made at one of those names refuses them all, and stays as it is."""
    root = make_root(tmp_path, installed=OLD_INSTALL, version="2.0")
    (root / name).write_bytes(_PLAYERS_BYTES)
    before = snapshot(root, with_record=True)
    message = (
        f"^quake3: {re.escape(name)} is not a file lanspread wrote; move it out of the game folder$"
    )
    with pytest.raises(InvalidGameState, match=message):
        update_game(root, FakeUnpacker())
    with pytest.raises(InvalidGameState, match=message):
        uninstall_game(root)
    with pytest.raises(InvalidGameState, match=message):
        uninstall_game(root, keep_saves=True)
    (root / "local").rename(root / "parked")
    with pytest.raises(InvalidGameState, match=message):
        install_game(root, FakeUnpacker())
    (root / "parked").rename(root / "local")
    assert snapshot(root, with_record=True) == before
    assert (root / name).read_bytes() == _PLAYERS_BYTES


def test_uninstall_never_drops_a_record_of_another_game(tmp_path: Path) -> None:
    """The record an uninstall drops must be this game's; one naming another game stays."""
    other = make_root(tmp_path / "a", recorded=OLD_SHIPPED)
    root = make_root(tmp_path / "b", installed=OLD_INSTALL)
    data = (other / ".lanspread.install.json").read_bytes().replace(b'"quake3"', b'"doom"')
    (root / ".lanspread.install.json").write_bytes(data)
    assert not drop_record(root)
    assert (root / ".lanspread.install.json").read_bytes() == data


def test_write_pending_record_refuses_the_players_temp_file(tmp_path: Path) -> None:
    """The pending record's temp name holding the player's bytes is never truncated or
    replaced: the write is refused with the path to move."""
    root = _updatable(tmp_path)
    temp = root / ".lanspread.install.next.json.tmp"
    temp.write_bytes(_PLAYERS_BYTES)
    record = read_record(root)
    assert record is not None
    with pytest.raises(StorageError) as caught:
        write_pending_record(root, record)
    assert (
        str(caught.value) == f"{temp} is not a file lanspread wrote; move it out of the game folder"
    )
    assert temp.read_bytes() == _PLAYERS_BYTES
    assert not (root / ".lanspread.install.next.json").exists()


def test_commit_never_replaces_the_players_file_at_the_record_name(tmp_path: Path) -> None:
    """Committing a pending record over a file the player put at the record name is refused;
    both files stay as they are."""
    root = _updatable(tmp_path)
    ours = (root / ".lanspread.install.json").read_bytes()
    (root / ".lanspread.install.next.json").write_bytes(ours)
    (root / ".lanspread.install.json").write_bytes(_PLAYERS_BYTES)
    with pytest.raises(StorageError) as caught:
        commit_pending_record(root)
    assert str(caught.value) == (
        f"{root / '.lanspread.install.json'} is not a file lanspread wrote; "
        "move it out of the game folder"
    )
    assert (root / ".lanspread.install.json").read_bytes() == _PLAYERS_BYTES
    assert (root / ".lanspread.install.next.json").read_bytes() == ours


def test_a_players_file_at_a_carried_name_is_never_overwritten_by_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where hard links are refused the carry copies, and the copy never opens an existing
    target: a file already at the carried name stays and the carry fails with its reason."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    old = tmp_path / "old"
    new = tmp_path / "new"
    write_tree(old, SAVE)
    write_tree(new, {"saves/slot1.sav": _PLAYERS_BYTES})
    plan = CarryPlan(carries=(Carry("saves/slot1.sav", "saves/slot1.sav"),))
    with pytest.raises(
        StorageError, match=r"^cannot keep your file saves/slot1\.sav: File exists$"
    ):
        carry_over(old, new, plan)
    assert (new / "saves/slot1.sav").read_bytes() == _PLAYERS_BYTES


def test_recovery_commits_the_pending_record_of_a_committed_update(tmp_path: Path) -> None:
    """A failure right after the promotion leaves the pending record; recovery commits it."""
    root = _updatable(tmp_path)
    with pytest.raises(InjectedFailure, match=r"^injected at commit-record$"):
        update_game(root, FakeUnpacker(), checkpoint=_fail_at(COMMIT_RECORD))
    assert recorded(root) == ("1.0", digests(OLD_SHIPPED))
    assert recover_game_root(root).outcome is RecoveryOutcome.ROLLED_FORWARD
    assert recorded(root) == ("2.0", digests(NEW_FILES))
    assert snapshot(root) == installed_snapshot(UPDATED, "2.0")


def test_an_update_keeps_the_players_links(tmp_path: Path) -> None:
    """The record lists regular files only, so a symbolic link the player made in local/
    (here a mods folder kept elsewhere, one nested in their own folder) is carried into the
    new version with its target, and reported as kept; the target is never touched."""
    root = _updatable(tmp_path)
    elsewhere = tmp_path / "my-mods"
    write_tree(elsewhere, {"mod.pk3": b"the player's mod"})
    (root / "local" / "mods").symlink_to(elsewhere)
    (root / "local" / "saves" / "latest").symlink_to("slot1.sav")
    result = update_game(root, FakeUnpacker())
    assert snapshot(root) == {
        **installed_snapshot(UPDATED, "2.0"),
        "local/mods": f"-> {elsewhere}",
        "local/saves/latest": "-> slot1.sav",
    }
    assert result.kept == ("mods", "saves/latest", "saves/slot1.sav")
    assert snapshot(elsewhere) == {"mod.pk3": b"the player's mod"}


def test_uninstall_keeping_saves_keeps_a_link_that_is_all_the_player_has(
    tmp_path: Path,
) -> None:
    """A keep-saves uninstall of a game whose only player entry is a link keeps local/ with
    that link in it, instead of deleting it with the shipped files."""
    root = make_root(tmp_path, installed=OLD_SHIPPED, recorded=OLD_SHIPPED)
    (root / "local" / "mods").symlink_to("/srv/mods")
    result = uninstall_game(root, keep_saves=True)
    assert snapshot(root) == {
        **downloaded_snapshot(),
        "local": "<dir>",
        "local/mods": "-> /srv/mods",
    }
    assert result.kept == ("mods",)


def test_a_link_at_a_path_the_new_version_ships_gives_way_to_it(tmp_path: Path) -> None:
    """Without a record of links, a link at a path the new version ships is taken as the old
    version's (like a file without a record): the new file takes the path."""
    root = _updatable(tmp_path)
    (root / "local" / "baseq3" / "pak1.pk3").symlink_to("pak0.pk3")
    update_game(root, FakeUnpacker())
    assert snapshot(root) == installed_snapshot(UPDATED, "2.0")


def test_a_link_inside_a_folder_the_new_version_has_as_a_file_refuses_the_update(
    tmp_path: Path,
) -> None:
    """A player's link whose folder the new version ships as a file cannot be kept: the update
    is refused with the reason and the old install stays exactly as it was."""
    root = _updatable(tmp_path)
    (root / "local" / "baseq3" / "pak0.pk3").unlink()
    (root / "local" / "baseq3" / "pak0.pk3").mkdir()
    (root / "local" / "baseq3" / "pak0.pk3" / "inside").symlink_to("../q3config.cfg")
    before = snapshot(root)
    with pytest.raises(StorageError) as caught:
        update_game(root, FakeUnpacker())
    assert str(caught.value) == (
        "cannot keep your link baseq3/pak0.pk3/inside: "
        "the new version has a file named baseq3/pak0.pk3"
    )
    assert snapshot(root) == before
