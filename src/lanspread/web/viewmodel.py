"""The UI view model: facts in, everything the page draws out.

Theory of operation
-------------------
The page is a thin renderer: it never decides what a card says. This module turns
a :class:`ViewInput` (the catalog, the runtime's authoritative game views and
operation table, and the overlays the UI state store keeps) into a
:class:`ViewModel` of labels, action states and progress numbers, ready for JSON.
No I/O and no clock: the same input always gives the same view.

One card's primary action, first match wins:

=========================  ======================================================
fact                       action
=========================  ======================================================
operation ``downloading``  Downloading (fill and label: percent; detail: speed)
operation ``installing``   Installing (fill: percent once extraction reports it)
operation ``updating``     Updating (likewise)
operation ``uninstalling`` Uninstalling
operation ``removing``     Removing files
running                    Running
pending download/update    Checking peers: the optimistic answer to a click only
paused download            Resume (fill: the percentage already on disk; the card
                           notes "Paused at N% — why")
failed download            Retry (the card shows the failure)
found, not from lanspread  Folder in the way (no command: a download would refuse to
                           write into the player's folder; the card and the detail
                           view say why and offer only View files)
update available           Update
installed                  Play (Installed when the catalog names no executable)
downloaded                 Install
a peer has it              Download
otherwise                  Unavailable
=========================  ======================================================

A paused or failed download comes from the runtime's game snapshot
(``GameView.download_state``), never from events, so it survives a restart of the
runtime and of the page alike; Discard (the ``cancel`` command, which runs the
download's own sweep) is offered in the detail view whenever files of it are on disk.

Overlays never decide the state on their own. The operation table does: download
progress is drawn only while the operation is ``downloading``, install progress
only while it is ``installing`` or ``updating``, and a pending click only while no
operation runs. So a missed lifecycle event can never leave a spinner behind: the
next snapshot shows the truth.
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from lanspread.core.catalog import CatalogGame
from lanspread.runtime.replies import UninstallPlan, VerifyReply

# -- facts in --------------------------------------------------------------------------


class RuntimeState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class DownloadSample:
    """The latest ``DownloadProgress`` of a game."""

    downloaded_bytes: int
    total_bytes: int
    bytes_per_second: float
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class InstallSample:
    """The latest ``InstallProgress`` of a game."""

    extracted_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """One remote peer that reports a game."""

    peer_id: str
    name: str
    addr: str
    version: str | None
    ready: bool
    """Downloaded on that peer, so it can serve the files (``LocalOnly`` peers cannot)."""


@dataclass(frozen=True, slots=True)
class GameFacts:
    """Everything known about one catalog game."""

    game: CatalogGame
    downloaded: bool = False
    installed: bool = False
    local_version: str | None = None
    operation: str | None = None
    """The operation table's kind for the game (authoritative), ``None`` when idle."""
    peer_count: int = 0
    latest_version: str | None = None
    update_available: bool = False
    installed_version: str | None = None
    """The version ``local/`` holds (its install record); may trail ``local_version``."""
    sources: tuple[SourceFacts, ...] = ()
    has_cover: bool = False
    download: DownloadSample | None = None
    install: InstallSample | None = None
    paused_percent: float | None = None
    """A resumable download's completed share (0-100), ``None`` when nothing is paused."""
    paused_reason: str | None = None
    """Why the download is paused, in the runtime's words ("interrupted by a restart")."""
    failed_reason: str | None = None
    """Why the last download failed (from the runtime's snapshot), ``None`` otherwise."""
    discardable: bool = False
    """Files of a paused or failed download are on disk; ``cancel`` discards them."""
    running: bool = False
    last_error: str | None = None
    """Why the last install, uninstall or removal failed, until the next one starts."""
    pending: str | None = None
    """A download or update command sent from the page and not yet answered."""
    found_reason: str | None = None
    """Why a folder named like the game is *found, not from lanspread* (left alone)."""
    excluded_peers: tuple[str, ...] = ()
    """Peers (ids) that sent corrupt bytes for the game: not downloaded from until a restart."""


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """An install, update, repair or uninstall that ended keeping the player's files."""

    id: int
    """Increases with every notice of this process: the page shows each id once."""
    game_id: str
    kept: tuple[str, ...] = ()
    """The player's files kept at their own path (relative to ``local/``)."""
    renamed: tuple[tuple[str, str], ...] = ()
    """The player's changed copies of shipped files: (path, kept as)."""
    uninstalled: bool = False


