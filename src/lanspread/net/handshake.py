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

Party membership: a peer started with a party code sends, in its Hello or its
HelloAck, a keyed hash of the session (nonce, both ids, its role) under a key
derived from the code (:func:`membership_proof`), and requires the other side's.
A listener refuses a dialer without it (``Unauthorized``), a dialer leaves a
listener without it (:class:`~lanspread.errors.PeerRefused`), so two parties on
one network never link. It separates parties; it is no secret from a stranger
who learnt the code (the code is derived from the party's public key).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from lanspread.errors import PeerRefused, ProtocolError
from lanspread.net.identity import PeerIdentity, peer_id_from_public_key, verify_signature
from lanspread.net.wire import (
    MEMBERSHIP_SIZE,
    PROTOCOL_VERSION,
    Announcement,
    Challenge,
    ErrorCode,
    ErrorResponse,
    Hello,
    HelloAck,
    hello_proof_payload,
)

_MEMBERSHIP_CONTEXT = b"lanspread party membership v1"
NOT_A_MEMBER = "the dialer is not a member of this party (another party code, or none)"
LISTENER_NOT_A_MEMBER = "the listener is not a member of this party (another party code, or none)"


def membership_proof(
    party_code: str | None, challenge: Challenge, client_peer_id: str, *, listener: bool
) -> bytes:
    """The proof that one side of this session knows ``party_code`` (empty: no party)."""
    if party_code is None:
        return b""
    key = hashlib.blake2b(
        party_code.encode("ascii"), digest_size=32, person=b"lanspread-party"
    ).digest()
    session = b"|".join(
        (
            _MEMBERSHIP_CONTEXT,
            b"listener" if listener else b"dialer",
            challenge.nonce,
            challenge.server_peer_id.encode("ascii"),
            client_peer_id.encode("ascii"),
        )
    )
    return hmac.new(key, session, hashlib.blake2b).digest()[:MEMBERSHIP_SIZE]


def _proves(
    party_code: str | None, got: bytes, challenge: Challenge, client_id: str, *, listener: bool
) -> bool:
    if party_code is None:
        return True
    wanted = membership_proof(party_code, challenge, client_id, listener=listener)
    return hmac.compare_digest(got, wanted)


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
    party_code: str | None = None,
) -> Hello:
    """Dialer side: the Hello answering ``challenge``, signed for ``pinned_server_id``."""
    payload = hello_proof_payload(challenge.nonce, pinned_server_id, identity.peer_id)
    return Hello(
        protocol_version=PROTOCOL_VERSION,
        peer_id=identity.peer_id,
        public_key=identity.public_key,
        proof=identity.sign(payload),
        announcement=announcement,
        membership=membership_proof(party_code, challenge, identity.peer_id, listener=False),
    )


def verify_hello(
    hello: Hello, challenge: Challenge, party_code: str | None = None
) -> ErrorResponse | None:
    """Listener side: ``None`` when the Hello proves its id for ``challenge`` (and, in a
    party, its membership), else the refusal."""
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
    if not _proves(party_code, hello.membership, challenge, hello.peer_id, listener=False):
        return ErrorResponse(code=ErrorCode.UNAUTHORIZED, message=NOT_A_MEMBER)
    return None


@dataclass(frozen=True, slots=True)
class PartySession:
    """What the listener's membership proof is about: the party and this handshake."""

    party_code: str | None
    challenge: Challenge
    client_peer_id: str
    """The dialer's id (proven by its Hello)."""


def build_hello_ack(
    identity: PeerIdentity, announcement: Announcement, session: PartySession | None = None
) -> HelloAck:
    """The listener's ack; with a ``session`` in a party it proves the listener's membership."""
    membership = b""
    if session is not None:
        membership = membership_proof(
            session.party_code, session.challenge, session.client_peer_id, listener=True
        )
    return HelloAck(
        protocol_version=PROTOCOL_VERSION,
        peer_id=identity.peer_id,
        announcement=announcement,
        membership=membership,
    )


def check_hello_ack(
    ack: HelloAck, pinned_server_id: str, session: PartySession | None = None
) -> None:
    """Dialer side: the ack must come from the pinned peer and speak our version; with a
    ``session`` in a party it must prove the listener's membership (else
    :class:`PeerRefused`)."""
    _check_from_pinned("hello ack", ack.protocol_version, ack.peer_id, pinned_server_id)
    if session is not None and not _proves(
        session.party_code,
        ack.membership,
        session.challenge,
        session.client_peer_id,
        listener=True,
    ):
        raise PeerRefused(ErrorCode.UNAUTHORIZED, LISTENER_NOT_A_MEMBER)


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
