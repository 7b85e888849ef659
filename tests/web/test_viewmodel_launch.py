"""The card of a game that cannot start here, Stop, the quick-exit message and play time."""

from __future__ import annotations

import dataclasses

from tests.web.test_viewmodel import facts

from lanspread.runtime.events import GameExited, GameStarted
from lanspread.web.state import UiState
from lanspread.web.viewmodel import card, primary_action

PROBLEM = (
    "Quake III Arena is a Windows game: it needs Wine to start on this computer, "
    "and Wine is not installed"
)


def test_a_game_that_cannot_start_here_is_tagged_and_warns_before_download() -> None:
    """The card carries "Needs Wine", and Download asks first, naming the size."""
    game = facts(launch_label="Needs Wine", launch_problem=PROBLEM)
    shown = card(game)
    assert (shown.launch_label, shown.launch_problem) == ("Needs Wine", PROBLEM)
    action = primary_action(game)
    assert (action.command, action.confirm_label) == ("download", "Download anyway")
    assert action.confirm == f"{PROBLEM}. Download 480 MB anyway?"


def test_a_game_that_starts_here_downloads_without_a_question() -> None:
    """No launch problem: Download sends at once, and no tag is drawn."""
    shown = card(facts())
    assert (shown.action.confirm, shown.launch_label) == (None, None)


def test_a_retry_does_not_ask_again() -> None:
    """The warning is for a first download: Retry of a failed one sends at once."""
    game = facts(launch_label="Needs Wine", launch_problem=PROBLEM, failed_reason="x")
    assert (primary_action(game).label, primary_action(game).confirm) == ("Retry", None)


def test_a_running_game_offers_stop() -> None:
    """While the game runs the button is Stop, sending the stop command."""
    action = primary_action(facts(downloaded=True, installed=True, running=True))
    assert (action.kind, action.label, action.command, action.detail) == (
        "running",
        "Stop",
        "stop",
        "Running",
    )


def test_play_time_is_shown_once_played() -> None:
    """A game played here shows its total; one never played shows nothing."""
    played = card(facts(installed=True, played_seconds=3 * 3600 + 12 * 60, last_played=1.7e9))
    assert (played.play_label, played.last_played) == ("Played 3 h 12 min", 1.7e9)
    assert card(facts(installed=True)).play_label is None


def test_a_quick_failure_shows_on_the_card_until_the_next_start() -> None:
    """The exit's message becomes the card's error; the next start clears it; an exit
    without a message (a game that ran) changes nothing."""
    store = UiState()
    message = "Quake III Arena exited with code 3 after 0.1 s"
    assert store.apply(GameExited(game="quake3", returncode=3, seconds=0.1, message=message))
    overlay = store.overlay("quake3")
    assert overlay.last_error == message
    shown = card(dataclasses.replace(facts(installed=True), last_error=overlay.last_error))
    assert shown.error == message
    store.apply(GameStarted(game="quake3", pid=1))
    assert store.overlay("quake3").last_error is None
    store.apply(GameExited(game="quake3", returncode=0, seconds=600.0))
    assert store.overlay("quake3").last_error is None


def test_a_damaged_copy_offers_removal_not_install() -> None:
    """After an install found a damaged archive and no peer offers the game, the main
    button removes the files (asking first, with the sentence as it is: a file name keeps
    its case) and Install stays only as a secondary action."""
    sentence = "teeworlds.eti is damaged or not a game archive; download it again"
    game = facts(downloaded=True, damaged=sentence, peer_count=0)
    action = primary_action(game)
    assert (action.kind, action.label, action.command, action.confirm_label) == (
        "failed",
        "Remove damaged files",
        "remove",
        "Remove files",
    )
    assert action.confirm == (
        "teeworlds.eti is damaged or not a game archive; download it again. Remove the "
        "downloaded files of Quake III Arena? Download it again afterwards (480 MB)."
    )
    assert [a.id for a in card(game).actions] == ["install", "view-files"]


def test_a_damaged_copy_a_peer_offers_is_downloaded_again() -> None:
    """With a source on the network the main button is Re-download (remove, then
    download), and Remove stays a secondary action."""
    sentence = "teeworlds.eti is damaged or not a game archive; download it again"
    game = facts(downloaded=True, damaged=sentence, peer_count=1)
    action = primary_action(game)
    assert (action.label, action.command, action.confirm) == (
        "Re-download",
        "redownload",
        "teeworlds.eti is damaged or not a game archive; download it again. Remove the "
        "downloaded files of Quake III Arena and download 480 MB from peers again?",
    )
    assert [a.id for a in card(game).actions] == ["install", "remove", "view-files"]
