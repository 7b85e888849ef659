"""The game catalog: the allow-list of games every peer agrees on.

A game id is a single path component of ``[a-z0-9._-]`` (never ``.`` or ``..``)
that every OS accepts as a folder name (never a Windows device name such as
``con`` or ``com1.x``, never a trailing dot); it names the game's root folder in
every peer's game directory. Any folder whose
name is not a catalog id is invisible to the library, the wire and the UI.

The catalog file is TOML::

    [[game]]
    id = "quake3"
    name = "Quake III Arena"
    description = "..."
    size_bytes = 480_000_000
    genre = "Shooter"
    max_players = 16
    executable = "quake3.exe"   # optional, relative to local/, on every platform
    cover = "quake3.png"        # optional

or, with a launcher per platform (every key optional, at least one executable)::

    executable = { windows = "quake3.exe", linux = "ioquake3.x86_64" }
    executable = { windows = "AoE2DE.exe", runner = "wine" }  # Wine starts it on Linux

A ``runner`` is one of :data:`KNOWN_RUNNERS`: it starts the Windows executable where no
launcher for the platform exists (see :mod:`lanspread.core.launching`).

This module parses text; reading files is the caller's job.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from lanspread.errors import CatalogError

# Long enough for any real title slug, short enough to keep paths and wire frames small.
MAX_GAME_ID_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 4000
MAX_PATH_FIELD_LENGTH = 260
MAX_CATALOG_GAMES = 10_000

# Device names Windows reserves in every folder, with or without an extension
# ("con", "con.txt"): a game root by that name cannot be created there. The catalog
# is shared by all players, so such an id is refused on every OS.
WINDOWS_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{digit}" for digit in range(1, 10)}
    | {f"lpt{digit}" for digit in range(1, 10)}
)
_RESERVED_ALTERNATIVES = "|".join(sorted(WINDOWS_RESERVED_NAMES))

GAME_ID_PATTERN = (
    r"^(?!\.\.?$)"  # never . or ..
    rf"(?!(?i:{_RESERVED_ALTERNATIVES})(?:\.|$))"  # never a Windows device name
    r"(?!.*[. ]$)"  # never a trailing dot or space (Windows drops them)
    rf"[a-z0-9._-]{{1,{MAX_GAME_ID_LENGTH}}}\Z"  # \Z: "$" would let a final newline through
)
"""The whole rule for a game id, shared by the catalog and the wire decoder."""
_GAME_ID_FULL_RE = re.compile(GAME_ID_PATTERN)


def windows_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a folder name on Windows, or ``None`` when it can."""
    if name.split(".", 1)[0].lower() in WINDOWS_RESERVED_NAMES:
        return (
            f"{name!r} is a device name Windows reserves (con, prn, aux, nul, com1-com9, "
            "lpt1-lpt9, also with an extension); no folder can have that name there"
        )
    if name.endswith((".", " ")):
        return f"{name!r} ends with a dot or a space, which Windows drops from folder names"
    return None


_PLAIN_COMPONENT_RE = re.compile(rf"(?!\.\.?\Z)[a-z0-9._-]{{1,{MAX_GAME_ID_LENGTH}}}")


def _is_plain_component(value: object) -> bool:
    """One path component of the id alphabet, before the Windows rules are applied."""
    return isinstance(value, str) and _PLAIN_COMPONENT_RE.fullmatch(value) is not None


def is_valid_game_id(value: object) -> bool:
    """True when ``value`` may name a game root on every OS: one safe path component."""
    return isinstance(value, str) and _GAME_ID_FULL_RE.fullmatch(value) is not None


KNOWN_RUNNERS = frozenset({"wine"})
"""Programs a catalog may name to start a Windows executable elsewhere: a fixed list,
never any program name a shared catalog happens to hold."""


@dataclass(frozen=True, slots=True)
class Launchers:
    """A game's launchers per platform, relative to ``local/``."""

    windows: str | None = None
    linux: str | None = None
    runner: str | None = None
    """A program of :data:`KNOWN_RUNNERS` that starts ``windows`` where there is no
    launcher for the platform."""


@dataclass(frozen=True, slots=True)
class CatalogGame:
    id: str
    name: str
    description: str
    size_bytes: int
    """Approximate installed size, shown to players before they download."""
    genre: str
    max_players: int
    executable: str | None = None
    """Path of the game's launcher relative to ``local/`` on every platform (the plain
    form); ``None`` when the catalog names none, or names them per platform."""
    cover: str | None = None
    """Cover image file name, relative to the catalog file's folder."""
    launchers: Launchers | None = None
    """The launchers per platform (the table form of ``executable``)."""


@dataclass(frozen=True, slots=True)
class Catalog:
    games: Mapping[str, CatalogGame]
    source: str
    """Where the catalog came from, for messages (a file path or ``<bundled>``)."""

    def __contains__(self, game_id: object) -> bool:
        return isinstance(game_id, str) and game_id in self.games

    def __iter__(self) -> Iterator[CatalogGame]:
        return iter(self.games.values())

    def __len__(self) -> int:
        return len(self.games)

    def get(self, game_id: str) -> CatalogGame | None:
        return self.games.get(game_id)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.games)


