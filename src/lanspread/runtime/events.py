"""Typed events a :class:`~lanspread.runtime.PeerRuntime` emits.

Every event is a frozen ``msgspec.Struct`` tagged with its JSON Lines name, so the
peer CLI writes ``msgspec.json.encode(event)`` and gets ``{"event": "peer-lost", ...}``.

Snapshots are authoritative: ``LocalLibraryChanged`` carries the whole local
library and ``ActiveOperationsChanged`` the whole operation table, so a consumer
that missed any lifecycle event still converges on the truth with the next one.
"""

from __future__ import annotations

import msgspec

from lanspread.core.library import GameSummary


class Event(msgspec.Struct, frozen=True, tag_field="event"):
    """Base of every runtime event."""


class LocalReady(Event, frozen=True, tag="local-ready"):
    """The first local scan finished and the peer listener is bound."""

    peer_id: str
    listen_addr: str
    game_dir: str
    games: int


class LocalLibraryChanged(Event, frozen=True, tag="local-library-changed"):
    """The local library changed; ``games`` is the whole library at ``revision``."""

    revision: int
    games: tuple[GameSummary, ...]


class ActiveOperationsChanged(Event, frozen=True, tag="active-operations-changed"):
    """The operation table changed; ``operations`` maps game id to operation kind."""

    operations: dict[str, str]


class PeerDiscovered(Event, frozen=True, tag="peer-discovered"):
    peer_id: str
    name: str
    addr: str


class PeerLost(Event, frozen=True, tag="peer-lost"):
    peer_id: str
    reason: str
    """``goodbye`` (clean shutdown), ``timeout`` (stopped answering) or ``error``."""


class PeerCountUpdated(Event, frozen=True, tag="peer-count-updated"):
    count: int


class RemoteGamesChanged(Event, frozen=True, tag="remote-games-changed"):
    """A peer's visible library changed (catalog games only)."""

    peer_id: str
    games: tuple[GameSummary, ...]


class RuntimeFailed(Event, frozen=True, tag="runtime-failed"):
    """A required service died; the runtime is stopping."""

    component: str
    error: str


class ServiceRestarting(Event, frozen=True, tag="service-restarting"):
    """A restartable service failed and will be restarted after ``delay`` seconds."""

    component: str
    error: str
    delay: float
