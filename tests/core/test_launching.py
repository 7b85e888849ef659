"""Per-platform launchers: the catalog's table form, which of the five launch cases holds
on each platform, the quick-exit sentence and play time in words."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lanspread.core.catalog import CatalogGame, Launchers, parse_catalog
from lanspread.core.launching import (
    QUICK_EXIT_SECONDS,
    LaunchKind,
    LaunchPlan,
    Platform,
    PlayTime,
    exit_message,
    launch_plan,
    play_time_label,
)
from lanspread.errors import CatalogError
from lanspread.storage.catalog_file import load_bundled_catalog

GAME = CatalogGame("q3", "Quake III Arena", "", 1, "Shooter", 16)
REST = 'name = "N"\nsize_bytes = 1\ngenre = "G"\nmax_players = 2\n'


def with_launchers(**fields: str) -> CatalogGame:
    return replace(GAME, launchers=Launchers(**fields))


def parse_executable(value: str) -> CatalogGame:
    catalog = parse_catalog(f'[[game]]\nid = "q3"\n{REST}executable = {value}\n', "cat.toml")
    return catalog.games["q3"]


def test_the_table_form_names_a_launcher_per_platform() -> None:
    """``executable = {windows, linux, runner}`` parses into Launchers, not the plain field."""
    game = parse_executable('{ windows = "q3.exe", linux = "ioq3", runner = "wine" }')
    assert (game.executable, game.launchers) == (
        None,
        Launchers(windows="q3.exe", linux="ioq3", runner="wine"),
    )
    assert parse_executable('"q3.exe"').launchers is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('{ mac = "q3" }', "unknown key 'mac' (expected windows, linux, runner)"),
        ('{ windows = "q3.exe", runner = "bash" }', "runner 'bash' is not one of: wine"),
        ('{ linux = "q3", runner = "wine" }', "a runner needs a windows executable to start"),
        ("{ }", "names no windows or linux executable"),
        (
            '{ windows = "../q3.exe" }',
            "'../q3.exe' must be a relative path that stays inside its folder",
        ),
    ],
)
def test_a_bad_launcher_table_is_refused_with_its_reason(value: str, problem: str) -> None:
    """Each defect of the table form names the game and the field."""
    with pytest.raises(CatalogError) as caught:
        parse_executable(value)
    field = "windows" if "../" in value else "executable"
    assert str(caught.value) == f"cat.toml: game #1 ('q3'): field {field!r}: {problem}"


WINE = frozenset({"wine"})
NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("launchers", "platform", "runners", "plan"),
    [
        ({"windows": "q.exe"}, Platform.WINDOWS, NONE, LaunchPlan(LaunchKind.NATIVE, "q.exe")),
        (
            {"windows": "q.exe", "linux": "q"},
            Platform.LINUX,
            NONE,
            LaunchPlan(LaunchKind.NATIVE, "q"),
        ),
        (
            {"windows": "q.exe", "runner": "wine"},
            Platform.LINUX,
            WINE,
            LaunchPlan(LaunchKind.RUNNER, "q.exe", "wine"),
        ),
        (
            {"windows": "q.exe", "runner": "wine"},
            Platform.LINUX,
            NONE,
            LaunchPlan(LaunchKind.NEEDS_RUNNER, None, "wine", "Needs Wine"),
        ),
        (
            {"windows": "q.exe"},
            Platform.LINUX,
            WINE,
            LaunchPlan(LaunchKind.OTHER_PLATFORM, label="Windows only"),
        ),
        (
            {"linux": "q"},
            Platform.WINDOWS,
            NONE,
            LaunchPlan(LaunchKind.OTHER_PLATFORM, label="Linux only"),
        ),
        (
            {"windows": "q.exe", "runner": "wine"},
            Platform.OTHER,
            WINE,
            LaunchPlan(LaunchKind.RUNNER, "q.exe", "wine"),
        ),
    ],
)
def test_launch_plan_per_platform(
    launchers: dict[str, str], platform: Platform, runners: frozenset[str], plan: LaunchPlan
) -> None:
    """The five cases: native, through a found runner, runner missing, other platform only."""
    assert launch_plan(with_launchers(**launchers), platform, runners) == plan


def test_the_plain_form_runs_everywhere_and_no_executable_is_not_playable() -> None:
    """A plain ``executable`` is every platform's; none at all is "Not playable"."""
    assert launch_plan(replace(GAME, executable="run.sh"), Platform.LINUX, NONE) == LaunchPlan(
        LaunchKind.NATIVE, "run.sh"
    )
    plan = launch_plan(GAME, Platform.LINUX, NONE)
    assert (plan.kind, plan.label, plan.playable) == (LaunchKind.NONE, "Not playable", False)


def test_problems_are_sentences_a_player_reads() -> None:
    """Needs-runner, other-platform and none each say why, with the game's name."""
    game = with_launchers(windows="q.exe", runner="wine")
    assert launch_plan(game, Platform.LINUX, NONE).problem("Quake III Arena") == (
        "Quake III Arena is a Windows game: it needs Wine to start on this computer, "
        "and Wine is not installed"
    )
    only = launch_plan(with_launchers(windows="q.exe"), Platform.LINUX, NONE)
    assert only.problem("Quake III Arena") == (
        "Quake III Arena runs only on Windows, not on this computer"
    )
    assert launch_plan(game, Platform.LINUX, WINE).problem("Quake III Arena") is None


def test_the_bundled_catalog_names_linux_launchers_or_a_runner() -> None:
    """On Linux without Wine, every bundled game is either native or labelled; with Wine,
    only the games the catalog marks Windows-only stay unplayable."""
    catalog = load_bundled_catalog()
    plans = {game.id: launch_plan(game, Platform.LINUX, WINE) for game in catalog}
    assert plans["quake3"].kind is LaunchKind.NATIVE
    assert plans["aoe2"].kind is LaunchKind.RUNNER
    assert {gid for gid, plan in plans.items() if not plan.playable} == {"bfbc2", "rocketleague"}
    assert all(game.launchers is not None for game in catalog)


def test_exit_message_only_for_a_quick_failure() -> None:
    """Code 3 after 0.1 s is reported with the log; a clean or late exit is not."""
    assert exit_message("Quake III Arena", 3, 0.1, "/s/game-logs/quake3.log") == (
        "Quake III Arena exited with code 3 after 0.1 s; its output is in /s/game-logs/quake3.log"
    )
    assert exit_message("Q", -9, 2.0, None) == "Q exited with signal 9 after 2.0 s"
    assert exit_message("Q", 0, 0.1, None) is None
    assert exit_message("Q", 1, QUICK_EXIT_SECONDS, None) is None


def test_play_time_adds_sessions_and_reads_in_hours_and_minutes() -> None:
    """Sessions add up; a negative or non-finite session counts as nothing."""
    time = PlayTime().add(3600 + 12 * 60, 100.0).add(float("nan"), 200.0).add(-5, 300.0)
    assert time == PlayTime(3600 + 12 * 60, 300.0)
    assert play_time_label(time.total_seconds) == "Played 1 h 12 min"
    assert play_time_label(7200) == "Played 2 h"
    assert play_time_label(240) == "Played 4 min"
    assert play_time_label(30) == "Played less than a minute"