@dataclass(frozen=True, slots=True)
class PeerFacts:
    peer_id: str
    name: str
    addr: str
    games: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SelfFacts:
    name: str
    peer_id: str
    listen_addr: str
    game_dir: str


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    state: RuntimeState
    component: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ViewInput:
    games: tuple[GameFacts, ...]
    runtime: RuntimeFacts
    peers: tuple[PeerFacts, ...] = ()
    me: SelfFacts | None = None
    setup_needed: bool = False
    """No settings saved yet: the page shows the first-run screen."""
    setup_game_dir: str = ""
    setup_name: str = ""
    notices: tuple[NoticeFacts, ...] = ()


# -- view out --------------------------------------------------------------------------


class ActionKind(enum.Enum):
    DOWNLOAD = "download"
    CHECKING = "checking"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    FAILED = "failed"
    INSTALL = "install"
    INSTALLING = "installing"
    UPDATING = "updating"
    UNINSTALLING = "uninstalling"
    REMOVING = "removing"
    PLAY = "play"
    RUNNING = "running"
    UPDATE = "update"
    INSTALLED = "installed"
    FOUND = "found"
    UNAVAILABLE = "unavailable"


class Action(msgspec.Struct, frozen=True):
    kind: str
    label: str
    command: str | None
    """The command the button sends (``{"cmd": command, "game": id}``); ``None``: a state."""
    busy: bool
    percent: float | None = None
    """Fill of the button, 0-100."""
    detail: str | None = None
    """Second text on the button: the download speed, or the paused share."""


class ProgressView(msgspec.Struct, frozen=True):
    kind: str
    """``download`` or ``install``."""
    percent: float
    percent_label: str
    done_label: str
    speed_label: str | None
    eta_label: str | None
    can_cancel: bool


class SecondaryAction(msgspec.Struct, frozen=True):
    id: str
    label: str
    command: str | None
    """A runtime command, or ``None`` for ``view-files`` (a local UI action).

    Two ids open a dialog of their own before any command: ``verify`` asks the
    server to check the files and shows the result inline, ``uninstall`` fetches
    the uninstall plan and asks with what it deletes and keeps."""
    aria_label: str = ""
    """What a screen reader says: the label with the game's name."""
    danger: bool = False
    confirm: str | None = None
    """When set, the page asks this question before sending the command."""


class StatusView(msgspec.Struct, frozen=True):
    label: str
    tone: str
    """``ok``, ``info``, ``warn``, ``busy``, ``error``, ``muted``; ``none``: no pill drawn."""
    reason: str | None = None
    """Why the game stands so, when the label alone does not say (a found folder)."""


class Artwork(msgspec.Struct, frozen=True):
    cover_url: str | None
    color_a: str
    color_b: str
    angle: int
    pattern: int
    monogram: str


class SourceView(msgspec.Struct, frozen=True):
    name: str
    addr: str
    initials: str
    color: str
    version_label: str
    ready: bool


class CardView(msgspec.Struct, frozen=True):
    id: str
    name: str
    genre: str
    description: str
    size_label: str
    max_players: int
    players_label: str
    peer_count: int
    peers_label: str
    version_label: str
    art: Artwork
    status: StatusView
    action: Action
    progress: ProgressView | None
    error: str | None
    note: str | None
    """A line under the button: where a paused download stopped and why, or why a
    found folder is not lanspread's."""
    explanation: str | None
    """A paragraph for the detail view (a found folder: what lanspread does with it)."""
    distrust_note: str | None
    """A line for the detail view naming the peers that sent corrupt data for the game."""
    actions: tuple[SecondaryAction, ...]
    sources: tuple[SourceView, ...]
    installed: bool
    downloadable: bool
    update: bool
    search: str
    """Lower-case text the search box matches against."""


class PeerView(msgspec.Struct, frozen=True):
    peer_id: str
    name: str
    addr: str
    initials: str
    color: str
    games: tuple[str, ...]
    """Catalog names of the peer's games."""
    games_label: str


class SelfView(msgspec.Struct, frozen=True):
    name: str
    peer_id: str
    listen_addr: str
    game_dir: str


class RuntimeView(msgspec.Struct, frozen=True):
    state: str
    message: str | None
    can_restart: bool


class SetupView(msgspec.Struct, frozen=True):
    needed: bool
    game_dir: str
    display_name: str


class FilterCounts(msgspec.Struct, frozen=True):
    all: int
    installed: int
    downloadable: int
    updates: int


