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

Installable games
-----------------
A :class:`FixtureGame` holds opaque archive bytes: enough to be served and
fetched, not to be installed. An :class:`InstallableGame` ships real archives
(tar, zip, 7z, RAR, from :mod:`tests.support.archives`) whose members are
deterministic too, so an install's ``local/`` tree is known in advance
(:meth:`InstallableGame.local_manifest`). Building archives of tens of MiB
costs time, so an :class:`ArchiveCache` builds each distinct game root once
per test session on disk and copies it into every peer that holds it. Member
bytes depend on the game id, the archive name, its ``seed`` and the member
path but not on the version, so a new version that keeps an archive's seed
ships that archive byte for byte unchanged (an update can reuse it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tests.support.archives import ArchiveFormat, Kind, Member, build_archive
from tests.support.trees import write_tree

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


def catalog_toml(game_ids: Iterable[str], executables: Mapping[str, str] | None = None) -> str:
    """Catalog TOML with one small entry per id (name, genre and sizes made up).

    ``executables`` names the start program (relative to ``local/``) of some games.
    """
    entries = []
    for game_id in game_ids:
        entry: dict[str, object] = {
            "id": game_id,
            "name": f"Fixture {game_id}",
            "description": f"Deterministic test game {game_id}.",
            "size_bytes": DEFAULT_ARCHIVE_SIZE,
            "genre": "Test",
            "max_players": 8,
        }
        if executables and game_id in executables:
            entry["executable"] = executables[game_id]
        # JSON string and integer literals are valid TOML literals too.
        lines = [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
        entries.append("[[game]]\n" + "\n".join(lines) + "\n")
    return "\n".join(entries)


def write_catalog(
    path: Path,
    game_ids: Iterable[str] = FIXTURE_CATALOG_IDS,
    executables: Mapping[str, str] | None = None,
) -> Path:
    """Write a catalog file listing ``game_ids`` (with ``executables``); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(catalog_toml(game_ids, executables), encoding="utf-8")
    return path


def sideload(game_dir: Path, game: FixtureGame) -> Path:
    """Write ``game``'s root into ``game_dir`` in place; returns the root."""
    root = game_dir / game.id
    write_tree(root, game.files())
    return root


def add_game(game_dir: Path, game: FixtureGame) -> Path:
    """Build ``game``'s root beside ``game_dir`` and rename it in: it appears complete."""
    staging = game_dir.parent / f"{game_dir.name}{STAGING_SUFFIX}" / game.id
    if staging.exists():
        shutil.rmtree(staging)
    write_tree(staging, game.files())
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
    install_policy: str | None = None,
    party: str | None = None,
    chunk_size: int | None = None,
) -> list[str]:
    """argv of ``lanspread peer-cli`` run by the interpreter running the tests;
    ``chunk_size`` pins the manifests' chunk size (else a game's size sets it)."""
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
    if install_policy is not None:
        argv += ["--install-policy", install_policy]
    if party is not None:
        argv += ["--party", party]
    if chunk_size is not None:
        argv += ["--chunk-size", str(chunk_size)]
    return argv


# -- installable games ---------------------------------------------------------------

# Mode of the start programs inside archives: executable by its owner and readable.
EXECUTABLE_MODE = 0o755
# The cache key is a digest prefix of the game's spec: 64 bits never collide
# among the handful of games a session builds.
CACHE_KEY_HEX_CHARS = 16


@dataclass(frozen=True, slots=True)
class ArchiveSpec:
    """One archive of an installable game: file name, format and members."""

    name: str
    format: ArchiveFormat
    members: tuple[tuple[str, int], ...]
    """``(path inside the archive, size)`` of each deterministic member file."""
    programs: tuple[tuple[str, bytes], ...] = ()
    """``(path, bytes)`` of executable members (start scripts), written mode 755."""
    seed: str = "1"
    """Varies the members' bytes; a new version keeping the seed keeps the archive."""

    def files(self, game_id: str) -> dict[str, bytes]:
        """Every regular file the archive holds: path inside it to bytes."""
        files = dict(self.programs)
        for path, size in self.members:
            files[path] = deterministic_bytes(f"{game_id}/{self.name}/{self.seed}/{path}", size)
        return files

    def build(self, game_id: str) -> bytes:
        """The archive's bytes (the same for the same spec, every time)."""
        programs = {path for path, _ in self.programs}
        entries = [
            Member(path, data, mode=EXECUTABLE_MODE if path in programs else 0o644)
            for path, data in self.files(game_id).items()
        ]
        folders = {
            "/".join(parts[:depth])
            for entry in entries
            for parts in [entry.name.split("/")[:-1]]
            for depth in range(1, len(parts) + 1)
        }
        entries += [Member(folder, kind=Kind.DIR, mode=EXECUTABLE_MODE) for folder in folders]
        return build_archive(self.format, sorted(entries, key=lambda entry: entry.name))


@dataclass(frozen=True, slots=True)
class InstallableGame:
    """A game root of real archives plus its ``version.ini``: installable and playable."""

    id: str
    version: str
    archives: tuple[ArchiveSpec, ...]

    def with_version(self, version: str, *changed: ArchiveSpec) -> InstallableGame:
        """The next version: ``changed`` archives replace those of the same name."""
        by_name = {archive.name: archive for archive in self.archives}
        by_name.update({archive.name: archive for archive in changed})
        return replace(self, version=version, archives=tuple(by_name.values()))

    @property
    def sentinel(self) -> bytes:
        return f"{self.version}\n".encode()

    def extracted(self) -> dict[str, bytes]:
        """Every file an install puts in ``local/``: the union of the archives' members."""
        files: dict[str, bytes] = {}
        for archive in self.archives:
            files.update(archive.files(self.id))
        return files

    def local_manifest(self) -> dict[str, str]:
        """SHA-256 per path of what ``local/`` holds after installing this game."""
        return {path: _sha256(data) for path, data in self.extracted().items()}

    def summary(self, *, size_bytes: int, installed: bool = False) -> dict[str, object]:
        """The ``GameSummary`` JSON a peer reports for this root (``size_bytes`` from disk).

        An installed root also names the version its install record holds.
        """
        summary: dict[str, object] = {
            "id": self.id,
            "availability": "Ready",
            "version": self.version,
            "installed": installed,
            "size_bytes": size_bytes,
        }
        if installed:
            summary["installed_version"] = self.version
        return summary


class ArchiveCache:
    """Installable game roots built once per session in ``directory``, copied on demand.

    A root is built in a staging folder and renamed into place, so a crash never
    leaves a half-built root that a later call would trust.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def root(self, game: InstallableGame) -> Path:
        """The cached root of ``game`` (built on first use); never hand it to a peer."""
        key = hashlib.sha256(repr(game).encode()).hexdigest()[:CACHE_KEY_HEX_CHARS]
        root = self.directory / f"{game.id}-{key}"
        if root.is_dir():
            return root
        staging = self.directory / f".{game.id}-{key}{STAGING_SUFFIX}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        for archive in game.archives:
            (staging / archive.name).write_bytes(archive.build(game.id))
        (staging / VERSION_FILE).write_bytes(game.sentinel)
        staging.rename(root)
        return root

    def place(self, game_dir: Path, game: InstallableGame) -> Path:
        """Copy ``game``'s root into ``game_dir`` (the sentinel last); returns the root."""
        source = self.root(game)
        target = game_dir / game.id
        target.mkdir(parents=True, exist_ok=True)
        names = sorted(path.name for path in source.iterdir())
        for name in sorted(names, key=lambda name: name == VERSION_FILE):  # sentinel last
            shutil.copyfile(source / name, target / name)
        return target

    def manifest(self, game: InstallableGame) -> dict[str, str]:
        """SHA-256 per path of ``game``'s root: what every copy of it must hold."""
        return manifest(self.root(game))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
