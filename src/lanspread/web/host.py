"""The runtime behind the UI: started, watched and restarted in process.

:class:`RuntimeHost` owns one :class:`PeerRuntime` at a time. It feeds every event
to the :class:`UiState` store and tells the UI to redraw. When a required service
fails, the runtime stops and the host waits in the ``failed`` state (the UI shows
a banner) until :meth:`RuntimeHost.restart` starts a new runtime with the same
options. A runtime that stops cleanly (a shutdown command or :meth:`stop`) ends
:meth:`RuntimeHost.run`.

:meth:`RuntimeHost.view_input` joins the runtime's authoritative views with the
store's overlays into the view model's input; it only reads. The store's overlays
are brought in line with the runtime's snapshots by an explicit step,
:meth:`RuntimeHost.reconcile`, which the UI takes before it builds a view.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from lanspread.core.library import Availability, GameSummary
from lanspread.errors import (
    ConfigError,
    LanspreadError,
    OperationInProgress,
    RuntimeUnavailable,
)
from lanspread.runtime.addresses import format_addr, shown_addr
from lanspread.runtime.events import Event, RuntimeFailed
from lanspread.runtime.options import RuntimeOptions
from lanspread.runtime.replies import FAILED, PAUSED, GameView
from lanspread.runtime.runtime import PeerRuntime
from lanspread.web import viewmodel
from lanspread.web.state import GameOverlay, UiState

log = logging.getLogger(__name__)

RuntimeFactory = Callable[[RuntimeOptions], PeerRuntime]


class RuntimeHost:
    def __init__(
        self,
        options: RuntimeOptions,
        store: UiState,
        on_change: Callable[[], None],
        *,
        factory: RuntimeFactory = PeerRuntime,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.options = options
        self._on_event = on_event
        self._store = store
        self._on_change = on_change
        self._factory = factory
        self._runtime: PeerRuntime | None = None
        self.demo_peer_id: str | None = None
        """The Demo peer of ``lanspread demo``: always labelled as the demo it is."""
        self._state = viewmodel.RuntimeFacts(viewmodel.RuntimeState.STARTING)
        self._wake = asyncio.Event()
        self._restart_requested = False
        self._stop_requested = False

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> viewmodel.RuntimeFacts:
        return self._state

    @property
    def runtime(self) -> PeerRuntime:
        """The running runtime; :class:`RuntimeUnavailable` otherwise."""
        if self._runtime is None or self._state.state is not viewmodel.RuntimeState.RUNNING:
            raise RuntimeUnavailable(f"the lanspread peer is {self._state.state.value}")
        return self._runtime

    def _set_state(self, facts: viewmodel.RuntimeFacts) -> None:
        self._state = facts
        self._on_change()

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Run runtimes until one stops cleanly or :meth:`stop` is called."""
        while not self._stopping():
            failure = await self._run_once()
            if self._stopping():
                break
            if self._restart_requested:
                self._restart_requested = False
                continue
            if failure is None:
                self._set_state(viewmodel.RuntimeFacts(viewmodel.RuntimeState.STOPPED))
                return
            self._set_state(
                viewmodel.RuntimeFacts(viewmodel.RuntimeState.FAILED, failure[0], failure[1])
            )
            await self._wait_for_restart()
        self._set_state(viewmodel.RuntimeFacts(viewmodel.RuntimeState.STOPPED))

    def _stopping(self) -> bool:
        return self._stop_requested

    async def _run_once(self) -> tuple[str, str] | None:
        """Start one runtime and follow it to its end; the failure, if it failed."""
        self._set_state(viewmodel.RuntimeFacts(viewmodel.RuntimeState.STARTING))
        runtime = self._factory(self.options)
        events = runtime.subscribe()
        try:
            await runtime.start()
        except LanspreadError as exc:
            events.close()
            log.error("the peer could not start: %s", exc)  # noqa: TRY400 (expected, no trace)
            return ("start", str(exc))
        self._store.reset()
        self._runtime = runtime
        self._set_state(viewmodel.RuntimeFacts(viewmodel.RuntimeState.RUNNING))
        if self._stop_requested or self._restart_requested:
            runtime.shutdown()
        failure: tuple[str, str] | None = None
        async for event in events:
            if self._on_event is not None:
                self._on_event(event)
            if isinstance(event, RuntimeFailed):
                failure = (event.component, event.error)
            if self._store.apply(event):
                self._on_change()
        await runtime.wait_stopped()
        return failure

    async def _wait_for_restart(self) -> None:
        self._wake.clear()
        while not (self._restart_requested or self._stop_requested):
            await self._wake.wait()
            self._wake.clear()
        self._restart_requested = False

    def restart(self, options: RuntimeOptions | None = None) -> None:
        """Replace the runtime with a new one (``options`` or the same as before).

        Refused with :class:`OperationInProgress` while the running one has operations.
        """
        if self._state.state is viewmodel.RuntimeState.STARTING:
            raise RuntimeUnavailable("the lanspread peer is starting; try again in a moment")
        runtime = self._runtime
        if runtime is not None and self._state.state is viewmodel.RuntimeState.RUNNING:
            busy = sorted(runtime.local.operations.snapshot())
            if busy:
                raise OperationInProgress(f"cannot restart while busy: {', '.join(busy)}")
        if options is not None:
            self.options = options
        self._restart_requested = True
        self._wake.set()
        if runtime is not None:
            runtime.shutdown()

    def stop(self) -> None:
        self._stop_requested = True
        self._wake.set()
        if self._runtime is not None:
            self._runtime.shutdown()

    def update_options(self, **changes: object) -> None:
        """Remember a change the running runtime already made (e.g. a new game dir)."""
        self.options = dataclasses.replace(self.options, **changes)  # type: ignore[arg-type]

    # -- facts for the view model ----------------------------------------------------------

    def reconcile(self) -> None:
        """Drop the store's overlays the runtime's operation table and running games
        contradict (snapshots are authoritative: a missed event is corrected here)."""
        runtime = self._runtime
        if runtime is None:
            return
        self._store.reconcile({view.id: view.operation for view in runtime.games()})

    def view_input(self, *, setup_needed: bool) -> viewmodel.ViewInput:
        """The facts the view model is built from; changes nothing."""
        runtime = self._runtime
        if runtime is None or self._state.state is not viewmodel.RuntimeState.RUNNING:
            # No peer runs: nothing is offered and nothing can be played (a stopped
            # runtime's last snapshot would show stale peers and Play buttons).
            return viewmodel.ViewInput(
                games=tuple(viewmodel.GameFacts(game=game) for game in self.options.catalog),
                runtime=self._state,
                setup_needed=setup_needed,
                setup_game_dir=str(self.options.game_dir),
                setup_name=self.options.name,
                notices=self._store.notices,
            )
        me = viewmodel.SelfFacts(
            name=runtime.name,
            peer_id=runtime.peer_id,
            listen_addr=shown_addr(runtime.listen_addr),
            game_dir=str(runtime.local.game_dir),
        )
        games = self._games(runtime)
        uploads = runtime.uploads()
        downloads = runtime.download_rates()
        return viewmodel.ViewInput(
            games=games,
            runtime=self._state,
            peers=tuple(
                viewmodel.PeerFacts(
                    peer.peer_id,
                    peer.name,
                    peer.addr,
                    peer.games,
                    upload_rate=uploads.rates.get(peer.peer_id, 0.0),
                    pulling=peer.peer_id in uploads.serving,
                    download_rate=downloads.get(peer.peer_id, 0.0),
                    demo=peer.peer_id == self.demo_peer_id,
                )
                for peer in runtime.network.peer_views()
            ),
            transfer=viewmodel.TransferFacts(
                upload_rate=sum(uploads.rates.values()),
                download_rate=runtime.queue.download_rate(),
                upload_limit=uploads.upload_limit,
                gaming_cap=uploads.gaming_cap,
                gaming=uploads.gaming,
                effective_limit=uploads.effective_limit,
                waiting=len(uploads.waiting),
            ),
            downloads=runtime.downloads_view(),
            me=me,
            setup_needed=setup_needed,
            setup_game_dir=me.game_dir,
            setup_name=me.name,
            notices=self._store.notices,
            strays=self._strays(runtime),
        )

    @staticmethod
    def _strays(runtime: PeerRuntime) -> tuple[viewmodel.StrayFacts, ...]:
        """The game folder's unknown folders, with the catalog game each may be."""
        catalog = runtime.local.catalog
        facts = []
        for stray in runtime.local.strays:
            game = catalog.get(stray.suggestion) if stray.suggestion is not None else None
            facts.append(
                viewmodel.StrayFacts(
                    stray.name, game.id if game else None, game.name if game else None
                )
            )
        return tuple(facts)

    def _games(self, runtime: PeerRuntime) -> tuple[viewmodel.GameFacts, ...]:
        """The runtime's game views (authoritative) joined with the store's overlays."""
        views = runtime.games()
        sources = self._sources(runtime)
        return tuple(
            game_facts(view, self._store.overlay(view.id), sources.get(view.id, ()), runtime)
            for view in views
        )

    @staticmethod
    def _sources(runtime: PeerRuntime) -> dict[str, tuple[viewmodel.SourceFacts, ...]]:
        network = runtime.network
        peers = {record.peer_id: record for record in network.peer_records()}
        result: dict[str, tuple[viewmodel.SourceFacts, ...]] = {}
        for game_id, remote in network.remote_games().items():
            facts = []
            for peer_id, summary in remote.peers.items():
                record = peers.get(peer_id)
                if record is None:
                    continue
                facts.append(
                    viewmodel.SourceFacts(
                        peer_id=peer_id,
                        name=record.name,
                        addr=format_addr(*record.address),
                        version=summary.version,
                        ready=summary.availability is Availability.READY,
                        have_percent=_have_percent(summary),
                    )
                )
            result[game_id] = tuple(facts)
        return result


