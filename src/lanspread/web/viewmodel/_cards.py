"""A game's card: its button, status pill, notes, progress and detail-view actions.

The card draws the runtime's state (:class:`~lanspread.core.lifecycle.GameState`) and
offers only the commands the runtime says it would accept (``GameFacts.actions``):
which state gets which button is a table of words here, and whether a button works
is never decided here.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from lanspread.core.download_queue import QUEUED
from lanspread.core.launching import play_time_label
from lanspread.core.lifecycle import Command, GameState
from lanspread.runtime.downloads import PAUSE_MESSAGES
from lanspread.web.viewmodel import _labels
from lanspread.web.viewmodel._dialogs import uninstall_text
from lanspread.web.viewmodel._facts import OPTIMISTIC_COMMANDS, GameFacts, SourceFacts
from lanspread.web.viewmodel._views import (
    Action,
    ActionKind,
    CardView,
    ConflictSideView,
    ConflictView,
    ProgressView,
    SecondaryAction,
    SourceView,
    StatusView,
)

S = GameState
_DOWNLOADING = frozenset({S.DOWNLOADING, S.UPDATE_DOWNLOADING})
_EXTRACTING = frozenset({S.INSTALLING, S.UPDATING})
_PAUSED = frozenset({S.PAUSED, S.UPDATE_PAUSED})
# A download waiting in the queue is paused for the lifecycle; the card says what it waits for.
QUEUED_NOTE = "Queued: starts when a running download finishes"
_FOUND = frozenset({S.FOUND, S.FOUND_OFFERED})
_FRESH = frozenset({S.NOT_DOWNLOADED, S.FOUND_OFFERED})  # a first download, not a retry

# The button of a state that is not downloading or paused: (kind, label, command). The
# command is sent only when the runtime lists it in the game's actions.
_Button = tuple[ActionKind, str, Command | None]
_DOWNLOAD: _Button = (ActionKind.DOWNLOAD, "Download", Command.DOWNLOAD)
_UPDATE: _Button = (ActionKind.UPDATE, "Update", Command.UPDATE)
_RETRY_UPDATE: _Button = (ActionKind.FAILED, "Retry", Command.UPDATE)
_BUTTONS: Mapping[GameState, _Button] = {
    S.UNAVAILABLE: (ActionKind.UNAVAILABLE, "Unavailable", None),
    S.NOT_DOWNLOADED: _DOWNLOAD,
    S.FOUND: (ActionKind.FOUND, "Unavailable", None),
    S.FOUND_OFFERED: _DOWNLOAD,
    S.FAILED: (ActionKind.FAILED, "Retry", Command.DOWNLOAD),
    S.DOWNLOADED: (ActionKind.INSTALL, "Install", Command.INSTALL),
    S.DOWNLOADED_UPDATE_AVAILABLE: _UPDATE,
    S.DOWNLOADED_UPDATE_FAILED: _RETRY_UPDATE,
    S.INSTALLING: (ActionKind.INSTALLING, "Installing", None),
    S.INSTALLED: (ActionKind.PLAY, "Play", Command.PLAY),
    S.UPDATE_AVAILABLE: _UPDATE,
    S.UPDATE_STAGED: _UPDATE,
    S.UPDATE_FAILED: _RETRY_UPDATE,
    S.UPDATING: (ActionKind.UPDATING, "Updating", None),
    S.UNINSTALLING: (ActionKind.UNINSTALLING, "Uninstalling", None),
    S.REMOVING: (ActionKind.REMOVING, "Removing files", None),
    S.RUNNING: (ActionKind.RUNNING, "Running", None),
}
_BUSY = frozenset({S.INSTALLING, S.UPDATING, S.UNINSTALLING, S.REMOVING})

# The pill on the artwork, by state; a busy button and a failed operation come first.
_STATUS: Mapping[GameState, StatusView] = {
    S.UNAVAILABLE: StatusView("Not on the network", "none"),
    S.NOT_DOWNLOADED: StatusView("On the network", "muted"),
    S.PAUSED: StatusView("Paused", "warn"),
    S.FAILED: StatusView("Failed", "error"),
    S.DOWNLOADED: StatusView("Ready to install", "info"),
    S.DOWNLOADED_UPDATE_AVAILABLE: StatusView("Update available", "info"),
    S.DOWNLOADED_UPDATE_FAILED: StatusView("Failed", "error"),
    S.INSTALLED: StatusView("Installed", "ok"),
    S.UPDATE_AVAILABLE: StatusView("Update available", "info"),
    S.UPDATE_STAGED: StatusView("Update available", "info"),
    S.UPDATE_PAUSED: StatusView("Paused", "warn"),
    S.UPDATE_FAILED: StatusView("Failed", "error"),
    S.RUNNING: StatusView("Running", "ok"),
}

# The card's words for a folder lanspread did not make (the runtime's own label
# is "Found, not from lanspread"; the card sets it as a heading).
FOUND_STATUS = "Found — not from lanspread"
FOUND_EXPLANATION = (
    "lanspread never changes or deletes your files in this folder. A download adds "
    "the game's files beside them, and stops if one of yours has a name the game needs."
)


def download_percent(facts: GameFacts) -> float | None:
    """Download progress, drawn only while the game is downloading."""
    if facts.state not in _DOWNLOADING or facts.download is None:
        return None
    return _labels.percent_of(facts.download.downloaded_bytes, facts.download.total_bytes)


def install_percent(facts: GameFacts) -> float | None:
    """Extraction progress, drawn only while the game installs or updates."""
    if facts.state not in _EXTRACTING or facts.install is None:
        return None
    return _labels.percent_of(facts.install.extracted_bytes, facts.install.total_bytes)


def primary_action(facts: GameFacts) -> Action:
    """The card's one button: the state's, sending its command only when allowed."""
    state = facts.state
    if state in _DOWNLOADING:
        return _downloading_action(facts)
    if state in _BUSY:
        kind, label, _command = _BUTTONS[state]
        percent = install_percent(facts)
        detail = _labels.format_percent(percent) if percent is not None else None
        return Action(kind.value, label, None, busy=True, percent=percent, detail=detail)
    if state is S.RUNNING and Command.STOP in facts.actions:
        return Action(ActionKind.RUNNING.value, "Stop", Command.STOP.value, False, None, "Running")
    if state is not S.RUNNING and facts.pending in OPTIMISTIC_COMMANDS:
        return Action(ActionKind.CHECKING.value, "Checking peers", None, busy=True)
    if state in _PAUSED:
        percent = min(max(facts.paused_percent or 0.0, 0.0), 100.0)
        command = _offered(facts, Command.DOWNLOAD)
        return Action(
            ActionKind.PAUSED.value,
            "Resume",
            command,
            False,
            percent,
            _labels.format_percent(percent),
        )
    if facts.damaged is not None and Command.REMOVE in facts.actions:
        return damaged_action(facts)
    kind, label, wanted = _BUTTONS[state]
    command = _offered(facts, wanted)
    if state is S.INSTALLED and command is None:
        return Action(ActionKind.INSTALLED.value, "Installed", None, busy=False)
    if state in _FRESH and facts.launch_problem is not None:
        return Action(
            kind.value,
            label,
            command,
            busy=False,
            confirm=download_warning(facts),
            confirm_label="Download anyway",
        )
    return Action(kind.value, label, command, busy=False)


def damaged_action(facts: GameFacts) -> Action:
    """A copy whose install found a damaged archive: Re-download when a peer offers the
    game (its files are removed first), else Remove; both ask first."""
    size = _labels.format_bytes(facts.game.size_bytes)
    if facts.peer_count > 0:
        return Action(
            ActionKind.FAILED.value,
            "Re-download",
            REDOWNLOAD,
            busy=False,
            confirm=(
                f"{facts.damaged}. Remove the downloaded files of {facts.game.name} and "
                f"download {size} from peers again?"
            ),
            confirm_label="Re-download",
        )
    return Action(
        ActionKind.FAILED.value,
        "Remove damaged files",
        Command.REMOVE.value,
        busy=False,
        confirm=(
            f"{facts.damaged}. Remove the downloaded files of {facts.game.name}? "
            f"Download it again afterwards ({size})."
        ),
        confirm_label="Remove files",
    )


REDOWNLOAD = "redownload"
"""The runtime command that removes a damaged copy and downloads the game again."""


def download_warning(facts: GameFacts) -> str:
    """The question asked before downloading a game that cannot start on this computer."""
    size = _labels.format_bytes(facts.game.size_bytes)
    return f"{facts.launch_problem}. Download {size} anyway?"


def _offered(facts: GameFacts, command: Command | None) -> str | None:
    """The command's name when the runtime would accept it now, else ``None``."""
    return command.value if command is not None and command in facts.actions else None


