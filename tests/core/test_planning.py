"""Chunk planning across sources and re-planning of failed chunks."""

from __future__ import annotations

from collections.abc import Mapping

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.manifest import (
    MIN_CHUNK_SIZE,
    ChunkDigest,
    FileManifest,
    GameManifest,
    chunk_spans,
)
from lanspread.core.planning import (
    DEFAULT_MAX_ATTEMPTS,
    ChunkFailure,
    ChunkKey,
    ChunkTask,
    DownloadPlan,
    FailureReason,
    NoEligibleSource,
    TerminalFailure,
    manifest_tasks,
    plan_download,
    replan_failures,
)

C = MIN_CHUNK_SIZE


def entry(path: str, size: int) -> FileManifest:
    chunks = tuple(
        ChunkDigest(offset, length, blake3.blake3(f"{path}:{offset}".encode()).digest())
        for offset, length in chunk_spans(size, C)
    )
    return FileManifest(path=path, size=size, chunks=chunks)


def make_manifest(*files: FileManifest, sentinel_size: int = 12) -> GameManifest:
    listed = [*files, entry(VERSION_FILE, sentinel_size)]
    return GameManifest(
        game_id="quake3",
        version="1.0",
        chunk_size=C,
        files=tuple(sorted(listed, key=lambda file: file.path)),
    )


def task(path: str, offset: int, length: int = C) -> ChunkTask:
    return ChunkTask(path, offset, length, blake3.blake3(f"{path}:{offset}".encode()).digest())


def keys(tasks: tuple[ChunkTask, ...]) -> list[ChunkKey]:
    return [item.key for item in tasks]


def all_to(sources: set[str], manifest: GameManifest) -> dict[str, frozenset[str]]:
    return {file.path: frozenset(sources) for file in manifest.files}


# --- plan_download ------------------------------------------------------------------------


def test_single_source_gets_every_chunk_in_order() -> None:
    """One source fetches every non-sentinel chunk, in (path, offset) order."""
    manifest = make_manifest(entry("a.eti", 2 * C + 5), entry("b/c.eti", C))
    plan = plan_download(manifest, all_to({"alpha"}, manifest), frozenset())
    assert list(plan.assignments) == ["alpha"]
    assert keys(plan.assignments["alpha"]) == [
        ("a.eti", 0),
        ("a.eti", C),
        ("a.eti", 2 * C),
        ("b/c.eti", 0),
    ]
    assert dict(plan.planned_bytes) == {"alpha": 3 * C + 5}
    assert plan.sentinel_chunks == (task(VERSION_FILE, 0, 12),)
    assert plan.sentinel_source == "alpha"
    assert plan.empty_files == ()
    assert plan.remaining_bytes == 3 * C + 5 + 12


def test_tasks_carry_the_manifest_digests() -> None:
    """Each task names its chunk and the digest its bytes must have."""
    manifest = make_manifest(entry("a.eti", C + 1))
    plan = plan_download(manifest, all_to({"alpha"}, manifest))
    chunks = manifest.by_path()["a.eti"].chunks
    assert plan.assignments["alpha"] == (
        ChunkTask("a.eti", 0, C, chunks[0].blake3),
        ChunkTask("a.eti", C, 1, chunks[1].blake3),
    )
    assert plan.tasks == plan.assignments["alpha"]
    assert manifest_tasks(manifest)[:2] == plan.assignments["alpha"]


def test_equal_sources_alternate_chunk_by_chunk() -> None:
    """Two sources eligible for the same file share it chunk by chunk, name breaking ties."""
    manifest = make_manifest(entry("a.eti", 4 * C))
    plan = plan_download(manifest, all_to({"beta", "alpha"}, manifest))
    assert keys(plan.assignments["alpha"]) == [("a.eti", 0), ("a.eti", 2 * C)]
    assert keys(plan.assignments["beta"]) == [("a.eti", C), ("a.eti", 3 * C)]
    assert dict(plan.planned_bytes) == {"alpha": 2 * C, "beta": 2 * C}


def test_constrained_files_are_placed_first() -> None:
    """A file only alpha has goes to alpha first, so the shared file fills beta."""
    manifest = make_manifest(entry("a.eti", 4 * C), entry("b.eti", 4 * C))
    eligible = {
        "a.eti": frozenset({"alpha", "beta"}),
        "b.eti": frozenset({"alpha"}),
        VERSION_FILE: frozenset({"alpha", "beta"}),
    }
    plan = plan_download(manifest, eligible)
    assert keys(plan.assignments["alpha"]) == [("b.eti", offset) for offset in range(0, 4 * C, C)]
    assert keys(plan.assignments["beta"]) == [("a.eti", offset) for offset in range(0, 4 * C, C)]
    assert dict(plan.planned_bytes) == {"alpha": 4 * C, "beta": 4 * C}


