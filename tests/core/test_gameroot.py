"""Game-root rules: which names are payload, what a root's entries mean, versions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.gameroot import (
    INSTALLER_OWNED_NAMES,
    MAX_VERSION_LENGTH,
    OWNERSHIP_NAMES,
    RESERVED_NAMES,
    STAGING_NAMES,
    TRANSIENT_NAMES,
    EntryKind,
    RootEntry,
    RootState,
    classify_root,
    is_payload_name,
    is_reserved_name,
    parse_version_text,
    version_sort_key,
)


def entry(name: str, kind: EntryKind = EntryKind.FILE) -> RootEntry:
    return RootEntry(name=name, kind=kind, size=1, mtime_ns=1)


def test_reserved_names_cover_the_on_disk_contract() -> None:
    """The reserved set is installer-owned, transient, ownership-record and staged-update
    names, with every contract name."""
    assert RESERVED_NAMES == (
        INSTALLER_OWNED_NAMES | TRANSIENT_NAMES | OWNERSHIP_NAMES | STAGING_NAMES
    )
    assert {".lanspread.update"} == STAGING_NAMES
    assert {".lanspread.files.json", ".lanspread.files.json.tmp"} == OWNERSHIP_NAMES
    assert {
        "local",
        ".local.installing",
        ".local.backup",
        ".lanspread.json",
        ".lanspread.install.json",
        ".lanspread.install.next.json",
        ".softlan_game_installed",
        ".sync",
    } == INSTALLER_OWNED_NAMES
    assert {
        ".version.ini.tmp",
        ".version.ini.discarded",
        ".lanspread.download.json",
        ".lanspread.install.next.json.tmp",
    } <= TRANSIENT_NAMES
    assert "version.ini" not in RESERVED_NAMES


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_reserved_names_are_never_payload(name: str) -> None:
    """Every reserved name is reserved and not payload."""
    assert is_reserved_name(name)
    assert not is_payload_name(name)


@pytest.mark.parametrize("name", ["version.ini", "game.eti", "redist", "Local", "local.eti"])
def test_other_names_are_payload(name: str) -> None:
    """Everything else, the sentinel included, is payload (matching is exact)."""
    assert is_payload_name(name)
    assert not is_reserved_name(name)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([], RootState(False, False, False), id="empty"),
        pytest.param([entry("version.ini")], RootState(True, False, False), id="sentinel-only"),
        pytest.param(
            [entry("version.ini"), entry("a.eti")], RootState(True, False, True), id="downloaded"
        ),
        pytest.param(
            [entry("version.ini", EntryKind.SYMLINK), entry("a.eti")],
            RootState(False, False, True),
            id="symlinked-sentinel",
        ),
        pytest.param(
            [entry("version.ini", EntryKind.DIR)],
            RootState(False, False, False),
            id="sentinel-is-a-folder",
        ),
        pytest.param(
            [entry("version.ini", EntryKind.OTHER), entry("a.eti")],
            RootState(False, False, True),
            id="sentinel-is-special",
        ),
        pytest.param(
            [entry("local", EntryKind.DIR)], RootState(False, True, False), id="installed-only"
        ),
        pytest.param(
            [entry("local", EntryKind.FILE)], RootState(False, False, False), id="local-file"
        ),
        pytest.param(
            [entry("local", EntryKind.SYMLINK)],
            RootState(False, False, False),
            id="local-symlink",
        ),
        pytest.param(
            [entry(".lanspread.json"), entry(".version.ini.tmp")],
            RootState(False, False, False),
            id="reserved-only",
        ),
        pytest.param(
            [entry("VERSION.INI"), entry("a.eti")],
            RootState(False, False, True),
            id="sentinel-name-is-exact",
        ),
    ],
)
def test_classify_root(entries: list[RootEntry], expected: RootState) -> None:
    """Downloaded iff a regular root version.ini; installed iff local is a real folder."""
    assert classify_root(entries) == expected


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.2.3", "1.2.3"),
        ("version=1.2.3", "1.2.3"),
        ("[game]\nVersion = 2.0\n", "2.0"),
        ('[game]\nname = Quake\nversion = "1.32c"\n', "1.32c"),
        ("; comment\n# another\n\n20240102\n", "20240102"),
        ("\ufeffversion = 7", "7"),
        ("  1.0  \r\n", "1.0"),
        ("first line\nversion = 3", "3"),
        ("title = Game\nbuild = 5\n", None),
        ("", None),
        ("   \n\n", None),
        ("version =   ", None),
        ("[only-a-section]", None),
        ("1.\x00\x072", "1.2"),
        ("v" * 200, "v" * MAX_VERSION_LENGTH),
    ],
)
def test_parse_version_text(text: str, version: str | None) -> None:
    """An INI version key wins; else the first plain line; control characters dropped."""
    assert parse_version_text(text) == version


@given(st.text(max_size=300))
def test_parse_version_text_is_bounded_and_printable(text: str) -> None:
    """Whatever the file holds, the result is None or a short printable non-blank string."""
    version = parse_version_text(text)
    if version is not None:
        assert 0 < len(version) <= MAX_VERSION_LENGTH
        assert version.isprintable()
        assert version == version.strip()


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.9", "1.10"),
        ("1.2", "1.2.1"),
        ("20231231", "20240102"),
        ("v2", "v10"),
        ("1.0", "1.0a"),
        ("build 99", "build 100"),
        ("0.9.9", "1.0"),
        ("1.0-beta", "1.0-rc"),
    ],
)
def test_version_sort_key_is_natural(lower: str, higher: str) -> None:
    """Digit runs compare as numbers and text case-insensitively."""
    assert version_sort_key(lower) < version_sort_key(higher)


def test_unknown_version_sorts_below_every_known_one() -> None:
    """None (unknown) is below any version, even an empty-looking one."""
    assert version_sort_key(None) < version_sort_key("0")
    assert version_sort_key(None) < version_sort_key("a")


def test_version_sort_key_ignores_case_and_leading_zeros() -> None:
    """ "V1.0" equals "v1.0" and "1.01" equals "1.1" in order."""
    assert version_sort_key("V1.0") == version_sort_key("v1.0")
    assert version_sort_key("1.01") == version_sort_key("1.1")


def test_non_ascii_digits_do_not_break_the_key() -> None:
    """A superscript digit is a digit but not a decimal: it sorts as text, never raises."""
    assert version_sort_key("1\u00b2") == ((1, 1), (0, "\u00b2"))


@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=20))
def test_version_sort_key_is_a_total_order(versions: list[str | None]) -> None:
    """Any mix of peer-supplied versions sorts without error, and sorting is stable."""
    ordered = sorted(versions, key=version_sort_key)
    keys = [version_sort_key(version) for version in ordered]
    assert keys == sorted(keys)