def parse_catalog(text: str, source: str) -> Catalog:
    """Parse catalog TOML; any defect raises :class:`CatalogError` naming where and which field."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    unknown_top = sorted(set(document) - {"game"})
    if unknown_top:
        raise CatalogError(
            f"{source}: unknown top-level key {unknown_top[0]!r} (expected [[game]])"
        )
    entries = document.get("game")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{source}: no [[game]] entries")
    if len(entries) > MAX_CATALOG_GAMES:
        raise CatalogError(
            f"{source}: {len(entries)} games exceeds the limit of {MAX_CATALOG_GAMES}"
        )
    games: dict[str, CatalogGame] = {}
    for index, entry in enumerate(entries, start=1):
        game = _parse_entry(entry, _EntryContext(source, index))
        if game.id in games:
            raise CatalogError(f"{source}: game #{index}: field 'id': duplicate id {game.id!r}")
        games[game.id] = game
    return Catalog(games=games, source=source)


@dataclass(frozen=True, slots=True)
class _EntryContext:
    source: str
    index: int
    game_id: str | None = None

    def fail(self, field: str, problem: str) -> CatalogError:
        where = f"game #{self.index}"
        if self.game_id is not None:
            where += f" ({self.game_id!r})"
        return CatalogError(f"{self.source}: {where}: field {field!r}: {problem}")


_KNOWN_FIELDS = frozenset(
    {"id", "name", "description", "size_bytes", "genre", "max_players", "executable", "cover"}
)


def _parse_entry(entry: object, ctx: _EntryContext) -> CatalogGame:
    if not isinstance(entry, dict):
        raise ctx.fail("game", "expected a table")
    game_id = entry.get("id")
    if game_id is None:
        raise ctx.fail("id", "missing")
    if not is_valid_game_id(game_id):
        problem = windows_name_problem(game_id) if _is_plain_component(game_id) else None
        raise ctx.fail(
            "id",
            problem
            or f"{game_id!r} is not a single path component of [a-z0-9._-] "
            f"(at most {MAX_GAME_ID_LENGTH} characters)",
        )
    assert isinstance(game_id, str)
    ctx = _EntryContext(ctx.source, ctx.index, game_id)
    unknown = sorted(set(entry) - _KNOWN_FIELDS)
    if unknown:
        raise ctx.fail(unknown[0], "unknown field")
    raw_executable = entry.get("executable")
    launchers = _launchers(raw_executable, ctx) if isinstance(raw_executable, dict) else None
    executable = (
        None if launchers is not None else _optional_relative_path(entry, "executable", ctx)
    )
    cover = _optional_relative_path(entry, "cover", ctx)
    return CatalogGame(
        id=game_id,
        name=_text(entry, "name", MAX_NAME_LENGTH, ctx),
        description=_text(entry, "description", MAX_DESCRIPTION_LENGTH, ctx, required=False),
        size_bytes=_whole_number(entry, "size_bytes", ctx, minimum=0),
        genre=_text(entry, "genre", MAX_NAME_LENGTH, ctx),
        max_players=_whole_number(entry, "max_players", ctx, minimum=1),
        executable=executable,
        cover=cover,
        launchers=launchers,
    )


_LAUNCHER_KEYS = frozenset({"windows", "linux", "runner"})


def _launchers(table: Mapping[str, Any], ctx: _EntryContext) -> Launchers:
    """The table form of ``executable``: a path per platform and an optional runner."""
    unknown = sorted(set(table) - _LAUNCHER_KEYS)
    if unknown:
        raise ctx.fail(
            "executable", f"unknown key {unknown[0]!r} (expected windows, linux, runner)"
        )
    windows = _optional_relative_path(table, "windows", ctx)
    linux = _optional_relative_path(table, "linux", ctx)
    runner = table.get("runner")
    if runner is not None and runner not in KNOWN_RUNNERS:
        known = ", ".join(sorted(KNOWN_RUNNERS))
        raise ctx.fail("executable", f"runner {runner!r} is not one of: {known}")
    if runner is not None and windows is None:
        raise ctx.fail("executable", "a runner needs a windows executable to start")
    if windows is None and linux is None:
        raise ctx.fail("executable", "names no windows or linux executable")
    return Launchers(windows=windows, linux=linux, runner=runner)


def _text(
    entry: Mapping[str, Any], field: str, limit: int, ctx: _EntryContext, *, required: bool = True
) -> str:
    value = entry.get(field)
    if value is None:
        if required:
            raise ctx.fail(field, "missing")
        return ""
    if not isinstance(value, str):
        raise ctx.fail(field, f"expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise ctx.fail(field, "must not be empty")
    if len(value) > limit:
        raise ctx.fail(field, f"longer than {limit} characters")
    return value


def _whole_number(entry: Mapping[str, Any], field: str, ctx: _EntryContext, *, minimum: int) -> int:
    value = entry.get(field)
    if value is None:
        raise ctx.fail(field, "missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.fail(field, f"expected a whole number, got {type(value).__name__}")
    if value < minimum:
        raise ctx.fail(field, f"must be at least {minimum}, got {value}")
    return value


def _optional_relative_path(entry: Mapping[str, Any], field: str, ctx: _EntryContext) -> str | None:
    value = entry.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ctx.fail(field, "expected a non-empty relative path")
    if len(value) > MAX_PATH_FIELD_LENGTH:
        raise ctx.fail(field, f"longer than {MAX_PATH_FIELD_LENGTH} characters")
    if not is_safe_relative_path(value):
        raise ctx.fail(field, f"{value!r} must be a relative path that stays inside its folder")
    return value


def is_safe_relative_path(value: str) -> bool:
    """True for a relative path with no ``..``, no drive, no root, under both path rules."""
    if "\x00" in value or "\\" in value:
        return False
    posix = PurePosixPath(value)
    windows = PureWindowsPath(value)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        return False
    return all(part not in {"", ".", ".."} for part in posix.parts) and bool(posix.parts)
