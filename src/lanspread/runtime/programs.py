"""Play's question for a changed program of an unpinned version (rule: ``core/programs``).

:class:`Programs` holds the record of the programs the player ran, hashes an
executable before it starts and either lets it start or raises
:class:`~lanspread.errors.ProgramChanged` with the question; every start is
remembered in the state folder (``storage/programs``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lanspread.core.programs import ProgramRecord, play_question
from lanspread.errors import ProgramChanged, StorageError
from lanspread.storage.programs import program_digest, save_programs

log = logging.getLogger(__name__)


class Programs:
    """The programs the player ran, kept in ``state_dir``."""

    def __init__(self, state_dir: Path, record: ProgramRecord) -> None:
        self._state_dir = state_dir
        self._record = record

    async def admit(
        self, game_id: str, game_name: str, executable: Path, *, pinned: bool, run_unpinned: bool
    ) -> str:
        """The executable's digest when it may start now; else :class:`ProgramChanged`
        with the question (unless the player already answered it with ``run_unpinned``)."""
        digest = await asyncio.to_thread(program_digest, executable)
        question = play_question(game_id, game_name, digest, pinned=pinned, record=self._record)
        if question is not None and not run_unpinned:
            raise ProgramChanged(question)
        return digest

    async def ran(self, game_id: str, digest: str) -> None:
        """Remember that ``digest`` started for ``game_id``; a disk that refuses only
        costs a question next time."""
        self._record.ran(game_id, digest)
        try:
            await asyncio.to_thread(save_programs, self._state_dir, self._record)
        except StorageError as exc:
            log.warning("cannot remember the program of %s: %s", game_id, exc)