class NoticeView(msgspec.Struct, frozen=True):
    """A toast the page shows once: what an install or uninstall kept of the player's."""

    id: int
    title: str
    text: str


class FileListView(msgspec.Struct, frozen=True):
    """The first few paths of a list and how many more there are."""

    paths: tuple[str, ...]
    more_label: str | None
    """ "and N more" when the list was cut; ``None`` otherwise."""


class UninstallDialogView(msgspec.Struct, frozen=True):
    """The uninstall confirmation, from the runtime's dry run."""

    game: str
    title: str
    text: str
    delete_label: str
    """What the uninstall deletes with the checkbox clear: "Deletes 1,234 files, 2.1 GB"."""
    keep_delete_label: str
    """What it deletes with the checkbox ticked (the player's files stay)."""
    players_title: str | None
    """ "Your own files here (saves, settings): 3"; ``None`` when there are none."""
    players: FileListView
    keep_label: str
    keep_offered: bool
    """The checkbox is drawn: the install record tells the player's files apart."""
    keep_default: bool
    confirm_label: str
    keep_aria_label: str


class VerifyView(msgspec.Struct, frozen=True):
    """The inline result of Verify files."""

    game: str
    ok: bool
    headline: str
    tone: str
    """``ok`` or ``warn``."""
    changed_title: str | None
    changed: FileListView
    missing_title: str | None
    missing: FileListView
    players_label: str | None
    """The player's own files, counted apart: they are never damage."""
    can_repair: bool
    repair_note: str | None
    """Why Repair is not offered although something is wrong."""
    repair_label: str
    repair_aria_label: str
    repair_title: str
    repair_confirm: str


class ViewModel(msgspec.Struct, frozen=True):
    games: tuple[CardView, ...]
    peers: tuple[PeerView, ...]
    me: SelfView | None
    runtime: RuntimeView
    setup: SetupView
    counts: FilterCounts
    notices: tuple[NoticeView, ...] = ()


# -- labels ----------------------------------------------------------------------------

_BYTE_UNITS = ("KB", "MB", "GB", "TB", "PB")
_SECONDS_PER_MINUTE = 60
_SECONDS_PER_HOUR = 3600
# Beyond this an ETA is noise (a stalled or crawling link): say so instead of a number.
MAX_ETA_HOURS = 99


def format_bytes(count: int) -> str:
    """Decimal units with at most three significant digits: ``"2.1 GB"``, ``"480 MB"``."""
    if count < 1000:
        return f"{max(count, 0)} B"
    value = float(count)
    for unit in _BYTE_UNITS:
        value /= 1000
        if value < 999.5 or unit == _BYTE_UNITS[-1]:
            break
    return f"{value:.1f} {unit}" if value < 99.95 else f"{value:.0f} {unit}"


def format_speed(bytes_per_second: float) -> str:
    """``"12.5 MB/s"``; a negative or non-finite speed reads as zero."""
    if not math.isfinite(bytes_per_second) or bytes_per_second < 0:
        bytes_per_second = 0.0
    return f"{format_bytes(round(bytes_per_second))}/s"


