"""Startup settling: the install and download state a crash left in each game root.

:func:`recover_install_state` settles every catalog root's install transaction from
its intent log (:mod:`lanspread.install.sweep`) first; nothing that is not
provably lanspread's is touched. Then the download state is settled once per
game root, after install recovery and before the first scan, while no
operation is active: this shell reads each root's facts, the settle table
(:mod:`lanspread.core.settling`) decides, and :func:`classify_partial` reports
the paused download it finds for the UI while :func:`sweep_orphans` deletes what
no download will ever resolve, always through the root's ownership record
(:mod:`lanspread.files.ownership`): a root without a record is never touched.
A discarded update of an installed game thus settles as local-only, as a
cancelled one does (:mod:`lanspread.files.sentinel`).

Both functions block; the runtime runs them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lanspread.core.catalog import Catalog
from lanspread.core.gameroot import (
    BACKUP_DIR,
    DOWNLOAD_JOURNAL_FILE,
    DOWNLOAD_JOURNAL_TMP_FILE,
    INSTALLING_DIR,
    INTENT_FILE,
    INTENT_TMP_FILE,
    LOCAL_DIR,
    OWNERSHIP_FILE,
    VERSION_DISCARDED_FILE,
    VERSION_FILE,
    VERSION_TMP_FILE,
    is_reserved_name,
)
from lanspread.core.library import FoundGame, found_not_from_lanspread
from lanspread.core.recovery import Intent, RecoveryOutcome
from lanspread.core.settling import Journal, SettleFacts, Sweep, decide_settle
from lanspread.download.journal import DownloadJournal, JournalCorrupt, load
from lanspread.errors import IntentLogCorrupt, StorageError
from lanspread.files.atomic import unlink_synced
from lanspread.files.entries import is_real_dir, is_regular_file
from lanspread.files.ownership import (
    InTheWay,
    OwnershipRecord,
    load_record,
    owned_transient,
    sweep_owned,
)
from lanspread.install.intent import has_marker, is_our_intent_temp, read_intent
from lanspread.install.record import foreign_record_files
from lanspread.install.sweep import recover_game_root

log = logging.getLogger(__name__)

_COMMITTED_LEFTOVERS = (
    DOWNLOAD_JOURNAL_TMP_FILE,
    DOWNLOAD_JOURNAL_FILE,
    VERSION_TMP_FILE,
    VERSION_DISCARDED_FILE,
)
_PAUSED_LEFTOVERS = (DOWNLOAD_JOURNAL_TMP_FILE, VERSION_TMP_FILE)


@dataclass(frozen=True, slots=True)
class PartialDownload:
    """A download a restart interrupted; the runtime shows it as paused."""

    game_id: str
    version: str | None
    done_bytes: int
    """Bytes of the chunks the journal records as durable and verified."""
    total_bytes: int
    """Every payload byte of the manifest, the sentinel included."""
    manifest_digest: str
    """Compare with the manifest peers agree on now to decide whether it can resume."""

    @property
    def percent(self) -> float:
        """Done bytes as a percentage of the total, 0 to 100."""
        if self.total_bytes <= 0:
            return 0.0
        return 100.0 * self.done_bytes / self.total_bytes


def classify_partial(root: Path) -> PartialDownload | None:
    """The paused download of ``root``, or ``None`` (the settle table decides).

    A corrupt journal gives ``None`` and a logged warning (:func:`sweep_orphans`
    then discards it). Raises :class:`StorageError` when the disk refuses.
    """
    found = _read(root)
    if found.journal_error is not None:
        log.warning("ignoring the download journal of %s: %s", root, found.journal_error)
    journal = found.journal
    if journal is None or not decide_settle(found.facts).paused:
        return None
    return PartialDownload(
        game_id=journal.game_id,
        version=journal.version,
        done_bytes=journal.done_bytes,
        total_bytes=journal.total_bytes,
        manifest_digest=journal.manifest_digest,
    )


def sweep_orphans(root: Path) -> bool:
    """Delete the download leftovers of ``root`` that nothing will resolve; True if any.

    The settle table says what goes; deletes only what the root's ownership record
    proves lanspread created (:mod:`lanspread.files.ownership`): a root without a
    record, or with a record that is not ours, is never touched, whatever it holds.
    Never a root that is a link or not a folder (False). Raises
    :class:`StorageError` when a deletion fails; whatever is left is retried by the
    next start.
    """
    found = _read(root)
    if found.foreign_record is not None:
        log.warning("%s; nothing in %s is deleted", found.foreign_record, root)
    sweep = decide_settle(found.facts).sweep
    record = found.record
    if sweep is Sweep.NOTHING or record is None:
        return False
    if sweep is Sweep.COMMITTED_LEFTOVERS:
        return _drop(root, record, _COMMITTED_LEFTOVERS)
    if sweep is Sweep.PAUSED_LEFTOVERS:
        return _drop(root, record, _PAUSED_LEFTOVERS)
    if found.journal_error is not None:
        log.warning("discarding the payload of %s: %s", root, found.journal_error)
    report = sweep_owned(root, record)
    if report.removed:
        log.info("discarded orphaned download files of %s: %s", root, ", ".join(report.removed))
    return bool(report.removed)


@dataclass(frozen=True, slots=True)
class _Root:
    """What settling read of a root: the table's facts, and what it needs to act."""

    facts: SettleFacts
    journal: DownloadJournal | None = None
    journal_error: str | None = None
    """Why the journal cannot be trusted, when it is corrupt."""
    record: OwnershipRecord | None = None
    foreign_record: str | None = None
    """Why a file at the record's name is not lanspread's record, when it is not."""


