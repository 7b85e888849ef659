"""Chunk planning across sources, and re-planning of failed chunks.

Theory of operation
-------------------
:func:`plan_download` turns an agreed manifest, the per-file eligible sources
and the chunks already on disk into a :class:`DownloadPlan`. Every chunk still
to fetch goes to the **least-loaded eligible source by planned bytes**; the
chunks of files with the fewest eligible sources are placed first, so the
flexible chunks fill the gaps the constrained ones leave, and ties go to the
smallest source name so every run plans the same way. Two sources eligible for
the same files never end up more than one chunk apart.

The root ``version.ini`` sentinel is never in the main plan: a downloaded game
is one whose sentinel exists, so its bytes are fetched last, held in memory and
committed through ``.version.ini.tmp`` once every other chunk is on disk.
Zero-length files need no chunk but must still be created (``empty_files``).

While the download runs the shell reports failed chunks; :func:`replan_failures`
moves each to another eligible live source (least-loaded again, batched by
source), avoids the source that just failed it unless it is the only one left,
never uses a dead source or one that sent bytes not matching the manifest for
that chunk, and gives up on a chunk after ``max_attempts`` failures. A source
that cannot be reached at all is reported by the caller as one failure per
chunk it was given.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias

from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.manifest import GameManifest
from lanspread.errors import LanspreadError

ChunkKey: TypeAlias = tuple[str, int]
"""``(path, offset)``: names one chunk of a manifest."""

# A chunk that failed this often, across every source that could serve it, is not
# a passing glitch (a peer leaving, a reset connection): fail the download with
# the reasons instead of retrying forever. Enough for one retry on each of a few
# sources plus a retry on the last one standing.
DEFAULT_MAX_ATTEMPTS = 4


class NoEligibleSource(LanspreadError):
    """Some files still need bytes but no source may serve them."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = tuple(paths)
        super().__init__(f"no eligible source for: {', '.join(self.paths)}")


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """One chunk to fetch and the digest its bytes must have."""

    path: str
    offset: int
    length: int
    blake3: bytes

    @property
    def key(self) -> ChunkKey:
        return (self.path, self.offset)

    @property
    def is_sentinel(self) -> bool:
        return self.path == VERSION_FILE


@dataclass(frozen=True, slots=True)
class DownloadPlan:
    """Which source fetches which chunk; see :func:`plan_download`."""

    assignments: Mapping[str, tuple[ChunkTask, ...]]
    """Per source, its chunks in (path, offset) order; only sources with work appear."""
    planned_bytes: Mapping[str, int]
    """Per source in ``assignments``, the bytes of its chunks."""
    sentinel_chunks: tuple[ChunkTask, ...]
    """The ``version.ini`` chunks still to fetch, last, into memory (empty if the file is)."""
    sentinel_source: str | None
    """The source to fetch ``sentinel_chunks`` from; ``None`` when there are none."""
    empty_files: tuple[str, ...]
    """Zero-length payload files to create (the sentinel is never listed)."""

    @property
    def remaining_bytes(self) -> int:
        sentinel = sum(task.length for task in self.sentinel_chunks)
        return sum(self.planned_bytes.values()) + sentinel

    @property
    def tasks(self) -> tuple[ChunkTask, ...]:
        """Every task of the main plan, in (path, offset) order."""
        every = (task for tasks in self.assignments.values() for task in tasks)
        return tuple(sorted(every, key=lambda task: task.key))


def manifest_tasks(manifest: GameManifest) -> tuple[ChunkTask, ...]:
    """Every chunk of ``manifest`` as a task, in (path, offset) order."""
    return tuple(
        ChunkTask(file.path, chunk.offset, chunk.length, chunk.blake3)
        for file in manifest.files
        for chunk in file.chunks
    )


