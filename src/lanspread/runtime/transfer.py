"""One download's I/O: performs what :class:`~lanspread.core.engine.DownloadEngine` asks.

Theory of operation
-------------------
:class:`DownloadRun` makes no decision. It feeds the engine what it observes
(with the loop's time as ``now``) and performs each action it gets back:

==========================  ===========================================================
action                      performed as
==========================  ===========================================================
AskManifests                GetGame over TLS to each source, within MANIFEST_TIMEOUT
Prepare                     the manager's blocking prepare step, in a thread
Connect                     a ticket over TLS (naming the manifest digest for a partial
                            source), then a plain-TCP :class:`DataConnection`, in one
                            task per source that feeds every chunk result back; a
                            partial source's CHUNK_NOT_AVAILABLE or GAME_NOT_FOUND is
                            fed as ChunkFault.NOT_AVAILABLE, a complete source's
                            ELSEWHERE as STEERED (SwarmView.fault_for)
Fetch                       the tasks join that connection's queue (its pipeline); endgame
                            copies are written into the source's scratch file
PlaceCopy                   a winning copy moved from scratch to its place, in a thread
CloseConnection             that source's task is cancelled (its socket cut, its threads
                            joined) and reports the connection closed
ChunkDone                   journal mark (memory only), ChunkFinished
CommitJournal               fsync of the written files, then the journal, in a thread;
                            the committed bitmap is then served and announced
                            (runtime.swarming)
FetchSentinel               version.ini into an anonymous temporary file, then memory
CommitSentinel              journal, then version.ini through its tmp + rename, then
                            the journal removed, in a thread
Reject/ExcludeSource        SourceRejected (an excluded one is remembered as a liar)
Begin, ReportProgress       DownloadBegin, DownloadProgress
End                         network tasks cancelled, disk steps awaited, the journal
                            committed once more if asked; :meth:`DownloadRun.run` returns it
==========================  ===========================================================

Ownership: network work runs in the run's :class:`asyncio.TaskGroup`; blocking
disk steps run in threads that cannot be interrupted, so they are never
cancelled: the run awaits every one before it commits the journal or returns,
even when it is itself cancelled. The one timer wakes the run at the engine's
``next_deadline`` to feed it a tick, re-armed after every event.

Partial seeding (``runtime.swarming``): once the journal is ready the run serves
and announces what it holds durable, after every journal commit what that commit
made durable, and from the first moment of its end nothing. Once fetching, every
change of what peers hold of the game (:meth:`DownloadRun.availability_changed`)
offers the engine the partial holders of the agreed manifest with their chunks
(``SourceOffered``), and a peer newly offering the agreed version complete joins
once its manifest is the agreed one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from lanspread.core.conflict import ContentChoices
from lanspread.core.engine import Action, DownloadEngine, End, Event, Phase, messages
from lanspread.core.liars import LiarRecord
from lanspread.core.manifest import GameManifest
from lanspread.core.planning import ChunkKey
from lanspread.download.dataclient import ChunkOutcome, ChunkResult, DataConnection
from lanspread.download.journal import DownloadJournal
from lanspread.errors import LanspreadError, PeerRefused, StorageError, TransportError
from lanspread.files.ownership import identify_sentinel, load_record_or_none
from lanspread.files.sentinel import commit_sentinel
from lanspread.net.sendfile import pwrite_all
from lanspread.net.wire import ErrorCode, Ticket
from lanspread.runtime.events import (
    ChunkFinished,
    DownloadBegin,
)
from lanspread.runtime.events import Event as RuntimeEvent
from lanspread.runtime.sinks import FileSink, RequestQueue, ScratchFile
from lanspread.runtime.swarming import PartialSharing, SwarmView, join_complete
from lanspread.runtime.wire import WireMeter

log = logging.getLogger(__name__)

# GetGame is answered from a cached manifest; a peer slower than this is skipped.
MANIFEST_TIMEOUT = 15.0

# A winning endgame copy is moved into place this much at a time: memory stays at one
# piece whatever the chunk size (a chunk may be up to 128 MiB).
PLACE_PIECE = 1024 * 1024

_T = TypeVar("_T")

_FAULTS = {
    ChunkOutcome.HASH_MISMATCH: messages.ChunkFault.HASH_MISMATCH,
    ChunkOutcome.REFUSED: messages.ChunkFault.REFUSED,
    ChunkOutcome.SHORT_READ: messages.ChunkFault.SHORT_READ,
    ChunkOutcome.CONNECTION_LOST: messages.ChunkFault.CONNECTION_LOST,
}

Prepare_ = Callable[
    [Path, GameManifest, Callable[[], bool], bool], tuple[DownloadJournal, set[ChunkKey]]
]
"""The manager's blocking prepare step: (root, manifest, stopped, adopt) -> journal, done."""


