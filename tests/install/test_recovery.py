"""The startup recovery decision table, row by row and as properties over every input."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.recovery import (
    Intent,
    IntentLog,
    RecordedIntent,
    RecoveryAction,
    RecoveryOutcome,
    Step,
    decide_recovery,
)

INST, UPD, UNINST, NONE, BAD = (
    Intent.INSTALLING,
    Intent.UPDATING,
    Intent.UNINSTALLING,
    Intent.NONE,
    IntentLog.UNREADABLE,
)
Out = RecoveryOutcome


@dataclass(frozen=True)
class Facts:
    intent: RecordedIntent
    local: bool = False
    staging: bool = False
    staging_owned: bool = False
    backup: bool = False
    backup_owned: bool = False

    def decide(self) -> RecoveryAction:
        return decide_recovery(
            self.intent,
            self.local,
            self.staging,
            self.staging_owned,
            self.backup,
            self.backup_owned,
        )


def facts(intent: RecordedIntent, dirs: str = "") -> Facts:
    """``"L S* B"``: local, staging (``*``: marked), backup; absent names are absent."""
    names = dirs.split()
    return Facts(
        intent,
        local="L" in names,
        staging="S" in names or "S*" in names,
        staging_owned="S*" in names,
        backup="B" in names or "B*" in names,
        backup_owned="B*" in names,
    )


_STEPS = {
    "rm-staging": Step.REMOVE_STAGING,
    "drop": Step.DROP_BACKUP,
    "restore": Step.RESTORE_BACKUP,
    "fallback": Step.RESTORE_IF_DROP_FAILS,
    "clear": Step.CLEAR_INTENT,
}


def act(outcome: RecoveryOutcome, *steps: str) -> RecoveryAction:
    return RecoveryAction(outcome, frozenset(_STEPS[step] for step in steps))


# The intent-driven rows of the module docstring. Reserved directories carry no
# marker: the recorded intent alone must prove they are lanspread's.
INTENT_ROWS = [
    ("1", facts(INST, "S"), act(Out.ROLLED_BACK, "rm-staging", "clear")),
    ("2", facts(INST), act(Out.INTENT_CLEARED, "clear")),
    ("3", facts(INST, "L"), act(Out.ROLLED_FORWARD, "clear")),
    ("4", facts(INST, "L S"), act(Out.ROLLED_BACK, "rm-staging", "clear")),
    ("5", facts(UPD, "L"), act(Out.INTENT_CLEARED, "clear")),
    ("6", facts(UPD, "L S"), act(Out.ROLLED_BACK, "rm-staging", "clear")),
    ("7", facts(UPD, "L B"), act(Out.ROLLED_FORWARD, "drop", "clear")),
    ("8", facts(UPD, "L S B"), act(Out.NEEDS_ATTENTION)),
    ("9-staging", facts(UPD, "S B"), act(Out.ROLLED_BACK, "rm-staging", "restore", "clear")),
    ("9-no-staging", facts(UPD, "B"), act(Out.ROLLED_BACK, "restore", "clear")),
    ("10", facts(UPD, "S"), act(Out.ROLLED_BACK, "rm-staging", "clear")),
    ("11", facts(UPD), act(Out.INTENT_CLEARED, "clear")),
    ("12", facts(UNINST, "L"), act(Out.ROLLED_BACK, "clear")),
    ("13", facts(UNINST, "B"), act(Out.ROLLED_FORWARD, "drop", "fallback", "clear")),
    ("14", facts(UNINST), act(Out.INTENT_CLEARED, "clear")),
    ("15", facts(UNINST, "L B"), act(Out.ROLLED_FORWARD, "drop", "clear")),
]


@pytest.mark.parametrize(
    ("facts", "expected"), [row[1:] for row in INTENT_ROWS], ids=[row[0] for row in INTENT_ROWS]
)
def test_intent_driven_rows_with_markerless_directories(
    facts: Facts, expected: RecoveryAction
) -> None:
    """Each documented intent row gives exactly its steps, with no marker needed."""
    assert facts.decide() == expected


@pytest.mark.parametrize(
    ("facts", "expected"), [row[1:] for row in INTENT_ROWS], ids=[row[0] for row in INTENT_ROWS]
)
def test_markers_do_not_change_intent_driven_rows(facts: Facts, expected: RecoveryAction) -> None:
    """Where the intent covers a directory, a marker on it changes nothing."""
    covered = replace(
        facts, staging_owned=facts.intent is not UNINST, backup_owned=facts.intent is not INST
    )
    assert covered.decide() == expected


STALE_ROWS = [
    ("nothing", facts(NONE), act(Out.CLEAN)),
    ("installed", facts(NONE, "L"), act(Out.CLEAN)),
    ("user-staging", facts(NONE, "S"), act(Out.CLEAN)),
    ("user-backup", facts(NONE, "B"), act(Out.CLEAN)),
    ("user-dirs-and-local", facts(NONE, "L S B"), act(Out.CLEAN)),
    ("marked-staging", facts(NONE, "S*"), act(Out.CLEANED_STALE, "rm-staging")),
    ("marked-backup-no-local", facts(NONE, "B*"), act(Out.CLEANED_STALE, "restore")),
    ("marked-backup-with-local", facts(NONE, "L B*"), act(Out.CLEANED_STALE, "drop")),
    ("marked-both", facts(NONE, "S* B*"), act(Out.CLEANED_STALE, "rm-staging", "restore")),
]


@pytest.mark.parametrize(
    ("facts", "expected"), [row[1:] for row in STALE_ROWS], ids=[row[0] for row in STALE_ROWS]
)
def test_none_intent_rows(facts: Facts, expected: RecoveryAction) -> None:
    """With no intent, unmarked reserved dirs are the user's; marked ones are stale leftovers."""
    assert facts.decide() == expected


