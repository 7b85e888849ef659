"""Reply data of runtime commands: plain structs, ready for JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set

import msgspec

from lanspread.core.catalog import Catalog, CatalogGame
from lanspread.core.conflict import ContentConflict
from lanspread.core.launching import LaunchKind, LaunchPlan, launch_plan
from lanspread.core.library import FoundGame, GameSummary, LibrarySnapshot
from lanspread.core.lifecycle import (
    Command,
    GameState,
    Halt,
    LifecycleFacts,
    actions,
    lifecycle_facts,
    state_of,
)
from lanspread.core.operations import OperationKind
from lanspread.core.peerdb import RemoteGameView
from lanspread.platform.process import current_platform
from lanspread.runtime.startup import PartialDownload


class StatusReply(msgspec.Struct, frozen=True):
    peer_id: str
    name: str
    listen_addr: str
    game_dir: str
    library_revision: int
    games: int
    peers: int
    operations: dict[str, str]
    bytes_served: int = 0
    """Chunk bytes this peer's data server has sent since it last started: its upload counter."""
    upload_limit: int = 0
    """The upload limit in force, bytes a second (0: unlimited), the gaming-now cap included."""
    gaming: bool = False
    """A game launched here runs: uploads are capped at the gaming-now cap."""
    upload_rate: float = 0.0
    """Upload bytes a second lately, to every peer."""
    download_rate: float = 0.0
    """Verified download bytes a second lately, from every peer."""


class OperationStarted(msgspec.Struct, frozen=True):
    """The command's operation began; its outcome arrives as events."""

    game: str
    operation: str


class Started(msgspec.Struct, frozen=True):
    """A game process was started."""

    game: str
    pid: int


PAUSED = Halt.PAUSED.value
FAILED = Halt.FAILED.value


class DownloadState(msgspec.Struct, frozen=True):
    """A download that is not running but left something to act on: paused or failed.

    Everything a front end draws comes from here; none of it is derived from events.
    """

    state: str
    """``paused`` (resume it) or ``failed`` (retry it)."""
    reason: str
    """Why, as a code: ``all-peers-gone`` (every source left or stopped answering) or
    ``restart`` (a journal found at start) for a paused download, ``failed`` for a
    failed one."""
    message: str
    """Why, in words for a person ("interrupted by a restart", or the failure)."""
    done_bytes: int
    """Bytes already complete on disk (journaled and verified)."""
    total_bytes: int
    """Every byte of the download; 0 when nothing of it reached the disk."""
    discardable: bool
    """Files of it are on disk; ``cancel`` discards them (through the download's sweep)."""


class GameView(msgspec.Struct, frozen=True):
    """One catalog game as this peer sees it: local state joined with what peers offer."""

    id: str
    name: str
    state: GameState
    """Where the game stands (:class:`lanspread.core.lifecycle.GameState`): what a front
    end draws, never re-derived from the other fields."""
    actions: tuple[Command, ...]
    """The commands the runtime would accept for the game now (in a fixed order): the
    buttons a front end may offer. A command whose success depends on the peers of the
    moment (``download`` of a paused game with no peer online) is still listed; the
    refusal then says why."""
    downloaded: bool
    installed: bool
    local_version: str | None
    """The downloaded version (the root ``version.ini``)."""
    operation: str | None
    peer_count: int
    """Peers that can serve the game (``Ready``)."""
    latest_version: str | None
    """The newest version any ready peer has."""
    update_available: bool
    paused_bytes: int = 0
    """Bytes already complete of a paused (resumable) download; 0 when none."""
    paused_total_bytes: int = 0
    running: bool = False
    """The game was started with ``play`` and has not exited."""
    installed_version: str | None = None
    """The version in ``local/`` as its install record names it (``None``: not installed,
    or installed without a record)."""
    found: str | None = None
    """Why a folder named like the game is *found, not from lanspread* (never
    touched); ``None`` when lanspread accounts for the folder or there is none."""
    download_state: DownloadState | None = None
    """A paused or failed download while no operation runs on the game; ``None`` otherwise."""
    excluded_peers: tuple[str, ...] = ()
    """Peers (ids) that sent corrupt bytes for the game: not asked for it again until
    this peer restarts."""
    launch: LaunchKind = LaunchKind.NATIVE
    """How the game starts on this computer (:mod:`lanspread.core.launching`)."""
    launch_label: str | None = None
    """A short tag when it cannot start here ("Needs Wine", "Windows only")."""
    launch_problem: str | None = None
    """Why it cannot start here, in a sentence; ``None`` when it can."""
    damaged: str | None = None
    """Why the downloaded copy is not served to peers: its install found a damaged
    archive ("teeworlds.eti is damaged or not a game archive; download it again")."""
    conflict: ContentConflict | None = None
    """The peers offering its unpinned newest version disagree on the content: the
    sides, until the player chose one (``choose-content``)."""
    download_bytes: int = 0
    """The one size a front end shows: the bytes a download fetches (the newest version
    peers offer), else those of the copy here; 0 when neither is known (then the
    catalog's approximate size is all there is)."""


class VerifyReply(msgspec.Struct, frozen=True):
    """How ``local/`` compares with its install record (paths relative to ``local/``)."""

    game: str
    version: str | None
    """The version the record names."""
    ok: bool
    """Every shipped file is present and unchanged (the player's own files do not count)."""
    changed: tuple[str, ...]
    """Shipped files whose bytes differ: edited by the player, or damaged."""
    missing: tuple[str, ...]
    added: tuple[str, ...]
    """Files the install did not ship: the player's own."""
    shipped_files: int = 0
    """Files the install record lists (what "all N game files are intact" counts)."""


