"""Startup recovery of a game root: one pure decision table over intent and directory facts.

Theory of operation
-------------------
Every install-side change of a game root is a transaction over three reserved
directories: ``local/`` (the committed install), ``.local.installing/`` (staging:
extracted archives, never anything the user made) and ``.local.backup/`` (the
previous ``local/`` while an update or uninstall runs). Before the first
directory move a transaction records its :class:`Intent` in ``.lanspread.json``;
it clears the intent (back to ``NONE``) only once the root is settled again.
Every reserved directory lanspread creates carries a ``.lanspread_owned`` marker
written right after creation; ``local/`` never carries one once committed.

After a crash the shell reads the facts (the recorded intent, and which reserved
directories are real directories and marked) and asks :func:`decide_recovery`
what to do. Ownership is proven in one of two ways:

* **the intent proves it** for the directories its transaction creates: an
  ``INSTALLING`` intent owns staging; an ``UPDATING`` intent owns staging and
  backup (never a ``local/`` next to staging: the promotion did not happen, so
  that one is not lanspread's); an ``UNINSTALLING`` intent owns backup.
  Transactions refuse to start while any reserved directory exists, so this
  covers the crash windows before a marker is written and after one is removed;
* **a marker proves it** for every other case. A markerless reserved directory
  that no intent covers belongs to the user and is never touched.

Intent-driven rows (``S``: staging, ``B``: backup; ``-``: either)::

    #   intent        local  S  B    steps                                   outcome
    1   INSTALLING    no     y  .    remove S, clear intent                  rolled back
    2   INSTALLING    no     n  .    clear intent                            intent cleared
    3   INSTALLING    yes    n  .    clear intent                            rolled forward
    4   INSTALLING    yes    y  .    remove S, clear (local is not ours)     rolled back
    5   UPDATING      yes    n  n    clear intent                            intent cleared
    6   UPDATING      yes    y  n    remove S, clear intent                  rolled back
    7   UPDATING      yes    n  y    drop B, clear intent                    rolled forward
    8   UPDATING      yes    y  y    nothing: local is not ours, keep all    needs attention
    9   UPDATING      no     -  y    remove S, restore B, clear intent       rolled back
    10  UPDATING      no     y  n    remove S, clear intent                  rolled back
    11  UPDATING      no     n  n    clear intent                            intent cleared
    12  UNINSTALLING  yes    .  n    clear intent                            rolled back
    13  UNINSTALLING  no     .  y    drop B (if that fails, restore what
                                     is left of B), clear intent             rolled forward
    14  UNINSTALLING  no     .  n    clear intent                            intent cleared
    15  UNINSTALLING  yes    .  y    drop B, clear (local is not ours)       rolled forward

A ``.`` column is a directory the intent does not cover: it follows the marker
rules below. No row deletes a ``local/``. In row 8 staging still existing
proves the promotion never happened (the promotion is one atomic rename), so
``local/`` appeared during the update from outside lanspread: it is the
player's, and the old install cannot go back while it holds the name. Nothing
is touched and the intent stays; once the player moves ``local/`` out of the
game folder, the next start finds row 9 and restores the old install. An
update's own rollback that meets such a ``local/`` leaves it, creates (marked)
staging if there was none, and keeps the intent, so the state "local, backup,
no staging" (row 7) always means committed.
Row 13 rolls forward: the user asked for the deletion and a kill during it
leaves a partly deleted backup, which restored would be a broken install; only
when the deletion itself fails is the rest put back (as the in-process
uninstall does).

Marker rules, for directories no intent covers (``NONE`` and the rest)::

    staging  marked                       remove it (stale leftover)
    staging  unmarked                     leave alone (user-owned)
    backup   marked, no local             restore it to local (never lose an install)
    backup   marked, local present        drop it (superseded leftover)
    backup   unmarked                     leave alone (user-owned)

An unreadable intent log (:data:`IntentLog.UNREADABLE`) proves nothing: only
marker rules apply, except that a marked backup next to a ``local/`` is left
alone too (it might be the only good copy). An unreadable log is never
cleared: lanspread writes its log atomically, so a file of that name it cannot
read is not lanspread's (the player's own ``.lanspread.json``, or a newer
format) and is left as it is; with nothing stale to settle the outcome is
:attr:`RecoveryOutcome.NEEDS_ATTENTION`, which reports it.

Steps run in this order: remove local, remove staging, drop backup, restore
backup, record steps, clear intent. A failed step stops the run and keeps the
intent, so the next start retries from the facts it then finds.

Install record rows (:func:`decide_record_steps`), from the intent and the
outcome the directory steps reached. The pending record
(``.lanspread.install.next.json``) describes the tree an install or update is
about to commit; the record (``.lanspread.install.json``) the committed one::

    intent                  outcome                     record steps
    INSTALLING, UPDATING    rolled forward              commit the pending record
    INSTALLING, UPDATING    rolled back, cleared        drop the pending record
    UNINSTALLING            rolled forward, cleared     drop pending, drop the record
    UNINSTALLING            rolled back                 drop the pending record
    NONE, unreadable        any but needs-attention     drop the pending record
    any                     needs-attention             nothing (either may be right)

An update writes the pending record before its commit rename and commits it
before it drops the backup, so "rolled forward" (``local/`` and a backup, no
staging) is the only state in which a pending record can describe ``local/``;
in every other state the committed record already does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Intent(enum.Enum):
    """What the install transaction of a game root is doing, as recorded in its intent log."""

    NONE = "None"
    INSTALLING = "Installing"
    UPDATING = "Updating"
    UNINSTALLING = "Uninstalling"


class IntentLog(enum.Enum):
    """A recorded intent that could not be read."""

    UNREADABLE = "unreadable"
    """The log exists but is corrupt, foreign or of another format: it proves nothing."""


RecordedIntent = Intent | IntentLog


class RecoveryOutcome(enum.Enum):
    CLEAN = "clean"
    """Nothing was in flight and nothing stale was found."""
    INTENT_CLEARED = "intent-cleared"
    """An intent was recorded but the directories were already settled."""
    ROLLED_BACK = "rolled-back"
    """The interrupted operation is undone: the root is as it was before it."""
    ROLLED_FORWARD = "rolled-forward"
    """The interrupted operation had committed: its cleanup is finished."""
    CLEANED_STALE = "cleaned-stale"
    """No operation was in flight; marked lanspread leftovers were cleaned up."""
    NEEDS_ATTENTION = "needs-attention"
    """The log is unreadable (never lanspread's to delete) and kept as it is; with a
    marked backup next to ``local/`` nothing is deleted, as either copy might be
    the one to keep. Or an update is recorded and a ``local/`` that is not the
    committed install holds the name the old install goes back to (row 8):
    nothing moves until the player moves it out."""


@dataclass(frozen=True, slots=True)
class RecoveryAction:
    """The steps to carry out, in field order, and what they amount to."""

    outcome: RecoveryOutcome
    remove_staging: bool = False
    drop_backup: bool = False
    restore_backup: bool = False
    """Strip the backup's marker and rename it to ``local/``."""
    restore_if_drop_fails: bool = False
    """When dropping the backup fails, put what is left of it back as ``local/``."""
    clear_intent: bool = False

    @property
    def changes_anything(self) -> bool:
        return self.remove_staging or self.drop_backup or self.restore_backup or self.clear_intent


@dataclass(frozen=True, slots=True)
class RecordSteps:
    """What recovery does with the install record once the directories are settled."""

    commit_pending: bool = False
    """Rename the pending record over the record: it describes the committed ``local/``."""
    drop_pending: bool = False
    drop_record: bool = False
    """The install it describes is gone (a finished uninstall)."""


def decide_record_steps(intent: RecordedIntent, outcome: RecoveryOutcome) -> RecordSteps:
    """The record rows of the module docstring; ``outcome`` is the one the steps reached."""
    if outcome is RecoveryOutcome.NEEDS_ATTENTION:
        return RecordSteps()
    forward = outcome is RecoveryOutcome.ROLLED_FORWARD
    if intent in (Intent.INSTALLING, Intent.UPDATING):
        return RecordSteps(commit_pending=forward, drop_pending=not forward)
    if intent is Intent.UNINSTALLING:
        gone = forward or outcome is RecoveryOutcome.INTENT_CLEARED
        return RecordSteps(drop_pending=True, drop_record=gone)
    return RecordSteps(drop_pending=True)


@dataclass(frozen=True, slots=True)
class _Dirs:
    local: bool
    staging: bool
    staging_owned: bool
    backup: bool
    backup_owned: bool


def decide_recovery(
    intent: RecordedIntent,
    local_exists: bool,
    installing_exists: bool,
    installing_owned: bool,
    backup_exists: bool,
    backup_owned: bool,
) -> RecoveryAction:
    """What startup recovery does with a game root, given what it found.

    ``*_exists`` means a real directory (not a link or file) sits at the name;
    ``*_owned`` means it holds a ``.lanspread_owned`` marker (ignored when the
    directory does not exist). See the module docstring for the table.
    """
    dirs = _Dirs(
        local=local_exists,
        staging=installing_exists,
        staging_owned=installing_exists and installing_owned,
        backup=backup_exists,
        backup_owned=backup_exists and backup_owned,
    )
    if intent is Intent.INSTALLING:
        return _installing(dirs)
    if intent is Intent.UPDATING:
        return _updating(dirs)
    if intent is Intent.UNINSTALLING:
        return _uninstalling(dirs)
    if intent is Intent.NONE:
        return _stale_leftovers(dirs)
    return _unreadable(dirs)


def _installing(d: _Dirs) -> RecoveryAction:
    backup = _stale_backup_steps(d.local, d.backup_owned)
    if d.staging:
        outcome = RecoveryOutcome.ROLLED_BACK
    elif d.local:
        outcome = RecoveryOutcome.ROLLED_FORWARD
    else:
        outcome = RecoveryOutcome.INTENT_CLEARED
    return RecoveryAction(
        outcome=outcome,
        remove_staging=d.staging,
        drop_backup=backup.drop_backup,
        restore_backup=backup.restore_backup,
        clear_intent=True,
    )


def _updating(d: _Dirs) -> RecoveryAction:
    if d.backup and d.local and not d.staging:
        return RecoveryAction(
            outcome=RecoveryOutcome.ROLLED_FORWARD, drop_backup=True, clear_intent=True
        )
    if d.backup and d.local:
        # Row 8: staging proves the promotion never ran, so local/ came from outside.
        return RecoveryAction(outcome=RecoveryOutcome.NEEDS_ATTENTION)
    if d.backup:
        return RecoveryAction(
            outcome=RecoveryOutcome.ROLLED_BACK,
            remove_staging=d.staging,
            restore_backup=True,
            clear_intent=True,
        )
    outcome = RecoveryOutcome.ROLLED_BACK if d.staging else RecoveryOutcome.INTENT_CLEARED
    return RecoveryAction(outcome=outcome, remove_staging=d.staging, clear_intent=True)


def _uninstalling(d: _Dirs) -> RecoveryAction:
    if d.backup:
        outcome = RecoveryOutcome.ROLLED_FORWARD
    elif d.local:
        outcome = RecoveryOutcome.ROLLED_BACK
    else:
        outcome = RecoveryOutcome.INTENT_CLEARED
    return RecoveryAction(
        outcome=outcome,
        remove_staging=d.staging_owned,
        drop_backup=d.backup,
        restore_if_drop_fails=d.backup and not d.local,
        clear_intent=True,
    )


def _stale_leftovers(d: _Dirs) -> RecoveryAction:
    backup = _stale_backup_steps(d.local, d.backup_owned)
    action = RecoveryAction(
        outcome=RecoveryOutcome.CLEANED_STALE,
        remove_staging=d.staging_owned,
        drop_backup=backup.drop_backup,
        restore_backup=backup.restore_backup,
    )
    return action if action.changes_anything else RecoveryAction(outcome=RecoveryOutcome.CLEAN)


def _unreadable(d: _Dirs) -> RecoveryAction:
    if d.backup_owned and d.local:
        return RecoveryAction(
            outcome=RecoveryOutcome.NEEDS_ATTENTION, remove_staging=d.staging_owned
        )
    stale = d.staging_owned or d.backup_owned
    return RecoveryAction(
        outcome=RecoveryOutcome.CLEANED_STALE if stale else RecoveryOutcome.NEEDS_ATTENTION,
        remove_staging=d.staging_owned,
        restore_backup=d.backup_owned,
    )


@dataclass(frozen=True, slots=True)
class _BackupSteps:
    drop_backup: bool
    restore_backup: bool


def _stale_backup_steps(local: bool, backup_owned: bool) -> _BackupSteps:
    """Marker rule for a backup no intent covers: restore it when ``local/`` is free."""
    if not backup_owned:
        return _BackupSteps(drop_backup=False, restore_backup=False)
    return _BackupSteps(drop_backup=local, restore_backup=not local)
