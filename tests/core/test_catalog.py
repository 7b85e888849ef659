"""Catalog parsing: a valid file, and the exact message for every malformed one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.catalog import (
    MAX_CATALOG_GAMES,
    MAX_GAME_ID_LENGTH,
    WINDOWS_RESERVED_NAMES,
    CatalogGame,
    is_safe_relative_path,
    is_valid_game_id,
    parse_catalog,
    windows_name_problem,
)
from lanspread.errors import CatalogError

SOURCE = "cat.toml"
REST = 'name = "N"\nsize_bytes = 1\ngenre = "G"\nmax_players = 2\n'


def game(fields: str) -> str:
    return f"[[game]]\n{fields}"


def test_valid_catalog_parses_every_field() -> None:
    """All fields reach CatalogGame; optional ones default; iteration keeps file order."""
    text = game(
        'id = "quake3"\nname = "Quake III Arena"\ndescription = "Frag."\n'
        'size_bytes = 480_000_000\ngenre = "Shooter"\nmax_players = 16\n'
        'executable = "bin/quake3.exe"\ncover = "quake3.png"\n'
    ) + game('id = "aoe2"\n' + REST)

    catalog = parse_catalog(text, SOURCE)

    assert catalog.source == SOURCE
    assert [entry.id for entry in catalog] == ["quake3", "aoe2"]
    assert catalog.get("quake3") == CatalogGame(
        id="quake3",
        name="Quake III Arena",
        description="Frag.",
        size_bytes=480_000_000,
        genre="Shooter",
        max_players=16,
        executable="bin/quake3.exe",
        cover="quake3.png",
    )
    assert catalog.get("aoe2") == CatalogGame("aoe2", "N", "", 1, "G", 2)


def test_catalog_container_protocol() -> None:
    """len, membership (str only), get and ids behave like a read-only mapping of games."""
    catalog = parse_catalog(game('id = "a"\n' + REST) + game('id = "b"\n' + REST), SOURCE)

    assert len(catalog) == 2
    assert "a" in catalog
    assert "z" not in catalog
    assert 5 not in catalog
    assert catalog.get("z") is None
    assert catalog.ids == frozenset({"a", "b"})


BAD_CATALOGS = [
    ("missing-id", game(REST), "game #1: field 'id': missing"),
    (
        "id-traversal",
        game('id = "../x"\n' + REST),
        "game #1: field 'id': '../x' is not a single path component of [a-z0-9._-] "
        "(at most 64 characters)",
    ),
    (
        "id-uppercase",
        game('id = "Quake"\n' + REST),
        "game #1: field 'id': 'Quake' is not a single path component of [a-z0-9._-] "
        "(at most 64 characters)",
    ),
    (
        "id-dot",
        game('id = "."\n' + REST),
        "game #1: field 'id': '.' is not a single path component of [a-z0-9._-] "
        "(at most 64 characters)",
    ),
    (
        "id-not-text",
        game("id = 5\n" + REST),
        "game #1: field 'id': 5 is not a single path component of [a-z0-9._-] "
        "(at most 64 characters)",
    ),
    (
        "id-windows-device",
        game('id = "con"\n' + REST),
        "game #1: field 'id': 'con' is a device name Windows reserves (con, prn, aux, nul, "
        "com1-com9, lpt1-lpt9, also with an extension); no folder can have that name there",
    ),
    (
        "id-windows-device-with-extension",
        game('id = "quake3"\n' + REST) + game('id = "lpt1.games"\n' + REST),
        "game #2: field 'id': 'lpt1.games' is a device name Windows reserves (con, prn, aux, "
        "nul, com1-com9, lpt1-lpt9, also with an extension); no folder can have that name there",
    ),
    (
        "id-trailing-dot",
        game('id = "quake3."\n' + REST),
        "game #1: field 'id': 'quake3.' ends with a dot or a space, which Windows drops from "
        "folder names",
    ),
    (
        "duplicate-id",
        game('id = "a"\n' + REST) + game('id = "a"\n' + REST),
        "game #2: field 'id': duplicate id 'a'",
    ),
    (
        "name-not-text",
        game('id = "a"\nname = 5\nsize_bytes = 1\ngenre = "G"\nmax_players = 2\n'),
        "game #1 ('a'): field 'name': expected text, got int",
    ),
    (
        "name-blank",
        game('id = "a"\nname = "  "\nsize_bytes = 1\ngenre = "G"\nmax_players = 2\n'),
        "game #1 ('a'): field 'name': must not be empty",
    ),
    (
        "name-too-long",
        game(f'id = "a"\nname = "{"n" * 201}"\nsize_bytes = 1\ngenre = "G"\nmax_players = 2\n'),
        "game #1 ('a'): field 'name': longer than 200 characters",
    ),
    (
        "genre-missing",
        game('id = "a"\nname = "N"\nsize_bytes = 1\nmax_players = 2\n'),
        "game #1 ('a'): field 'genre': missing",
    ),
    (
        "size-not-number",
        game('id = "a"\nname = "N"\nsize_bytes = "big"\ngenre = "G"\nmax_players = 2\n'),
        "game #1 ('a'): field 'size_bytes': expected a whole number, got str",
    ),
    (
        "size-bool",
        game('id = "a"\nname = "N"\nsize_bytes = true\ngenre = "G"\nmax_players = 2\n'),
        "game #1 ('a'): field 'size_bytes': expected a whole number, got bool",
    ),
    (
        "size-float",
        game('id = "a"\nname = "N"\nsize_bytes = 1.5\ngenre = "G"\nmax_players = 2\n'),
        "game #1 ('a'): field 'size_bytes': expected a whole number, got float",
    ),
    (
        "size-negative",
        game('id = "a"\nname = "N"\nsize_bytes = -1\ngenre = "G"\nmax_players = 2\n'),
        "game #1 ('a'): field 'size_bytes': must be at least 0, got -1",
    ),
    (
        "zero-players",
        game('id = "a"\nname = "N"\nsize_bytes = 1\ngenre = "G"\nmax_players = 0\n'),
        "game #1 ('a'): field 'max_players': must be at least 1, got 0",
    ),
    (
        "executable-absolute",
        game('id = "a"\n' + REST + 'executable = "/bin/sh"\n'),
        "game #1 ('a'): field 'executable': '/bin/sh' must be a relative path that stays "
        "inside its folder",
    ),
    (
        "executable-parent",
        game('id = "a"\n' + REST + 'executable = "../x.exe"\n'),
        "game #1 ('a'): field 'executable': '../x.exe' must be a relative path that stays "
        "inside its folder",
    ),
    (
        "executable-drive",
        game('id = "a"\n' + REST + "executable = 'C:\\x.exe'\n"),
        "game #1 ('a'): field 'executable': 'C:\\\\x.exe' must be a relative path that stays "
        "inside its folder",
    ),
    (
        "executable-empty",
        game('id = "a"\n' + REST + 'executable = ""\n'),
        "game #1 ('a'): field 'executable': expected a non-empty relative path",
    ),
    (
        "cover-too-long",
        game('id = "a"\n' + REST + f'cover = "{"c" * 261}"\n'),
        "game #1 ('a'): field 'cover': longer than 260 characters",
    ),
    (
        "unknown-field",
        game('id = "a"\n' + REST + 'colour = "red"\n'),
        "game #1 ('a'): field 'colour': unknown field",
    ),
    (
        "toml-syntax",
        game('id = "a"\nname = \n'),
        "not valid TOML: Invalid value (at line 3, column 8)",
    ),
    ("empty-file", "", "no [[game]] entries"),
    ("only-comments", "# nothing here\n", "no [[game]] entries"),
    ("game-as-table", '[game]\nid = "a"\n', "no [[game]] entries"),
    ("unknown-top-level", "games = 1\n", "unknown top-level key 'games' (expected [[game]])"),
    ("entry-not-a-table", "game = [1]\n", "game #1: field 'game': expected a table"),
]


@pytest.mark.parametrize(
    ("text", "message"),
    [pytest.param(text, message, id=name) for name, text, message in BAD_CATALOGS],
)
def test_malformed_catalog_message(text: str, message: str) -> None:
    """Each defect raises CatalogError naming the source, the entry and the field."""
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, SOURCE)

    assert str(caught.value) == f"{SOURCE}: {message}"


def test_too_many_games_is_refused() -> None:
    """A catalog above MAX_CATALOG_GAMES entries is refused before any entry is parsed."""
    text = "game = [" + ", ".join(["{}"] * (MAX_CATALOG_GAMES + 1)) + "]\n"

    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, SOURCE)

    assert str(caught.value) == (
        f"{SOURCE}: {MAX_CATALOG_GAMES + 1} games exceeds the limit of {MAX_CATALOG_GAMES}"
    )


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("quake3", True),
        ("a", True),
        ("half-life_2.goty", True),
        ("x" * MAX_GAME_ID_LENGTH, True),
        ("x" * (MAX_GAME_ID_LENGTH + 1), False),
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("a\\b", False),
        ("Quake", False),
        ("spa ce", False),
        ("caf\u00e9", False),
        ("con", False),
        ("nul.tar", False),
        ("com1", False),
        ("com9.x", False),
        ("lpt5", False),
        ("aux", False),
        ("prn.", False),
        ("quake3.", False),
        ("quake3\n", False),
        ("console", True),
        ("com0", True),
        ("x.con", True),
        ("auxiliary", True),
        (None, False),
        (5, False),
    ],
)
def test_is_valid_game_id(value: object, valid: bool) -> None:
    """A game id is one short path component of [a-z0-9._-], never . or .., never a
    Windows device name (also with an extension) and never ending with a dot."""
    assert is_valid_game_id(value) is valid


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("game.exe", True),
        ("bin/game.exe", True),
        ("..", False),
        ("bin/../../x", False),
        ("./game.exe", True),
        ("/abs", False),
        ("C:/x", False),
        ("C:x", False),
        ("\\\\server\\share", False),
        ("a\\b", False),
        ("a\x00b", False),
        ("a//b", True),
        ("", False),
    ],
)
def test_is_safe_relative_path(value: str, safe: bool) -> None:
    """Relative paths must stay inside their folder under both POSIX and Windows rules."""
    assert is_safe_relative_path(value) is safe


@given(st.text(max_size=40))
def test_valid_ids_are_single_safe_components(value: str) -> None:
    """Any string accepted as an id is also a safe one-component relative path."""
    if is_valid_game_id(value):
        assert is_safe_relative_path(value)
        assert "/" not in value


@pytest.mark.parametrize("name", sorted(WINDOWS_RESERVED_NAMES))
def test_every_windows_device_name_is_refused_in_any_case_and_with_an_extension(
    name: str,
) -> None:
    """Each reserved device name is a Windows problem in any case and with an extension."""
    for variant in (name, name.upper(), f"{name}.txt", f"{name.capitalize()}.tar.gz"):
        assert windows_name_problem(variant) == (
            f"{variant!r} is a device name Windows reserves (con, prn, aux, nul, com1-com9, "
            "lpt1-lpt9, also with an extension); no folder can have that name there"
        )
    assert not is_valid_game_id(name)
    assert not is_valid_game_id(f"{name}.txt")


@pytest.mark.parametrize("name", ["quake3.", "quake3 ", "a. "])
def test_a_trailing_dot_or_space_is_a_windows_problem(name: str) -> None:
    """Windows drops a trailing dot or space from folder names, so such a name is refused."""
    assert windows_name_problem(name) == (
        f"{name!r} ends with a dot or a space, which Windows drops from folder names"
    )


@pytest.mark.parametrize("name", ["quake3", "console", "com0", "x.con", "lpt10"])
def test_ordinary_names_are_no_windows_problem(name: str) -> None:
    """Names that merely start with or contain a device name are fine folder names."""
    assert windows_name_problem(name) is None
