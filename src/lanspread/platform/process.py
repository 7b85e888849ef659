"""Launching and stopping a game as a child process, portably.

The game must outlive a launcher restart, so it gets its own session (POSIX) or
process group (Windows) and never inherits the launcher's standard streams: its
output goes to a log file lanspread names, so a game that fails at once leaves
its reason somewhere a player can read.

Stopping asks first and insists after :data:`STOP_GRACE_SECONDS`: on POSIX a
``SIGTERM`` then a ``SIGKILL`` to the game's whole session (a launcher script and
the game it started alike); on Windows ``taskkill /T`` then ``taskkill /T /F`` on
the process tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lanspread.core.launching import Platform
from lanspread.errors import InvalidGameState

STOP_GRACE_SECONDS = 10.0
"""How long a game may take to close after it was asked to: long enough to save, short
enough that a hung game does not keep Stop waiting."""
# taskkill answers at once; one that hangs must not hold the Stop job forever.
TASKKILL_TIMEOUT = 10.0


def current_platform(platform: str = sys.platform) -> Platform:
    """This computer's platform, as the catalog names launchers."""
    if platform == "win32":
        return Platform.WINDOWS
    if platform.startswith("linux"):
        return Platform.LINUX
    return Platform.OTHER


def runners_found(programs: Iterable[str]) -> frozenset[str]:
    """The runner programs (``wine``) found on this computer's ``PATH``; Windows needs none."""
    if sys.platform == "win32":
        found: frozenset[str] = frozenset()
    else:
        found = frozenset(program for program in programs if shutil.which(program) is not None)
    return found


def resolve_executable(local_dir: Path, relative: str, *, needs_exec_bit: bool = True) -> Path:
    """The executable ``relative`` inside ``local_dir``; never a path that leaves it."""
    base = local_dir.resolve()
    candidate = (local_dir / relative).resolve()
    if not candidate.is_relative_to(base):
        raise InvalidGameState(f"{relative!r} resolves outside the installed game")
    if not candidate.is_file():
        raise InvalidGameState(f"the installed game has no {relative!r}")
    if needs_exec_bit and os.name == "posix" and not os.access(candidate, os.X_OK):
        raise InvalidGameState(f"{relative!r} is not executable on this system")
    return candidate


async def launch(
    executable: Path, cwd: Path, *, runner: str | None = None, log: Path | None = None
) -> asyncio.subprocess.Process:
    """Start ``executable`` (through ``runner`` when given) in ``cwd``, its output to ``log``."""
    # Its own process group (Windows) or session (POSIX): the game outlives the launcher.
    detach: dict[str, Any]
    if sys.platform == "win32":
        detach = {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        }
    else:
        detach = {"start_new_session": True}
    argv = [runner, str(executable)] if runner is not None else [str(executable)]
    output: IO[bytes] | int = subprocess.DEVNULL
    try:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            output = log.open("wb")
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output, stderr=output, **detach
        )
    except OSError as exc:
        raise InvalidGameState(f"cannot start {executable.name}: {exc.strerror or exc}") from exc
    finally:
        if not isinstance(output, int):
            output.close()  # the child holds its own copy
    return process


async def stop_process(
    process: asyncio.subprocess.Process, grace: float = STOP_GRACE_SECONDS
) -> bool:
    """Ask the game to close, and force it after ``grace`` seconds; True when it had to be
    forced."""
    if process.returncode is not None:
        return False
    await _ask(process, force=False)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        await _ask(process, force=True)
        await process.wait()
        return True
    return False


async def _ask(process: asyncio.subprocess.Process, *, force: bool) -> None:
    if sys.platform == "win32":
        flags = ["/F"] if force else []
        killer = await asyncio.create_subprocess_exec(
            "taskkill", "/PID", str(process.pid), "/T", *flags,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(killer.wait(), TASKKILL_TIMEOUT)
        if force and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    else:
        # The game leads its own session (start_new_session): its group id is its pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL if force else signal.SIGTERM)
