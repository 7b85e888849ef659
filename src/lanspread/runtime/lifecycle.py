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
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from lanspread.core.gameroot import INSTALL_RECORD_FILE, LOCAL_DIR
from lanspread.core.launching import PlayTime, exit_message
from lanspread.core.lifecycle import Command, GameState, Refusal
from lanspread.core.operations import OperationKind
from lanspread.errors import InvalidGameState, LanspreadError, OperationError
from lanspread.files.staging import move_in, staged_root, staged_version
from lanspread.install.archive_errors import CorruptArchive
from lanspread.install.extract import ProgressCallback, extract, plan_extraction
from lanspread.install.record import LocalInspection, inspect_local
from lanspread.install.remove import remove_downloaded_game
from lanspread.install.transaction import (
    InstallResult,
    install_game,
    uninstall_game,
    update_game,
)
from lanspread.platform.process import launch, resolve_executable, stop_process
from lanspread.runtime import events
from lanspread.runtime.events import Event
from lanspread.runtime.jobs import JobRunner
from lanspread.runtime.local_library import LocalLibraryService
from lanspread.runtime.programs import Programs
from lanspread.runtime.replies import UninstallPlan, VerifyReply
from lanspread.runtime.states import GameStates
from lanspread.storage.playtime import PlayTimeStore

log = logging.getLogger(__name__)

GAME_LOG_FOLDER = "game-logs"
"""Where each game's output goes, one file per game, in the state directory."""
Transaction = Callable[..., InstallResult]
"""``install_game`` or ``update_game``."""