def plan_download(
    manifest: GameManifest,
    eligible: Mapping[str, Set[str]],
    done: Set[ChunkKey] = frozenset(),
) -> DownloadPlan:
    """Assign every chunk not in ``done`` to an eligible source.

    ``eligible`` maps each path to the sources that may serve it (paths it lacks
    have none). ``done`` holds keys of chunks already verified on disk; keys that
    name no chunk of ``manifest`` are ignored, so the caller must only pass keys
    recorded for this exact manifest. Raises :class:`NoEligibleSource` naming
    every file that still needs bytes but has no eligible source.
    """
    pending = [task for task in manifest_tasks(manifest) if task.key not in done]
    _require_sources({task.path for task in pending}, eligible)
    main = [task for task in pending if not task.is_sentinel]
    sentinel = tuple(task for task in pending if task.is_sentinel)
    load: dict[str, int] = {}
    assigned = _assign(main, lambda task: eligible[task.path], load)
    sentinel_source = _least_loaded(eligible[VERSION_FILE], load) if sentinel else None
    return DownloadPlan(
        assignments=_freeze(assigned),
        planned_bytes=MappingProxyType(dict(sorted(load.items()))),
        sentinel_chunks=sentinel,
        sentinel_source=sentinel_source,
        empty_files=tuple(
            file.path for file in manifest.files if file.size == 0 and not file.is_sentinel
        ),
    )


def _require_sources(paths: Iterable[str], eligible: Mapping[str, Set[str]]) -> None:
    orphans = sorted(path for path in set(paths) if not eligible.get(path))
    if orphans:
        raise NoEligibleSource(orphans)


def _assign(
    tasks: Iterable[ChunkTask],
    sources_for: Callable[[ChunkTask], Set[str]],
    load: dict[str, int],
) -> dict[str, list[ChunkTask]]:
    """Greedy least-loaded assignment, most constrained chunks first; mutates ``load``."""
    assigned: dict[str, list[ChunkTask]] = {}
    for task in sorted(tasks, key=lambda task: (len(sources_for(task)), task.key)):
        source = _least_loaded(sources_for(task), load)
        load[source] = load.get(source, 0) + task.length
        assigned.setdefault(source, []).append(task)
    return assigned


def _least_loaded(sources: Iterable[str], load: Mapping[str, int]) -> str:
    return min(sources, key=lambda source: (load.get(source, 0), source))


def _freeze(assigned: Mapping[str, list[ChunkTask]]) -> Mapping[str, tuple[ChunkTask, ...]]:
    return MappingProxyType(
        {
            source: tuple(sorted(tasks, key=lambda task: task.key))
            for source, tasks in sorted(assigned.items())
        }
    )


# --- retries ------------------------------------------------------------------------------


class FailureReason(enum.Enum):
    CONNECT = "connect"
    """The source could not be reached; reported for every chunk it was given."""
    TRANSFER = "transfer"
    """The request failed: refused, reset, timed out, or too few bytes arrived."""
    HASH_MISMATCH = "hash-mismatch"
    """The bytes arrived but do not match the manifest: the source is bad for this chunk."""


@dataclass(frozen=True, slots=True)
class ChunkFailure:
    task: ChunkTask
    source: str
    reason: FailureReason
    detail: str = ""
    """What the shell saw (the error message), carried into terminal reasons."""


@dataclass(frozen=True, slots=True)
class TerminalFailure:
    """A chunk the download cannot get: the download fails with ``reason``."""

    task: ChunkTask
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """The outcome of :func:`replan_failures`."""

    assignments: Mapping[str, tuple[ChunkTask, ...]]
    """Per source, the failed chunks it should fetch now, in (path, offset) order."""
    attempts: Mapping[ChunkKey, int]
    """The caller's ``attempts`` with this round's failures counted: pass it next time."""
    bad_sources: Mapping[ChunkKey, frozenset[str]]
    """The caller's ``bad_sources`` with this round's hash mismatches: pass it next time."""
    mismatches: tuple[ChunkFailure, ...]
    """This round's hash mismatches, for the runtime to surface."""
    terminal: tuple[TerminalFailure, ...]
    """Chunks that will not be retried, in (path, offset) order."""

    @property
    def failed(self) -> bool:
        return bool(self.terminal)


