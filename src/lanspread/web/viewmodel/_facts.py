"""What the view model is given: the runtime's game views joined with the UI overlays."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lanspread.core.catalog import CatalogGame
from lanspread.core.conflict import ContentConflict
from lanspread.core.lifecycle import Command, GameState
from lanspread.runtime.download_queue import DownloadsView

OPTIMISTIC_COMMANDS = frozenset({Command.DOWNLOAD.value, Command.UPDATE.value})
"""Commands whose click shows "Checking peers" until a snapshot or the reply resolves it:
they ask the peers first, which can take a moment."""


class RuntimeState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class DownloadSample:
    """The latest ``DownloadProgress`` of a game."""

    downloaded_bytes: int
    total_bytes: int
    bytes_per_second: float
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class InstallSample:
    """The latest ``InstallProgress`` of a game."""

    extracted_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """One remote peer that reports a game."""

    peer_id: str
    name: str
    addr: str
    version: str | None
    ready: bool
    """Downloaded on that peer, so it can serve the files (``LocalOnly`` peers cannot)."""
    have_percent: float | None = None
    """How much of the game the peer can serve: 100 complete, less for a copy it is
    downloading itself (its verified chunks), ``None`` when it serves none of it."""


@dataclass(frozen=True, slots=True)
class GameFacts:
    """Everything known about one catalog game.

    ``state`` and ``actions`` are the runtime's (:mod:`lanspread.core.lifecycle`): what
    the card says and which buttons it offers come from them alone. The other fields
    are what the card shows: versions, numbers, reasons and the UI's overlays.
    """

    game: CatalogGame
    state: GameState = GameState.UNAVAILABLE
    actions: tuple[Command, ...] = ()
    """The commands the runtime would accept now."""
    downloaded: bool = False
    installed: bool = False
    local_version: str | None = None
    peer_count: int = 0
    latest_version: str | None = None
    update_available: bool = False
    installed_version: str | None = None
    """The version ``local/`` holds (its install record); may trail ``local_version``."""
    sources: tuple[SourceFacts, ...] = ()
    has_cover: bool = False
    download: DownloadSample | None = None
    install: InstallSample | None = None
    paused_percent: float | None = None
    """A resumable download's completed share (0-100), ``None`` when nothing is paused."""
    paused_reason: str | None = None
    """Why the download is paused, in the runtime's words ("interrupted by a restart")."""
    failed_reason: str | None = None
    """Why the last download failed (from the runtime's snapshot), ``None`` otherwise."""
    discardable: bool = False
    """Files of a paused or failed download are on disk."""
    last_error: str | None = None
    """Why the last install, uninstall or removal failed, until the next one starts."""
    pending: str | None = None
    """A download or update command sent from the page and not yet answered."""
    found_reason: str | None = None
    """Why a folder named like the game is *found, not from lanspread* (left alone)."""
    excluded_peers: tuple[str, ...] = ()
    """Peers (ids) that sent corrupt bytes for the game: not downloaded from until a restart."""
    known_size: int | None = None
    """The game's size as its download knows it (a paused or failed download's total);
    ``None`` when only the catalog's estimate is known."""
    launch_label: str | None = None
    """A short tag when the game cannot start on this computer ("Needs Wine")."""
    launch_problem: str | None = None
    """Why it cannot start here, in a sentence (the runtime's)."""
    played_seconds: float = 0.0
    """How long the game was played here in all."""
    last_played: float | None = None
    """When it last ended (seconds since the epoch); ``None``: never played here."""
    damaged: str | None = None
    """Its install found a damaged archive (the runtime's sentence): Install is no longer
    the main action, and the copy is not served to peers."""
    conflict: ContentConflict | None = None
    """The peers offering its unpinned version disagree on the content, until chosen."""


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """An install, update, repair or uninstall that ended keeping the player's files, or
    news of a download (finished, paused because its sources left, failed)."""

    id: int
    """Increases with every notice of this process: the page shows each id once."""
    game_id: str
    kept: tuple[str, ...] = ()
    """The player's files kept at their own path (relative to ``local/``)."""
    renamed: tuple[tuple[str, str], ...] = ()
    """The player's changed copies of shipped files: (path, kept as)."""
    uninstalled: bool = False
    message: str = ""
    """News of a download in words ("Paused: Alice left at 35%"); set, it is the text."""
    kind: str = "ok"
    """How the page draws it: ``ok``, ``warn`` (paused) or ``error`` (failed)."""


@dataclass(frozen=True, slots=True)
class PeerFacts:
    peer_id: str
    name: str
    addr: str
    games: tuple[str, ...]
    upload_rate: float = 0.0
    """Bytes a second this peer sends to that one lately."""
    pulling: bool = False
    """That peer holds one of this peer's upload slots now."""
    download_rate: float = 0.0
    """Verified bytes a second this peer receives from that one lately."""
    demo: bool = False
    """The Demo peer this process started (``lanspread demo``), not a player."""


@dataclass(frozen=True, slots=True)
class TransferFacts:
    """What this peer moves, bytes a second, and the upload limits."""

    upload_rate: float = 0.0
    download_rate: float = 0.0
    upload_limit: int = 0
    """The player's upload limit (0: unlimited)."""
    gaming_cap: int = 0
    """The cap while a game launched here runs (0: none)."""
    gaming: bool = False
    """A game launched here runs now."""
    effective_limit: int = 0
    """The limit in force now (0: unlimited)."""
    waiting: int = 0
    """Peers waiting in line for an upload slot."""


@dataclass(frozen=True, slots=True)
class SelfFacts:
    """This peer, as the sidebar shows it (drawn as it is)."""

    name: str
    peer_id: str
    listen_addr: str
    game_dir: str


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    state: RuntimeState
    component: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StrayFacts:
    """A folder in the game folder named like no catalog game."""

    name: str
    suggestion_id: str | None = None
    """The catalog game it most likely is, if any."""
    suggestion_name: str | None = None


@dataclass(frozen=True, slots=True)
class ViewInput:
    games: tuple[GameFacts, ...]
    runtime: RuntimeFacts
    peers: tuple[PeerFacts, ...] = ()
    me: SelfFacts | None = None
    setup_needed: bool = False
    """No settings saved yet: the page shows the first-run screen."""
    setup_game_dir: str = ""
    setup_name: str = ""
    notices: tuple[NoticeFacts, ...] = ()
    transfer: TransferFacts | None = None
    """Rates and upload limits; ``None`` while the runtime is not running."""
    downloads: DownloadsView | None = None
    """The runtime's Downloads view; ``None`` while the runtime is not running."""
    strays: tuple[StrayFacts, ...] = ()
