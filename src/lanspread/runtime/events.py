"""Typed events a :class:`~lanspread.runtime.PeerRuntime` emits.

Every event is a frozen ``msgspec.Struct`` tagged with its JSON Lines name, so the
peer CLI writes ``msgspec.json.encode(event)`` and gets ``{"event": "peer-lost", ...}``.

Snapshots are authoritative: ``LocalLibraryChanged`` carries the whole local
library and ``ActiveOperationsChanged`` the whole operation table, so a consumer
that missed any lifecycle event still converges on the truth with the next one.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from lanspread.core.engine import messages
from lanspread.core.library import GameSummary

LostReason = Literal["goodbye", "timeout", "error", "disconnected"]
"""Why a peer was dropped (:class:`PeerLost`)."""


class Event(msgspec.Struct, frozen=True, tag_field="event"):
    """Base of every runtime event."""


class PeerEvent(Event, frozen=True):
    """Base of the events about one remote peer."""

    peer_id: str


class ServiceEvent(Event, frozen=True):
    """Base of the events about a service of the runtime that failed."""

    component: str
    error: str


class GameEvent(Event, frozen=True):
    """Base of the events about one game."""

    game: str


class GameFailure(GameEvent, frozen=True):
    """Base of the events saying an operation on a game failed, and why."""

    reason: str


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


class PeerDiscovered(PeerEvent, frozen=True, tag="peer-discovered"):
    name: str
    addr: str


class PeerLost(PeerEvent, frozen=True, tag="peer-lost"):
    reason: LostReason
    """``goodbye`` (clean shutdown), ``timeout`` (stopped answering), ``error``, or
    ``disconnected`` (its link to us closed and it did not answer at once)."""


class PeerCountUpdated(Event, frozen=True, tag="peer-count-updated"):
    count: int


class RemoteGamesChanged(PeerEvent, frozen=True, tag="remote-games-changed"):
    """A peer's visible library changed (catalog games only)."""

    games: tuple[GameSummary, ...]


class RuntimeFailed(ServiceEvent, frozen=True, tag="runtime-failed"):
    """A required service died; the runtime is stopping."""


class ServiceRestarting(ServiceEvent, frozen=True, tag="service-restarting"):
    """A restartable service failed and will be restarted after ``delay`` seconds."""

    delay: float


# -- downloads -------------------------------------------------------------------------


class DownloadBegin(GameEvent, frozen=True, tag="download-begin"):
    """Sources agreed on a manifest and the transfer starts."""

    version: str | None
    total_bytes: int
    sources: tuple[str, ...]
    resumed_bytes: int
    """Bytes already complete from an earlier, interrupted download or reused on disk."""

    @classmethod
    def of(cls, game: str, begin: messages.Begin) -> DownloadBegin:
        """The event for the engine's ``begin`` of ``game``'s download."""
        return cls(game, begin.version, begin.total_bytes, begin.sources, begin.resumed_bytes)


class DownloadProgress(GameEvent, frozen=True, tag="download-progress"):
    downloaded_bytes: int
    """Bytes of verified chunks."""
    total_bytes: int
    bytes_per_second: float
    """Bytes a second on the wire, over a window long enough to stay steady on a slow link."""
    eta_seconds: float | None
    in_flight_bytes: int = 0
    """Bytes received of chunks not verified yet: progress before a chunk lands."""


class ChunkFinished(GameEvent, frozen=True, tag="chunk-finished"):
    path: str
    offset: int
    length: int
    peer_id: str

    @classmethod
    def of(cls, game: str, done: messages.ChunkDone) -> ChunkFinished:
        """The event for the engine's ``done`` chunk of ``game``, with the peer it came from."""
        task = done.task
        return cls(game, task.path, task.offset, task.length, done.source)


class DownloadFinished(GameEvent, frozen=True, tag="download-finished"):
    version: str | None


class DownloadFailed(GameFailure, frozen=True, tag="download-failed"):
    """The download stopped for good (the game snapshot says why, and what is left)."""

    conflict: bool = False
    """It stopped on a content conflict: the player chooses a side in the game's details."""