def replan_failures(
    failures: Sequence[ChunkFailure],
    eligible: Mapping[str, Set[str]],
    attempts: Mapping[ChunkKey, int],
    dead_sources: Set[str],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    *,
    bad_sources: Mapping[ChunkKey, Set[str]] = MappingProxyType({}),
    busy_bytes: Mapping[str, int] = MappingProxyType({}),
) -> RetryPlan:
    """Move failed chunks to other sources, or declare them terminal.

    For each failed chunk (several failures of one chunk count as several
    attempts): its attempt count grows; at ``max_attempts`` it is terminal. The
    candidates are the chunk's eligible sources that are not dead and did not send
    mismatching bytes for it (``bad_sources`` plus this round's mismatches); the
    sources that failed it this round are avoided while another candidate remains.
    No candidate left makes the chunk terminal. Chosen sources are the least loaded
    by ``busy_bytes`` (bytes still in flight) plus this plan's bytes.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    by_key: dict[ChunkKey, list[ChunkFailure]] = {}
    for failure in failures:
        by_key.setdefault(failure.task.key, []).append(failure)
    new_attempts = dict(attempts)
    new_bad = {key: frozenset(sources) for key, sources in bad_sources.items()}
    mismatches = tuple(f for f in failures if f.reason is FailureReason.HASH_MISMATCH)
    for failure in mismatches:
        key = failure.task.key
        new_bad[key] = new_bad.get(key, frozenset()) | {failure.source}
    retry: list[ChunkTask] = []
    candidates: dict[ChunkKey, frozenset[str]] = {}
    terminal: list[TerminalFailure] = []
    for key, chunk_failures in by_key.items():
        task = chunk_failures[0].task
        count = new_attempts.get(key, 0) + len(chunk_failures)
        new_attempts[key] = count
        if count >= max_attempts:
            terminal.append(
                TerminalFailure(
                    task,
                    f"{_describe(task)}: failed {count} times (limit {max_attempts}); "
                    f"last: {_describe_failure(chunk_failures[-1])}",
                )
            )
            continue
        usable = _usable_sources(task, eligible, dead_sources, new_bad.get(key, frozenset()))
        if not usable:
            terminal.append(
                TerminalFailure(
                    task,
                    f"{_describe(task)}: no live eligible source left "
                    f"({_why_unusable(task, eligible, dead_sources)}); "
                    f"last: {_describe_failure(chunk_failures[-1])}",
                )
            )
            continue
        failed_here = {failure.source for failure in chunk_failures}
        candidates[key] = (usable - failed_here) or usable
        retry.append(task)
    load = dict(busy_bytes)
    assigned = _assign(retry, lambda task: candidates[task.key], load)
    return RetryPlan(
        assignments=_freeze(assigned),
        attempts=MappingProxyType(new_attempts),
        bad_sources=MappingProxyType(new_bad),
        mismatches=mismatches,
        terminal=tuple(sorted(terminal, key=lambda item: item.task.key)),
    )


def _usable_sources(
    task: ChunkTask,
    eligible: Mapping[str, Set[str]],
    dead_sources: Set[str],
    bad: frozenset[str],
) -> frozenset[str]:
    return frozenset(eligible.get(task.path, frozenset())) - dead_sources - bad


def _why_unusable(task: ChunkTask, eligible: Mapping[str, Set[str]], dead_sources: Set[str]) -> str:
    sources = sorted(eligible.get(task.path, frozenset()))
    if not sources:
        return "none eligible"
    return ", ".join(
        f"{source} {'dead' if source in dead_sources else 'sent bad data'}" for source in sources
    )


def _describe(task: ChunkTask) -> str:
    return f"{task.path} at offset {task.offset}"


def _describe_failure(failure: ChunkFailure) -> str:
    detail = f": {failure.detail}" if failure.detail else ""
    return f"{failure.source} {failure.reason.value}{detail}"
