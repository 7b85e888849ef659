"""The handshake rules, without I/O: build and check Challenge, Hello and HelloAck.

Theory of operation
-------------------
TLS authenticates only the listener (Python's ``ssl`` cannot accept a
self-signed client certificate through a callback), so the dialer proves its id
inside the TLS channel::

    dialer                                             listener
      | pins server id = id(certificate public key)       |
      |<---- Challenge(version, nonce, server id) --------|  nonce: fresh random bytes
      | check_challenge: server id == pinned id           |
      |---- Hello(version, id, public key, proof, ...) -->|  proof = sign(hello_proof_payload(
      |                                                   |      nonce, pinned server id, id))
      |                                   verify_hello:   |  version, id == id(public key),
      |                                                   |  proof verifies for *this* nonce
      |                                                   |  and *this* listener's id
      |<---- HelloAck(version, server id, ...) -----------|  or ErrorResponse(Unauthorized |
      | check_hello_ack: server id == pinned id           |     VersionMismatch) and close

Replaying a Hello from another session fails (other nonce); a middle peer that
relays a listener's challenge to a victim fails (the victim signs the middle
peer's id, which it pinned from the middle peer's certificate).
"""

from __future__ import annotations

from lanspread.errors import ProtocolError
from lanspread.net.identity import PeerIdentity, peer_id_from_public_key, verify_signature
from lanspread.net.wire import (
    PROTOCOL_VERSION,
    Announcement,
    Challenge,
    ErrorCode,
    ErrorResponse,
    Hello,
    HelloAck,
    hello_proof_payload,
)


def new_challenge(identity: PeerIdentity, nonce: bytes) -> Challenge:
    """The listener's challenge; ``nonce`` comes from ``secrets.token_bytes(NONCE_SIZE)``."""
    return Challenge(
        protocol_version=PROTOCOL_VERSION, nonce=nonce, server_peer_id=identity.peer_id
    )


def check_challenge(challenge: Challenge, pinned_server_id: str) -> None:
    """Dialer side: the challenge must come from the peer the certificate proved."""
    _check_from_pinned(
        "challenge", challenge.protocol_version, challenge.server_peer_id, pinned_server_id
    )


def build_hello(
    identity: PeerIdentity,
    challenge: Challenge,
    pinned_server_id: str,
    announcement: Announcement,
) -> Hello:
    """Dialer side: the Hello answering ``challenge``, signed for ``pinned_server_id``."""
    payload = hello_proof_payload(challenge.nonce, pinned_server_id, identity.peer_id)
    return Hello(
        protocol_version=PROTOCOL_VERSION,
        peer_id=identity.peer_id,
        public_key=identity.public_key,
        proof=identity.sign(payload),
        announcement=announcement,
    )


def verify_hello(hello: Hello, challenge: Challenge) -> ErrorResponse | None:
    """Listener side: ``None`` when the Hello proves its id for ``challenge``, else the refusal."""
    if hello.protocol_version != PROTOCOL_VERSION:
        return ErrorResponse(
            code=ErrorCode.VERSION_MISMATCH,
            message=(
                f"hello declares protocol version {hello.protocol_version}, "
                f"this peer speaks version {PROTOCOL_VERSION}"
            ),
        )
    if peer_id_from_public_key(hello.public_key) != hello.peer_id:
        return ErrorResponse(
            code=ErrorCode.UNAUTHORIZED,
            message=f"peer id {hello.peer_id} is not derived from the public key in the hello",
        )
    payload = hello_proof_payload(challenge.nonce, challenge.server_peer_id, hello.peer_id)
    if not verify_signature(hello.public_key, hello.proof, payload):
        return ErrorResponse(
            code=ErrorCode.UNAUTHORIZED,
            message="the hello proof does not verify for this session's challenge",
        )
    return None


def build_hello_ack(identity: PeerIdentity, announcement: Announcement) -> HelloAck:
    return HelloAck(
        protocol_version=PROTOCOL_VERSION, peer_id=identity.peer_id, announcement=announcement
    )


def check_hello_ack(ack: HelloAck, pinned_server_id: str) -> None:
    """Dialer side: the ack must come from the pinned peer and speak our version."""
    _check_from_pinned("hello ack", ack.protocol_version, ack.peer_id, pinned_server_id)


def _check_from_pinned(frame: str, version: int, named_peer_id: str, pinned_id: str) -> None:
    """A listener's ``frame`` must speak our version and name the peer the certificate proved."""
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"{frame} declares protocol version {version}, expected {PROTOCOL_VERSION}"
        )
    if named_peer_id != pinned_id:
        raise ProtocolError(
            f"{frame} names peer {named_peer_id} but the certificate proves peer {pinned_id}"
        )
