"""Each catalog game's lifecycle state, read fresh from the services that hold its facts.

A game's facts are spread over the runtime: the library (what is on disk), the
operation table, the games ``play`` started, the download manager (stopped
downloads, found folders, the peers that lied) and the peer network (what the
peers offer). :class:`GameStates` joins them for one game or for the whole
catalog and asks :mod:`lanspread.core.lifecycle` the rest: the state, the commands
a front end may offer, and for a command entry point, the refusal it raises.
Nothing is cached: a snapshot is always the truth of the moment it was read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from typing import TYPE_CHECKING, Protocol

from lanspread.core.catalog import CatalogGame
from lanspread.core.conflict import ContentConflict
from lanspread.core.launching import RUNNERS, LaunchPlan, Platform, launch_plan
from lanspread.core.library import FoundGame
from lanspread.core.lifecycle import Command, GameState, LifecycleFacts, refusal_for, state_of
from lanspread.platform.process import current_platform, runners_found
from lanspread.runtime.replies import DownloadState, GameView, game_facts, game_views
from lanspread.runtime.startup import PartialDownload

if TYPE_CHECKING:
    from lanspread.runtime.local_library import LocalLibraryService
    from lanspread.runtime.peers import PeerNetwork


class DownloadFacts(Protocol):
    """What the download manager knows of the games that are not downloading."""

    @property
    def partials(self) -> Mapping[str, PartialDownload]: ...

    @property
    def halted(self) -> Mapping[str, DownloadState]: ...

    @property
    def found(self) -> Mapping[str, FoundGame]: ...

    @property
    def excluded(self) -> Mapping[str, tuple[str, ...]]: ...

    @property
    def conflicts(self) -> Mapping[str, ContentConflict]: ...

    @property
    def staged_ready(self) -> Mapping[str, str]: ...


class _NoDownloads:
    """Before the download manager is attached: nothing stopped, found or excluded."""

    partials: Mapping[str, PartialDownload] = {}
    halted: Mapping[str, DownloadState] = {}
    found: Mapping[str, FoundGame] = {}
    excluded: Mapping[str, tuple[str, ...]] = {}
    conflicts: Mapping[str, ContentConflict] = {}
    staged_ready: Mapping[str, str] = {}


class GameStates:
    def __init__(
        self,
        local: LocalLibraryService,
        network: PeerNetwork,
        *,
        platform: Platform | None = None,
        runners: frozenset[str] | None = None,
    ) -> None:
        self._local = local
        self._network = network
        # Looked up once: a runner installed later counts from the next start.
        self._platform = platform if platform is not None else current_platform()
        self._runners = runners if runners is not None else runners_found(RUNNERS)
        self._running: Callable[[], Set[str]] = frozenset
        self._downloads: DownloadFacts = _NoDownloads()

    def attach(self, *, running: Callable[[], Set[str]], downloads: DownloadFacts) -> None:
        """Read the running games and the download facts from these (built after us)."""
        self._running = running
        self._downloads = downloads

    def plan(self, game_id: str) -> LaunchPlan:
        """How the catalog game starts on this computer (:class:`UnknownGame` otherwise)."""
        return self._plan_of(self._local.require_catalog_game(game_id))

    def _plan_of(self, game: CatalogGame) -> LaunchPlan:
        return launch_plan(game, self._platform, self._runners)

    def facts(self, game_id: str) -> LifecycleFacts:
        """The facts of a catalog game now (:class:`UnknownGame` for any other id)."""
        game = self._local.require_catalog_game(game_id)
        return game_facts(
            game,
            self._local.library.get(game_id),
            self._network.remote_games().get(game_id),
            operation=self._local.operations.get(game_id),
            running=game_id in self._running(),
            halted=self._downloads.halted.get(game_id),
            found=game_id in self._downloads.found,
            plan=self._plan_of(game),
            staged_version=self._downloads.staged_ready.get(game_id),
        )

    def state(self, game_id: str) -> GameState:
        return state_of(self.facts(game_id))

    def require(self, game_id: str, command: Command) -> GameState:
        """The game's state, when it allows ``command`` now; otherwise the refusal's
        error (:class:`UnknownGame` first for an id not in the catalog)."""
        facts = self.facts(game_id)
        state = state_of(facts)
        refusal = refusal_for(facts, command)
        if refusal is not None:
            game = self._local.catalog.get(game_id)
            raise refusal.error(game.name if game is not None else game_id, command, state)
        return state

    def views(self) -> tuple[GameView, ...]:
        """Every catalog game as the game list and the UI show it."""
        downloads = self._downloads
        return game_views(
            self._local.catalog,
            self._local.snapshot,
            self._local.operations.snapshot(),
            self._network.remote_games(),
            downloads.partials,
            self._running(),
            downloads.found,
            downloads.halted,
            downloads.excluded,
            self._plan_of,
            self._local.withheld,
            downloads.conflicts,
            downloads.staged_ready,
        )
