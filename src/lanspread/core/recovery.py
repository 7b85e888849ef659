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

The decision is a table (:data:`RECOVERY_ROWS`): each row names the recorded
intent, whether ``local/`` exists, and what sits at the staging and backup names
(:class:`Dir`: absent, a directory without the marker, a marked one), and the
steps and outcome for every root that matches it. The rows partition the facts:
every root matches exactly one. Rows 1 to 15 are the intent-driven ones (the
intent covers its own directories, markers or not; a directory it does not
cover follows the marker rules, which is why some numbers have a ``B*`` or
``S*`` variant); the ``stale`` rows (no intent) and the ``bad`` rows (an unreadable
log) are the marker rules.

No row deletes a ``local/``. In row 8 staging still existing proves the
promotion never happened (the promotion is one atomic rename), so ``local/``
appeared during the update from outside lanspread: it is the player's, and the
old install cannot go back while it holds the name. Nothing is touched and the
intent stays; once the player moves ``local/`` out of the game folder, the next
start finds row 9 and restores the old install. An update's own rollback that
meets such a ``local/`` leaves it, creates (marked) staging if there was none,
and keeps the intent, so the state "local, backup, no staging" (row 7) always
means committed. Row 13 rolls forward: the user asked for the deletion and a
kill during it leaves a partly deleted backup, which restored would be a broken
install; only when the deletion itself fails is the rest put back (as the
in-process uninstall does).

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

Install record rows (:data:`RECORD_ROWS`, first match wins), from the intent and
the outcome the directory steps reached. The pending record
(``.lanspread.install.next.json``) describes the tree an install or update is
about to commit; the record (``.lanspread.install.json``) the committed one. An
update writes the pending record before its commit rename and commits it before
it drops the backup, so "rolled forward" (``local/`` and a backup, no staging)
is the only state in which a pending record can describe ``local/``; in every
other state the committed record already does.
"""

from __future__ import annotations

import enum
from collections.abc import Set
from dataclasses import dataclass
from typing import Final


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


class Step(enum.Enum):
    """One step of a recovery action; an action carries them out in this order."""

    REMOVE_STAGING = "remove_staging"
    DROP_BACKUP = "drop_backup"
    RESTORE_BACKUP = "restore_backup"
    """Strip the backup's marker and rename it to ``local/``."""
    RESTORE_IF_DROP_FAILS = "restore_if_drop_fails"
    """When dropping the backup fails, put what is left of it back as ``local/``."""
    CLEAR_INTENT = "clear_intent"


@dataclass(frozen=True, slots=True)
class RecoveryAction:
    """The steps to carry out, in :class:`Step` order, and what they amount to."""

    outcome: RecoveryOutcome
    steps: frozenset[Step] = frozenset()

    @property
    def changes_anything(self) -> bool:
        return bool(self.steps - {Step.RESTORE_IF_DROP_FAILS})


@dataclass(frozen=True, slots=True)
class RecordSteps:
    """What recovery does with the install record once the directories are settled."""

    commit_pending: bool = False
    """Rename the pending record over the record: it describes the committed ``local/``."""
    drop_pending: bool = False
    drop_record: bool = False
    """The install it describes is gone (a finished uninstall)."""


class Dir(enum.Enum):
    """What sits at a reserved directory's name, as recovery sees it."""

    ABSENT = "absent"
    """No real directory (nothing, or a file or link: never touched)."""
    UNMARKED = "unmarked"
    """A real directory without the ``.lanspread_owned`` marker."""
    MARKED = "marked"

    @classmethod
    def of(cls, exists: bool, owned: bool) -> Dir:
        if not exists:
            return cls.ABSENT
        return cls.MARKED if owned else cls.UNMARKED


@dataclass(frozen=True, slots=True)
class RecoveryRow:
    """One row of the recovery table: the facts it matches and what recovery does."""

    name: str
    """The row's number in the module docstring, or the marker rule it applies."""
    intent: RecordedIntent
    local: Set[bool]
    staging: Set[Dir]
    backup: Set[Dir]
    action: RecoveryAction

    def matches(self, intent: RecordedIntent, local: bool, staging: Dir, backup: Dir) -> bool:
        return (
            intent is self.intent
            and local in self.local
            and staging in self.staging
            and backup in self.backup
        )