def _downloading_action(facts: GameFacts) -> Action:
    """Percent as the label and the current speed beside it (the pill says "Downloading")."""
    percent = download_percent(facts)
    if percent is None or facts.download is None:
        return Action(ActionKind.DOWNLOADING.value, "Downloading", None, busy=True, percent=0.0)
    speed = _labels.format_speed(facts.download.bytes_per_second)
    return Action(
        ActionKind.DOWNLOADING.value, _labels.format_percent(percent), None, True, percent, speed
    )


def status_of(facts: GameFacts, action: Action) -> StatusView:
    """The pill on the artwork: where the game stands, in one or two words."""
    if action.kind == ActionKind.DOWNLOADING.value:
        return StatusView("Downloading", "busy")
    if action.busy:
        return StatusView(action.label, "busy")
    if facts.last_error is not None and facts.state not in {S.RUNNING, *_PAUSED}:
        return StatusView("Failed", "error")
    if facts.state in _FOUND:
        return StatusView(FOUND_STATUS, "warn", facts.found_reason)
    if facts.state in _PAUSED and facts.paused_reason == PAUSE_MESSAGES[QUEUED]:
        return StatusView("Queued", "info")
    return _STATUS[facts.state]


def paused_note(facts: GameFacts) -> str | None:
    """ "Paused at N% — why" for a paused download while nothing runs on the game;
    for a found folder, why it is not lanspread's ("no version.ini, …")."""
    if facts.state in _FOUND:
        reason = facts.found_reason or ""
        return reason[:1].upper() + reason[1:]
    if facts.paused_percent is None or facts.state.operation is not None:
        return None
    if facts.paused_reason == PAUSE_MESSAGES[QUEUED]:
        return QUEUED_NOTE
    if facts.paused_reason and facts.paused_reason.endswith("%"):
        return f"Paused: {facts.paused_reason}"  # it says how far itself ("Alice left at 35%")
    where = f"Paused at {_labels.format_percent(min(max(facts.paused_percent, 0.0), 100.0))}"
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