def test_sentinel_goes_to_the_least_loaded_eligible_source() -> None:
    """The sentinel is planned apart, from the eligible source with the least work."""
    manifest = make_manifest(entry("a.eti", 3 * C))
    plan = plan_download(manifest, all_to({"alpha", "beta"}, manifest))
    assert dict(plan.planned_bytes) == {"alpha": 2 * C, "beta": C}
    assert plan.sentinel_source == "beta"
    assert all(not item.is_sentinel for item in plan.tasks)


def test_done_chunks_are_not_planned() -> None:
    """Chunks already on disk are skipped; unknown keys in ``done`` are ignored."""
    manifest = make_manifest(entry("a.eti", 3 * C))
    done = frozenset({("a.eti", 0), ("a.eti", 2 * C), ("gone.eti", 0), ("a.eti", 7)})
    plan = plan_download(manifest, all_to({"alpha"}, manifest), done)
    assert keys(plan.tasks) == [("a.eti", C)]
    assert plan.remaining_bytes == C + 12


def test_done_sentinel_is_not_planned() -> None:
    """A sentinel chunk already marked done is not fetched again."""
    manifest = make_manifest(entry("a.eti", C))
    plan = plan_download(manifest, all_to({"alpha"}, manifest), frozenset({(VERSION_FILE, 0)}))
    assert plan.sentinel_chunks == ()
    assert plan.sentinel_source is None


def test_empty_files_are_reported_and_need_no_source() -> None:
    """Zero-length files have no chunks but are listed for creation, without a source."""
    manifest = make_manifest(entry("a.eti", C), entry("empty.cfg", 0), entry("z/none", 0))
    eligible = {"a.eti": frozenset({"alpha"}), VERSION_FILE: frozenset({"alpha"})}
    plan = plan_download(manifest, eligible)
    assert plan.empty_files == ("empty.cfg", "z/none")
    assert keys(plan.tasks) == [("a.eti", 0)]


def test_empty_sentinel_needs_no_fetch() -> None:
    """An empty version.ini has no chunk; it is not an empty payload file either."""
    manifest = make_manifest(entry("a.eti", C), sentinel_size=0)
    plan = plan_download(manifest, all_to({"alpha"}, manifest))
    assert plan.sentinel_chunks == ()
    assert plan.sentinel_source is None
    assert plan.empty_files == ()


def test_files_without_a_source_fail_the_plan_by_name() -> None:
    """Every file that needs bytes but has no eligible source is named, sorted."""
    manifest = make_manifest(entry("a.eti", C), entry("b.eti", C), entry("c.eti", C))
    eligible = {
        "a.eti": frozenset(),
        "c.eti": frozenset({"alpha"}),
        VERSION_FILE: frozenset({"alpha"}),
    }
    with pytest.raises(NoEligibleSource) as caught:
        plan_download(manifest, eligible)
    assert str(caught.value) == "no eligible source for: a.eti, b.eti"
    assert caught.value.paths == ("a.eti", "b.eti")


def test_sentinel_without_a_source_fails_the_plan() -> None:
    """The sentinel must be fetchable too, or the download could never complete."""
    manifest = make_manifest(entry("a.eti", C))
    with pytest.raises(NoEligibleSource) as caught:
        plan_download(manifest, {"a.eti": frozenset({"alpha"})})
    assert str(caught.value) == "no eligible source for: version.ini"


def test_finished_file_needs_no_source() -> None:
    """A file whose chunks are all done plans fine even if nobody serves it any more."""
    manifest = make_manifest(entry("a.eti", C), entry("b.eti", C))
    eligible = {"b.eti": frozenset({"alpha"}), VERSION_FILE: frozenset({"alpha"})}
    plan = plan_download(manifest, eligible, frozenset({("a.eti", 0)}))
    assert keys(plan.tasks) == [("b.eti", 0)]


def test_nothing_left_makes_an_empty_plan() -> None:
    """With every chunk done the plan is empty."""
    manifest = make_manifest(entry("a.eti", C))
    done = frozenset(item.key for item in manifest_tasks(manifest))
    plan = plan_download(manifest, {}, done)
    assert plan == DownloadPlan(
        assignments={}, planned_bytes={}, sentinel_chunks=(), sentinel_source=None, empty_files=()
    )
    assert plan.remaining_bytes == 0


# --- properties of plan_download ------------------------------------------------------------

SOURCES = ("p", "q", "r", "s")


