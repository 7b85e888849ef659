"""Downloads: from the download command to a committed version.ini sentinel.

Theory of operation
-------------------
One download is one job that owns its game root through the operation table::

    sources      ready peers advertising the newest version (aggregate view; in a
      |          party, the newest pinned version of a pinned game), less the peers
      |          that sent corrupt bytes for the game since this process started
      |          (core.liars; none left: refused, "every peer offering ... sent
      |          corrupt data earlier")
      |  GetGame over TLS to each: manifests; a pinned version keeps only the
      |  sources whose manifest digest is the pin (core.party.check_pin);
      |  agree_manifests -> agreed manifest, per-file eligible sources,
      |  disagreements and pin contradictions reported (SourceRejected)
    ownership    every name the download will create is claimed in the root's
      |          ownership record before anything is created (a player's file in
      |          the way refuses the download; files/ownership.py)
    resume?      a journal with the same manifest digest: its done chunks count;
      |          another digest: the old partial is discarded, start over cleanly
    update?      a game whose archives are here downloads beside them, into its
      |          staged root (files/staging.py): the old version stays served and
      |          playable; once verified and installed the staged files move in
    storage      prepare_game_storage (final sizes, stale archives it recorded
      |          removed), then the created names' identities are recorded;
      |          chunks already on disk with the right hash count as done
    transfer     core.engine decides, runtime.transfer performs: per source (the
      |          agreed ones, peers still downloading the same manifest, complete
      |          peers that join) a ticket over TLS and a plain-TCP data connection
      |          whose pipeline is
      |          refilled chunk by chunk (rarest first, by the source expected to
      |          finish soonest), written at their offsets and verified; a failed
      |          chunk goes to another source (bounded attempts), a liar is
      |          excluded, a leaving source gives back its in-flight chunks; the
      |          journal is committed, after an fsync of the data, about once a second;
      |          what it made durable is served to peers and announced (swarming)
    sentinel     version.ini fetched last into memory, verified, committed through
      |          .version.ini.tmp + rename after every payload byte is durable
    handoff      install policy auto (or an update of an installed game):
                 DOWNLOADING -> INSTALLING/UPDATING in the same operation

Endings: **finished** (sentinel committed, journal removed; a cancel that arrives
during the commit itself only stops the install hand-off); **cancelled** (stops
at once in every phase: the source check, the transfer and the sentinel fetch race
the cancel; sentinel transaction rolled back, what the ownership record proves
the download created discarded, the root removed only if the download created it
and it is empty); **paused** (every source of a chunk still needed left the
network or stopped answering: journal kept, resumable); **failed**
(a reason; journal kept, resumable). Each ending refreshes the game while its
operation is active, clears the operation, then publishes its event.

What the player sees of a download that is not running: :mod:`lanspread.runtime.download_halts`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lanspread.core.conflict import ChoiceRefused, ContentChoices, ContentConflict
from lanspread.core.download_queue import PLAYER, QUEUED, source_left_message, space_refusal
from lanspread.core.engine import DownloadEngine, End, Ending
from lanspread.core.liars import LiarRecord
from lanspread.core.library import FoundGame
from lanspread.core.lifecycle import Command, source_refusal
from lanspread.core.manifest import GameManifest
from lanspread.core.operations import OperationKind
from lanspread.download.dataclient import DEFAULT_PIPELINE_DEPTH
from lanspread.errors import InvalidGameState, LanspreadError, StorageError
from lanspread.files.sentinel import rollback
from lanspread.files.staging import (
    has_staging,
    move_in,
    open_staging,
    staged_version,
)
from lanspread.install.sweep import discard_download
from lanspread.platform.disk import free_bytes
from lanspread.runtime.download_disk import (
    RootState,
    prepare_download,
    recover_root,
    settle_ending,
)
from lanspread.runtime.download_halts import PAUSE_MESSAGES as PAUSE_MESSAGES
from lanspread.runtime.download_halts import RESTART, Halt, paused, put
from lanspread.runtime.events import (
    DownloadAllPeersGone,
    DownloadCancelled,
    DownloadFailed,
    DownloadFinished,
    DownloadPaused,
    Event,
    SourceRejected,
)
from lanspread.runtime.jobs import JobRunner
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.replies import FAILED, PAUSED, DownloadState, download_bytes
from lanspread.runtime.startup import (
    PartialDownload,
    catalog_roots,
    classify_partial,
)
from lanspread.runtime.transfer import DownloadRun, RunShared
from lanspread.seeding.manifests import ManifestCache

if TYPE_CHECKING:
    from lanspread.runtime.lifecycle import Lifecycle
    from lanspread.runtime.local_library import LocalLibraryService
    from lanspread.runtime.peers import PeerNetwork

log = logging.getLogger(__name__)

# In flight on a source whose chunks take long (core.engine.swarm.SLOW_CHUNK_SECONDS):
# one. A chunk that takes over half a second dwarfs the round trip a deeper pipeline
# hides, and every chunk promised to a slow (shared) seeder is one a peer that just
# verified it cannot deliver sooner: at 1 -> 4, 200 MiB, 100 Mbit/s, one measured
# 0.55 of the swarming ideal against 0.39 with two.
SLOW_PIPELINE_DEPTH = 1


@dataclass
class _Active:
    game_id: str
    staged: bool = False
    """An update downloading beside the old version (into its staged root)."""
    adopt: bool = False
    """A found folder checked to hold exactly this version: its files are adopted."""
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    run: DownloadRun | None = None
    paused: bool = False
    """The player paused it: the stop keeps the download, as a pause by the player."""
    left: str | None = None
    """The name of the last source that left while it ran."""


class DownloadManager:
    def __init__(
        self,
        *,
        local: LocalLibraryService,
        network: PeerNetwork,
        lifecycle: Lifecycle,
        jobs: JobRunner,
        publish: Callable[[Event], None],
        install_policy: InstallPolicy,
        manifests: ManifestCache,
    ) -> None:
        self._manifests = manifests
        self._local = local
        self._network = network
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._publish = publish
        self._install_policy = install_policy
        self._active: dict[str, _Active] = {}
        self._partials: dict[str, PartialDownload] = {}
        self._found: dict[str, FoundGame] = {}
        self._halts: dict[str, Halt] = {}
        self._staged: dict[str, str] = {}
        self._liars = LiarRecord()
        self._choices = ContentChoices()
        self._shared = RunShared(network, publish, self._reject, self._liars, self._choices)
        self._names: dict[str, str] = {}
        self._ended: list[Callable[[str], None]] = []
        network.add_peer_lost_listener(self._on_peer_lost)
        network.partials.add_listener(self._on_availability)

    # -- facts -------------------------------------------------------------

    @property
    def partials(self) -> Mapping[str, PartialDownload]:
        """Paused downloads (a journal in the root, no active download), by game id."""
        return dict(self._partials)

    @property
    def halted(self) -> Mapping[str, DownloadState]:
        """Paused and failed downloads that are not running, by game id, with why and how far."""
        result: dict[str, DownloadState] = {}
        for game_id in sorted(set(self._halts) | set(self._partials)):
            partial = self._partials.get(game_id)
            halt = self._halts.get(game_id) or paused(RESTART)
            result[game_id] = DownloadState(
                state=halt.state,
                reason=halt.reason,
                message=halt.message,
                done_bytes=partial.done_bytes if partial is not None else 0,
                total_bytes=partial.total_bytes if partial is not None else 0,
                discardable=partial is not None,
            )
        return result

    def _root(self, game_id: str) -> Path:
        return self._local.game_dir / game_id

    @property
    def staged_ready(self) -> Mapping[str, str]:
        """Verified updates staged beside their game and not moved in yet, by game id (an
        ``install`` or ``update`` installs one; the facts of the game say so)."""
        return dict(self._staged)

    @property
    def excluded(self) -> Mapping[str, tuple[str, ...]]:
        """Per game, the peers that sent corrupt bytes for it: no source of it until a
        restart (part of every game snapshot, so a front end can say why)."""
        return self._liars.by_game()

    def record_conflict(self, conflict: ContentConflict) -> None:
        """``conflict`` is the game's current one (what a download that stopped on it does)."""
        self._choices.record(conflict)

    @property
    def conflicts(self) -> Mapping[str, ContentConflict]:
        """Per game, the content conflict its last download stopped on, until the
        player chooses a side (part of every game snapshot)."""
        return self._choices.conflicts()

    def choose_content(self, game_id: str, digest: str) -> None:
        """Trust ``digest`` for the conflicting version of ``game_id``, then download it."""
        try:
            self._choices.choose(game_id, digest)
        except ChoiceRefused as exc:
            raise InvalidGameState(str(exc)) from exc
        self.download(game_id)

    # -- startup -------------------------------------------------------------

    @property
    def found(self) -> Mapping[str, FoundGame]:
        """Catalog-named folders lanspread did not make, by game id (never touched)."""
        return dict(self._found)

    def recover(self, game_dir: Path | None = None) -> None:
        """Settle ``game_dir`` (the current one by default) as at a start. Blocking.

        Sweeps what the ownership records prove orphaned, finds paused downloads
        and found folders. Whatever was remembered of another folder is dropped
        first: it must never act on this one. Runs at start and on a change of
        game directory, while no download is active.
        """
        if self._active:
            raise InvalidGameState("cannot settle the game directory while downloading")
        self._partials.clear()
        self._halts.clear()
        self._found.clear()
        self._staged.clear()
        for root in catalog_roots(game_dir or self._local.game_dir, self._local.catalog):
            try:
                state = recover_root(root)
            except StorageError as exc:
                log.warning("cannot inspect the download state of %s: %s", root, exc)
                continue
            if state.found is not None:
                log.warning("%s: %s: %s", root, state.found.label, state.found.reason)
            self._keep(root.name, state, paused(RESTART) if state.partial is not None else None)
            put(self._staged, root.name, state.ready)

    # -- commands ------------------------------------------------------------

    def download(
        self, game_id: str, *, update: bool = False, queue: bool = False, adopt: bool = False
    ) -> None:
        """Start (or resume) downloading ``game_id``; ``update`` fetches the newest version.

        ``queue``: every check of a start, then the download waits, paused as queued;
        ``adopt``: a found folder compared equal to it (:mod:`lanspread.runtime.adoption`)."""
        self._lifecycle.require(game_id, Command.UPDATE if update else Command.DOWNLOAD)
        summary = self._local.library.get(game_id)
        latest, offering = self._network.sources_for(game_id)
        refusal = source_refusal(
            downloaded=summary is not None and summary.downloaded,
            version=summary.version if summary is not None else None,
            latest=latest,
            offering=bool(offering),
            trusted=bool(self._liars.exclude(game_id, offering)),
        )
        if refusal is not None:
            raise refusal.error(self.game_name(game_id))
        self._check_space(game_id)
        if queue:
            self.hold(game_id, QUEUED)
            return
        self._local.begin_operation(game_id, OperationKind.DOWNLOADING)
        staged = summary is not None and summary.downloaded
        active = _Active(game_id, staged=staged, adopt=adopt and not staged)
        if active.staged:
            self._local.operations.beside(game_id)  # the old version stays served
            self._staged.pop(game_id, None)  # its staged copy is being rewritten
        self._active[game_id] = active
        self._halts.pop(game_id, None)
        self._remember_names()
        self._jobs.spawn(lambda: self._run(active))

    def require_known(self, game_id: str) -> None:
        """:class:`UnknownGame` for an id not in the catalog."""
        self._local.require_catalog_game(game_id)

    def game_name(self, game_id: str) -> str:
        """The catalog name of ``game_id`` (the id itself for a game not in it)."""
        game = self._local.catalog.get(game_id)
        return game.name if game is not None else game_id

    def _check_space(self, game_id: str) -> None:
        """Refuse a download the game folder's filesystem cannot hold (bytes still to get)."""
        offer = self._network.remote_games().get(game_id)
        partial = self._partials.get(game_id)
        needed = download_bytes(None, offer) - (partial.done_bytes if partial is not None else 0)
        try:
            free = free_bytes(self._local.game_dir)
        except OSError as exc:
            log.warning("cannot read the free space of %s: %s", self._local.game_dir, exc)
            return
        refusal = space_refusal(self.game_name(game_id), max(0, needed), free)
        if refusal is not None:
            raise StorageError(refusal)

    @property
    def active_ids(self) -> tuple[str, ...]:
        """The games downloading now, in the order they started."""
        return tuple(self._active)

    def add_ended_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(game_id)`` after every download ends, whatever the ending."""
        self._ended.append(listener)

    def pause(self, game_id: str) -> bool:
        """Stop a running download keeping what it has; False when none runs."""
        active = self._active.get(game_id)
        if active is None:
            return False
        active.paused = True
        active.cancel.set()
        return True

    def hold(self, game_id: str, reason: str) -> None:
        """Show a download that is not running as paused for ``reason`` (queued, player)."""
        self._halts[game_id] = paused(reason)
        self._publish(DownloadPaused(game=game_id, reason=reason))

    def release(self, game_id: str) -> None:
        """Forget a queued download that never started (nothing of it on disk)."""
        if game_id not in self._partials:
            self._halts.pop(game_id, None)
            self._publish(DownloadCancelled(game=game_id))

    def _remember_names(self) -> None:
        """Keep the peers' names: a source that leaves is named after it is gone."""
        self._names.update({view.peer_id: view.name for view in self._network.peer_views()})

    def cancel(self, game_id: str) -> None:
        """Stop a running download, or discard a paused one."""
        self._lifecycle.require(game_id, Command.CANCEL)
        active = self._active.get(game_id)
        if active is not None:
            active.cancel.set()
            return
        self._local.begin_operation(game_id, OperationKind.DOWNLOADING)
        self._jobs.spawn(lambda: self._discard_paused(game_id))

    async def _discard_paused(self, game_id: str) -> None:
        staged = await asyncio.to_thread(has_staging, self._root(game_id))
        await self._settle(game_id, _discard, None, staged=staged)
        self._publish(DownloadCancelled(game=game_id))

    # -- the job ---------------------------------------------------------------

    async def _run(self, active: _Active) -> None:
        game_id = active.game_id
        try:
            end, outcome = await self._download(active)
        except Exception as exc:  # every failure, a bug included, must release the game
            if isinstance(exc, LanspreadError | OSError):
                log.warning("download of %s failed: %s", game_id, exc)
            else:
                log.exception("download of %s failed unexpectedly", game_id)
            end, outcome = End(Ending.FAILED, str(exc) or type(exc).__name__), None
        finally:
            self._active.pop(game_id, None)
        try:
            if end.ending is Ending.FINISHED and outcome is not None:
                await self._finished(game_id, end, outcome)
            else:
                await self._stopped(active, end)
        finally:
            for listener in self._ended:
                listener(game_id)

    async def _stopped(self, active: _Active, end: End) -> None:
        """Settle a download that did not finish, then say how it ended."""
        game_id, staged = active.game_id, active.staged
        if end.ending is Ending.CANCELLED and active.paused:
            await self._settle(game_id, classify_partial, paused(PLAYER), staged=staged)
            self._publish(DownloadPaused(game=game_id, reason=PLAYER))
        elif end.ending is Ending.CANCELLED:
            await self._settle(game_id, _discard, None, staged=staged)
            self._publish(DownloadCancelled(game=game_id))
        elif end.ending is Ending.PAUSED:
            partial = self._partials.get(game_id)
            await self._settle(game_id, classify_partial, paused(end.reason), staged=staged)
            partial = self._partials.get(game_id, partial)
            message = source_left_message(active.left, partial.percent if partial else 0.0)
            if game_id in self._halts:
                self._halts[game_id] = Halt(PAUSED, end.reason, message)
            self._publish(DownloadAllPeersGone(game=game_id, message=message))
        else:
            log.warning("download of %s failed: %s", game_id, end.reason)
            halt = Halt(FAILED, FAILED, end.reason)
            await self._settle(game_id, classify_partial, halt, staged=staged)
            conflict = end.conflict is not None
            self._publish(DownloadFailed(game=game_id, reason=end.reason, conflict=conflict))

    async def _finished(self, game_id: str, end: End, outcome: _Outcome) -> None:
        """Hand a finished download to the installer when the policy (or an update) says so."""
        self._partials.pop(game_id, None)
        self._halts.pop(game_id, None)
        self._found.pop(game_id, None)  # the sentinel is committed: lanspread's now
        installed = outcome.installed_before
        if outcome.staged and not installed:
            await self._move_in(game_id)  # nothing installed to keep playable: swap now
        if not (outcome.staged and installed):
            await self._local.release(game_id)  # the payload is the new, verified one
        # A cancel that arrived while the sentinel was being committed came too late to
        # stop the download, but it still says "do no more": the complete download stays
        # and nothing is installed on the player's behalf.
        if not end.late_cancel and (installed or self._install_policy is InstallPolicy.AUTO):
            self._local.handoff(
                game_id, OperationKind.UPDATING if installed else OperationKind.INSTALLING
            )
            self._publish(DownloadFinished(game=game_id, version=outcome.version))
            await self._lifecycle.run_install(game_id, update=installed)
            await self.refresh_staged(game_id)
            return
        await self._local.end_operation(game_id)
        self._publish(DownloadFinished(game=game_id, version=outcome.version))

    async def refresh_staged(self, game_id: str) -> None:
        """Read again whether a verified update of ``game_id`` waits beside it."""
        try:
            ready = await asyncio.to_thread(staged_version, self._root(game_id))
        except StorageError as exc:
            log.warning("cannot read the staged update of %s: %s", game_id, exc)
            ready = None
        if ready is None:
            self._staged.pop(game_id, None)
        else:
            self._staged[game_id] = ready

    async def _move_in(self, game_id: str) -> None:
        """Move a verified staged update into the root; on failure it stays staged (logged)."""
        try:
            await asyncio.to_thread(move_in, self._root(game_id))
        except (StorageError, OSError) as exc:
            log.warning("cannot move the update of %s into place: %s", game_id, exc)

    async def _settle(
        self,
        game_id: str,
        step: Callable[[Path], PartialDownload | None],
        halt: Halt | None,
        *,
        staged: bool,
    ) -> None:
        """Run an ending's disk step on the root (or its staged root), record the paused
        download it leaves (if any) and how it ended (``halt``), then release the game
        whatever happened.

        A paused ending that left no journal has nothing to resume: it shows as
        nothing at all. A failure shows with or without files on disk.
        """
        state = RootState()
        try:
            state = await asyncio.to_thread(settle_ending, self._root(game_id), step, staged=staged)
            if state.failure is not None and state.partial is not None and halt is None:
                halt = Halt(FAILED, FAILED, f"discarding the download failed: {state.failure}")
        finally:
            if halt is not None and state.partial is None and halt.state == PAUSED:
                halt = None  # nothing to resume: shows as nothing at all
            self._keep(game_id, state, halt)
            if staged:
                self._staged.pop(game_id, None)  # dropped, or a download's partial now
            await self._local.end_operation(game_id)

    def _keep(self, game_id: str, state: RootState, halt: Halt | None) -> None:
        """Remember what the disk holds of ``game_id``'s downloads and how the last one ended."""
        put(self._partials, game_id, state.partial)
        put(self._found, game_id, state.found)
        put(self._halts, game_id, halt)

    async def _download(self, active: _Active) -> tuple[End, _Outcome | None]:
        """Run the download's engine through its shell; the outcome of a finished one."""
        game_id = active.game_id
        self._choices.forget(game_id)  # this download finds its own sources' conflict, if any
        summary = self._local.library.get(game_id)
        installed_before = summary is not None and summary.installed
        root = self._root(game_id)
        if active.staged:
            root = await asyncio.to_thread(open_staging, root)
        engine = DownloadEngine(
            game_id,
            excluded=self._liars.excluded(game_id),
            depth=DEFAULT_PIPELINE_DEPTH,
            salt=self._network.peer_id,
            slow_depth=SLOW_PIPELINE_DEPTH,
            name=self.game_name(game_id),
        )
        active.run = DownloadRun(
            engine,
            self._shared,
            root=root,
            prepare=self._prepare,
            adopt=active.adopt,  # a downloaded game's update goes beside it, into a new folder
            cancel=active.cancel,
            depth=DEFAULT_PIPELINE_DEPTH,
            sharing=self._network.partials,
            serve_partial=not active.staged,  # the old version is announced and served
        )
        end = await active.run.run()
        if end.conflict is not None:
            self.record_conflict(end.conflict)
        if end.ending is Ending.PAUSED and active.left is None and len(engine.sources) == 1:
            # Its data link closed before the control link's loss arrived: the one source.
            active.left = self._names.get(engine.sources[0])
        # The run stopped serving and announcing the partial at its end; the rescan
        # replaces the summary that still announces it (before any install starts).
        await self._local.refresh_game(game_id)
        if end.ending is not Ending.FINISHED:
            return end, None
        if not active.staged:  # a staged version is not in the root (served) until moved in
            await self._remember(engine.manifest)
        version = engine.manifest.version
        return end, _Outcome(version, installed_before=installed_before, staged=active.staged)

    async def _remember(self, manifest: GameManifest) -> None:
        """Cache the manifest we just verified, so serving this game costs no hashing."""
        try:
            await asyncio.to_thread(self._manifests.store, self._local.game_dir, manifest)
        except StorageError as exc:
            log.warning("cannot cache the manifest of %s: %s", manifest.game_id, exc)

    _prepare = staticmethod(prepare_download)  # a seam the failure tests replace

    def _reject(self, game_id: str, peer_id: str, reason: str) -> None:
        log.info("source %s not used for %s: %s", peer_id, game_id, reason)
        self._publish(SourceRejected(game=game_id, peer_id=peer_id, reason=reason))

    def _on_availability(self, game_id: str) -> None:
        self._remember_names()
        active = self._active.get(game_id)
        if active is not None and active.run is not None:
            active.run.availability_changed()

    def _on_peer_lost(self, peer_id: str) -> None:
        for active in list(self._active.values()):
            if active.run is not None:
                active.left = self._names.get(peer_id, active.left)
                active.run.source_lost(peer_id)


def _discard(root: Path) -> None:
    """Roll the sentinel transaction back and remove the payload (blocking).

    Both delete only what the root's ownership record proves the download
    created; the player's files in the root survive, and so does the root.
    """
    rollback(root)
    discard_download(root)


@dataclass(frozen=True, slots=True)
class _Outcome:
    version: str | None
    installed_before: bool
    staged: bool = False
