"""The organizer's commands (party init, catalog pin, catalog sign) and --party."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from tests.support.peers import sideload

from lanspread.cli.app import main
from lanspread.cli.organizer import resolve_party_code
from lanspread.core.manifest import MIN_CHUNK_SIZE, manifest_digest
from lanspread.core.party import Verdict, check_catalog, party_code, public_key_bytes
from lanspread.errors import PartyError
from lanspread.files.hashing import hash_game_payload
from lanspread.storage import party_files
from lanspread.storage.settings import SettingsStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_init_makes_a_private_key_and_prints_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """party init writes a 0600 key and prints the code derived from it; party code
    prints the same code again."""
    state = tmp_path / "state"
    status, lines, _ = run(capsys, "party", "init", "--state-dir", str(state))
    assert status == 0
    key = party_files.load_party_key(state)
    code = party_code(public_key_bytes(key))
    assert lines == [
        f"party key: {party_files.key_path(state)} (keep it private)",
        f"party code: {code}",
    ]
    assert stat.S_IMODE(party_files.key_path(state).stat().st_mode) == 0o600
    assert run(capsys, "party", "code", "--state-dir", str(state))[1] == [code]


def test_init_never_replaces_a_party_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second init refuses: a new key would orphan every player's code."""
    state = tmp_path / "state"
    run(capsys, "party", "init", "--state-dir", str(state))
    before = party_files.key_path(state).read_bytes()
    status, _, err = run(capsys, "party", "init", "--state-dir", str(state))
    assert status == 2
    assert err == (
        f"lanspread: {party_files.key_path(state)} already holds a party key; "
        "remove it first to start a new party\n"
    )
    assert party_files.key_path(state).read_bytes() == before


def test_pin_and_sign_make_a_catalog_players_adopt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """catalog pin records the reference copy's manifest digest; catalog sign signs the
    pins as serial 1, then 2, each adopted by a peer of the printed code."""
    state = tmp_path / "state"
    root = sideload(tmp_path / "ref", "quake3", version="1.0", payload=b"pak" * 1000)
    run(capsys, "party", "init", "--state-dir", str(state))
    code = party_code(public_key_bytes(party_files.load_party_key(state)))
    status, lines, _ = run(
        capsys,
        "catalog",
        "pin",
        "quake3",
        "--from",
        str(root),
        "--chunk-size",
        str(MIN_CHUNK_SIZE),
        "--state-dir",
        str(state),
    )
    digest = manifest_digest(hash_game_payload(root, "quake3", "1.0", MIN_CHUNK_SIZE))
    assert status == 0
    assert lines == [
        f"pinned quake3 1.0: {digest} (3003 bytes, 2 files)",
        "run 'lanspread catalog sign' to publish it",
    ]
    status, lines, _ = run(capsys, "catalog", "sign", "--state-dir", str(state))
    assert status == 0
    assert lines == [
        f"signed catalog serial 1 with 1 pins: {party_files.signed_path(state)}",
        f"party code: {code}",
    ]
    first = party_files.load_signed(state)
    assert first is not None
    assert check_catalog(first, code, None) is Verdict.ADOPT
    assert [(p.game_id, p.version, p.digest) for p in first.catalog.pins] == [
        ("quake3", "1.0", digest)
    ]
    run(capsys, "catalog", "sign", "--state-dir", str(state))
    second = party_files.load_signed(state)
    assert second is not None
    assert second.serial == 2
    assert check_catalog(second, code, first) is Verdict.ADOPT


def test_pin_of_a_root_without_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reference copy whose version.ini names no version cannot be pinned."""
    root = sideload(tmp_path / "ref", "quake3", version="")
    status, _, err = run(
        capsys, "catalog", "pin", "quake3", "--from", str(root), "--state-dir", str(tmp_path)
    )
    assert status == 2
    assert err == f"lanspread: {root} has no version in its version.ini: nothing to pin\n"


def test_sign_without_a_key_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signing on a machine with no party key points at party init."""
    status, _, err = run(capsys, "catalog", "sign", "--state-dir", str(tmp_path))
    assert status == 2
    assert err == (
        f"lanspread: no party key at {party_files.key_path(tmp_path)}: "
        "run 'lanspread party init' first\n"
    )


def test_party_code_is_kept_in_the_settings(tmp_path: Path) -> None:
    """--party is normalised and saved; later starts without it use the saved code."""
    code = party_code(bytes(32))
    typed = code.lower().replace("-", "")
    assert resolve_party_code(tmp_path, typed) == code
    assert SettingsStore(tmp_path).load().party_code == code
    assert resolve_party_code(tmp_path, None) == code
    assert resolve_party_code(tmp_path / "other", None) is None


def test_malformed_party_code_is_refused(tmp_path: Path) -> None:
    """A mistyped code is refused before anything starts, and nothing is saved."""
    with pytest.raises(PartyError) as caught:
        resolve_party_code(tmp_path, "7KQ2-M9XD")
    assert str(caught.value) == (
        "a party code has 20 characters (like 7KQ2-7KQ2-7KQ2-7KQ2-7KQ2), got 8"
    )
    assert SettingsStore(tmp_path).load().party_code is None
