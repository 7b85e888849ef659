"""A chunk sink for data-plane tests and benchmarks: each file opened once, under one folder."""

from __future__ import annotations

import os
from pathlib import Path

from lanspread.core.planning import ChunkTask


class Sink:
    """Writes chunks into files under ``base``; closes them all on exit."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.fds: dict[str, int] = {}

    def fd_for(self, task: ChunkTask) -> int:
        if task.path not in self.fds:
            path = self.base / task.path
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fds[task.path] = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        return self.fds[task.path]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
