"""Settling a root's staged update at a start (``core.recovery.STAGE_ROWS``).

Runs after install recovery and before the root's own download settling: a move
of a staged update that a kill cut short must be finished before anything judges
the root, which has no sentinel while the move runs. The staged root is first
settled like any root (:func:`~lanspread.runtime.startup.sweep_orphans`: its
committed or paused leftovers, or its orphaned payload), then its facts are read,
the table decides and this shell carries the step out.

Blocking; the runtime runs it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lanspread.core.gameroot import LOCAL_DIR
from lanspread.core.recovery import Intent, Staged, StageFacts, StageStep, decide_stage
from lanspread.errors import InstallRecordCorrupt, IntentLogCorrupt, StorageError
from lanspread.files.entries import is_real_dir
from lanspread.files.staging import drop_staging, has_staging, move_in, staged_root, staged_version
from lanspread.install.intent import read_intent
from lanspread.install.record import read_record
from lanspread.runtime.startup import PartialDownload, classify_partial, sweep_orphans

log = logging.getLogger(__name__)


def settle_staged(root: Path) -> PartialDownload | None:
    """Carry out the staged-update row of ``root``; the paused update it holds, if any.

    Raises :class:`StorageError` when the disk refuses (the next start retries).
    """
    facts = read_stage_facts(root)
    step = decide_stage(facts)
    if step is StageStep.MOVE_IN:
        move_in(root)
    elif step is StageStep.DISCARD:
        drop_staging(root)
    elif step is StageStep.KEEP_PAUSED:
        return classify_partial(staged_root(root))
    elif step is StageStep.KEEP_STAGED:
        log.info("%s: a verified update waits for its install", root.name)
    return None


def read_stage_facts(root: Path) -> StageFacts:
    """The facts of the staged update of ``root``, after settling the staged root itself."""
    if not has_staging(root):
        return StageFacts(Staged.NONE)
    staged = staged_root(root)
    if is_real_dir(staged):
        sweep_orphans(staged)
    version = staged_version(root)
    if not is_real_dir(staged):
        kind = Staged.EMPTY
    elif version is not None:
        kind = Staged.COMPLETE
    elif classify_partial(staged) is not None:
        kind = Staged.DOWNLOADING
    else:
        kind = Staged.ORPHAN
    return StageFacts(
        staged=kind,
        intent=_intent_recorded(root),
        installed=is_real_dir(root / LOCAL_DIR),
        installs_staged=version is not None and _installed_version(root) == version,
    )


def _intent_recorded(root: Path) -> bool:
    try:
        return read_intent(root) is not Intent.NONE
    except IntentLogCorrupt:
        return True


def _installed_version(root: Path) -> str | None:
    try:
        record = read_record(root)
    except (InstallRecordCorrupt, StorageError) as exc:
        log.warning("%s: %s", root.name, exc)
        return None
    return record.version if record is not None and record.installed else None


__all__ = ["read_stage_facts", "settle_staged"]