def format_eta(seconds: float | None) -> str | None:
    """``"42s"``, ``"3m 05s"``, ``"1h 12m"``; ``None`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    whole = math.ceil(seconds)
    if whole >= MAX_ETA_HOURS * _SECONDS_PER_HOUR:
        return f"more than {MAX_ETA_HOURS}h"
    if whole < _SECONDS_PER_MINUTE:
        return f"{whole}s"
    if whole < _SECONDS_PER_HOUR:
        minutes, rest = divmod(whole, _SECONDS_PER_MINUTE)
        return f"{minutes}m {rest:02d}s"
    hours, rest = divmod(whole, _SECONDS_PER_HOUR)
    return f"{hours}h {rest // _SECONDS_PER_MINUTE:02d}m"


def percent_of(done: int, total: int) -> float:
    """Share of ``total`` done, clamped to 0-100 (0 for an empty total)."""
    if total <= 0:
        return 0.0
    return min(max(done / total * 100.0, 0.0), 100.0)


def format_percent(percent: float) -> str:
    """Whole percent, rounded down: a bar never says 100% before it is done."""
    return f"{math.floor(min(max(percent, 0.0), 100.0))}%"


def count_label(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


# -- artwork ---------------------------------------------------------------------------

_STOP_WORDS = frozenset({"a", "an", "and", "of", "the", "to"})
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
ARTWORK_PATTERNS = 4


def monogram(name: str) -> str:
    """Up to two capitals for artwork and avatars: ``"Age of Empires II"`` gives ``"AE"``."""
    words: list[str] = _WORD_RE.findall(name)
    significant = [word for word in words if word.lower() not in _STOP_WORDS] or words
    if not significant:
        return "?"
    if len(significant) == 1:
        return significant[0][:2].upper()
    return (significant[0][0] + significant[1][0]).upper()


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()


def artwork(game_id: str, name: str, cover_url: str | None) -> Artwork:
    """A deterministic two-colour gradient and monogram derived from the game id."""
    digest = _digest(game_id)
    hue = int.from_bytes(digest[0:2], "big") % 360
    shift = 35 + digest[2] % 60
    return Artwork(
        cover_url=cover_url,
        color_a=f"hsl({hue} 70% 42%)",
        color_b=f"hsl({(hue + shift) % 360} 75% 18%)",
        angle=115 + digest[3] % 110,
        pattern=digest[4] % ARTWORK_PATTERNS,
        monogram=monogram(name),
    )


def avatar_color(peer_id: str) -> str:
    return f"hsl({int.from_bytes(_digest(peer_id)[0:2], 'big') % 360} 60% 45%)"


# -- cards -----------------------------------------------------------------------------

_BUSY_OPERATIONS = {
    "installing": (ActionKind.INSTALLING, "Installing"),
    "updating": (ActionKind.UPDATING, "Updating"),
    "uninstalling": (ActionKind.UNINSTALLING, "Uninstalling"),
    "removing": (ActionKind.REMOVING, "Removing files"),
}
_OPTIMISTIC_COMMANDS = frozenset({"download", "update"})


def download_percent(facts: GameFacts) -> float | None:
    """Download progress, drawn only while the operation table says ``downloading``."""
    if facts.operation != "downloading" or facts.download is None:
        return None
    return percent_of(facts.download.downloaded_bytes, facts.download.total_bytes)


def install_percent(facts: GameFacts) -> float | None:
    """Extraction progress, drawn only while the game installs or updates."""
    if facts.operation not in {"installing", "updating"} or facts.install is None:
        return None
    return percent_of(facts.install.extracted_bytes, facts.install.total_bytes)


def primary_action(facts: GameFacts) -> Action:
    """The card's one button; see the table in the module docstring."""
    operation = facts.operation
    if operation == "downloading":
        return _downloading_action(facts)
    if operation in _BUSY_OPERATIONS:
        kind, label = _BUSY_OPERATIONS[operation]
        percent = install_percent(facts)
        detail = format_percent(percent) if percent is not None else None
        return Action(kind.value, label, None, busy=True, percent=percent, detail=detail)
    if operation is not None:
        return Action(ActionKind.CHECKING.value, operation.capitalize(), None, busy=True)
    if facts.running:
        return Action(ActionKind.RUNNING.value, "Running", None, busy=False)
    if facts.pending in _OPTIMISTIC_COMMANDS:
        return Action(ActionKind.CHECKING.value, "Checking peers", None, busy=True)
    if facts.paused_percent is not None:
        percent = min(max(facts.paused_percent, 0.0), 100.0)
        return Action(
            ActionKind.PAUSED.value, "Resume", "download", False, percent, format_percent(percent)
        )
    if facts.failed_reason is not None:
        # A downloaded game (its update failed) is refused a plain download: retry the update.
        command = "update" if facts.downloaded else "download"
        return Action(ActionKind.FAILED.value, "Retry", command, busy=False)
    if _found(facts):
        return Action(ActionKind.FOUND.value, "Folder in the way", None, busy=False)
    return _idle_action(facts)


# The card's words for a folder lanspread did not make (the runtime's own label
# is "Found, not from lanspread"; the card sets it as a heading).
FOUND_STATUS = "Found — not from lanspread"
FOUND_EXPLANATION = (
    "lanspread never changes or deletes this folder. "
    "To download the game here, move the folder away."
)


def _found(facts: GameFacts) -> bool:
    """A folder named like the game that lanspread did not make, and nothing else here."""
    return facts.found_reason is not None and not (facts.downloaded or facts.installed)


def paused_note(facts: GameFacts) -> str | None:
    """ "Paused at N% — why" for a paused download while nothing runs on the game;
    for a found folder, why it is not lanspread's ("no version.ini, …")."""
    if facts.operation is None and _found(facts) and facts.paused_percent is None:
        reason = facts.found_reason or ""
        return reason[:1].upper() + reason[1:]
    if facts.paused_percent is None or facts.operation is not None:
        return None
    where = f"Paused at {format_percent(min(max(facts.paused_percent, 0.0), 100.0))}"
    return f"{where} — {facts.paused_reason}" if facts.paused_reason else where


