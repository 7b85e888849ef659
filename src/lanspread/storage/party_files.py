"""Party files in the state folder: the organizer's key, the pins and the signed catalog.

::

    <state>/party/organizer.key    raw Ed25519 private key (32 bytes), mode 0600,
                                   only on the organizer's machine
    <state>/party/catalog.json     the organizer's pins being prepared (unsigned)
    <state>/party/catalog.signed   the signed catalog: written by ``catalog sign`` on
                                   the organizer's machine, and by a peer that adopts
                                   a newer one from the network

The rules (what a valid catalog is, who may sign it) live in ``core/party``; this
module only reads and writes bytes, each write atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from lanspread.core.party import (
    MAX_SIGNED_CATALOG_SIZE,
    PartyCatalog,
    SignedCatalog,
    decode_signed_catalog,
    encode_signed_catalog,
)
from lanspread.errors import PartyError, StorageError
from lanspread.files.atomic import atomic_write_bytes, sweep_temp
from lanspread.platform import fileio

PARTY_DIR = "party"
KEY_FILE = "organizer.key"
PINS_FILE = "catalog.json"
SIGNED_FILE = "catalog.signed"
PRIVATE_KEY_SIZE = 32
# Only the owner may read the party key: whoever reads it can sign catalogs.
KEY_FILE_MODE = 0o600
# The pins file holds at most MAX_PINS pins of at most ~450 bytes of indented JSON
# each (see MAX_SIGNED_CATALOG_SIZE for the field limits): under 9 MB.
MAX_PINS_FILE_SIZE = 16 * 1024 * 1024


def party_dir(state_dir: Path) -> Path:
    return state_dir / PARTY_DIR


def key_path(state_dir: Path) -> Path:
    return party_dir(state_dir) / KEY_FILE


def pins_path(state_dir: Path) -> Path:
    return party_dir(state_dir) / PINS_FILE


def signed_path(state_dir: Path) -> Path:
    return party_dir(state_dir) / SIGNED_FILE


def _make_party_dir(state_dir: Path) -> None:
    try:
        party_dir(state_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {party_dir(state_dir)}: {exc.strerror or exc}") from exc


def create_party_key(state_dir: Path) -> Ed25519PrivateKey:
    """Make a new party key; refuses to replace one (that would orphan the party)."""
    _make_party_dir(state_dir)
    path = key_path(state_dir)
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | fileio.O_BINARY
    try:
        fd = os.open(path, flags, KEY_FILE_MODE)
    except FileExistsError:
        raise PartyError(
            f"{path} already holds a party key; remove it first to start a new party"
        ) from None
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from exc
    try:
        os.write(fd, raw)
        os.fsync(fd)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return key


def load_party_key(state_dir: Path) -> Ed25519PrivateKey:
    path = key_path(state_dir)
    raw = _read(path, PRIVATE_KEY_SIZE + 1)
    if raw is None:
        raise PartyError(f"no party key at {path}: run 'lanspread party init' first")
    if len(raw) != PRIVATE_KEY_SIZE:
        raise PartyError(f"{path} is not a party key ({len(raw)} bytes)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_pins(state_dir: Path) -> PartyCatalog:
    """The organizer's pins; empty when none were recorded yet."""
    path = pins_path(state_dir)
    data = _read(path, MAX_PINS_FILE_SIZE + 1)
    if data is None:
        return PartyCatalog()
    if len(data) > MAX_PINS_FILE_SIZE:
        raise StorageError(f"{path} is larger than {MAX_PINS_FILE_SIZE} bytes")
    try:
        return msgspec.json.decode(data, type=PartyCatalog)
    except msgspec.DecodeError as exc:
        raise StorageError(f"{path} is not a pins file: {exc}") from exc


def save_pins(state_dir: Path, catalog: PartyCatalog) -> None:
    _make_party_dir(state_dir)
    atomic_write_bytes(pins_path(state_dir), msgspec.json.format(msgspec.json.encode(catalog)))


def load_signed(state_dir: Path) -> SignedCatalog | None:
    """The stored signed catalog (not yet checked against any code), or ``None``."""
    path = signed_path(state_dir)
    data = _read(path, MAX_SIGNED_CATALOG_SIZE + 1)
    if data is None:
        return None
    try:
        return decode_signed_catalog(data)
    except PartyError as exc:
        raise PartyError(f"{path}: {exc}") from exc


def save_signed(state_dir: Path, signed: SignedCatalog) -> None:
    _make_party_dir(state_dir)
    atomic_write_bytes(signed_path(state_dir), encode_signed_catalog(signed))


def signed_stamp(state_dir: Path) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of the signed catalog file, to notice a new signing cheaply."""
    try:
        info = signed_path(state_dir).stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot stat {signed_path(state_dir)}: {exc.strerror or exc}") from exc
    return info.st_mtime_ns, info.st_size


def _read(path: Path, limit: int) -> bytes | None:
    try:
        sweep_temp(path)
        with open(path, "rb") as handle:
            return handle.read(limit)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
