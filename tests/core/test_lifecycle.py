"""The game lifecycle table: every state, every command, and the state of every fact set."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest

from lanspread.core.library import Availability, GameSummary
from lanspread.core.lifecycle import (
    CLASSIFICATION,
    COLUMNS,
    GUARDS,
    TRANSITIONS,
    Command,
    GameState,
    Halt,
    LifecycleFacts,
    Refusal,
    actions,
    allowed,
    check,
    lifecycle_facts,
    refusal_for,
    source_refusal,
    state_of,
)
from lanspread.core.operations import OperationKind
from lanspread.errors import InvalidGameState, OperationInProgress

S = GameState
R = Refusal
BUSY_STATES = frozenset(
    {S.DOWNLOADING, S.UPDATE_DOWNLOADING, S.INSTALLING, S.UPDATING, S.UNINSTALLING, S.REMOVING}
)
NOT_HERE = frozenset({S.UNAVAILABLE, S.NOT_DOWNLOADED, S.FOUND, S.FOUND_OFFERED})
HALTED = frozenset({S.PAUSED, S.FAILED})
ONLY_DOWNLOADED = frozenset(
    {S.DOWNLOADED, S.DOWNLOADED_UPDATE_AVAILABLE, S.DOWNLOADED_UPDATE_FAILED}
)
INSTALLED = frozenset(
    {S.INSTALLED, S.UPDATE_AVAILABLE, S.UPDATE_STAGED, S.UPDATE_PAUSED, S.UPDATE_FAILED}
)

# The rules written a second way: per command, the states that allow it (``None``) and,
# for every other state, why not. Together they must name every state exactly once.
SPEC: dict[Command, dict[Refusal | None, frozenset[GameState]]] = {
    Command.DOWNLOAD: {
        None: frozenset({S.NOT_DOWNLOADED, S.FOUND_OFFERED, *HALTED, *INSTALLED - {S.INSTALLED}}),
        R.NO_SOURCE: frozenset({S.UNAVAILABLE, S.FOUND}),
        R.BUSY: BUSY_STATES,
        R.ALREADY_DOWNLOADED: ONLY_DOWNLOADED,
        R.UP_TO_DATE: frozenset({S.INSTALLED}),
        R.RUNNING: frozenset({S.RUNNING}),
    },
    Command.UPDATE: {
        None: (ONLY_DOWNLOADED | INSTALLED) - {S.DOWNLOADED, S.INSTALLED},
        R.NOT_HERE_TO_UPDATE: NOT_HERE | HALTED,
        R.UP_TO_DATE: frozenset({S.DOWNLOADED, S.INSTALLED}),
        R.BUSY: BUSY_STATES,
        R.RUNNING: frozenset({S.RUNNING}),
    },
    Command.CANCEL: {
        None: frozenset(
            {
                S.DOWNLOADING,
                S.UPDATE_DOWNLOADING,
                *HALTED,
                S.DOWNLOADED_UPDATE_FAILED,
                S.UPDATE_STAGED,
                S.UPDATE_PAUSED,
                S.UPDATE_FAILED,
                S.RUNNING,
            }
        ),
        R.NO_DOWNLOAD: NOT_HERE
        | {S.DOWNLOADED, S.DOWNLOADED_UPDATE_AVAILABLE, S.INSTALLED, S.UPDATE_AVAILABLE},
        R.BUSY: BUSY_STATES - {S.DOWNLOADING, S.UPDATE_DOWNLOADING},
    },
    Command.INSTALL: {
        None: ONLY_DOWNLOADED | {S.UPDATE_STAGED},
        R.NOT_DOWNLOADED: NOT_HERE | HALTED | {S.DOWNLOADING, S.UPDATE_PAUSED},
        R.ALREADY_INSTALLED: frozenset({S.INSTALLED, S.UPDATE_AVAILABLE, S.UPDATE_FAILED}),
        R.BUSY: BUSY_STATES - {S.DOWNLOADING},
        R.RUNNING: frozenset({S.RUNNING}),
    },
    Command.REPAIR: {
        None: INSTALLED - {S.UPDATE_PAUSED},
        R.NO_ARCHIVES: frozenset({S.UPDATE_PAUSED}),
        R.NOT_INSTALLED: NOT_HERE
        | HALTED
        | ONLY_DOWNLOADED
        | {S.DOWNLOADING, S.INSTALLING, S.REMOVING},
        R.BUSY: frozenset({S.UPDATE_DOWNLOADING, S.UPDATING, S.UNINSTALLING}),
        R.RUNNING: frozenset({S.RUNNING}),
    },
    Command.REMOVE: {
        None: ONLY_DOWNLOADED,
        R.NOT_DOWNLOADED: NOT_HERE | HALTED | {S.DOWNLOADING, S.UPDATE_PAUSED},
        R.UNINSTALL_FIRST: INSTALLED - {S.UPDATE_PAUSED}
        | {S.UPDATE_DOWNLOADING, S.UPDATING, S.RUNNING},
        R.BUSY: frozenset({S.INSTALLING, S.UNINSTALLING, S.REMOVING}),
    },
    Command.PLAY: {
        None: INSTALLED,
        R.NOT_INSTALLED: NOT_HERE
        | HALTED
        | ONLY_DOWNLOADED
        | {S.DOWNLOADING, S.INSTALLING, S.REMOVING},
        R.BUSY: frozenset({S.UPDATE_DOWNLOADING, S.UPDATING, S.UNINSTALLING}),
        R.ALREADY_RUNNING: frozenset({S.RUNNING}),
    },
    Command.STOP: {
        None: frozenset({S.RUNNING}),
        R.NOT_RUNNING: frozenset(GameState) - {S.RUNNING},
    },
}
# Uninstall and verify follow the same rule: an idle, installed game that is not running.
for _command in (Command.UNINSTALL, Command.VERIFY):
    SPEC[_command] = {
        None: INSTALLED,
        R.NOT_INSTALLED: NOT_HERE
        | HALTED
        | ONLY_DOWNLOADED
        | {S.DOWNLOADING, S.INSTALLING, S.REMOVING},
        R.BUSY: frozenset({S.UPDATE_DOWNLOADING, S.UPDATING, S.UNINSTALLING}),
        R.RUNNING: frozenset({S.RUNNING}),
    }


SPEC[Command.ADOPT] = {
    None: frozenset({S.FOUND_OFFERED}),
    R.NO_SOURCE: frozenset({S.FOUND}),
    R.NOT_FOUND: frozenset(GameState) - {S.FOUND, S.FOUND_OFFERED},
}
"""Adopt: only a folder lanspread found, and only while a peer offers the game."""


def expected(state: GameState, command: Command) -> Refusal | None:
    (answer,) = [cell for cell, states in SPEC[command].items() if state in states]
    return answer


@pytest.mark.parametrize("command", list(Command))
def test_the_spec_names_every_state_once_per_command(command: Command) -> None:
    """The second writing of the rules is whole: every state has one answer per command."""
    named = [state for states in SPEC[command].values() for state in states]
    assert sorted(named, key=lambda s: s.value) == sorted(GameState, key=lambda s: s.value)


@pytest.mark.parametrize(("state", "command"), list(itertools.product(GameState, Command)), ids=str)
def test_every_state_and_command_pair(state: GameState, command: Command) -> None:
    """The table answers every (state, command) pair exactly as the rules say."""
    assert check(state, command) is expected(state, command)
    assert TRANSITIONS[(state, command)] is expected(state, command)


def test_the_table_has_every_pair_and_nothing_else() -> None:
    """One cell per state and command: 21 states by 11 commands, in column order."""
    assert set(TRANSITIONS) == set(itertools.product(GameState, Command))
    assert len(TRANSITIONS) == len(GameState) * len(Command) == 21 * 11
    assert set(COLUMNS) == set(Command)


@pytest.mark.parametrize("state", list(GameState))
def test_allowed_lists_the_commands_the_table_allows(state: GameState) -> None:
    """``allowed`` is the set of commands whose cell is empty."""
    assert allowed(state) == {c for c in Command if expected(state, c) is None}


def test_while_an_operation_runs_only_a_download_can_be_cancelled() -> None:
    """No state with an operation allows anything but cancelling a running download."""
    for state in BUSY_STATES:
        assert state.operation is not None
        want = {Command.CANCEL} if state.operation is OperationKind.DOWNLOADING else set()
        assert allowed(state) == want, state
    assert {s for s in GameState if s.operation is not None} == BUSY_STATES


# -- the facts space --------------------------------------------------------------------


def every_fact_set() -> Iterator[LifecycleFacts]:
    flags = ("downloaded", "installed", "staged", "offered", "newer_offered", "found")
    rest = ("discardable", "running", "playable")
    for values in itertools.product((False, True), repeat=len(flags) + len(rest)):
        for halt in (None, *Halt):
            for operation in (None, *OperationKind):
                yield LifecycleFacts(
                    **dict(zip(flags + rest, values, strict=True)),
                    halt=halt,
                    operation=operation,
                )


FACT_SETS = tuple(every_fact_set())


def test_every_fact_set_has_one_state_and_every_state_is_reached() -> None:
    """``state_of`` is total over the facts space, and every state is some fact set's."""
    reached = {state_of(facts) for facts in FACT_SETS}
    assert reached == set(GameState)
    assert CLASSIFICATION[-1][1] is S.UNAVAILABLE


