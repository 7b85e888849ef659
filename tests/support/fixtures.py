"""Fixture libraries for scenario tests: a catalog file and sideloaded games.

A scenario peer needs a catalog TOML file and a game directory holding some of
the catalog's games. Everything here is deterministic: a game's archive bytes
are a pure function of its id, version and file name (SHAKE-256 output), so two
peers given the same :class:`FixtureGame` hold byte-identical roots, and a
download test can compare a fetched root against :func:`expected_manifest`
without keeping the source around.

A sideloaded game is what a player copies from a USB stick: a folder named by
the game id with ``.eti`` archives and the root ``version.ini`` sentinel (its
text is the version). :func:`add_game` builds the folder beside the game
directory and renames it in, so a watching peer sees the game appear complete
in one step; :func:`sideload` writes in place (for libraries built before a
peer starts).

:func:`peer_cli_argv` is the command line that starts ``lanspread peer-cli``
on such a library, with the interpreter running the tests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Every game of the fixture catalog, in the order a catalog file lists them.
FIXTURE_CATALOG_IDS: tuple[str, ...] = (
    "aoe2",
    "cs16",
    "factorio",
    "openttd",
    "quake3",
    "teeworlds",
    "warcraft3",
)
# Archives are small on purpose: scenario tests prove behaviour, not throughput,
# and a few KiB keeps building a library far below a millisecond per game.
DEFAULT_ARCHIVE_SIZE = 4096
VERSION_FILE = "version.ini"
# Staging folders for add_game sit beside the game directory, never inside it,
# so the watching peer cannot see a half-built root.
STAGING_SUFFIX = ".staging"


@dataclass(frozen=True, slots=True)
class FixtureGame:
    """One sideloaded game: its id, its version and its archives (name, size)."""

    id: str
    version: str = "1.0"
    archives: tuple[tuple[str, int], ...] = (("data.eti", DEFAULT_ARCHIVE_SIZE),)

    def files(self) -> dict[str, bytes]:
        """Every payload file of the root, relative path to bytes, the sentinel included."""
        payload = {
            name: deterministic_bytes(f"{self.id}/{self.version}/{name}", size)
            for name, size in self.archives
        }
        payload[VERSION_FILE] = self.version.encode()
        return payload

    @property
    def size_bytes(self) -> int:
        """Bytes of payload the library reports for this root."""
        return sum(len(data) for data in self.files().values())

    def summary(self) -> dict[str, object]:
        """The ``GameSummary`` a peer reports for this root, as its JSON object."""
        return {
            "id": self.id,
            "availability": "Ready",
            "version": self.version,
            "installed": False,
            "size_bytes": self.size_bytes,
        }


def deterministic_bytes(seed: str, size: int) -> bytes:
    """``size`` bytes that depend only on ``seed`` (SHAKE-256 output)."""
    return hashlib.shake_256(seed.encode()).digest(size)


def catalog_toml(game_ids: Iterable[str]) -> str:
    """Catalog TOML with one small entry per id (name, genre and sizes made up)."""
    entries = []
    for game_id in game_ids:
        entry = {
            "id": game_id,
            "name": f"Fixture {game_id}",
            "description": f"Deterministic test game {game_id}.",
            "size_bytes": DEFAULT_ARCHIVE_SIZE,
            "genre": "Test",
            "max_players": 8,
        }
        # JSON string and integer literals are valid TOML literals too.
        lines = [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
        entries.append("[[game]]\n" + "\n".join(lines) + "\n")
    return "\n".join(entries)


def write_catalog(path: Path, game_ids: Iterable[str] = FIXTURE_CATALOG_IDS) -> Path:
    """Write a catalog file listing ``game_ids``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(catalog_toml(game_ids), encoding="utf-8")
    return path


def sideload(game_dir: Path, game: FixtureGame) -> Path:
    """Write ``game``'s root into ``game_dir`` in place; returns the root."""
    root = game_dir / game.id
    _write_files(root, game.files())
    return root


def add_game(game_dir: Path, game: FixtureGame) -> Path:
    """Build ``game``'s root beside ``game_dir`` and rename it in: it appears complete."""
    staging = game_dir.parent / f"{game_dir.name}{STAGING_SUFFIX}" / game.id
    if staging.exists():
        shutil.rmtree(staging)
    _write_files(staging, game.files())
    root = game_dir / game.id
    staging.rename(root)
    return root


def remove_game(game_dir: Path, game_id: str) -> None:
    """Delete a game's root, as a player deleting the folder would."""
    shutil.rmtree(game_dir / game_id)


def set_version(game_dir: Path, game_id: str, version: str) -> None:
    """Rewrite a game's ``version.ini`` in place, as a player editing it would."""
    (game_dir / game_id / VERSION_FILE).write_text(version, encoding="utf-8")


def build_library(
    game_dir: Path, games: Iterable[FixtureGame], *, strays: Iterable[str] = ()
) -> Path:
    """A game directory holding ``games`` and, for each of ``strays``, a non-catalog folder.

    A stray folder looks exactly like a game (archive and sentinel) but its name is
    not a catalog id, so a peer must never show it.
    """
    game_dir.mkdir(parents=True, exist_ok=True)
    for game in games:
        sideload(game_dir, game)
    for name in strays:
        sideload(game_dir, FixtureGame(name))
    return game_dir


def expected_manifest(game: FixtureGame) -> dict[str, str]:
    """SHA-256 per relative path of ``game``'s payload: what a copy must hold."""
    return {path: hashlib.sha256(data).hexdigest() for path, data in game.files().items()}


def manifest(root: Path) -> dict[str, str]:
    """SHA-256 per relative path (POSIX) of every regular file under ``root``."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def summaries(games: Iterable[FixtureGame]) -> list[dict[str, object]]:
    """The JSON summaries a peer reports for ``games``, sorted by id as on the wire."""
    return [game.summary() for game in sorted(games, key=lambda game: game.id)]


def peer_cli_argv(
    *,
    name: str,
    game_dir: Path,
    state_dir: Path,
    catalog: Path | None,
    listen: str | None = None,
    mdns_interfaces: Sequence[str] = (),
    log_level: str = "info",
) -> list[str]:
    """argv of ``lanspread peer-cli`` run by the interpreter running the tests."""
    argv = [
        sys.executable,
        "-m",
        "lanspread",
        "peer-cli",
        "--name",
        name,
        "--game-dir",
        str(game_dir),
        "--state-dir",
        str(state_dir),
        "--log-level",
        log_level,
    ]
    if catalog is not None:
        argv += ["--catalog", str(catalog)]
    if listen is not None:
        argv += ["--listen", listen]
    for address in mdns_interfaces:
        argv += ["--mdns-interface", address]
    return argv


def _write_files(root: Path, files: Mapping[str, bytes]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    # The sentinel goes last, as a download writes it: a reader never sees it
    # before the archives it vouches for.
    for relative in sorted(files, key=lambda path: path == VERSION_FILE):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[relative])
