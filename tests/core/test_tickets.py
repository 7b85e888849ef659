"""The ticket book: single use, expiry, binding to peer and game, bounds, revocation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.refusal import Refused
from lanspread.core.tickets import (
    FRESH_PEER_AGE,
    MAX_FRESH_TICKETS,
    MAX_FRESH_TICKETS_PER_ADDRESS,
    MAX_TICKETS_PER_ADDRESS,
    MAX_TICKETS_PER_PEER,
    TICKET_TTL,
    TOKEN_SIZE,
    IssuedTicket,
    TicketBook,
    TicketGrant,
    TicketLimits,
    TicketRefusalReason,
)

ALICE = "a" * 64
BOB = "b" * 64
HOST = "10.0.0.1"
OLD = -1e9
"""When the peers of most tests were first seen: long ago, so they are not fresh."""


def token(number: int) -> bytes:
    return number.to_bytes(TOKEN_SIZE, "big")


def test_issued_ticket_admits_its_peer_and_game_once() -> None:
    """A ticket admits once, with the peer and game it was issued for; then it is gone."""
    book = TicketBook()
    issued = book.issue(token(1), ALICE, "quake3", now=100.0, address=HOST, known_since=OLD)
    assert issued == IssuedTicket(token(1), 100.0 + TICKET_TTL)
    assert book.admit(token(1), now=101.0, address=HOST) == TicketGrant(ALICE, "quake3")
    assert book.admit(token(1), now=101.0, address=HOST) == Refused(TicketRefusalReason.UNKNOWN)
    assert len(book) == 0


def test_a_partial_ticket_grants_its_manifest_only() -> None:
    """A ticket asked for a partial copy carries that manifest digest into its grant."""
    book = TicketBook()
    digest = "d" * 64
    book.issue(
        token(1), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD, manifest_digest=digest
    )
    book.issue(token(2), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    assert book.admit(token(1), now=1.0, address=HOST) == TicketGrant(ALICE, "quake3", digest)
    assert book.admit(token(2), now=1.0, address=HOST) == TicketGrant(ALICE, "quake3", None)


def test_unknown_and_malformed_tokens_are_refused() -> None:
    """A token never issued, or of the wrong size, admits nothing."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    assert book.admit(token(2), now=0.0, address=HOST) == Refused(TicketRefusalReason.UNKNOWN)
    assert book.admit(b"short", now=0.0, address=HOST) == Refused(TicketRefusalReason.UNKNOWN)
    assert book.issue(b"short", ALICE, "quake3", now=0.0, address=HOST, known_since=OLD) == Refused(
        TicketRefusalReason.BAD_TOKEN
    )
    assert len(book) == 1


def test_ticket_expires_exactly_after_the_ttl() -> None:
    """A ticket is good until just before issue + TTL and refused as expired from then on."""
    book = TicketBook(TicketLimits(ttl=10.0))
    book.issue(token(1), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    book.issue(token(2), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    assert book.admit(token(1), now=9.999, address=HOST) == TicketGrant(ALICE, "quake3")
    assert book.admit(token(2), now=10.0, address=HOST) == Refused(TicketRefusalReason.EXPIRED)


def test_prune_drops_only_expired_tickets() -> None:
    """Pruning removes the expired tickets and keeps the live ones admissible."""
    book = TicketBook(TicketLimits(ttl=10.0))
    book.issue(token(1), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    book.issue(token(2), ALICE, "quake3", now=5.0, address=HOST, known_since=OLD)
    assert book.prune(now=12.0) == 1
    assert book.admit(token(1), now=12.0, address=HOST) == Refused(TicketRefusalReason.UNKNOWN)
    assert book.admit(token(2), now=12.0, address=HOST) == TicketGrant(ALICE, "quake3")


def test_duplicate_token_is_refused() -> None:
    """The caller's token must be fresh; a token already outstanding is refused."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    assert book.issue(token(1), BOB, "doom", now=0.0, address=HOST, known_since=OLD) == Refused(
        TicketRefusalReason.DUPLICATE_TOKEN
    )
    assert book.admit(token(1), now=0.0, address=HOST) == TicketGrant(ALICE, "quake3")


def test_per_peer_bound_drops_that_peers_oldest_ticket() -> None:
    """One ticket over the per-peer bound evicts that peer's oldest, nobody else's."""
    book = TicketBook()
    book.issue(token(0), BOB, "doom", now=0.0, address=HOST, known_since=OLD)
    for number in range(1, MAX_TICKETS_PER_PEER + 2):
        book.issue(token(number), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    assert book.admit(token(1), now=0.0, address=HOST) == Refused(TicketRefusalReason.UNKNOWN)
    assert book.admit(token(2), now=0.0, address=HOST) == TicketGrant(ALICE, "quake3")
    assert book.admit(token(0), now=0.0, address=HOST) == TicketGrant(BOB, "doom")


def test_global_bound_refuses_new_tickets_until_some_expire() -> None:
    """A full book refuses to issue; once the old tickets expire it issues again."""
    book = TicketBook(TicketLimits(ttl=10.0, max_per_peer=1, max_outstanding=3))
    for number in range(3):
        assert isinstance(
            book.issue(
                token(number), f"{number:064x}", "g", now=0.0, address=HOST, known_since=OLD
            ),
            IssuedTicket,
        )
    refused = book.issue(token(9), "f" * 64, "g", now=5.0, address=HOST, known_since=OLD)
    assert refused == Refused(TicketRefusalReason.BOOK_FULL)
    assert isinstance(
        book.issue(token(9), "f" * 64, "g", now=10.0, address=HOST, known_since=OLD), IssuedTicket
    )
    assert len(book) == 1


def test_revocation_by_peer_and_by_game() -> None:
    """Revoking a peer or a game drops exactly its tickets."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    book.issue(token(2), ALICE, "doom", now=0.0, address=HOST, known_since=OLD)
    book.issue(token(3), BOB, "quake3", now=0.0, address=HOST, known_since=OLD)
    assert book.revoke_game("quake3") == 2
    assert book.revoke_peer(ALICE) == 1
    assert len(book) == 0


def test_book_rejects_nonsense_bounds() -> None:
    """A zero TTL or bound is a programming error, said at construction."""
    with pytest.raises(ValueError, match="ttl and every bound must be positive"):
        TicketBook(TicketLimits(ttl=0.0))


@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 3), st.booleans(), st.floats(0, 5)),
        max_size=200,
    )
)
def test_bounds_hold_and_grants_match_issues(ops: list[tuple[int, int, bool, float]]) -> None:
    """Any mix of issues and admits keeps both bounds and grants only what was issued."""
    book = TicketBook(TicketLimits(ttl=3.0, max_per_peer=4, max_outstanding=10))
    issued: dict[bytes, tuple[str, str, float]] = {}
    now = 0.0
    for number, peer, is_issue, step in ops:
        now += step
        peer_id = f"{peer:064x}"
        if is_issue:
            outcome = book.issue(
                token(number), peer_id, f"g{number % 3}", now, address=HOST, known_since=OLD
            )
            if isinstance(outcome, IssuedTicket):
                issued[token(number)] = (peer_id, f"g{number % 3}", now)
        else:
            grant = book.admit(token(number), now, address=HOST)
            if isinstance(grant, TicketGrant):
                peer_id, game_id, at = issued.pop(token(number))
                assert grant == TicketGrant(peer_id, game_id)
                assert now < at + 3.0
        assert len(book) <= 10