def _read(root: Path) -> _Root:
    """The settle facts of ``root``; :class:`StorageError` when the disk refuses."""
    if not is_real_dir(root):
        return _Root(SettleFacts(real_dir=False))
    journal = journal_error = record = foreign = None
    try:
        journal = load(root)
    except JournalCorrupt as exc:
        journal_error = str(exc)
    try:
        record = load_record(root)
    except InTheWay as exc:
        foreign = str(exc)
    if journal is not None:
        state = Journal.VALID
    else:
        state = Journal.ABSENT if journal_error is None else Journal.CORRUPT
    facts = SettleFacts(
        real_dir=True,
        sentinel=is_regular_file(root / VERSION_FILE),
        journal=state,
        intent=_install_intent_recorded(root),
        record=record is not None,
    )
    return _Root(facts, journal, journal_error, record, foreign)


def probe_found(root: Path) -> FoundGame | None:
    """The *found, not from lanspread* state of ``root`` (see :func:`found_not_from_lanspread`).

    Reads only. Reports the reserved names lanspread did not write: an intent
    log or ownership record it cannot read, an intent temp that is not its own,
    and install folders without its marker. Raises :class:`StorageError` when
    the disk refuses.
    """
    if not is_real_dir(root):
        return None
    try:
        names = {child.name for child in root.iterdir()}
    except OSError as exc:
        raise StorageError(f"cannot list {root}: {exc.strerror or exc}") from exc
    foreign: list[str] = []
    try:
        has_record = load_record(root) is not None
    except InTheWay:
        has_record = False
        foreign.append(OWNERSHIP_FILE)
    try:
        read_intent(root)
    except IntentLogCorrupt:
        foreign.append(INTENT_FILE)
    if INTENT_TMP_FILE in names and not is_our_intent_temp(root):
        foreign.append(INTENT_TMP_FILE)
    accounted = (
        has_record
        or DOWNLOAD_JOURNAL_FILE in names
        or is_regular_file(root / VERSION_FILE)
        or is_real_dir(root / LOCAL_DIR)
    )
    if not accounted:
        # Decoding a large install record costs; only a found folder reports it.
        foreign.extend(foreign_record_files(root))
    foreign.extend(
        folder
        for folder in (INSTALLING_DIR, BACKUP_DIR)
        if is_real_dir(root / folder) and not has_marker(root / folder)
    )
    return found_not_from_lanspread(
        root.name,
        has_sentinel=is_regular_file(root / VERSION_FILE),
        installed=is_real_dir(root / LOCAL_DIR),
        has_record=has_record,
        paused=DOWNLOAD_JOURNAL_FILE in names,
        payload_names=[name for name in names if not is_reserved_name(name)],
        foreign_names=foreign,
        sentinel_name=VERSION_FILE,
        record_name=f"download record ({OWNERSHIP_FILE})",
    )


def _drop(root: Path, record: OwnershipRecord, names: tuple[str, ...]) -> bool:
    """Unlink the named transients the record proves ours; anything else is left alone."""
    dropped = [
        name for name in names if owned_transient(root, record, name) and unlink_synced(root / name)
    ]
    if dropped:
        log.info("dropped leftovers of %s: %s", root, ", ".join(dropped))
    return bool(dropped)


def _install_intent_recorded(root: Path) -> bool:
    try:
        return read_intent(root) is not Intent.NONE
    except IntentLogCorrupt:
        return True


__all__ = ["PartialDownload", "classify_partial", "probe_found", "sweep_orphans"]


def catalog_roots(game_dir: Path, catalog: Catalog) -> list[Path]:
    """The catalog game roots that exist as real directories."""
    roots = []
    for game in catalog:
        root = game_dir / game.id
        if root.is_dir() and not root.is_symlink():
            roots.append(root)
    return roots


def recover_install_state(game_dir: Path, catalog: Catalog) -> list[str]:
    """Recover every catalog root; returns the ids whose state needed work. Blocking."""
    touched = []
    for root in catalog_roots(game_dir, catalog):
        try:
            report = recover_game_root(root)
        except StorageError as exc:
            log.warning("cannot recover %s: %s", root, exc)
            continue
        if report.outcome is not RecoveryOutcome.CLEAN:
            log.warning("recovered %s: %s", root.name, report.outcome.value)
            touched.append(root.name)
    return touched