def conflict_view(facts: GameFacts) -> ConflictView | None:
    """The sides of the game's content conflict, each with its peers by name (the id of
    a peer no longer seen), in the runtime's order: never by count or digest."""
    conflict = facts.conflict
    if conflict is None:
        return None
    names = {source.peer_id: source.name for source in facts.sources}
    sides = tuple(
        ConflictSideView(
            digest=side.digest,
            peers_label=", ".join(names.get(peer, peer) for peer in side.peers),
        )
        for side in conflict.sides
    )
    return ConflictView(
        headline=(
            f"The peers offering version {conflict.version} disagree on its content, and the "
            "organizer did not pin it. Choose the one you trust:"
        ),
        sides=sides,
        more_label=f"and {_labels.count_label(conflict.more_sides, 'other', 'others')}"
        if conflict.more_sides
        else "",
    )


def error_of(facts: GameFacts) -> str | None:
    """The failure the card shows: the last operation's, else the failed download's."""
    if facts.last_error is not None:
        return facts.last_error
    if facts.failed_reason is not None:
        return f"Download failed: {facts.failed_reason}"
    return None


def progress_of(facts: GameFacts) -> ProgressView | None:
    """The detail view's progress panel: bytes, speed, ETA and percent."""
    download, install = facts.download, facts.install
    percent = download_percent(facts)
    if percent is not None and download is not None:
        return _progress(
            "download",
            percent,
            download.downloaded_bytes,
            download.total_bytes,
            speed_label=_labels.format_speed(download.bytes_per_second),
            eta_label=_labels.format_eta(download.eta_seconds),
            can_cancel=Command.CANCEL in facts.actions,
        )
    percent = install_percent(facts)
    if percent is not None and install is not None:
        return _progress("install", percent, install.extracted_bytes, install.total_bytes)
    return None