def test_the_state_follows_the_classification_over_the_facts_space() -> None:
    """Over every fact set: an operation names the state, then a running game, then
    what is installed, downloaded, stopped, found and offered, in that order."""
    for f in FACT_SETS:
        state = state_of(f)
        if f.operation is not None:
            assert state.operation is f.operation, f
            assert (state is S.UPDATE_DOWNLOADING) == (
                f.operation is OperationKind.DOWNLOADING and f.installed
            ), f
        elif f.running:
            assert state is S.RUNNING, f
        elif f.installed:
            assert state in INSTALLED, f
            assert (state is S.UPDATE_STAGED) == f.staged, f
            if not f.staged and f.halt is None:
                want = S.UPDATE_AVAILABLE if f.newer_offered else S.INSTALLED
                assert state is want, f
        elif f.downloaded:
            assert state in ONLY_DOWNLOADED, f
        elif f.halt is not None:
            assert state is (S.PAUSED if f.halt is Halt.PAUSED else S.FAILED), f
        elif f.found:
            assert state is (S.FOUND_OFFERED if f.offered else S.FOUND), f
        else:
            assert state is (S.NOT_DOWNLOADED if f.offered else S.UNAVAILABLE), f


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        (LifecycleFacts(), S.UNAVAILABLE),
        (LifecycleFacts(offered=True), S.NOT_DOWNLOADED),
        (LifecycleFacts(found=True), S.FOUND),
        (LifecycleFacts(found=True, offered=True), S.FOUND_OFFERED),
        (LifecycleFacts(halt=Halt.PAUSED, discardable=True), S.PAUSED),
        (LifecycleFacts(halt=Halt.FAILED, found=True), S.FAILED),
        (LifecycleFacts(downloaded=True), S.DOWNLOADED),
        (LifecycleFacts(downloaded=True, newer_offered=True), S.DOWNLOADED_UPDATE_AVAILABLE),
        (LifecycleFacts(downloaded=True, halt=Halt.FAILED), S.DOWNLOADED_UPDATE_FAILED),
        (LifecycleFacts(installed=True), S.INSTALLED),
        (LifecycleFacts(installed=True, newer_offered=True), S.UPDATE_AVAILABLE),
        (LifecycleFacts(installed=True, staged=True, halt=Halt.FAILED), S.UPDATE_STAGED),
        (LifecycleFacts(installed=True, halt=Halt.PAUSED), S.UPDATE_PAUSED),
        (LifecycleFacts(installed=True, halt=Halt.FAILED), S.UPDATE_FAILED),
        (LifecycleFacts(installed=True, running=True, halt=Halt.PAUSED), S.RUNNING),
        (LifecycleFacts(operation=OperationKind.DOWNLOADING), S.DOWNLOADING),
        (
            LifecycleFacts(installed=True, operation=OperationKind.DOWNLOADING),
            S.UPDATE_DOWNLOADING,
        ),
        (LifecycleFacts(downloaded=True, operation=OperationKind.INSTALLING), S.INSTALLING),
        (LifecycleFacts(installed=True, operation=OperationKind.UPDATING), S.UPDATING),
        (LifecycleFacts(installed=True, operation=OperationKind.UNINSTALLING), S.UNINSTALLING),
        (LifecycleFacts(downloaded=True, operation=OperationKind.REMOVING), S.REMOVING),
    ],
    ids=lambda value: value.value if isinstance(value, GameState) else None,
)
def test_each_state_from_its_typical_facts(facts: LifecycleFacts, state: GameState) -> None:
    """The everyday fact set of each state classifies as that state."""
    assert state_of(facts) is state


