"""The on-disk contract of a game root, as pure rules over what a scan saw.

A game root is ``<game_dir>/<game_id>/``. Its children fall in three groups:

* **installer-owned** names that survive every download cleanup: ``local/`` (the
  extracted game), the install transaction's ``.local.installing/`` and
  ``.local.backup/``, the install intent log ``.lanspread.json``, the install
  record ``.lanspread.install.json`` (what the install extracted, see
  :mod:`lanspread.core.install_record`) and its pending successor
  ``.lanspread.install.next.json``, an external installer's
  ``.softlan_game_installed`` and external sync tooling's ``.sync/``;
* **transients** of the version sentinel and download transactions:
  ``.version.ini.tmp``, ``.version.ini.discarded`` and the download journal;
* the download **ownership record** ``.lanspread.files.json``
  (:mod:`lanspread.files.ownership`): what a download created, the only
  proof any sweep deletes by;
* the **staged update** ``.lanspread.update/<game_id>/``: an update's download
  beside the old payload, itself a game root with its own ownership record,
  journal and sentinel (:mod:`lanspread.files.staging`), named in the root's
  ownership record; the old version stays served and playable until the new
  one is verified and installed, then the staged files are moved in;
* everything else is **payload**, owned by the peer: the ``.eti`` archives, the
  root ``version.ini`` sentinel and any nested payload folders.

A game is *downloaded* iff a regular file named exactly ``version.ini`` sits at
the root (a nested one never counts, a symlink never counts). It is *installed*
iff ``local`` is a real directory.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

VERSION_FILE = "version.ini"
LOCAL_DIR = "local"
INSTALLING_DIR = ".local.installing"
BACKUP_DIR = ".local.backup"
INTENT_FILE = ".lanspread.json"
INTENT_TMP_FILE = ".lanspread.json.tmp"
"""The intent log's atomic-write temp file; a crash may leave it behind."""
INSTALL_RECORD_FILE = ".lanspread.install.json"
"""What the committed install extracted: files, sizes, hashes and the installed version."""
INSTALL_RECORD_NEXT_FILE = ".lanspread.install.next.json"
"""The record of an install or update in flight; renamed over the record after the commit."""
INSTALL_RECORD_TMP_FILE = ".lanspread.install.next.json.tmp"
"""The pending record's atomic-write temp file; a crash may leave it behind."""
SOFTLAN_MARKER = ".softlan_game_installed"
SYNC_DIR = ".sync"
VERSION_TMP_FILE = ".version.ini.tmp"
VERSION_DISCARDED_FILE = ".version.ini.discarded"
DOWNLOAD_JOURNAL_FILE = ".lanspread.download.json"
DOWNLOAD_JOURNAL_TMP_FILE = ".lanspread.download.json.tmp"
"""The download journal's atomic-write temp file; a crash may leave it behind."""
UPDATE_DIR = ".lanspread.update"
"""The staged update's folder; the staged download root is ``UPDATE_DIR/<game_id>``."""
OWNED_MARKER = ".lanspread_owned"
OWNERSHIP_FILE = ".lanspread.files.json"
"""The download ownership record: every name a download claimed before creating it."""
OWNERSHIP_TMP_FILE = ".lanspread.files.json.tmp"
"""The ownership record's atomic-write temp file; a crash may leave it behind."""
ARCHIVE_SUFFIX = ".eti"

# A version.ini is a few bytes; anything larger is not a sentinel we read whole.
MAX_VERSION_FILE_SIZE = 4096
MAX_VERSION_LENGTH = 64

INSTALLER_OWNED_NAMES = frozenset(
    {
        LOCAL_DIR,
        INSTALLING_DIR,
        BACKUP_DIR,
        INTENT_FILE,
        INSTALL_RECORD_FILE,
        INSTALL_RECORD_NEXT_FILE,
        SOFTLAN_MARKER,
        SYNC_DIR,
    }
)
"""Children that a download cleanup (cancel, discard, startup sweep) never touches."""

TRANSIENT_NAMES = frozenset(
    {
        VERSION_TMP_FILE,
        VERSION_DISCARDED_FILE,
        DOWNLOAD_JOURNAL_FILE,
        DOWNLOAD_JOURNAL_TMP_FILE,
        INTENT_TMP_FILE,
        INSTALL_RECORD_TMP_FILE,
    }
)

OWNERSHIP_NAMES = frozenset({OWNERSHIP_FILE, OWNERSHIP_TMP_FILE})
"""The ownership record and its temp file: lanspread's proof, never payload, never swept."""

STAGING_NAMES = frozenset({UPDATE_DIR})
"""The staged update: lanspread's while the root's ownership record names it."""

RESERVED_NAMES = INSTALLER_OWNED_NAMES | TRANSIENT_NAMES | OWNERSHIP_NAMES | STAGING_NAMES
"""Children that are never payload: never served, never counted, never swept as payload."""


def is_reserved_name(name: str) -> bool:
    return name in RESERVED_NAMES


def is_payload_name(name: str) -> bool:
    """True for root children owned by the peer's payload (including ``version.ini``)."""
    return name not in RESERVED_NAMES


class EntryKind(enum.Enum):
    """What ``lstat`` says a root child is. Links are never followed."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class RootEntry:
    """One direct child of a game root as a scan saw it."""

    name: str
    kind: EntryKind
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class RootState:
    """What the rules conclude about a game root."""

    downloaded: bool
    installed: bool
    has_payload: bool
    """Payload other than the sentinel exists (archives or payload folders)."""


def classify_root(entries: Iterable[RootEntry]) -> RootState:
    by_name = {entry.name: entry for entry in entries}
    sentinel = by_name.get(VERSION_FILE)
    local = by_name.get(LOCAL_DIR)
    return RootState(
        downloaded=sentinel is not None and sentinel.kind is EntryKind.FILE,
        installed=local is not None and local.kind is EntryKind.DIR,
        has_payload=any(is_payload_name(name) and name != VERSION_FILE for name in by_name),
    )


def parse_version_text(text: str) -> str | None:
    """The version a ``version.ini`` declares.

    An INI-style ``version = X`` key (in any section) wins; otherwise the first
    line that is not blank, a comment or a section header. Unknown or empty gives
    ``None``. Control characters are dropped and the result is bounded.
    """
    fallback: str | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip().lstrip("\ufeff")
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("[") and line.endswith("]"):
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "version":
            return _clean_version(value)
        if fallback is None and not sep:
            fallback = _clean_version(line)
    return fallback


def _clean_version(value: str) -> str | None:
    cleaned = "".join(ch for ch in value.strip().strip('"') if ch.isprintable())[
        :MAX_VERSION_LENGTH
    ].strip()
    return cleaned or None


def version_sort_key(version: str | None) -> tuple[tuple[int, int | str], ...]:
    """Order versions naturally: ``"1.10" > "1.9"``, ``"20240102" > "20231231"``.

    ``None`` (unknown) sorts below every known version.
    """
    if version is None:
        return ()
    key: list[tuple[int, int | str]] = []
    token = ""
    for ch in version:
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        if ch.isdecimal() != (token[:1].isdecimal() if token else ch.isdecimal()):
            key.append(_token_key(token))
            token = ""
        token += ch
    if token:
        key.append(_token_key(token))
    return tuple(key)


def _token_key(token: str) -> tuple[int, int | str]:
    # Runs of digits compare as numbers; tagging keeps numbers and words comparable.
    if token.isdecimal():
        return (1, int(token))
    return (0, token.lower())