def _progress(
    kind: str,
    percent: float,
    done: int,
    total: int,
    *,
    speed_label: str | None = None,
    eta_label: str | None = None,
    can_cancel: bool = False,
) -> ProgressView:
    return ProgressView(
        kind=kind,
        percent=percent,
        percent_label=_labels.format_percent(percent),
        done_label=f"{_labels.format_bytes(done)} of {_labels.format_bytes(total)}",
        speed_label=speed_label,
        eta_label=eta_label,
        can_cancel=can_cancel,
    )


def secondary_actions(facts: GameFacts, primary: Action) -> tuple[SecondaryAction, ...]:
    """The detail view's extra buttons, each an allowed command (or View files); the
    primary command is never repeated, and nothing but Cancel while a click is pending."""
    allowed = set(facts.actions)
    if facts.state is S.UPDATE_STAGED:
        allowed.discard(Command.INSTALL)  # Update installs the downloaded version already
    actions: list[SecondaryAction] = []
    if facts.state in _DOWNLOADING and Command.CANCEL in allowed:
        actions.append(SecondaryAction("cancel", "Cancel download", "cancel", danger=True))
    if facts.pending is None:
        actions.extend(_idle_actions(facts, allowed))
    if facts.downloaded or facts.installed or _partial_on_disk(facts) or facts.state in _FOUND:
        actions.append(SecondaryAction("view-files", "View files", None))
    name = facts.game.name
    return tuple(
        msgspec.structs.replace(action, aria_label=f"{action.label}: {name}")
        for action in actions
        if action.command is None or action.command != primary.command
    )


def _idle_actions(facts: GameFacts, allowed: set[Command]) -> list[SecondaryAction]:
    name = facts.game.name
    candidates = [
        (Command.PLAY, SecondaryAction("play", "Play", "play")),
        (Command.INSTALL, SecondaryAction("install", "Install", "install")),
        (
            Command.UNINSTALL,
            SecondaryAction(
                "uninstall", "Uninstall", "uninstall", danger=True, confirm=uninstall_text(name)
            ),
        ),
        (
            Command.REMOVE,
            SecondaryAction(
                "remove",
                "Remove files",
                "remove",
                danger=True,
                confirm=(
                    f"Remove the downloaded files of {name}? Getting them back means "
                    f"downloading {_labels.format_bytes(size_of(facts)[0])} from peers again, "
                    "which can take a long time."
                ),
            ),
        ),
    ]
    actions = [action for command, action in candidates if command in allowed]
    if Command.CANCEL in allowed and facts.state not in _DOWNLOADING:
        which = "failed" if facts.failed_reason is not None else "paused"
        actions.append(
            SecondaryAction(
                "discard",
                "Discard download",
                "cancel",
                danger=True,
                confirm=(
                    f"Discard the {which} download of {name}? The part already "
                    "downloaded is deleted; getting it back means downloading it again."
                ),
            )
        )
    if Command.VERIFY in allowed:
        actions.append(SecondaryAction("verify", "Verify files", "verify"))
    if Command.ADOPT in allowed:
        actions.append(SecondaryAction("adopt", "Adopt as a local copy", "adopt"))
    return actions


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
    if source.have_percent is None:
        have = "Installed only" if not source.ready else "Complete"
    elif source.have_percent >= 100:
        have = "Complete"
    else:
        have = f"Has {_labels.format_percent(source.have_percent)}"
    if not source.ready and source.have_percent is None:
        version += " · installed only"
    return SourceView(
        name=source.name,
        addr=source.addr,
        initials=_labels.monogram(source.name),
        color=_labels.avatar_color(source.peer_id),
        version_label=version,
        ready=source.ready,
        have_label=have,
        have_percent=100.0 if source.ready else (source.have_percent or 0.0),
    )