def test_a_paused_download_found_at_a_start_offers_resume_not_download() -> None:
    """A journal found at start (paused, reason restart, discardable) is the paused state
    whatever the network says, and its actions are resume and discard, never a fresh
    download of a game shown as not here."""
    for offered in (False, True):
        facts = LifecycleFacts(halt=Halt.PAUSED, discardable=True, offered=offered)
        assert state_of(facts) is S.PAUSED
        assert actions(facts) == (Command.DOWNLOAD, Command.CANCEL)


def test_actions_are_the_allowed_commands_that_pass_their_guards() -> None:
    """Over every fact set, ``actions`` keeps the table's allowed commands, in column
    order, less those a guard refuses: play without an executable, repair without the
    archives, cancel with nothing to stop or discard."""
    for f in FACT_SETS:
        state = state_of(f)
        got = actions(f)
        assert list(got) == [c for c in COLUMNS if c in got]
        assert set(got) <= allowed(state)
        for command in allowed(state) - set(got):
            test, refusal = GUARDS[command]
            assert not test(f)
            assert refusal_for(f, command) is refusal
        assert (Command.PLAY in got) == (Command.PLAY in allowed(state) and f.playable)
        assert (Command.REPAIR in got) == (Command.REPAIR in allowed(state) and f.downloaded)
        assert (Command.CANCEL in got) == (
            Command.CANCEL in allowed(state)
            and (f.discardable or f.operation is OperationKind.DOWNLOADING)
        )


