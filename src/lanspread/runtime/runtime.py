"""PeerRuntime: the one runtime behind the desktop app, the peer CLI and the Python API.

Lifecycle::

    runtime = PeerRuntime(options)
    await runtime.start()        # dirs, identity, first scan, listener bound, LocalReady
    async for event in runtime.subscribe(): ...
    reply = await runtime.execute(Connect(addr="10.0.0.2:7878"))
    runtime.shutdown()           # or a Shutdown command, or a required service failing
    await runtime.wait_stopped() # goodbyes sent (bounded), services joined

``start`` runs the services under a :class:`Supervisor`: the peer server is
required, discovery and liveness restart after a delay, the local monitor is best
effort. The runtime owns its main task and joins it in ``wait_stopped``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import assert_never

import msgspec

from lanspread.core.gameroot import version_sort_key
from lanspread.core.library import LibraryDelta
from lanspread.core.uploads import PeerRates
from lanspread.errors import ConfigError, LanspreadError
from lanspread.platform.disk import free_bytes
from lanspread.runtime.adoption import adopt
from lanspread.runtime.commands import (
    Adopt,
    AnyCommand,
    Cancel,
    ChooseContent,
    Command,
    Connect,
    Download,
    Install,
    ListDownloads,
    ListGames,
    ListPeers,
    MoveDownload,
    Pause,
    PauseAll,
    Play,
    Redownload,
    Remove,
    Repair,
    Resume,
    ResumeAll,
    SetGameDir,
    SetUploadLimit,
    Shutdown,
    Status,
    Stop,
    Uninstall,
    Update,
    Verify,
)
from lanspread.runtime.download_queue import DownloadQueue, DownloadsView
from lanspread.runtime.downloads import DownloadManager
from lanspread.runtime.eventbus import EventBus, Subscription
from lanspread.runtime.events import ChunkFinished, Event, LocalReady
from lanspread.runtime.jobs import JobRunner
from lanspread.runtime.lifecycle import Lifecycle
from lanspread.runtime.local_library import LocalLibraryService
from lanspread.runtime.options import RuntimeOptions
from lanspread.runtime.party import PartyService
from lanspread.runtime.peers import PeerNetwork
from lanspread.runtime.programs import Programs
from lanspread.runtime.replies import (
    GameView,
    OperationStarted,
    PeerView,
    Started,
    StatusReply,
)
from lanspread.runtime.seeding import UploadStatus
from lanspread.runtime.startup import recover_install_state
from lanspread.runtime.states import GameStates
from lanspread.runtime.supervisor import Policy, Service, Supervisor
from lanspread.seeding.manifests import HashingService, ManifestCache
from lanspread.storage.gamedir import prepare_game_dir, prepare_state_dir
from lanspread.storage.programs import load_programs
from lanspread.storage.settings import SettingsStore

log = logging.getLogger(__name__)


class PeerRuntime:
    def __init__(self, options: RuntimeOptions) -> None:
        self._options = options
        self._bus = EventBus()
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._local: LocalLibraryService | None = None
        self._network: PeerNetwork | None = None
        self._jobs = JobRunner("operation")
        self._lifecycle: Lifecycle | None = None
        self._downloads: DownloadManager | None = None
        self._queue: DownloadQueue | None = None
        self._states: GameStates | None = None
        self._manifests: ManifestCache | None = None
        self._hashing: HashingService | None = None
        self._party: PartyService | None = None
        # Verified chunk bytes received from each peer (ChunkFinished), for the rates.
        self._download_rates = PeerRates()

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        if self._main is not None:
            raise ConfigError("runtime already started")
        options = self._options
        game_dir = await asyncio.to_thread(prepare_game_dir, options.game_dir)
        state_dir = await asyncio.to_thread(prepare_state_dir, options.state_dir)
        network = await PeerNetwork.create(options, state_dir, self._bus.publish)
        local = LocalLibraryService(
            game_dir=game_dir,
            state_dir=state_dir,
            catalog=options.catalog,
            publish=self._bus.publish,
            on_delta=lambda delta: self._library_changed(network, delta),
            fallback_interval=options.fallback_scan_interval,
        )
        network.attach_library(local)
        party = PartyService(options.party_code, state_dir, self._bus.publish)
        await party.load()
        network.attach_party(party)
        self._party = party
        self._manifests = ManifestCache(state_dir, chunk_size=options.chunk_size)
        self._hashing = HashingService(self._manifests, local)
        network.seeder.attach_hashing(self._hashing)
        states = GameStates(local, network)
        lifecycle = Lifecycle(
            local,
            self._jobs,
            self._bus.publish,
            states,
            programs=Programs(state_dir, await asyncio.to_thread(load_programs, state_dir)),
            pinned=network.pinned_digest,
        )
        downloads = DownloadManager(
            local=local,
            network=network,
            lifecycle=lifecycle,
            jobs=self._jobs,
            publish=self._publish_download_event,
            install_policy=options.install_policy,
            manifests=self._manifests,
        )
        states.attach(running=lambda: lifecycle.running, downloads=downloads)
        self._queue = DownloadQueue(downloads, network, publish=self._bus.publish)
        network.seeder.attach_uploads(
            gaming=lambda: bool(lifecycle.running),
            serves_others=lambda peer_id: self._offers_games(network, peer_id),
        )
        await asyncio.to_thread(recover_install_state, game_dir, options.catalog)
        await asyncio.to_thread(downloads.recover)
        await local.full_scan()
        self._local, self._network = local, network
        self._lifecycle, self._downloads, self._states = lifecycle, downloads, states
        self._main = asyncio.create_task(self._run(), name="lanspread-runtime")
        try:
            await network.wait_bound()
        except LanspreadError:
            self.shutdown()
            await self.wait_stopped()
            raise
        self._bus.publish(
            LocalReady(
                peer_id=network.peer_id,
                listen_addr=network.listen_addr,
                game_dir=str(local.game_dir),
                games=len(local.snapshot.games),
            )
        )

    async def _run(self) -> None:
        local, network = self._require_started()
        restart = self._options.restart_delay
        services = [
            Service("server", network.serve, Policy.REQUIRED),
            Service("peers", network.run_links, Policy.REQUIRED),
            Service("liveness", network.run_liveness, Policy.RESTART, restart),
            Service("local-monitor", local.run, Policy.BEST_EFFORT),
            Service("operations", self._jobs.run, Policy.REQUIRED),
            Service("download-queue", self._run_queue, Policy.RESTART, restart),
        ]
        if self._hashing is not None:
            services.append(Service("hashing", self._hashing.run, Policy.RESTART, restart))
        if self._party is not None and self._options.party_code is not None:
            services.append(Service("party", self._party.watch, Policy.RESTART, restart))
        if self._options.mdns:
            services.append(Service("discovery", network.run_discovery, Policy.RESTART, restart))
        supervisor = Supervisor(self._bus.publish, self.shutdown)
        try:
            await supervisor.run(services, self._stop)
        finally:
            self.lifecycle.stop()
            await local.flush()
            try:
                await network.close(goodbye_timeout=self._options.goodbye_timeout)
            finally:
                self._bus.close()
                self._stopped.set()

    async def _run_queue(self) -> None:
        await self.queue.run(self.subscribe)

    def _library_changed(self, network: PeerNetwork, delta: LibraryDelta) -> None:
        network.push_library_delta(delta)
        if self._hashing is not None:
            self._hashing.library_changed()

    def shutdown(self) -> None:
        """Ask the runtime to stop; returns at once (see :meth:`wait_stopped`)."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        if self._main is None:
            return
        await asyncio.shield(self._main)

    async def __aenter__(self) -> PeerRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.shutdown()
        await self.wait_stopped()

    # -- observation -------------------------------------------------------

    def subscribe(self) -> Subscription:
        """A stream of every event published from now on (ends when the runtime stops)."""
        return self._bus.subscribe()

    def publish(self, event: Event) -> None:
        self._bus.publish(event)

    @property
    def peer_id(self) -> str:
        return self._require_started()[1].peer_id

    @property
    def listen_addr(self) -> str:
        return self._require_started()[1].listen_addr

    @property
    def name(self) -> str:
        return self._options.name

    @property
    def game_dir(self) -> Path:
        return self._require_started()[0].game_dir

    @property
    def local(self) -> LocalLibraryService:
        return self._require_started()[0]

    @property
    def network(self) -> PeerNetwork:
        return self._require_started()[1]

    @property
    def party(self) -> PartyService:
        """The party this peer joined (its code is ``None`` outside a party)."""
        if self._party is None:
            raise ConfigError("runtime not started")
        return self._party

    @property
    def manifest_cache(self) -> ManifestCache:
        """Where the downloader stores the manifest of a game it completed."""
        if self._manifests is None:
            raise ConfigError("runtime not started")
        return self._manifests

    @property
    def hashing(self) -> HashingService:
        if self._hashing is None:
            raise ConfigError("runtime not started")
        return self._hashing

    @property
    def downloads(self) -> DownloadManager:
        if self._downloads is None:
            raise ConfigError("runtime not started")
        return self._downloads

    @property
    def queue(self) -> DownloadQueue:
        if self._queue is None:
            raise ConfigError("runtime not started")
        return self._queue

    def downloads_view(self) -> DownloadsView:
        """The Downloads view: downloads in order, rates, uploads, free space."""
        return self.queue.view(lambda: free_bytes(self.game_dir))

    @property
    def lifecycle(self) -> Lifecycle:
        if self._lifecycle is None:
            raise ConfigError("runtime not started")
        return self._lifecycle

    def _require_started(self) -> tuple[LocalLibraryService, PeerNetwork]:
        if self._local is None or self._network is None:
            raise ConfigError("runtime not started")
        return self._local, self._network

    # -- commands ----------------------------------------------------------

    async def execute(self, command: Command) -> msgspec.Struct | None:
        """Carry out ``command``; returns reply data or raises a :class:`LanspreadError`."""
        local, network = self._require_started()
        if not isinstance(command, AnyCommand):
            raise LanspreadError(f"unsupported command {type(command).__name__}")
        match command:
            case Status():
                return self.status()
            case ListGames():
                return GameList(games=self.games())
            case ListPeers():
                return PeerList(peers=network.peer_views())
            case Connect(addr=addr):
                return await network.connect(addr)
            case SetGameDir(path=path):
                new_dir = await local.set_game_dir(Path(path), settle=self._settle_game_dir)
                return GameDirReply(game_dir=str(new_dir))
            case SetUploadLimit(upload_limit=upload_limit, gaming_cap=gaming_cap):
                return await self._set_upload_limits(network, upload_limit, gaming_cap)
            case Shutdown():
                self.shutdown()
                return None
            case Download(game=game) | Resume(game=game):
                return OperationStarted(game=game, operation=self.queue.download(game))
            case Update(game=game):
                if self._install_downloaded_update(game):
                    return OperationStarted(game=game, operation="updating")
                return OperationStarted(game=game, operation=self.queue.download(game, update=True))
            case Cancel(game=game):
                self.queue.cancel(game)
                return OperationStarted(game=game, operation="cancelling")
            case ListDownloads():
                return self.downloads_view()
            case Pause(game=game):
                self.queue.pause(game)
                return OperationStarted(game=game, operation="pausing")
            case PauseAll():
                self.queue.pause_all()
                return self.downloads_view()
            case ResumeAll():
                self.queue.resume_all()
                return self.downloads_view()
            case MoveDownload(game=game, step=step):
                self.queue.move(game, step)
                return self.downloads_view()
            case Install(game=game):
                kind = self.lifecycle.install(game)
                return OperationStarted(game=game, operation=kind.value)
            case Uninstall(game=game, keep_saves=keep_saves, dry_run=True):
                return await self.lifecycle.uninstall_plan(game, keep_saves=keep_saves)
            case Uninstall(game=game, keep_saves=keep_saves):
                self.lifecycle.uninstall(game, keep_saves=keep_saves)
                return OperationStarted(game=game, operation="uninstalling")
            case Verify(game=game):
                return await self.lifecycle.verify(game)
            case Repair(game=game):
                self.lifecycle.repair(game)
                return OperationStarted(game=game, operation="updating")
            case Remove(game=game):
                self.lifecycle.remove(game)
                return OperationStarted(game=game, operation="removing")
            case ChooseContent(game=game, digest=digest):
                self.downloads.choose_content(game, digest)
                return OperationStarted(game=game, operation="downloading")
            case Play(game=game, run_unpinned=run_unpinned):
                pid = await self.lifecycle.play(game, run_unpinned=run_unpinned)
                return Started(game=game, pid=pid)
            case Redownload(game=game):
                self.lifecycle.remove(game, then=lambda: self.downloads.download(game))
                return OperationStarted(game=game, operation="removing")
            case Stop(game=game):
                self.lifecycle.stop_game(game)
                return OperationStarted(game=game, operation="stopping")
            case Adopt(game=game):
                return await adopt(
                    game,
                    game_dir=local.game_dir,
                    lifecycle=self.lifecycle,
                    network=network,
                    downloads=self.downloads,
                )
            case _:
                assert_never(command)

    def _install_downloaded_update(self, game_id: str) -> bool:
        """Install the downloaded newer version when no peer offers one newer still."""
        if not self.lifecycle.local_update_pending(game_id):
            return False
        summary = self.local.library.get(game_id)
        latest, _sources = self.network.sources_for(game_id)
        downloaded = self.downloads.staged_ready.get(game_id) or (
            summary.version if summary is not None else None
        )
        if version_sort_key(latest) > version_sort_key(downloaded):
            return False
        self.lifecycle.install(game_id)
        return True

    @staticmethod
    def _offers_games(network: PeerNetwork, peer_id: str) -> bool:
        """``peer_id`` reports games of its own: it serves others (or soon will)."""
        return any(view.peer_id == peer_id and view.games for view in network.peer_views())

    async def _set_upload_limits(
        self, network: PeerNetwork, upload_limit: int | None, gaming_cap: int | None
    ) -> UploadStatus:
        """Apply new upload limits at once and keep them in the settings file."""
        current_limit, current_cap = network.seeder.upload_limits
        limit = current_limit if upload_limit is None else upload_limit
        cap = current_cap if gaming_cap is None else gaming_cap
        network.seeder.set_upload_limits(upload_limit=limit, gaming_cap=cap)
        self._options = replace(self._options, upload_limit=limit, gaming_upload_cap=cap)
        store = SettingsStore(self._options.state_dir)

        def keep() -> None:
            saved = store.load_or_default()
            store.save(msgspec.structs.replace(saved, upload_limit=limit, gaming_upload_cap=cap))

        await asyncio.to_thread(keep)
        return network.seeder.upload_status()

    def _publish_download_event(self, event: Event) -> None:
        if isinstance(event, ChunkFinished):
            self._download_rates.add(event.peer_id, event.length, time.monotonic())
        self._bus.publish(event)

    def download_rates(self) -> dict[str, float]:
        """Verified bytes a second received from each peer lately."""
        return self._download_rates.rates(time.monotonic())

    def uploads(self) -> UploadStatus:
        """Upload limits in force and who pulls from this peer."""
        return self._require_started()[1].seeder.upload_status()

    async def _settle_game_dir(self, game_dir: Path) -> None:
        """Settle a new game directory exactly as a start settles the first one."""
        local = self._require_started()[0]
        await asyncio.to_thread(recover_install_state, game_dir, local.catalog)
        await asyncio.to_thread(self.downloads.recover, game_dir)

    def status(self) -> StatusReply:
        local, network = self._require_started()
        snapshot = local.snapshot
        uploads = network.seeder.upload_status()
        return StatusReply(
            peer_id=network.peer_id,
            name=self._options.name,
            listen_addr=network.listen_addr,
            game_dir=str(local.game_dir),
            library_revision=snapshot.revision,
            games=len(snapshot.games),
            peers=network.peer_count,
            operations={gid: kind.value for gid, kind in local.operations.snapshot().items()},
            bytes_served=data.bytes_sent if (data := network.seeder.data_server) is not None else 0,
            upload_limit=uploads.effective_limit,
            gaming=uploads.gaming,
            upload_rate=sum(uploads.rates.values()),
            download_rate=sum(self.download_rates().values()),
        )

    def games(self) -> tuple[GameView, ...]:
        """Every catalog game with its state and the commands it allows now."""
        if self._states is None:
            raise ConfigError("runtime not started")
        return self._states.views()


class GameList(msgspec.Struct, frozen=True):
    games: tuple[GameView, ...]


class PeerList(msgspec.Struct, frozen=True):
    peers: tuple[PeerView, ...]


class GameDirReply(msgspec.Struct, frozen=True):
    game_dir: str