@st.composite
def planning_inputs(
    draw: st.DrawFn,
) -> tuple[GameManifest, dict[str, frozenset[str]], frozenset[ChunkKey]]:
    sizes = draw(st.lists(st.integers(0, 6 * C), min_size=1, max_size=6))
    files = [entry(f"f{index}", size) for index, size in enumerate(sizes)]
    manifest = make_manifest(*files, sentinel_size=draw(st.integers(0, 4096)))
    source_sets = st.frozensets(st.sampled_from(SOURCES), min_size=1)
    eligible = {file.path: draw(source_sets) for file in manifest.files}
    all_keys = [item.key for item in manifest_tasks(manifest)]
    done = draw(st.frozensets(st.sampled_from(all_keys))) if all_keys else frozenset()
    return manifest, eligible, done


@settings(deadline=None)
@given(planning_inputs())
def test_plan_properties(
    inputs: tuple[GameManifest, dict[str, frozenset[str]], frozenset[ChunkKey]],
) -> None:
    """Every non-done non-sentinel chunk is assigned exactly once, only to an eligible
    source; the sentinel is never in the main plan; sources with the same eligibility
    end at most one chunk apart; planned bytes add up."""
    manifest, eligible, done = inputs
    plan = plan_download(manifest, eligible, done)
    expected = {
        item.key: item
        for item in manifest_tasks(manifest)
        if item.key not in done and not item.is_sentinel
    }
    planned = [item for tasks in plan.assignments.values() for item in tasks]
    assert sorted(item.key for item in planned) == sorted(expected)
    for source, tasks in plan.assignments.items():
        assert tasks
        assert all(source in eligible[item.path] for item in tasks)
        assert plan.planned_bytes[source] == sum(item.length for item in tasks)
        assert keys(tasks) == sorted(keys(tasks))
    assert all(not item.is_sentinel for item in planned)
    sentinel_pending = [
        item for item in manifest_tasks(manifest) if item.is_sentinel and item.key not in done
    ]
    assert list(plan.sentinel_chunks) == sentinel_pending
    if sentinel_pending:
        assert plan.sentinel_source in eligible[VERSION_FILE]
    _assert_balanced(plan, eligible)


def _assert_balanced(plan: DownloadPlan, eligible: Mapping[str, frozenset[str]]) -> None:
    files_of: dict[str, frozenset[str]] = {
        source: frozenset(
            path for path, sources in eligible.items() if source in sources and path != VERSION_FILE
        )
        for source in SOURCES
    }
    for first in SOURCES:
        for second in SOURCES:
            if files_of[first] == files_of[second]:
                gap = plan.planned_bytes.get(first, 0) - plan.planned_bytes.get(second, 0)
                assert abs(gap) <= C


# --- replan_failures ------------------------------------------------------------------------

ELIGIBLE = {"a.eti": frozenset({"alpha", "beta", "gamma"}), "solo.eti": frozenset({"alpha"})}


def fail(
    item: ChunkTask, source: str, reason: FailureReason = FailureReason.TRANSFER
) -> ChunkFailure:
    return ChunkFailure(item, source, reason, "connection reset")


def test_failed_chunk_moves_to_another_source() -> None:
    """A chunk that failed at alpha is retried at the least-loaded other source."""
    retry = replan_failures([fail(task("a.eti", 0), "alpha")], ELIGIBLE, {}, frozenset())
    assert dict(retry.assignments) == {"beta": (task("a.eti", 0),)}
    assert dict(retry.attempts) == {("a.eti", 0): 1}
    assert retry.terminal == ()
    assert not retry.failed


def test_connect_failure_spreads_a_sources_chunks_over_the_others() -> None:
    """A source that could not connect hands its chunks to the others, batched by source."""
    failures = [
        fail(task("a.eti", offset), "alpha", FailureReason.CONNECT) for offset in range(0, 4 * C, C)
    ]
    retry = replan_failures(failures, ELIGIBLE, {}, frozenset({"alpha"}))
    assert {source: keys(tasks) for source, tasks in retry.assignments.items()} == {
        "beta": [("a.eti", 0), ("a.eti", 2 * C)],
        "gamma": [("a.eti", C), ("a.eti", 3 * C)],
    }


def test_busy_bytes_steer_retries_to_idle_sources() -> None:
    """Bytes still in flight count as load, so retries go to the idle source."""
    failures = [fail(task("a.eti", 0), "alpha"), fail(task("a.eti", C), "alpha")]
    retry = replan_failures(
        failures, ELIGIBLE, {}, frozenset(), busy_bytes={"beta": 10 * C, "gamma": 0}
    )
    assert list(retry.assignments) == ["gamma"]
    assert keys(retry.assignments["gamma"]) == [("a.eti", 0), ("a.eti", C)]