def _act(outcome: RecoveryOutcome, *steps: Step) -> RecoveryAction:
    return RecoveryAction(outcome, frozenset(steps))


def _row(
    name: str,
    intent: RecordedIntent,
    local: Set[bool],
    staging: Set[Dir],
    backup: Set[Dir],
    outcome: RecoveryOutcome,
    *steps: Step,
) -> RecoveryRow:
    return RecoveryRow(name, intent, local, staging, backup, _act(outcome, *steps))


# Short names for the tables below (deleted once they are built).
INST, UPD, UNINST, NONE = Intent.INSTALLING, Intent.UPDATING, Intent.UNINSTALLING, Intent.NONE
BAD = IntentLog.UNREADABLE
BACK, FORWARD, CLEARED = (
    RecoveryOutcome.ROLLED_BACK,
    RecoveryOutcome.ROLLED_FORWARD,
    RecoveryOutcome.INTENT_CLEARED,
)
STALE, CLEAN, ATTENTION = (
    RecoveryOutcome.CLEANED_STALE,
    RecoveryOutcome.CLEAN,
    RecoveryOutcome.NEEDS_ATTENTION,
)
YES, NO, ANY = frozenset({True}), frozenset({False}), frozenset({True, False})
ABSENT, MINE = frozenset({Dir.ABSENT}), frozenset({Dir.MARKED})
SOME, NOT_MINE = frozenset({Dir.UNMARKED, Dir.MARKED}), frozenset({Dir.ABSENT, Dir.UNMARKED})
RM_S, DROP, RESTORE = Step.REMOVE_STAGING, Step.DROP_BACKUP, Step.RESTORE_BACKUP
FALLBACK, CLEAR = Step.RESTORE_IF_DROP_FAILS, Step.CLEAR_INTENT

