"""Startup settling of download state: paused downloads, finished leftovers and orphans."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.support.download_roots import (
    GAME_ID,
    SENTINEL_TEXT,
    build_manifest,
    game_files,
    write_all_chunks,
)
from tests.support.install_roots import snapshot
from tests.support.ownership import record_as_downloaded
from tests.support.trees import write_tree

from lanspread.core.gameroot import DOWNLOAD_JOURNAL_FILE, OWNERSHIP_FILE
from lanspread.core.manifest import manifest_digest
from lanspread.core.planning import manifest_tasks
from lanspread.core.recovery import Intent
from lanspread.download.journal import DownloadJournal
from lanspread.download.prepare import prepare_game_storage
from lanspread.files.ownership import claim_download, identify, load_record
from lanspread.files.sentinel import begin_update, commit_sentinel
from lanspread.install.intent import write_intent
from lanspread.install.sweep import (
    discard_download,
    drop_interrupted_update_sentinel,
    recover_game_root,
)
from lanspread.runtime.startup import (
    PartialDownload,
    classify_partial,
    probe_found,
    sweep_orphans,
)

FILES = game_files()
MANIFEST = build_manifest(FILES)
TASKS = manifest_tasks(MANIFEST)
INSTALLER_STATE = {
    "local/game.exe": b"installed",
    "local/saves/slot1.sav": b"the user's own save",
    ".local.installing/x": b"staging",
    ".local.backup/old.exe": b"backup",
    ".softlan_game_installed": b"",
    ".sync/state": b"sync tool",
}
STARTED_AT = 1_700_000_000.0


def _paused(root: Path, *, done: int = 3) -> DownloadJournal:
    """A download interrupted after ``done`` durable chunks (an update: a parked sentinel)."""
    (root / "version.ini").write_bytes(b"version = 1.0\n")
    record = claim_download(root, MANIFEST, adopt=True)
    begin_update(root)
    journal = DownloadJournal.create(root, MANIFEST, clock=lambda: STARTED_AT)
    prepare_game_storage(root, MANIFEST, margin=0, owned=record)
    identify(root, record)
    write_all_chunks(root, FILES)
    journal.mark_done(task.key for task in TASKS[:done])
    journal.commit_durable(sorted({task.path for task in TASKS[:done]}))
    return journal


def _installer_snapshot() -> dict[str, bytes | str]:
    return {
        "local": "<dir>",
        "local/saves": "<dir>",
        ".local.installing": "<dir>",
        ".local.backup": "<dir>",
        ".sync": "<dir>",
        **INSTALLER_STATE,
    }


# --- classify_partial ------------------------------------------------------------------------


def test_a_journaled_download_is_a_partial_download(root: Path) -> None:
    """A valid journal and no sentinel: the runtime shows a paused download with its progress."""
    _paused(root, done=3)
    done_bytes = sum(task.length for task in TASKS[:3])
    assert classify_partial(root) == PartialDownload(
        game_id=GAME_ID,
        version="2.0",
        done_bytes=done_bytes,
        total_bytes=MANIFEST.total_bytes,
        manifest_digest=manifest_digest(MANIFEST),
    )
    partial = classify_partial(root)
    assert partial is not None
    assert partial.percent == pytest.approx(100 * done_bytes / MANIFEST.total_bytes)


def test_percent_of_an_empty_download_is_zero() -> None:
    """A download with no bytes at all shows 0 %, not a division error."""
    empty = PartialDownload(GAME_ID, None, 0, 0, "d")
    assert empty.percent == 0.0


def test_no_journal_no_partial(root: Path, tmp_path: Path) -> None:
    """Without a journal (or a root) nothing is paused."""
    assert classify_partial(root) is None
    write_tree(root, {"quake3.eti": b"orphan"})
    assert classify_partial(root) is None
    assert classify_partial(tmp_path / "games" / "absent") is None


def test_a_committed_sentinel_means_no_partial(root: Path) -> None:
    """A journal left next to a committed sentinel is a finished download, not a paused one."""
    _paused(root)
    commit_sentinel(root, SENTINEL_TEXT)
    assert classify_partial(root) is None


def test_a_corrupt_journal_is_no_partial_and_logged(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A journal that cannot be trusted is ignored with a warning naming the reason."""
    _paused(root)
    (root / ".lanspread.download.json").write_bytes(b"{not json")
    with caplog.at_level(logging.WARNING, logger="lanspread.runtime.startup"):
        assert classify_partial(root) is None
    assert "ignoring the download journal of" in caplog.text
    assert "not valid JSON" in caplog.text


