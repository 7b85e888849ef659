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
    update?      the existing version.ini is parked as .version.ini.discarded
    storage      prepare_game_storage (final sizes, stale archives it recorded
      |          removed), then the created names' identities are recorded;
      |          chunks already on disk with the right hash count as done
    rounds       plan_download -> per source: ticket over TLS, plain-TCP data
      |          connection, pipelined chunks written at their offsets and verified;
      |          failures -> replan_failures -> next round on other sources
      |          (bounded attempts); the journal is committed, after an fsync of
      |          the data, about once a second
    sentinel     version.ini fetched last into memory, verified, committed through
      |          .version.ini.tmp + rename after every payload byte is durable
    handoff      install policy auto (or an update of an installed game):
                 DOWNLOADING -> INSTALLING/UPDATING in the same operation

Endings: **finished** (sentinel committed, journal removed; a cancel that arrives
during the commit itself only stops the install hand-off); **cancelled** (stops
at once in every phase: the source check, the transfer and the sentinel fetch race
the cancel; sentinel transaction rolled back, what the ownership record proves
the download created discarded, the root removed only if the download created it
and it is empty); **paused** (every source left the
network or stopped answering: journal kept, resumable); **failed**
(a reason; journal kept, resumable). Each ending refreshes the game while its
operation is active, clears the operation, then publishes its event.

What the player sees of a download that is not running comes from
:attr:`DownloadManager.halted`, part of every game snapshot, never from events:

==============================  ==========  ===============  ===========================
how it stopped                  state       reason           until
==============================  ==========  ===============  ===========================
every source left or went mute  paused      all-peers-gone   the next download or cancel
a journal found at start        paused      restart          likewise
any failure                     failed      failed           likewise
==============================  ==========  ===============  ===========================

A paused or failed download with a journal on disk is discardable: ``cancel``
runs the same sweep as a cancelled download.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lanspread.core.engine import should_commit
from lanspread.core.gameroot import version_sort_key
from lanspread.core.liars import LiarRecord, all_liars_message
from lanspread.core.library import FoundGame
from lanspread.core.manifest import Agreement, GameManifest, agree_manifests, manifest_digest
from lanspread.core.operations import OperationKind
from lanspread.core.party import check_pin, pinned_failure
from lanspread.core.planning import (
    ChunkFailure,
    ChunkKey,
    ChunkTask,
    FailureReason,
    NoEligibleSource,
    plan_download,
    replan_failures,
)
from lanspread.core.progress import ProgressSampler, ProgressTracker
from lanspread.download.dataclient import ChunkOutcome, DataConnection
from lanspread.download.journal import DownloadJournal, JournalCorrupt
from lanspread.download.journal import load as load_journal
from lanspread.download.prepare import open_for_writing, prepare_game_storage
from lanspread.download.reuse import reusable_chunks
from lanspread.errors import (
    InvalidGameState,
    LanspreadError,
    PeerRefused,
    StorageError,
    TransportError,
)
from lanspread.files.ownership import (
    claim_download,
    identify,
    identify_sentinel,
    load_record_or_none,
)
from lanspread.files.sentinel import begin_update, commit_sentinel, rollback
from lanspread.install.sweep import discard_download
from lanspread.net.wire import ErrorCode
from lanspread.platform import fileio
from lanspread.runtime.events import (
    ChunkFinished,
    DownloadAllPeersGone,
    DownloadBegin,
    DownloadCancelled,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    Event,
    SourceRejected,
)
from lanspread.runtime.jobs import JobRunner
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.replies import FAILED, PAUSED, DownloadState
from lanspread.runtime.startup import (
    PartialDownload,
    catalog_roots,
    classify_partial,
    probe_found,
    sweep_orphans,
)
from lanspread.seeding.manifests import ManifestCache

if TYPE_CHECKING:
    from lanspread.runtime.lifecycle import Lifecycle
    from lanspread.runtime.local_library import LocalLibraryService
    from lanspread.runtime.peers import PeerNetwork

log = logging.getLogger(__name__)

# Rounds of re-planning before a chunk's failure is final; each round moves the
# failed chunks to other sources, so four rounds cover three bad sources.
MAX_CHUNK_ATTEMPTS = 4
# GetGame is answered from a cached manifest; a peer slower than this is skipped.
MANIFEST_TIMEOUT = 15.0


