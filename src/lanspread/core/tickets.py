"""The ticket book: who may open a data-plane connection, for which game, until when.

Theory of operation
-------------------
Chunk bytes travel on plain TCP (see ``net/dataplane``), so the data server
cannot tell who is connecting. The control channel can: it is mutually
authenticated TLS. A peer asks for a ticket there (``GetTicket``); the runtime
checks the serve gate and calls :meth:`TicketBook.issue` with a fresh random
token, bound to the requesting peer id and the game id. The requester presents
the token as the first bytes of a data connection and the data server calls
:meth:`TicketBook.admit`.

* A ticket admits **one** connection: :meth:`~TicketBook.admit` consumes it, so a
  token seen on the wire cannot open a second connection.
* A ticket is valid for :data:`TICKET_TTL` seconds after issue; an expired
  ticket is refused even if nobody pruned it yet.
* The book is bounded: at most :data:`MAX_TICKETS_PER_PEER` per peer (issuing
  one more drops that peer's oldest) and :data:`MAX_OUTSTANDING_TICKETS` in all
  (issuing one more is refused once expired ones are pruned).
* :meth:`~TicketBook.revoke_peer` and :meth:`~TicketBook.revoke_game` drop
  tickets of a peer that left or of a game that stopped being servable.

The book is pure: the caller supplies the token and the time.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

TOKEN_SIZE = 32
"""Bytes of a ticket token: 256 random bits are never guessed nor repeated."""
# Long enough for a requester to receive the ticket and dial the data port over a
# loaded LAN, short enough that a leaked token is useless a moment later.
TICKET_TTL = 30.0
# A downloader opens a few data connections per source (see dataplane's
# MAX_DATA_CONNECTIONS_PER_PEER) and re-dials after failures; 16 unused tickets
# per peer is plenty, and one peer cannot crowd out the others.
MAX_TICKETS_PER_PEER = 16
# 256 peers (the control server's connection bound) times the per-peer bound.
MAX_OUTSTANDING_TICKETS = 4096


class TicketRefusalReason(enum.Enum):
    UNKNOWN = "unknown"
    """Never issued, already used, revoked, or pruned after expiry."""
    EXPIRED = "expired"
    """Issued, but more than :data:`TICKET_TTL` seconds ago."""
    BOOK_FULL = "book-full"
    """Issuing: :data:`MAX_OUTSTANDING_TICKETS` live tickets are outstanding."""
    DUPLICATE_TOKEN = "duplicate-token"  # noqa: S105 (a reason, not a secret)
    """Issuing: the caller supplied a token that is already outstanding."""
    BAD_TOKEN = "bad-token"  # noqa: S105 (a reason, not a secret)
    """The token is not :data:`TOKEN_SIZE` bytes."""


@dataclass(frozen=True, slots=True)
class TicketRefusal:
    reason: TicketRefusalReason


@dataclass(frozen=True, slots=True)
class TicketGrant:
    """An admitted ticket: the connection serves ``game_id`` to ``peer_id`` only."""

    peer_id: str
    game_id: str


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    token: bytes
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Entry:
    peer_id: str
    game_id: str
    expires_at: float


class TicketBook:
    """Outstanding tickets, oldest first; see the module docstring."""

    def __init__(
        self,
        *,
        ttl: float = TICKET_TTL,
        max_per_peer: int = MAX_TICKETS_PER_PEER,
        max_outstanding: int = MAX_OUTSTANDING_TICKETS,
    ) -> None:
        if ttl <= 0 or max_per_peer < 1 or max_outstanding < 1:
            raise ValueError("ttl and both bounds must be positive")
        self._ttl = ttl
        self._max_per_peer = max_per_peer
        self._max_outstanding = max_outstanding
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    @property
    def ttl(self) -> float:
        return self._ttl

    def __len__(self) -> int:
        return len(self._entries)

    def issue(
        self, token: bytes, peer_id: str, game_id: str, now: float
    ) -> IssuedTicket | TicketRefusal:
        """Record ``token`` as a ticket of ``peer_id`` for ``game_id``, valid from ``now``."""
        if len(token) != TOKEN_SIZE:
            return TicketRefusal(TicketRefusalReason.BAD_TOKEN)
        self.prune(now)
        if token in self._entries:
            return TicketRefusal(TicketRefusalReason.DUPLICATE_TOKEN)
        held = [key for key, entry in self._entries.items() if entry.peer_id == peer_id]
        if len(held) >= self._max_per_peer:
            del self._entries[held[0]]
        elif len(self._entries) >= self._max_outstanding:
            return TicketRefusal(TicketRefusalReason.BOOK_FULL)
        entry = _Entry(peer_id, game_id, now + self._ttl)
        self._entries[token] = entry
        return IssuedTicket(token, entry.expires_at)

    def admit(self, token: bytes, now: float) -> TicketGrant | TicketRefusal:
        """Consume ``token``: the grant it was issued for, or why it admits nothing."""
        entry = self._entries.pop(token, None) if len(token) == TOKEN_SIZE else None
        if entry is None:
            return TicketRefusal(TicketRefusalReason.UNKNOWN)
        if now >= entry.expires_at:
            return TicketRefusal(TicketRefusalReason.EXPIRED)
        return TicketGrant(entry.peer_id, entry.game_id)

    def prune(self, now: float) -> int:
        """Drop every expired ticket; return how many."""
        # Entries are in issue order and share one TTL, so the expired ones lead.
        count = 0
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now < entry.expires_at:
                break
            del self._entries[key]
            count += 1
        return count

    def revoke_peer(self, peer_id: str) -> int:
        """Drop every ticket of ``peer_id`` (it left); return how many."""
        return self._revoke(lambda entry: entry.peer_id == peer_id)

    def revoke_game(self, game_id: str) -> int:
        """Drop every ticket for ``game_id`` (it is no longer servable); return how many."""
        return self._revoke(lambda entry: entry.game_id == game_id)

    def _revoke(self, matches: Callable[[_Entry], bool]) -> int:
        keys = [key for key, entry in self._entries.items() if matches(entry)]
        for key in keys:
            del self._entries[key]
        return len(keys)
