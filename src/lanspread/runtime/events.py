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


# -- downloads -------------------------------------------------------------------------


class DownloadBegin(Event, frozen=True, tag="download-begin"):
    """Sources agreed on a manifest and the transfer starts."""

    game: str
    version: str | None
    total_bytes: int
    sources: tuple[str, ...]
    resumed_bytes: int
    """Bytes already complete from an earlier, interrupted download or reused on disk."""


class DownloadProgress(Event, frozen=True, tag="download-progress"):
    game: str
    downloaded_bytes: int
    total_bytes: int
    bytes_per_second: float
    eta_seconds: float | None


class ChunkFinished(Event, frozen=True, tag="chunk-finished"):
    game: str
    path: str
    offset: int
    length: int
    peer_id: str


class DownloadFinished(Event, frozen=True, tag="download-finished"):
    game: str
    version: str | None


class DownloadFailed(Event, frozen=True, tag="download-failed"):
    game: str
    reason: str


class DownloadCancelled(Event, frozen=True, tag="download-cancelled"):
    game: str


class DownloadAllPeersGone(Event, frozen=True, tag="download-all-peers-gone"):
    """Every source vanished; the download is paused and can be resumed."""

    game: str


class SourceRejected(Event, frozen=True, tag="source-rejected"):
    """A source was not used for some files (manifest disagreement or bad bytes)."""

    game: str
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


class InstallBegin(Event, frozen=True, tag="install-begin"):
    game: str
    update: bool


class InstallProgress(Event, frozen=True, tag="install-progress"):
    game: str
    extracted_bytes: int
    total_bytes: int


class RenamedFile(msgspec.Struct, frozen=True):
    """A player's file kept beside a new file of the same name."""

    path: str
    kept_as: str


class InstallFinished(Event, frozen=True, tag="install-finished"):
    game: str
    version: str | None = None
    """The version now installed, as its install record names it."""
    kept: tuple[str, ...] = ()
    """The player's files (in ``local/``) carried across the update at their own path."""
    renamed: tuple[RenamedFile, ...] = ()
    """The player's copies of files the new version ships, kept as ``<name>.mine``."""


class InstallFailed(Event, frozen=True, tag="install-failed"):
    game: str
    reason: str


class UninstallBegin(Event, frozen=True, tag="uninstall-begin"):
    game: str


class UninstallFinished(Event, frozen=True, tag="uninstall-finished"):
    game: str
    kept: tuple[str, ...] = ()
    """The player's files left in ``local/`` (an uninstall with ``keep_saves``)."""


class UninstallFailed(Event, frozen=True, tag="uninstall-failed"):
    game: str
    reason: str


class RemoveBegin(Event, frozen=True, tag="remove-begin"):
    game: str


class RemoveFinished(Event, frozen=True, tag="remove-finished"):
    game: str


class RemoveFailed(Event, frozen=True, tag="remove-failed"):
    game: str
    reason: str


class GameStarted(Event, frozen=True, tag="game-started"):
    game: str
    pid: int


class GameExited(Event, frozen=True, tag="game-exited"):
    game: str
    returncode: int
