"""A download's blocking steps on its game root: prepare, settle an ending, recover.

:class:`~lanspread.runtime.downloads.DownloadManager` keeps what the player sees of
a download; these functions do what the disk must do at its start, at its end
and when a game directory is settled, and report what they found there. Every
one is blocking; the manager runs them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lanspread.core.library import FoundGame
from lanspread.core.manifest import GameManifest, manifest_digest
from lanspread.core.planning import ChunkKey
from lanspread.download.journal import DownloadJournal, JournalCorrupt
from lanspread.download.journal import load as load_journal
from lanspread.download.prepare import prepare_game_storage
from lanspread.download.reuse import copy_chunks, reusable_chunks
from lanspread.errors import StorageError
from lanspread.files.ownership import claim_download, identify
from lanspread.files.sentinel import begin_update
from lanspread.files.staging import (
    drop_staging,
    game_root_of,
    is_staged_root,
    staged_root,
    staged_version,
)
from lanspread.runtime.staging import settle_staged
from lanspread.runtime.startup import PartialDownload, classify_partial, probe_found, sweep_orphans

log = logging.getLogger(__name__)


def prepare_download(
    root: Path, manifest: GameManifest, stopped: Callable[[], bool], adopt: bool
) -> tuple[DownloadJournal, set[ChunkKey]]:
    """Resume from a matching journal, or start a new one; the journal and the chunks done.

    Ownership first: every name the download creates is claimed durably
    before anything is created (a player's file in the way refuses the
    download), and identified once created, before the first payload byte.
    """
    record = claim_download(root, manifest, adopt=adopt)
    try:
        journal = load_journal(root)
    except JournalCorrupt as exc:
        log.warning("ignoring the download journal of %s: %s", root, exc)
        journal = None
    if journal is not None and journal.manifest_digest == manifest_digest(manifest):
        try:
            prepare_game_storage(root, manifest, owned=record)
        finally:
            identify(root, record)  # releases the claims of names never made
        return journal, set(journal.done_keys)
    # Journal first: a crash from here on leaves a paused download, not an orphan.
    begin_update(root)
    fresh = DownloadJournal.create(root, manifest)
    reused = reusable_chunks(root, manifest, stopped)
    fresh.mark_done(reused)
    fresh.commit_durable(sorted({path for path, _ in reused}))
    try:
        prepare_game_storage(root, manifest, owned=record)
    finally:
        identify(root, record)  # releases the claims of names never made
    if is_staged_root(root):  # the old version's unchanged bytes, copied, never moved
        copied = copy_chunks(game_root_of(root), root, manifest, stopped) - reused
        fresh.mark_done(copied)
        fresh.commit_durable(sorted({path for path, _ in copied}))
        reused |= copied
    return fresh, reused


@dataclass(frozen=True, slots=True)
class RootState:
    """What a game root holds of downloads once settled."""

    partial: PartialDownload | None = None
    """The paused download (of the root, or of its staged update)."""
    found: FoundGame | None = None
    """The root as a folder lanspread did not make."""
    ready: str | None = None
    """The version of a verified update staged beside the game."""
    failure: str | None = None
    """Why settling an ending failed part way (what it left is in ``partial``)."""


def recover_root(root: Path) -> RootState:
    """Settle ``root`` as at a start: its staged update first (a cut-short move leaves no
    sentinel), then its orphans; raises :class:`StorageError` when the disk refuses."""
    staged = settle_staged(root)
    sweep_orphans(root)
    partial = staged or classify_partial(root)
    return RootState(partial=partial, found=probe_found(root), ready=staged_version(root))


def settle_ending(
    root: Path, step: Callable[[Path], PartialDownload | None], *, staged: bool
) -> RootState:
    """Run an ending's disk ``step`` on ``root`` (or its staged root): the paused download
    it leaves and the found folder. A staged update that left nothing to resume is dropped.

    A disk that refuses part way is logged and reported as ``failure``, with whatever the
    step left (still the truth to show, and to discard again).
    """
    target = staged_root(root) if staged else root
    try:
        partial = step(target)
        if staged and partial is None:
            drop_staging(root)
        return RootState(partial=partial, found=probe_found(root))
    except (StorageError, OSError) as exc:
        log.warning("cleaning up after the download of %s failed: %s", root.name, exc)
        return RootState(partial=classify_or_none(target), failure=str(exc))


def classify_or_none(root: Path) -> PartialDownload | None:
    """The paused download of ``root``, or ``None`` when the disk refuses to tell."""
    try:
        return classify_partial(root)
    except StorageError as exc:
        log.warning("cannot inspect the download state of %s: %s", root, exc)
        return None