def test_a_linked_root_is_never_classified(root: Path, tmp_path: Path) -> None:
    """A root that is a link is not ours to read through."""
    _paused(root)
    link = tmp_path / "games" / "linked"
    link.symlink_to(root, target_is_directory=True)
    assert classify_partial(link) is None
    assert not sweep_orphans(link)


# --- sweep_orphans ----------------------------------------------------------------------------


def test_leftovers_of_a_finished_download_are_dropped(root: Path) -> None:
    """Sentinel committed but journal, parked and temp files left: only the leftovers go."""
    _paused(root)
    commit_sentinel(root, SENTINEL_TEXT)
    write_tree(
        root,
        {
            ".version.ini.discarded": b"version = 1.0\n",
            ".version.ini.tmp": b"half",
            ".lanspread.download.json.tmp": b"half",
        },
    )
    payload = {name: data for name, data in FILES.items() if data}
    assert sweep_orphans(root)
    after = snapshot(root)
    assert {path for path in after if path.startswith(".")} == {OWNERSHIP_FILE}
    assert {path: after[path] for path in payload} == payload
    assert not sweep_orphans(root)


def test_a_settled_downloaded_root_is_untouched(root: Path) -> None:
    """Sentinel and payload alone: nothing to do."""
    write_tree(root, {**FILES, **INSTALLER_STATE})
    before = snapshot(root)
    assert not sweep_orphans(root)
    assert snapshot(root) == before


def test_a_folder_at_a_transient_name_is_not_ours(root: Path) -> None:
    """A folder named like a transient next to a sentinel is left alone."""
    write_tree(root, {"version.ini": SENTINEL_TEXT, ".version.ini.tmp/inner": b"user data"})
    assert not sweep_orphans(root)
    assert (root / ".version.ini.tmp" / "inner").read_bytes() == b"user data"


def test_a_paused_download_keeps_its_payload_and_loses_only_an_interrupted_commit(
    root: Path,
) -> None:
    """Valid journal: payload, journal and parked sentinel stay; the two temp files go."""
    _paused(root)
    write_tree(root, {".version.ini.tmp": b"half", ".lanspread.download.json.tmp": b"half"})
    expected = snapshot(root)
    del expected[".version.ini.tmp"], expected[".lanspread.download.json.tmp"]
    assert sweep_orphans(root)
    assert snapshot(root) == expected
    assert not sweep_orphans(root)
    assert classify_partial(root) is not None


