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
    return _usable_dir(resolved, "game directory", mode=0o777)


def prepare_state_dir(path: Path) -> Path:
    """The absolute, existing state directory (created with owner-only permissions)."""
    return _usable_dir(path.expanduser().absolute(), "state directory", mode=0o700)


def _usable_dir(resolved: Path, what: str, *, mode: int) -> Path:
    """``resolved`` made to exist as a readable, writable folder (created with ``mode``)."""
    if resolved.exists() and not resolved.is_dir():
        raise ConfigError(f"{what} {resolved} is a file, not a folder")
    try:
        resolved.mkdir(parents=True, exist_ok=True, mode=mode)
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {resolved}: {exc.strerror or exc}") from exc
    if not os.access(resolved, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {resolved} is not writable")
    return resolved.resolve()
