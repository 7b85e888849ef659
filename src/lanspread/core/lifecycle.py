"""The game lifecycle: the state a catalog game is in, and what may happen to it.

Theory of operation
-------------------
Every rule about what a player (or a program) may do with a game lives here, in
one table, and nowhere else. The runtime gathers a game's facts
(:class:`LifecycleFacts`: what is on disk, what runs, what peers offer, how a
stopped download ended), :func:`state_of` names the :class:`GameState`, and
:data:`TRANSITIONS` says for every state and :class:`Command` whether the command
is allowed (``None``) or why not (a :class:`Refusal`). The runtime's command entry
points refuse with :func:`refusal_for` before they start anything; the game
snapshot carries the state and :func:`actions` (the commands that would be
accepted), so a front end draws buttons from them and decides nothing itself.

State, first match wins (:data:`CLASSIFICATION`)::

    operation downloading          downloading, or update-downloading if installed
    operation installing/...       installing, updating, uninstalling, removing
    the game runs                  running
    installed, then:
      another version downloaded   update-staged (install or update installs it)
      its update's download        update-paused, update-failed
      a newer version offered      update-available
      otherwise                    installed
    downloaded (not installed):
      its update's download failed downloaded-update-failed
      a newer version offered      downloaded-update-available
      otherwise                    downloaded
    a stopped download             paused (a journal to resume), failed
    a folder lanspread did not make found-offered if a peer offers the game, else found
    a peer offers the game         not-downloaded
    otherwise                      unavailable

A few refusals need a fact the state does not hold; they are checked after the
table allows a command (:data:`GUARDS`): ``play`` needs the catalog to name an
executable, ``repair`` needs the archives on disk, ``cancel`` needs a download to
stop or files of one to discard. What only the moment of the command can tell
(which peers are sources now, the player's files on disk) is checked by the
runtime with :func:`source_refusal` and the remaining :class:`Refusal` members, so
every refusal has one stable code and one wording.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from lanspread.core.gameroot import version_sort_key
from lanspread.core.install_record import local_update_pending
from lanspread.core.library import GameSummary
from lanspread.core.operations import OperationKind
from lanspread.errors import InvalidGameState, OperationError, OperationInProgress


class GameState(enum.Enum):
    """Where a catalog game stands on this peer (see the module's classification)."""

    UNAVAILABLE = "unavailable"
    """Nothing of it here, and no peer offers it."""
    NOT_DOWNLOADED = "not-downloaded"
    """Nothing of it here; a peer offers it."""
    FOUND = "found"
    """A folder named like it that lanspread cannot prove it made; no peer offers it."""
    FOUND_OFFERED = "found-offered"
    """Such a folder, and a peer offers the game: a download adds the game's files beside
    the player's (and stops if one of them has a name the game needs)."""
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    """A download stopped with its journal on disk: it resumes where it was."""
    FAILED = "failed"
    """A download failed; nothing of the game is usable here."""
    DOWNLOADED = "downloaded"
    """Its archives are here (the root ``version.ini``), not installed."""
    DOWNLOADED_UPDATE_AVAILABLE = "downloaded-update-available"
    """Downloaded, not installed; a peer offers a newer version."""
    DOWNLOADED_UPDATE_FAILED = "downloaded-update-failed"
    """Downloaded, not installed; the download of a newer version failed."""
    INSTALLING = "installing"
    INSTALLED = "installed"
    UPDATE_AVAILABLE = "update-available"
    """Installed; a peer offers a newer version."""
    UPDATE_STAGED = "update-staged"
    """Installed; the archives of another version are downloaded and not installed yet."""
    UPDATE_DOWNLOADING = "update-downloading"
    """Installed; a newer version is downloading."""
    UPDATE_PAUSED = "update-paused"
    """Installed; the download of a newer version stopped with its journal."""
    UPDATE_FAILED = "update-failed"
    """Installed; the download of a newer version failed."""
    UPDATING = "updating"
    UNINSTALLING = "uninstalling"
    REMOVING = "removing"
    RUNNING = "running"
    """Installed and started with ``play``; not exited yet."""

    @property
    def operation(self) -> OperationKind | None:
        """The operation that runs on a game in this state, if one does."""
        return _OPERATIONS.get(self)


class Command(enum.Enum):
    """The game commands the runtime accepts (their JSON Lines names)."""

    DOWNLOAD = "download"
    """Download, resume, or retry a download (into an installed game: its update)."""
    UPDATE = "update"
    CANCEL = "cancel"
    """Stop a running download, or discard a paused or failed one."""
    INSTALL = "install"
    REPAIR = "repair"
    UNINSTALL = "uninstall"
    VERIFY = "verify"
    REMOVE = "remove"
    PLAY = "play"
    STOP = "stop"
    """Close a game started with ``play`` (forced after a grace period)."""
    ADOPT = "adopt"
    """Make a found folder a local copy when it holds exactly a version peers offer."""

    @property
    def verb(self) -> str:
        """What the command does, for "cannot <verb> <game> while it is running"."""
        return _VERBS[self]


_VERBS: Mapping[Command, str] = {
    Command.DOWNLOAD: "update",  # a download into an installed game is its update
    Command.UPDATE: "update",
    Command.CANCEL: "discard the download of",
    Command.INSTALL: "install",
    Command.REPAIR: "repair",
    Command.UNINSTALL: "uninstall",
    Command.VERIFY: "verify",
    Command.REMOVE: "remove",
    Command.PLAY: "play",
    Command.STOP: "stop",
    Command.ADOPT: "adopt",
}


class Halt(enum.Enum):
    """How a download that is not running ended, when it left something to act on."""

    PAUSED = "paused"
    FAILED = "failed"


class Refusal(enum.Enum):
    """Why a command is refused; the value is the stable code programs read (the peer
    CLI and the web API report it as ``reason``), :meth:`message` the words a player
    reads. A refusal because something runs is an
    :class:`~lanspread.errors.OperationInProgress`, every other one an
    :class:`~lanspread.errors.InvalidGameState`.
    """

    NO_SOURCE = "no-source"
    ALL_SOURCES_LIED = "all-sources-lied"
    NOT_HERE_TO_UPDATE = "not-here"
    UP_TO_DATE = "up-to-date"
    ALREADY_DOWNLOADED = "already-downloaded"
    NO_DOWNLOAD = "no-download"
    NOT_DOWNLOADED = "not-downloaded"
    ALREADY_INSTALLED = "already-installed"
    NOT_INSTALLED = "not-installed"
    NO_ARCHIVES = "no-archives"
    UNINSTALL_FIRST = "uninstall-first"
    KEPT_FILES = "kept-files"
    NO_EXECUTABLE = "no-executable"
    NO_INSTALL_RECORD = "no-install-record"
    NO_RECORD_TO_KEEP_SAVES = "no-record-to-keep-saves"
    BUSY = "busy"
    RUNNING = "running"
    ALREADY_RUNNING = "already-running"
    NOT_RUNNING = "not-running"
    NOT_FOUND = "not-found"

    @property
    def busy(self) -> bool:
        """Refused because something runs on the game (it may be allowed later)."""
        return self in _BUSY_REFUSALS

    def message(
        self, game: str, command: Command | None = None, state: GameState | None = None
    ) -> str:
        """The words for ``game``; ``command`` and ``state`` fill in what runs and what
        could not be done (:attr:`RUNNING`, :attr:`BUSY`)."""
        operation = state.operation if state is not None else None
        return _WORDS[self].format(
            game=game,
            operation=operation.value if operation is not None else "working",
            verb=command.verb if command is not None else "change",
        )

    def error(
        self, game: str, command: Command | None = None, state: GameState | None = None
    ) -> OperationError:
        """The exception the runtime raises for this refusal; it carries the code."""
        kind = OperationInProgress if self.busy else InvalidGameState
        return kind(self.message(game, command, state), reason=self.value)


_BUSY_REFUSALS = frozenset({Refusal.BUSY, Refusal.RUNNING, Refusal.ALREADY_RUNNING})

# The words of each refusal: ``{game}`` is the game id, ``{operation}`` what runs on it,
# ``{verb}`` what the refused command does.
_WORDS: Mapping[Refusal, str] = {
    Refusal.NO_SOURCE: "no peer offers {game} right now",
    Refusal.ALL_SOURCES_LIED: (
        "every peer offering {game} sent corrupt data earlier; "
        "not downloading from them again until lanspread restarts"
    ),
    Refusal.NOT_HERE_TO_UPDATE: "{game} is not here to update: download it",
    Refusal.UP_TO_DATE: "{game} is up to date",
    Refusal.ALREADY_DOWNLOADED: "{game} is already downloaded",
    Refusal.NO_DOWNLOAD: "{game} has no download to cancel",
    Refusal.NOT_DOWNLOADED: "{game} is not downloaded",
    Refusal.ALREADY_INSTALLED: "{game} is already installed",
    Refusal.NOT_INSTALLED: "{game} is not installed",
    Refusal.NO_ARCHIVES: "{game} has no downloaded archives to repair from",
    Refusal.UNINSTALL_FIRST: "{game} is installed: uninstall it first",
    Refusal.KEPT_FILES: "{game}: local/ still holds the files you kept; move them out first",
    Refusal.NO_EXECUTABLE: "the catalog names no executable for {game}",
    Refusal.NO_INSTALL_RECORD: (
        "{game} has no install record (installed without one); repair it to make one"
    ),
    Refusal.NO_RECORD_TO_KEEP_SAVES: (
        "{game} has no install record, so its files cannot be told from yours; "
        "repair it first, or uninstall without keep_saves"
    ),
    Refusal.BUSY: "{game} is busy: {operation}",
    Refusal.RUNNING: "cannot {verb} {game} while it is running",
    Refusal.ALREADY_RUNNING: "{game} is already running",
    Refusal.NOT_RUNNING: "{game} is not running",
    Refusal.NOT_FOUND: "{game} is not a folder lanspread found: nothing to adopt",
}


@dataclass(frozen=True, slots=True)
class LifecycleFacts:
    """Everything the lifecycle rules need to know about one game."""

    downloaded: bool = False
    """The archives are complete (a regular root ``version.ini``)."""
    installed: bool = False
    """``local/`` holds an install."""
    staged: bool = False
    """Installed, and the downloaded archives are another version than ``local/`` holds."""
    offered: bool = False
    """A ready peer offers the game."""
    newer_offered: bool = False
    """A ready peer offers a newer version than the one here (the game is here)."""
    found: bool = False
    """A folder named like the game that lanspread cannot prove it made."""
    halt: Halt | None = None
    """How a download that is not running ended, if it left something to act on."""
    discardable: bool = False
    """Files of a paused or failed download are on disk."""
    operation: OperationKind | None = None
    running: bool = False
    playable: bool = True
    """The catalog names an executable for the game."""

    @property
    def update_available(self) -> bool:
        """A newer version is offered, or one is downloaded and waits to be installed."""
        return self.newer_offered or self.staged


def lifecycle_facts(
    summary: GameSummary | None,
    *,
    latest: str | None = None,
    peer_count: int = 0,
    operation: OperationKind | None = None,
    running: bool = False,
    halt: Halt | None = None,
    discardable: bool = False,
    found: bool = False,
    playable: bool = True,
    staged_version: str | None = None,
) -> LifecycleFacts:
    """The facts of a game from the runtime's sources: its library summary (``None``:
    neither downloaded nor installed), the newest version ``peer_count`` ready peers
    offer, and what the operation table, the running games and the download manager
    say. A stopped download counts only while no operation runs on the game."""
    facts = LifecycleFacts(
        offered=peer_count > 0,
        found=found,
        halt=halt if operation is None else None,
        discardable=discardable,
        operation=operation,
        running=running,
        playable=playable,
    )
    if summary is None:
        return facts
    return replace(
        facts,
        downloaded=summary.downloaded,
        installed=summary.installed,
        staged=local_update_pending(
            summary.installed, summary.downloaded, summary.installed_version, summary.version
        )
        or local_update_pending(
            summary.installed, staged_version is not None, summary.installed_version, staged_version
        ),
        newer_offered=facts.offered
        and version_sort_key(latest) > version_sort_key(summary.version),
    )


# -- the state -------------------------------------------------------------------------

_OPERATIONS: Mapping[GameState, OperationKind] = {
    GameState.DOWNLOADING: OperationKind.DOWNLOADING,
    GameState.UPDATE_DOWNLOADING: OperationKind.DOWNLOADING,
    GameState.INSTALLING: OperationKind.INSTALLING,
    GameState.UPDATING: OperationKind.UPDATING,
    GameState.UNINSTALLING: OperationKind.UNINSTALLING,
    GameState.REMOVING: OperationKind.REMOVING,
}

_Test = Callable[[LifecycleFacts], bool]
_DOWNLOADING, _INSTALLING = OperationKind.DOWNLOADING, OperationKind.INSTALLING
_UPDATING, _UNINSTALLING, _REMOVING = (
    OperationKind.UPDATING,
    OperationKind.UNINSTALLING,
    OperationKind.REMOVING,
)
_PAUSED, _FAILED = Halt.PAUSED, Halt.FAILED

CLASSIFICATION: Final[tuple[tuple[_Test, GameState], ...]] = (
    (lambda f: f.operation is _DOWNLOADING and f.installed, GameState.UPDATE_DOWNLOADING),
    (lambda f: f.operation is _DOWNLOADING, GameState.DOWNLOADING),
    (lambda f: f.operation is _INSTALLING, GameState.INSTALLING),
    (lambda f: f.operation is _UPDATING, GameState.UPDATING),
    (lambda f: f.operation is _UNINSTALLING, GameState.UNINSTALLING),
    (lambda f: f.operation is _REMOVING, GameState.REMOVING),
    (lambda f: f.running, GameState.RUNNING),
    (lambda f: f.installed and f.staged, GameState.UPDATE_STAGED),
    (lambda f: f.installed and f.halt is _PAUSED, GameState.UPDATE_PAUSED),
    (lambda f: f.installed and f.halt is _FAILED, GameState.UPDATE_FAILED),
    (lambda f: f.installed and f.newer_offered, GameState.UPDATE_AVAILABLE),
    (lambda f: f.installed, GameState.INSTALLED),
    (lambda f: f.downloaded and f.halt is _FAILED, GameState.DOWNLOADED_UPDATE_FAILED),
    (lambda f: f.downloaded and f.newer_offered, GameState.DOWNLOADED_UPDATE_AVAILABLE),
    (lambda f: f.downloaded, GameState.DOWNLOADED),
    (lambda f: f.halt is _PAUSED, GameState.PAUSED),
    (lambda f: f.halt is _FAILED, GameState.FAILED),
    (lambda f: f.found and f.offered, GameState.FOUND_OFFERED),
    (lambda f: f.found, GameState.FOUND),
    (lambda f: f.offered, GameState.NOT_DOWNLOADED),
    (lambda f: True, GameState.UNAVAILABLE),
)
"""The module's classification as data: the first row whose test holds names the state."""


def state_of(facts: LifecycleFacts) -> GameState:
    return next(state for test, state in CLASSIFICATION if test(facts))


# -- the table -------------------------------------------------------------------------

COLUMNS: Final = (
    Command.DOWNLOAD,
    Command.UPDATE,
    Command.CANCEL,
    Command.INSTALL,
    Command.REPAIR,
    Command.UNINSTALL,
    Command.VERIFY,
    Command.REMOVE,
    Command.PLAY,
    Command.STOP,
    Command.ADOPT,
)


# The grid's cells, by short name (deleted once the table is built): ``ok`` allows the
# command; every other name is a Refusal.
S = GameState
ok = None
busy, run, again = Refusal.BUSY, Refusal.RUNNING, Refusal.ALREADY_RUNNING
nosrc, noupd, fresh = Refusal.NO_SOURCE, Refusal.NOT_HERE_TO_UPDATE, Refusal.UP_TO_DATE
have, nodl, notdl = Refusal.ALREADY_DOWNLOADED, Refusal.NO_DOWNLOAD, Refusal.NOT_DOWNLOADED
inst, notin = Refusal.ALREADY_INSTALLED, Refusal.NOT_INSTALLED
noarc, first = Refusal.NO_ARCHIVES, Refusal.UNINSTALL_FIRST

# fmt: off
_GRID: Final[Mapping[GameState, tuple[Refusal | None, ...]]] = {
    #                            download update cancel install repair uninst verify remove play
    S.UNAVAILABLE:                (nosrc, noupd, nodl,  notdl, notin, notin, notin, notdl, notin),
    S.NOT_DOWNLOADED:             (ok,    noupd, nodl,  notdl, notin, notin, notin, notdl, notin),
    S.FOUND:                      (nosrc, noupd, nodl,  notdl, notin, notin, notin, notdl, notin),
    S.FOUND_OFFERED:              (ok,    noupd, nodl,  notdl, notin, notin, notin, notdl, notin),
    S.DOWNLOADING:                (busy,  busy,  ok,    notdl, notin, notin, notin, notdl, notin),
    S.PAUSED:                     (ok,    noupd, ok,    notdl, notin, notin, notin, notdl, notin),
    S.FAILED:                     (ok,    noupd, ok,    notdl, notin, notin, notin, notdl, notin),
    S.DOWNLOADED:                 (have,  fresh, nodl,  ok,    notin, notin, notin, ok,    notin),
    S.DOWNLOADED_UPDATE_AVAILABLE:(have,  ok,    nodl,  ok,    notin, notin, notin, ok,    notin),
    S.DOWNLOADED_UPDATE_FAILED:   (have,  ok,    ok,    ok,    notin, notin, notin, ok,    notin),
    S.INSTALLING:                 (busy,  busy,  busy,  busy,  notin, notin, notin, busy,  notin),
    S.INSTALLED:                  (fresh, fresh, nodl,  inst,  ok,    ok,    ok,    first, ok),
    S.UPDATE_AVAILABLE:           (ok,    ok,    nodl,  inst,  ok,    ok,    ok,    first, ok),
    S.UPDATE_STAGED:              (ok,    ok,    ok,    ok,    ok,    ok,    ok,    first, ok),
    S.UPDATE_DOWNLOADING:         (busy,  busy,  ok,    busy,  busy,  busy,  busy,  first, busy),
    S.UPDATE_PAUSED:              (ok,    ok,    ok,    notdl, noarc, ok,    ok,    notdl, ok),
    S.UPDATE_FAILED:              (ok,    ok,    ok,    inst,  ok,    ok,    ok,    first, ok),
    S.UPDATING:                   (busy,  busy,  busy,  busy,  busy,  busy,  busy,  first, busy),
    S.UNINSTALLING:               (busy,  busy,  busy,  busy,  busy,  busy,  busy,  busy,  busy),
    S.REMOVING:                   (busy,  busy,  busy,  busy,  notin, notin, notin, busy,  notin),
    S.RUNNING:                    (run,   run,   ok,    run,   run,   run,   run,   first, again),
}
# fmt: on

# Adopt, apart: only a found folder may be adopted, and it needs a peer's manifest.
_ADOPT: Final[Mapping[GameState, Refusal | None]] = {S.FOUND: nosrc, S.FOUND_OFFERED: ok}
del S, ok, busy, run, again, nosrc, noupd, fresh, have, nodl, notdl, inst, notin, noarc, first

# Stop is the grid's last column, written as its rule: allowed only while the game runs.
_STOP_COLUMN: Final[Mapping[GameState, Refusal | None]] = {
    state: None if state is GameState.RUNNING else Refusal.NOT_RUNNING for state in GameState
}

TRANSITIONS: Final[Mapping[tuple[GameState, Command], Refusal | None]] = MappingProxyType(
    {
        (state, command): cell
        for state, cells in _GRID.items()
        for command, cell in zip(
            COLUMNS,
            (*cells, _STOP_COLUMN[state], _ADOPT.get(state, Refusal.NOT_FOUND)),
            strict=True,
        )
    }
)
"""(state, command) -> ``None`` (allowed) or the refusal: the one table."""

GUARDS: Final[Mapping[Command, tuple[_Test, Refusal]]] = MappingProxyType(
    {
        Command.PLAY: (lambda f: f.playable, Refusal.NO_EXECUTABLE),
        Command.REPAIR: (lambda f: f.downloaded, Refusal.NO_ARCHIVES),
        Command.CANCEL: (
            lambda f: f.discardable or f.operation is OperationKind.DOWNLOADING,
            Refusal.NO_DOWNLOAD,
        ),
    }
)
"""What a command needs beyond its state, checked once the table allows it."""


def check(state: GameState, command: Command) -> Refusal | None:
    """The table's answer: ``None`` when ``state`` allows ``command``, else why not."""
    return TRANSITIONS[(state, command)]


def allowed(state: GameState) -> frozenset[Command]:
    """The commands the table allows in ``state`` (before :data:`GUARDS`)."""
    return frozenset(command for command in Command if check(state, command) is None)


def refusal_for(facts: LifecycleFacts, command: Command) -> Refusal | None:
    """Why ``command`` is refused for a game with ``facts``: the table, then the guards."""
    refusal = check(state_of(facts), command)
    if refusal is not None:
        return refusal
    guard = GUARDS.get(command)
    if guard is not None and not guard[0](facts):
        return guard[1]
    return None


def actions(facts: LifecycleFacts) -> tuple[Command, ...]:
    """The commands a front end may offer for a game with ``facts``, in table order."""
    return tuple(command for command in COLUMNS if refusal_for(facts, command) is None)


def source_refusal(
    *,
    downloaded: bool,
    version: str | None,
    latest: str | None,
    offering: bool,
    trusted: bool,
) -> Refusal | None:
    """Whether the peers can serve a download now: the newest version ``latest`` must be
    newer than the archives here (``version``, when ``downloaded``), some ready peer must
    offer it (``offering``), and one of those must not be a remembered liar (``trusted``).
    """
    if downloaded and version_sort_key(latest) <= version_sort_key(version):
        return Refusal.UP_TO_DATE
    if offering and not trusted:
        return Refusal.ALL_SOURCES_LIED
    if not trusted:
        return Refusal.NO_SOURCE
    return None


__all__ = [
    "CLASSIFICATION",
    "COLUMNS",
    "GUARDS",
    "TRANSITIONS",
    "Command",
    "GameState",
    "Halt",
    "LifecycleFacts",
    "Refusal",
    "actions",
    "allowed",
    "check",
    "lifecycle_facts",
    "refusal_for",
    "source_refusal",
    "state_of",
]
