"""The demo games: what they are called, what their archives hold, their catalog entries.

Demo games are ordinary catalog games whose ids start with :data:`DEMO_ID_PREFIX`.
They exist only in demo runs: :func:`with_demo_games` adds their entries to the
catalog of both local peers, so both agree on them, and a run without the demo
uses the plain catalog, where a ``demo-...`` folder is invisible to the library,
the network and the UI.

Each game ships one or more archives (tar or zip, stored, so their bytes do not
depend on a compressor's version). The first archive holds the launcher: a POSIX
shell script (``play.sh``, mode 0755) and a Windows batch file (``play.cmd``);
the catalog names the one that runs on this platform.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from lanspread.core.catalog import Catalog, CatalogGame
from lanspread.demo.archives import ArchiveMember, tar_bytes, zip_bytes
from lanspread.errors import CatalogError

DEMO_ID_PREFIX = "demo-"
POSIX_LAUNCHER = "play.sh"
WINDOWS_LAUNCHER = "play.cmd"
PLAY_LOG = "play.log"
"""The file a demo launcher appends to, in its working directory (the game's ``local/``)."""
DEMO_VERSION = "1.0"
KiB = 1024
MiB = 1024 * KiB
# How long a demo game "plays": long enough for a player to see its card say
# Running, short enough that the demo moves on by itself.
DEFAULT_PLAY_SECONDS = 4


class ArchiveKind(enum.Enum):
    TAR = "tar"
    ZIP = "zip"

    def pack(self, members: Sequence[ArchiveMember]) -> bytes:
        """The archive of ``members`` in this format (deterministic bytes)."""
        return tar_bytes(members) if self is ArchiveKind.TAR else zip_bytes(members)


@dataclass(frozen=True, slots=True)
class DemoArchive:
    """One ``.eti`` archive of a demo game: its file name, format and data files."""

    name: str
    kind: ArchiveKind
    data_files: tuple[tuple[str, int], ...]
    """``(path inside the archive, size in bytes)`` of generated filler data."""


@dataclass(frozen=True, slots=True)
class DemoGame:
    id: str
    name: str
    genre: str
    description: str
    max_players: int
    archives: tuple[DemoArchive, ...]
    """The first archive also carries the launchers and a README."""
    version: str = DEMO_VERSION


def _game(
    game_id: str, name: str, genre: str, max_players: int, about: str, *archives: DemoArchive
) -> DemoGame:
    """A demo game named ``<name> (demo)``, described as made up by lanspread and ``about``."""
    return DemoGame(
        id=f"{DEMO_ID_PREFIX}{game_id}",
        name=f"{name} (demo)",
        genre=genre,
        description=f"A demo game made up by lanspread{about}",
        max_players=max_players,
        archives=archives,
    )


_TAR, _ZIP = ArchiveKind.TAR, ArchiveKind.ZIP

DEMO_GAMES: tuple[DemoGame, ...] = (
    _game(
        "starfield",
        "Starfield Skirmish",
        "Arcade Shooter",
        8,
        ": download it from the Demo peer, install it and press Play. It runs for a few "
        "seconds and writes play.log in its folder.",
        DemoArchive(
            "starfield.eti",
            _TAR,
            (("data/sectors.pak", 2 * MiB + 300 * KiB), ("data/ships.pak", 900 * KiB)),
        ),
    ),
    _game(
        "pixelkart",
        "Pixel Kart",
        "Racing",
        4,
        ", shipped as a zip: four laps around a very small track. It runs for a few seconds "
        "and writes play.log.",
        DemoArchive(
            "pixelkart.eti",
            _ZIP,
            (("tracks/tiny-loop.trk", 1 * MiB + 512 * KiB), ("karts.pak", 600 * KiB)),
        ),
    ),
    _game(
        "towersiege",
        "Tower Siege",
        "Strategy",
        6,
        ", shipped as two archives (a tar and a zip) that install into one folder. Runs for a "
        "few seconds.",
        DemoArchive(
            "towersiege.eti",
            _TAR,
            (("maps/valley.map", 1 * MiB + 700 * KiB), ("units.pak", 1 * MiB)),
        ),
        DemoArchive("music.eti", _ZIP, (("music/theme.ogg", 1 * MiB + 200 * KiB),)),
    ),
)


def demo_game(game_id: str) -> DemoGame:
    """The demo game ``game_id``; :class:`KeyError` for any other id."""
    for game in DEMO_GAMES:
        if game.id == game_id:
            return game
    raise KeyError(game_id)


def launcher_for(platform: str = sys.platform) -> str:
    """The launcher the catalog names on ``platform`` (a ``sys.platform`` value)."""
    return WINDOWS_LAUNCHER if platform == "win32" else POSIX_LAUNCHER


def is_demo_id(game_id: str) -> bool:
    return game_id.startswith(DEMO_ID_PREFIX)


def demo_catalog_games(
    installed_sizes: dict[str, int], platform: str = sys.platform
) -> tuple[CatalogGame, ...]:
    """Catalog entries of the demo games; ``installed_sizes`` maps id to extracted bytes."""
    return tuple(
        CatalogGame(
            id=game.id,
            name=game.name,
            description=game.description,
            size_bytes=installed_sizes[game.id],
            genre=game.genre,
            max_players=game.max_players,
            executable=launcher_for(platform),
        )
        for game in DEMO_GAMES
    )


def merge_demo_entries(catalog: Catalog, entries: tuple[CatalogGame, ...]) -> Catalog:
    """``catalog`` plus ``entries``; a clash with an existing id is a :class:`CatalogError`.

    The source stays the base catalog's, so cover images still resolve as before
    (demo games have none).
    """
    clashes = sorted(entry.id for entry in entries if entry.id in catalog)
    if clashes:
        raise CatalogError(
            f"{catalog.source}: game {clashes[0]!r} clashes with a demo game; "
            f"ids starting with {DEMO_ID_PREFIX!r} are reserved for demo mode"
        )
    games = dict(catalog.games)
    games.update((entry.id, entry) for entry in entries)
    return Catalog(games=games, source=catalog.source)
