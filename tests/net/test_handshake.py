"""The handshake rules without sockets: who may claim which id, for which session."""

from __future__ import annotations

import msgspec
import pytest
from tests.net.helpers import announcement

from lanspread.errors import PeerRefused, ProtocolError
from lanspread.net.handshake import (
    LISTENER_NOT_A_MEMBER,
    NOT_A_MEMBER,
    PartySession,
    build_hello,
    build_hello_ack,
    check_challenge,
    check_hello_ack,
    membership_proof,
    new_challenge,
    verify_hello,
)
from lanspread.net.identity import PeerIdentity
from lanspread.net.wire import NONCE_SIZE, ErrorCode, ErrorResponse, HelloAck

NONCE = b"\x11" * NONCE_SIZE
OTHER_NONCE = b"\x22" * NONCE_SIZE


def test_a_proper_hello_is_accepted(alice: PeerIdentity, bob: PeerIdentity) -> None:
    """Bob answering Alice's challenge for Alice's pinned id passes verification."""
    challenge = new_challenge(alice, NONCE)
    check_challenge(challenge, alice.peer_id)
    hello = build_hello(bob, challenge, alice.peer_id, announcement("bob", "quake3"))
    assert hello.peer_id == bob.peer_id
    assert hello.public_key == bob.public_key
    assert verify_hello(hello, challenge) is None


def test_claiming_another_peers_id_is_unauthorized(
    alice: PeerIdentity, bob: PeerIdentity, carol: PeerIdentity
) -> None:
    """Bob's key with Carol's id fails: the id must be derived from the public key."""
    challenge = new_challenge(alice, NONCE)
    hello = msgspec.structs.replace(
        build_hello(bob, challenge, alice.peer_id, announcement("bob")), peer_id=carol.peer_id
    )
    assert verify_hello(hello, challenge) == ErrorResponse(
        code=ErrorCode.UNAUTHORIZED,
        message=f"peer id {carol.peer_id} is not derived from the public key in the hello",
    )