def distrust_note(facts: GameFacts) -> str | None:
    """ "Not downloading from bravo: it sent corrupt data", by the peers' names (the id
    of a peer no longer seen); ``None`` when every peer is trusted."""
    if not facts.excluded_peers:
        return None
    names = {source.peer_id: source.name for source in facts.sources}
    listed = ", ".join(names.get(peer, peer) for peer in facts.excluded_peers)
    they = "it" if len(facts.excluded_peers) == 1 else "they"
    return f"Not downloading from {listed}: {they} sent corrupt data"


def error_of(facts: GameFacts) -> str | None:
    """The failure the card shows: the last operation's, else the failed download's."""
    if facts.last_error is not None:
        return facts.last_error
    if facts.failed_reason is not None and facts.operation is None:
        return f"Download failed: {facts.failed_reason}"
    return None


def _downloading_action(facts: GameFacts) -> Action:
    """Percent as the label and the current speed beside it (the pill says "Downloading")."""
    percent = download_percent(facts)
    if percent is None or facts.download is None:
        return Action(ActionKind.DOWNLOADING.value, "Downloading", None, busy=True, percent=0.0)
    speed = format_speed(facts.download.bytes_per_second)
    return Action(ActionKind.DOWNLOADING.value, format_percent(percent), None, True, percent, speed)


def _idle_action(facts: GameFacts) -> Action:
    if facts.update_available:
        return Action(ActionKind.UPDATE.value, "Update", "update", busy=False)
    if facts.installed:
        if facts.game.executable is None:
            return Action(ActionKind.INSTALLED.value, "Installed", None, busy=False)
        return Action(ActionKind.PLAY.value, "Play", "play", busy=False)
    if facts.downloaded:
        return Action(ActionKind.INSTALL.value, "Install", "install", busy=False)
    if facts.peer_count > 0:
        return Action(ActionKind.DOWNLOAD.value, "Download", "download", busy=False)
    return Action(ActionKind.UNAVAILABLE.value, "Unavailable", None, busy=False)


def status_of(facts: GameFacts, action: Action) -> StatusView:
    """The pill on the artwork: where the game stands, in one or two words."""
    if action.kind == ActionKind.DOWNLOADING.value:
        return StatusView("Downloading", "busy")
    if action.busy:
        return StatusView(action.label, "busy")
    if facts.running:
        return StatusView("Running", "ok")
    if facts.paused_percent is not None:
        return StatusView("Paused", "warn")
    if facts.last_error is not None or facts.failed_reason is not None:
        return StatusView("Failed", "error")
    if facts.found_reason is not None:
        return StatusView(FOUND_STATUS, "warn", facts.found_reason)
    if facts.update_available:
        return StatusView("Update available", "info")
    if facts.installed:
        return StatusView("Installed", "ok")
    if facts.downloaded:
        return StatusView("Ready to install", "info")
    if facts.peer_count > 0:
        return StatusView("On the network", "muted")
    return StatusView("Not on the network", "none")


def progress_of(facts: GameFacts) -> ProgressView | None:
    """The detail view's progress panel: bytes, speed, ETA and percent."""
    download = facts.download
    percent = download_percent(facts)
    if percent is not None and download is not None:
        return ProgressView(
            kind="download",
            percent=percent,
            percent_label=format_percent(percent),
            done_label=(
                f"{format_bytes(download.downloaded_bytes)} of {format_bytes(download.total_bytes)}"
            ),
            speed_label=format_speed(download.bytes_per_second),
            eta_label=format_eta(download.eta_seconds),
            can_cancel=True,
        )
    install = facts.install
    percent = install_percent(facts)
    if percent is not None and install is not None:
        return ProgressView(
            kind="install",
            percent=percent,
            percent_label=format_percent(percent),
            done_label=(
                f"{format_bytes(install.extracted_bytes)} of {format_bytes(install.total_bytes)}"
            ),
            speed_label=None,
            eta_label=None,
            can_cancel=False,
        )
    return None


