"""The settings form's request and reply (``POST /api/settings``) and its bounds."""

from __future__ import annotations

from typing import Annotated

import msgspec

from lanspread.core.uploads import check_limit
from lanspread.errors import ConfigError


class SettingsReply(msgspec.Struct, frozen=True):
    display_name: str
    game_dir: str
    restarting: bool
    upload_limit: int = 0
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