def test_a_ticket_admits_only_from_the_address_that_asked() -> None:
    """A token presented from another address is refused and consumed: sniffing buys nothing."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0, address=HOST, known_since=OLD)
    assert book.admit(token(1), now=1.0, address="10.0.0.66") == Refused(
        TicketRefusalReason.WRONG_ADDRESS
    )
    assert book.admit(token(1), now=1.0, address=HOST) == Refused(TicketRefusalReason.UNKNOWN)


def test_an_ipv4_mapped_address_is_the_same_address() -> None:
    """``::ffff:10.0.0.1`` and ``10.0.0.1`` are one source: a dual-stack socket admits."""
    book = TicketBook()
    book.issue(token(1), ALICE, "quake3", now=0.0, address="::ffff:10.0.0.1", known_since=-1e9)
    assert book.admit(token(1), now=1.0, address=HOST) == TicketGrant(ALICE, "quake3")


def test_one_address_holds_at_most_its_share_whatever_its_identities() -> None:
    """Self-made identities on one host share MAX_TICKETS_PER_ADDRESS; other hosts still get."""
    book = TicketBook()
    number = 0
    for number in range(MAX_TICKETS_PER_ADDRESS):
        issued = book.issue(
            token(number), f"{number:064x}", "g", now=0.0, address=HOST, known_since=OLD
        )
        assert isinstance(issued, IssuedTicket)
    refused = book.issue(token(999), "e" * 64, "g", now=0.0, address=HOST, known_since=OLD)
    assert refused == Refused(TicketRefusalReason.ADDRESS_FULL)
    elsewhere = book.issue(token(1000), BOB, "g", now=0.0, address="10.0.0.2", known_since=-1e9)
    assert isinstance(elsewhere, IssuedTicket)
    assert number == MAX_TICKETS_PER_ADDRESS - 1


def test_a_peer_at_its_own_cap_replaces_its_oldest_even_when_its_address_is_full() -> None:
    """Re-asking at the per-peer cap swaps the peer's own oldest ticket; nobody else loses."""
    book = TicketBook(TicketLimits(max_per_peer=2, max_per_address=2))
    book.issue(token(1), ALICE, "g", now=0.0, address=HOST, known_since=OLD)
    book.issue(token(2), ALICE, "g", now=0.0, address=HOST, known_since=OLD)
    assert isinstance(
        book.issue(token(3), ALICE, "g", now=0.0, address=HOST, known_since=OLD), IssuedTicket
    )
    assert len(book) == 2
    assert book.admit(token(1), now=0.0, address=HOST) == Refused(TicketRefusalReason.UNKNOWN)