def secondary_actions(facts: GameFacts, primary: Action) -> tuple[SecondaryAction, ...]:
    """The detail view's extra actions; the primary command is never repeated."""
    actions: list[SecondaryAction] = []
    idle = facts.operation is None and facts.pending is None
    if facts.operation == "downloading":
        actions.append(SecondaryAction("cancel", "Cancel download", "cancel", danger=True))
    if idle and not facts.running:
        if facts.installed and facts.game.executable is not None:
            actions.append(SecondaryAction("play", "Play", "play"))
        if facts.downloaded and not facts.installed:
            actions.append(SecondaryAction("install", "Install", "install"))
        if facts.installed:
            actions.append(
                SecondaryAction(
                    "uninstall",
                    "Uninstall",
                    "uninstall",
                    danger=True,
                    confirm=uninstall_text(facts.game.name),
                )
            )
        if facts.downloaded and not facts.installed:
            actions.append(
                SecondaryAction(
                    "remove",
                    "Remove files",
                    "remove",
                    danger=True,
                    confirm=(
                        f"Remove the downloaded files of {facts.game.name}? Getting them "
                        f"back means downloading {format_bytes(facts.game.size_bytes)} "
                        "from peers again, which can take a long time."
                    ),
                )
            )
    if idle and facts.discardable:
        which = "failed" if facts.failed_reason is not None else "paused"
        actions.append(
            SecondaryAction(
                "discard",
                "Discard download",
                "cancel",
                danger=True,
                confirm=(
                    f"Discard the {which} download of {facts.game.name}? The part already "
                    "downloaded is deleted; getting it back means downloading it again."
                ),
            )
        )
    if idle and not facts.running and facts.installed:
        actions.append(SecondaryAction("verify", "Verify files", "verify"))
    if facts.downloaded or facts.installed or _partial_on_disk(facts) or _found(facts):
        actions.append(SecondaryAction("view-files", "View files", None))
    name = facts.game.name
    return tuple(
        msgspec.structs.replace(action, aria_label=f"{action.label}: {name}")
        for action in actions
        if action.command is None or action.command != primary.command
    )


def _partial_on_disk(facts: GameFacts) -> bool:
    return facts.paused_percent is not None or facts.discardable


def _version_label(facts: GameFacts) -> str:
    installed = facts.installed_version if facts.installed else None
    if installed and facts.local_version and installed != facts.local_version:
        # The newer version is downloaded but not installed (yet, or its install failed).
        return f"v{installed} → v{facts.local_version}"
    if facts.local_version and facts.update_available and facts.latest_version:
        return f"v{facts.local_version} → v{facts.latest_version}"
    if facts.local_version:
        return f"v{facts.local_version}"
    if facts.latest_version:
        return f"v{facts.latest_version} available"
    return "version unknown"


def _source_view(source: SourceFacts) -> SourceView:
    version = f"v{source.version}" if source.version else "version unknown"
    if not source.ready:
        version += " · installed only"
    return SourceView(
        name=source.name,
        addr=source.addr,
        initials=monogram(source.name),
        color=avatar_color(source.peer_id),
        version_label=version,
        ready=source.ready,
    )


def card(facts: GameFacts) -> CardView:
    game = facts.game
    action = primary_action(facts)
    downloadable = not facts.downloaded and not facts.installed and facts.peer_count > 0
    sources = sorted(facts.sources, key=lambda source: (not source.ready, source.name.lower()))
    return CardView(
        id=game.id,
        name=game.name,
        genre=game.genre,
        description=game.description,
        size_label=format_bytes(game.size_bytes),
        max_players=game.max_players,
        players_label=f"Up to {count_label(game.max_players, 'player', 'players')}",
        peer_count=facts.peer_count,
        peers_label=count_label(facts.peer_count, "peer", "peers")
        if facts.peer_count
        else "No peers",
        version_label=_version_label(facts),
        art=artwork(game.id, game.name, f"/api/covers/{game.id}" if facts.has_cover else None),
        status=status_of(facts, action),
        action=action,
        progress=progress_of(facts),
        error=error_of(facts),
        note=paused_note(facts),
        explanation=FOUND_EXPLANATION if _found(facts) else None,
        distrust_note=distrust_note(facts),
        actions=secondary_actions(facts, action),
        sources=tuple(_source_view(source) for source in sources),
        installed=facts.installed,
        downloadable=downloadable,
        update=facts.update_available,
        search=f"{game.name} {game.genre} {game.id}".lower(),
    )


# -- keeping the player's files ----------------------------------------------------------

# A dialog lists the first few paths and counts the rest: a game with a thousand
# saves must not push the buttons off the screen.
MAX_LISTED_FILES = 5
KEEP_LABEL = "Keep my saves and settings"


