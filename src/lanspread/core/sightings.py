"""mDNS sightings: what the network claims, held at arm's length until a handshake proves it.

Theory of operation
-------------------
mDNS records are not signed: anyone on the switch can advertise any peer id at
any address. So a record never changes what we believe by itself; it only
causes a **dial** that expects the id it names, and only the TLS certificate and
the Hello of that dial prove (or disprove) it:

* a record for an unknown id is a sighting; dialling it is a first contact;
* a record for a proven peer at the address we already have is nothing new;
* a record for a proven peer at another address is a sighting too (a *move
  candidate*): the peer is dialled there expecting its id, and only a handshake
  that succeeds moves it. Until then, and when the dial fails, the proven
  address stays, so a spoofed record cannot take a peer away from us.

Peer exchange (``core.exchange``) adds **hinted** sightings: a peer's claim about
a third peer, weaker than a record the named peer sent itself. An mDNS record
for a hinted id replaces the hint (fresh, without its backoff).

The table is bounded by :data:`MAX_SIGHTINGS`. A new sighting in a full table
evicts another: hints first, then sightings of unknown ids before move
candidates, then the one whose dials failed most, then the oldest. Proven peers live in the peer
database, not here, so nothing a flood of records does can displace them.

Dials are rate-limited: a token bucket allows :data:`DIAL_RATE` per second (a
burst of :data:`DIAL_BURST`), and a sighting whose dial failed waits an
exponential backoff (:data:`RETRY_BASE_DELAY` doubling up to
:data:`MAX_RETRY_DELAY`) before it is due again. :meth:`Sightings.claim_due` hands out
the sightings to dial now: those that failed least first, and among them the
newest first. Records that keep failing cannot starve an honest newcomer, nor
can a burst of fake records that arrived just before it: a newcomer waits for
the next token, not for the whole burst to be tried.

The table reads no clock: every call takes ``now``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lanspread.core.admission import refilled

Address = tuple[str, int]

# A LAN party is tens to a hundred peers, all of which may appear at once when the
# party starts; beyond this, a flood of records evicts its own failed records.
MAX_SIGHTINGS = 256
# A dial costs one TCP connect and TLS handshake (and a task for up to the connect
# timeout when nobody answers). Ten a second contacts a party of a hundred within
# ten seconds and caps what a flood of fake records makes us send.
DIAL_RATE = 10.0
# A party starting at once: twenty first contacts go out without waiting.
DIAL_BURST = 20.0
# The liveness ping interval: the old behaviour re-dialled an advertised peer that
# was not connected once per ping, and a link cut for a moment heals as fast.
RETRY_BASE_DELAY = 2.0
# A peer whose cable came back is dialled again within this (a link-cut scenario
# rejoins in seconds), while a record that never answers costs one dial per this
# much time; 256 of them ask 32 dials/s, which the dial budget caps anyway.
MAX_RETRY_DELAY = 8.0
# A hint whose dial failed this often is dropped (after ~22 s of backoff): unlike a
# record, no advertisement going away ends it, and a peer that cannot be dialled (a
# firewall, a liar's address) would otherwise cost every peer told of it a dial every
# MAX_RETRY_DELAY for ever. Hearing the hint again starts over.
MAX_HINT_FAILURES = 4


@dataclass(frozen=True, slots=True)
class Sighting:
    """One record's claim: ``peer_id`` listens at ``address``."""

    peer_id: str
    address: Address
    proven_peer: bool
    """The id is a proven peer (this is a move candidate), not a stranger."""
    first_seen: float
    failures: int = 0
    next_dial_at: float = 0.0
    dialling: bool = False
    hinted: bool = False
    """Another peer named this id (peer exchange), not the id's own mDNS record."""