def test_a_corrupt_journal_discards_the_payload_but_no_installer_name(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing proves which chunks are complete: payload goes, installer-owned names stay."""
    _paused(root)
    write_tree(root, INSTALLER_STATE)
    (root / ".lanspread.download.json").write_bytes(b'{"format": 99}')
    with caplog.at_level(logging.WARNING, logger="lanspread.runtime.startup"):
        assert sweep_orphans(root)
    assert snapshot(root) == _installer_snapshot()
    assert "discarding the payload of" in caplog.text


def _claimed_and_prepared(root: Path) -> None:
    """A download killed after claiming and preparing, before its journal mattered."""
    record = claim_download(root, MANIFEST, adopt=False)
    prepare_game_storage(root, MANIFEST, margin=0, owned=record)
    identify(root, record)
    (root / DOWNLOAD_JOURNAL_FILE).unlink(missing_ok=True)


def test_payload_without_journal_sentinel_or_intent_is_swept(root: Path) -> None:
    """The crash gap: the recorded files of a killed download are discarded; the root
    too, since the download created it."""
    root.rmdir()
    _claimed_and_prepared(root)
    assert sweep_orphans(root)
    assert not root.exists()


def test_orphans_next_to_an_install_are_swept_around_it(root: Path) -> None:
    """Recorded orphans go; every installer-owned name stays, so the root stays."""
    _claimed_and_prepared(root)
    write_tree(root, INSTALLER_STATE)
    assert sweep_orphans(root)
    assert snapshot(root) == _installer_snapshot()


def test_an_update_parked_but_never_journaled_settles_as_local_only(root: Path) -> None:
    """Killed between parking and journaling: recorded archives and the parked sentinel go."""
    write_tree(root, FILES)
    record_as_downloaded(root)
    write_tree(root, {"local/game.exe": b"installed"})
    begin_update(root)
    assert sweep_orphans(root)
    assert snapshot(root) == {"local": "<dir>", "local/game.exe": b"installed"}


PLAYERS_FOLDER = {
    "saves/my-world-400h.zip": b"four hundred hours",
    "bin/x64/factorio": b"installed by hand",
    "my-mod.txt": b"a mod the player dropped in",
    "user-maps/map1.d2": b"the player's map",
    "quake3.eti": b"copied from a USB stick, the copy still running",
    ".lanspread.json": b'{"the player": "named a file like ours"}',
    ".lanspread.files.json": b"also the player's",
    ".version.ini.discarded": b"and this one",
    ".lanspread.install.json": b"and the install record's name",
    ".lanspread.install.next.json.tmp": b"and its pending temp",
}


def test_a_catalog_named_folder_without_proof_is_never_touched(root: Path) -> None:
    """No version.ini, no ownership record: start-up recovery, sweep and discard leave every
    byte, and the folder is reported as found, not from lanspread, naming what is missing."""
    write_tree(root, PLAYERS_FOLDER)
    before = snapshot(root)
    recover_game_root(root)
    assert not sweep_orphans(root)
    assert discard_download(root).removed == ()
    assert not drop_interrupted_update_sentinel(root)
    assert snapshot(root) == before
    found = probe_found(root)
    assert found is not None
    assert found.label == "Found, not from lanspread"
    assert found.reason == (
        "no version.ini, no download record (.lanspread.files.json); "
        "not lanspread's: .lanspread.files.json, .lanspread.install.json, "
        ".lanspread.install.next.json.tmp, .lanspread.json; left as it is"
    )


def test_a_recorded_file_the_player_replaced_survives(root: Path) -> None:
    """A recorded name whose file was replaced (another inode) is not ours any more."""
    _claimed_and_prepared(root)
    (root / "quake3.eti").unlink()
    (root / "quake3.eti").write_bytes(b"the player's own copy")
    (root / "maps" / "mine.bsp").write_bytes(b"the player's map")
    assert sweep_orphans(root)
    after = snapshot(root)
    del after[OWNERSHIP_FILE]
    assert after == {
        "quake3.eti": b"the player's own copy",
        "maps": "<dir>",
        "maps/mine.bsp": b"the player's map",
    }
    record = load_record(root)
    assert record is not None
    assert [name.path for name in record.names] == ["maps"]  # removed once it is empty


def test_a_downloaded_or_paused_root_is_not_found(root: Path) -> None:
    """Roots lanspread accounts for are never reported as found."""
    _paused(root)
    assert probe_found(root) is None
    commit_sentinel(root, SENTINEL_TEXT)
    assert probe_found(root) is None


@pytest.mark.parametrize("intent", ["recorded", "unreadable"])
def test_a_root_with_an_install_intent_is_left_to_install_recovery(root: Path, intent: str) -> None:
    """A recorded (or unreadable) install intent means install recovery owns the root."""
    write_tree(root, {"quake3.eti": b"archive", "local/game.exe": b"x"})
    if intent == "recorded":
        write_intent(root, Intent.INSTALLING)
    else:
        (root / ".lanspread.json").write_bytes(b"garbage")
    before = snapshot(root)
    assert not sweep_orphans(root)
    assert snapshot(root) == before


def test_installer_names_alone_are_not_swept(root: Path, tmp_path: Path) -> None:
    """A root holding only installer-owned names has no payload: nothing to do."""
    write_tree(root, INSTALLER_STATE)
    assert not sweep_orphans(root)
    assert snapshot(root) == _installer_snapshot()
    assert not sweep_orphans(tmp_path / "games" / "absent")
