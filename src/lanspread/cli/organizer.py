"""The organizer's commands: ``lanspread party init``, ``catalog pin`` and ``catalog sign``.

::

    lanspread party init                      make the party key, print the party code
    lanspread party code                      print the code of the existing party key
    lanspread catalog pin GAME --from ROOT    hash a reference copy, pin its version
    lanspread catalog sign                    sign the pins as the next serial

Players start lanspread with ``--party CODE``; their peers then accept only catalogs
this key signed, and only content those catalogs pin. The rules live in
``core/party``, the files in ``storage/party_files``; this module parses options
and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import msgspec

from lanspread.cli.paths import default_state_dir
from lanspread.core.catalog import is_valid_game_id
from lanspread.core.manifest import manifest_digest
from lanspread.core.party import (
    Pin,
    check_catalog,
    parse_party_code,
    party_code,
    public_key_bytes,
    sign_catalog,
    with_pin,
)
from lanspread.errors import ConfigError, LanspreadError
from lanspread.files.hashing import hash_game_payload
from lanspread.files.version_ini import read_sentinel, version_from_sentinel
from lanspread.storage import party_files
from lanspread.storage.gamedir import prepare_state_dir
from lanspread.storage.settings import SettingsStore


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``party`` and ``catalog`` to the ``lanspread`` subcommands."""
    party = sub.add_parser("party", help="organize a party: make its key and code")
    party_sub = party.add_subparsers(dest="party_command", required=True)
    init = party_sub.add_parser("init", help="make the party key and print the party code")
    _state_dir_option(init)
    code = party_sub.add_parser("code", help="print the party code of the party key")
    _state_dir_option(code)
    catalog = sub.add_parser("catalog", help="pin game versions and sign the party catalog")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    pin = catalog_sub.add_parser("pin", help="pin the version of a reference copy of a game")
    pin.add_argument("game_id", metavar="GAME_ID")
    pin.add_argument(
        "--from", dest="game_root", required=True, type=Path, help="the reference copy's folder"
    )
    # Every peer hashes at the chunk size the game's size calls for; tests pin one.
    pin.add_argument("--chunk-size", type=int, default=None, help=argparse.SUPPRESS)
    _state_dir_option(pin)
    sign = catalog_sub.add_parser("sign", help="sign the pins as the next catalog serial")
    _state_dir_option(sign)


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="folder holding the party key and catalog"
    )


def main(args: argparse.Namespace) -> int:
    """Run a ``party`` or ``catalog`` command; 2 with a message when it fails."""
    try:
        state_dir = prepare_state_dir(args.state_dir or default_state_dir())
        for line in _run(args, state_dir):
            print(line)
    except LanspreadError as exc:
        print(f"lanspread: {exc}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace, state_dir: Path) -> list[str]:
    if args.command == "party" and args.party_command == "init":
        key = party_files.create_party_key(state_dir)
        return [
            f"party key: {party_files.key_path(state_dir)} (keep it private)",
            f"party code: {party_code(public_key_bytes(key))}",
        ]
    if args.command == "party":
        key = party_files.load_party_key(state_dir)
        return [party_code(public_key_bytes(key))]
    if args.catalog_command == "pin":
        return pin_game(state_dir, args.game_id, args.game_root, args.chunk_size)
    return sign(state_dir)


def pin_game(state_dir: Path, game_id: str, game_root: Path, chunk_size: int | None) -> list[str]:
    """Hash ``game_root`` as ``game_id`` and record its version's manifest digest."""
    if not is_valid_game_id(game_id):
        raise ConfigError(f"{game_id!r} is not a valid game id")
    version = version_from_sentinel(read_sentinel(game_root, time.time_ns()))
    if version is None:
        raise ConfigError(f"{game_root} has no version in its version.ini: nothing to pin")
    manifest = hash_game_payload(game_root, game_id, version, chunk_size)
    digest = manifest_digest(manifest)
    pins = with_pin(
        party_files.load_pins(state_dir), Pin(game_id=game_id, version=version, digest=digest)
    )
    party_files.save_pins(state_dir, pins)
    return [
        f"pinned {game_id} {version}: {digest} ({manifest.total_bytes} bytes, "
        f"{len(manifest.files)} files)",
        "run 'lanspread catalog sign' to publish it",
    ]


def sign(state_dir: Path) -> list[str]:
    """Sign the pins as the serial after the stored signed catalog's."""
    key = party_files.load_party_key(state_dir)
    code = party_code(public_key_bytes(key))
    held = party_files.load_signed(state_dir)
    serial = 1
    if held is not None and held.public_key == public_key_bytes(key):
        serial = held.serial + 1
    signed = sign_catalog(key, party_files.load_pins(state_dir), serial)
    check_catalog(signed, code, held if serial > 1 else None)  # proves what peers will check
    party_files.save_signed(state_dir, signed)
    return [
        f"signed catalog serial {serial} with {len(signed.catalog.pins)} pins: "
        f"{party_files.signed_path(state_dir)}",
        f"party code: {code}",
    ]


def resolve_party_code(state_dir: Path, given: str | None) -> str | None:
    """The party code to run with: ``given`` (then saved in the settings), else the saved one."""
    store = SettingsStore(state_dir)
    saved = store.load_or_default()
    if given is None:
        return None if saved.party_code is None else parse_party_code(saved.party_code)
    code = parse_party_code(given)
    if saved.party_code != code:
        store.save(msgspec.structs.replace(saved, party_code=code))
    return code
