"""The ticket book: single use, expiry, binding to peer and game, bounds, revocation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.tickets import (
    MAX_TICKETS_PER_PEER,
    TICKET_TTL,
    TOKEN_SIZE,
    IssuedTicket,
    TicketBook,
    TicketGrant,
    TicketRefusal,
    TicketRefusalReason,
)

ALICE = "a" * 64
BOB = "b" * 64


def token(number: int) -> bytes:
    return number.to_bytes(TOKEN_SIZE, "big")


def test_issued_ticket_admits_its_peer_and_game_once() -> None:
    """A ticket admits once, with the peer and game it was issued for; then it is gone."""
    book = TicketBook()
    issued = book.issue(token(1), ALICE, "quake3", now=100.0)
    assert issued == IssuedTicket(token(1), 100.0 + TICKET_TTL)
    assert book.admit(token(1), now=101.0) == TicketGrant(ALICE, "quake3")
    assert book.admit(token(1), now=101.0) == TicketRefusal(TicketRefusalReason.UNKNOWN)
    assert len(book) == 0


def test_unknown_and_malformed_tokens_are_refused() -> None:
    """A token never issued, or of the wrong size, admits nothing."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0)
    assert book.admit(token(2), now=0.0) == TicketRefusal(TicketRefusalReason.UNKNOWN)
    assert book.admit(b"short", now=0.0) == TicketRefusal(TicketRefusalReason.UNKNOWN)
    assert book.issue(b"short", ALICE, "quake3", now=0.0) == TicketRefusal(
        TicketRefusalReason.BAD_TOKEN
    )
    assert len(book) == 1


def test_ticket_expires_exactly_after_the_ttl() -> None:
    """A ticket is good until just before issue + TTL and refused as expired from then on."""
    book = TicketBook(ttl=10.0)
    book.issue(token(1), ALICE, "quake3", now=0.0)
    book.issue(token(2), ALICE, "quake3", now=0.0)
    assert book.admit(token(1), now=9.999) == TicketGrant(ALICE, "quake3")
    assert book.admit(token(2), now=10.0) == TicketRefusal(TicketRefusalReason.EXPIRED)


def test_prune_drops_only_expired_tickets() -> None:
    """Pruning removes the expired tickets and keeps the live ones admissible."""
    book = TicketBook(ttl=10.0)
    book.issue(token(1), ALICE, "quake3", now=0.0)
    book.issue(token(2), ALICE, "quake3", now=5.0)
    assert book.prune(now=12.0) == 1
    assert book.admit(token(1), now=12.0) == TicketRefusal(TicketRefusalReason.UNKNOWN)
    assert book.admit(token(2), now=12.0) == TicketGrant(ALICE, "quake3")


def test_duplicate_token_is_refused() -> None:
    """The caller's token must be fresh; a token already outstanding is refused."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0)
    assert book.issue(token(1), BOB, "doom", now=0.0) == TicketRefusal(
        TicketRefusalReason.DUPLICATE_TOKEN
    )
    assert book.admit(token(1), now=0.0) == TicketGrant(ALICE, "quake3")


def test_per_peer_bound_drops_that_peers_oldest_ticket() -> None:
    """One ticket over the per-peer bound evicts that peer's oldest, nobody else's."""
    book = TicketBook()
    book.issue(token(0), BOB, "doom", now=0.0)
    for number in range(1, MAX_TICKETS_PER_PEER + 2):
        book.issue(token(number), ALICE, "quake3", now=0.0)
    assert book.admit(token(1), now=0.0) == TicketRefusal(TicketRefusalReason.UNKNOWN)
    assert book.admit(token(2), now=0.0) == TicketGrant(ALICE, "quake3")
    assert book.admit(token(0), now=0.0) == TicketGrant(BOB, "doom")


def test_global_bound_refuses_new_tickets_until_some_expire() -> None:
    """A full book refuses to issue; once the old tickets expire it issues again."""
    book = TicketBook(ttl=10.0, max_per_peer=1, max_outstanding=3)
    for number in range(3):
        assert isinstance(book.issue(token(number), f"{number:064x}", "g", now=0.0), IssuedTicket)
    refused = book.issue(token(9), "f" * 64, "g", now=5.0)
    assert refused == TicketRefusal(TicketRefusalReason.BOOK_FULL)
    assert isinstance(book.issue(token(9), "f" * 64, "g", now=10.0), IssuedTicket)
    assert len(book) == 1


def test_revocation_by_peer_and_by_game() -> None:
    """Revoking a peer or a game drops exactly its tickets."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0)
    book.issue(token(2), ALICE, "doom", now=0.0)
    book.issue(token(3), BOB, "quake3", now=0.0)
    assert book.revoke_game("quake3") == 2
    assert book.revoke_peer(ALICE) == 1
    assert len(book) == 0


def test_book_rejects_nonsense_bounds() -> None:
    """A zero TTL or bound is a programming error, said at construction."""
    with pytest.raises(ValueError, match="ttl and both bounds must be positive"):
        TicketBook(ttl=0.0)


@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 3), st.booleans(), st.floats(0, 5)),
        max_size=200,
    )
)
def test_bounds_hold_and_grants_match_issues(ops: list[tuple[int, int, bool, float]]) -> None:
    """Any mix of issues and admits keeps both bounds and grants only what was issued."""
    book = TicketBook(ttl=3.0, max_per_peer=4, max_outstanding=10)
    issued: dict[bytes, tuple[str, str, float]] = {}
    now = 0.0
    for number, peer, is_issue, step in ops:
        now += step
        peer_id = f"{peer:064x}"
        if is_issue:
            outcome = book.issue(token(number), peer_id, f"g{number % 3}", now)
            if isinstance(outcome, IssuedTicket):
                issued[token(number)] = (peer_id, f"g{number % 3}", now)
        else:
            grant = book.admit(token(number), now)
            if isinstance(grant, TicketGrant):
                peer_id, game_id, at = issued.pop(token(number))
                assert grant == TicketGrant(peer_id, game_id)
                assert now < at + 3.0
        assert len(book) <= 10