# Why a download is paused (DownloadState.reason), with the words the player reads.
# A source that leaves with a goodbye often refuses its connections before the
# goodbye arrives, so "left" and "stopped answering" are one reason, not a race.
ALL_PEERS_GONE = "all-peers-gone"
RESTART = "restart"
PAUSE_MESSAGES: Mapping[str, str] = {
    ALL_PEERS_GONE: "every source left or stopped answering",
    RESTART: "interrupted by a restart",
}

_T = TypeVar("_T")

# Outcomes where the chunk's bytes crossed the wire (speed counts retry waste too).
_BYTES_ARRIVED = frozenset({ChunkOutcome.OK, ChunkOutcome.HASH_MISMATCH})


class DownloadFailedError(LanspreadError):
    """A download cannot complete; the message is what the player sees."""


class _Cancelled(Exception):
    """The player cancelled the download."""


class _AllPeersGone(Exception):
    """Every source of the game left the network or cannot be reached."""


@dataclass(frozen=True, slots=True)
class _Halt:
    """How a download that is not running ended: paused or failed, and why."""

    state: str
    reason: str
    message: str


@dataclass
class _Active:
    game_id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    sources: frozenset[str] = frozenset()
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class _FileSink:
    """Open, writable descriptors of a download's payload files, opened on first use."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._fds: dict[str, int] = {}

    def fd_for(self, task: ChunkTask) -> int:
        fd = self._fds.get(task.path)
        if fd is None:
            fd = open_for_writing(self._root, task.path)
            self._fds[task.path] = fd
        return fd

    @property
    def fds(self) -> list[int]:
        return list(self._fds.values())

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


class _MemorySink:
    """Receives the sentinel into an anonymous temporary file, then hands back its bytes."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()

    def fd_for(self, task: ChunkTask) -> int:
        del task
        return self._file.fileno()

    def read(self, length: int) -> bytes:
        return fileio.pread(self._file.fileno(), length, 0)

    def close(self) -> None:
        self._file.close()


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
        self._halts: dict[str, _Halt] = {}
        self._liars = LiarRecord()
        network.add_peer_lost_listener(self._on_peer_lost)

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
            halt = self._halts.get(game_id) or _paused(RESTART)
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
    def excluded(self) -> Mapping[str, tuple[str, ...]]:
        """Per game, the peers that sent corrupt bytes for it: no source of it until a
        restart (part of every game snapshot, so a front end can say why)."""
        return self._liars.by_game()

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
        for root in catalog_roots(game_dir or self._local.game_dir, self._local.catalog):
            try:
                sweep_orphans(root)
                partial = classify_partial(root)
                found = probe_found(root)
            except StorageError as exc:
                log.warning("cannot inspect the download state of %s: %s", root, exc)
                continue
            if partial is not None:
                self._partials[root.name] = partial
                self._halts[root.name] = _paused(RESTART)
            if found is not None:
                log.warning("%s: %s: %s", root, found.label, found.reason)
                self._found[root.name] = found

    # -- commands ------------------------------------------------------------

    def download(self, game_id: str, *, update: bool = False) -> None:
        """Start (or resume) downloading ``game_id``; ``update`` fetches the newest version."""
        self._local.require_catalog_game(game_id)
        summary = self._local.library.get(game_id)
        latest, offering = self._network.sources_for(game_id)
        sources = self._liars.exclude(game_id, offering)
        if summary is not None and summary.installed:
            update = True  # a download into an installed game is an update of it
        if update:
            if summary is None:
                raise InvalidGameState(f"{game_id} is not here to update: download it")
            if summary.downloaded and version_sort_key(latest) <= version_sort_key(summary.version):
                raise InvalidGameState(f"{game_id} is up to date")
            self._lifecycle.refuse_if_running(game_id, "update")
        elif summary is not None and summary.downloaded:
            raise InvalidGameState(f"{game_id} is already downloaded")
        if offering and not sources:
            raise InvalidGameState(all_liars_message(game_id))
        if not sources:
            raise InvalidGameState(f"no peer offers {game_id} right now")
        self._local.begin_operation(game_id, OperationKind.DOWNLOADING)
        active = _Active(game_id)
        self._active[game_id] = active
        self._halts.pop(game_id, None)
        self._jobs.spawn(lambda: self._run(active))

    def cancel(self, game_id: str) -> None:
        """Stop a running download, or discard a paused one."""
        self._local.require_catalog_game(game_id)
        active = self._active.get(game_id)
        if active is not None:
            active.cancel.set()
            return
        if game_id not in self._partials:
            raise InvalidGameState(f"{game_id} has no download to cancel")
        self._local.begin_operation(game_id, OperationKind.DOWNLOADING)
        self._jobs.spawn(lambda: self._discard_paused(game_id))

    async def _discard_paused(self, game_id: str) -> None:
        await self._settle(game_id, _discard, None)
        self._publish(DownloadCancelled(game=game_id))

    # -- the job ---------------------------------------------------------------

    async def _run(self, active: _Active) -> None:
        game_id = active.game_id
        try:
            outcome = await self._download(active)
        except _Cancelled:
            await self._settle(game_id, _discard, None)
            self._publish(DownloadCancelled(game=game_id))
            return
        except _AllPeersGone:
            await self._settle(game_id, classify_partial, _paused(ALL_PEERS_GONE))
            self._publish(DownloadAllPeersGone(game=game_id))
            return
        except Exception as exc:  # every failure, a bug included, must release the game
            if isinstance(exc, LanspreadError | OSError):
                log.warning("download of %s failed: %s", game_id, exc)
            else:
                log.exception("download of %s failed unexpectedly", game_id)
            reason = str(exc) or type(exc).__name__
            await self._settle(game_id, classify_partial, _Halt(FAILED, FAILED, reason))
            self._publish(DownloadFailed(game=game_id, reason=reason))
            return
        finally:
            self._active.pop(game_id, None)
        self._partials.pop(game_id, None)
        self._halts.pop(game_id, None)
        installed = outcome.installed_before
        # A cancel that arrived while the sentinel was being committed came too late to
        # stop the download, but it still says "do no more": the complete download stays
        # and nothing is installed on the player's behalf.
        late_cancel = active.cancel.is_set()
        if not late_cancel and (installed or self._install_policy is InstallPolicy.AUTO):
            self._local.handoff(
                game_id, OperationKind.UPDATING if installed else OperationKind.INSTALLING
            )
            self._publish(DownloadFinished(game=game_id, version=outcome.version))
            await self._lifecycle.run_install(game_id, update=installed)
            return
        await self._local.end_operation(game_id)
        self._publish(DownloadFinished(game=game_id, version=outcome.version))

    async def _settle(
        self,
        game_id: str,
        step: Callable[[Path], PartialDownload | None],
        halt: _Halt | None,
    ) -> None:
        """Run an ending's disk step on the root, record the paused download it leaves
        (if any) and how it ended (``halt``), then release the game whatever happened.

        A paused ending that left no journal has nothing to resume: it shows as
        nothing at all. A failure shows with or without files on disk.
        """
        partial = found = None
        root = self._root(game_id)
        try:
            partial = await asyncio.to_thread(step, root)
            found = await asyncio.to_thread(probe_found, root)
        except (StorageError, OSError) as exc:
            log.warning("cleaning up after the download of %s failed: %s", game_id, exc)
            # Whatever the step left is still the truth to show (and to discard again).
            partial = await asyncio.to_thread(_classify_or_none, root)
            if partial is not None and halt is None:
                halt = _Halt(FAILED, FAILED, f"discarding the download failed: {exc}")
        finally:
            if partial is None:
                self._partials.pop(game_id, None)
            else:
                self._partials[game_id] = partial
            if found is None:
                self._found.pop(game_id, None)
            else:
                self._found[game_id] = found
            if halt is None or (partial is None and halt.state == PAUSED):
                self._halts.pop(game_id, None)
            else:
                self._halts[game_id] = halt
            await self._local.end_operation(game_id)

    async def _download(self, active: _Active) -> _Outcome:
        game_id = active.game_id
        root = self._root(game_id)
        agreement = await self._agree(active)
        manifest = agreement.manifest
        summary = self._local.library.get(game_id)
        installed_before = summary is not None and summary.installed
        adopt = summary is not None and summary.downloaded
        journal, done = await asyncio.to_thread(
            self._prepare, root, manifest, active.cancel.is_set, adopt
        )
        if active.cancel.is_set():
            raise _Cancelled
        transfer = _Transfer(self, active, agreement, journal, done)
        self._publish(
            DownloadBegin(
                game=game_id,
                version=manifest.version,
                total_bytes=manifest.total_bytes,
                sources=tuple(sorted(active.sources)),
                resumed_bytes=transfer.tracker.downloaded_bytes,
            )
        )
        await transfer.run()
        await self._remember(manifest)
        return _Outcome(version=manifest.version, installed_before=installed_before)

    async def _remember(self, manifest: GameManifest) -> None:
        """Cache the manifest we just verified, so serving this game costs no hashing."""
        try:
            await asyncio.to_thread(self._manifests.store, self._local.game_dir, manifest)
        except StorageError as exc:
            log.warning("cannot cache the manifest of %s: %s", manifest.game_id, exc)

    async def _agree(self, active: _Active) -> Agreement:
        """Manifests from every source at the newest version, and their majority."""
        game_id = active.game_id
        latest, offering = self._network.sources_for(game_id)
        sources = self._liars.exclude(game_id, offering)
        if offering and not sources:
            raise DownloadFailedError(all_liars_message(game_id))
        if not sources:
            raise _AllPeersGone
        manifests: dict[str, GameManifest] = {}
        results = await _unless_cancelled(
            asyncio.gather(*(self._manifest_of(peer, game_id) for peer in sources)), active
        )
        for peer, result in zip(sources, results, strict=True):
            if isinstance(result, LanspreadError):
                log.info("no manifest of %s from %s: %s", game_id, peer, result)
            elif result.version != latest:
                self._reject(game_id, peer, f"offered version {result.version}, not {latest}")
            else:
                manifests[peer] = result
        if not manifests:
            if results and all(_not_ready(result) for result in results):
                raise DownloadFailedError(
                    f"the peers are still preparing {game_id} for sharing; try again shortly"
                )
            raise DownloadFailedError(f"no peer could describe {game_id} right now")
        manifests = self._apply_pins(game_id, latest, manifests)
        agreement = agree_manifests(manifests)
        for disagreement in agreement.disagreements:
            self._reject(game_id, disagreement.source, disagreement.detail)
        active.sources = frozenset(manifests)
        return agreement

    def _apply_pins(
        self, game_id: str, version: str | None, manifests: dict[str, GameManifest]
    ) -> dict[str, GameManifest]:
        """Only the sources whose manifest is the pinned one, when the party pins it."""
        for peer, offered in self._network.unpinned_offers(game_id):
            self._reject(game_id, peer, f"offers {offered}, which the party catalog does not pin")
        pinned = self._network.pinned_digest(game_id, version)
        if pinned is None or version is None:
            return manifests
        decision = check_pin(game_id, version, pinned, manifests)
        for rejection in decision.rejected:
            self._reject(game_id, rejection.source, rejection.reason)
        if not decision.usable:
            raise DownloadFailedError(pinned_failure(game_id, version, len(manifests)))
        return dict(decision.usable)

    async def _manifest_of(self, peer_id: str, game_id: str) -> GameManifest | LanspreadError:
        try:
            async with asyncio.timeout(MANIFEST_TIMEOUT):
                return await self._network.fetch_manifest(peer_id, game_id)
        except TimeoutError:
            return TransportError(f"{peer_id} did not describe {game_id} in {MANIFEST_TIMEOUT}s")
        except LanspreadError as exc:
            return exc

    def _reject(self, game_id: str, peer_id: str, reason: str) -> None:
        log.info("source %s not used for %s: %s", peer_id, game_id, reason)
        self._publish(SourceRejected(game=game_id, peer_id=peer_id, reason=reason))

    def _prepare(
        self, root: Path, manifest: GameManifest, stopped: Callable[[], bool], adopt: bool
    ) -> tuple[DownloadJournal, set[ChunkKey]]:
        """Resume from a matching journal, or start a new one; blocking.

        Ownership first: every name the download creates is claimed durably
        before anything is created (a player's file in the way refuses the
        download), and identified once created, before the first payload byte.
        """
        record = claim_download(root, manifest, adopt=adopt)
        try:
            journal = load_journal(root)
        except JournalCorrupt as exc:
            log.warning("ignoring the download journal of %s: %s", root, exc)
            journal = None
        if journal is not None and journal.manifest_digest == manifest_digest(manifest):
            try:
                prepare_game_storage(root, manifest, owned=record)
            finally:
                identify(root, record)  # releases the claims of names never made
            return journal, set(journal.done_keys)
        # Journal first: a crash from here on leaves a paused download, not an orphan.
        begin_update(root)
        fresh = DownloadJournal.create(root, manifest)
        reused = reusable_chunks(root, manifest, stopped)
        fresh.mark_done(reused)
        fresh.commit_durable(sorted({path for path, _ in reused}))
        try:
            prepare_game_storage(root, manifest, owned=record)
        finally:
            identify(root, record)  # releases the claims of names never made
        return fresh, reused

    def _on_peer_lost(self, peer_id: str) -> None:
        live = self._network.known_peers()
        for active in self._active.values():
            if peer_id in active.sources and not active.sources & live:
                active.gone.set()


