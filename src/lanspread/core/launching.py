"""Whether and how a catalog game can start on this computer, and how long it was played.

The catalog names a game's launcher per platform (:class:`~lanspread.core.catalog.Launchers`):
a Windows executable, a Linux one, and a runner (such as Wine) that starts the
Windows executable on Linux when no Linux launcher exists. :func:`launch_plan`
answers, for this computer's platform and the runners found on it, which of
five cases holds:

==================  =========================================================
kind                meaning
==================  =========================================================
native              an executable for this platform: start it
runner              only the Windows executable, and its runner is here
needs-runner        only the Windows executable, and its runner is missing
other-platform      executables only for another platform ("Windows only")
none                the catalog names no executable at all
==================  =========================================================

A player is warned before downloading a game of the last three kinds.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Set
from dataclasses import dataclass
from types import MappingProxyType

from lanspread.core.catalog import CatalogGame

RUNNERS: Mapping[str, str] = MappingProxyType({"wine": "Wine"})
"""The runners a catalog may name, by program name, with the name players know."""

QUICK_EXIT_SECONDS = 10.0
"""A game that ends with an error code this soon after it started did not really run:
the player is told (the code, the time and the log). A later non-zero exit is a game
that was played and closed, whatever its code."""


class Platform(enum.Enum):
    WINDOWS = "windows"
    LINUX = "linux"
    OTHER = "other"
    """Any other system (macOS, BSD): only an every-platform executable or a runner starts."""


class LaunchKind(enum.Enum):
    NATIVE = "native"
    RUNNER = "runner"
    NEEDS_RUNNER = "needs-runner"
    OTHER_PLATFORM = "other-platform"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    kind: LaunchKind
    executable: str | None = None
    """The executable to start, relative to ``local/`` (``native`` and ``runner``)."""
    runner: str | None = None
    """The runner's program name (``runner`` and ``needs-runner``)."""
    label: str | None = None
    """A short tag for the card ("Needs Wine", "Windows only"); ``None`` when it runs."""

    @property
    def playable(self) -> bool:
        return self.kind in {LaunchKind.NATIVE, LaunchKind.RUNNER}

    def problem(self, name: str) -> str | None:
        """Why ``name`` cannot start on this computer, as a player reads it; ``None``
        when it can."""
        if self.kind is LaunchKind.NEEDS_RUNNER:
            runner = runner_name(self.runner)
            return (
                f"{name} is a Windows game: it needs {runner} to start on this computer, "
                f"and {runner} is not installed"
            )
        if self.kind is LaunchKind.OTHER_PLATFORM:
            return f"{name} runs only on {self.label_platform}, not on this computer"
        if self.kind is LaunchKind.NONE:
            return f"the catalog names no program to start {name}"
        return None

    @property
    def label_platform(self) -> str:
        return (self.label or "").removesuffix(" only")


def runner_name(program: str | None) -> str:
    """The name players know a runner by ("Wine")."""
    return RUNNERS.get(program or "", program or "a runner")


def launch_plan(game: CatalogGame, platform: Platform, runners_found: Set[str]) -> LaunchPlan:
    """How ``game`` starts on ``platform`` with the runner programs ``runners_found``."""
    launchers = game.launchers
    if launchers is None:
        if game.executable is None:
            return LaunchPlan(LaunchKind.NONE, label="Not playable")
        return LaunchPlan(LaunchKind.NATIVE, executable=game.executable)
    if platform is Platform.WINDOWS and launchers.windows is not None:
        return LaunchPlan(LaunchKind.NATIVE, executable=launchers.windows)
    if platform is Platform.LINUX and launchers.linux is not None:
        return LaunchPlan(LaunchKind.NATIVE, executable=launchers.linux)
    if platform is not Platform.WINDOWS and launchers.windows is not None:
        if launchers.runner is not None:
            if launchers.runner in runners_found:
                return LaunchPlan(
                    LaunchKind.RUNNER, executable=launchers.windows, runner=launchers.runner
                )
            label = f"Needs {runner_name(launchers.runner)}"
            return LaunchPlan(LaunchKind.NEEDS_RUNNER, runner=launchers.runner, label=label)
        return LaunchPlan(LaunchKind.OTHER_PLATFORM, label="Windows only")
    if launchers.linux is not None:
        return LaunchPlan(LaunchKind.OTHER_PLATFORM, label="Linux only")
    return LaunchPlan(LaunchKind.NONE, label="Not playable")


def exit_message(name: str, returncode: int, seconds: float, log: str | None) -> str | None:
    """What the player reads when a game ended at once with an error code; ``None`` for a
    game that ran (a clean exit, or one after :data:`QUICK_EXIT_SECONDS`)."""
    if returncode == 0 or seconds >= QUICK_EXIT_SECONDS:
        return None
    how = f"code {returncode}" if returncode > 0 else f"signal {-returncode}"
    text = f"{name} exited with {how} after {seconds:.1f} s"
    return f"{text}; its output is in {log}" if log else text


@dataclass(frozen=True, slots=True)
class PlayTime:
    """How long a game was played here, in all, and when it last ended."""

    total_seconds: float = 0.0
    last_played: float | None = None
    """Seconds since the epoch when the game last exited; ``None``: never played."""

    def add(self, seconds: float, ended_at: float) -> PlayTime:
        """This record with one more session of ``seconds`` that ended at ``ended_at``."""
        spent = seconds if math.isfinite(seconds) and seconds > 0 else 0.0
        return PlayTime(self.total_seconds + spent, ended_at)


def play_time_label(total_seconds: float) -> str:
    """``"Played 3 h 12 min"``, ``"Played 4 min"``, ``"Played less than a minute"``."""
    minutes = int(total_seconds // 60) if math.isfinite(total_seconds) else 0
    if minutes < 1:
        return "Played less than a minute"
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return f"Played {rest} min"
    return f"Played {hours} h {rest} min" if rest else f"Played {hours} h"
