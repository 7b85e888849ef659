"""Validating and preparing a game directory chosen by the user."""

from __future__ import annotations

import os
from pathlib import Path

from lanspread.errors import ConfigError


def prepare_game_dir(path: Path) -> Path:
    """The absolute, existing, writable game directory for ``path`` (created if missing).

    Raises :class:`ConfigError` with a message a player can act on.
    """
    resolved = path.expanduser()
    if not resolved.is_absolute():
        resolved = Path.cwd() / resolved
    if resolved.exists() and not resolved.is_dir():
        raise ConfigError(f"game directory {resolved} is a file, not a folder")
    try:
        resolved.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create game directory {resolved}: {exc.strerror or exc}"
        ) from exc
    if not os.access(resolved, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"game directory {resolved} is not writable")
    return resolved.resolve()


def prepare_state_dir(path: Path) -> Path:
    """The absolute, existing state directory (created with owner-only permissions)."""
    resolved = path.expanduser().absolute()
    if resolved.exists() and not resolved.is_dir():
        raise ConfigError(f"state directory {resolved} is a file, not a folder")
    try:
        resolved.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create state directory {resolved}: {exc.strerror or exc}"
        ) from exc
    if not os.access(resolved, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"state directory {resolved} is not writable")
    return resolved.resolve()
