"""The local library service: scans, the file monitor and the operation table.

Theory of operation
-------------------
The service holds this peer's :class:`~lanspread.core.library.LocalLibrary` and
its :class:`~lanspread.core.operations.OperationTable`. Facts reach the library
through scans only, and every scan runs under one lock, so a full scan can never
overwrite a newer single-game result.

* A watcher notice for a game goes through the per-game :class:`RescanGate`; a
  burst of notices costs one scan plus at most one more. Notices for a game with
  an active operation are dropped: the operation owns the root.
* A full scan (at start, every ``fallback_interval`` seconds, after a game-dir
  change) skips games with an active operation and keeps their previous summary.
* When an operation ends, the game is rescanned while the operation is still
  active (exempt from the freeze), then the operation is cleared. So a snapshot
  never shows an idle game with stale files.

Every library change publishes ``LocalLibraryChanged`` with the whole library and
hands the delta of the *announced* library to ``on_delta`` (the network pushes it to
peers); every operation change publishes ``ActiveOperationsChanged`` with the whole
table.

Withheld copies
---------------
A game whose install found a damaged archive is *withheld*: the serve gate refuses
it, and the announced library (:attr:`LocalLibraryService.announced`, what peers
hear) leaves it out, with its own revisions, so peers stop listing this peer as its
source. The local library still shows it (the player is offered Re-download and
Remove). The marks are saved in the state directory (``storage.withheld``) and
survive a restart; removing the files (by lanspread or by hand), a finished
download of the game or a successful install lifts them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lanspread.core.bitfield import PartialAvailability
from lanspread.core.catalog import Catalog, CatalogGame
from lanspread.core.library import (
    GameSummary,
    LibraryDelta,
    LibrarySnapshot,
    LocalLibrary,
    announced_games,
)
from lanspread.core.operations import OperationKind, OperationTable
from lanspread.core.partial import partial_summary
from lanspread.core.rescan_gate import RescanGate
from lanspread.errors import OperationInProgress, StorageError, UnknownGame
from lanspread.runtime.events import ActiveOperationsChanged, Event, LocalLibraryChanged
from lanspread.storage.folders import StrayFolder, stray_folders
from lanspread.storage.gamedir import prepare_game_dir
from lanspread.storage.index import LibraryIndex
from lanspread.storage.monitor import DirectoryMonitor
from lanspread.storage.scanner import LibraryScanner
from lanspread.storage.withheld import load_withheld, save_withheld

log = logging.getLogger(__name__)

DEFAULT_FALLBACK_SCAN_INTERVAL = 300.0
INDEX_FILE_NAME = "library_index.json"


@dataclass(frozen=True, slots=True)
class _FullScan:
    pass


_FULL_SCAN = _FullScan()


class LocalLibraryService:
    def __init__(
        self,
        *,
        game_dir: Path,
        state_dir: Path,
        catalog: Catalog,
        publish: Callable[[Event], None],
        on_delta: Callable[[LibraryDelta], None] | None = None,
        fallback_interval: float = DEFAULT_FALLBACK_SCAN_INTERVAL,
    ) -> None:
        self._catalog = catalog
        self._state_dir = state_dir
        self._publish = publish
        self._on_delta = on_delta
        self._fallback_interval = fallback_interval
        self.library = LocalLibrary()
        self.operations = OperationTable()
        self.strays: tuple[StrayFolder, ...] = ()
        """Folders in the game folder named like no catalog game (the last full scan's)."""
        self._announced = LocalLibrary()
        self._withheld: dict[str, str] = load_withheld(state_dir, game_dir)
        self._gate = RescanGate()
        self._scan_lock = asyncio.Lock()
        self._requests: asyncio.Queue[str | _FullScan] = asyncio.Queue()
        self._dir_changed = asyncio.Event()
        self._switching = False
        self._monitor: DirectoryMonitor | None = None
        self._game_dir = game_dir
        self._scanner = self._make_scanner(game_dir)

    # -- state -------------------------------------------------------------

    @property
    def game_dir(self) -> Path:
        return self._game_dir

    @property
    def state_dir(self) -> Path:
        return self._state_dir

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @property
    def snapshot(self) -> LibrarySnapshot:
        return self.library.snapshot

    @property
    def announced(self) -> LibrarySnapshot:
        """The library peers are told: the local one without the withheld games."""
        return self._announced.snapshot

    @property
    def withheld(self) -> Mapping[str, str]:
        """Games whose install failed on a damaged archive, with the player's sentence:
        neither served nor announced to peers until an install of it succeeds or its
        files are removed."""
        return self._withheld

    async def withhold(self, game_id: str, sentence: str) -> None:
        """Mark ``game_id``'s copy damaged: save the mark and stop announcing it."""
        if self._withheld.get(game_id) == sentence:
            return
        self._withheld[game_id] = sentence
        await self._save_withheld()

    async def release(self, game_id: str) -> None:
        """Lift ``game_id``'s mark (its files are gone or it installed): announce it again."""
        if self._withheld.pop(game_id, None) is None:
            return
        await self._save_withheld()

    async def _lift_gone(self) -> None:
        """Lift the marks of games whose files are gone (a player deleted the folder):
        a copy that comes back later is a new one."""
        gone = [
            game_id
            for game_id in self._withheld
            if self.library.get(game_id) is None and not self.operations.is_active(game_id)
        ]
        for game_id in gone:
            del self._withheld[game_id]
        if gone:
            await self._save_withheld()

    async def _save_withheld(self) -> None:
        marks = dict(self._withheld)
        await asyncio.to_thread(save_withheld, self._state_dir, self._game_dir, marks)
        self._announce(self._announced_delta())

    def require_catalog_game(self, game_id: str) -> CatalogGame:
        """The catalog entry of ``game_id``; :class:`UnknownGame` for any other id."""
        game = self._catalog.get(game_id)
        if game is None:
            raise UnknownGame(f"{game_id!r} is not a game of the catalog")
        return game

    # -- scans ---------------------------------------------------------------

    async def full_scan(self) -> None:
        async with self._scan_lock:
            await self._full_scan_locked()

    async def refresh_game(self, game_id: str) -> GameSummary | None:
        """Rescan one game now, even while its operation is active."""
        async with self._scan_lock:
            return await self._scan_game_locked(game_id, exempt=True)

    def notice(self, game_id: str) -> None:
        """A watcher saw a change in ``game_id``'s root."""
        if self.operations.is_active(game_id):
            return
        if self._gate.notice(game_id):
            self._requests.put_nowait(game_id)

    async def _full_scan_locked(self) -> bool:
        skipped = set(self.operations.snapshot())
        scanned = await asyncio.to_thread(self._scanner.scan_all, skipped)
        strays = await asyncio.to_thread(stray_folders, self._game_dir, self._catalog)
        strays_changed, self.strays = strays != self.strays, strays
        previous = self.library.games
        frozen = skipped | set(self.operations.snapshot())
        games = {gid: summary for gid, summary in scanned.items() if gid not in frozen}
        games.update({gid: previous[gid] for gid in frozen if gid in previous})
        changed = self._commit(self.library.replace_all(games.values()))
        await self._lift_gone()
        if strays_changed and not changed:
            self._publish_library()  # only the unknown folders changed: redraw the page
        self._sync_watches()
        return changed

    def _sync_watches(self) -> None:
        """Watch every root a full scan may have found; a new watch means one more rescan."""
        if self._monitor is None:
            return
        for game_id in sorted(self._catalog.ids):
            if self._monitor.sync_root_watch(game_id):
                self.notice(game_id)

    async def _scan_game_locked(self, game_id: str, *, exempt: bool) -> GameSummary | None:
        if not exempt and self.operations.is_active(game_id):
            return self.library.get(game_id)
        summary = await asyncio.to_thread(self._scanner.scan_game, game_id)
        if not exempt and self.operations.is_active(game_id):
            return self.library.get(game_id)
        self._commit(self.library.update({game_id: summary}))
        await self._lift_gone()
        if self._monitor is not None and self._monitor.sync_root_watch(game_id):
            self.notice(game_id)
        return summary

    def _commit(self, delta: LibraryDelta | None) -> bool:
        """Publish a change; True when there was one."""
        if delta is None:
            return False
        self._publish_library()
        self._announce(self._announced_delta())
        return True

    def _announced_delta(self) -> LibraryDelta | None:
        games = announced_games(self.library.snapshot.games, self._withheld)
        return self._announced.replace_all(games)

    def _announce(self, delta: LibraryDelta | None) -> None:
        if delta is not None and self._on_delta is not None:
            self._on_delta(delta)

    def _publish_library(self) -> None:
        snapshot = self.library.snapshot
        self._publish(LocalLibraryChanged(revision=snapshot.revision, games=snapshot.games))

    def announce_partial(
        self, game_id: str, version: str | None, partial: PartialAvailability
    ) -> None:
        """Announce the verified chunks of ``game_id``'s running download (a library delta)."""
        if not self.operations.is_active(game_id):
            return  # the download is over: its rescan is the truth now
        scanned = self.library.get(game_id)
        self._commit(
            self.library.update(
                {game_id: partial_summary(game_id, scanned, version=version, partial=partial)}
            )
        )

    # -- operations ----------------------------------------------------------

    def begin_operation(self, game_id: str, kind: OperationKind) -> None:
        self.require_catalog_game(game_id)
        if self._switching:
            raise OperationInProgress(f"cannot start on {game_id}: the game directory is changing")
        self.operations.begin(game_id, kind)
        self._publish_operations()

    def handoff(self, game_id: str, kind: OperationKind) -> None:
        self.operations.handoff(game_id, kind)
        self._publish_operations()

    async def end_operation(self, game_id: str) -> None:
        """Refresh the game while its operation is active, then clear the operation."""
        try:
            await self.refresh_game(game_id)
        finally:
            self.operations.end(game_id)
            self._gate.forget(game_id)
            self._publish_operations()

    def _publish_operations(self) -> None:
        table = self.operations.snapshot()
        self._publish(
            ActiveOperationsChanged(operations={gid: kind.value for gid, kind in table.items()})
        )

    # -- game directory ------------------------------------------------------

    async def set_game_dir(
        self, path: Path, settle: Callable[[Path], Awaitable[None]] | None = None
    ) -> Path:
        """Switch to another game directory; refused while any operation runs.

        ``settle`` runs on the new directory before it is scanned or watched,
        exactly as at a start (install recovery, ownership-proven orphan
        settling, paused detection), while no operation may begin: the old
        directory's state must never act on the new one.
        """
        if self.operations.snapshot():
            busy = ", ".join(sorted(self.operations.snapshot()))
            raise OperationInProgress(f"cannot change the game directory while busy: {busy}")
        if self._switching:
            raise OperationInProgress("the game directory is already changing")
        self._switching = True
        try:
            new_dir = await asyncio.to_thread(prepare_game_dir, path)
            async with self._scan_lock:
                if self.operations.snapshot():
                    raise OperationInProgress("cannot change the game directory while busy")
                if settle is not None:
                    await settle(new_dir)
                self._game_dir = new_dir
                self._withheld = await asyncio.to_thread(load_withheld, self._state_dir, new_dir)
                self._scanner = self._make_scanner(new_dir)
                if not await self._full_scan_locked():
                    # The UI needs the new path's library even when it equals the old one.
                    self._publish_library()
                    self._announce(self._announced_delta())  # its own withheld marks
        finally:
            self._switching = False
        self._dir_changed.set()
        return new_dir

    async def flush(self) -> None:
        """Write single-game rescans to the persisted index (they are kept in memory)."""
        async with self._scan_lock:
            try:
                await asyncio.to_thread(self._scanner.flush)
            except (StorageError, OSError) as exc:
                log.warning("cannot save the library index: %s", exc)

    def _make_scanner(self, game_dir: Path) -> LibraryScanner:
        index = LibraryIndex.load(self._state_dir / INDEX_FILE_NAME, game_dir)
        return LibraryScanner(game_dir, self._catalog, index)

    # -- service -------------------------------------------------------------

    async def run(self) -> None:
        """The monitor service: watch, rescan on notices, fallback-scan periodically."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._scan_worker(), name="library:scan-worker")
            group.create_task(self._fallback_loop(), name="library:fallback-scan")
            await self._watch_loop()

    async def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._dir_changed.clear()
            monitor = DirectoryMonitor(self._game_dir, self._catalog.ids, self.notice, loop)
            await asyncio.to_thread(monitor.start)
            self._monitor = monitor
            # Changes made before the watches existed were not seen: reconcile once.
            self._requests.put_nowait(_FULL_SCAN)
            try:
                await self._dir_changed.wait()
            finally:
                self._monitor = None
                monitor.stop()

    async def _scan_worker(self) -> None:
        while True:
            request = await self._requests.get()
            if isinstance(request, _FullScan):
                try:
                    await self.full_scan()
                except (StorageError, OSError) as exc:
                    log.warning("fallback scan failed: %s", exc)
                continue
            try:
                async with self._scan_lock:
                    await self._scan_game_locked(request, exempt=False)
            except (StorageError, OSError) as exc:
                log.warning("rescan of %s failed (the fallback scan retries): %s", request, exc)
            finally:
                if self._gate.finished(request):
                    self._requests.put_nowait(request)

    async def _fallback_loop(self) -> None:
        while True:
            await asyncio.sleep(self._fallback_interval)
            self._requests.put_nowait(_FULL_SCAN)
