"""The recovery and install record tables as data: whole, without overlaps, every row used.

The rows' meaning is proven in ``tests/install/test_recovery.py`` (row by row and as
properties); these tests prove the shape of the tables themselves.
"""

from __future__ import annotations

import itertools

import pytest

from lanspread.core.recovery import (
    RECORD_ROWS,
    RECOVERY_ROWS,
    STAGE_ROWS,
    Dir,
    Intent,
    IntentLog,
    RecordedIntent,
    RecoveryOutcome,
    RecoveryRow,
    Staged,
    StageFacts,
    StageStep,
    Step,
    decide_record_steps,
    decide_recovery,
    decide_stage,
    recovery_row,
)

INTENTS: tuple[RecordedIntent, ...] = (*Intent, IntentLog.UNREADABLE)
ROOTS = tuple(itertools.product(INTENTS, (False, True), Dir, Dir))
"""Every root recovery can meet: intent, ``local/``, staging and backup."""


def test_every_root_matches_exactly_one_row() -> None:
    """The rows partition the facts: no root is unmatched, none matches two rows."""
    for root in ROOTS:
        assert sum(row.matches(*root) for row in RECOVERY_ROWS) == 1, root


def test_row_names_are_unique() -> None:
    """Each row has its own name, so a report or a test can point at it."""
    names = [row.name for row in RECOVERY_ROWS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("row", RECOVERY_ROWS, ids=lambda row: row.name)
def test_each_row_decides_every_root_it_matches(row: RecoveryRow) -> None:
    """Every row is used, and ``decide_recovery`` gives that row's action for each of its
    roots, told apart by the exists and marker flags the shell reads."""
    roots = [root for root in ROOTS if row.matches(*root)]
    assert roots
    for intent, local, staging, backup in roots:
        assert recovery_row(intent, local, staging, backup) is row
        got = decide_recovery(
            intent,
            local,
            staging is not Dir.ABSENT,
            staging is Dir.MARKED,
            backup is not Dir.ABSENT,
            backup is Dir.MARKED,
        )
        assert got == row.action


@pytest.mark.parametrize("row", RECOVERY_ROWS, ids=lambda row: row.name)
def test_no_row_touches_a_local_or_an_unreadable_log(row: RecoveryRow) -> None:
    """No row has a step for ``local/`` itself, and no row clears a log it cannot read."""
    if row.intent is IntentLog.UNREADABLE:
        assert Step.CLEAR_INTENT not in row.action.steps
    if Step.RESTORE_BACKUP in row.action.steps:
        assert row.local == {False}


def test_dir_of_reads_the_flags() -> None:
    """A missing directory is absent whatever its marker flag says."""
    assert Dir.of(exists=False, owned=True) is Dir.ABSENT
    assert Dir.of(exists=True, owned=False) is Dir.UNMARKED
    assert Dir.of(exists=True, owned=True) is Dir.MARKED


@pytest.mark.parametrize("index", range(len(RECORD_ROWS)))
def test_every_record_row_is_reached(index: int) -> None:
    """First match wins in the record table, and no row is shadowed by the ones above."""
    row = RECORD_ROWS[index]
    reached = [
        (intent, outcome)
        for intent, outcome in itertools.product(INTENTS, RecoveryOutcome)
        if intent in row.intents
        and outcome in row.outcomes
        and not any(
            intent in above.intents and outcome in above.outcomes for above in RECORD_ROWS[:index]
        )
    ]
    assert reached
    for intent, outcome in reached:
        assert decide_record_steps(intent, outcome) == row.steps


def test_the_record_table_answers_every_intent_and_outcome() -> None:
    """Every (intent, outcome) pair has a row."""
    for intent, outcome in itertools.product(INTENTS, RecoveryOutcome):
        assert any(intent in row.intents and outcome in row.outcomes for row in RECORD_ROWS)


STAGE_FACTS = tuple(
    StageFacts(staged, intent, installed, same)
    for staged, intent, installed, same in itertools.product(
        Staged, (False, True), (False, True), (False, True)
    )
)
"""Every staged-update fact combination a start can meet."""


def test_every_staged_update_matches_exactly_one_row_and_every_row_is_used() -> None:
    """The staged-update table partitions its facts: one row each, no dead row."""
    for facts in STAGE_FACTS:
        matching = [row.name for row in STAGE_ROWS if row.matches(facts)]
        assert len(matching) == 1, (facts, matching)
    used = {row.name for row in STAGE_ROWS for facts in STAGE_FACTS if row.matches(facts)}
    assert used == {row.name for row in STAGE_ROWS}


def test_the_old_payload_goes_only_once_the_update_is_verified_and_installed() -> None:
    """MOVE_IN (the only step that replaces the old payload) needs a complete staged copy,
    no install in flight, and either nothing installed or the staged version installed: a
    failed or killed update keeps the old version playable and shareable."""
    for facts in STAGE_FACTS:
        if decide_stage(facts) is StageStep.MOVE_IN:
            assert facts.staged is Staged.COMPLETE
            assert not facts.intent
            assert not facts.installed or facts.installs_staged


@pytest.mark.parametrize(
    ("facts", "step"),
    [
        (StageFacts(Staged.NONE), StageStep.NOTHING),
        (StageFacts(Staged.COMPLETE, intent=True, installed=True), StageStep.NOTHING),
        (StageFacts(Staged.EMPTY), StageStep.DISCARD),
        (StageFacts(Staged.DOWNLOADING, installed=True), StageStep.KEEP_PAUSED),
        (StageFacts(Staged.COMPLETE), StageStep.MOVE_IN),
        (StageFacts(Staged.COMPLETE, installed=True, installs_staged=True), StageStep.MOVE_IN),
        (StageFacts(Staged.COMPLETE, installed=True), StageStep.KEEP_STAGED),
        (StageFacts(Staged.ORPHAN, installed=True), StageStep.DISCARD),
    ],
)
def test_each_staged_update_row_says_what_a_start_does(facts: StageFacts, step: StageStep) -> None:
    """Row by row: a paused update resumes, a verified one waits for its install or is moved
    in once installed, an interrupted move is finished, leftovers are swept by their record."""
    assert decide_stage(facts) is step