def test_a_refused_state_answers_before_any_guard() -> None:
    """The table speaks first: an uninstalled game without an executable is not installed."""
    assert refusal_for(LifecycleFacts(playable=False), Command.PLAY) is R.NOT_INSTALLED
    assert refusal_for(LifecycleFacts(installed=True, playable=False), Command.PLAY) is (
        R.NO_EXECUTABLE
    )
    local_only = LifecycleFacts(installed=True)
    assert refusal_for(local_only, Command.REPAIR) is R.NO_ARCHIVES
    assert refusal_for(dataclasses.replace(local_only, downloaded=True), Command.REPAIR) is None
    assert refusal_for(LifecycleFacts(halt=Halt.FAILED), Command.CANCEL) is R.NO_DOWNLOAD


# -- facts from the runtime's sources -------------------------------------------------------


def summary(
    *, downloaded: bool, installed: bool, version: str | None, installed_version: str | None
) -> GameSummary:
    return GameSummary(
        id="quake3",
        availability=Availability.READY if downloaded else Availability.LOCAL_ONLY,
        version=version,
        installed=installed,
        size_bytes=1,
        installed_version=installed_version,
    )


def test_a_game_not_here_has_only_its_network_and_stop_facts() -> None:
    """Without a summary nothing is downloaded or installed; a peer count offers it."""
    facts = lifecycle_facts(None, latest="2.0", peer_count=2, halt=Halt.PAUSED, discardable=True)
    assert facts == LifecycleFacts(offered=True, halt=Halt.PAUSED, discardable=True)
    assert lifecycle_facts(None).offered is False


@pytest.mark.parametrize(
    ("latest", "peers", "newer"),
    [("2.0", 1, True), ("1.0", 1, False), ("0.9", 1, False), ("2.0", 0, False), (None, 1, False)],
)
def test_a_newer_version_counts_only_when_a_peer_offers_it(
    latest: str | None, peers: int, newer: bool
) -> None:
    """``newer_offered`` compares naturally with the version here, and needs a ready peer."""
    here = summary(downloaded=True, installed=False, version="1.0", installed_version=None)
    facts = lifecycle_facts(here, latest=latest, peer_count=peers)
    assert (facts.downloaded, facts.newer_offered, facts.update_available) == (True, newer, newer)


def test_an_install_of_unknown_version_is_older_than_any_offer() -> None:
    """A local-only install (no ``version.ini``) counts any offered version as newer."""
    here = summary(downloaded=False, installed=True, version=None, installed_version="1.0")
    facts = lifecycle_facts(here, latest="1.0", peer_count=1)
    assert (facts.installed, facts.downloaded, facts.newer_offered) == (True, False, True)
    assert state_of(facts) is S.UPDATE_AVAILABLE


def test_another_downloaded_version_is_a_staged_update() -> None:
    """Installed 1.0 with 2.0's archives here is staged, an update available offline."""
    here = summary(downloaded=True, installed=True, version="2.0", installed_version="1.0")
    facts = lifecycle_facts(here)
    assert (facts.staged, facts.update_available) == (True, True)
    assert state_of(facts) is S.UPDATE_STAGED


def test_a_stopped_download_does_not_count_while_an_operation_runs() -> None:
    """A resumed download runs: the old pause is not a fact of the game any more."""
    facts = lifecycle_facts(None, halt=Halt.PAUSED, operation=OperationKind.DOWNLOADING)
    assert facts.halt is None
    assert state_of(facts) is S.DOWNLOADING


