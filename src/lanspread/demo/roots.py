"""Generating the demo library: game roots with real archives, a launcher and a sentinel.

Everything is a pure function of the game's definition: filler data is BLAKE3
extended output keyed by game id, version and path, archives use fixed times and
owners, so every run (and every machine) writes byte-identical roots. Writing the
whole library (about 11 MiB) takes a few milliseconds of hashing and one write
per file.

The launcher is the demo's "game". ``play.sh`` (Linux, macOS) and ``play.cmd``
(Windows) both append a start line and the list of installed data files to
``play.log`` in the working directory (the game's ``local/``), wait
``play_seconds`` and exit 0, so the player sees the card say Running and then
Play again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import blake3

from lanspread.core.catalog import Catalog
from lanspread.core.gameroot import VERSION_FILE
from lanspread.demo.archives import ArchiveMember, with_folders
from lanspread.demo.games import (
    DEFAULT_PLAY_SECONDS,
    DEMO_GAMES,
    PLAY_LOG,
    POSIX_LAUNCHER,
    WINDOWS_LAUNCHER,
    DemoArchive,
    DemoGame,
    demo_catalog_games,
    merge_demo_entries,
)
from lanspread.errors import StorageError

README = "README.txt"
# A demo game that plays for more than a minute stops being a demo.
MAX_PLAY_SECONDS = 60


def filler(game: DemoGame, path: str, size: int) -> bytes:
    """``size`` deterministic, incompressible bytes for ``path`` of ``game``."""
    key = f"lanspread-demo/{game.id}/{game.version}/{path}".encode()
    return blake3.blake3(key).digest(length=size)


def posix_launcher(game: DemoGame, play_seconds: int) -> bytes:
    script = f"""#!/bin/sh
# {game.name}: a lanspread demo game. It opens no window: it notes in {PLAY_LOG}
# (next to this script) that a match started and which data files it found,
# "plays" for {play_seconds} seconds, notes the end of the match and exits 0.
cd "$(dirname "$0")" || exit 1
echo "{game.name}: match started" >> {PLAY_LOG}
for file in */* *.pak; do
    [ -f "$file" ] && echo "  loaded $file" >> {PLAY_LOG}
done
sleep {play_seconds}
echo "{game.name}: match over, well played" >> {PLAY_LOG}
exit 0
"""
    return script.encode()


def windows_launcher(game: DemoGame, play_seconds: int) -> bytes:
    # timeout.exe refuses to run with redirected input (lanspread gives games none);
    # ping waits about a second between echo requests, so N + 1 requests wait N seconds.
    lines = [
        "@echo off",
        f"rem {game.name}: a lanspread demo game. It opens no window: it notes in {PLAY_LOG}",
        f"rem that a match started, plays for {play_seconds} seconds and exits 0.",
        'cd /d "%~dp0"',
        f"echo {game.name}: match started>> {PLAY_LOG}",
        f"for /r %%f in (*.pak *.trk *.map *.ogg) do echo   loaded %%~nxf>> {PLAY_LOG}",
        f"ping -n {play_seconds + 1} 127.0.0.1 >nul",
        f"echo {game.name}: match over, well played>> {PLAY_LOG}",
        "exit /b 0",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def readme(game: DemoGame) -> bytes:
    text = (
        f"{game.name}\n\n{game.description}\n\n"
        f"Start it with {POSIX_LAUNCHER} (Linux, macOS) or {WINDOWS_LAUNCHER} (Windows); "
        "lanspread's Play button does that for you.\n"
    )
    return text.encode()


def archive_members(game: DemoGame, archive: DemoArchive, play_seconds: int) -> list[ArchiveMember]:
    """The entries of one archive: folders, filler data and (first archive) the launchers."""
    files = [ArchiveMember(path, filler(game, path, size)) for path, size in archive.data_files]
    if archive is game.archives[0]:
        files += [
            ArchiveMember(POSIX_LAUNCHER, posix_launcher(game, play_seconds), 0o755),
            ArchiveMember(WINDOWS_LAUNCHER, windows_launcher(game, play_seconds), 0o755),
            ArchiveMember(README, readme(game)),
        ]
    return with_folders(files)


def archive_bytes(game: DemoGame, archive: DemoArchive, play_seconds: int) -> bytes:
    return archive.kind.pack(archive_members(game, archive, play_seconds))


def version_text(game: DemoGame) -> bytes:
    return f"[lanspread demo]\nversion = {game.version}\n".encode()


def root_files(game: DemoGame, play_seconds: int = DEFAULT_PLAY_SECONDS) -> dict[str, bytes]:
    """Every file of the game's root: its ``.eti`` archives and ``version.ini``."""
    _check_play_seconds(play_seconds)
    files = {archive.name: archive_bytes(game, archive, play_seconds) for archive in game.archives}
    files[VERSION_FILE] = version_text(game)
    return files


def installed_size(game: DemoGame, play_seconds: int = DEFAULT_PLAY_SECONDS) -> int:
    """Bytes the game occupies once extracted (what the catalog shows as its size)."""
    data = sum(size for archive in game.archives for _, size in archive.data_files)
    scripts = posix_launcher(game, play_seconds) + windows_launcher(game, play_seconds)
    return data + len(scripts) + len(readme(game))


def with_demo_games(
    catalog: Catalog, play_seconds: int = DEFAULT_PLAY_SECONDS, platform: str = sys.platform
) -> Catalog:
    """``catalog`` plus the demo games' entries (ids ``demo-...``)."""
    sizes = {game.id: installed_size(game, play_seconds) for game in DEMO_GAMES}
    return merge_demo_entries(catalog, demo_catalog_games(sizes, platform))


def write_demo_library(
    game_dir: Path,
    games: tuple[DemoGame, ...] = DEMO_GAMES,
    play_seconds: int = DEFAULT_PLAY_SECONDS,
) -> tuple[Path, ...]:
    """Write each game's root under ``game_dir`` (blocking); returns the roots.

    ``version.ini`` is written last in each root: it is the download-complete
    sentinel, so a root is never Ready before its archives are whole. Raises
    :class:`StorageError` when the disk refuses.
    """
    roots: list[Path] = []
    for game in games:
        root = game_dir / game.id
        files = root_files(game, play_seconds)
        sentinel = files.pop(VERSION_FILE)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                (root / name).write_bytes(data)
            (root / VERSION_FILE).write_bytes(sentinel)
        except OSError as exc:
            raise StorageError(
                f"cannot write the demo game {game.id} in {game_dir}: {exc.strerror or exc}"
            ) from exc
        roots.append(root)
    return tuple(roots)


def _check_play_seconds(play_seconds: int) -> None:
    if not 1 <= play_seconds <= MAX_PLAY_SECONDS:
        raise ValueError(f"play_seconds must be 1-{MAX_PLAY_SECONDS}, got {play_seconds}")
