"""The strict *Remove files* guard and the link-safe deletion primitive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.support.download_roots import build_manifest, game_files
from tests.support.install_roots import GAME_ID, make_root, snapshot
from tests.support.ownership import record_as_downloaded
from tests.support.trees import write_tree

from lanspread.core.catalog import Catalog, CatalogGame
from lanspread.core.gameroot import UPDATE_DIR
from lanspread.errors import InvalidGameState, StorageError, UnknownGame
from lanspread.files.ownership import claim_download
from lanspread.files.staging import open_staging
from lanspread.install.remove import remove_downloaded_game, remove_entry


def _game(game_id: str) -> CatalogGame:
    return CatalogGame(
        id=game_id, name=game_id, description="", size_bytes=1, genre="Shooter", max_players=8
    )


CATALOG = Catalog(games={g: _game(g) for g in (GAME_ID, "doom", "sibling")}, source="<test>")


@pytest.fixture
def game_dir(game_dir: Path) -> Path:
    """The game folder with another game, doom, beside the one a test removes."""
    write_tree(game_dir / "doom", {"version.ini": "1\n"})
    return game_dir


def test_removes_a_downloaded_root_and_nothing_else(game_dir: Path, tmp_path: Path) -> None:
    """The root lanspread downloaded goes; its sibling and the target of a link stay."""
    root = make_root(game_dir)
    (root / "nested").mkdir()
    record_as_downloaded(root, root_created=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    before_doom = snapshot(game_dir / "doom")

    remove_downloaded_game(game_dir, GAME_ID, CATALOG)

    assert not os.path.lexists(root)
    assert outside.read_text() == "not ours"
    assert snapshot(game_dir / "doom") == before_doom


def test_remove_keeps_the_players_files_and_links(game_dir: Path, tmp_path: Path) -> None:
    """Only what the record proves ours goes: saves, mods and links the player added stay,
    byte for byte, and the root with them."""
    root = make_root(game_dir)
    (root / "nested").mkdir()
    record_as_downloaded(root, root_created=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    players = {"my-mod.pak": b"a mod", "nested/slot1.sav": b"a save"}
    write_tree(root, players)
    (root / "nested" / "link").symlink_to(outside)
    (root / "dirlink").symlink_to(tmp_path, target_is_directory=True)

    report = remove_downloaded_game(game_dir, GAME_ID, CATALOG)

    assert "version.ini" in report.removed
    assert not report.root_removed
    after = snapshot(root)
    assert {path: after[path] for path in players} == players
    assert (root / "nested" / "link").is_symlink()
    assert (root / "dirlink").is_symlink()
    assert outside.read_text() == "not ours"


def test_remove_takes_a_staged_update_along_by_its_own_record(game_dir: Path) -> None:
    """A paused update staged beside the removed game goes with it (its own record proves
    its files), so nothing is left to resume into a game that is gone; a player's file put
    in the staging folder keeps that folder and the root."""
    root = make_root(game_dir)
    record_as_downloaded(root, root_created=True)
    staged = open_staging(root)
    claim_download(staged, build_manifest(game_files()), adopt=False)
    write_tree(staged, {"quake3.eti": b"part of 2.0"})
    record_as_downloaded(staged, root_created=True)

    remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert not os.path.lexists(root)

    root = make_root(game_dir)
    record_as_downloaded(root, root_created=True)
    open_staging(root)
    write_tree(root / UPDATE_DIR, {"notes.txt": b"the player's"})
    remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    left = snapshot(root)
    assert sorted(left) == [".lanspread.files.json", UPDATE_DIR, f"{UPDATE_DIR}/notes.txt"]
    assert left[f"{UPDATE_DIR}/notes.txt"] == b"the player's"  # the record still names the folder


def test_remove_refuses_a_root_lanspread_has_no_record_of(game_dir: Path) -> None:
    """A complete copy made by hand (version.ini but no record) is never deleted."""
    root = make_root(game_dir)
    before = snapshot(root)
    with pytest.raises(InvalidGameState) as caught:
        remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert str(caught.value) == (
        "quake3 was not downloaded by lanspread (no .lanspread.files.json); nothing was removed"
    )
    assert snapshot(root) == before


@pytest.mark.parametrize("game_id", ["../quake3", "a/b", "", ".", "..", "Quake3", "x" * 65])
def test_refuses_ids_that_are_not_one_safe_component(game_dir: Path, game_id: str) -> None:
    """An id that is not a single valid path component is refused before touching the disk."""
    with pytest.raises(UnknownGame) as caught:
        remove_downloaded_game(game_dir, game_id, CATALOG)
    assert str(caught.value) == f"{game_id!r} is not a valid game id"


def test_refuses_a_game_outside_the_catalog(game_dir: Path) -> None:
    """A valid id that the catalog does not list is refused, even if its folder exists."""
    (game_dir / "unlisted").mkdir()
    (game_dir / "unlisted" / "version.ini").write_text("1\n")
    with pytest.raises(UnknownGame) as caught:
        remove_downloaded_game(game_dir, "unlisted", CATALOG)
    assert str(caught.value) == "'unlisted' is not a catalog game"
    assert (game_dir / "unlisted" / "version.ini").exists()


def test_refuses_a_missing_root(game_dir: Path) -> None:
    """Nothing to remove is a state error, not a silent success."""
    with pytest.raises(InvalidGameState) as caught:
        remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert str(caught.value) == "quake3 has no downloaded files"


def test_refuses_a_root_linking_out_of_the_game_dir(game_dir: Path, tmp_path: Path) -> None:
    """A root that resolves outside the game directory is not a direct child: refused."""
    elsewhere = make_root(tmp_path / "elsewhere")
    (game_dir / GAME_ID).symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(elsewhere)
    with pytest.raises(InvalidGameState) as caught:
        remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert str(caught.value) == f"quake3: the game folder is not inside {game_dir}"
    assert snapshot(elsewhere) == before


def test_refuses_a_root_that_is_a_link_inside_the_game_dir(game_dir: Path) -> None:
    """A root that is a link (even to a sibling in the game dir) is refused, target kept."""
    sibling = game_dir / "sibling"
    sibling.mkdir()
    (sibling / "version.ini").write_text("1\n")
    (game_dir / GAME_ID).symlink_to(sibling, target_is_directory=True)
    with pytest.raises(InvalidGameState) as caught:
        remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert str(caught.value) == "quake3: the game folder is a symbolic link; not removing it"
    assert (sibling / "version.ini").exists()


def test_refuses_a_root_that_is_a_file(game_dir: Path) -> None:
    """A regular file where the root should be is refused."""
    (game_dir / GAME_ID).write_text("x")
    with pytest.raises(InvalidGameState) as caught:
        remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert str(caught.value) == "quake3: the game folder is not a directory"
    assert (game_dir / GAME_ID).is_file()


@pytest.mark.parametrize("sentinel", ["missing", "folder", "link", "nested"])
def test_refuses_without_a_regular_root_sentinel(
    game_dir: Path, tmp_path: Path, sentinel: str
) -> None:
    """Only a regular root-level ``version.ini`` makes a root downloaded."""
    root = make_root(game_dir)
    (root / "version.ini").unlink()
    if sentinel == "folder":
        (root / "version.ini").mkdir()
    elif sentinel == "link":
        real = tmp_path / "real.ini"
        real.write_text("1\n")
        (root / "version.ini").symlink_to(real)
    elif sentinel == "nested":
        (root / "sub").mkdir()
        (root / "sub" / "version.ini").write_text("1\n")
    before = snapshot(root)
    with pytest.raises(InvalidGameState) as caught:
        remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert str(caught.value) == "quake3 is not downloaded (no version.ini)"
    assert snapshot(root) == before


@pytest.mark.parametrize("name", ["local", ".local.installing", ".local.backup"])
@pytest.mark.parametrize("kind", ["dir", "file"])
def test_refuses_a_root_with_install_state(game_dir: Path, name: str, kind: str) -> None:
    """Any of the install-state names, whatever it is, blocks removal."""
    root = make_root(game_dir)
    if kind == "dir":
        (root / name).mkdir()
        (root / name / "save.dat").write_text("precious")
    else:
        (root / name).write_text("precious")
    before = snapshot(root)
    with pytest.raises(InvalidGameState) as caught:
        remove_downloaded_game(game_dir, GAME_ID, CATALOG)
    assert str(caught.value) == f"quake3 has install state ({name}); uninstall it first"
    assert snapshot(root) == before


def test_remove_entry_handles_each_kind(tmp_path: Path) -> None:
    """Files and links are unlinked (targets kept), folders removed, missing paths reported."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    folder = tmp_path / "folder"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "inner-link").symlink_to(target, target_is_directory=True)
    file = tmp_path / "file"
    file.write_text("x")

    assert remove_entry(link)
    assert remove_entry(folder)
    assert remove_entry(file)
    assert not remove_entry(tmp_path / "missing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]
    assert (target / "keep").read_text() == "keep"


def test_remove_entry_reports_the_entry_that_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deletion that fails part-way raises StorageError naming the path and the culprit."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "stuck").write_text("x")
    real_unlink = os.unlink

    def refuse(path: str, *, dir_fd: int | None = None) -> None:
        if path == "stuck":
            raise PermissionError(1, "Operation not permitted", path)
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", refuse)
    with pytest.raises(StorageError) as caught:
        remove_entry(folder)
    assert str(caught.value) == f"cannot delete {folder}: Operation not permitted (stuck)"
