"""The player's persisted settings: display name, game directory, party code, upload limits.

Kept as ``settings.json`` in the state directory and replaced atomically, so a
crash leaves either the old or the new settings. A missing file means "first
run"; an unreadable or malformed one raises :class:`StorageError` naming the
file, and the caller decides whether to start over with the defaults.
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path
from typing import Annotated

import msgspec

from lanspread.core.uploads import DEFAULT_GAMING_CAP, MAX_LIMIT, UNLIMITED
from lanspread.errors import ConfigError, StorageError
from lanspread.files.atomic import atomic_write_bytes, sweep_temp

log = logging.getLogger(__name__)

SETTINGS_FILE_NAME = "settings.json"
SETTINGS_FORMAT = 1
# A name fits a peer list row and an mDNS TXT record (the runtime option has the same bound).
MAX_DISPLAY_NAME_LENGTH = 64
# Far above any real path, as for the set-game-dir command.
MAX_PATH_LENGTH = 4096
# A canonical party code is 24 characters; a little slack for nothing.
MAX_PARTY_CODE_LENGTH = 32
# Three short strings; anything near this size was not written by lanspread.
MAX_SETTINGS_FILE_SIZE = 64 * 1024


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int = SETTINGS_FORMAT
    display_name: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_DISPLAY_NAME_LENGTH)] | None
    ) = None
    game_dir: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PATH_LENGTH)] | None = None
    party_code: Annotated[str, msgspec.Meta(max_length=MAX_PARTY_CODE_LENGTH)] | None = None
    """The party joined with ``--party`` (canonical form); kept for the next starts."""
    upload_limit: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIMIT)] = UNLIMITED
    """Upload bytes a second in all (0: unlimited); ``core.uploads.check_limit`` bounds it."""
    gaming_upload_cap: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIMIT)] = DEFAULT_GAMING_CAP
    """Upload bytes a second while a game launched here runs (0: no cap)."""

    @property
    def complete(self) -> bool:
        """Both choices of the first-run screen were made."""
        return self.display_name is not None and self.game_dir is not None


def clean_display_name(value: str) -> str:
    """The name as other players will see it; :class:`ConfigError` when unusable."""
    name = " ".join(value.split())
    if not name:
        raise ConfigError("the display name must not be empty")
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ConfigError(f"the display name is longer than {MAX_DISPLAY_NAME_LENGTH} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ConfigError("the display name must not contain control characters")
    return name


class SettingsStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SETTINGS_FILE_NAME

    def load(self) -> Settings:
        """The saved settings; defaults (first run) when there is no file."""
        try:
            sweep_temp(self.path)
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_SETTINGS_FILE_SIZE + 1)
        except FileNotFoundError:
            return Settings()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if len(data) > MAX_SETTINGS_FILE_SIZE:
            raise StorageError(f"{self.path} is larger than {MAX_SETTINGS_FILE_SIZE} bytes")
        try:
            settings = msgspec.json.decode(data, type=Settings)
        except msgspec.ValidationError as exc:
            raise StorageError(f"{self.path} is not valid: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise StorageError(f"{self.path} is not JSON: {exc}") from exc
        if settings.format != SETTINGS_FORMAT:
            raise StorageError(
                f"{self.path} has format {settings.format}, expected {SETTINGS_FORMAT}"
            )
        return settings

    def load_or_default(self) -> Settings:
        """The saved settings, or the defaults (first run) when the file is unusable."""
        try:
            return self.load()
        except StorageError as exc:
            log.warning("starting with default settings: %s", exc)
            return Settings()

    def save(self, settings: Settings) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from exc
        atomic_write_bytes(self.path, msgspec.json.format(msgspec.json.encode(settings)))