# fmt: off
RECOVERY_ROWS: Final[tuple[RecoveryRow, ...]] = (
    #    row              intent  local staging   backup    outcome    steps
    _row("1",             INST,   NO,  SOME,     NOT_MINE, BACK,      RM_S, CLEAR),
    _row("1 B*",          INST,   NO,  SOME,     MINE,     BACK,      RM_S, RESTORE, CLEAR),
    _row("2",             INST,   NO,  ABSENT,   NOT_MINE, CLEARED,   CLEAR),
    _row("2 B*",          INST,   NO,  ABSENT,   MINE,     CLEARED,   RESTORE, CLEAR),
    _row("3",             INST,   YES, ABSENT,   NOT_MINE, FORWARD,   CLEAR),
    _row("3 B*",          INST,   YES, ABSENT,   MINE,     FORWARD,   DROP, CLEAR),
    _row("4",             INST,   YES, SOME,     NOT_MINE, BACK,      RM_S, CLEAR),
    _row("4 B*",          INST,   YES, SOME,     MINE,     BACK,      RM_S, DROP, CLEAR),
    _row("5, 11",         UPD,    ANY, ABSENT,   ABSENT,   CLEARED,   CLEAR),
    _row("6, 10",         UPD,    ANY, SOME,     ABSENT,   BACK,      RM_S, CLEAR),
    _row("7",             UPD,    YES, ABSENT,   SOME,     FORWARD,   DROP, CLEAR),
    _row("8",             UPD,    YES, SOME,     SOME,     ATTENTION),
    _row("9",             UPD,    NO,  SOME,     SOME,     BACK,      RM_S, RESTORE, CLEAR),
    _row("9, no S",       UPD,    NO,  ABSENT,   SOME,     BACK,      RESTORE, CLEAR),
    _row("12",            UNINST, YES, NOT_MINE, ABSENT,   BACK,      CLEAR),
    _row("12 S*",         UNINST, YES, MINE,     ABSENT,   BACK,      RM_S, CLEAR),
    _row("13",            UNINST, NO,  NOT_MINE, SOME,     FORWARD,   DROP, FALLBACK, CLEAR),
    _row("13 S*",         UNINST, NO,  MINE,     SOME,     FORWARD,   RM_S, DROP, FALLBACK, CLEAR),
    _row("14",            UNINST, NO,  NOT_MINE, ABSENT,   CLEARED,   CLEAR),
    _row("14 S*",         UNINST, NO,  MINE,     ABSENT,   CLEARED,   RM_S, CLEAR),
    _row("15",            UNINST, YES, NOT_MINE, SOME,     FORWARD,   DROP, CLEAR),
    _row("15 S*",         UNINST, YES, MINE,     SOME,     FORWARD,   RM_S, DROP, CLEAR),
    _row("stale",         NONE,   ANY, NOT_MINE, NOT_MINE, CLEAN),
    _row("stale S*",      NONE,   ANY, MINE,     NOT_MINE, STALE,     RM_S),
    _row("stale B*",      NONE,   NO,  NOT_MINE, MINE,     STALE,     RESTORE),
    _row("stale S* B*",   NONE,   NO,  MINE,     MINE,     STALE,     RM_S, RESTORE),
    _row("stale L B*",    NONE,   YES, NOT_MINE, MINE,     STALE,     DROP),
    _row("stale L S* B*", NONE,   YES, MINE,     MINE,     STALE,     RM_S, DROP),
    _row("bad",           BAD,    ANY, NOT_MINE, NOT_MINE, ATTENTION),
    _row("bad S*",        BAD,    ANY, MINE,     NOT_MINE, STALE,     RM_S),
    _row("bad B*",        BAD,    NO,  NOT_MINE, MINE,     STALE,     RESTORE),
    _row("bad S* B*",     BAD,    NO,  MINE,     MINE,     STALE,     RM_S, RESTORE),
    _row("bad L B*",      BAD,    YES, NOT_MINE, MINE,     ATTENTION),
    _row("bad L S* B*",   BAD,    YES, MINE,     MINE,     ATTENTION, RM_S),
)
# fmt: on
"""The recovery table: every root matches exactly one row (``*``: the directory carries
the marker; a row without a directory's letter holds for any that intent or marker
rule leaves alone)."""


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One row of the install record table (first match wins)."""

    intents: Set[RecordedIntent]
    outcomes: Set[RecoveryOutcome]
    steps: RecordSteps


_SETTLED = frozenset(RecoveryOutcome) - {ATTENTION}
_EVERY_INTENT: frozenset[RecordedIntent] = frozenset({*Intent, BAD})
_WRITES_RECORD: frozenset[RecordedIntent] = frozenset({INST, UPD})

RECORD_ROWS: Final[tuple[RecordRow, ...]] = (
    RecordRow(_EVERY_INTENT, frozenset({ATTENTION}), RecordSteps()),
    RecordRow(_WRITES_RECORD, frozenset({FORWARD}), RecordSteps(commit_pending=True)),
    RecordRow(_WRITES_RECORD, _SETTLED, RecordSteps(drop_pending=True)),
    RecordRow(
        frozenset({UNINST}),
        frozenset({FORWARD, CLEARED}),
        RecordSteps(drop_pending=True, drop_record=True),
    ),
    RecordRow(_EVERY_INTENT, _SETTLED, RecordSteps(drop_pending=True)),
)
"""The install record table, first match wins: needs-attention touches neither record
(either may be right); an install or update that rolled forward commits the pending
record; an uninstall that finished drops the record too; everything else drops the
pending record, which describes a tree that was never committed."""

del INST, UPD, UNINST, NONE, BAD, BACK, FORWARD, CLEARED, STALE, CLEAN, ATTENTION
del YES, NO, ANY, ABSENT, MINE, SOME, NOT_MINE, RM_S, DROP, RESTORE, FALLBACK, CLEAR


def recovery_row(intent: RecordedIntent, local: bool, staging: Dir, backup: Dir) -> RecoveryRow:
    """The one row of :data:`RECOVERY_ROWS` that matches these facts."""
    return next(row for row in RECOVERY_ROWS if row.matches(intent, local, staging, backup))


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
    directory does not exist). The answer is the action of the matching row.
    """
    staging = Dir.of(installing_exists, installing_owned)
    backup = Dir.of(backup_exists, backup_owned)
    return recovery_row(intent, local_exists, staging, backup).action


def decide_record_steps(intent: RecordedIntent, outcome: RecoveryOutcome) -> RecordSteps:
    """The record steps of the first row of :data:`RECORD_ROWS` that matches;
    ``outcome`` is the one the directory steps reached."""
    return next(
        row.steps for row in RECORD_ROWS if intent in row.intents and outcome in row.outcomes
    )