UNREADABLE_ROWS = [
    ("nothing", facts(BAD), act(Out.NEEDS_ATTENTION)),
    ("user-dirs", facts(BAD, "L S B"), act(Out.NEEDS_ATTENTION)),
    ("marked-staging", facts(BAD, "S*"), act(Out.CLEANED_STALE, "rm-staging")),
    ("marked-backup-no-local", facts(BAD, "B*"), act(Out.CLEANED_STALE, "restore")),
    ("marked-backup-with-local", facts(BAD, "L B*"), act(Out.NEEDS_ATTENTION)),
    ("marked-all-with-local", facts(BAD, "L S* B*"), act(Out.NEEDS_ATTENTION, "rm-staging")),
]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [row[1:] for row in UNREADABLE_ROWS],
    ids=[row[0] for row in UNREADABLE_ROWS],
)
def test_unreadable_intent_rows(facts: Facts, expected: RecoveryAction) -> None:
    """An unreadable log proves nothing and is never cleared (it is not lanspread's):
    markers decide, and an ambiguous backup is kept."""
    assert facts.decide() == expected


def test_directories_an_intent_does_not_cover_follow_marker_rules() -> None:
    """Installing does not own a backup and Uninstalling does not own staging."""
    assert facts(INST, "B").decide() == act(Out.INTENT_CLEARED, "clear")
    assert facts(INST, "S B*").decide() == act(Out.ROLLED_BACK, "rm-staging", "restore", "clear")
    assert facts(INST, "L B*").decide() == act(Out.ROLLED_FORWARD, "drop", "clear")
    assert facts(UNINST, "L S").decide() == act(Out.ROLLED_BACK, "clear")
    assert facts(UNINST, "L S*").decide() == act(Out.ROLLED_BACK, "rm-staging", "clear")


def test_owned_flag_of_a_missing_directory_is_ignored() -> None:
    """A marker cannot exist without its directory; a stray ``owned`` flag changes nothing."""
    for intent in (NONE, BAD, UNINST):
        with_flags = Facts(intent, local=True, staging_owned=True, backup_owned=True)
        assert with_flags.decide() == Facts(intent, local=True).decide()


