"""The staged update: downloaded beside the old version, moved in only once verified and
installed, crash-safe at every step, deleting only what the records prove ours."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.support.download_roots import build_manifest, game_files, write_all_chunks
from tests.support.install_roots import snapshot

from lanspread.core.gameroot import OWNERSHIP_FILE, UPDATE_DIR
from lanspread.download.prepare import prepare_game_storage
from lanspread.files import staging
from lanspread.files.ownership import (
    InTheWay,
    claim_download,
    identify,
    identify_sentinel,
    is_ours,
    load_record,
)
from lanspread.files.sentinel import commit_sentinel
from lanspread.files.staging import (
    drop_staging,
    has_staging,
    move_in,
    open_staging,
    staged_version,
)
from lanspread.runtime.staging import settle_staged
from lanspread.runtime.startup import sweep_orphans

OLD = {**game_files(seed=1), "version.ini": b"version = 1.0\n"}
NEW = {
    "quake3.eti": game_files(seed=5)["quake3.eti"],
    "maps/extra/dm1.eti": game_files(seed=5)["maps/extra/dm1.eti"],
    "baseq3/pak9.eti": b"new in 2.0",
    "version.ini": b"version = 2.0\n",
}
"""2.0 rewrites two archives, drops ``quake3.part2.eti`` and ``maps/empty.txt``, adds one."""
PLAYER = {"mod.txt": b"the player's mod", "local/saves/slot1.sav": b"a save"}


def _download(root: Path, files: Mapping[str, bytes]) -> None:
    """A complete download of ``files`` into ``root``, as the downloader performs it."""
    manifest = build_manifest(files, version=None)
    record = claim_download(root, manifest, adopt=False)
    prepare_game_storage(root, manifest, margin=0, owned=record)
    identify(root, record)
    write_all_chunks(root, files)

    def prove_ours(written: Path) -> None:
        held = load_record(root)
        assert held is not None
        identify_sentinel(root, held, written)

    commit_sentinel(root, files["version.ini"], on_written=prove_ours)


def _payload(root: Path) -> dict[str, object]:
    """The root's entries outside the reserved names (the served payload and the player's)."""
    return {
        path: data
        for path, data in snapshot(root).items()
        if path.split("/")[0] not in {UPDATE_DIR, OWNERSHIP_FILE, "local"}
    }


def _folders(files: Mapping[str, bytes]) -> dict[str, object]:
    folders = {"/".join(path.split("/")[:depth]) for path in files for depth in range(1, 3)}
    return {folder: "<dir>" for folder in folders if folder not in files}


@pytest.fixture
def old_root(game_dir: Path) -> Path:
    """quake3 1.0 downloaded here, with the player's mod in the root and a save in local/."""
    root = game_dir / "quake3"
    _download(root, OLD)
    for path, data in PLAYER.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def _staged_update(root: Path) -> Path:
    staged = open_staging(root)
    _download(staged, NEW)
    return staged


def test_a_staged_update_leaves_the_old_version_byte_for_byte(old_root: Path) -> None:
    """While 2.0 downloads beside it (and once it is complete), 1.0's payload, its
    sentinel and the player's files are untouched: the old version stays served."""
    before = _payload(old_root)
    staged = _staged_update(old_root)
    assert staged == old_root / UPDATE_DIR / "quake3"
    assert _payload(old_root) == before
    assert staged_version(old_root) == "2.0"
    record = load_record(old_root)
    assert record is not None
    held = record.get(UPDATE_DIR)
    assert held is not None
    assert is_ours(old_root, held)


def test_move_in_swaps_the_payload_and_keeps_the_players_files(old_root: Path) -> None:
    """The move leaves exactly 2.0's payload plus the player's files; 1.0's archive that
    2.0 no longer ships is deleted (the record proves it ours); every new file is ours."""
    _staged_update(old_root)
    assert move_in(old_root)
    expected = {**NEW, "mod.txt": PLAYER["mod.txt"], **_folders(NEW)}
    assert _payload(old_root) == expected
    assert (old_root / "local/saves/slot1.sav").read_bytes() == PLAYER["local/saves/slot1.sav"]
    assert not has_staging(old_root)
    record = load_record(old_root)
    assert record is not None
    held_new = [record.get(path) for path in NEW]
    assert all(held is not None and held.identified for held in held_new)
    assert all(is_ours(old_root, held) for held in held_new if held is not None)
    assert record.get(UPDATE_DIR) is None


