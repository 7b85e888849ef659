"""The settings form's request and reply (``POST /api/settings``) and its bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from lanspread.core.uploads import check_limit
from lanspread.errors import ConfigError
from lanspread.storage.folders import browse_start
from lanspread.web.viewmodel import format_bytes


class SettingsReply(msgspec.Struct, frozen=True):
    display_name: str
    game_dir: str
    restarting: bool
    upload_limit: int = 0
    name_later: bool = False
    """The new name is saved and takes effect once the running downloads and installs
    are over (a restart now would cut them short)."""
    gaming_upload_cap: int = 0


class SettingsRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    display_name: str | None = None
    game_dir: str | None = None
    upload_limit: Annotated[int, msgspec.Meta(ge=0)] | None = None
    """Bytes a second (0: unlimited); ``core.uploads.check_limit`` bounds it."""
    gaming_upload_cap: Annotated[int, msgspec.Meta(ge=0)] | None = None
    """Bytes a second while a game launched here runs (0: no cap)."""


def bounded_limit(wanted: int | None, current: int, what: str) -> int:
    """``wanted`` when given and within ``core.uploads``' bounds, else ``current``."""
    if wanted is None:
        return current
    try:
        return check_limit(wanted, what)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def format_free_space(free: int | None) -> str:
    """ "412 GB free", or "free space unknown" where the system does not say."""
    return "free space unknown" if free is None else f"{format_bytes(free)} free"


def game_dir_from_form(text: str, home: Path) -> Path:
    """The game folder the form names: ``~`` is the player's home folder, a relative path
    is refused rather than resolved against wherever lanspread happened to start, and an
    empty one is refused."""
    if not text.strip():
        raise ConfigError("choose a folder for the games")
    return browse_start(text, home)