def _paused(reason: str) -> _Halt:
    return _Halt(PAUSED, reason, PAUSE_MESSAGES[reason])


async def _unless_cancelled(work: Awaitable[_T], active: _Active) -> _T:
    """``work``'s result, or :class:`_Cancelled` the moment the player cancels
    (``work`` is then cancelled and joined)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(active.cancel.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (task, stop):
            if not future.done():
                future.cancel()
        await asyncio.gather(task, stop, return_exceptions=True)
    if active.cancel.is_set():
        raise _Cancelled
    return task.result()


def _classify_or_none(root: Path) -> PartialDownload | None:
    """The paused download of ``root``, or ``None`` when the disk refuses to tell."""
    try:
        return classify_partial(root)
    except StorageError as exc:
        log.warning("cannot inspect the download state of %s: %s", root, exc)
        return None


def _discard(root: Path) -> None:
    """Roll the sentinel transaction back and remove the payload (blocking).

    Both delete only what the root's ownership record proves the download
    created; the player's files in the root survive, and so does the root.
    """
    rollback(root)
    discard_download(root)


def _not_ready(result: GameManifest | LanspreadError) -> bool:
    return isinstance(result, PeerRefused) and result.code == ErrorCode.NOT_READY


@dataclass(frozen=True, slots=True)
class _Outcome:
    version: str | None
    installed_before: bool


class _Transfer:
    """The rounds of one download: plan, fetch from every source, re-plan failures."""

    def __init__(
        self,
        manager: DownloadManager,
        active: _Active,
        agreement: Agreement,
        journal: DownloadJournal,
        done: set[ChunkKey],
    ) -> None:
        self._manager = manager
        self._network = manager._network
        self._publish = manager._publish
        self._active = active
        self._agreement = agreement
        self._manifest = agreement.manifest
        self._journal = journal
        self._done = done
        self._root = manager._root(active.game_id)
        self._sink = _FileSink(self._root)
        self.tracker = ProgressTracker(self._manifest.total_bytes)
        self.tracker.mark_done_from_resume(self._done_lengths(done))
        self._sampler = ProgressSampler(self.tracker)
        self._since_commit_chunks = 0
        self._since_commit_bytes = 0
        self._last_commit = asyncio.get_running_loop().time()
        self._committing: asyncio.Future[None] | None = None
        # Sources that could not be reached at all (refused, unreachable, silent):
        # retrying them would burn every attempt in milliseconds, so this
        # download counts them as gone, like peers the network has dropped.
        self._unreachable: set[str] = set()

    def _done_lengths(self, keys: Iterable[ChunkKey]) -> list[tuple[ChunkKey, int]]:
        lengths = {
            (file.path, chunk.offset): chunk.length
            for file in self._manifest.files
            for chunk in file.chunks
        }
        return [(key, lengths[key]) for key in keys if key in lengths]

    async def run(self) -> None:
        # The ticker is awaited here, not in a TaskGroup: a TaskGroup would wrap the
        # rounds' _Cancelled/_AllPeersGone into an ExceptionGroup.
        ticker = asyncio.ensure_future(self._report_progress())
        try:
            try:
                await self._rounds()
                await self._commit_in_flight()
                sentinel = await _unless_cancelled(self._fetch_sentinel(), self._active)
                if self._active.cancel.is_set():
                    raise _Cancelled
                await asyncio.to_thread(self._commit_all, sentinel)
            finally:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            self._publish_sample()
        except BaseException:
            with contextlib.suppress(StorageError):
                await asyncio.shield(self._final_commit())
            raise
        finally:
            self._sink.close()

    # -- rounds --------------------------------------------------------------

    async def _rounds(self) -> None:
        eligible = self._live_eligible()
        try:
            plan = plan_download(self._manifest, eligible, frozenset(self._done))
        except NoEligibleSource as exc:
            raise _AllPeersGone from exc
        assignments: Mapping[str, Sequence[ChunkTask]] = plan.assignments
        attempts: dict[ChunkKey, int] = {}
        bad: dict[ChunkKey, frozenset[str]] = {}
        while assignments:
            failures = await self._round(assignments)
            if not failures:
                return
            dead = frozenset(self._active.sources - self._network.known_peers())
            dead |= self._unreachable
            if not self._active.sources - dead:
                raise _AllPeersGone
            # A source that sent corrupt bytes gets no retried chunk of this game either.
            liars = frozenset(self._manager._liars.excluded(self._active.game_id))
            retry = replan_failures(
                failures,
                self._agreement.eligible,
                attempts,
                dead | liars,
                MAX_CHUNK_ATTEMPTS,
                bad_sources=bad,
            )
            for mismatch in retry.mismatches:
                self._manager._liars.record(self._active.game_id, mismatch.source)
                self._manager._reject(
                    self._active.game_id,
                    mismatch.source,
                    f"sent corrupt bytes for {mismatch.task.path}",
                )
            if retry.terminal:
                first = retry.terminal[0]
                raise DownloadFailedError(
                    f"{first.task.path} at {first.task.offset} could not be fetched: {first.reason}"
                )
            attempts = dict(retry.attempts)
            bad = dict(retry.bad_sources)
            assignments = retry.assignments

    def _live_eligible(self) -> dict[str, frozenset[str]]:
        live = self._network.known_peers()
        return {path: sources & live for path, sources in self._agreement.eligible.items()}

    async def _round(self, assignments: Mapping[str, Sequence[ChunkTask]]) -> list[ChunkFailure]:
        """Fetch every assignment concurrently; stop early on cancel or when all sources left."""
        failures: list[ChunkFailure] = []
        fetch = asyncio.ensure_future(
            asyncio.gather(
                *(
                    self._fetch_from(source, tasks, failures)
                    for source, tasks in assignments.items()
                    if tasks
                )
            )
        )
        stop = asyncio.ensure_future(self._stop_signal())
        racing: list[asyncio.Future[Any]] = [fetch, stop]
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (fetch, stop):
                if not task.done():
                    task.cancel()
            await asyncio.gather(fetch, stop, return_exceptions=True)
        if not stop.cancelled() and stop.exception() is None:
            raise _Cancelled if stop.result() else _AllPeersGone
        fetch.result()  # a storage failure while writing ends the download
        return failures

    async def _stop_signal(self) -> bool:
        """Wait for a reason to stop: True for a cancel, False when every source left."""
        waits = {
            asyncio.ensure_future(self._active.cancel.wait()),
            asyncio.ensure_future(self._active.gone.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return self._active.cancel.is_set()

    async def _fetch_from(
        self, source: str, tasks: Sequence[ChunkTask], failures: list[ChunkFailure]
    ) -> None:
        game_id = self._active.game_id
        try:
            host, ticket = await self._network.request_ticket(source, game_id)
            connection = await DataConnection.open(
                host, ticket.data_port, ticket.token, cancel=self._active.cancel
            )
        except LanspreadError as exc:
            log.info("cannot fetch %s from %s: %s", game_id, source, exc)
            if isinstance(exc, TransportError):
                self._unreachable.add(source)
            failures.extend(
                ChunkFailure(task, source, FailureReason.CONNECT, str(exc)) for task in tasks
            )
            return
        async with connection:
            async for result in connection.fetch(tasks, self._sink):
                if result.outcome in _BYTES_ARRIVED:
                    self.tracker.record_transferred(result.task.length)
                failure = result.failure(source)
                if failure is None:
                    self._chunk_done(result.task, source)
                else:
                    failures.append(failure)
                self._maybe_commit()

    def _chunk_done(self, task: ChunkTask, source: str) -> None:
        key = task.key
        self._done.add(key)
        self._journal.mark_done([key])
        self.tracker.record_chunk(key, task.length)
        self._since_commit_chunks += 1
        self._since_commit_bytes += task.length
        self._publish(
            ChunkFinished(
                game=self._active.game_id,
                path=task.path,
                offset=task.offset,
                length=task.length,
                peer_id=source,
            )
        )

    # -- durability ------------------------------------------------------------

    def _maybe_commit(self) -> None:
        """Start a journal commit in the background when one is due.

        The fetch loop never waits for the fsync: at most one commit runs at a time
        and the next one covers everything marked since. A failed commit (the disk
        refused) surfaces here on the next chunk and ends the download.
        """
        if self._committing is not None:
            if not self._committing.done():
                return
            committed, self._committing = self._committing, None
            committed.result()
        now = asyncio.get_running_loop().time()
        if should_commit(
            now=now,
            last_commit_at=self._last_commit,
            chunks_since=self._since_commit_chunks,
            bytes_since=self._since_commit_bytes,
        ):
            self._since_commit_chunks = self._since_commit_bytes = 0
            self._last_commit = now
            fds = self._sink.fds
            self._committing = asyncio.ensure_future(
                asyncio.to_thread(self._journal.commit_durable, fds)
            )

    async def _commit_in_flight(self) -> None:
        """Wait for the background commit, if one runs (before descriptors close)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def _final_commit(self) -> None:
        """Record everything verified so far, after any commit still running."""
        try:
            await self._commit_in_flight()
        finally:
            await asyncio.to_thread(self._journal.commit_durable, self._sink.fds)

    async def _fetch_sentinel(self) -> bytes:
        """The version.ini bytes, fetched last into memory and verified."""
        sentinel = self._manifest.sentinel
        assert sentinel is not None
        tasks = [
            ChunkTask(sentinel.path, chunk.offset, chunk.length, chunk.blake3)
            for chunk in sentinel.chunks
        ]
        sources = sorted(self._agreement.eligible.get(sentinel.path, frozenset()))
        live = self._network.known_peers()
        game_id = self._active.game_id
        trusted = [peer for peer in sources if not self._manager._liars.is_liar(game_id, peer)]
        for source in [peer for peer in trusted if peer in live]:
            data = await self._fetch_into_memory(source, tasks, sentinel.size)
            if data is not None:
                for task in tasks:
                    self.tracker.record_transferred(task.length)
                    self.tracker.record_chunk(task.key, task.length)
                return data
        if not any(peer in self._network.known_peers() for peer in sources):
            raise _AllPeersGone
        raise DownloadFailedError(f"no source delivered a valid {sentinel.path}")

    async def _fetch_into_memory(
        self, source: str, tasks: Sequence[ChunkTask], size: int
    ) -> bytes | None:
        if not tasks:
            return b""
        sink = _MemorySink()
        try:
            host, ticket = await self._network.request_ticket(source, self._active.game_id)
            async with await DataConnection.open(
                host, ticket.data_port, ticket.token, cancel=self._active.cancel
            ) as connection:
                async for result in connection.fetch(tasks, sink):
                    failure = result.failure(source)
                    if failure is not None:
                        log.info("sentinel from %s failed: %s", source, result.detail)
                        if failure.reason is FailureReason.HASH_MISMATCH:
                            self._manager._liars.record(self._active.game_id, source)
                            self._manager._reject(
                                self._active.game_id,
                                source,
                                f"sent corrupt bytes for {failure.task.path}",
                            )
                        return None
            return sink.read(size)
        except LanspreadError as exc:
            log.info("sentinel from %s failed: %s", source, exc)
            return None
        finally:
            sink.close()

    def _commit_all(self, sentinel: bytes) -> None:
        """Make every byte durable, then the sentinel; the journal goes last. Blocking."""
        self._journal.commit_durable(self._sink.fds)
        record = load_record_or_none(self._root)

        def prove_ours(written: Path) -> None:
            if record is not None:  # the sentinel is ours once identified, before it exists
                identify_sentinel(self._root, record, written)

        commit_sentinel(self._root, sentinel, on_written=prove_ours)
        self._journal.remove()

    # -- progress ----------------------------------------------------------------

    async def _report_progress(self) -> None:
        loop = asyncio.get_running_loop()
        self._publish_sample()
        while True:
            due_at = self._sampler.next_due
            await asyncio.sleep(0.0 if due_at is None else max(0.0, due_at - loop.time()))
            if self._sampler.due(loop.time()):
                self._publish_sample()

    def _publish_sample(self) -> None:
        snapshot = self._sampler.sample(asyncio.get_running_loop().time())
        self._publish(
            DownloadProgress(
                game=self._active.game_id,
                downloaded_bytes=snapshot.downloaded_bytes,
                total_bytes=snapshot.total_bytes,
                bytes_per_second=snapshot.bytes_per_second,
                eta_seconds=snapshot.eta_seconds,
            )
        )
