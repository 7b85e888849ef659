"""Startup and cancel sweeps of a game root.

* :func:`recover_game_root` settles a root that a kill left mid-transaction: it
  reads the facts (intent log, which reserved directories are real directories
  and which carry lanspread's marker), asks
  :func:`lanspread.core.recovery.decide_recovery` and carries the action out,
  then settles the install record the way
  :func:`lanspread.core.recovery.decide_record_steps` says (commit or drop a
  pending record, drop the record of a finished uninstall). It also deletes a
  crash-left ``.version.ini.tmp`` and intent-log temp file.
* :func:`drop_interrupted_update_sentinel` is the download layer's rule for a
  parked ``.version.ini.discarded``.
* :func:`discard_download` is the cancel/discard sweep: it deletes what the
  root's download ownership record proves lanspread created, nothing else.

Nothing here follows a link: a link is unlinked, its target never touched.
The runtime skips roots with an active operation; these functions assume they
own the root while they run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lanspread.core.gameroot import (
    BACKUP_DIR,
    DOWNLOAD_JOURNAL_FILE,
    INSTALLING_DIR,
    INTENT_TMP_FILE,
    LOCAL_DIR,
    VERSION_DISCARDED_FILE,
    VERSION_FILE,
    VERSION_TMP_FILE,
)
from lanspread.core.recovery import (
    Intent,
    IntentLog,
    RecordedIntent,
    RecoveryAction,
    RecoveryOutcome,
    Step,
    decide_record_steps,
    decide_recovery,
)
from lanspread.errors import IntentLogCorrupt, StorageError
from lanspread.files.atomic import fsync_dir, unlink_synced
from lanspread.files.entries import is_real_dir, require_dir_or_absent
from lanspread.files.ownership import load_record_or_none, owned_transient, sweep_owned
from lanspread.install.intent import clear_intent, has_marker, is_our_intent_temp, read_intent
from lanspread.install.record import commit_pending_record, drop_pending_record, drop_record
from lanspread.install.remove import remove_entry
from lanspread.install.rollback import foreign_local_problem, restore_backup


@dataclass(frozen=True, slots=True)
class RootFacts:
    """What recovery reads from a game root before deciding."""

    intent: RecordedIntent
    local_exists: bool
    installing_exists: bool
    installing_owned: bool
    backup_exists: bool
    backup_owned: bool


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    root: Path
    facts: RootFacts
    action: RecoveryAction
    outcome: RecoveryOutcome
    """Usually ``action.outcome``; ``ROLLED_BACK`` when an uninstall could not be finished."""
    problems: tuple[str, ...] = ()
    """What went wrong but was handled: an unreadable log, a deletion that failed."""
    removed_transients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiscardReport:
    removed: tuple[str, ...]
    """Recorded names deleted (relative paths), sorted."""
    root_removed: bool
    """The download created the root, it ended up empty and was deleted too."""
    kept: tuple[str, ...] = ()
    """Recorded names left because they are no longer provably lanspread's."""


def read_root_facts(root: Path) -> tuple[RootFacts, str | None]:
    """The facts recovery decides on, and why the intent is unreadable (if it is)."""
    problem: str | None = None
    intent: RecordedIntent
    try:
        intent = read_intent(root)
    except IntentLogCorrupt as exc:
        intent, problem = IntentLog.UNREADABLE, str(exc)
    staging, backup = root / INSTALLING_DIR, root / BACKUP_DIR
    staging_exists, backup_exists = is_real_dir(staging), is_real_dir(backup)
    facts = RootFacts(
        intent=intent,
        local_exists=is_real_dir(root / LOCAL_DIR),
        installing_exists=staging_exists,
        installing_owned=staging_exists and has_marker(staging),
        backup_exists=backup_exists,
        backup_owned=backup_exists and has_marker(backup),
    )
    return facts, problem


def recover_game_root(root: Path) -> RecoveryReport:
    """Settle ``root`` after a crash; raises :class:`StorageError` if a step fails.

    A failed step leaves the intent recorded, so the next call retries from
    whatever state the disk is then in.
    """
    removed = _remove_crash_temps(root)
    facts, problem = read_root_facts(root)
    action = decide_recovery(
        facts.intent,
        facts.local_exists,
        facts.installing_exists,
        facts.installing_owned,
        facts.backup_exists,
        facts.backup_owned,
    )
    problems = [problem] if problem is not None else []
    outcome = _carry_out(root, facts.intent, action, problems)
    return RecoveryReport(
        root=root,
        facts=facts,
        action=action,
        outcome=outcome,
        problems=tuple(problems),
        removed_transients=removed,
    )


