"""View files: resolving a game root safely and handing it to the platform file manager."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.support.peers import CATALOG

from lanspread.errors import InvalidGameState, StorageError, UnknownGame
from lanspread.platform.files import file_manager_command, open_folder, resolve_game_root


def test_resolves_a_catalog_root(tmp_path: Path) -> None:
    """A catalog game's existing folder directly inside the game dir is returned."""
    (tmp_path / "quake3").mkdir()
    assert resolve_game_root(tmp_path, CATALOG, "quake3") == tmp_path.resolve() / "quake3"


@pytest.mark.parametrize("game_id", ["doom", "..", ".", "quake3/..", "QUAKE3", ""])
def test_refuses_ids_outside_the_catalog(tmp_path: Path, game_id: str) -> None:
    """Anything but a catalog id is refused before touching the disk."""
    with pytest.raises(UnknownGame) as caught:
        resolve_game_root(tmp_path, CATALOG, game_id)
    assert str(caught.value) == f"{game_id!r} is not a game of the catalog"


def test_refuses_a_missing_root(tmp_path: Path) -> None:
    """A game with no folder has no files to show."""
    with pytest.raises(InvalidGameState) as caught:
        resolve_game_root(tmp_path, CATALOG, "cs16")
    assert str(caught.value) == f"cs16 has no files in {tmp_path.resolve()}"


def test_refuses_a_file_where_the_root_should_be(tmp_path: Path) -> None:
    """A plain file named like the game is not a root."""
    (tmp_path / "cs16").write_text("x")
    with pytest.raises(InvalidGameState, match="cs16 has no files"):
        resolve_game_root(tmp_path, CATALOG, "cs16")


def test_refuses_a_symlinked_root(tmp_path: Path) -> None:
    """A root that is a symbolic link could point anywhere: refused."""
    target = tmp_path / "target"
    target.mkdir()
    games = tmp_path / "games"
    games.mkdir()
    (games / "cs16").symlink_to(target, target_is_directory=True)
    with pytest.raises(InvalidGameState) as caught:
        resolve_game_root(games, CATALOG, "cs16")
    assert str(caught.value) == "the folder of cs16 is a symbolic link; not opening it"


def test_game_dir_through_a_symlink_is_fine(tmp_path: Path) -> None:
    """The game directory itself may be a link (a second drive); roots resolve inside it."""
    real = tmp_path / "real"
    (real / "aoe2").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert resolve_game_root(link, CATALOG, "aoe2") == real.resolve() / "aoe2"


@pytest.mark.parametrize(
    ("platform", "program"),
    [("win32", "explorer"), ("darwin", "open"), ("linux", "xdg-open"), ("freebsd14", "xdg-open")],
)
def test_file_manager_per_platform(platform: str, program: str) -> None:
    """Each platform's own launcher gets the folder as its one argument."""
    assert file_manager_command(Path("/games/quake3"), platform) == [
        program,
        str(Path("/games/quake3")),
    ]


def fake_launcher(bin_dir: Path, status: int) -> Path:
    """An ``xdg-open`` that records its argument and exits with ``status``."""
    bin_dir.mkdir()
    record = bin_dir / "opened.txt"
    script = bin_dir / "xdg-open"
    script.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{record}"\nexit {status}\n')
    script.chmod(0o755)
    return record


async def test_open_folder_runs_the_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher is run with the folder and its success is awaited."""
    record = fake_launcher(tmp_path / "bin", 0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    await open_folder(tmp_path / "quake3")
    assert record.read_text() == str(tmp_path / "quake3")


async def test_failing_launcher_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A launcher that fails (no file manager on this desktop) is a clear StorageError."""
    fake_launcher(tmp_path / "bin", 3)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(StorageError) as caught:
        await open_folder(tmp_path / "quake3")
    assert str(caught.value) == f"xdg-open could not open {tmp_path / 'quake3'} (exit status 3)"


async def test_missing_launcher_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system without the launcher gets a StorageError naming it."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(StorageError) as caught:
        await open_folder(tmp_path)
    assert str(caught.value).startswith("cannot open the file manager (xdg-open): ")