def test_a_hello_replayed_from_another_session_is_unauthorized(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A Hello signed for an earlier nonce does not verify against a new challenge."""
    old = build_hello(bob, new_challenge(alice, OTHER_NONCE), alice.peer_id, announcement("bob"))
    assert verify_hello(old, new_challenge(alice, NONCE)) == ErrorResponse(
        code=ErrorCode.UNAUTHORIZED,
        message="the hello proof does not verify for this session's challenge",
    )


def test_a_hello_signed_for_another_server_is_unauthorized(
    alice: PeerIdentity, bob: PeerIdentity, carol: PeerIdentity
) -> None:
    """Relay defence: Bob signed for Carol (whom he dialed); Alice refuses it."""
    challenge = new_challenge(alice, NONCE)
    relayed = build_hello(bob, challenge, carol.peer_id, announcement("bob"))
    assert verify_hello(relayed, challenge) == ErrorResponse(
        code=ErrorCode.UNAUTHORIZED,
        message="the hello proof does not verify for this session's challenge",
    )


def test_a_forged_signature_is_unauthorized(alice: PeerIdentity, bob: PeerIdentity) -> None:
    """Any change to the proof bytes fails verification."""
    challenge = new_challenge(alice, NONCE)
    hello = build_hello(bob, challenge, alice.peer_id, announcement("bob"))
    forged = msgspec.structs.replace(hello, proof=bytes(64))
    result = verify_hello(forged, challenge)
    assert result is not None
    assert result.code is ErrorCode.UNAUTHORIZED


def test_a_hello_of_another_version_is_refused_with_version_mismatch(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """The Hello's own version field is checked too, naming both versions."""
    challenge = new_challenge(alice, NONCE)
    hello = msgspec.structs.replace(
        build_hello(bob, challenge, alice.peer_id, announcement("bob")), protocol_version=5
    )
    assert verify_hello(hello, challenge) == ErrorResponse(
        code=ErrorCode.VERSION_MISMATCH,
        message="hello declares protocol version 5, this peer speaks version 4",
    )


def test_a_challenge_from_someone_else_than_the_certificate_is_refused(
    alice: PeerIdentity, carol: PeerIdentity
) -> None:
    """The dialer refuses a challenge naming another id than the pinned certificate's."""
    with pytest.raises(ProtocolError) as caught:
        check_challenge(new_challenge(carol, NONCE), alice.peer_id)
    assert str(caught.value) == (
        f"challenge names peer {carol.peer_id} but the certificate proves peer {alice.peer_id}"
    )
    other_version = msgspec.structs.replace(new_challenge(alice, NONCE), protocol_version=9)
    with pytest.raises(ProtocolError, match=r"^challenge declares protocol version 9, expected 4$"):
        check_challenge(other_version, alice.peer_id)


def test_a_hello_ack_must_come_from_the_pinned_peer(
    alice: PeerIdentity, carol: PeerIdentity
) -> None:
    """A HelloAck naming another id, or another version, is a protocol error."""
    check_hello_ack(build_hello_ack(alice, announcement("alice")), alice.peer_id)
    with pytest.raises(ProtocolError) as caught:
        check_hello_ack(build_hello_ack(carol, announcement("carol")), alice.peer_id)
    assert str(caught.value) == (
        f"hello ack names peer {carol.peer_id} but the certificate proves peer {alice.peer_id}"
    )
    other_version = msgspec.structs.replace(
        build_hello_ack(alice, announcement("alice")), protocol_version=5
    )
    with pytest.raises(ProtocolError, match=r"^hello ack declares protocol version 5, expected 4$"):
        check_hello_ack(other_version, alice.peer_id)


CODE = "7KQ2-M9XD-4T0B-WS1E-8HJC"
OTHER_CODE = "0000-1111-2222-3333-4444"


def test_a_party_listener_links_only_dialers_proving_its_code(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """In a party, a Hello proving the same code passes; another party's proof, or none,
    is refused in our words; a listener in no party ignores the proof."""
    challenge = new_challenge(alice, NONCE)
    refusal = ErrorResponse(code=ErrorCode.UNAUTHORIZED, message=NOT_A_MEMBER)
    member = build_hello(bob, challenge, alice.peer_id, announcement("bob"), CODE)
    other = build_hello(bob, challenge, alice.peer_id, announcement("bob"), OTHER_CODE)
    outsider = build_hello(bob, challenge, alice.peer_id, announcement("bob"))
    assert verify_hello(member, challenge, CODE) is None
    assert verify_hello(other, challenge, CODE) == refusal
    assert verify_hello(outsider, challenge, CODE) == refusal
    assert verify_hello(other, challenge) is None


def test_a_membership_proof_is_bound_to_its_session_and_role(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """A dialer's proof replayed in another session, or offered as the listener's, fails."""
    challenge = new_challenge(alice, NONCE)
    old = build_hello(
        bob, new_challenge(alice, OTHER_NONCE), alice.peer_id, announcement("bob"), CODE
    )
    replayed = msgspec.structs.replace(
        build_hello(bob, challenge, alice.peer_id, announcement("bob"), CODE),
        membership=old.membership,
    )
    assert verify_hello(replayed, challenge, CODE) == ErrorResponse(
        code=ErrorCode.UNAUTHORIZED, message=NOT_A_MEMBER
    )
    dialer_proof = membership_proof(CODE, challenge, bob.peer_id, listener=False)
    ack = msgspec.structs.replace(
        build_hello_ack(alice, announcement("alice")), membership=dialer_proof
    )
    with pytest.raises(PeerRefused) as caught:
        check_hello_ack(ack, alice.peer_id, PartySession(CODE, challenge, bob.peer_id))
    assert caught.value.message == LISTENER_NOT_A_MEMBER


def test_a_party_dialer_leaves_a_listener_that_proves_nothing(
    alice: PeerIdentity, bob: PeerIdentity
) -> None:
    """The listener's ack must prove the dialer's party too: one in no party, or in
    another, is left; one in the same party is linked."""
    challenge = new_challenge(alice, NONCE)

    def ack_of(listener_code: str | None) -> HelloAck:
        session = PartySession(listener_code, challenge, bob.peer_id)
        return build_hello_ack(alice, announcement("alice"), session)

    def check(ack: HelloAck) -> None:
        check_hello_ack(ack, alice.peer_id, PartySession(CODE, challenge, bob.peer_id))

    for listener_code in (None, OTHER_CODE):
        with pytest.raises(PeerRefused) as caught:
            check(ack_of(listener_code))
        assert str(caught.value) == f"{ErrorCode.UNAUTHORIZED}: {LISTENER_NOT_A_MEMBER}"
    check(ack_of(CODE))
