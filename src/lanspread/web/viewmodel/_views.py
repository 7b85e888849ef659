"""What the view model gives the page: plain structs, ready for JSON."""

from __future__ import annotations

import enum

import msgspec

from lanspread.web.viewmodel._downloads_views import DownloadsPanel
from lanspread.web.viewmodel._facts import SelfFacts
from lanspread.web.viewmodel._guidance import GuidanceView


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
    aria_label: str = ""
    """What a screen reader says: the action with the game's name ("Download Quake III
    Arena"), or the state and the game's name for a button that does nothing."""
    confirm: str | None = None
    """When set, the page asks this question before sending the command (a download of a
    game that cannot start on this computer)."""
    confirm_label: str | None = None
    """The confirming button's words."""


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
    emblem: str = "controller"
    """The genre's emblem drawn on generated art (``crosshair``, ``tower``, ...)."""


class SourceView(msgspec.Struct, frozen=True):
    name: str
    addr: str
    initials: str
    color: str
    version_label: str
    ready: bool
    have_label: str = ""
    """How much of the game it has: "Complete", "Has 42%", or "Installed only"."""
    have_percent: float = 0.0


class ConflictSideView(msgspec.Struct, frozen=True):
    """One content on offer in a content conflict."""

    digest: str
    """The whole manifest digest: what ``choose-content`` takes (the page shows its
    first :data:`~lanspread.core.conflict.SHORT_DIGEST` characters)."""
    peers_label: str


class ConflictView(msgspec.Struct, frozen=True):
    """The peers offering an unpinned version disagree: the player picks a side."""

    headline: str
    sides: tuple[ConflictSideView, ...]
    more_label: str = ""
    """How many more contents are on offer than listed ("" when none)."""


class CardView(msgspec.Struct, frozen=True):
    id: str
    name: str
    genre: str
    description: str
    size_label: str
    """One size everywhere: the download's own total where known, else the catalog's
    estimate (prefixed "~")."""
    size_caption: str
    """What the size is: "Download size" or "Approximate size"."""
    size_bytes: int
    """The size behind ``size_label``, for sorting."""
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
    shelf: int = 2
    """Availability, for sorting: 0 on this machine, 1 offered by peers, 2 neither."""
    launch_label: str | None = None
    """A tag on the card when the game cannot start here: "Needs Wine", "Windows only"."""
    launch_problem: str | None = None
    """Why, in a sentence, for the detail view."""
    play_label: str | None = None
    """ "Played 3 h 12 min"; ``None`` when never played here."""
    last_played: float | None = None
    """When it was last played (seconds since the epoch): the page writes the date in the
    player's own calendar, and sorts by it."""
    conflict: ConflictView | None = None
    """The content conflict the last download stopped on, until the player chose."""


class PeerCard(msgspec.Struct, frozen=True):
    """One peer in the sidebar."""

    peer_id: str
    name: str
    addr: str
    initials: str
    color: str
    games: tuple[str, ...]
    """Catalog names of the peer's games."""
    games_label: str
    demo_label: str | None = None
    """ "Demo: games from this computer" for the Demo peer; ``None`` for a player."""
    rate_label: str = ""
    """What moves between this peer and that one: "↑ 4.2 MB/s · ↓ 1.0 MB/s · pulling from
    you" (↑ sent to it, ↓ received from it), or empty."""


class RuntimeView(msgspec.Struct, frozen=True):
    """The banner about the peer itself: starting, stopped or failed (with Restart)."""

    state: str
    message: str | None
    """The banner's words; ``None`` while the peer runs (no banner)."""
    can_restart: bool


class SetupView(msgspec.Struct, frozen=True):
    """The first-run screen and the settings form, filled with what is suggested now."""

    needed: bool
    """No settings are saved yet: the page opens on the first-run screen."""
    game_dir: str
    display_name: str


class FilterCounts(msgspec.Struct, frozen=True):
    """How many cards each filter of the sidebar shows."""

    all: int
    installed: int
    downloadable: int
    updates: int


class NoticeView(msgspec.Struct, frozen=True):
    """A toast the page shows once: what an install or uninstall kept of the player's."""

    id: int
    title: str
    text: str
    kind: str = "ok"
    """``ok``, ``warn`` or ``error``; a download's notice also asks for a desktop notification."""
    download: bool = False


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


class TransferView(msgspec.Struct, frozen=True):
    """The global status line and the upload settings the form shows."""

    up_label: str
    down_label: str
    line: str
    """The whole status line, as a screen reader says it."""
    gaming_label: str | None
    """ "Gaming now: uploads capped at 20 MiB/s" while the throttle is on."""
    upload_limit_mib: float
    """The player's upload limit in MiB/s (0: unlimited), for the settings form."""
    gaming_cap_mib: float
    """The gaming-now cap in MiB/s (0: none), for the settings form."""


class ViewModel(msgspec.Struct, frozen=True):
    games: tuple[CardView, ...]
    peers: tuple[PeerCard, ...]
    me: SelfFacts | None
    runtime: RuntimeView
    setup: SetupView
    counts: FilterCounts
    notices: tuple[NoticeView, ...] = ()
    transfer: TransferView | None = None
    downloads: DownloadsPanel | None = None
    """The Downloads panel; ``None`` while the runtime is not running."""
    guidance: GuidanceView | None = None
    """What a player alone can do, and the folders that are not games here."""