def test_a_failed_update_is_dropped_and_leaves_the_old_version_whole(old_root: Path) -> None:
    """Dropping a staged update (cancel, failure) deletes only what its record proves ours:
    a player's file put inside the staging folder stays, and 1.0 is untouched."""
    before = _payload(old_root)
    staged = _staged_update(old_root)
    (old_root / UPDATE_DIR / "notes.txt").write_bytes(b"the player's")
    assert not drop_staging(old_root)
    assert not staged.exists()
    assert sorted(path.name for path in (old_root / UPDATE_DIR).iterdir()) == ["notes.txt"]
    assert _payload(old_root) == before
    (old_root / UPDATE_DIR / "notes.txt").unlink()
    assert drop_staging(old_root)
    assert _payload(old_root) == before


def test_a_players_folder_named_like_the_staging_folder_refuses_the_update(
    old_root: Path,
) -> None:
    """A ``.lanspread.update`` lanspread did not create is never used or deleted."""
    (old_root / UPDATE_DIR).mkdir()
    (old_root / UPDATE_DIR / "mine.txt").write_bytes(b"mine")
    with pytest.raises(InTheWay) as caught:
        open_staging(old_root)
    assert str(caught.value) == (
        "quake3: .lanspread.update already in the game folder and not created by lanspread; "
        "move it out of the game folder to update"
    )
    assert not drop_staging(old_root)
    assert (old_root / UPDATE_DIR / "mine.txt").read_bytes() == b"mine"


class _Killed(BaseException):
    """A kill -9 at a step of the move."""


_STEPS = ("claim_files", "begin_update", "sweep_owned", "_move", "identify_sentinel", "identify")


def _arm_kill(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """A kill before the ``at``-th durable step of the move (steps counted across names)."""
    count = [0]
    for name in _STEPS:
        original = getattr(staging, name)

        def step(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            count[0] += 1
            if count[0] == at:
                raise _Killed
            return _original(*args, **kwargs)

        monkeypatch.setattr(staging, name, step)


def test_a_kill_at_any_step_of_the_move_is_finished_by_the_next_start(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed before any step of the move, the next start (staged settling, then the root's
    own settling) always ends with exactly 2.0's payload and the player's files; never a
    sentinel beside missing archives, never a lost player's file."""
    expected = {**NEW, "mod.txt": PLAYER["mod.txt"], **_folders(NEW)}
    at = 1
    killed = True
    while killed:
        root = game_dir / f"run{at}" / "quake3"
        root.parent.mkdir()
        _download(root, OLD)
        (root / "mod.txt").write_bytes(PLAYER["mod.txt"])
        _staged_update(root)
        with monkeypatch.context() as patched:
            _arm_kill(patched, at)
            try:
                move_in(root)
                killed = False
            except _Killed:
                pass
        sentinel = root / "version.ini"
        if sentinel.exists() and sentinel.read_bytes() == NEW["version.ini"]:
            assert all((root / path).read_bytes() == data for path, data in NEW.items()), at
        elif sentinel.exists():  # the old sentinel still vouches for the old archives
            assert all((root / path).read_bytes() == data for path, data in OLD.items()), at
        settle_staged(root)
        sweep_orphans(root)
        assert _payload(root) == expected, f"kill at step {at}"
        assert not has_staging(root), f"kill at step {at}"
        record = load_record(root)
        assert record is not None
        held_new = [record.get(path) for path in NEW]
        assert None not in held_new, at
        assert all(is_ours(root, held) for held in held_new if held is not None), at
        at += 1
    assert at > len(_STEPS) + len(NEW)  # every step was killed once
