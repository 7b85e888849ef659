"""The peer-to-peer side of the runtime: server, links, discovery, library sync, liveness.

Theory of operation
-------------------
* **Identity.** Peers are known by peer id (proven by TLS certificate and signed
  Hello), never by address. A peer's listener address comes from mDNS or from its
  Hello (the connection's source IP with the announced listen port), never from a
  connection's ephemeral source port. An address change keeps identity and library.
* **Links.** Requests travel from dialer to listener, so each side keeps its own
  outbound *link* to every peer it knows: one reused TLS connection, dialled on
  first use (single flight per peer) and re-dialled when it broke
  (``runtime/links``).
* **Handshake = library sync.** Hello and HelloAck carry the whole library
  snapshot; both sides record the other's library from the handshake. Later local
  changes are pushed as ``PushLibraryDelta`` over the link, in order per peer; a
  receiver that cannot apply a delta answers ``ResyncRequired`` and the sender
  re-handshakes (a new Hello carries the full snapshot).
* **Liveness.** Idle links are pinged (``runtime/exchange``); any answer or
  request from a peer counts as a sign of life. A silent peer is dropped with
  ``PeerLost(timeout)``; a Goodbye drops it at once.
* **mDNS and peer exchange are hints, the handshake is proof.** Anyone can
  advertise any id at any address, and any peer can name any id in its hints, so
  a claim only ever causes a dial that expects the id it names (``core/sightings``,
  ``core/exchange``: bounded, rate-limited, backing off). A record for a proven
  peer at another address never moves it by itself: the peer is dialled there and
  moves only when that handshake proves its id; a hint never moves it at all.
* **Party catalog.** A peer in a party links only with peers proving its party code
  in the handshake (``net/handshake``), offers its signed catalog (``OfferCatalog``)
  to every peer on first contact and to all peers whenever it adopts a newer one;
  the receiver checks it (``runtime/party``). Views of a pinned game count only
  pinned versions (``core.party.restrict_to_pins``).
* **Seeding.** ``GetGame`` and ``GetTicket`` are answered, and the data server
  run, by the :class:`~lanspread.runtime.seeding.Seeder`; a dropped peer's
  tickets are revoked.
* **Ownership.** Short jobs (handshakes, pushes, pings) run in the task group of
  the ``peers`` service; the server runs inside the ``server`` service. Nothing is
  detached.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from lanspread.core.library import LibraryDelta
from lanspread.core.manifest import GameManifest
from lanspread.core.partial import HaveDelta
from lanspread.core.party import SignedCatalog, restrict_to_pins, unpinned_offers
from lanspread.core.peerdb import PeerChange, PeerDB, PeerRecord, RemoteGameView, aggregate
from lanspread.core.peerdb import ResyncNeeded as DbResyncNeeded
from lanspread.errors import (
    ConfigError,
    LanspreadError,
    PeerRefused,
    SelfConnect,
    TransportError,
)
from lanspread.net.connection import PeerConnection, dial
from lanspread.net.identity import PeerIdentity, load_or_create_identity
from lanspread.net.peer_server import PeerServer
from lanspread.net.wire import (
    Announcement,
    CatalogAck,
    ErrorCode,
    ErrorResponse,
    GetGame,
    GetTicket,
    Goodbye,
    GoodbyeAck,
    HaveDeltaAck,
    Hello,
    LibraryDeltaAck,
    OfferCatalog,
    Ping,
    Pong,
    PushHaveDelta,
    PushLibraryDelta,
    Request,
    Response,
    ResyncRequired,
    Ticket,
)
from lanspread.runtime.addresses import format_addr, is_wildcard, parse_addr
from lanspread.runtime.events import (
    Event,
    LostReason,
    PeerCountUpdated,
    PeerDiscovered,
    PeerLost,
    RemoteGamesChanged,
)
from lanspread.runtime.exchange import PeerExchange
from lanspread.runtime.links import Job, LinkTable
from lanspread.runtime.options import RuntimeOptions
from lanspread.runtime.replies import PeerView
from lanspread.runtime.seeding import Seeder
from lanspread.runtime.swarming import PartialSharing

if TYPE_CHECKING:
    from lanspread.runtime.local_library import LocalLibraryService
    from lanspread.runtime.party import PartyService

log = logging.getLogger(__name__)


class PeerNetwork:
    def __init__(
        self, options: RuntimeOptions, identity: PeerIdentity, publish: Callable[[Event], None]
    ) -> None:
        self._options = options
        self._identity = identity
        self._publish = publish
        self._db = PeerDB(options.catalog.ids)
        self._library: LocalLibraryService | None = None
        self._party: PartyService | None = None
        self.partials = PartialSharing(send_have=self.push_library_delta)
        self.seeder = Seeder(options, self.partials)
        self._bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()
        self._links = LinkTable(
            self._spawn, ping=lambda peer_id: self.exchange.ping(peer_id), drop=self._drop
        )
        self._push_locks: dict[str, asyncio.Lock] = {}
        self._sent_revision: dict[str, int] = {}
        self.exchange = PeerExchange(
            options,
            identity.peer_id,
            self._db,
            spawn=self._spawn,
            handshake=self._dial_expecting,
            link=self.link,
            drop=self._drop,
        )
        self._lost_listeners: list[Callable[[str], None]] = []
        self._last_announced_revision = 0
        """The library revision of the newest Hello we built (what a dialled peer got)."""

    @classmethod
    async def create(
        cls, options: RuntimeOptions, state_dir: Path, publish: Callable[[Event], None]
    ) -> PeerNetwork:
        identity = await asyncio.to_thread(load_or_create_identity, state_dir)
        return cls(options, identity, publish)

    def attach_library(self, library: LocalLibraryService) -> None:
        self._library = library
        self.seeder.attach_library(library)
        self.partials.announce = library.announce_partial

    # -- facts -------------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self._identity.peer_id

    @property
    def listen_port(self) -> int:
        return self._bound.result() if self._bound.done() else 0

    @property
    def listen_addr(self) -> str:
        return format_addr(self._options.listen_host, self.listen_port)

    @property
    def peer_count(self) -> int:
        return len(self._db)

    def remote_games(self) -> Mapping[str, RemoteGameView]:
        """What the peers hold of each catalog game; only pinned versions of a pinned game."""
        return MappingProxyType(
            {game_id: self._pinned(view) for game_id, view in aggregate(self._db).items()}
        )

    def _pinned(self, view: RemoteGameView) -> RemoteGameView:
        if self._party is None:
            return view
        return restrict_to_pins(view, self._party.pins(view.game_id))

    def pinned_digest(self, game_id: str, version: str | None) -> str | None:
        """The manifest digest the party catalog pins for this version, if any."""
        if self._party is None or version is None:
            return None
        return self._party.pins(game_id).get(version)

    def unpinned_offers(self, game_id: str) -> tuple[tuple[str, str], ...]:
        """``(peer, version)`` offering a version of a pinned game that no pin names."""
        view = aggregate(self._db).get(game_id)
        if self._party is None or view is None:
            return ()
        return unpinned_offers(view, self._party.pins(game_id))

    def peer_records(self) -> list[PeerRecord]:
        return self._db.peers()

    def peer_views(self) -> tuple[PeerView, ...]:
        return tuple(_peer_view(record) for record in self._db.peers())

    def known_peers(self) -> frozenset[str]:
        return frozenset(record.peer_id for record in self._db.peers())

    def add_peer_lost_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(peer_id)`` whenever a peer is dropped."""
        self._lost_listeners.append(listener)

    def sources_for(self, game_id: str) -> tuple[str | None, tuple[str, ...]]:
        """The newest version ready peers offer, and the peers offering exactly it."""
        view = aggregate(self._db).get(game_id)
        if view is None:
            return None, ()
        view = self._pinned(view)
        return view.latest_version, view.sources_at_latest

    # -- requests a downloader makes ------------------------------------------

    async def fetch_manifest(self, peer_id: str, game_id: str) -> GameManifest:
        """The manifest ``peer_id`` serves for ``game_id``, asked fresh over TLS."""
        connection = await self.link(peer_id)
        answer = await connection.request(GetGame(game_id=game_id))
        return answer.manifest

    async def request_ticket(
        self, peer_id: str, game_id: str, digest: str | None = None
    ) -> tuple[str, Ticket]:
        """A data-plane ticket from ``peer_id`` (of its partial copy at a digest), and its host."""
        connection = await self.link(peer_id)
        ticket = await connection.request(GetTicket(game_id=game_id, manifest_digest=digest))
        record = self._db.get(peer_id)
        host = record.address[0] if record is not None else connection.remote_address[0]
        return host, ticket

    def _local(self) -> LocalLibraryService:
        if self._library is None:
            raise ConfigError("the network has no local library attached")
        return self._library

    def _announcement(self, recipient: str | None) -> Announcement:
        return Announcement(
            name=self._options.name,
            listen_host=self._options.listen_host,
            listen_port=self.listen_port,
            library=self._local().announced,
            peers=self.exchange.snapshot(recipient),
        )

    # -- services ----------------------------------------------------------

    async def wait_bound(self) -> int:
        """The listener's port once the server service has bound it."""
        return await asyncio.shield(self._bound)

    async def serve(self) -> None:
        """The ``server`` service: the TLS listener and the data server, until cancelled."""
        o = self._options
        server = PeerServer(
            self._identity, self, host=o.listen_host, port=o.listen_port, party_code=o.party_code
        )
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(server)
                await stack.enter_async_context(self.seeder.serving())
            except (TransportError, OSError) as exc:
                failure = ConfigError(str(exc))
                self._bound.set_exception(failure)
                raise failure from exc
            self._bound.set_result(server.port)
            await asyncio.Event().wait()

    async def run_links(self) -> None:
        """The ``peers`` service: runs handshakes, pushes and pings as owned jobs."""
        async with asyncio.TaskGroup() as group:
            while True:
                job = await self._jobs.get()
                group.create_task(self._guarded(job))

    async def _guarded(self, job: Job) -> None:
        try:
            await job()
        except LanspreadError as exc:
            log.debug("peer job failed: %s", exc)
        except Exception:
            log.exception("peer job failed unexpectedly")

    def _spawn(self, job: Job) -> None:
        self._jobs.put_nowait(job)

    async def run_discovery(self) -> None:
        """The ``discovery`` service: mDNS announce and browse (``runtime/exchange``)."""
        await self.exchange.run_discovery(await self.wait_bound())

    async def run_liveness(self) -> None:
        """The ``liveness`` service: ping idle links, drop the silent peers."""
        await self.exchange.run_liveness()

    @property
    def sightings(self) -> int:
        """Unproven claims held (bounded by ``core.sightings.MAX_SIGHTINGS``)."""
        return len(self.exchange.sightings)

    # -- handshakes ----------------------------------------------------------

    async def _dial_expecting(self, host: str, port: int, peer_id: str | None) -> PeerConnection:
        return await self._handshake(host, port, expected_peer_id=peer_id)

    async def _handshake(
        self, host: str, port: int, *, expected_peer_id: str | None
    ) -> PeerConnection:
        connection = await dial(
            host,
            port,
            identity=self._identity,
            expected_peer_id=expected_peer_id,
            forbidden_peer_id=self.peer_id,
            announce=functools.partial(self._announcement_with_revision, expected_peer_id),
            party_code=self._options.party_code,
        )
        peer_id = connection.peer_id
        ack = connection.hello_ack.announcement
        await self._links.replace(peer_id, connection)
        self._sent_revision[peer_id] = self._last_announced_revision
        self._record(peer_id, ack.name, (host, ack.listen_port), ack)
        self.exchange.heard(peer_id, ack.peers)
        return connection

    def _announcement_with_revision(self, recipient: str | None) -> Announcement:
        announcement = self._announcement(recipient)
        self._last_announced_revision = announcement.library.revision
        return announcement

    def _record(
        self, peer_id: str, name: str, address: tuple[str, int], announcement: Announcement
    ) -> PeerChange:
        now = asyncio.get_running_loop().time()
        change = self._db.upsert_from_handshake(peer_id, name, address, announcement.library, now)
        record = change.record
        self.partials.peer_library(peer_id, announcement.library.games, authoritative=True)
        self.exchange.proven(peer_id, address)
        if change.new:
            log.info("peer %s (%s) at %s", name, peer_id, format_addr(*address))
            self._publish(
                PeerDiscovered(peer_id=peer_id, name=name, addr=format_addr(*record.address))
            )
            self._publish(PeerCountUpdated(count=len(self._db)))
        if change.new or change.library_changed:
            self._publish_remote_games(record)
        if change.new:
            self._offer_catalog(peer_id)
        return change

    def _publish_remote_games(self, record: PeerRecord) -> None:
        games = tuple(record.games[game_id] for game_id in sorted(record.games))
        self._publish(RemoteGamesChanged(peer_id=record.peer_id, games=games))

    async def connect(self, addr: str) -> PeerView:
        """Dial ``addr`` directly (the ``connect`` command)."""
        host, port = parse_addr(addr)
        try:
            connection = await self._handshake(host, port, expected_peer_id=None)
        except SelfConnect as exc:
            raise SelfConnect(f"{addr} is this peer: self-connect refused") from exc
        record = self._db.get(connection.peer_id)
        assert record is not None
        return _peer_view(record)

    # -- links ---------------------------------------------------------------

    async def link(self, peer_id: str) -> PeerConnection:
        """The open link to ``peer_id``, dialling it when needed (single flight)."""
        return await self._links.ensure(peer_id, functools.partial(self._redial, peer_id))

    async def _redial(self, peer_id: str) -> PeerConnection:
        record = self._db.get(peer_id)
        if record is None:
            raise LanspreadError(f"peer {peer_id} is not known")
        return await self._handshake(*record.address, expected_peer_id=peer_id)

    # -- library sync ----------------------------------------------------------

    def push_library_delta(self, delta: LibraryDelta | HaveDelta) -> None:
        """Hand a local library change (or have delta) to every known peer, in order per peer."""
        for record in self._db.peers():
            self._spawn(functools.partial(self._push, record.peer_id, delta))

    async def _push(self, peer_id: str, delta: LibraryDelta | HaveDelta) -> None:
        lock = self._push_locks.setdefault(peer_id, asyncio.Lock())
        async with lock:
            if peer_id not in self._db:
                return
            if isinstance(delta, HaveDelta):
                await (await self.link(peer_id)).request(PushHaveDelta(delta=delta))
                return
            if delta.revision <= self._sent_revision.get(peer_id, -1):
                return  # the peer got a newer snapshot in a handshake already
            connection = await self.link(peer_id)
            if delta.revision <= self._sent_revision.get(peer_id, -1):
                return  # dialling just now sent the snapshot with this change
            hints = self.exchange.delta(peer_id)
            answer = await connection.request(PushLibraryDelta(delta=delta, peers=hints))
            if isinstance(answer, ResyncRequired):
                log.info("peer %s asked for a resync: %s", peer_id, answer.reason)
                self._links.drop(peer_id)
                await self.link(peer_id)
            else:
                self._sent_revision[peer_id] = delta.revision

    # -- party catalog -----------------------------------------------------------

    def attach_party(self, party: PartyService) -> None:
        """Serve and spread ``party``'s catalog; views follow its pins."""
        self._party = party
        party.add_adopted_listener(self._catalog_adopted)

    def _catalog_adopted(self, signed: SignedCatalog) -> None:
        del signed  # each job offers whatever is newest when it runs
        for record in self._db.peers():
            self._offer_catalog(record.peer_id)
        for record in self._db.peers():
            self._publish_remote_games(record)

    def _offer_catalog(self, peer_id: str) -> None:
        if self._party is not None and self._party.catalog is not None:
            self._spawn(functools.partial(self._send_catalog, peer_id))

    async def _send_catalog(self, peer_id: str) -> None:
        if self._party is None or self._party.catalog is None or peer_id not in self._db:
            return
        connection = await self.link(peer_id)
        answer = await connection.request(OfferCatalog(catalog=self._party.catalog))
        log.debug("peer %s holds party catalog serial %d", peer_id, answer.serial)

    async def _on_catalog(self, peer_id: str, signed: SignedCatalog) -> CatalogAck:
        if self._party is not None:
            await self._party.offer(signed, peer_id)
        held = None if self._party is None else self._party.catalog
        return CatalogAck(serial=0 if held is None else held.serial)

    # -- liveness ---------------------------------------------------------------

    async def _drop(self, peer_id: str, reason: LostReason) -> None:
        record = self._db.remove(peer_id)
        if record is None:
            return
        log.info("peer %s (%s) lost: %s", record.name, peer_id, reason)
        if reason in ("timeout", "disconnected"):
            self.exchange.lost(peer_id, record.address)  # its last address: dialled again
        else:
            self.exchange.forget(peer_id)
        self.seeder.forget_peer(peer_id)
        self.partials.peer_lost(peer_id)
        self._links.drop(peer_id)
        self._sent_revision.pop(peer_id, None)
        self._push_locks.pop(peer_id, None)
        self._publish(PeerLost(peer_id=peer_id, reason=reason))
        self._publish(PeerCountUpdated(count=len(self._db)))
        self._publish(RemoteGamesChanged(peer_id=peer_id, games=()))
        for listener in self._lost_listeners:
            listener(peer_id)

    # -- the server's handler ----------------------------------------------------

    async def on_hello(self, hello: Hello, transport_host: str) -> Announcement | ErrorResponse:
        if hello.peer_id == self.peer_id:
            return ErrorResponse(
                code=ErrorCode.UNAUTHORIZED, message="self-connect refused: this is the same peer"
            )
        announced = hello.announcement
        host = transport_host if is_wildcard(announced.listen_host) else announced.listen_host
        self.seeder.inbound_link(hello.peer_id, transport_host)
        self._record(hello.peer_id, announced.name, (host, announced.listen_port), announced)
        self.exchange.heard(hello.peer_id, announced.peers)
        return self._announcement(hello.peer_id)

    async def on_request(self, peer_id: str, request: Request) -> Response:
        self._db.mark_seen(peer_id, asyncio.get_running_loop().time())
        match request:
            case Ping(peers=hints):
                self.exchange.heard(peer_id, hints)
                return Pong()
            case Goodbye():
                await self._drop(peer_id, "goodbye")
                return GoodbyeAck()
            case PushLibraryDelta(delta=delta, peers=hints):
                self.exchange.heard(peer_id, hints)
                return self._apply_delta(peer_id, delta)
            case PushHaveDelta(delta=have):
                return HaveDeltaAck(accepted=self.partials.peer_have(peer_id, have) is None)
            case GetGame(game_id=game_id):
                return await self.seeder.game_manifest(game_id)
            case GetTicket(game_id=game_id, manifest_digest=digest):
                record = self._db.get(peer_id)
                known_since = None if record is None else record.first_seen
                return await self.seeder.ticket(
                    peer_id, game_id, known_since=known_since, manifest_digest=digest
                )
            case OfferCatalog(catalog=signed):
                return await self._on_catalog(peer_id, signed)
        raise LanspreadError(f"unhandled request {type(request).__name__}")

    async def on_disconnect(self, peer_id: str) -> None:
        """Its link to us closed: it is dropped at once unless it still answers."""
        self._links.lost(peer_id)

    def _apply_delta(self, peer_id: str, delta: LibraryDelta) -> Response:
        outcome = self._db.apply_library_delta(peer_id, delta, asyncio.get_running_loop().time())
        if isinstance(outcome, DbResyncNeeded):
            record = self._db.get(peer_id)
            return ResyncRequired(
                known_revision=record.library.revision if record is not None else None,
                reason=outcome.detail[:200],
            )
        if outcome.library_changed:
            self._publish_remote_games(outcome.record)
            self.partials.peer_library(peer_id, outcome.record.games.values(), authoritative=False)
        return LibraryDeltaAck(revision=outcome.record.library.revision)

    # -- shutdown ------------------------------------------------------------------

    async def close(self, *, goodbye_timeout: float) -> None:
        """Say goodbye to every peer (bounded), then close every link."""
        peers = [record.peer_id for record in self._db.peers()]
        if peers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(goodbye_timeout):
                    await asyncio.gather(
                        *(self._say_goodbye(peer_id) for peer_id in peers),
                        return_exceptions=True,
                    )
        await self._links.close_all()

    async def _say_goodbye(self, peer_id: str) -> None:
        try:
            connection = await self.link(peer_id)
            await connection.request(Goodbye())
        except (LanspreadError, PeerRefused) as exc:
            log.debug("goodbye to %s not delivered: %s", peer_id, exc)


def _peer_view(record: PeerRecord) -> PeerView:
    return PeerView(
        peer_id=record.peer_id,
        name=record.name,
        addr=format_addr(*record.address),
        games=tuple(sorted(record.games)),
    )
