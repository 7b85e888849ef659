"""The demo games: deterministic archives that install and play, and valid catalog entries."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from lanspread.core.catalog import Catalog, is_safe_relative_path, is_valid_game_id
from lanspread.core.gameroot import VERSION_FILE, parse_version_text
from lanspread.demo import (
    DEFAULT_PLAY_SECONDS,
    DEMO_GAMES,
    PLAY_LOG,
    POSIX_LAUNCHER,
    WINDOWS_LAUNCHER,
    ArchiveKind,
    demo_game,
    is_demo_id,
    launcher_for,
    root_files,
    with_demo_games,
    write_demo_library,
)
from lanspread.demo.roots import installed_size
from lanspread.errors import CatalogError, StorageError
from lanspread.install.extract import extract, plan_extraction
from lanspread.storage.catalog_file import load_bundled_catalog

MiB = 1024 * 1024


# Run in this process and in a fresh interpreter: both must print the same digest.
DIGEST_SCRIPT = """
import blake3
from lanspread.demo import DEMO_GAMES, root_files

hasher = blake3.blake3()
for game in DEMO_GAMES:
    for name, data in sorted(root_files(game).items()):
        hasher.update(f"{game.id}/{name}:{len(data)}\\n".encode())
        hasher.update(data)
print(hasher.hexdigest())
"""


def installed(tmp_path: Path, game_id: str, play_seconds: int = DEFAULT_PLAY_SECONDS) -> Path:
    """Write the game's root and extract it with lanspread's own installer code."""
    game = demo_game(game_id)
    (root,) = write_demo_library(tmp_path / "games", (game,), play_seconds)
    local = root / "local"
    extract(plan_extraction(root), local)
    return local


def test_generation_is_byte_identical_across_processes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fresh interpreter (other hash seed, other time) writes the very same bytes."""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT], capture_output=True, text=True, check=True, env=env
    )
    exec(DIGEST_SCRIPT, {})  # noqa: S102 (our own constant script)
    here = capsys.readouterr().out.strip()
    assert len(here) == 64
    assert other.stdout.strip() == here


def test_written_roots_hold_exactly_the_generated_files(tmp_path: Path) -> None:
    """Each root has its .eti archives and a version.ini whose version is the game's."""
    roots = write_demo_library(tmp_path)
    assert [root.name for root in roots] == [game.id for game in DEMO_GAMES]
    for game, root in zip(DEMO_GAMES, roots, strict=True):
        expected = root_files(game)
        assert {path.name: path.read_bytes() for path in root.iterdir()} == expected
        assert parse_version_text((root / VERSION_FILE).read_text()) == game.version


def test_games_are_a_few_mib_each_and_use_both_formats() -> None:
    """Every game is 1-8 MiB, there are 3-4 of them, tar and zip both appear."""
    assert 3 <= len(DEMO_GAMES) <= 4
    for game in DEMO_GAMES:
        size = sum(len(data) for data in root_files(game).values())
        assert MiB <= size <= 8 * MiB, f"{game.id} is {size} bytes"
    kinds = {archive.kind for game in DEMO_GAMES for archive in game.archives}
    assert kinds == {ArchiveKind.TAR, ArchiveKind.ZIP}


def test_archives_are_real_tar_and_zip_with_unix_modes() -> None:
    """Python's own readers open every archive; the launchers carry mode 0755 in both formats."""
    for game in DEMO_GAMES:
        files = root_files(game)
        for archive in game.archives:
            data = files[archive.name]
            modes: dict[str, int]
            if archive.kind is ArchiveKind.TAR:
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    modes = {member.name: member.mode for member in tar.getmembers()}
            else:
                with zipfile.ZipFile(io.BytesIO(data)) as archive_zip:
                    modes = {
                        info.filename.rstrip("/"): stat.S_IMODE(info.external_attr >> 16)
                        for info in archive_zip.infolist()
                    }
            if archive is game.archives[0]:
                assert modes[POSIX_LAUNCHER] == 0o755
                assert modes[WINDOWS_LAUNCHER] == 0o755
            for path, _ in archive.data_files:
                assert modes[path] == 0o644


