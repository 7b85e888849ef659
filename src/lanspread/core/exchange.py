"""Peer exchange and liveness at a big party: what to tell, what to believe, whom to ping.

Theory of operation
-------------------
mDNS loses packets when dozens of peers announce at once, and a peer it misses
was never learned another way. So peers tell each other whom they know: a
handshake (Hello and HelloAck), a library push and a liveness ping carry
**hints**, ``(peer id, listener address)`` of peers the sender has *proven*
(a handshake proved their id). One mDNS hit or one manual connect is then
enough to join the whole mesh.

A hint is a claim by a stranger, never a fact:

* a hint naming this peer, a proven peer or an id already being dialled at an
  address that has not failed changes nothing (:func:`admissible_hints`): a
  gossiped address never moves a proven peer, only that peer's own handshake
  does (mDNS move candidates, ``core.sightings``);
* an admitted hint becomes a *sighting* (``core.sightings``), dialled within the
  shared dial budget **expecting the hinted id**: the TLS certificate and the
  Hello prove it, so an address that lies about an id is refused at the dial
  and leaves nothing behind but a backed-off sighting;
* only IP literals are admitted (a name would make a stranger choose our DNS
  queries), and never unspecified or multicast addresses;
* at most :data:`MAX_SHARED_PEERS` hints travel in one message, and a peer that
  already holds :data:`MAX_DIALLED_PEERS` proven peers dials no more hints.

**What to tell.** :class:`ExchangeBook` remembers, per proven peer, which ids
it was told (or told us): a handshake carries a snapshot of proven peers, later
messages only the peers it has not heard of (a batched delta), so an idle party
sends no hints at all.

**Liveness that does not grow as N squared per peer.** Any request or answer from a
peer is a sign of life, and both sides of a pair ping, so a peer pings only links
that were silent for the ping interval (:func:`peers_to_ping`), and the interval
stretches with the party so a peer sends at most :data:`PING_BUDGET` pings a second
(:func:`ping_interval_for`), up to :data:`MAX_PING_INTERVAL`; the timeout that drops
a silent peer stretches with it (:func:`peer_timeout_for`).

**Discovery that recovers.** A hint that proves a peer mDNS never showed means
multicast lost packets; mDNS then announces and browses again, backing off
(:func:`requery_delay`).

Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

Address = tuple[str, int]

# One message names at most this many peers. A hint is about 100 bytes on the
# wire, so a full list is ~6 KB; a newcomer learns the first 64 peers from one
# handshake and the rest from the deltas of its next pings (a party of hundreds
# is fully known after a few ping intervals), while a liar's message costs us at
# most 64 sightings to weigh.
MAX_SHARED_PEERS = 64
# Each proven peer costs at most one outbound link and one inbound connection (an
# idle one of the two is closed by the other side's idle timeout), and the peer server
# admits 256 connections (``net.peer_server.MAX_CONNECTIONS``). Past this many proven
# peers, hints are no longer dialled: the mesh of a bigger party is partial, each peer
# linked to the ~200 it met first. mDNS records and manual connects still add peers
# until the server's cap answers further inbound links ``Busy``. A peer one does not
# know is not one's download source; the games it holds spread through those who do.
MAX_DIALLED_PEERS = 200
# Pings a peer sends a second, whatever the party's size: at 48 peers the interval
# is ~10 s instead of 2 s. A ping costs a TLS record each way and a task; five a
# second is well under a hundredth of a core.
PING_BUDGET = 5.0
# The peer server closes a link idle for 30 s (``net.peer_server.LINK_IDLE_TIMEOUT``);
# three pings fit in that, so a busy party never loses an idle link to its own cap.
MAX_PING_INTERVAL = 10.0
# A peer is dropped after missing this many stretched ping intervals: a loaded machine
# may answer one ping late without being declared gone.
TIMEOUT_INTERVALS = 3
# Two peers that see each other's mDNS record would both dial; the one with the
# smaller id dials at once and the other waits this long, so a newcomer meeting 48
# peers costs one handshake per pair, not two. Its sighting ends when the other's
# Hello proves the peer; if that dial never comes (the record was lost one way), it
# dials itself after this, a second late.
MDNS_DEFER_DELAY = 1.0
# When a hint proved a peer that mDNS never showed, mDNS lost packets: announce and
# browse again, first after this (past the start-up burst that lost them), then at
# doubling intervals up to MAX_REQUERY_DELAY, so a party that keeps losing multicast
# sends one more burst per peer every ten minutes at most.
REQUERY_BASE_DELAY = 30.0
MAX_REQUERY_DELAY = 600.0


@dataclass(frozen=True, slots=True)
class Hint:
    """A claim that ``peer_id`` listens at ``address`` (proven by the sender, not by us)."""

    peer_id: str
    address: Address


def is_dialable_host(host: str) -> bool:
    """True for an IP literal that names one host: not a name, unspecified or multicast."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_multicast)