def test_running_found_and_playable_pass_through() -> None:
    """The process, found-folder and catalog facts are taken as they are given."""
    here = summary(downloaded=True, installed=True, version="1.0", installed_version="1.0")
    facts = lifecycle_facts(here, running=True, found=True, playable=False)
    assert (facts.running, facts.found, facts.playable) == (True, True, False)


# -- what only the moment of a download can tell ---------------------------------------------


@pytest.mark.parametrize(
    ("downloaded", "version", "latest", "offering", "trusted", "refusal"),
    [
        (True, "1.0", "1.0", True, True, R.UP_TO_DATE),
        (True, "1.0", None, False, False, R.UP_TO_DATE),
        (True, "1.0", "1.1", True, True, None),
        (False, None, "1.0", True, False, R.ALL_SOURCES_LIED),
        (False, None, None, False, False, R.NO_SOURCE),
        (False, "3.0", "1.0", True, True, None),
    ],
)
def test_source_refusal_rows(
    downloaded: bool,
    version: str | None,
    latest: str | None,
    offering: bool,
    trusted: bool,
    refusal: Refusal | None,
) -> None:
    """Up to date first (the archives here are the newest), then liars, then no source."""
    got = source_refusal(
        downloaded=downloaded, version=version, latest=latest, offering=offering, trusted=trusted
    )
    assert got is refusal


# -- the words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "command", "kind", "message"),
    [
        (S.UNAVAILABLE, Command.INSTALL, InvalidGameState, "quake3 is not downloaded"),
        (S.UNAVAILABLE, Command.UNINSTALL, InvalidGameState, "quake3 is not installed"),
        (S.UNAVAILABLE, Command.REMOVE, InvalidGameState, "quake3 is not downloaded"),
        (S.UNAVAILABLE, Command.PLAY, InvalidGameState, "quake3 is not installed"),
        (
            S.UNAVAILABLE,
            Command.UPDATE,
            InvalidGameState,
            "quake3 is not here to update: download it",
        ),
        (S.UNAVAILABLE, Command.CANCEL, InvalidGameState, "quake3 has no download to cancel"),
        (S.UNAVAILABLE, Command.DOWNLOAD, InvalidGameState, "no peer offers quake3 right now"),
        (S.DOWNLOADING, Command.DOWNLOAD, OperationInProgress, "quake3 is busy: downloading"),
        (S.INSTALLING, Command.INSTALL, OperationInProgress, "quake3 is busy: installing"),
        (S.INSTALLED, Command.INSTALL, InvalidGameState, "quake3 is already installed"),
        (
            S.RUNNING,
            Command.UNINSTALL,
            OperationInProgress,
            "cannot uninstall quake3 while it is running",
        ),
        (
            S.RUNNING,
            Command.UPDATE,
            OperationInProgress,
            "cannot update quake3 while it is running",
        ),
        (S.RUNNING, Command.PLAY, OperationInProgress, "quake3 is already running"),
        (S.RUNNING, Command.REMOVE, InvalidGameState, "quake3 is installed: uninstall it first"),
        (S.DOWNLOADED, Command.UPDATE, InvalidGameState, "quake3 is up to date"),
        (S.DOWNLOADED, Command.DOWNLOAD, InvalidGameState, "quake3 is already downloaded"),
        (
            S.UPDATE_PAUSED,
            Command.REPAIR,
            InvalidGameState,
            "quake3 has no downloaded archives to repair from",
        ),
    ],
)
def test_refusals_raise_with_their_words_and_code(
    state: GameState, command: Command, kind: type[Exception], message: str
) -> None:
    """Each refusal becomes the error the runtime raises: busy ones are OperationInProgress,
    the rest InvalidGameState, with the words players and scripts already know and the
    refusal's code as ``reason``."""
    refusal = check(state, command)
    assert refusal is not None
    error = refusal.error("quake3", command, state)
    assert type(error) is kind
    assert str(error) == message
    assert error.reason == refusal.value
    assert refusal.busy == (kind is OperationInProgress)


def test_words_that_need_no_state_or_command() -> None:
    """Refusals the runtime raises on its own read whole without a state or command."""
    assert R.NO_EXECUTABLE.message("quake3") == "the catalog names no executable for quake3"
    assert R.KEPT_FILES.message("quake3") == (
        "quake3: local/ still holds the files you kept; move them out first"
    )
    assert R.ALL_SOURCES_LIED.message("quake3") == (
        "every peer offering quake3 sent corrupt data earlier; "
        "not downloading from them again until lanspread restarts"
    )
    assert R.BUSY.message("quake3") == "quake3 is busy: working"
    assert Refusal("not-installed") is R.NOT_INSTALLED