class Sightings:
    """Unproven mDNS claims and the dial budget; see the module docstring."""

    def __init__(
        self,
        *,
        capacity: int = MAX_SIGHTINGS,
        dial_rate: float = DIAL_RATE,
        dial_burst: float = DIAL_BURST,
        retry_base: float = RETRY_BASE_DELAY,
        retry_max: float = MAX_RETRY_DELAY,
    ) -> None:
        if capacity < 1 or dial_rate <= 0 or dial_burst < 1 or retry_base <= 0:
            raise ValueError("capacity, rate, burst and retry delay must be positive")
        self._capacity = capacity
        self._rate = dial_rate
        self._burst = dial_burst
        self._retry_base = retry_base
        self._retry_max = max(retry_max, retry_base)
        self._entries: dict[str, Sighting] = {}
        self._tokens = dial_burst
        self._refilled_at: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._entries

    def get(self, peer_id: str) -> Sighting | None:
        return self._entries.get(peer_id)

    def saw(
        self,
        peer_id: str,
        address: Address,
        now: float,
        *,
        proven_peer: bool,
        hinted: bool = False,
        delay: float = 0.0,
    ) -> str | None:
        """Record a claim; returns the peer id evicted to make room, if any.

        A claim for a sighting already held updates its address and kind but keeps
        its failures and backoff, so changing the advertised address does not buy a
        spoofer an earlier dial. A new sighting is first due after ``delay``. A record
        (not a hint) for a hinted sighting replaces it afresh: the hint may have been a
        lie that earned the backoff; a hint never changes a sighting that came from a
        record.
        """
        old = self._entries.get(peer_id)
        if old is not None and old.hinted and not hinted and not old.dialling:
            self._entries[peer_id] = Sighting(peer_id, address, proven_peer, first_seen=now)
            return None
        if old is not None and hinted and not old.hinted:
            return None  # a record the peer sent itself outweighs any hint
        if old is not None:
            self._entries[peer_id] = dataclasses.replace(
                old, address=address, proven_peer=proven_peer
            )
            return None
        evicted = None
        if len(self._entries) >= self._capacity:
            evicted = self._victim()
            del self._entries[evicted]
        self._entries[peer_id] = Sighting(
            peer_id, address, proven_peer, first_seen=now, next_dial_at=now + delay, hinted=hinted
        )
        return evicted

    def untried(self) -> frozenset[str]:
        """The ids being dialled or awaiting a first dial: their address has not failed."""
        return frozenset(
            entry.peer_id
            for entry in self._entries.values()
            if entry.dialling or not entry.failures
        )

    def next_due(self, now: float) -> float | None:
        """When :meth:`claim_due` may next hand out a dial; ``None`` when nothing waits."""
        waiting = [e.next_dial_at for e in self._entries.values() if not e.dialling]
        if not waiting:
            return None
        self._refill(now)
        token_at = now if self._tokens >= 1 else now + (1 - self._tokens) / self._rate
        return max(min(waiting), token_at)

    def forget(self, peer_id: str) -> bool:
        """Drop the sighting of ``peer_id`` (its record went away or matched); False if none."""
        return self._entries.pop(peer_id, None) is not None

    def claim_due(self, now: float) -> list[Sighting]:
        """The sightings to dial now, within the dial budget; each is marked as dialling."""
        self._refill(now)
        ready = sorted(
            (
                entry
                for entry in self._entries.values()
                if not entry.dialling and entry.next_dial_at <= now
            ),
            key=lambda entry: (entry.failures, -entry.first_seen, entry.peer_id),
        )
        chosen: list[Sighting] = []
        for entry in ready:
            if self._tokens < 1:
                break
            self._tokens -= 1
            marked = dataclasses.replace(entry, dialling=True)
            self._entries[entry.peer_id] = marked
            chosen.append(marked)
        return chosen

    def dialled(self, peer_id: str, now: float, *, proven: bool) -> None:
        """The dial of ``peer_id`` ended: ``proven`` drops the sighting, else it backs off
        (a hint that failed :data:`MAX_HINT_FAILURES` times is dropped)."""
        entry = self._entries.get(peer_id)
        if entry is None:
            return
        if proven or (entry.hinted and entry.failures + 1 >= MAX_HINT_FAILURES):
            del self._entries[peer_id]
            return
        delay = min(self._retry_base * 2**entry.failures, self._retry_max)
        self._entries[peer_id] = dataclasses.replace(
            entry, failures=entry.failures + 1, next_dial_at=now + delay, dialling=False
        )

    def _refill(self, now: float) -> None:
        if self._refilled_at is None:
            self._refilled_at = now
            return
        self._tokens = refilled(
            self._tokens, self._refilled_at, now, rate=self._rate, burst=self._burst
        )
        self._refilled_at = max(self._refilled_at, now)

    def _victim(self) -> str:
        """Hints, then unknown ids before move candidates, most failures, the oldest."""
        return min(
            self._entries.values(),
            key=lambda entry: (
                not entry.hinted,
                entry.proven_peer,
                -entry.failures,
                entry.first_seen,
            ),
        ).peer_id