class AdoptReply(msgspec.Struct, frozen=True):
    """How a found folder compares with the version peers offer (``adopt``)."""

    game: str
    version: str | None
    """The version compared against (the newest a ready peer offers)."""
    adopted: bool
    """It holds exactly that version's files: a download now fetches only ``version.ini``
    and records the player's files as the game's (rewritten if ever needed, never
    deleted)."""
    differs: tuple[str, ...] = ()
    """Why not, one line a game file (``path: missing``, ``path: other content`` ...)."""
    compared_files: int = 0
    """Game files compared (the sentinel not counted)."""


class UninstallPlan(msgspec.Struct, frozen=True):
    """What an uninstall would do (``dry_run``); nothing has been deleted."""

    game: str
    keep_saves: bool
    delete_files: int
    """Files the uninstall deletes."""
    delete_bytes: int
    players_files: tuple[str, ...]
    """The player's files (added, or shipped and edited): kept with ``keep_saves``,
    deleted without it."""
    players_bytes: int = 0
    """Bytes of ``players_files``: with one dry run a front end can say what either
    choice deletes."""


class PeerView(msgspec.Struct, frozen=True):
    peer_id: str
    name: str
    addr: str
    games: tuple[str, ...]
    """Catalog games the peer reports, ready or local-only."""


def game_facts(
    game: CatalogGame,
    summary: GameSummary | None,
    offer: RemoteGameView | None,
    *,
    operation: OperationKind | None,
    running: bool,
    halted: DownloadState | None,
    found: bool,
    plan: LaunchPlan | None = None,
    staged_version: str | None = None,
) -> LifecycleFacts:
    """The lifecycle facts of one game from what the runtime's services report
    (``staged_version``: a verified update staged beside the game, not installed yet)."""
    return lifecycle_facts(
        summary,
        latest=offer.latest_version if offer is not None else None,
        peer_count=offer.peer_count if offer is not None else 0,
        operation=operation,
        running=running,
        halt=Halt(halted.state) if halted is not None else None,
        discardable=halted is not None and halted.discardable,
        found=found,
        playable=(plan or default_plan(game)).playable,
        staged_version=staged_version,
    )


def default_plan(game: CatalogGame) -> LaunchPlan:
    """How ``game`` starts on this platform when no runner program is known."""
    return launch_plan(game, current_platform(), frozenset())


def game_views(
    catalog: Catalog,
    local: LibrarySnapshot,
    operations: Mapping[str, OperationKind],
    remote: Mapping[str, RemoteGameView],
    partials: Mapping[str, PartialDownload] | None = None,
    running: Set[str] = frozenset(),
    found: Mapping[str, FoundGame] | None = None,
    halted: Mapping[str, DownloadState] | None = None,
    excluded: Mapping[str, tuple[str, ...]] | None = None,
    plan_of: Callable[[CatalogGame], LaunchPlan] = default_plan,
    damaged: Mapping[str, str] | None = None,
    conflicts: Mapping[str, ContentConflict] | None = None,
    staged: Mapping[str, str] | None = None,
) -> tuple[GameView, ...]:
    partials = partials or {}
    found = found or {}
    halted = halted or {}
    excluded = excluded or {}
    conflicts = conflicts or {}
    staged = staged or {}
    mine = local.by_id()
    views = []
    for game in sorted(catalog, key=lambda g: g.id):
        summary = mine.get(game.id)
        offer = remote.get(game.id)
        operation = operations.get(game.id)
        partial = partials.get(game.id)
        plan = plan_of(game)
        facts = game_facts(
            game,
            summary,
            offer,
            operation=operation,
            running=game.id in running,
            halted=halted.get(game.id),
            found=game.id in found,
            plan=plan,
            staged_version=staged.get(game.id),
        )
        views.append(
            GameView(
                id=game.id,
                name=game.name,
                state=state_of(facts),
                actions=actions(facts),
                downloaded=facts.downloaded,
                installed=facts.installed,
                local_version=summary.version if summary is not None else None,
                operation=operation.value if operation is not None else None,
                peer_count=offer.peer_count if offer is not None else 0,
                latest_version=offer.latest_version if offer is not None else None,
                update_available=facts.update_available,
                paused_bytes=partial.done_bytes if partial is not None else 0,
                paused_total_bytes=partial.total_bytes if partial is not None else 0,
                running=facts.running,
                installed_version=summary.installed_version if summary is not None else None,
                found=found[game.id].reason if game.id in found else None,
                download_state=halted.get(game.id) if operation is None else None,
                excluded_peers=excluded.get(game.id, ()),
                launch=plan.kind,
                launch_label=plan.label,
                launch_problem=plan.problem(game.name),
                damaged=(damaged or {}).get(game.id),
                conflict=conflicts.get(game.id),
                download_bytes=download_bytes(summary, offer),
            )
        )
    return tuple(views)


def download_bytes(summary: GameSummary | None, offer: RemoteGameView | None) -> int:
    """What a download of the game fetches now, else the size of the copy here."""
    if offer is not None:
        sizes = [offer.peers[p].size_bytes for p in offer.sources_at_latest if p in offer.peers]
        if sizes:
            return max(sizes)
    return summary.size_bytes if summary is not None else 0
