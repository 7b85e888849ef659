"""Settling a game root's download state at a start: one decision table.

Theory of operation
-------------------
After install recovery and before the first scan (at a start, and when the game
folder changes), the runtime reads a few facts of each catalog root
(:class:`SettleFacts`) and :func:`decide_settle` answers with a
:class:`SettleDecision`: whether the root holds a paused download to show (and
resume), and what the sweep deletes. The shell (``runtime/startup.py``) reads the
facts and carries the decision out.

The facts: the root is a real folder (never a link or a file); ``S``, a regular
root ``version.ini`` (the download committed); the download journal as it loads
(valid, corrupt, absent); an install intent recorded (an unreadable log counts as
recorded: install recovery owns the root); and the root's ownership record (a
valid record of this game: the only proof a sweep deletes by).

:data:`SETTLE_ROWS` partitions the facts; the sweeps it names:

* **committed leftovers**: the journal, its temp, the parked and temp sentinels
  (the download committed; its payload stays);
* **paused leftovers**: a temp sentinel and the journal's temp (an interrupted
  commit is redone on resume); the rest stays for the resume;
* **payload**: what the record proves the download created (an orphan of a kill,
  an update parked but never journaled, or a payload whose journal is corrupt:
  nothing proves which chunks are complete).

Every deletion needs proof: only names the ownership record lists and that are
still what lanspread created are deleted (:mod:`lanspread.files.ownership`), so a
root without a record (a folder the player made, copied or installed by hand) is
never touched, whatever else it holds. A discard keeps every installer-owned name
(``local/``, the install transaction's folders, the intent log,
``.softlan_game_installed``, ``.sync/``), and the root goes only if the download
created it and it ends up empty.

Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Set
from dataclasses import dataclass
from typing import Final


class Journal(enum.Enum):
    """The download journal of a root, as it loads."""

    ABSENT = "absent"
    VALID = "valid"
    CORRUPT = "corrupt"


class Sweep(enum.Enum):
    """What the sweep of a root deletes (always through the ownership record's proof)."""

    NOTHING = "nothing"
    COMMITTED_LEFTOVERS = "committed-leftovers"
    PAUSED_LEFTOVERS = "paused-leftovers"
    PAYLOAD = "payload"


@dataclass(frozen=True, slots=True)
class SettleFacts:
    real_dir: bool
    sentinel: bool = False
    """A regular root ``version.ini``."""
    journal: Journal = Journal.ABSENT
    intent: bool = False
    """An install intent is recorded (or the log is unreadable)."""
    record: bool = False
    """A valid ownership record of this game."""


@dataclass(frozen=True, slots=True)
class SettleDecision:
    paused: bool
    """The root holds a paused download: shown as paused, resumed by a download."""
    sweep: Sweep


@dataclass(frozen=True, slots=True)
class SettleRow:
    name: str
    real_dir: Set[bool]
    sentinel: Set[bool]
    journal: Set[Journal]
    intent: Set[bool]
    record: Set[bool]
    decision: SettleDecision

    def matches(self, facts: SettleFacts) -> bool:
        return (
            facts.real_dir in self.real_dir
            and facts.sentinel in self.sentinel
            and facts.journal in self.journal
            and facts.intent in self.intent
            and facts.record in self.record
        )


def _row(
    name: str,
    real_dir: Set[bool],
    sentinel: Set[bool],
    journal: Set[Journal],
    intent: Set[bool],
    record: Set[bool],
    paused: bool,
    sweep: Sweep,
) -> SettleRow:
    return SettleRow(
        name, real_dir, sentinel, journal, intent, record, SettleDecision(paused, sweep)
    )


# Short names for the table below (deleted once it is built).
YES, NO, ANY = frozenset({True}), frozenset({False}), frozenset({True, False})
VALID, NOT_VALID = frozenset({Journal.VALID}), frozenset({Journal.ABSENT, Journal.CORRUPT})
EVERY = frozenset(Journal)

# fmt: off
SETTLE_ROWS: Final[tuple[SettleRow, ...]] = (
    #    row                   dir  S    journal    intent record paused sweep
    _row("not a folder",       NO,  ANY, EVERY,     ANY,   ANY,   False, Sweep.NOTHING),
    _row("committed",          YES, YES, EVERY,     ANY,   YES,   False, Sweep.COMMITTED_LEFTOVERS),
    _row("committed, no proof", YES, YES, EVERY,    ANY,   NO,    False, Sweep.NOTHING),
    _row("paused",             YES, NO,  VALID,     ANY,   YES,   True,  Sweep.PAUSED_LEFTOVERS),
    _row("paused, no proof",   YES, NO,  VALID,     ANY,   NO,    True,  Sweep.NOTHING),
    _row("install recovery's", YES, NO,  NOT_VALID, YES,   ANY,   False, Sweep.NOTHING),
    _row("orphan",             YES, NO,  NOT_VALID, NO,    YES,   False, Sweep.PAYLOAD),
    _row("orphan, no proof",   YES, NO,  NOT_VALID, NO,    NO,    False, Sweep.NOTHING),
)
# fmt: on
"""The settle table: every root matches exactly one row."""

del YES, NO, ANY, VALID, NOT_VALID, EVERY


def decide_settle(facts: SettleFacts) -> SettleDecision:
    """The decision of the one row of :data:`SETTLE_ROWS` that matches ``facts``."""
    return next(row.decision for row in SETTLE_ROWS if row.matches(facts))
