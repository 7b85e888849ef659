"""Startup recovery: settle every game root a crash may have left half way.

Runs before the first scan, when no operation can be active. Install
transactions are settled from their intent log (:mod:`lanspread.install.sweep`);
nothing that is not provably lanspread's is touched.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lanspread.core.catalog import Catalog
from lanspread.core.recovery import RecoveryOutcome
from lanspread.errors import StorageError
from lanspread.install.sweep import recover_game_root

log = logging.getLogger(__name__)


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
