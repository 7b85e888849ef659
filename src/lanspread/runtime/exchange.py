"""How peers find each other: mDNS records, peer exchange hints, dials, liveness.

Theory of operation
-------------------
* **Sightings.** An mDNS record or a peer exchange hint (``core.exchange``) is a
  claim, held in the bounded :class:`~lanspread.core.sightings.Sightings` table and
  dialled within its budget expecting the id it names; only that handshake proves
  the peer. The table is dialled as soon as a dial is due (a timer wakes at
  :meth:`Sightings.next_due`), not only at the next liveness tick, so a newcomer
  that learns 47 peers from one handshake reaches them in a few seconds.
* **Peer exchange.** Handshakes carry a snapshot of the proven peers, pings and
  library pushes the peers the other side has not heard of
  (:class:`~lanspread.core.exchange.ExchangeBook`).
* **Liveness.** Every ``ping_interval`` the peers whose link was silent for the
  stretched interval (``core.exchange.ping_interval_for``) are pinged, and so are
  peers owed a peer exchange delta; a peer silent past the stretched timeout is
  dropped.
* **Discovery that recovers.** mDNS runs until the host's IPv4 addresses change (a
  cable plugged in, a Wi-Fi joined, DHCP renewed), or until a hint proved a peer
  that no mDNS record showed (multicast lost packets) and the backoff
  (``core.exchange.requery_delay``) allows: then it restarts, which announces this
  peer again and browses afresh on every interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable

from lanspread.core.exchange import (
    ExchangeBook,
    Hint,
    admissible_hints,
    first_dial_delay,
    peer_timeout_for,
    peers_to_ping,
    ping_interval_for,
    requery_delay,
)
from lanspread.core.peerdb import PeerDB
from lanspread.core.sightings import MAX_SIGHTINGS, Sighting, Sightings
from lanspread.errors import LanspreadError
from lanspread.net.connection import PeerConnection
from lanspread.net.discovery import DiscoveredPeer, Discovery, host_ipv4_addresses
from lanspread.net.wire import PROTOCOL_VERSION, PeerHint, Ping
from lanspread.runtime.addresses import format_addr, mdns_interfaces
from lanspread.runtime.events import LostReason
from lanspread.runtime.links import Job
from lanspread.runtime.options import RuntimeOptions

log = logging.getLogger(__name__)

# A ping is answered from memory; a peer that needs longer than this is not healthy.
PING_TIMEOUT = 5.0
# How often the host's addresses are read to notice a new interface: a cable plugged
# in is noticed within this, and one read of the interface list costs microseconds.
INTERFACE_POLL_INTERVAL = 5.0

Handshake = Callable[[str, int, str | None], Awaitable[PeerConnection]]


class PeerExchange:
    """Sightings, hints, dials and liveness of one :class:`~lanspread.runtime.peers.PeerNetwork`."""

    def __init__(
        self,
        options: RuntimeOptions,
        self_id: str,
        db: PeerDB,
        *,
        spawn: Callable[[Job], None],
        handshake: Handshake,
        link: Callable[[str], Awaitable[PeerConnection]],
        drop: Callable[[str, LostReason], Awaitable[None]],
    ) -> None:
        self._options = options
        self._self_id = self_id
        self._db = db
        self._spawn = spawn
        self._handshake = handshake
        self._link = link
        self._drop = drop
        # Unproven claims, dialled within a budget. A peer dropped after a timeout (a
        # cut link) goes back here at its last proven address and is dialled again
        # until it answers or its advertisement goes away.
        self.sightings = Sightings()
        self._book = ExchangeBook()
        self._timer: asyncio.TimerHandle | None = None
        self._advertised: set[str] = set()
        """Ids an mDNS record named since discovery (re)started."""
        self._missed_by_mdns = False
        self._requeries = 0

    # -- what we tell ------------------------------------------------------------

    def _proven(self) -> dict[str, tuple[str, int]]:
        return {record.peer_id: record.address for record in self._db.peers()}

    def snapshot(self, recipient: str | None) -> tuple[PeerHint, ...]:
        """The hints of a Hello or HelloAck to ``recipient`` (``None``: not known yet)."""
        hints = self._book.snapshot(self._proven(), recipient)
        if recipient is not None:
            self._book.told(recipient, (hint.peer_id for hint in hints))
        return _to_wire(hints)

    def delta(self, recipient: str) -> tuple[PeerHint, ...]:
        """The hints ``recipient`` still lacks (for a ping or a library push)."""
        return _to_wire(self._book.delta(self._proven(), recipient))

    # -- what we hear ------------------------------------------------------------

    def heard(self, sender: str, hints: Iterable[PeerHint]) -> None:
        """``sender`` told us of these peers: dial the ones worth a dial."""
        received = [Hint(h.peer_id, (h.host, h.port)) for h in hints]
        if not received:
            return
        self._book.told(sender, (hint.peer_id for hint in received))
        admitted = admissible_hints(
            received,
            self_id=self._self_id,
            proven=self._db,
            proven_count=len(self._db),
            pending=self.sightings.untried(),
        )
        now = asyncio.get_running_loop().time()
        for hint in admitted:
            self.sightings.saw(hint.peer_id, hint.address, now, proven_peer=False, hinted=True)
        if admitted:
            log.debug("peer %s named %d peers to dial", sender, len(admitted))
            self.dial_due()

    def forget(self, peer_id: str) -> None:
        self._book.forget(peer_id)

    # -- mDNS ---------------------------------------------------------------------

    def on_advertised(self, found: DiscoveredPeer) -> None:
        """An mDNS record claims ``found.peer_id`` listens at its address: a hint to dial."""
        if found.peer_id == self._self_id:
            return
        if len(self._advertised) < MAX_SIGHTINGS:
            self._advertised.add(found.peer_id)
        address = (found.host, found.port)
        record = self._db.get(found.peer_id)
        if record is not None and record.address == address:
            self.sightings.forget(found.peer_id)
            return
        now = asyncio.get_running_loop().time()
        delay = 0.0 if record is not None else first_dial_delay(self._self_id, found.peer_id)
        evicted = self.sightings.saw(
            found.peer_id, address, now, proven_peer=record is not None, delay=delay
        )
        if evicted is not None:
            log.debug("forgot the advertisement of %s to make room", evicted)
        self.dial_due()

    def on_advertisement_gone(self, peer_id: str) -> None:
        """A record of ``peer_id`` went away: stop dialling it (liveness decides the rest)."""
        sighting = self.sightings.get(peer_id)
        if sighting is not None and not sighting.hinted:
            self.sightings.forget(peer_id)

    async def run_discovery(self, port: int) -> None:
        """mDNS announce and browse, restarted when the host's addresses change or mDNS
        missed a peer that a hint proved."""
        interfaces = mdns_interfaces(self._options)
        loop = asyncio.get_running_loop()
        while True:
            discovery = Discovery(
                peer_id=self._self_id,
                name=self._options.name,
                port=port,
                protocol_version=PROTOCOL_VERSION,
                interfaces=list(interfaces) if interfaces is not None else None,
            )
            addresses = await asyncio.to_thread(host_ipv4_addresses)
            self._advertised.clear()
            self._missed_by_mdns = False
            requery_at = loop.time() + requery_delay(self._requeries)
            running = asyncio.create_task(
                discovery.run(self.on_advertised, self.on_advertisement_gone)
            )
            try:
                why = await self._until_restart(addresses, running, requery_at)
            finally:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            log.info("%s: announcing again and browsing afresh", why)

    async def _until_restart(
        self, addresses: set[str], running: asyncio.Task[None], requery_at: float
    ) -> str:
        """Why mDNS should restart, once it should; raise if mDNS failed."""
        loop = asyncio.get_running_loop()
        while True:
            done, _ = await asyncio.wait({running}, timeout=INTERFACE_POLL_INTERVAL)
            if done:
                running.result()
                return "mDNS stopped"
            if await asyncio.to_thread(host_ipv4_addresses) != addresses:
                return "the host's addresses changed"
            if self._missed_by_mdns and loop.time() >= requery_at:
                self._requeries += 1
                return "a hint proved a peer mDNS never showed"

    # -- dials ----------------------------------------------------------------------

    def dial_due(self) -> None:
        """Dial the sightings that are due, within the budget; wake again when more are."""
        loop = asyncio.get_running_loop()
        for sighting in self.sightings.claim_due(loop.time()):
            self._spawn(functools.partial(self._contact, sighting))
        wake = self.sightings.next_due(loop.time())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if wake is not None:
            self._timer = loop.call_at(wake, self.dial_due)

    async def _contact(self, sighting: Sighting) -> None:
        """Dial a claimed address expecting its id; only success moves or adds the peer."""
        proven = False
        try:
            try:
                await self._handshake(*sighting.address, sighting.peer_id)
            except (LanspreadError, OSError) as exc:
                if sighting.hinted:
                    log.info(
                        "a hint put peer %s at %s; the dial there failed: %s",
                        sighting.peer_id,
                        format_addr(*sighting.address),
                        exc,
                    )
                raise
            proven = True
            if sighting.hinted and sighting.peer_id not in self._advertised:
                self._missed_by_mdns = True
            if sighting.proven_peer:
                log.info(
                    "peer %s proved its new address %s",
                    sighting.peer_id,
                    format_addr(*sighting.address),
                )
        finally:
            # A hint about a peer proven meanwhile (by another route) is done either way.
            done = proven or (sighting.hinted and sighting.peer_id in self._db)
            self.sightings.dialled(sighting.peer_id, asyncio.get_running_loop().time(), proven=done)
            self.dial_due()

    def proven(self, peer_id: str, address: tuple[str, int]) -> None:
        """A handshake proved ``peer_id`` at ``address``: its matching sighting is done, and
        so is any hint about it (a hint never moves a proven peer)."""
        sighting = self.sightings.get(peer_id)
        if sighting is None or sighting.dialling:
            return
        if sighting.address == address or sighting.hinted:
            self.sightings.forget(peer_id)

    def lost(self, peer_id: str, address: tuple[str, int]) -> None:
        """``peer_id`` timed out: dial its last proven address again (in the budget)."""
        self._book.forget(peer_id)
        now = asyncio.get_running_loop().time()
        self.sightings.saw(peer_id, address, now, proven_peer=False)

    # -- liveness ----------------------------------------------------------------------

    async def run_liveness(self) -> None:
        """Ping idle links and owed deltas every ``ping_interval``; drop the silent peers."""
        loop = asyncio.get_running_loop()
        base = self._options.ping_interval
        while True:
            await asyncio.sleep(base)
            now = loop.time()
            count = len(self._db)
            records = self._db.peers()
            idle = set(
                peers_to_ping(
                    {r.peer_id: r.last_seen for r in records}, now, ping_interval_for(count, base)
                )
            )
            proven = [record.peer_id for record in records]
            for peer_id in proven:
                if peer_id in idle or self._book.pending(proven, peer_id):
                    self._spawn(functools.partial(self.ping, peer_id))
            timeout = peer_timeout_for(count, base, self._options.peer_timeout)
            for peer_id in self._db.expired(now, timeout):
                await self._drop(peer_id, "timeout")
            self.dial_due()

    async def ping(self, peer_id: str) -> None:
        """Ping ``peer_id`` over its link, carrying the hints it lacks; it is seen."""
        connection = await self._link(peer_id)
        await connection.request(Ping(peers=self.delta(peer_id)), timeout=PING_TIMEOUT)
        self._db.mark_seen(peer_id, asyncio.get_running_loop().time())


def _to_wire(hints: Iterable[Hint]) -> tuple[PeerHint, ...]:
    return tuple(PeerHint(peer_id=h.peer_id, host=h.address[0], port=h.address[1]) for h in hints)