# --- the staged update ---------------------------------------------------------------------
#
# An update downloads beside the old payload, into ``.lanspread.update/<game_id>/`` (its own
# ownership record, journal and sentinel), so the old version stays playable and served.
# Once the new one is verified *and* installed (or at once when nothing is installed) its
# files are moved into the root: the old sentinel parked, the old payload the root's
# ownership record proves ours deleted, the staged files renamed in, the staged sentinel
# renamed in last. Every step is idempotent, so a start that finds the staged sentinel
# still in place finishes the move; once that sentinel has moved, what is left of the
# staged root is swept by its own record.


class Staged(enum.Enum):
    """The staged update of a root, as a start finds it (after its own settling)."""

    NONE = "none"
    """No ``.lanspread.update`` folder."""
    EMPTY = "empty"
    """The folder without a staged root in it (a kill around its creation or removal)."""
    DOWNLOADING = "downloading"
    """A staged root with a valid journal and no sentinel: a paused update download."""
    COMPLETE = "complete"
    """A staged root whose sentinel is committed: verified, waiting for its install or move."""
    ORPHAN = "orphan"
    """A staged root with neither: never journaled, or its files already moved in."""


class StageStep(enum.Enum):
    """What a start does with a staged update."""

    NOTHING = "nothing"
    KEEP_PAUSED = "keep-paused"
    """Show the update as paused; a download resumes it."""
    KEEP_STAGED = "keep-staged"
    """Keep the verified update for its install (``update`` re-checks and installs it)."""
    MOVE_IN = "move-in"
    """Finish the move of the staged files into the root (idempotent)."""
    DISCARD = "discard"
    """Delete what the staged root's record proves ours, then the empty folders."""


@dataclass(frozen=True, slots=True)
class StageFacts:
    staged: Staged
    intent: bool = False
    """An install intent is recorded (or unreadable): install recovery owns the root."""
    installed: bool = False
    """``local/`` is a real folder."""
    installs_staged: bool = False
    """The install record names the staged version: the update's install committed."""


@dataclass(frozen=True, slots=True)
class StageRow:
    name: str
    staged: Set[Staged]
    intent: Set[bool]
    installed: Set[bool]
    installs_staged: Set[bool]
    step: StageStep

    def matches(self, facts: StageFacts) -> bool:
        return (
            facts.staged in self.staged
            and facts.intent in self.intent
            and facts.installed in self.installed
            and facts.installs_staged in self.installs_staged
        )


_B = frozenset({False, True})
_T, _F = frozenset({True}), frozenset({False})
_STAGED = frozenset(Staged) - {Staged.NONE}

# fmt: off
_NONE, _EMPTY, _DL = {Staged.NONE}, {Staged.EMPTY}, {Staged.DOWNLOADING}
_DONE, _ORPHAN = {Staged.COMPLETE}, {Staged.ORPHAN}
STAGE_ROWS: Final[tuple[StageRow, ...]] = (
    #         row                        staged   intent inst same  step
    StageRow("no staged update",         _NONE,   _B, _B, _B, StageStep.NOTHING),
    StageRow("install recovery's",       _STAGED, _T, _B, _B, StageStep.NOTHING),
    StageRow("empty folder",             _EMPTY,  _F, _B, _B, StageStep.DISCARD),
    StageRow("paused update",            _DL,     _F, _B, _B, StageStep.KEEP_PAUSED),
    StageRow("nothing installed",        _DONE,   _F, _F, _B, StageStep.MOVE_IN),
    StageRow("update installed",         _DONE,   _F, _T, _T, StageStep.MOVE_IN),
    StageRow("update not installed yet", _DONE,   _F, _T, _F, StageStep.KEEP_STAGED),
    StageRow("orphan",                   _ORPHAN, _F, _B, _B, StageStep.DISCARD),
)
# fmt: on
"""The staged-update table: every root matches exactly one row. The old payload goes
only with ``MOVE_IN``, after the new version is verified and (if anything is installed)
installed; a failed or killed update leaves the old version whole."""

del _B, _T, _F, _STAGED, _NONE, _EMPTY, _DL, _DONE, _ORPHAN


def decide_stage(facts: StageFacts) -> StageStep:
    """The step of the one row of :data:`STAGE_ROWS` that matches ``facts``."""
    return next(row.step for row in STAGE_ROWS if row.matches(facts))