@pytest.mark.parametrize("game_id", [game.id for game in DEMO_GAMES])
def test_installer_extracts_every_game_with_an_executable_launcher(
    tmp_path: Path, game_id: str
) -> None:
    """lanspread's extractor installs each game: data intact, play.sh executable."""
    game = demo_game(game_id)
    local = installed(tmp_path, game_id)
    launcher = local / POSIX_LAUNCHER
    assert launcher.stat().st_mode & 0o777 == 0o755
    assert os.access(launcher, os.X_OK)
    assert (local / WINDOWS_LAUNCHER).read_bytes().count(b"\r\n") >= 5
    for archive in game.archives:
        for path, size in archive.data_files:
            assert (local / path).stat().st_size == size
    extracted = sum(path.stat().st_size for path in local.rglob("*") if path.is_file())
    assert extracted == installed_size(game)


@pytest.mark.skipif(sys.platform == "win32", reason="the POSIX launcher")
def test_posix_launcher_plays_then_exits_zero(tmp_path: Path) -> None:
    """play.sh, started the way lanspread starts games, logs a match and exits 0."""
    local = installed(tmp_path, "demo-towersiege", play_seconds=1)
    done = subprocess.run(
        [str(local / POSIX_LAUNCHER)], cwd=local, stdin=subprocess.DEVNULL, check=False
    )
    assert done.returncode == 0
    assert (local / PLAY_LOG).read_text().splitlines() == [
        "Tower Siege (demo): match started",
        "  loaded maps/valley.map",
        "  loaded music/theme.ogg",
        "  loaded units.pak",
        "Tower Siege (demo): match over, well played",
    ]


def test_play_seconds_change_the_scripts_and_are_bounded() -> None:
    """The launcher waits as long as asked; 0 and 61 seconds are refused."""
    game = DEMO_GAMES[0]
    archive = game.archives[0].name
    assert root_files(game, 2)[archive] != root_files(game, 3)[archive]
    with pytest.raises(ValueError, match="play_seconds must be 1-60, got 0"):
        root_files(game, 0)
    with pytest.raises(ValueError, match="play_seconds must be 1-60, got 61"):
        root_files(game, 61)


def test_demo_entries_join_the_bundled_catalog_valid_and_sized(tmp_path: Path) -> None:
    """The merged catalog keeps the 24 real games and adds valid demo-... entries."""
    bundled = load_bundled_catalog()
    merged = with_demo_games(bundled, platform="linux")
    assert len(bundled) == 24
    assert not any(is_demo_id(game_id) for game_id in bundled.ids)
    assert merged.ids - bundled.ids == {game.id for game in DEMO_GAMES}
    assert merged.source == bundled.source
    for game in DEMO_GAMES:
        entry = merged.get(game.id)
        assert entry is not None
        assert is_valid_game_id(entry.id)
        assert is_demo_id(entry.id)
        assert entry.executable == POSIX_LAUNCHER
        assert is_safe_relative_path(entry.executable)
        assert entry.size_bytes == installed_size(game)
        assert entry.name.endswith("(demo)")
        assert entry.cover is None


def test_windows_entries_name_the_batch_launcher() -> None:
    """On Windows the catalog starts play.cmd; everywhere else play.sh."""
    merged = with_demo_games(load_bundled_catalog(), platform="win32")
    assert {merged.games[game.id].executable for game in DEMO_GAMES} == {WINDOWS_LAUNCHER}
    assert launcher_for("win32") == WINDOWS_LAUNCHER
    assert launcher_for("darwin") == POSIX_LAUNCHER


def test_a_catalog_that_already_uses_a_demo_id_is_refused() -> None:
    """A user's catalog with a demo id cannot be merged; the message names the id."""
    some_game = next(iter(load_bundled_catalog()))
    clash = dataclasses.replace(some_game, id="demo-pixelkart")
    own = Catalog(games={clash.id: clash}, source="mine.toml")
    with pytest.raises(CatalogError) as failure:
        with_demo_games(own)
    assert str(failure.value) == (
        "mine.toml: game 'demo-pixelkart' clashes with a demo game; "
        "ids starting with 'demo-' are reserved for demo mode"
    )


def test_unknown_demo_game_is_a_key_error() -> None:
    """Looking up an id that is not a demo game fails loudly."""
    with pytest.raises(KeyError):
        demo_game("quake3")


def test_writing_where_no_folder_can_be_made_is_a_storage_error(tmp_path: Path) -> None:
    """A game dir below a file gives StorageError naming the game and the folder."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError) as failure:
        write_demo_library(blocker / "games")
    assert str(failure.value) == (
        f"cannot write the demo game {DEMO_GAMES[0].id} in {blocker / 'games'}: Not a directory"
    )
