"""Install, update, uninstall, remove and play: the local game lifecycle.

Each command asks the lifecycle table (:mod:`lanspread.core.lifecycle`, through
:class:`~lanspread.runtime.states.GameStates`) whether the game's state allows it,
raising the table's refusal otherwise, then claims the game in the operation table
(so a racing second command is refused with ``OperationInProgress``) and returns at once;
the work runs as an owned job. Every job ends the same way, whatever happened (an
unexpected exception included, reported in plain words and logged with its
traceback): the game is rescanned while its operation is still active, the
operation is cleared, and only then is the finished/failed event published, so
the snapshot is always the truth and no game stays locked.

Disk work runs in worker threads; a shutdown asks a running extraction to stop,
and the transaction rolls back to the previous state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from lanspread.core.gameroot import INSTALL_RECORD_FILE, LOCAL_DIR
from lanspread.core.lifecycle import Command, GameState, Refusal
from lanspread.core.operations import OperationKind
from lanspread.errors import LanspreadError, OperationError
from lanspread.files.staging import move_in, staged_root, staged_version
from lanspread.install.extract import ProgressCallback, extract, plan_extraction
from lanspread.install.record import LocalInspection, inspect_local
from lanspread.install.remove import remove_downloaded_game
from lanspread.install.transaction import (
    InstallResult,
    install_game,
    uninstall_game,
    update_game,
)
from lanspread.platform.process import launch, resolve_executable
from lanspread.runtime.events import (
    Event,
    GameExited,
    GameStarted,
    InstallBegin,
    InstallFailed,
    InstallFinished,
    InstallProgress,
    RemoveBegin,
    RemoveFailed,
    RemoveFinished,
    RenamedFile,
    UninstallBegin,
    UninstallFailed,
    UninstallFinished,
)
from lanspread.runtime.jobs import JobRunner
from lanspread.runtime.local_library import LocalLibraryService
from lanspread.runtime.replies import UninstallPlan, VerifyReply
from lanspread.runtime.states import GameStates

log = logging.getLogger(__name__)

Transaction = Callable[..., InstallResult]
"""``install_game`` or ``update_game``."""


class Lifecycle:
    def __init__(
        self,
        local: LocalLibraryService,
        jobs: JobRunner,
        publish: Callable[[Event], None],
        states: GameStates,
    ) -> None:
        self._local = local
        self._states = states
        self._jobs = jobs
        self._publish = publish
        self._running: dict[str, asyncio.subprocess.Process] = {}
        self._stop = threading.Event()

    # -- facts -------------------------------------------------------------

    @property
    def running(self) -> frozenset[str]:
        """Games started with ``play`` that have not exited yet."""
        return frozenset(self._running)

    def require(self, game_id: str, command: Command) -> GameState:
        """The game's state when it allows ``command`` now; otherwise the refusal's error."""
        return self._states.require(game_id, command)

    def stop(self) -> None:
        """Ask running extractions to stop (shutdown)."""
        self._stop.set()

    def _root(self, game_id: str) -> Path:
        return self._local.game_dir / game_id

    # -- install -----------------------------------------------------------

    def install(self, game_id: str) -> OperationKind:
        """Install a downloaded game; over another installed version, install the update.

        Returns the operation started (installing, or updating).
        """
        if self.require(game_id, Command.INSTALL) is GameState.UPDATE_STAGED:
            self._start_update(game_id)
            return OperationKind.UPDATING
        self._local.begin_operation(game_id, OperationKind.INSTALLING)
        self._jobs.spawn(lambda: self.run_install(game_id, update=False))
        return OperationKind.INSTALLING

    def local_update_pending(self, game_id: str) -> bool:
        """The downloaded archives are another version than the installed one."""
        return self._states.facts(game_id).staged

    def repair(self, game_id: str) -> None:
        """Re-extract an installed game from its archives, keeping the player's files."""
        self.require(game_id, Command.REPAIR)
        self._start_update(game_id, staged=False)

    def _start_update(self, game_id: str, *, staged: bool = True) -> None:
        self._local.begin_operation(game_id, OperationKind.UPDATING)
        self._jobs.spawn(lambda: self.run_install(game_id, update=True, staged=staged))

    async def run_install(self, game_id: str, *, update: bool, staged: bool = True) -> None:
        """Extract the game (its operation is already INSTALLING or UPDATING); with
        ``staged``, from its verified staged update when there is one."""

        async def work() -> Event:
            self._publish(InstallBegin(game=game_id, update=update))
            loop = asyncio.get_running_loop()

            def progress(done: int, total: int) -> None:
                event = InstallProgress(game=game_id, extracted_bytes=done, total_bytes=total)
                loop.call_soon_threadsafe(self._publish, event)

            transaction = update_game if update else install_game
            root = self._root(game_id)
            result = await asyncio.to_thread(self._install, transaction, root, progress, staged)
            return _finished(game_id, result)

        await self._operate(
            game_id,
            "update" if update else "install",
            work,
            lambda reason: InstallFailed(game=game_id, reason=reason),
        )

    def _install(
        self, transaction: Transaction, root: Path, progress: ProgressCallback, staged: bool
    ) -> InstallResult:
        """Install from a verified staged update if there is one, then move it in."""
        archives = staged_root(root) if staged and staged_version(root) is not None else None
        result = transaction(root, self._unpacker, progress=progress, archives=archives)
        if archives is not None:
            move_in(root)  # the old payload goes only now: the new version is installed
        return result

    async def _operate(
        self,
        game_id: str,
        what: str,
        work: Callable[[], Awaitable[Event]],
        failed: Callable[[str], Event],
    ) -> None:
        """Run an operation's work, then release the game and publish how it ended.

        Every ending goes through here: success, an expected failure and a bug alike
        rescan the game, clear its operation and publish one finished/failed event.
        """
        try:
            ending = await work()
        except Exception as exc:
            ending = failed(_failure_reason(exc, what, game_id))
        try:
            await self._local.end_operation(game_id)
        except Exception:
            log.exception("rescanning %s after its %s failed", game_id, what)
        self._publish(ending)

    def _unpacker(self, archives_root: Path, destination: Path, progress: ProgressCallback) -> None:
        plan = plan_extraction(archives_root)
        extract(plan, destination, progress=progress, should_stop=self._stop.is_set)

    # -- uninstall and remove ------------------------------------------------

    def uninstall(self, game_id: str, *, keep_saves: bool = False) -> None:
        self.require(game_id, Command.UNINSTALL)
        if keep_saves and not (self._root(game_id) / INSTALL_RECORD_FILE).is_file():
            raise Refusal.NO_RECORD_TO_KEEP_SAVES.error(game_id)
        self._local.begin_operation(game_id, OperationKind.UNINSTALLING)
        self._jobs.spawn(lambda: self._run_uninstall(game_id, keep_saves=keep_saves))

    async def uninstall_plan(self, game_id: str, *, keep_saves: bool) -> UninstallPlan:
        """What :meth:`uninstall` would delete and keep; changes nothing."""
        self.require(game_id, Command.UNINSTALL)
        found = await self._inspect(game_id, "uninstall check")
        if keep_saves and found.record is None:
            raise Refusal.NO_RECORD_TO_KEEP_SAVES.error(game_id)
        players = found.diff.players if found.record is not None else ()
        return UninstallPlan(
            game=game_id,
            keep_saves=keep_saves,
            delete_files=found.files - len(players) if keep_saves else found.files,
            delete_bytes=found.bytes - found.players_bytes if keep_saves else found.bytes,
            players_files=players,
            players_bytes=found.players_bytes,
        )

    async def verify(self, game_id: str) -> VerifyReply:
        """Compare ``local/`` with its install record (hashing every shipped file)."""
        self.require(game_id, Command.VERIFY)
        found = await self._inspect(game_id, "verify")
        if found.record is None:
            raise Refusal.NO_INSTALL_RECORD.error(game_id)
        diff = found.diff
        return VerifyReply(
            game=game_id,
            version=found.record.version,
            ok=not (diff.changed or diff.missing),
            changed=diff.changed,
            missing=diff.missing,
            added=diff.added,
            shipped_files=len(found.record.files),
        )

    async def _inspect(self, game_id: str, what: str) -> LocalInspection:
        """``local/`` against its install record; a bug becomes a plain refusal.

        Nothing is claimed here, so there is nothing to release: the caller gets
        an :class:`OperationError` it can show instead of an internal error.
        """
        try:
            return await asyncio.to_thread(inspect_local, self._root(game_id))
        except LanspreadError:
            raise
        except Exception as exc:
            raise OperationError(_failure_reason(exc, what, game_id)) from exc

    async def _run_uninstall(self, game_id: str, *, keep_saves: bool) -> None:
        async def work() -> Event:
            self._publish(UninstallBegin(game=game_id))
            result = await asyncio.to_thread(
                uninstall_game, self._root(game_id), keep_saves=keep_saves
            )
            return UninstallFinished(game=game_id, kept=result.kept)

        await self._operate(
            game_id,
            "uninstall",
            work,
            lambda reason: UninstallFailed(game=game_id, reason=reason),
        )

    def remove(self, game_id: str) -> None:
        self.require(game_id, Command.REMOVE)
        if (self._root(game_id) / LOCAL_DIR).is_dir():
            raise Refusal.KEPT_FILES.error(game_id)
        self._local.begin_operation(game_id, OperationKind.REMOVING)
        self._jobs.spawn(lambda: self._run_remove(game_id))

    async def _run_remove(self, game_id: str) -> None:
        async def work() -> Event:
            self._publish(RemoveBegin(game=game_id))
            await asyncio.to_thread(
                remove_downloaded_game, self._local.game_dir, game_id, self._local.catalog
            )
            return RemoveFinished(game=game_id)

        await self._operate(
            game_id,
            "removal",
            work,
            lambda reason: RemoveFailed(game=game_id, reason=reason),
        )

    # -- play ----------------------------------------------------------------

    async def play(self, game_id: str) -> int:
        """Start the game's executable; returns its process id."""
        self.require(game_id, Command.PLAY)
        name = self._local.require_catalog_game(game_id).executable
        if name is None:  # the table's guard refused this already; this narrows the type
            raise Refusal.NO_EXECUTABLE.error(game_id)
        local_dir = self._root(game_id) / LOCAL_DIR
        executable = await asyncio.to_thread(resolve_executable, local_dir, name)
        process = await launch(executable, local_dir)
        self._running[game_id] = process
        self._publish(GameStarted(game=game_id, pid=process.pid))
        self._jobs.spawn(lambda: self._watch(game_id, process))
        return process.pid

    async def _watch(self, game_id: str, process: asyncio.subprocess.Process) -> None:
        try:
            returncode = await process.wait()
        finally:
            self._running.pop(game_id, None)
        self._publish(GameExited(game=game_id, returncode=returncode))


def _failure_reason(exc: Exception, what: str, game_id: str) -> str:
    """What the player reads: our own errors as they are, a bug in plain words (the
    traceback goes to the log)."""
    if isinstance(exc, LanspreadError | OSError) and str(exc):
        log.warning("%s of %s failed: %s", what, game_id, exc)
        return str(exc)
    log.exception("%s of %s failed unexpectedly", what, game_id)
    detail = str(exc) or type(exc).__name__
    return f"the {what} stopped on an unexpected error ({detail}); the log has the details"


def _finished(game_id: str, result: InstallResult) -> InstallFinished:
    return InstallFinished(
        game=game_id,
        version=result.version,
        kept=result.kept,
        renamed=tuple(RenamedFile(path=c.source, kept_as=c.target) for c in result.renamed),
    )