# --- properties over every combination of facts --------------------------------------

facts_strategy = st.builds(
    Facts,
    intent=st.sampled_from([NONE, INST, UPD, UNINST, BAD]),
    local=st.booleans(),
    staging=st.booleans(),
    staging_owned=st.booleans(),
    backup=st.booleans(),
    backup_owned=st.booleans(),
)


def _owns_staging(f: Facts) -> bool:
    return f.intent in (INST, UPD) or (f.staging and f.staging_owned)


def _owns_backup(f: Facts) -> bool:
    return f.intent in (UPD, UNINST) or (f.backup and f.backup_owned)


@dataclass(frozen=True)
class Disk:
    intent: RecordedIntent
    local: bool
    staging: bool
    staging_owned: bool
    backup: bool
    backup_owned: bool


def _apply(f: Facts, action: RecoveryAction) -> Disk:
    """What the root looks like after the shell carries ``action`` out (no step failing)."""
    local, staging, backup = f.local, f.staging, f.backup
    if Step.REMOVE_STAGING in action.steps:
        staging = False
    if Step.DROP_BACKUP in action.steps:
        backup = False
    if Step.RESTORE_BACKUP in action.steps:
        local, backup = True, False
    intent = NONE if Step.CLEAR_INTENT in action.steps else f.intent
    return Disk(intent, local, staging, staging and f.staging_owned, backup, f.backup_owned)


@given(facts_strategy)
def test_never_touches_what_it_cannot_prove_is_ours(f: Facts) -> None:
    """Staging and backup are deleted or moved only when the intent or a marker owns them."""
    action = f.decide()
    if Step.REMOVE_STAGING in action.steps:
        assert f.staging
        assert _owns_staging(f)
    if Step.DROP_BACKUP in action.steps or Step.RESTORE_BACKUP in action.steps:
        assert f.backup
        assert _owns_backup(f)


@given(facts_strategy)
def test_an_install_is_never_lost(f: Facts) -> None:
    """A backup is dropped only when an install stays in ``local/``, or when uninstall finishes."""
    action = f.decide()
    assert not {Step.DROP_BACKUP, Step.RESTORE_BACKUP} <= action.steps
    if Step.RESTORE_BACKUP in action.steps:
        assert not f.local
    if Step.DROP_BACKUP in action.steps and not f.local:
        assert f.intent is UNINST
        assert Step.RESTORE_IF_DROP_FAILS in action.steps


@given(facts_strategy)
def test_intent_is_cleared_exactly_when_a_record_exists_and_the_root_is_settled(f: Facts) -> None:
    """Every recorded intent is cleared, but an update whose ``local/`` appeared from outside
    (row 8: kept until the player moves it); an unreadable log never is (not lanspread's)."""
    action = f.decide()
    foreign_local = f.intent is UPD and f.local and f.staging and f.backup
    expected = f.intent is not NONE and f.intent is not BAD and not foreign_local
    assert (Step.CLEAR_INTENT in action.steps) == expected


@given(facts_strategy)
def test_recovery_settles_in_one_pass(f: Facts) -> None:
    """Deciding again on the recovered root changes nothing, and no owned leftover remains."""
    after = _apply(f, f.decide())
    again = decide_recovery(
        after.intent,
        after.local,
        after.staging,
        after.staging_owned,
        after.backup,
        after.backup_owned,
    )
    if f.decide().outcome is Out.NEEDS_ATTENTION:
        assert again == act(Out.NEEDS_ATTENTION)
        return
    assert not again.changes_anything
    if f.intent in (INST, UPD):
        assert not after.staging
    if f.intent in (UPD, UNINST):
        assert not after.backup


@given(facts_strategy)
def test_an_interrupted_update_always_ends_with_an_install(f: Facts) -> None:
    """After recovering an update that had moved the old install away, ``local/`` exists."""
    if f.intent is UPD and (f.local or f.backup):
        assert _apply(f, f.decide()).local
