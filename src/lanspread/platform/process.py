"""Launching a game as a child process, portably.

The game must outlive a launcher restart, so it gets its own session (POSIX) or
process group (Windows) and never inherits the launcher's standard streams.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lanspread.errors import InvalidGameState


def resolve_executable(local_dir: Path, relative: str) -> Path:
    """The executable ``relative`` inside ``local_dir``; never a path that leaves it."""
    base = local_dir.resolve()
    candidate = (local_dir / relative).resolve()
    if not candidate.is_relative_to(base):
        raise InvalidGameState(f"{relative!r} resolves outside the installed game")
    if not candidate.is_file():
        raise InvalidGameState(f"the installed game has no {relative!r}")
    if os.name == "posix" and not os.access(candidate, os.X_OK):
        raise InvalidGameState(f"{relative!r} is not executable on this system")
    return candidate


async def launch(executable: Path, cwd: Path) -> asyncio.subprocess.Process:
    """Start ``executable`` with working directory ``cwd``."""
    # Its own process group (Windows) or session (POSIX): the game outlives the launcher.
    detach: dict[str, Any]
    if sys.platform == "win32":
        detach = {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        }
    else:
        detach = {"start_new_session": True}
    try:
        process = await asyncio.create_subprocess_exec(
            str(executable),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **detach,
        )
    except OSError as exc:
        raise InvalidGameState(f"cannot start {executable.name}: {exc.strerror or exc}") from exc
    return process
