"""The download engine: one download's decisions, from the source check to version.ini.

See the package docstring (phases, rules), :mod:`.messages` and :mod:`.swarm` (choices).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

from lanspread.core.agreement import Agreement
from lanspread.core.engine import messages
from lanspread.core.engine.cadence import COMMIT_INTERVAL_SECONDS, should_commit
from lanspread.core.engine.messages import Action, End, Ending, Event
from lanspread.core.engine.source_check import settle_manifests
from lanspread.core.engine.swarm import (
    MAX_CHUNK_ATTEMPTS,
    MAX_SOURCE_STRIKES,
    Link,
    Source,
    Standing,
    Swarm,
)
from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.liars import all_liars_message
from lanspread.core.manifest import GameManifest
from lanspread.core.planning import ChunkKey, ChunkTask, manifest_tasks
from lanspread.core.progress import ProgressSampler, ProgressTracker

# Why a download is paused (End.reason of a PAUSED ending). A source that leaves with
# a goodbye often refuses its connections before the goodbye arrives, so "left" and
# "stopped answering" are one reason, not a race.
ALL_PEERS_GONE = "all-peers-gone"


class Phase(enum.Enum):
    IDLE = "idle"
    AGREEING = "agreeing"
    """Asked every offering source for its manifest."""
    PREPARING = "preparing"
    """The shell claims names, loads or starts the journal, sizes the files."""
    FETCHING = "fetching"
    SENTINEL = "sentinel"
    COMMITTING = "committing"
    """version.ini is being committed: a cancel can no longer undo the download."""
    ENDED = "ended"


class DownloadEngine:
    """One download as a state machine: :meth:`handle` an event at ``now``, get actions."""

    def __init__(
        self,
        game_id: str,
        *,
        excluded: Iterable[str] = (),
        depth: int,
        endgame: bool = True,
        max_attempts: int = MAX_CHUNK_ATTEMPTS,
        salt: str = "",
        slow_depth: int | None = None,
        name: str | None = None,
    ) -> None:
        """``salt`` orders equally rare chunks for this download alone (``""``: file order);
        ``slow_depth`` bounds slow sources' pipelines (:mod:`.swarm`); failures say ``name``."""
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.game_id = game_id
        self.name = name or game_id
        self.phase = Phase.IDLE
        self._excluded = frozenset(excluded)
        self._depth = depth
        self._endgame = endgame
        self._max_attempts = max_attempts
        self._salt = salt
        self._slow_depth = slow_depth
        self._latest: str | None = None
        self._asked: tuple[str, ...] = ()
        self._agreement: Agreement | None = None
        self._agreed_sources: tuple[str, ...] = ()
        self._lost: set[str] = set()
        self._cancelled = False
        self._committing = False
        self._last_commit_at = 0.0
        self._since_chunks = 0
        self._since_bytes = 0
        self._sentinel_tried: list[str] = []
        self._placing: set[ChunkKey] = set()
        self.swarm = Swarm((), depth)
        self.tracker = ProgressTracker(0)
        self._sampler = ProgressSampler(self.tracker)
        self._handlers: dict[type[Any], Callable[[Any, float], list[Action]]] = {
            messages.Start: self._on_start,
            messages.ManifestsAnswered: self._on_manifests,
            messages.Prepared: self._on_prepared,
            messages.SourceOffered: self._on_source_offered,
            messages.SourceLost: self._on_source_lost,
            messages.ConnectionOpened: self._on_opened,
            messages.ConnectFailed: self._on_connect_failed,
            messages.ConnectionClosed: self._on_closed,
            messages.ChunkVerified: self._on_verified,
            messages.ChunkFailed: self._on_chunk_failed,
            messages.CopyPlaced: self._on_copy_placed,
            messages.JournalCommitted: self._on_journal_committed,
            messages.DiskFailed: self._on_disk_failed,
            messages.SentinelFetched: self._on_sentinel_fetched,
            messages.SentinelFailed: self._on_sentinel_failed,
            messages.SentinelCommitted: self._on_sentinel_committed,
            messages.Tick: self._on_tick,
            messages.Cancel: self._on_cancel,
        }

    # -- facts --------------------------------------------------------------------------

    @property
    def manifest(self) -> GameManifest:
        if self._agreement is None:
            raise RuntimeError("no manifest agreed yet")
        return self._agreement.manifest

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources whose manifest was accepted, sorted."""
        return self._agreed_sources

    @property
    def next_deadline(self) -> float | None:
        """When the shell should send :class:`Tick` next; ``None``: no timer needed."""
        if self.phase not in (Phase.FETCHING, Phase.SENTINEL, Phase.COMMITTING):
            return None
        due = self._sampler.next_due
        # Only fetching commits on a timer (the sentinel commit journals everything
        # itself): a commit deadline in another phase would never move, and the
        # shell's timer would fire at once, over and over.
        if self.phase is Phase.FETCHING and self._since_chunks and not self._committing:
            commit_due = self._last_commit_at + COMMIT_INTERVAL_SECONDS
            due = commit_due if due is None else min(due, commit_due)
        return due

    # -- events -------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        """Apply ``event`` (observed at ``now``) and return the actions it calls for.

        After :class:`End` every event is ignored.
        """
        if self.phase is Phase.ENDED:
            return []
        return self._handlers[type(event)](event, now)

    def _on_start(self, event: messages.Start, now: float) -> list[Action]:
        if self.phase is not Phase.IDLE:
            raise RuntimeError("a download starts once")
        self._latest = event.latest
        usable = tuple(peer for peer in event.offering if peer not in self._excluded)
        if event.offering and not usable:
            return self._end(Ending.FAILED, all_liars_message(self.name))
        if not usable:
            return self._end(Ending.PAUSED, ALL_PEERS_GONE)
        self._asked = usable
        self.phase = Phase.AGREEING
        return [messages.AskManifests(usable)]

    def _on_manifests(self, event: messages.ManifestsAnswered, now: float) -> list[Action]:
        if self.phase is not Phase.AGREEING:
            return []
        settled = settle_manifests(self.game_id, self._latest, self._asked, event, self.name)
        if settled.agreement is None:
            self.phase = Phase.ENDED
            end = End(Ending.FAILED, settled.failure, conflict=settled.conflict)
            return [*settled.rejections, end]
        self._agreement = settled.agreement
        self._agreed_sources = settled.sources
        self.phase = Phase.PREPARING
        return [*settled.rejections, messages.Prepare(settled.agreement.manifest)]

    def _on_prepared(self, event: messages.Prepared, now: float) -> list[Action]:
        if self.phase is not Phase.PREPARING or self._agreement is None:
            return []
        if self._cancelled:
            return self._end(Ending.CANCELLED)
        manifest = self._agreement.manifest
        tasks = manifest_tasks(manifest)
        self.swarm = Swarm(
            (task for task in tasks if not task.is_sentinel),
            self._depth,
            salt=self._salt,
            slow_depth=self._slow_depth,
        )
        self.swarm.mark_done(event.done)
        self.tracker = ProgressTracker(manifest.total_bytes)
        lengths = {task.key: task.length for task in tasks}
        self.tracker.mark_done_from_resume((k, lengths[k]) for k in event.done if k in lengths)
        self._sampler = ProgressSampler(self.tracker)
        for source in self._agreed_sources:
            paths = frozenset(
                path for path, holders in self._agreement.eligible.items() if source in holders
            )
            self.swarm.add_source(source, paths, None)
            if source not in event.live or source in self._lost:
                self.swarm.set_standing(self.swarm.sources[source], Standing.GONE)
        self.phase = Phase.FETCHING
        self._last_commit_at = now
        begin = messages.Begin(
            version=manifest.version,
            total_bytes=manifest.total_bytes,
            sources=self._agreed_sources,
            resumed_bytes=self.tracker.downloaded_bytes,
        )
        return [begin, messages.ReportProgress(self._sampler.sample(now)), *self._advance(now)]

    def _on_source_offered(self, event: messages.SourceOffered, now: float) -> list[Action]:
        if self.phase is not Phase.FETCHING or event.source in self._excluded:
            return []
        existing = self.swarm.sources.get(event.source)
        turned = self.swarm.add_source(event.source, event.paths, event.has)
        if existing is not None and existing.standing.may_return:
            existing.standing = Standing.USABLE
            existing.strikes = 0
            self.swarm.reorder()
        return (self._close(existing) if existing and turned else []) + self._advance(now)

    def _on_source_lost(self, event: messages.SourceLost, now: float) -> list[Action]:
        self._lost.add(event.source)
        source = self.swarm.sources.get(event.source)
        if source is None:
            return []
        self.swarm.set_standing(source, Standing.GONE)
        return self._close(source) + self._advance(now)

    def _on_opened(self, event: messages.ConnectionOpened, now: float) -> list[Action]:
        source = self.swarm.sources.get(event.source)
        if source is None or source.link is not Link.CONNECTING:
            return []
        source.link = Link.OPEN
        return self._advance(now)

    def _on_connect_failed(self, event: messages.ConnectFailed, now: float) -> list[Action]:
        source = self.swarm.sources.get(event.source)
        if source is None:
            return []
        source.link = Link.IDLE
        self.swarm.give_back_all(source)
        if event.unreachable:
            source.last_trouble = event.detail
            self.swarm.set_standing(source, Standing.UNREACHABLE)
        else:
            self._strike(source, event.detail)
        return self._advance(now)

    def _on_closed(self, event: messages.ConnectionClosed, now: float) -> list[Action]:
        source = self.swarm.sources.get(event.source)
        if source is None:
            return []
        source.link = Link.IDLE
        self.swarm.give_back_all(source)
        return self._place_won(now) + self._advance(now)

    def _on_verified(self, event: messages.ChunkVerified, now: float) -> list[Action]:
        source = self.swarm.sources.get(event.source)
        task = source.in_flight.get(event.key) if source is not None else None
        if source is None or task is None:
            return []
        self.tracker.record_transferred(task.length)
        source.strikes = 0
        key = event.key
        copy = source.name in self.swarm.copies.get(key, set())
        late = key in self.swarm.done or key in self.swarm.won
        if not late:
            if copy:
                self.swarm.won[key] = source.name
            else:
                self.swarm.done.add(key)
        started = source.busy_since
        self.swarm.give_back(source, key)
        source.record_completion(task.length, now, started)
        if late:
            return self._advance(now)
        if copy:
            return self._drop_losers(key) + self._place_won(now) + self._advance(now)
        return self._drop_losers(key) + self._complete(source.name, task, now)

    def _on_chunk_failed(self, event: messages.ChunkFailed, now: float) -> list[Action]:
        source = self.swarm.sources.get(event.source)
        if source is None:
            return []
        out: list[Action] = []
        task = source.in_flight.get(event.key)
        if task is not None and event.fault.bytes_arrived:
            self.tracker.record_transferred(task.length)
        if event.fault.kills_connection and source.link is Link.OPEN:
            source.link = Link.CLOSING  # the shell reports it closed after the last answer
            self._strike(source, event.detail or event.fault.value)
        if task is None:
            return self._advance(now)
        steered = (event.fault is messages.ChunkFault.STEERED) is (source.has is None)
        if steered and event.fault.elsewhere and self.swarm.withdraw(source, event.key, now):
            return self._advance(now)
        if event.fault is messages.ChunkFault.HASH_MISMATCH:
            out += self._exclude(source, f"sent corrupt bytes for {task.path}")
        why = f"{source.name} {event.fault.value}" + (f": {event.detail}" if event.detail else "")
        count = self.swarm.record_failure(source, event.key, why)
        self.swarm.give_back(source, event.key)
        if count >= self._max_attempts:
            reason = (
                f"{_describe(task)} could not be fetched: failed {count} times "
                f"(limit {self._max_attempts}); last: {why}"
            )
            return out + self._end(Ending.FAILED, reason, commit_journal=True)
        return out + self._advance(now)

    def _on_copy_placed(self, event: messages.CopyPlaced, now: float) -> list[Action]:
        if self.swarm.won.pop(event.key, None) is None:
            return []
        self._placing.discard(event.key)
        return self._complete(event.source, self.swarm.tasks[event.key], now)

    def _on_journal_committed(self, event: messages.JournalCommitted, now: float) -> list[Action]:
        self._committing = False
        return self._advance(now)

    def _on_disk_failed(self, event: messages.DiskFailed, now: float) -> list[Action]:
        if self.phase is Phase.PREPARING and self._cancelled:
            return self._end(Ending.CANCELLED)
        keep = self.phase in (Phase.FETCHING, Phase.SENTINEL, Phase.COMMITTING)
        return self._end(Ending.FAILED, event.detail, commit_journal=keep)

    def _on_sentinel_fetched(self, event: messages.SentinelFetched, now: float) -> list[Action]:
        if self.phase is not Phase.SENTINEL:
            return []
        for task in self._sentinel_tasks():
            self.tracker.record_transferred(task.length)
            self.tracker.record_chunk(task.key, task.length)
        self.phase = Phase.COMMITTING
        return [messages.CommitSentinel(event.data)]

    def _on_sentinel_failed(self, event: messages.SentinelFailed, now: float) -> list[Action]:
        if self.phase is not Phase.SENTINEL:
            return []
        out: list[Action] = []
        source = self.swarm.sources.get(event.source)
        if event.fault is messages.ChunkFault.HASH_MISMATCH and source is not None:
            out += self._exclude(source, f"sent corrupt bytes for {VERSION_FILE}")
        return out + self._next_sentinel_source()

    def _on_sentinel_committed(self, event: messages.SentinelCommitted, now: float) -> list[Action]:
        if self.phase is not Phase.COMMITTING:
            return []
        progress = messages.ReportProgress(self._sampler.sample(now))
        return [progress, *self._end(Ending.FINISHED, late_cancel=self._cancelled)]

    def _on_tick(self, event: messages.Tick, now: float) -> list[Action]:
        out: list[Action] = []
        if self._sampler.next_due is not None and self._sampler.due(now):
            out.append(messages.ReportProgress(self._sampler.sample(now)))
        if self.phase is Phase.FETCHING:
            out += self._advance(now)
        return out

    def _on_cancel(self, event: messages.Cancel, now: float) -> list[Action]:
        self._cancelled = True
        if self.phase in (Phase.PREPARING, Phase.COMMITTING):
            return []  # blocking disk work is running: its answer ends the download
        return self._end(Ending.CANCELLED)

    # -- rules --------------------------------------------------------------------------

    def _advance(self, now: float) -> list[Action]:
        """Connect, fill pipelines, close idle connections, commit, move on or stop."""
        if self.phase is not Phase.FETCHING:
            return []
        out: list[Action] = []
        for source in self.swarm.sources.values():
            if self.swarm.wants_connection(source):
                source.link = Link.CONNECTING
                source.connecting_since = now
                out.append(messages.Connect(source.name))
        endgame = self._endgame and not self.swarm.pending
        assigned = self.swarm.assign(now, endgame=endgame)
        out += _fetches(assigned)
        for source in self.swarm.sources.values():
            if self.swarm.idle_without_work(source) and not self._endgame_may_use_it():
                out += self._close(source)
        if self.swarm.complete and not self.swarm.won:
            return out + self._finish_payload()  # the sentinel commit journals it all
        out += self._maybe_commit(now)
        if not assigned and self._quiescent(now):
            return out + self._stuck()
        return out

    def _endgame_may_use_it(self) -> bool:
        """An open idle source stays open while the endgame may give it a copy."""
        return self._endgame and bool(self.swarm.holders) and not self.swarm.pending

    def _quiescent(self, now: float) -> bool:
        """Nothing in flight, connecting, closing, being placed or waiting out a steer."""
        if self.swarm.holders or self.swarm.won or self.swarm.steered_away(now):
            return False
        return all(
            s.link in (Link.IDLE, Link.OPEN) for s in self.swarm.sources.values()
        ) and not any(self.swarm.wants_connection(s) for s in self.swarm.sources.values())

    def _stuck(self) -> list[Action]:
        """Chunks wait and no source can take them: paused or failed, and why."""
        for key in sorted(self.swarm.pending):
            if self.swarm.usable_holders(key):
                continue
            holders = [s for s in self.swarm.sources.values() if s.holds(key)]
            if not holders or any(s.standing.may_return for s in holders):
                return self._end(Ending.PAUSED, ALL_PEERS_GONE, commit_journal=True)
            words = ", ".join(f"{s.name} {s.standing.value}" for s in holders)
            last = self.swarm.last_failure.get(key)
            reason = (
                f"{_describe(self.swarm.tasks[key])} could not be fetched: no source left ({words})"
            )
            if last:
                reason += f"; last: {last}"
            return self._end(Ending.FAILED, reason, commit_journal=True)
        first = _describe(self.swarm.tasks[min(self.swarm.pending)])
        return self._end(
            Ending.FAILED, f"{first} could not be fetched: no source took it", commit_journal=True
        )

    def _complete(self, source: str, task: ChunkTask, now: float) -> list[Action]:
        self.swarm.done.add(task.key)
        self.tracker.record_chunk(task.key, task.length)
        self._since_chunks += 1
        self._since_bytes += task.length
        return [messages.ChunkDone(source, task), *self._advance(now)]

    def _drop_losers(self, key: ChunkKey) -> list[Action]:
        """The other holders of a chunk that just verified: in place, they are closed
        (their bytes must not land after the winner's); scratch copies just stop counting."""
        out: list[Action] = []
        for name in sorted(self.swarm.holders.get(key, set())):
            loser = self.swarm.sources[name]
            if name in self.swarm.copies.get(key, set()):
                self.swarm.give_back(loser, key)
            else:
                out += self._close(loser)
        return out

    def _place_won(self, now: float) -> list[Action]:
        """Winning copies whose in-place holders are all closed: write them in place."""
        out: list[Action] = []
        for key, name in self.swarm.won.items():
            if key not in self.swarm.holders and key not in self._placing:
                self._placing.add(key)
                out.append(messages.PlaceCopy(name, self.swarm.tasks[key]))
        return out

    def _close(self, source: Source) -> list[Action]:
        if source.link.active:
            source.link = Link.CLOSING
            return [messages.CloseConnection(source.name)]
        return []

    def _exclude(self, source: Source, reason: str) -> list[Action]:
        if source.standing is Standing.EXCLUDED:
            return []
        self.swarm.set_standing(source, Standing.EXCLUDED)
        return [messages.ExcludeSource(source.name, reason), *self._close(source)]

    def _strike(self, source: Source, detail: str) -> None:
        source.strikes += 1
        source.last_trouble = detail
        if source.strikes >= MAX_SOURCE_STRIKES:
            self.swarm.set_standing(source, Standing.UNRELIABLE)

    def _maybe_commit(self, now: float) -> list[Action]:
        if self._committing or not should_commit(
            now=now,
            last_commit_at=self._last_commit_at,
            chunks_since=self._since_chunks,
            bytes_since=self._since_bytes,
        ):
            return []
        self._committing = True
        self._last_commit_at = now
        self._since_chunks = self._since_bytes = 0
        return [messages.CommitJournal()]

    # -- the sentinel -------------------------------------------------------------------

    def _finish_payload(self) -> list[Action]:
        """Every payload chunk is in: close what is open, then fetch version.ini once no
        journal commit runs (the sentinel commit syncs and journals everything itself)."""
        out: list[Action] = []
        for source in self.swarm.sources.values():
            out += self._close(source)
        if self._committing:
            return out
        self.phase = Phase.SENTINEL
        return out + self._next_sentinel_source()

    def _sentinel_tasks(self) -> tuple[ChunkTask, ...]:
        sentinel = self.manifest.sentinel
        if sentinel is None:
            return ()
        return tuple(
            ChunkTask(sentinel.path, chunk.offset, chunk.length, chunk.blake3)
            for chunk in sentinel.chunks
        )

    def _next_sentinel_source(self) -> list[Action]:
        tasks = self._sentinel_tasks()
        if not tasks:
            self.phase = Phase.COMMITTING
            return [messages.CommitSentinel(b"")]
        assert self._agreement is not None
        eligible = sorted(self._agreement.eligible.get(VERSION_FILE, frozenset()))
        for name in eligible:
            source = self.swarm.sources.get(name)
            if name in self._sentinel_tried or source is None or not source.usable:
                continue
            self._sentinel_tried.append(name)
            size = sum(task.length for task in tasks)
            return [messages.FetchSentinel(name, tasks, size)]
        present = [
            name
            for name in eligible
            if name in self.swarm.sources and not self.swarm.sources[name].standing.may_return
        ]
        if not present:
            return self._end(Ending.PAUSED, ALL_PEERS_GONE, commit_journal=True)
        return self._end(
            Ending.FAILED, f"no source delivered a valid {VERSION_FILE}", commit_journal=True
        )

    # -- endings ------------------------------------------------------------------------

    def _end(
        self,
        ending: Ending,
        reason: str = "",
        *,
        late_cancel: bool = False,
        commit_journal: bool = False,
    ) -> list[Action]:
        self.phase = Phase.ENDED
        keep = commit_journal and ending.keeps_progress
        return [End(ending, reason, late_cancel=late_cancel, commit_journal=keep)]


def _fetches(assigned: list[tuple[str, ChunkTask, bool]]) -> list[Action]:
    """One :class:`Fetch` per source and kind, tasks in the order they were chosen."""
    grouped: dict[tuple[str, bool], list[ChunkTask]] = {}
    for source, task, copy in assigned:
        grouped.setdefault((source, copy), []).append(task)
    return [
        messages.Fetch(source, tuple(tasks), scratch=copy)
        for (source, copy), tasks in grouped.items()
    ]


def _describe(task: ChunkTask) -> str:
    return f"{task.path} at offset {task.offset}"