def test_only_source_is_retried_when_alive() -> None:
    """When the failing source is the only eligible one and not dead, it is retried."""
    retry = replan_failures([fail(task("solo.eti", 0), "alpha")], ELIGIBLE, {}, frozenset())
    assert dict(retry.assignments) == {"alpha": (task("solo.eti", 0),)}


def test_only_source_dead_is_terminal() -> None:
    """A chunk whose only eligible source is dead cannot be fetched."""
    item = task("solo.eti", 0)
    retry = replan_failures(
        [fail(item, "alpha", FailureReason.CONNECT)], ELIGIBLE, {}, frozenset({"alpha"})
    )
    assert retry.assignments == {}
    assert retry.failed
    assert retry.terminal == (
        TerminalFailure(
            item,
            "solo.eti at offset 0: no live eligible source left (alpha dead); "
            "last: alpha connect: connection reset",
        ),
    )


def test_dead_sources_are_never_used() -> None:
    """Dead sources are skipped even when they have the least load."""
    retry = replan_failures(
        [fail(task("a.eti", 0), "alpha")],
        ELIGIBLE,
        {},
        frozenset({"beta"}),
        busy_bytes={"gamma": 100 * C},
    )
    assert dict(retry.assignments) == {"gamma": (task("a.eti", 0),)}


def test_hash_mismatch_marks_the_source_bad_for_that_chunk() -> None:
    """Mismatching bytes are reported and the source is never used for that chunk again."""
    item = task("a.eti", 0)
    mismatch = fail(item, "beta", FailureReason.HASH_MISMATCH)
    retry = replan_failures([mismatch], ELIGIBLE, {}, frozenset())
    assert retry.mismatches == (mismatch,)
    assert dict(retry.bad_sources) == {("a.eti", 0): frozenset({"beta"})}
    assert dict(retry.assignments) == {"alpha": (item,)}
    # alpha then fails too; beta stays excluded although alpha is the one that just failed.
    second = replan_failures(
        [fail(item, "alpha"), fail(item, "gamma")],
        ELIGIBLE,
        retry.attempts,
        frozenset(),
        bad_sources=retry.bad_sources,
    )
    assert dict(second.assignments) == {"alpha": (item,)}
    assert dict(second.attempts) == {("a.eti", 0): 3}
    assert second.mismatches == ()
    assert dict(second.bad_sources) == {("a.eti", 0): frozenset({"beta"})}


def test_only_source_with_bad_data_is_terminal() -> None:
    """A chunk whose only source sent mismatching bytes fails with that reason."""
    item = task("solo.eti", C)
    retry = replan_failures(
        [ChunkFailure(item, "alpha", FailureReason.HASH_MISMATCH)], ELIGIBLE, {}, frozenset()
    )
    assert retry.terminal == (
        TerminalFailure(
            item,
            f"solo.eti at offset {C}: no live eligible source left (alpha sent bad data); "
            "last: alpha hash-mismatch",
        ),
    )


def test_path_without_eligible_sources_is_terminal() -> None:
    """A failure for a path nobody is eligible for is terminal, said plainly."""
    item = task("other.eti", 0)
    retry = replan_failures([fail(item, "alpha")], ELIGIBLE, {}, frozenset())
    assert retry.terminal == (
        TerminalFailure(
            item,
            "other.eti at offset 0: no live eligible source left (none eligible); "
            "last: alpha transfer: connection reset",
        ),
    )


def test_attempt_limit_makes_a_chunk_terminal() -> None:
    """A chunk reaching max_attempts is not retried, even with live sources left."""
    item = task("a.eti", 0)
    attempts = {item.key: DEFAULT_MAX_ATTEMPTS - 1, ("a.eti", C): 1}
    retry = replan_failures([fail(item, "alpha")], ELIGIBLE, attempts, frozenset())
    assert retry.assignments == {}
    assert retry.terminal == (
        TerminalFailure(
            item,
            f"a.eti at offset 0: failed {DEFAULT_MAX_ATTEMPTS} times (limit "
            f"{DEFAULT_MAX_ATTEMPTS}); last: alpha transfer: connection reset",
        ),
    )
    assert dict(retry.attempts) == {item.key: DEFAULT_MAX_ATTEMPTS, ("a.eti", C): 1}


def test_one_below_the_limit_is_retried() -> None:
    """A chunk one failure short of the limit still gets its retry."""
    item = task("a.eti", 0)
    retry = replan_failures([fail(item, "alpha")], ELIGIBLE, {}, frozenset(), max_attempts=2)
    assert dict(retry.assignments) == {"beta": (item,)}


