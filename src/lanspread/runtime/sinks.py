"""Where a download's chunks are written, and the request queue of one data connection.

Pieces of the download shell (:mod:`lanspread.runtime.transfer`) that hold
descriptors: they never decide anything.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from lanspread.core.planning import ChunkTask
from lanspread.download.prepare import open_for_writing
from lanspread.platform import fileio


class FileSink:
    """Open, writable descriptors of a download's payload files, opened on first use."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._fds: dict[str, int] = {}

    def fd_for(self, task: ChunkTask) -> int:
        fd = self._fds.get(task.path)
        if fd is None:
            fd = open_for_writing(self._root, task.path)
            self._fds[task.path] = fd
        return fd

    @property
    def fds(self) -> list[int]:
        return list(self._fds.values())

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


class ScratchFile:
    """An anonymous temporary file for bytes that must not land in the game's files yet:
    version.ini (read back whole once verified) and endgame copies (moved into place)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()

    def fd_for(self, task: ChunkTask) -> int:
        del task
        return self._file.fileno()

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, length: int) -> bytes:
        return fileio.pread(self._file.fileno(), length, 0)

    def read_at(self, length: int, offset: int) -> bytes:
        return fileio.pread(self._file.fileno(), length, offset)

    def close(self) -> None:
        self._file.close()


class RequestQueue(Iterator[ChunkTask]):
    """One connection's requests to send: the data client pulls from it as its pipeline
    frees up, and it may run dry and fill again (unlike a generator).

    It is also the connection's sink: the data client asks where to write a task right
    after taking it, so an endgame copy goes to the source's scratch file and every
    other chunk to its place in the game's files.
    """

    def __init__(self, files: FileSink, scratch: Callable[[], int]) -> None:
        self._tasks: collections.deque[tuple[ChunkTask, bool]] = collections.deque()
        self._files = files
        self._scratch = scratch
        self._last_scratch = False
        self.ready = asyncio.Event()

    def add(self, tasks: Iterable[ChunkTask], *, scratch: bool) -> None:
        self._tasks.extend((task, scratch) for task in tasks)
        self.ready.set()

    def __next__(self) -> ChunkTask:
        if not self._tasks:
            self.ready.clear()
            raise StopIteration
        task, self._last_scratch = self._tasks.popleft()
        return task

    def fd_for(self, task: ChunkTask) -> int:
        return self._scratch() if self._last_scratch else self._files.fd_for(task)