def uninstall_text(name: str) -> str:
    return (
        f"Uninstall {name}? The downloaded files stay, "
        "so you can install it again without downloading."
    )


def file_list(paths: tuple[str, ...]) -> FileListView:
    """The first :data:`MAX_LISTED_FILES` paths and "and N more"."""
    shown = paths[:MAX_LISTED_FILES]
    rest = len(paths) - len(shown)
    return FileListView(paths=shown, more_label=f"and {rest:,} more" if rest else None)


def deletes_label(files: int, size: int, players: int = 0, *, kept: bool = False) -> str:
    """ "Deletes 1,234 files, 2.1 GB", and what becomes of the player's ``players`` files."""
    if files == 0:
        return "Deletes nothing: the folder holds only your files"
    label = f"Deletes {count_label(files, 'file', 'files')}, {format_bytes(size)}"
    if players and kept:
        yours = count_label(players, "file", "files")
        return f"{label}; your {yours} {'stays' if players == 1 else 'stay'}"
    if players:
        return f"{label}, yours included"
    return label


def uninstall_dialog(name: str, everything: UninstallPlan) -> UninstallDialogView:
    """The confirmation from the dry run without keep_saves (one scan of the folder:
    keeping deletes the same minus the player's files, which only an install record
    can tell apart, so there are none without one)."""
    players = everything.players_files
    keep_files = everything.delete_files - len(players)
    keep_bytes = everything.delete_bytes - everything.players_bytes
    return UninstallDialogView(
        game=everything.game,
        title=f"Uninstall {name}?",
        text="The downloaded files stay, so you can install it again without downloading.",
        delete_label=deletes_label(everything.delete_files, everything.delete_bytes, len(players)),
        keep_delete_label=deletes_label(keep_files, keep_bytes, len(players), kept=True),
        players_title=(
            f"Your own files here (saves, settings): {len(players):,}" if players else None
        ),
        players=file_list(players),
        keep_label=KEEP_LABEL,
        keep_offered=bool(players),
        keep_default=bool(players),
        confirm_label="Uninstall",
        keep_aria_label=f"{KEEP_LABEL} of {name}",
    )


def verify_view(name: str, reply: VerifyReply, *, downloaded: bool) -> VerifyView:
    """The inline result of Verify files; Repair only when something is changed or missing."""
    changed, missing, added = reply.changed, reply.missing, reply.added
    if reply.ok:
        headline = f"All {count_label(reply.shipped_files, 'game file is', 'game files are')}"
        headline += " intact"
    else:
        parts = [f"{len(changed):,} changed"] if changed else []
        parts += [f"{len(missing):,} missing"] if missing else []
        headline = ", ".join(parts)
    damaged = bool(changed or missing)
    can_repair = damaged and downloaded
    return VerifyView(
        game=reply.game,
        ok=reply.ok,
        headline=headline,
        tone="ok" if reply.ok else "warn",
        changed_title="Changed" if changed else None,
        changed=file_list(changed),
        missing_title="Missing" if missing else None,
        missing=file_list(missing),
        players_label=(
            f"{count_label(len(added), 'file', 'files')} of your own (saves, settings, mods) "
            "not counted"
            if added
            else None
        ),
        can_repair=can_repair,
        repair_note=(
            "Repair needs the downloaded files, and they are gone: download the game again."
            if damaged and not downloaded
            else None
        ),
        repair_label="Repair",
        repair_aria_label=f"Repair {name}",
        repair_title=f"Repair {name}?",
        repair_confirm=(
            "Changed and missing game files are extracted again from the downloaded files. "
            "Your own files stay where they are, and a game file you changed (a config) is "
            f"kept beside the fresh one as {_mine_example(changed)}."
        ),
    )


def unrecorded_verify_view(game_id: str, name: str, *, downloaded: bool) -> VerifyView:
    """Verify of a game installed without an install record: nothing to compare with;
    Repair extracts it again and records it, keeping whatever differs as ``.mine``."""
    empty = file_list(())
    return VerifyView(
        game=game_id,
        ok=False,
        headline="lanspread has no record of these files, so it cannot check them",
        tone="warn",
        changed_title=None,
        changed=empty,
        missing_title=None,
        missing=empty,
        players_label=None,
        can_repair=downloaded,
        repair_note=(
            None
            if downloaded
            else "Repair needs the downloaded files, and they are gone: download the game again."
        ),
        repair_label="Repair",
        repair_aria_label=f"Repair {name}",
        repair_title=f"Repair {name}?",
        repair_confirm=(
            "The game files are extracted again from the downloaded files and recorded, "
            "so Verify can check them next time. Files that are not the game's stay where "
            "they are, and a file that differs from the game's is kept beside the fresh "
            "one as <its name>.mine."
        ),
    )


