"""Opening a game's folder in the platform file manager, safely.

:func:`resolve_game_root` accepts only a catalog id whose root is a real folder
directly inside the game directory (never a symlink, never a path that leaves it);
:func:`open_folder` hands that folder to ``explorer`` (Windows), ``open`` (macOS) or
``xdg-open`` (everything else) and reports a launcher that fails or is missing.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from lanspread.core.catalog import Catalog, is_valid_game_id
from lanspread.errors import InvalidGameState, StorageError, UnknownGame

# xdg-open returns as soon as it has handed the folder over; one that takes longer
# is waiting on something else (a terminal file manager, a dialog) and keeps running.
OPEN_TIMEOUT = 10.0


def resolve_game_root(game_dir: Path, catalog: Catalog, game_id: str) -> Path:
    """The existing root folder of catalog game ``game_id`` inside ``game_dir``."""
    if not is_valid_game_id(game_id) or game_id not in catalog:
        raise UnknownGame(f"{game_id!r} is not a game of the catalog")
    base = game_dir.resolve()
    root = base / game_id
    if root.is_symlink():
        raise InvalidGameState(f"the folder of {game_id} is a symbolic link; not opening it")
    if not root.is_dir():
        raise InvalidGameState(f"{game_id} has no files in {base}")
    if root.resolve().parent != base:
        raise InvalidGameState(f"the folder of {game_id} resolves outside {base}")
    return root


def file_manager_command(folder: Path, platform: str = sys.platform) -> list[str]:
    """The argument list that shows ``folder`` in the file manager of ``platform``."""
    if platform == "win32":
        return ["explorer", str(folder)]
    if platform == "darwin":
        return ["open", str(folder)]
    return ["xdg-open", str(folder)]


async def open_folder(folder: Path) -> None:
    """Show ``folder`` in the file manager; :class:`StorageError` when that cannot happen."""
    command = file_manager_command(folder)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=sys.platform != "win32",
        )
    except OSError as exc:
        raise StorageError(
            f"cannot open the file manager ({command[0]}): {exc.strerror or exc}"
        ) from exc
    try:
        returncode = await asyncio.wait_for(process.wait(), OPEN_TIMEOUT)
    except TimeoutError:
        # A slow launcher in its own session: it finishes on its own and asyncio reaps it.
        return
    # explorer.exe exits with 1 even when it opened the folder.
    if returncode != 0 and sys.platform != "win32":
        raise StorageError(f"{command[0]} could not open {folder} (exit status {returncode})")