def game_facts(
    view: GameView,
    overlay: GameOverlay,
    sources: tuple[viewmodel.SourceFacts, ...],
    runtime: PeerRuntime,
) -> viewmodel.GameFacts:
    """One game's facts: the runtime's view plus the store's overlays.

    A paused or failed download is the runtime's own fact (``download_state``);
    the overlays only add what events carry between snapshots.
    """
    stopped = view.download_state
    paused = stopped is not None and stopped.state == PAUSED
    catalog = runtime.local.catalog
    played = runtime.lifecycle.play_time(view.id)
    game = catalog.get(view.id)
    if game is None:
        raise ConfigError(f"{view.id!r} is not a game of the catalog")
    return viewmodel.GameFacts(
        game=game,
        downloaded=view.downloaded,
        installed=view.installed,
        local_version=view.local_version,
        state=view.state,
        actions=view.actions,
        peer_count=view.peer_count,
        latest_version=view.latest_version,
        update_available=view.update_available,
        installed_version=view.installed_version,
        sources=sources,
        has_cover=game.cover is not None,
        download=overlay.download,
        install=overlay.install,
        paused_percent=(
            viewmodel.percent_of(stopped.done_bytes, stopped.total_bytes)
            if stopped is not None and paused
            else None
        ),
        paused_reason=stopped.message if stopped is not None and paused else None,
        failed_reason=stopped.message if stopped is not None and stopped.state == FAILED else None,
        discardable=stopped is not None and stopped.discardable,
        last_error=overlay.last_error,
        pending=overlay.pending,
        found_reason=view.found,
        excluded_peers=view.excluded_peers,
        known_size=stopped.total_bytes if stopped is not None else (view.download_bytes or None),
        launch_label=view.launch_label,
        launch_problem=view.launch_problem,
        damaged=view.damaged,
        played_seconds=played.total_seconds,
        last_played=_latest(played.last_played, overlay.last_played),
        conflict=view.conflict,
    )


def _have_percent(summary: GameSummary) -> float | None:
    """How much of the game a remote copy serves: all of a ready one, the verified chunks
    of a partial one, none of one that is only installed."""
    if summary.availability is Availability.READY:
        return 100.0
    if summary.partial is None:
        return None
    have = int.from_bytes(summary.partial.bitfield, "big").bit_count()
    return viewmodel.percent_of(have, summary.partial.chunk_count)


def _latest(*moments: float | None) -> float | None:
    """The latest of the known moments (the durable last play, this run's last start)."""
    return max((moment for moment in moments if moment is not None), default=None)