def test_fresh_identities_share_one_small_pool() -> None:
    """Peers first seen under FRESH_PEER_AGE ago share MAX_FRESH_TICKETS; older peers do not."""
    book = TicketBook()
    now = 1000.0
    for number in range(MAX_FRESH_TICKETS):
        address = f"10.1.{number // 8}.{number % 8}"  # spread: no address cap in the way
        issued = book.issue(
            token(number), f"{number:064x}", "g", now, address=address, known_since=now
        )
        assert isinstance(issued, IssuedTicket)
    sybil = book.issue(token(500), "e" * 64, "g", now, address="10.2.0.1", known_since=now - 1)
    assert sybil == Refused(TicketRefusalReason.FRESH_POOL_FULL)
    veteran = book.issue(
        token(501), ALICE, "g", now, address="10.3.0.1", known_since=now - FRESH_PEER_AGE
    )
    assert isinstance(veteran, IssuedTicket)


def test_fresh_identities_of_one_address_hold_one_peers_worth_of_the_pool() -> None:
    """A swarm of new identities on one host gets MAX_FRESH_TICKETS_PER_ADDRESS; others get more."""
    book = TicketBook()
    now = 1000.0
    for number in range(MAX_FRESH_TICKETS_PER_ADDRESS):
        issued = book.issue(
            token(number), f"{number:064x}", "g", now, address="10.6.6.6", known_since=now
        )
        assert isinstance(issued, IssuedTicket)
    swarm = book.issue(token(99), "e" * 64, "g", now, address="10.6.6.6", known_since=now)
    assert swarm == Refused(TicketRefusalReason.FRESH_POOL_FULL)
    newcomer = book.issue(token(100), ALICE, "g", now, address="10.0.0.9", known_since=now)
    assert isinstance(newcomer, IssuedTicket)


def test_the_fresh_pool_frees_as_its_tickets_expire() -> None:
    """Fresh tickets expire like any other, and then a new fresh peer gets one."""
    book = TicketBook(TicketLimits(ttl=5.0, max_fresh=1))
    book.issue(token(1), ALICE, "g", now=0.0, address=HOST, known_since=0.0)
    refused = book.issue(token(2), BOB, "g", now=4.0, address="10.0.0.2", known_since=4.0)
    assert refused == Refused(TicketRefusalReason.FRESH_POOL_FULL)
    granted = book.issue(token(2), BOB, "g", now=5.0, address="10.0.0.2", known_since=4.0)
    assert isinstance(granted, IssuedTicket)


@pytest.mark.parametrize(
    ("per_address", "fresh", "fresh_age"), [(0, 1, 0.0), (1, 0, 0.0), (1, 1, -1.0)]
)
def test_the_new_bounds_must_be_sensible(per_address: int, fresh: int, fresh_age: float) -> None:
    """A zero address or pool bound, or a negative fresh age, is a caller bug."""
    with pytest.raises(ValueError, match="ttl and every bound must be positive"):
        TicketBook(TicketLimits(max_per_address=per_address, max_fresh=fresh, fresh_age=fresh_age))


@given(
    st.lists(
        st.tuples(
            st.integers(0, 60), st.integers(0, 5), st.integers(0, 3), st.booleans(), st.floats(0, 3)
        ),
        max_size=200,
    )
)
def test_every_bound_holds_under_any_mix(
    ops: list[tuple[int, int, int, bool, float]],
) -> None:
    """Per-peer, per-address, fresh-pool and total bounds all hold after any issue/admit mix,
    and :meth:`TicketBook.refusal` always foretells what issuing does."""
    book = TicketBook(
        TicketLimits(
            ttl=4.0,
            max_per_peer=3,
            max_per_address=5,
            max_fresh=4,
            max_fresh_per_address=3,
            max_outstanding=9,
            fresh_age=2.0,
        )
    )
    issued: dict[bytes, tuple[str, str, bool, float]] = {}
    now = 0.0
    first_seen: dict[str, float] = {}
    for number, peer, host, is_issue, step in ops:
        now += step
        peer_id = f"{peer:064x}"
        address = f"10.0.0.{host}"
        since = first_seen.setdefault(peer_id, now)
        if is_issue:
            predicted = book.refusal(peer_id, now, address=address, known_since=since)
            outcome = book.issue(
                token(number), peer_id, "g", now, address=address, known_since=since
            )
            if isinstance(outcome, IssuedTicket):
                assert predicted is None
                issued[token(number)] = (peer_id, address, now - since < 2.0, now)
            elif outcome.reason is not TicketRefusalReason.DUPLICATE_TOKEN:
                assert outcome.reason is predicted  # the query says what issuing does
        elif isinstance(book.admit(token(number), now, address=address), TicketGrant):
            assert issued[token(number)][1] == address
        live = {
            key: value
            for key, value in issued.items()
            if now < value[3] + 4.0 and key in book._entries
        }
        assert len(book) <= 9
        assert all(sum(v[0] == p for v in live.values()) <= 3 for p, *_ in live.values())
        assert all(sum(v[1] == a for v in live.values()) <= 5 for _, a, *_ in live.values())
        assert sum(v[2] for v in live.values()) <= 4
        assert all(
            sum(v[2] and v[1] == a for v in live.values()) <= 3 for _, a, *_ in live.values()
        )