def _carry_out(
    root: Path, intent: RecordedIntent, action: RecoveryAction, problems: list[str]
) -> RecoveryOutcome:
    outcome = action.outcome
    if outcome is RecoveryOutcome.NEEDS_ATTENTION and intent is Intent.UPDATING:
        problems.append(foreign_local_problem(root))
    if Step.REMOVE_STAGING in action.steps:
        remove_entry(root / INSTALLING_DIR)
        fsync_dir(root)
    if Step.DROP_BACKUP in action.steps:
        try:
            remove_entry(root / BACKUP_DIR)
            fsync_dir(root)
        except StorageError as exc:
            if Step.RESTORE_IF_DROP_FAILS not in action.steps:
                raise
            problems.append(str(exc))
            restore_backup(root)
            outcome = RecoveryOutcome.ROLLED_BACK
    if Step.RESTORE_BACKUP in action.steps:
        restore_backup(root)
    _settle_record(root, intent, outcome)
    if Step.CLEAR_INTENT in action.steps:
        clear_intent(root)
    return outcome


def _settle_record(root: Path, intent: RecordedIntent, outcome: RecoveryOutcome) -> None:
    """Make the install record name what ``local/`` now holds (before the intent goes)."""
    steps = decide_record_steps(intent, outcome)
    if steps.commit_pending:
        commit_pending_record(root)
    if steps.drop_pending:
        drop_pending_record(root)
    if steps.drop_record:
        drop_record(root)


def _remove_crash_temps(root: Path) -> tuple[str, ...]:
    """Delete the temp files an interrupted atomic write of lanspread's left behind.

    Only with proof: the intent log's temp when its bytes are (a prefix of) an
    intent record of this game, the sentinel's temp when the ownership record
    claims it. A file of either name the player made is left alone.
    """
    removed = []
    if is_our_intent_temp(root) and unlink_synced(root / INTENT_TMP_FILE):
        removed.append(INTENT_TMP_FILE)
    record = load_record_or_none(root)
    if owned_transient(root, record, VERSION_TMP_FILE) and unlink_synced(root / VERSION_TMP_FILE):
        removed.append(VERSION_TMP_FILE)
    return tuple(removed)


def drop_interrupted_update_sentinel(root: Path) -> bool:
    """Delete a parked ``.version.ini.discarded`` that no download will ever resolve.

    An update download parks the old sentinel as ``.version.ini.discarded`` and
    then writes its journal. A parked sentinel with no ``version.ini`` and no
    journal means the update was interrupted before it journaled: nothing can
    resume it, so it is dropped, when the ownership record claims it (a file of
    that name the player made is left alone). True when it was deleted.
    """
    parked = root / VERSION_DISCARDED_FILE
    if os.path.lexists(root / VERSION_FILE) or os.path.lexists(root / DOWNLOAD_JOURNAL_FILE):
        return False
    if not owned_transient(root, load_record_or_none(root), VERSION_DISCARDED_FILE):
        return False
    return unlink_synced(parked)


def discard_download(root: Path) -> DiscardReport:
    """Delete what a download provably created in ``root``; the root too if it made it.

    Only names the root's ownership record lists and that are still what
    lanspread created go (:func:`lanspread.files.ownership.sweep_owned`);
    installer-owned names are never recorded, so they stay. A root without a
    record (or with one that is not lanspread's) is left as it is. Raises
    :class:`StorageError` when the root is a link (it is not followed) or the
    disk refuses; a failure part-way leaves the rest, still recorded, for the
    next sweep.
    """
    if not require_dir_or_absent(root):
        return DiscardReport(removed=(), root_removed=False)
    record = load_record_or_none(root)
    if record is None:
        return DiscardReport(removed=(), root_removed=False)
    report = sweep_owned(root, record)
    return DiscardReport(removed=report.removed, root_removed=report.root_removed, kept=report.kept)
