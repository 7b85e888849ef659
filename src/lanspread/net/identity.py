"""A peer's long-lived identity: an Ed25519 key pair, its certificate and its peer id.

Theory of operation
-------------------
On first start a peer generates an Ed25519 private key and stores it as
``<state_dir>/peer.key`` (PKCS#8 PEM, file mode 0600). Every later start loads the
same key, so the peer keeps its id across restarts.

The **peer id** is derived from the public key alone::

    peer_id = lowercase_hex(SHA-256(raw 32-byte Ed25519 public key))   # 64 characters

so anyone holding the public key (from a TLS certificate or a ``Hello``) can
recompute the id, and nobody can claim an id without the matching private key.

The self-signed X.509 certificate (``<state_dir>/peer.crt``) exists only because
TLS needs one: it wraps the same public key. It is derived deterministically from
the key (fixed validity, serial from the id, deterministic Ed25519 signature), so
a missing or damaged certificate is simply written again; only the key matters.
Python's ``ssl`` accepts Ed25519 for TLS 1.3 server authentication (checked on
OpenSSL 3.0), so no second key type is needed.

Loading is blocking disk work: call :func:`load_or_create_identity` through
``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from lanspread.errors import ConfigError, ProtocolError
from lanspread.platform import fileio

log = logging.getLogger(__name__)

KEY_FILE = "peer.key"
CERT_FILE = "peer.crt"
KEY_FILE_MODE = 0o600
PUBLIC_KEY_SIZE = 32
"""Bytes of a raw Ed25519 public key."""
SIGNATURE_SIZE = 64
"""Bytes of an Ed25519 signature."""

# Certificate validity is never checked (peers pin the key, not a CA), so fixed
# dates keep the certificate a pure function of the key.
_NOT_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def peer_id_from_public_key(public_key: bytes) -> str:
    """The peer id of a raw Ed25519 public key: hex SHA-256 of the 32 key bytes."""
    return hashlib.sha256(public_key).hexdigest()


def peer_id_from_certificate(der: bytes) -> str:
    """The peer id proven by a DER certificate (from ``getpeercert(binary_form=True)``).

    Raises :class:`ProtocolError` when the certificate does not hold an Ed25519 key:
    such a peer is not a lanspread peer.
    """
    try:
        public_key = x509.load_der_x509_certificate(der).public_key()
    except ValueError as exc:
        raise ProtocolError(f"the peer's certificate cannot be parsed: {exc}") from exc
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise ProtocolError("the peer's certificate does not hold an Ed25519 key")
    return peer_id_from_public_key(_raw_public_key(public_key))


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """This peer's key pair and the files TLS loads it from."""

    peer_id: str
    public_key: bytes
    """The raw 32-byte Ed25519 public key."""
    key_path: Path
    cert_path: Path
    _private_key: ed25519.Ed25519PrivateKey = field(repr=False)

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    @classmethod
    def from_private_key(
        cls, private_key: ed25519.Ed25519PrivateKey, key_path: Path, cert_path: Path
    ) -> PeerIdentity:
        public_key = _raw_public_key(private_key.public_key())
        return cls(
            peer_id=peer_id_from_public_key(public_key),
            public_key=public_key,
            key_path=key_path,
            cert_path=cert_path,
            _private_key=private_key,
        )


def load_or_create_identity(state_dir: Path) -> PeerIdentity:
    """Load the identity kept in ``state_dir``, creating it on first start.

    Blocking. Raises :class:`ConfigError` when the state dir cannot be used or the
    key file is not an Ed25519 private key (the message says how to recover).
    """
    key_path = state_dir / KEY_FILE
    cert_path = state_dir / CERT_FILE
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        if key_path.exists():
            private_key = _read_private_key(key_path)
        else:
            private_key = ed25519.Ed25519PrivateKey.generate()
            _write_private_file(key_path, _private_key_pem(private_key))
            log.info("created a new peer identity in %s", state_dir)
        identity = PeerIdentity.from_private_key(private_key, key_path, cert_path)
        _ensure_certificate(identity, private_key)
    except OSError as exc:
        raise ConfigError(
            f"cannot use the state directory {state_dir} for the peer identity: "
            f"{exc.strerror or exc}"
        ) from exc
    return identity


def _read_private_key(key_path: Path) -> ed25519.Ed25519PrivateKey:
    _restrict_mode(key_path)
    data = key_path.read_bytes()
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"the peer key {key_path} is unreadable ({exc}); delete it to create a new "
            "identity (this peer will get a new peer id)"
        ) from exc
    if not isinstance(private_key, ed25519.Ed25519PrivateKey):
        raise ConfigError(
            f"the peer key {key_path} is not an Ed25519 key; delete it to create a new "
            "identity (this peer will get a new peer id)"
        )
    return private_key


def _restrict_mode(key_path: Path) -> None:
    """Tighten a key file that someone made readable by others back to 0600."""
    if os.name != "posix":
        return
    mode = key_path.stat().st_mode & 0o777
    if mode != KEY_FILE_MODE:
        log.warning("peer key %s had mode %o; setting it to 0600", key_path, mode)
        key_path.chmod(KEY_FILE_MODE)


def _ensure_certificate(identity: PeerIdentity, private_key: ed25519.Ed25519PrivateKey) -> None:
    expected = _certificate_pem(identity, private_key)
    with contextlib.suppress(FileNotFoundError):
        if identity.cert_path.read_bytes() == expected:
            return
        log.warning("peer certificate %s did not match the key; rewriting it", identity.cert_path)
    _write_private_file(identity.cert_path, expected)


def _certificate_pem(identity: PeerIdentity, private_key: ed25519.Ed25519PrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.peer_id)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        # Serial numbers must be positive and at most 20 bytes; 16 bytes of the id fit.
        .serial_number(int(identity.peer_id[:32], 16) | 1)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .sign(private_key, algorithm=None)
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _private_key_pem(private_key: ed25519.Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _raw_public_key(public_key: ed25519.Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically, created with mode 0600 from the first byte."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | fileio.O_BINARY, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fileio.fsync_directory(path.parent)