class Lifecycle:
    def __init__(
        self,
        local: LocalLibraryService,
        jobs: JobRunner,
        publish: Callable[[Event], None],
        states: GameStates,
        *,
        programs: Programs,
        pinned: Callable[[str, str | None], str | None],
    ) -> None:
        self._programs = programs
        self._pinned = pinned
        """The manifest digest the party catalog pins for a game's version, if any."""
        self._local = local
        self._states = states
        self._jobs = jobs
        self._publish = publish
        self._running: dict[str, asyncio.subprocess.Process] = {}
        self._stopping: set[str] = set()
        self._stop = threading.Event()
        self._play_times = PlayTimeStore(local.state_dir)

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
            self._publish(events.InstallBegin(game=game_id, update=update))
            loop = asyncio.get_running_loop()

            def progress(done: int, total: int) -> None:
                event = events.InstallProgress(
                    game=game_id, extracted_bytes=done, total_bytes=total
                )
                loop.call_soon_threadsafe(self._publish, event)

            transaction = update_game if update else install_game
            root = self._root(game_id)
            try:
                result = await asyncio.to_thread(self._install, transaction, root, progress, staged)
            except CorruptArchive as exc:
                log.warning("installing %s failed: %s", game_id, exc)
                sentence = damaged_archive_sentence(exc)
                # A damaged staged update leaves the old payload as it was: still served.
                staged_from = await asyncio.to_thread(staged_version, root) if staged else None
                if staged_from is None:
                    await self._local.withhold(game_id, sentence)
                raise OperationError(sentence) from exc
            await self._local.release(game_id)
            return _finished(game_id, result)

        await self._operate(
            game_id,
            "update" if update else "install",
            work,
            lambda reason: events.InstallFailed(game=game_id, reason=reason),
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
    ) -> Event:
        """Run an operation's work, then release the game and publish how it ended
        (returned too).

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
        return ending

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
            self._publish(events.UninstallBegin(game=game_id))
            result = await asyncio.to_thread(
                uninstall_game, self._root(game_id), keep_saves=keep_saves
            )
            return events.UninstallFinished(game=game_id, kept=result.kept)

        await self._operate(
            game_id,
            "uninstall",
            work,
            lambda reason: events.UninstallFailed(game=game_id, reason=reason),
        )

    def remove(self, game_id: str, *, then: Callable[[], None] | None = None) -> None:
        """Delete the downloaded files; ``then`` runs once they are gone (Re-download)."""
        self.require(game_id, Command.REMOVE)
        if (self._root(game_id) / LOCAL_DIR).is_dir():
            raise Refusal.KEPT_FILES.error(game_id)
        self._local.begin_operation(game_id, OperationKind.REMOVING)
        self._jobs.spawn(lambda: self._run_remove(game_id, then))

    async def _run_remove(self, game_id: str, then: Callable[[], None] | None = None) -> None:
        async def work() -> Event:
            self._publish(events.RemoveBegin(game=game_id))
            await asyncio.to_thread(
                remove_downloaded_game, self._local.game_dir, game_id, self._local.catalog
            )
            await self._local.release(game_id)
            return events.RemoveFinished(game=game_id)

        ending = await self._operate(
            game_id,
            "removal",
            work,
            lambda reason: events.RemoveFailed(game=game_id, reason=reason),
        )
        if then is not None and isinstance(ending, events.RemoveFinished):
            try:
                then()
            except LanspreadError as exc:  # no source now: the card offers Download again
                log.warning("downloading %s again after its removal: %s", game_id, exc)

    # -- play ----------------------------------------------------------------

    def play_time(self, game_id: str) -> PlayTime:
        """How long the game was played here, and when it last ended."""
        return self._play_times.get(game_id)

    def game_log(self, game_id: str) -> Path:
        """The file the game's output goes to (it exists once the game was started)."""
        return self._local.state_dir / GAME_LOG_FOLDER / f"{game_id}.log"

    async def play(self, game_id: str, *, run_unpinned: bool = False) -> int:
        """Start the game's executable (through its runner where the catalog names one);
        returns its process id.

        A changed program of a version the party catalog does not pin starts only
        with ``run_unpinned`` (``runtime/programs``).
        """
        plan = self._states.plan(game_id)
        try:
            self.require(game_id, Command.PLAY)
        except InvalidGameState as exc:
            problem = plan.problem(self._local.require_catalog_game(game_id).name)
            if exc.reason != Refusal.NO_EXECUTABLE.value or problem is None:
                raise
            raise InvalidGameState(problem, reason=plan.kind.value) from exc
        if plan.executable is None:  # the table's guard refused this already; narrows the type
            raise Refusal.NO_EXECUTABLE.error(game_id)
        local_dir = self._root(game_id) / LOCAL_DIR
        executable = await asyncio.to_thread(
            resolve_executable, local_dir, plan.executable, needs_exec_bit=plan.runner is None
        )
        summary = self._local.library.get(game_id)
        pinned = self._pinned(game_id, summary.installed_version if summary else None)
        digest = await self._programs.admit(
            game_id,
            self._local.require_catalog_game(game_id).name,
            executable,
            pinned=pinned is not None,
            run_unpinned=run_unpinned,
        )
        process = await launch(
            executable, local_dir, runner=plan.runner, log=self.game_log(game_id)
        )
        await self._programs.ran(game_id, digest)
        self._running[game_id] = process
        self._publish(events.GameStarted(game=game_id, pid=process.pid))
        started = time.monotonic()
        self._jobs.spawn(lambda: self._watch(game_id, process, started))
        return process.pid

    def stop_game(self, game_id: str) -> None:
        """Close a game started here: asked first, forced after the grace period."""
        self.require(game_id, Command.STOP)
        process = self._running.get(game_id)
        if process is None or game_id in self._stopping:
            return
        self._stopping.add(game_id)

        async def stop() -> None:
            if await stop_process(process):
                log.warning("%s did not close when asked; it was killed", game_id)

        self._jobs.spawn(stop)

    async def _watch(
        self, game_id: str, process: asyncio.subprocess.Process, started: float
    ) -> None:
        try:
            returncode = await process.wait()
        finally:
            self._running.pop(game_id, None)
        seconds = time.monotonic() - started
        stopped = game_id in self._stopping
        self._stopping.discard(game_id)
        name = self._local.require_catalog_game(game_id).name
        await asyncio.to_thread(self._play_times.record, game_id, seconds, time.time())
        log_path = self.game_log(game_id)
        has_log = await asyncio.to_thread(_has_output, log_path)
        message = (
            None
            if stopped
            else exit_message(name, returncode, seconds, str(log_path) if has_log else None)
        )
        self._publish(
            events.GameExited(
                game=game_id,
                returncode=returncode,
                seconds=seconds,
                message=message,
                stopped=stopped,
            )
        )


def _has_output(log_path: Path) -> bool:
    """The game wrote something to its log."""
    try:
        return log_path.stat().st_size > 0
    except OSError:
        return False


def damaged_archive_sentence(exc: CorruptArchive) -> str:
    """The player's sentence for an archive that cannot be read (the technical message,
    which starts with the archive's name, goes to the log)."""
    archive = str(exc).split(": ", 1)[0] or "an archive"
    return f"{archive} is damaged or not a game archive; download it again"


def _failure_reason(exc: Exception, what: str, game_id: str) -> str:
    """What the player reads: our own errors as they are, a bug in plain words (the
    traceback goes to the log)."""
    if isinstance(exc, LanspreadError | OSError) and str(exc):
        log.warning("%s of %s failed: %s", what, game_id, exc)
        return str(exc)
    log.exception("%s of %s failed unexpectedly", what, game_id)
    detail = str(exc) or type(exc).__name__
    return f"the {what} stopped on an unexpected error ({detail}); the log has the details"


def _finished(game_id: str, result: InstallResult) -> events.InstallFinished:
    return events.InstallFinished(
        game=game_id,
        version=result.version,
        kept=result.kept,
        renamed=tuple(events.RenamedFile(path=c.source, kept_as=c.target) for c in result.renamed),
    )