APPROXIMATE_SIZE = "Approximate size"
DOWNLOAD_SIZE = "Download size"


def size_of(facts: GameFacts) -> tuple[int, str]:
    """The one size a game shows, and what it is: the running or stopped download's
    total where known (the bytes it really moves), else the catalog's estimate."""
    if download_percent(facts) is not None and facts.download and facts.download.total_bytes > 0:
        return facts.download.total_bytes, DOWNLOAD_SIZE
    if facts.known_size is not None and facts.known_size > 0:
        return facts.known_size, DOWNLOAD_SIZE
    return facts.game.size_bytes, APPROXIMATE_SIZE


def _size_label(size: int, caption: str) -> str:
    return (
        _labels.format_bytes(size) if caption == DOWNLOAD_SIZE else f"~{_labels.format_bytes(size)}"
    )


def primary_aria_label(action: Action, name: str) -> str:
    """The card button as a screen reader says it, always with the game's name:
    "Download Quake III Arena", "Quake III Arena: downloading 42%, 3.1 MB/s"."""
    if action.command is not None:
        spoken = f"{action.label} {name}"
    elif action.kind == ActionKind.DOWNLOADING.value and action.label != "Downloading":
        spoken = f"{name}: downloading {action.label}"
    else:
        spoken = f"{name}: {action.label.lower()}"
    return f"{spoken}, {action.detail}" if action.detail else spoken


def card(facts: GameFacts, art_slot: _labels.ArtSlot | None = None) -> CardView:
    game = facts.game
    action = primary_action(facts)
    action = msgspec.structs.replace(action, aria_label=primary_aria_label(action, game.name))
    size, size_caption = size_of(facts)
    downloadable = not facts.downloaded and not facts.installed and facts.peer_count > 0
    # Complete copies first, then partial ones by how much they have, then the rest.
    sources = sorted(
        facts.sources,
        key=lambda source: (
            not source.ready,
            -(source.have_percent or 0.0),
            source.name.lower(),
        ),
    )
    return CardView(
        id=game.id,
        name=game.name,
        genre=game.genre,
        description=game.description,
        size_label=_size_label(size, size_caption),
        size_caption=size_caption,
        size_bytes=size,
        max_players=game.max_players,
        players_label=f"Up to {_labels.count_label(game.max_players, 'player', 'players')}",
        peer_count=facts.peer_count,
        peers_label=_labels.count_label(facts.peer_count, "peer", "peers")
        if facts.peer_count
        else "No peers",
        version_label=_version_label(facts),
        art=_labels.artwork(
            game.id,
            game.name,
            f"/api/covers/{game.id}" if facts.has_cover else None,
            slot=art_slot,
            genre=game.genre,
        ),
        status=status_of(facts, action),
        action=action,
        progress=progress_of(facts),
        error=error_of(facts),
        note=paused_note(facts),
        explanation=FOUND_EXPLANATION if facts.state in _FOUND else None,
        distrust_note=distrust_note(facts),
        actions=secondary_actions(facts, action),
        sources=tuple(_source_view(source) for source in sources),
        installed=facts.installed,
        downloadable=downloadable,
        update=facts.update_available,
        search=f"{game.name} {game.genre} {game.id}".lower(),
        shelf=shelf(facts),
        launch_label=facts.launch_label,
        launch_problem=facts.launch_problem,
        play_label=play_time_label(facts.played_seconds) if facts.last_played else None,
        last_played=facts.last_played,
        conflict=conflict_view(facts),
    )


def shelf(facts: GameFacts) -> int:
    """Where a card sorts: games on this machine, then games peers offer, then the rest.

    A click never moves a card (a download stays on its shelf until it is done), so
    the grid only reshuffles when a game arrives on disk or a peer comes or goes.
    """
    if facts.downloaded or facts.installed or _partial_on_disk(facts):
        return 0
    if facts.peer_count > 0 or facts.state.operation is not None:
        return 1
    return 2
