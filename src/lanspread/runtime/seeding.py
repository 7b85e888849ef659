"""The seeding side of the peer: what it serves and to whom.

Theory of operation
-------------------
* **Scope.** Everything served is judged against the serve scope of the moment:
  the game directory and the gate state (catalog ids, games busy with a local
  operation). A game that becomes busy is refused at once, on the control
  channel (``GetGame``, ``GetTicket``) and on the data plane alike.
* **Manifests.** ``GetGame`` is answered from the hashing service's cache; a game
  still being hashed is ``NOT_READY`` (the downloader retries later).
* **Tickets.** ``GetTicket`` is answered with a ticket of the data server, bound to
  the asking peer id and to the address its inbound link comes from; a peer that
  never said Hello on an inbound link gets none. Dropping a peer revokes its
  tickets.
* **Data server.** Runs inside the ``server`` service (:meth:`Seeder.serving`) on
  an ephemeral port, which every ticket names.
* **Uploads.** The data server asks :meth:`Seeder.effective_upload_limit` before
  each paced piece: the player's upload limit, lowered to the gaming-now cap while
  a game launched here runs (``core.uploads.effective_limit``), so a setting or a
  game starting or stopping applies at once. Peers that offer games of their own
  go ahead in the line for upload slots.
* **Steering.** With the peer's partial sharing, the data server steers a chunk
  request of a complete game elsewhere when other peers hold that chunk at this
  peer's manifest or are getting it from here now (``core.steering``,
  :class:`~lanspread.runtime.swarming.SeederSteering`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import msgspec

from lanspread.core.manifest import GameManifest
from lanspread.core.partial import NO_PARTIALS, PartialProvider
from lanspread.core.servegate import GateState
from lanspread.core.uploads import check_limit, effective_limit
from lanspread.errors import ConfigError
from lanspread.net.wire import ErrorCode, ErrorResponse, ManifestResponse, Response
from lanspread.runtime.options import RuntimeOptions
from lanspread.runtime.swarming import PartialSharing, SeederSteering
from lanspread.seeding.dataserver import (
    DataServer,
    ServeScope,
    answer_ticket_request,
    check_servable,
)

if TYPE_CHECKING:
    from lanspread.runtime.local_library import LocalLibraryService
    from lanspread.seeding.manifests import HashingService


class UploadStatus(msgspec.Struct, frozen=True):
    """What this peer uploads: limits in force and who pulls from it, bytes a second."""

    upload_limit: int
    """The player's limit (0: unlimited)."""
    gaming_cap: int
    """The cap while a game launched here runs (0: none)."""
    gaming: bool
    """A game launched here runs now."""
    effective_limit: int
    """The limit applied now (0: unlimited)."""
    rates: dict[str, float]
    """Upload bytes a second to each peer that pulled lately."""
    serving: tuple[str, ...]
    """Peers holding an upload slot now."""
    waiting: tuple[str, ...]
    """Peers waiting for an upload slot, first first."""
    games: dict[str, str] = {}
    """The game each known peer last asked a ticket for."""