def notice_view(notice: NoticeFacts, names: dict[str, str]) -> NoticeView:
    """ "Kept your 3 files; your changed q3config.cfg is kept as q3config.cfg.mine"."""
    parts = []
    if notice.kept:
        where = " in its folder" if notice.uninstalled else ""
        parts.append(f"Kept your {count_label(len(notice.kept), 'file', 'files')}{where}")
    if len(notice.renamed) == 1:
        path, kept_as = notice.renamed[0]
        parts.append(f"your changed {_base(path)} is kept as {_base(kept_as)}")
    elif notice.renamed:
        first = _base(notice.renamed[0][0])
        more = len(notice.renamed) - 1
        parts.append(
            f"your changed {first} and {count_label(more, 'other file', 'other files')} "
            "are kept beside the new ones as .mine"
        )
    text = "; ".join(parts)
    return NoticeView(
        id=notice.id,
        title=names.get(notice.game_id, notice.game_id),
        text=text[:1].upper() + text[1:],
    )


def _mine_example(changed: tuple[str, ...]) -> str:
    """ "config.ini.mine" for the first changed file, or the rule in words."""
    return f"{_base(changed[0])}.mine" if changed else "<its name>.mine"


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


# -- the whole view --------------------------------------------------------------------


def _peer_view(peer: PeerFacts, names: dict[str, str]) -> PeerView:
    games = tuple(sorted((names.get(gid, gid) for gid in peer.games), key=str.lower))
    return PeerView(
        peer_id=peer.peer_id,
        name=peer.name,
        addr=peer.addr,
        initials=monogram(peer.name),
        color=avatar_color(peer.peer_id),
        games=games,
        games_label=count_label(len(games), "game", "games") if games else "No games yet",
    )


def _runtime_view(runtime: RuntimeFacts) -> RuntimeView:
    if runtime.state is RuntimeState.FAILED:
        where = f" ({runtime.component})" if runtime.component else ""
        message = f"The lanspread peer stopped{where}: {runtime.error or 'unknown error'}"
        return RuntimeView(state=runtime.state.value, message=message, can_restart=True)
    if runtime.state is RuntimeState.STARTING:
        return RuntimeView(
            state=runtime.state.value, message="Starting the lanspread peer…", can_restart=False
        )
    if runtime.state is RuntimeState.STOPPED:
        return RuntimeView(
            state=runtime.state.value, message="The lanspread peer stopped.", can_restart=True
        )
    return RuntimeView(state=runtime.state.value, message=None, can_restart=False)


def _counts(cards: Iterable[CardView]) -> FilterCounts:
    cards = tuple(cards)
    return FilterCounts(
        all=len(cards),
        installed=sum(card.installed for card in cards),
        downloadable=sum(card.downloadable for card in cards),
        updates=sum(card.update for card in cards),
    )


def shelf(facts: GameFacts) -> int:
    """Where a card sorts: games on this machine, then games peers offer, then the rest.

    A click never moves a card (a download stays on its shelf until it is done), so
    the grid only reshuffles when a game arrives on disk or a peer comes or goes.
    """
    if facts.downloaded or facts.installed or _partial_on_disk(facts):
        return 0
    if facts.peer_count > 0 or facts.operation is not None:
        return 1
    return 2


def build_view(facts: ViewInput) -> ViewModel:
    ordered = sorted(facts.games, key=lambda g: (shelf(g), g.game.name.lower()))
    cards = tuple(card(game) for game in ordered)
    names = {game.game.id: game.game.name for game in facts.games}
    peers = tuple(
        _peer_view(peer, names) for peer in sorted(facts.peers, key=lambda p: p.name.lower())
    )
    me = facts.me
    return ViewModel(
        games=cards,
        peers=peers,
        me=SelfView(me.name, me.peer_id, me.listen_addr, me.game_dir) if me else None,
        runtime=_runtime_view(facts.runtime),
        setup=SetupView(
            needed=facts.setup_needed,
            game_dir=facts.setup_game_dir,
            display_name=facts.setup_name,
        ),
        counts=_counts(cards),
        notices=tuple(notice_view(notice, names) for notice in facts.notices),
    )
