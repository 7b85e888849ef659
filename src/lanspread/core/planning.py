"""The chunks of a manifest as fetchable tasks.

:func:`manifest_tasks` lists every chunk of an agreed manifest as a
:class:`ChunkTask` in (path, offset) order: the order the journal's bitmap uses
and the unit every fetch, verification and journal mark works on. Which source
fetches which task, retries and giving up are the download engine's
(:mod:`lanspread.core.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.manifest import GameManifest

ChunkKey: TypeAlias = tuple[str, int]
"""``(path, offset)``: names one chunk of a manifest."""


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """One chunk to fetch and the digest its bytes must have."""

    path: str
    offset: int
    length: int
    blake3: bytes

    @property
    def key(self) -> ChunkKey:
        return (self.path, self.offset)

    @property
    def is_sentinel(self) -> bool:
        return self.path == VERSION_FILE


def manifest_tasks(manifest: GameManifest) -> tuple[ChunkTask, ...]:
    """Every chunk of ``manifest`` as a task, in (path, offset) order."""
    return tuple(
        ChunkTask(file.path, chunk.offset, chunk.length, chunk.blake3)
        for file in manifest.files
        for chunk in file.chunks
    )