class Seeder:
    """Answers ``GetGame`` and ``GetTicket`` and runs the data server."""

    def __init__(self, options: RuntimeOptions, partials: PartialProvider = NO_PARTIALS) -> None:
        self._options = options
        self._partials = partials
        self._ticket_games: dict[str, str] = {}
        self._library: LocalLibraryService | None = None
        self._hashing: HashingService | None = None
        self._data: DataServer | None = None
        # Where each peer's inbound link comes from: its tickets admit only there.
        self._inbound_host: dict[str, str] = {}
        self._upload_limit = options.upload_limit
        self._gaming_cap = options.gaming_upload_cap
        self._gaming: Callable[[], bool] = lambda: False
        self._serves_others: Callable[[str], bool] = lambda peer_id: False
        self._steering = (
            SeederSteering(self._manifest_for, partials.book)
            if isinstance(partials, PartialSharing)
            else None
        )

    def attach_uploads(
        self, *, gaming: Callable[[], bool], serves_others: Callable[[str], bool]
    ) -> None:
        """Whether a game runs here now, and whether a peer serves others (line preference)."""
        self._gaming = gaming
        self._serves_others = serves_others

    def set_upload_limits(self, *, upload_limit: int, gaming_cap: int) -> None:
        """New limits (bytes a second, 0: none), applied from the next piece sent."""
        try:
            check_limit(upload_limit, "upload limit")
            check_limit(gaming_cap, "gaming-now cap")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self._upload_limit, self._gaming_cap = upload_limit, gaming_cap

    @property
    def upload_limits(self) -> tuple[int, int]:
        """The player's upload limit and gaming-now cap."""
        return self._upload_limit, self._gaming_cap

    def effective_upload_limit(self) -> int:
        return effective_limit(self._upload_limit, self._gaming_cap, gaming=self._gaming())

    def upload_status(self) -> UploadStatus:
        data = self._data
        return UploadStatus(
            upload_limit=self._upload_limit,
            gaming_cap=self._gaming_cap,
            gaming=self._gaming(),
            effective_limit=self.effective_upload_limit(),
            rates={} if data is None else data.shaper.rates(),
            serving=() if data is None else tuple(sorted(data.shaper.serving)),
            waiting=() if data is None else data.shaper.waiting,
            games=dict(self._ticket_games),
        )

    def attach_library(self, library: LocalLibraryService) -> None:
        self._library = library

    def attach_hashing(self, hashing: HashingService) -> None:
        """The source of servable manifests for GetGame."""
        self._hashing = hashing

    async def _manifest_for(self, game_id: str) -> GameManifest | None:
        return None if self._hashing is None else await self._hashing.manifest_for(game_id)

    @property
    def data_server(self) -> DataServer | None:
        """The chunk server while the ``server`` service runs (bytes sent, tickets)."""
        return self._data

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[DataServer]:
        """Run the data server (on an ephemeral port: every ticket names it)."""
        async with DataServer(
            self.scope,
            host=self._options.listen_host,
            port=0,
            upload_limit=self.effective_upload_limit,
            serves_others=lambda peer_id: self._serves_others(peer_id),
            steering=self._steering,
        ) as data:
            self._data = data
            try:
                yield data
            finally:
                self._data = None

    def scope(self) -> ServeScope:
        if self._library is None:
            raise ConfigError("the seeder has no local library attached")
        return ServeScope(
            game_dir=self._library.game_dir,
            gate_state=GateState(
                catalog_ids=self._options.catalog.ids,
                active_operations=self._library.operations.root_busy(),
                withheld=frozenset(self._library.withheld),
            ),
            partials=self._partials,
        )

    def inbound_link(self, peer_id: str, host: str) -> None:
        """``peer_id`` said Hello on an inbound link from ``host``."""
        self._inbound_host[peer_id] = host

    def forget_peer(self, peer_id: str) -> None:
        """``peer_id`` was dropped: its link address goes, and so do its tickets."""
        self._inbound_host.pop(peer_id, None)
        self._ticket_games.pop(peer_id, None)
        if self._data is not None:
            self._data.tickets.revoke_peer(peer_id)

    async def game_manifest(self, game_id: str) -> Response:
        """The answer to ``GetGame``."""
        refusal = await check_servable(self.scope(), game_id)
        if refusal is not None:
            return refusal
        manifest = None if self._hashing is None else await self._hashing.manifest_for(game_id)
        if manifest is None:
            return ErrorResponse(
                code=ErrorCode.NOT_READY, message=f"{game_id} is still being hashed here"
            )
        return ManifestResponse(manifest=manifest)

    async def ticket(
        self,
        peer_id: str,
        game_id: str,
        *,
        known_since: float | None,
        manifest_digest: str | None = None,
    ) -> Response:
        """The answer to ``GetTicket``; ``known_since``: when the peer was first seen
        (``None``: it is not known); ``manifest_digest``: a ticket for a partial copy."""
        if self._data is None:
            return ErrorResponse(
                code=ErrorCode.INTERNAL_PEER_ERROR, message="the data server is not running"
            )
        address = self._inbound_host.get(peer_id)
        if known_since is None or address is None:
            return ErrorResponse(code=ErrorCode.UNAUTHORIZED, message="unknown peer; say Hello")
        self._ticket_games[peer_id] = game_id
        # PeerDB's times are the loop's clock, time.monotonic, which the data server
        # uses too: first_seen is comparable with its clock.
        return await answer_ticket_request(
            self._data,
            peer_id,
            game_id,
            self.scope(),
            address=address,
            known_since=known_since,
            manifest_digest=manifest_digest,
        )