class DownloadCancelled(GameEvent, frozen=True, tag="download-cancelled"):
    """The download was cancelled (a paused one's files discarded)."""


class DownloadAllPeersGone(GameEvent, frozen=True, tag="download-all-peers-gone"):
    """Every source vanished; the download is paused and can be resumed."""

    message: str = ""
    """Why, for the player: who left and how far the download had got."""


class DownloadQueueChanged(Event, frozen=True, tag="download-queue-changed"):
    """The downloads waiting for a slot, first first, after any change."""

    queued: tuple[str, ...]


class DownloadPaused(GameEvent, frozen=True, tag="download-paused"):
    """The player paused the download, or it waits in the queue (``reason``)."""

    reason: str


class SourceRejected(GameEvent, frozen=True, tag="source-rejected"):
    """A source was not used for some files (manifest disagreement or bad bytes)."""

    peer_id: str
    reason: str


# -- party ----------------------------------------------------------------------------------


class PartyCatalogAdopted(Event, frozen=True, tag="catalog-adopted"):
    """A newer catalog signed by the party key is now the content authority."""

    serial: int
    pins: int
    """How many (game, version) pins it holds."""
    source: str
    """The peer id it came from, or ``local`` (this peer's state folder)."""


class PartyCatalogRefused(Event, frozen=True, tag="catalog-refused"):
    """A signed catalog was not adopted: wrong key, bad signature or an older serial."""

    peer_id: str
    """The peer id it came from, or ``local`` (this peer's state folder)."""
    reason: str
    """``wrong-key``, ``bad-signature``, ``malformed`` or ``stale``."""
    detail: str
    """The sentence the log has too."""


# -- install lifecycle --------------------------------------------------------------------


class InstallBegin(GameEvent, frozen=True, tag="install-begin"):
    update: bool


class InstallProgress(GameEvent, frozen=True, tag="install-progress"):
    extracted_bytes: int
    total_bytes: int


class RenamedFile(msgspec.Struct, frozen=True):
    """A player's file kept beside a new file of the same name."""

    path: str
    kept_as: str


class InstallFinished(GameEvent, frozen=True, tag="install-finished"):
    version: str | None = None
    """The version now installed, as its install record names it."""
    kept: tuple[str, ...] = ()
    """The player's files (in ``local/``) carried across the update at their own path."""
    renamed: tuple[RenamedFile, ...] = ()
    """The player's copies of files the new version ships, kept as ``<name>.mine``."""


class InstallFailed(GameFailure, frozen=True, tag="install-failed"):
    """Extracting the game failed; ``local/`` is as it was before."""


class UninstallBegin(GameEvent, frozen=True, tag="uninstall-begin"):
    """Deleting ``local/`` starts."""


class UninstallFinished(GameEvent, frozen=True, tag="uninstall-finished"):
    kept: tuple[str, ...] = ()
    """The player's files left in ``local/`` (an uninstall with ``keep_saves``)."""


class UninstallFailed(GameFailure, frozen=True, tag="uninstall-failed"):
    """Deleting ``local/`` failed; what could not be deleted is back in ``local/``."""


class RemoveBegin(GameEvent, frozen=True, tag="remove-begin"):
    """Deleting the downloaded files of a game that is not installed starts."""


class RemoveFinished(GameEvent, frozen=True, tag="remove-finished"):
    """The downloaded files are gone."""


class RemoveFailed(GameFailure, frozen=True, tag="remove-failed"):
    """Deleting the downloaded files failed."""


class GameStarted(GameEvent, frozen=True, tag="game-started"):
    pid: int


class GameExited(GameEvent, frozen=True, tag="game-exited"):
    returncode: int
    seconds: float = 0.0
    """How long the game ran."""
    message: str | None = None
    """What the player reads when the game ended at once with an error code
    ("Quake III Arena exited with code 3 after 0.1 s; its output is in …")."""
    stopped: bool = False
    """It ended because the player pressed Stop."""
