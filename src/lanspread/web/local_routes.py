"""Routes that show this computer's folders to the local player only.

``POST /api/games/{id}/open-folder`` shows a game's folder in the file manager; where
none can be started it answers with the path to copy instead of a command's error.
``POST /api/folders`` is the folder picker of the first-run screen and the settings:
the subfolders of one folder and the free space on its disk (see
:mod:`lanspread.storage.folders`). Both sit behind the UI's session guard like every
``/api`` route: only the page this peer opened can ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import msgspec
from aiohttp import web

from lanspread.errors import BadRequest, LanspreadError, StorageError
from lanspread.platform.files import resolve_game_root
from lanspread.storage.folders import MAX_LISTED_FOLDERS, browse_start, list_folders
from lanspread.web.host import RuntimeHost
from lanspread.web.replies import error_response, ok_response, per_game
from lanspread.web.settings_form import format_free_space

FolderOpener = Callable[[Path], Awaitable[None]]
# A path typed into the picker; far above any real one.
MAX_BROWSE_PATH_LENGTH = 4096


class BrowseRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: Annotated[str, msgspec.Meta(max_length=MAX_BROWSE_PATH_LENGTH)] = ""
    """The folder to list; empty: the player's home folder."""


class FolderView(msgspec.Struct, frozen=True):
    """What the picker draws."""

    path: str
    parent: str | None
    folders: tuple[str, ...]
    free_label: str
    """ "412 GB free" or "free space unknown"."""
    note: str | None
    """Why the list is incomplete, when it is."""


class OpenedFolder(msgspec.Struct, frozen=True, omit_defaults=True):
    path: str
    opened: bool
    message: str | None = None
    """When no file manager opened it: what the player reads, with the path to copy."""


class LocalRoutes:
    def __init__(self, host: RuntimeHost, opener: FolderOpener) -> None:
        self._host = host
        self._opener = opener

    def register(self, app: web.Application) -> None:
        app.router.add_post("/api/games/{game}/open-folder", per_game(self.open_folder))
        app.router.add_post("/api/folders", self.browse)

    async def open_folder(self, game_id: str) -> OpenedFolder:
        local = self._host.runtime.local
        root = await asyncio.to_thread(resolve_game_root, local.game_dir, local.catalog, game_id)
        try:
            await self._opener(root)
        except StorageError:
            message = f"No file manager could open the folder here. Its path is {root}"
            return OpenedFolder(path=str(root), opened=False, message=message)
        return OpenedFolder(path=str(root), opened=True)

    async def browse(self, request: web.Request) -> web.Response:
        try:
            wanted = msgspec.json.decode(await request.read(), type=BrowseRequest)
            start = browse_start(wanted.path, Path.home())
            listing = await asyncio.to_thread(list_folders, start)
        except msgspec.DecodeError as exc:  # a ValidationError is a DecodeError too
            return error_response(BadRequest(f"not a folder request: {exc}"))
        except LanspreadError as exc:
            return error_response(exc)
        notes = []
        if listing.truncated:
            notes.append(f"only the first {MAX_LISTED_FOLDERS} folders are shown; type a path")
        if listing.unnamed:
            notes.append(f"{listing.unnamed} with names that cannot be shown are left out")
        return ok_response(
            FolderView(
                path=listing.path,
                parent=listing.parent,
                folders=listing.folders,
                free_label=format_free_space(listing.free_bytes),
                note="; ".join(notes).capitalize() if notes else None,
            )
        )