def test_several_failures_of_one_chunk_avoid_every_failing_source() -> None:
    """Two failures of one chunk in a round count twice and avoid both sources."""
    item = task("a.eti", 0)
    retry = replan_failures([fail(item, "alpha"), fail(item, "beta")], ELIGIBLE, {}, frozenset())
    assert dict(retry.assignments) == {"gamma": (item,)}
    assert dict(retry.attempts) == {item.key: 2}


def test_terminal_failures_are_sorted_by_chunk() -> None:
    """Terminal failures come out in (path, offset) order whatever the input order."""
    failures = [fail(task("solo.eti", C), "alpha"), fail(task("solo.eti", 0), "alpha")]
    retry = replan_failures(failures, ELIGIBLE, {}, frozenset({"alpha"}))
    assert [item.task.key for item in retry.terminal] == [("solo.eti", 0), ("solo.eti", C)]


def test_attempt_limit_must_be_positive() -> None:
    """A limit below one attempt is a caller bug."""
    with pytest.raises(ValueError, match=r"^max_attempts must be at least 1, got 0$"):
        replan_failures([], ELIGIBLE, {}, frozenset(), max_attempts=0)


def test_sentinel_failures_are_replanned_like_any_chunk() -> None:
    """A failed sentinel fetch moves to another eligible source and stays recognisable."""
    item = task(VERSION_FILE, 0, 12)
    eligible = {VERSION_FILE: frozenset({"alpha", "beta"})}
    retry = replan_failures([fail(item, "alpha")], eligible, {}, frozenset())
    assert dict(retry.assignments) == {"beta": (item,)}
    assert retry.assignments["beta"][0].is_sentinel


# --- properties of replan_failures ----------------------------------------------------------

REASONS = st.sampled_from(list(FailureReason))


@st.composite
def retry_inputs(
    draw: st.DrawFn,
) -> tuple[
    list[ChunkFailure],
    dict[str, frozenset[str]],
    dict[ChunkKey, int],
    frozenset[str],
    dict[ChunkKey, frozenset[str]],
]:
    eligible = {
        f"f{index}": draw(st.frozensets(st.sampled_from(SOURCES)))
        for index in range(draw(st.integers(1, 3)))
    }
    failures: list[ChunkFailure] = []
    for _ in range(draw(st.integers(0, 12))):
        path = draw(st.sampled_from(sorted(eligible)))
        item = task(path, draw(st.integers(0, 3)) * C)
        failures.append(ChunkFailure(item, draw(st.sampled_from(SOURCES)), draw(REASONS)))
    failed_keys = sorted({failure.task.key for failure in failures})
    attempts = {key: draw(st.integers(0, DEFAULT_MAX_ATTEMPTS)) for key in failed_keys}
    bad = {key: draw(st.frozensets(st.sampled_from(SOURCES))) for key in failed_keys}
    dead = draw(st.frozensets(st.sampled_from(SOURCES)))
    return failures, eligible, attempts, dead, bad


@settings(deadline=None)
@given(retry_inputs())
def test_retry_properties(
    inputs: tuple[
        list[ChunkFailure],
        dict[str, frozenset[str]],
        dict[ChunkKey, int],
        frozenset[str],
        dict[ChunkKey, frozenset[str]],
    ],
) -> None:
    """Each failed chunk is either reassigned exactly once or terminal; never to a dead
    source, never to one that sent it bad bytes, never to a non-eligible one, and back to
    a source that just failed it only when no other source is usable."""
    failures, eligible, attempts, dead, bad = inputs
    retry = replan_failures(failures, eligible, attempts, dead, bad_sources=bad)
    failed_keys = {failure.task.key for failure in failures}
    assigned = [(source, item) for source, tasks in retry.assignments.items() for item in tasks]
    terminal_keys = [item.task.key for item in retry.terminal]
    assert sorted([item.key for _, item in assigned] + terminal_keys) == sorted(failed_keys)
    for source, item in assigned:
        assert source not in dead
        assert source not in retry.bad_sources.get(item.key, frozenset())
        assert source in eligible[item.path]
        assert retry.attempts[item.key] < DEFAULT_MAX_ATTEMPTS
        failed_here = {f.source for f in failures if f.task.key == item.key}
        if source in failed_here:
            others = eligible[item.path] - dead - retry.bad_sources.get(item.key, frozenset())
            assert others <= failed_here
    for key in failed_keys:
        count = sum(1 for failure in failures if failure.task.key == key)
        assert retry.attempts[key] == attempts.get(key, 0) + count
