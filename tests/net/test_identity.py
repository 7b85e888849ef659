"""Peer identities: creation, persistence, file modes, derivation and damaged files."""

from __future__ import annotations

import datetime
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lanspread.errors import ConfigError, ProtocolError
from lanspread.net.identity import (
    CERT_FILE,
    KEY_FILE,
    load_or_create_identity,
    peer_id_from_certificate,
    peer_id_from_public_key,
    verify_signature,
)


def _cert_der(state_dir: Path) -> bytes:
    certificate = x509.load_pem_x509_certificate((state_dir / CERT_FILE).read_bytes())
    return certificate.public_bytes(serialization.Encoding.DER)


def test_first_start_creates_a_private_key_file_and_a_certificate(tmp_path: Path) -> None:
    """The key is written with mode 0600 and the certificate wraps the same key."""
    state = tmp_path / "state"
    identity = load_or_create_identity(state)
    assert stat.S_IMODE((state / KEY_FILE).stat().st_mode) == 0o600
    assert identity.key_path == state / KEY_FILE
    assert identity.cert_path == state / CERT_FILE
    assert peer_id_from_certificate(_cert_der(state)) == identity.peer_id
    assert not list(state.glob("*.tmp"))


def test_restart_keeps_the_peer_id(tmp_path: Path) -> None:
    """A second start loads the stored key: same id, same public key, same certificate."""
    first = load_or_create_identity(tmp_path)
    cert = (tmp_path / CERT_FILE).read_bytes()
    second = load_or_create_identity(tmp_path)
    assert second.peer_id == first.peer_id
    assert second.public_key == first.public_key
    assert (tmp_path / CERT_FILE).read_bytes() == cert


def test_two_state_dirs_give_two_ids(tmp_path: Path) -> None:
    """Each state dir holds its own key, so peers never share an id by accident."""
    assert load_or_create_identity(tmp_path / "a").peer_id != (
        load_or_create_identity(tmp_path / "b").peer_id
    )


def test_peer_id_is_the_hex_sha256_of_the_raw_public_key(tmp_path: Path) -> None:
    """The documented derivation: 64 hex characters of SHA-256 over the 32 key bytes."""
    identity = load_or_create_identity(tmp_path)
    assert len(identity.public_key) == 32
    assert identity.peer_id == hashlib.sha256(identity.public_key).hexdigest()
    assert peer_id_from_public_key(identity.public_key) == identity.peer_id


def test_signatures_verify_only_for_the_signed_message_and_key(tmp_path: Path) -> None:
    """verify_signature accepts the real signature and rejects any change or bad key."""
    identity = load_or_create_identity(tmp_path / "a")
    other = load_or_create_identity(tmp_path / "b")
    signature = identity.sign(b"message")
    assert verify_signature(identity.public_key, signature, b"message")
    assert not verify_signature(identity.public_key, signature, b"messagE")
    assert not verify_signature(other.public_key, signature, b"message")
    assert not verify_signature(b"short", signature, b"message")


def test_corrupt_key_file_is_a_clear_config_error(tmp_path: Path) -> None:
    """A damaged key is not silently replaced (that would change the id): ConfigError."""
    load_or_create_identity(tmp_path)
    (tmp_path / KEY_FILE).write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    with pytest.raises(ConfigError) as caught:
        load_or_create_identity(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"the peer key {tmp_path / KEY_FILE} is unreadable (")
    assert message.endswith(
        "); delete it to create a new identity (this peer will get a new peer id)"
    )


def test_key_of_another_algorithm_is_a_config_error(tmp_path: Path) -> None:
    """Only Ed25519 keys are identities; an ECDSA key file is refused by name."""
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / KEY_FILE).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / KEY_FILE).chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_or_create_identity(tmp_path)
    assert str(caught.value) == (
        f"the peer key {tmp_path / KEY_FILE} is not an Ed25519 key; delete it to create a new "
        "identity (this peer will get a new peer id)"
    )


def test_damaged_or_missing_certificate_is_rewritten_from_the_key(tmp_path: Path) -> None:
    """The certificate is a pure function of the key, so it is recreated identically."""
    load_or_create_identity(tmp_path)
    original = (tmp_path / CERT_FILE).read_bytes()
    (tmp_path / CERT_FILE).write_bytes(b"not a certificate")
    load_or_create_identity(tmp_path)
    assert (tmp_path / CERT_FILE).read_bytes() == original
    (tmp_path / CERT_FILE).unlink()
    load_or_create_identity(tmp_path)
    assert (tmp_path / CERT_FILE).read_bytes() == original


def test_a_key_file_readable_by_others_is_tightened_to_0600(tmp_path: Path) -> None:
    """Someone's chmod 644 on the key is undone at the next start."""
    load_or_create_identity(tmp_path)
    (tmp_path / KEY_FILE).chmod(0o644)
    load_or_create_identity(tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_unusable_state_dir_is_a_config_error(tmp_path: Path) -> None:
    """A state dir path that is a file gives ConfigError naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as caught:
        load_or_create_identity(blocker / "state")
    assert str(caught.value).startswith(
        f"cannot use the state directory {blocker / 'state'} for the peer identity: "
    )


def test_certificate_without_ed25519_key_is_a_protocol_error(tmp_path: Path) -> None:
    """A listener presenting an ECDSA or unparsable certificate is not a lanspread peer."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    with pytest.raises(
        ProtocolError, match=r"^the peer's certificate does not hold an Ed25519 key$"
    ):
        peer_id_from_certificate(der)
    with pytest.raises(ProtocolError, match=r"^the peer's certificate cannot be parsed: "):
        peer_id_from_certificate(b"\x30\x03garbage")
