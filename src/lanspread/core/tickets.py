"""The ticket book: who may open a data-plane connection, for which game, until when.

Theory of operation
-------------------
Chunk bytes travel on plain TCP (see ``net/dataplane``), so the data server
cannot tell who is connecting. The control channel can: it is mutually
authenticated TLS. A peer asks for a ticket there (``GetTicket``); the runtime
checks the serve gate and calls :meth:`TicketBook.issue` with a fresh random
token, bound to the requesting peer id, the address its control connection came
from and the game id. The requester presents the token as the first bytes of a
data connection and the data server calls :meth:`TicketBook.admit` with the
address that connection came from.

* A ticket admits **one** connection: :meth:`~TicketBook.admit` consumes it, so a
  token seen on the wire cannot open a second connection.
* A ticket admits only from the address that asked for it: a token presented
  from anywhere else is consumed and refused, so sniffing one buys nothing.
* A ticket is valid for :data:`TICKET_TTL` seconds after issue; an expired
  ticket is refused even if nobody pruned it yet.
* The book is bounded: at most :data:`MAX_TICKETS_PER_PEER` per peer (issuing
  one more drops that peer's oldest), :data:`MAX_TICKETS_PER_ADDRESS` per source
  address, :data:`MAX_OUTSTANDING_TICKETS` in all (issuing one more is refused
  once expired ones are pruned).
* Identities are free to make, so a peer first seen less than
  :data:`FRESH_PEER_AGE` seconds ago is *fresh*: all fresh peers together hold at
  most :data:`MAX_FRESH_TICKETS`, and those of one address at most
  :data:`MAX_FRESH_TICKETS_PER_ADDRESS`. A swarm of new identities then competes
  only with itself, cannot starve the peers known for longer, and from one host
  leaves room for newcomers on others.
* :meth:`~TicketBook.revoke_peer` and :meth:`~TicketBook.revoke_game` drop
  tickets of a peer that left or of a game that stopped being servable.
* A ticket for a *partial copy* (a game this peer is downloading) also names the
  manifest digest it was asked for; the data server serves that connection only
  the verified chunks of that manifest (``core/servegate``, partial copies).

The book is pure: the caller supplies the token and the time.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lanspread.core.admission import normalize_address
from lanspread.core.refusal import Refused

TOKEN_SIZE = 32
"""Bytes of a ticket token: 256 random bits are never guessed nor repeated."""
# Long enough for a requester to receive the ticket and dial the data port over a
# loaded LAN (milliseconds; seconds when the machine is swapping), short enough
# that a hoarded or leaked token is useless a moment later.
TICKET_TTL = 10.0
# A downloader opens a few data connections per source (see dataplane's
# MAX_DATA_CONNECTIONS_PER_PEER, 4) and re-dials after failures; twice that in
# unused tickets is plenty, and one peer cannot crowd out the others.
MAX_TICKETS_PER_PEER = 8
# One host runs one peer, a test rig or a LAN host a handful: four peers' worth.
# Self-made identities on one machine share this, however many there are.
MAX_TICKETS_PER_ADDRESS = 4 * MAX_TICKETS_PER_PEER
# 256 peers (the control server's connection bound) times the per-peer bound.
MAX_OUTSTANDING_TICKETS = 256 * MAX_TICKETS_PER_PEER
# A peer that has been around this long has survived a few dozen liveness pings;
# an identity made for a flood is younger. Honest newcomers wait at most this long
# to leave the shared pool, and usually get a ticket from it anyway.
FRESH_PEER_AGE = 30.0
# Tickets all fresh peers hold together: four downloaders' worth, so a joining
# honest peer can start while a swarm of new identities cannot take more.
MAX_FRESH_TICKETS = 4 * MAX_TICKETS_PER_PEER
# Of those, what the fresh peers of one address hold together: one peer's worth.
# New identities on one machine are worth one newcomer, so a swarm from one host
# leaves most of the pool to newcomers elsewhere.
MAX_FRESH_TICKETS_PER_ADDRESS = MAX_TICKETS_PER_PEER


@dataclass(frozen=True, slots=True)
class TicketLimits:
    """How long a ticket lives and how many the book holds (the constants above say why)."""

    ttl: float = TICKET_TTL
    max_per_peer: int = MAX_TICKETS_PER_PEER
    max_outstanding: int = MAX_OUTSTANDING_TICKETS
    max_per_address: int = MAX_TICKETS_PER_ADDRESS
    max_fresh: int = MAX_FRESH_TICKETS
    max_fresh_per_address: int = MAX_FRESH_TICKETS_PER_ADDRESS
    fresh_age: float = FRESH_PEER_AGE

    def __post_init__(self) -> None:
        bounds = (
            self.max_per_peer,
            self.max_outstanding,
            self.max_per_address,
            self.max_fresh,
            self.max_fresh_per_address,
        )
        if self.ttl <= 0 or self.fresh_age < 0 or min(bounds) < 1:
            raise ValueError("ttl and every bound must be positive")


DEFAULT_LIMITS = TicketLimits()


class TicketRefusalReason(enum.Enum):
    UNKNOWN = "unknown"
    """Never issued, already used, revoked, or pruned after expiry."""
    EXPIRED = "expired"
    """Issued, but more than :data:`TICKET_TTL` seconds ago."""
    BOOK_FULL = "book-full"
    """Issuing: :data:`MAX_OUTSTANDING_TICKETS` live tickets are outstanding."""
    ADDRESS_FULL = "address-full"
    """Issuing: the address holds :data:`MAX_TICKETS_PER_ADDRESS` live tickets."""
    FRESH_POOL_FULL = "fresh-pool-full"
    """Issuing: the peer is fresh, and fresh peers hold :data:`MAX_FRESH_TICKETS`
    (or those of its address :data:`MAX_FRESH_TICKETS_PER_ADDRESS`)."""
    WRONG_ADDRESS = "wrong-address"
    """Admitting: the token came from another address than the one that asked."""
    DUPLICATE_TOKEN = "duplicate-token"  # noqa: S105 (a reason, not a secret)
    """Issuing: the caller supplied a token that is already outstanding."""
    BAD_TOKEN = "bad-token"  # noqa: S105 (a reason, not a secret)
    """The token is not :data:`TOKEN_SIZE` bytes."""


@dataclass(frozen=True, slots=True)
class TicketGrant:
    """An admitted ticket: the connection serves ``game_id`` to ``peer_id`` only."""

    peer_id: str
    game_id: str
    manifest_digest: str | None = None
    """Set for a partial copy: only chunks of this manifest are served."""


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    token: bytes
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Entry:
    """An outstanding ticket: what it grants once admitted, and from where, until when."""

    grant: TicketGrant
    address: str
    fresh: bool
    expires_at: float


class TicketBook:
    """Outstanding tickets, oldest first; see the module docstring."""

    def __init__(self, limits: TicketLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    @property
    def ttl(self) -> float:
        return self._limits.ttl

    def __len__(self) -> int:
        return len(self._entries)

    def issue(
        self,
        token: bytes,
        peer_id: str,
        game_id: str,
        now: float,
        *,
        address: str,
        known_since: float,
        manifest_digest: str | None = None,
    ) -> IssuedTicket | Refused[TicketRefusalReason]:
        """Record ``token`` as a ticket of ``peer_id`` at ``address`` for ``game_id``.

        ``address`` is where the request came from (the control connection's source);
        ``known_since`` is when this peer was first seen, which decides whether it
        draws from the fresh pool. ``manifest_digest`` binds a ticket for a partial
        copy to that manifest.
        """
        if len(token) != TOKEN_SIZE:
            return Refused(TicketRefusalReason.BAD_TOKEN)
        self.prune(now)
        if token in self._entries:
            return Refused(TicketRefusalReason.DUPLICATE_TOKEN)
        address = normalize_address(address)
        fresh = now - known_since < self._limits.fresh_age
        held = self._held_by(peer_id)
        if len(held) >= self._limits.max_per_peer:
            # Replacing the peer's own oldest ticket takes nothing from anybody else.
            del self._entries[held[0]]
        else:
            refusal = self._room_for(address, fresh)
            if refusal is not None:
                return Refused(refusal)
        grant = TicketGrant(peer_id, game_id, manifest_digest)
        entry = _Entry(grant, address, fresh, now + self._limits.ttl)
        self._entries[token] = entry
        return IssuedTicket(token, entry.expires_at)

    def refusal(
        self, peer_id: str, now: float, *, address: str, known_since: float
    ) -> TicketRefusalReason | None:
        """Why :meth:`issue` would refuse ``peer_id`` at ``address`` now, else ``None``.

        Asked before anything costly is done for a ticket request, so a swarm of
        identities that gets no tickets costs no more than this. Prunes expired
        tickets and changes nothing else.
        """
        self.prune(now)
        if len(self._held_by(peer_id)) >= self._limits.max_per_peer:
            return None  # it would replace its own oldest ticket
        fresh = now - known_since < self._limits.fresh_age
        return self._room_for(normalize_address(address), fresh)

    def _held_by(self, peer_id: str) -> list[bytes]:
        """The tokens ``peer_id`` holds, oldest first."""
        return [key for key, entry in self._entries.items() if entry.grant.peer_id == peer_id]

    def _room_for(self, address: str, fresh: bool) -> TicketRefusalReason | None:
        entries = self._entries.values()
        if sum(entry.address == address for entry in entries) >= self._limits.max_per_address:
            return TicketRefusalReason.ADDRESS_FULL
        if fresh and sum(entry.fresh for entry in entries) >= self._limits.max_fresh:
            return TicketRefusalReason.FRESH_POOL_FULL
        fresh_here = sum(entry.fresh and entry.address == address for entry in entries)
        if fresh and fresh_here >= self._limits.max_fresh_per_address:
            return TicketRefusalReason.FRESH_POOL_FULL
        if len(self._entries) >= self._limits.max_outstanding:
            return TicketRefusalReason.BOOK_FULL
        return None

    def admit(
        self, token: bytes, now: float, *, address: str
    ) -> TicketGrant | Refused[TicketRefusalReason]:
        """Consume ``token`` presented from ``address``: its grant, or why it admits nothing."""
        entry = self._entries.pop(token, None) if len(token) == TOKEN_SIZE else None
        if entry is None:
            return Refused(TicketRefusalReason.UNKNOWN)
        if now >= entry.expires_at:
            return Refused(TicketRefusalReason.EXPIRED)
        if normalize_address(address) != entry.address:
            return Refused(TicketRefusalReason.WRONG_ADDRESS)
        return entry.grant

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
        return self._revoke(lambda entry: entry.grant.peer_id == peer_id)

    def revoke_game(self, game_id: str) -> int:
        """Drop every ticket for ``game_id`` (it is no longer servable); return how many."""
        return self._revoke(lambda entry: entry.grant.game_id == game_id)

    def _revoke(self, matches: Callable[[_Entry], bool]) -> int:
        keys = [key for key, entry in self._entries.items() if matches(entry)]
        for key in keys:
            del self._entries[key]
        return len(keys)