def admissible_hints(
    hints: Iterable[Hint],
    *,
    self_id: str,
    proven: Container[str],
    proven_count: int,
    pending: Container[str],
    limit: int = MAX_DIALLED_PEERS,
) -> list[Hint]:
    """The hints worth a dial, at most :data:`MAX_SHARED_PEERS`, each id once.

    ``pending`` holds the ids already awaiting a dial at an address that has not
    failed: a hint for one is dropped, so a liar naming another address cannot take
    the place of an honest one (a hint may replace an address whose dial failed).
    Nothing is admitted once ``proven_count`` reaches ``limit``.
    """
    admitted: list[Hint] = []
    seen: set[str] = set()
    room = min(MAX_SHARED_PEERS, max(limit - proven_count, 0))
    for hint in hints:
        if len(admitted) >= room:
            break
        if hint.peer_id in seen or hint.peer_id == self_id or hint.peer_id in proven:
            continue
        if hint.peer_id in pending or not is_dialable_host(hint.address[0]):
            continue
        seen.add(hint.peer_id)
        admitted.append(hint)
    return admitted


class ExchangeBook:
    """Which proven peers each proven peer knows of, as far as this peer can tell."""

    def __init__(self) -> None:
        self._told: dict[str, set[str]] = {}

    def snapshot(self, proven: Mapping[str, Address], recipient: str | None) -> list[Hint]:
        """A handshake's hints: proven peers other than ``recipient``, those it lacks first."""
        told = self._told.get(recipient, set()) if recipient is not None else set()
        others = [peer_id for peer_id in sorted(proven) if peer_id != recipient]
        ordered = [p for p in others if p not in told] + [p for p in others if p in told]
        return [Hint(peer_id, proven[peer_id]) for peer_id in ordered[:MAX_SHARED_PEERS]]

    def delta(self, proven: Mapping[str, Address], recipient: str) -> list[Hint]:
        """Proven peers ``recipient`` has not heard of from us or told us of; marked told."""
        told = self._told.setdefault(recipient, set())
        fresh = [p for p in sorted(proven) if p != recipient and p not in told]
        chosen = fresh[:MAX_SHARED_PEERS]
        told.update(chosen)
        return [Hint(peer_id, proven[peer_id]) for peer_id in chosen]

    def pending(self, proven: Iterable[str], recipient: str) -> bool:
        """True when ``recipient`` has not heard of every other proven peer yet."""
        told = self._told.get(recipient, set())
        return any(p != recipient and p not in told for p in proven)

    def told(self, recipient: str, peer_ids: Iterable[str]) -> None:
        """``recipient`` got (or sent us) these ids: no need to tell it again."""
        self._told.setdefault(recipient, set()).update(peer_ids)

    def reset(self, recipient: str, peer_ids: Iterable[str]) -> None:
        """A new handshake with ``recipient``: it knows exactly what that handshake carried."""
        self._told[recipient] = set(peer_ids)

    def forget(self, peer_id: str) -> None:
        """``peer_id`` was dropped: tell it everything again if it comes back, and tell the
        others about it again when it is proven anew."""
        self._told.pop(peer_id, None)
        for told in self._told.values():
            told.discard(peer_id)


def ping_interval_for(peer_count: int, base: float) -> float:
    """The liveness interval at ``peer_count`` peers: ``base``, stretched to the ping budget."""
    return max(base, min(peer_count / PING_BUDGET, MAX_PING_INTERVAL))


def peer_timeout_for(peer_count: int, base_interval: float, base_timeout: float) -> float:
    """How long a peer may stay silent: ``base_timeout``, or more when pings are stretched."""
    return max(base_timeout, TIMEOUT_INTERVALS * ping_interval_for(peer_count, base_interval))


def first_dial_delay(self_id: str, other_id: str) -> float:
    """How long to wait before dialling a peer first seen in an mDNS record."""
    return MDNS_DEFER_DELAY if self_id > other_id else 0.0


def requery_delay(requeries: int) -> float:
    """How long after the last one the next re-announcement may go, after ``requeries``."""
    return float(min(REQUERY_BASE_DELAY * 2 ** min(requeries, 32), MAX_REQUERY_DELAY))


def peers_to_ping(last_seen: Mapping[str, float], now: float, interval: float) -> list[str]:
    """The peers silent for ``interval``: only idle links need a ping, in id order."""
    return sorted(peer_id for peer_id, seen in last_seen.items() if now - seen >= interval)