class Network(Protocol):
    """What a download asks of the peer network."""

    def sources_for(self, game_id: str) -> tuple[str | None, tuple[str, ...]]: ...
    def known_peers(self) -> frozenset[str]: ...
    def pinned_digest(self, game_id: str, version: str | None) -> str | None: ...
    def unpinned_offers(self, game_id: str) -> tuple[tuple[str, str], ...]: ...
    async def fetch_manifest(self, peer_id: str, game_id: str) -> GameManifest: ...
    async def request_ticket(
        self, peer_id: str, game_id: str, digest: str | None = None
    ) -> tuple[str, Ticket]: ...


@dataclass(frozen=True, slots=True)
class RunShared:
    """What every download run of one manager shares, for the manager's lifetime."""

    network: Network
    publish: Callable[[RuntimeEvent], None]
    reject: Callable[[str, str, str], None]
    """(game id, peer id, reason): a source is not used; the manager logs and reports it."""
    liars: LiarRecord
    choices: ContentChoices


class DownloadRun:
    """Performs one download's engine actions until its :class:`End`; see the module doc."""

    def __init__(
        self,
        engine: DownloadEngine,
        shared: RunShared,
        *,
        root: Path,
        prepare: Prepare_,
        adopt: bool,
        cancel: asyncio.Event,
        depth: int,
        sharing: PartialSharing | None = None,
        serve_partial: bool = True,
    ) -> None:
        self._engine = engine
        self._game_id = engine.game_id
        self._root = root
        self._network = shared.network
        self._publish = shared.publish
        self._reject = shared.reject
        self._liars = shared.liars
        self._choices = shared.choices
        self._prepare = prepare
        self._adopt = adopt
        self._cancel = cancel
        self._depth = depth
        self._loop = asyncio.get_running_loop()
        self._group: asyncio.TaskGroup | None = None
        self._latest: str | None = None
        self._journal: DownloadJournal | None = None
        self._sink = FileSink(root)
        self._queues: dict[str, RequestQueue] = {}
        self._scratch: dict[str, ScratchFile] = {}
        self._links: dict[str, asyncio.Task[None]] = {}
        self._network_tasks: set[asyncio.Task[Any]] = set()
        self._disk: set[asyncio.Future[Any]] = set()
        self._end: End | None = None
        self._failure: BaseException | None = None
        self._wake = asyncio.Event()
        self._armed: float | None = None  # the deadline the waiting loop's timer is set for
        self._feeding = False
        self._closed = False
        self._backlog: collections.deque[Event] = collections.deque()
        self._sharing = sharing
        self._serving = serve_partial  # False: an update beside the old version, served instead
        self._swarm = SwarmView()
        self._wire = WireMeter()

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> End:
        """Run the download to its end; a bug in it is raised as itself."""
        try:
            end = await self._until_end()
            await self._settle_disk()
            if end.commit_journal:
                await self._commit_quietly()
        except BaseException:
            await asyncio.shield(self._settle_disk())
            await asyncio.shield(self._commit_quietly())
            raise
        finally:
            self._stop_sharing()
            self._sink.close()
            for scratch in self._scratch.values():
                scratch.close()
        return end

    async def _until_end(self) -> End:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    self._spawn(self._watch_cancel())
                    self._latest, offering = self._network.sources_for(self._game_id)
                    self._feed(messages.Start(self._latest, offering))
                    end = await self._wait_for_end()
                finally:  # however it ends, nothing more is fed or started
                    self._closed = True
                    self._stop_network()
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return end

    async def _wait_for_end(self) -> End:
        while True:
            if self._failure is not None:
                raise self._failure
            if self._end is not None:
                return self._end
            deadline = self._armed = self._engine.next_deadline
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()
            if deadline is not None and self._loop.time() >= deadline:
                self._feed(messages.Tick())

    async def _watch_cancel(self) -> None:
        await self._cancel.wait()
        self._feed(messages.Cancel())

    def source_lost(self, peer_id: str) -> None:
        """The network dropped ``peer_id`` (called by the manager's listener)."""
        self._feed(messages.SourceLost(peer_id))

    def _feed(self, event: Event) -> None:
        """Hand ``event`` to the engine and perform what it asks, one event at a time."""
        if self._closed:
            return  # the run is over: the engine ended, or a bug or a cancel stopped it
        self._backlog.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._backlog:
                for action in self._engine.handle(self._backlog.popleft(), self._loop.time()):
                    self._perform(action)
        except Exception as exc:  # a bug: the run raises it as itself
            self._failure = exc
            self._backlog.clear()
            self._wake.set()
        finally:
            self._feeding = False
        if self._engine.next_deadline != self._armed:
            self._wake.set()  # the timer is armed for another deadline: re-arm it

    def _perform(self, action: Action) -> None:
        name = self._handlers.get(type(action))
        if name is None:
            raise NotImplementedError(f"no shell for {type(action).__name__}")
        getattr(self, name)(action)

    def _spawn(self, work: Any) -> None:
        assert self._group is not None
        task = self._group.create_task(work)
        self._network_tasks.add(task)
        task.add_done_callback(self._network_tasks.discard)

    def _stop_network(self) -> None:
        for task in list(self._network_tasks):
            task.cancel()

    # -- blocking disk steps ----------------------------------------------------------------

    def _disk_step(self, work: Callable[[], _T], answer: Callable[[_T], Event]) -> None:
        """Run ``work`` in a thread, owned by the run (awaited, never cancelled), and feed
        ``answer(result)``; a refusal of the disk is fed as :class:`DiskFailed`."""
        future = asyncio.ensure_future(asyncio.to_thread(work))
        self._disk.add(future)

        def done(finished: asyncio.Future[_T]) -> None:
            self._disk.discard(finished)
            if finished.cancelled():
                return
            failure = finished.exception()
            if failure is None:
                self._feed(answer(finished.result()))
            elif isinstance(failure, StorageError | OSError):
                self._feed(messages.DiskFailed(str(failure)))
            else:
                self._failure = failure
                self._wake.set()

        future.add_done_callback(done)

    async def _settle_disk(self) -> None:
        while self._disk:
            await asyncio.gather(*self._disk, return_exceptions=True)

    async def _commit_quietly(self) -> None:
        """Record everything verified so far (the ending keeps the journal)."""
        if self._journal is None:
            return
        with contextlib.suppress(StorageError):
            await asyncio.to_thread(self._journal.commit_durable, self._sink.fds)

    # -- actions ----------------------------------------------------------------------------

    def _ask_manifests(self, action: messages.AskManifests) -> None:
        self._spawn(self._manifests(action.sources))

    async def _manifests(self, sources: tuple[str, ...]) -> None:
        answers = await asyncio.gather(*(self._manifest_of(peer) for peer in sources))
        self._feed(
            messages.ManifestsAnswered(
                dict(zip(sources, answers, strict=True)),
                pinned_digest=self._network.pinned_digest(self._game_id, self._latest),
                unpinned=self._network.unpinned_offers(self._game_id),
                chosen_digest=self._choices.chosen(self._game_id, self._latest),
            )
        )

    async def _manifest_of(self, peer_id: str) -> GameManifest | messages.ManifestUnavailable:
        try:
            async with asyncio.timeout(MANIFEST_TIMEOUT):
                return await self._network.fetch_manifest(peer_id, self._game_id)
        except TimeoutError:
            detail = f"{peer_id} did not describe {self._game_id} in {MANIFEST_TIMEOUT}s"
            not_ready = False
        except LanspreadError as exc:
            detail = str(exc)
            not_ready = isinstance(exc, PeerRefused) and exc.code == ErrorCode.NOT_READY
        log.info("no manifest of %s from %s: %s", self._game_id, peer_id, detail)
        return messages.ManifestUnavailable(detail, not_ready=not_ready)

    def _reject_source(self, action: messages.RejectSource) -> None:
        self._reject(self._game_id, action.source, action.reason)

    def _exclude_source(self, action: messages.ExcludeSource) -> None:
        self._liars.record(self._game_id, action.source)
        self._reject(self._game_id, action.source, action.reason)

    def _prepare_storage(self, action: messages.Prepare) -> None:
        def prepare() -> tuple[DownloadJournal, set[ChunkKey]]:
            return self._prepare(self._root, action.manifest, self._cancel.is_set, self._adopt)

        def prepared(result: tuple[DownloadJournal, set[ChunkKey]]) -> Event:
            self._journal, done = result
            if self._sharing is not None and self._serving:  # durable in the journal: serve it
                self._sharing.begin(action.manifest, self._journal.bitmap())
            return messages.Prepared(frozenset(done), self._network.known_peers())

        self._disk_step(prepare, prepared)

    def _begin(self, action: messages.Begin) -> None:
        self._publish(DownloadBegin.of(self._game_id, action))
        self._swarm.start(self._engine.manifest, self._engine.sources)
        self.availability_changed()

    def _connect(self, action: messages.Connect) -> None:
        queue = self._queues[action.source] = RequestQueue(
            self._sink, self._scratch_fd(action.source)
        )
        assert self._group is not None
        task = self._group.create_task(self._serve(action.source, queue))
        self._links[action.source] = task
        self._network_tasks.add(task)
        task.add_done_callback(self._network_tasks.discard)

    def _fetch(self, action: messages.Fetch) -> None:
        self._queues[action.source].add(action.tasks, scratch=action.scratch)

    def _scratch_fd(self, source: str) -> Callable[[], int]:
        """Where ``source``'s endgame copies land: an anonymous temporary file, made on
        first use, kept until the run ends (a copy may be placed after its link closed)."""

        def fd() -> int:
            scratch = self._scratch.get(source)
            if scratch is None:
                scratch = self._scratch[source] = ScratchFile()
            return scratch.fileno()

        return fd

    def _place_copy(self, action: messages.PlaceCopy) -> None:
        task, scratch = action.task, self._scratch[action.source]
        target = self._sink.fd_for(task)

        def place() -> None:
            for offset in range(task.offset, task.offset + task.length, PLACE_PIECE):
                length = min(PLACE_PIECE, task.offset + task.length - offset)
                pwrite_all(target, scratch.read_at(length, offset), offset)

        self._disk_step(place, lambda _: messages.CopyPlaced(action.source, task.key))

    def _close_connection(self, action: messages.CloseConnection) -> None:
        task = self._links.get(action.source)
        if task is not None:
            task.cancel()

    async def _serve(self, source: str, queue: RequestQueue) -> None:
        """One source's data connection: open it, fetch what its queue holds, report every
        result; reports the connection closed once no more bytes can land."""
        try:
            connection = await self._open(source)
        except LanspreadError as exc:
            log.info("cannot fetch %s from %s: %s", self._game_id, source, exc)
            unreachable = isinstance(exc, TransportError)
            self._feed(messages.ConnectFailed(source, str(exc), unreachable=unreachable))
            return
        except asyncio.CancelledError:
            self._feed(messages.ConnectionClosed(source))
            raise
        try:
            self._feed(messages.ConnectionOpened(source))
            self._wire.opened(connection)
            async with connection:
                while connection.is_usable:
                    await queue.ready.wait()
                    async with contextlib.aclosing(connection.fetch(queue, queue)) as results:
                        async for result in results:
                            self._feed(_chunk_event(source, result, self._swarm))
        except StorageError as exc:
            self._feed(messages.DiskFailed(str(exc)))
        finally:
            self._wire.closed(connection)
            self._feed(messages.ConnectionClosed(source))

    async def _open(self, source: str) -> DataConnection:
        digest = self._swarm.digest if self._swarm.is_partial(source) else None
        host, ticket = await self._network.request_ticket(source, self._game_id, digest)
        return await DataConnection.open(host, ticket.data_port, ticket.token, depth=self._depth)

    def _chunk_done(self, action: messages.ChunkDone) -> None:
        assert self._journal is not None
        self._journal.mark_done([action.task.key])
        self._publish(ChunkFinished.of(self._game_id, action))

    def _commit_journal(self, action: messages.CommitJournal) -> None:
        journal, fds = self._journal, self._sink.fds
        assert journal is not None
        self._disk_step(lambda: journal.commit_durable(fds), self._committed)

    def _committed(self, bitmap: bytes) -> Event:
        if self._sharing is not None:
            self._sharing.durable(self._game_id, bitmap)
        return messages.JournalCommitted()

    def _fetch_sentinel(self, action: messages.FetchSentinel) -> None:
        self._spawn(self._fetch_into_memory(action))

    async def _fetch_into_memory(self, action: messages.FetchSentinel) -> None:
        sink = ScratchFile()
        try:
            async with await self._open(action.source) as connection:
                async for result in connection.fetch(action.tasks, sink):
                    if not result.ok:
                        log.info("sentinel from %s failed: %s", action.source, result.detail)
                        fault = _FAULTS[result.outcome]
                        self._feed(messages.SentinelFailed(action.source, fault, result.detail))
                        return
            data = sink.read(action.size)
        except LanspreadError as exc:
            log.info("sentinel from %s failed: %s", action.source, exc)
            self._feed(messages.SentinelFailed(action.source, None, str(exc)))
            return
        finally:
            sink.close()
        self._feed(messages.SentinelFetched(action.source, data))

    def _commit_sentinel(self, action: messages.CommitSentinel) -> None:
        self._disk_step(
            lambda: self._commit_all(action.data), lambda _: messages.SentinelCommitted()
        )

    def _commit_all(self, sentinel: bytes) -> None:
        """Make every byte durable, then the sentinel; the journal goes last. Blocking."""
        assert self._journal is not None
        self._journal.commit_durable(self._sink.fds)
        record = load_record_or_none(self._root)

        def prove_ours(written: Path) -> None:
            if record is not None:  # the sentinel is ours once identified, before it exists
                identify_sentinel(self._root, record, written)

        commit_sentinel(self._root, sentinel, on_written=prove_ours)
        self._journal.remove()

    # -- partial seeding ---------------------------------------------------------------------

    def _stop_sharing(self) -> None:
        if self._sharing is not None:
            self._sharing.end(self._game_id)

    def availability_changed(self) -> None:
        """What peers hold of this game may have changed: offer the engine its sources."""
        if self._closed or self._sharing is None or self._engine.phase is not Phase.FETCHING:
            return
        for event in self._swarm.offers(self._sharing.book):
            self._feed(event)
        latest, offering = self._network.sources_for(self._game_id)
        if latest == self._engine.manifest.version:
            liars = set(self._liars.excluded(self._game_id))
            for peer in self._swarm.new_complete(p for p in offering if p not in liars):
                self._spawn(self._join_complete(peer))

    async def _join_complete(self, peer: str) -> None:
        """A peer offering the agreed version joined: a source once its manifest matches."""
        offer = await join_complete(self._swarm, peer, self._manifest_of)
        if offer is not None:
            self._feed(offer)

    def _report_progress(self, action: messages.ReportProgress) -> None:
        verified = self._engine.tracker.transferred_bytes
        now = self._loop.time()
        self._publish(self._wire.progress(self._game_id, action.snapshot, verified, now))

    def _ended(self, action: End) -> None:
        self._stop_sharing()  # from the first moment of any ending, serve none of it
        self._end = action
        self._wake.set()

    _handlers: dict[type[Any], str] = {
        messages.AskManifests: "_ask_manifests",
        messages.RejectSource: "_reject_source",
        messages.ExcludeSource: "_exclude_source",
        messages.Prepare: "_prepare_storage",
        messages.Begin: "_begin",
        messages.Connect: "_connect",
        messages.Fetch: "_fetch",
        messages.CloseConnection: "_close_connection",
        messages.ChunkDone: "_chunk_done",
        messages.CommitJournal: "_commit_journal",
        messages.FetchSentinel: "_fetch_sentinel",
        messages.CommitSentinel: "_commit_sentinel",
        messages.PlaceCopy: "_place_copy",
        messages.ReportProgress: "_report_progress",
        End: "_ended",
    }


def _chunk_event(source: str, result: ChunkResult, swarm: SwarmView) -> Event:
    if result.ok:
        return messages.ChunkVerified(source, result.task.key)
    fault = swarm.fault_for(source, result.status) or _FAULTS[result.outcome]
    return messages.ChunkFailed(source, result.task.key, fault, result.detail)
