"""Child process for the kill -9 tests: run one transaction and SIGKILL at a chosen point.

Usage: ``python -m tests.support.install_crash_child KIND ROOT MODE:VALUE`` where
KIND is install, update, uninstall or uninstall-keep (keeping the player's files)
and the stop point is one of ``step:NAME``
(before that checkpoint), ``file:N`` (after the Nth extracted file),
``unlink:N`` (the Nth file deletion once the backup is being dropped) or
``rollback:N`` (the Nth deletion of an update's rollback of staging, after a
failure right before the promotion).
Kept apart from the test module so the child does not pay for importing pytest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lanspread.install.transaction import (
    DROP_BACKUP,
    PROMOTE,
    install_game,
    uninstall_game,
    update_game,
)
from tests.support.install_roots import FakeUnpacker
from tests.support.platforms import kill_hard

SURVIVED_EXIT_CODE = 3
"""Exit code when the kill point was never reached: the case itself is wrong."""


def _die() -> None:
    kill_hard(os.getpid())


def _child_main(kind: str, root: Path, stop: str) -> None:
    """Run one transaction and SIGKILL this process at ``stop`` (``mode:value``)."""
    mode, _, value = stop.partition(":")
    armed = False

    def checkpoint(step: str) -> None:
        nonlocal armed
        if mode == "step" and step == value:
            _die()
        if (mode == "unlink" and step == DROP_BACKUP) or (mode == "rollback" and step == PROMOTE):
            armed = True
        if mode == "rollback" and step == PROMOTE:
            raise RuntimeError("injected before the promotion")

    if mode in {"unlink", "rollback"}:
        real_unlink = os.unlink
        unlinks = 0

        def unlink(
            path: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, dir_fd: int | None = None
        ) -> None:
            nonlocal unlinks
            if armed:
                unlinks += 1
                if unlinks == int(value):
                    _die()
            real_unlink(path, dir_fd=dir_fd)

        os.unlink = unlink

    unpacker = FakeUnpacker(
        on_file=(lambda n: _die() if n == int(value) else None) if mode == "file" else None,
    )
    try:
        if kind == "install":
            install_game(root, unpacker, checkpoint=checkpoint)
        elif kind == "update":
            update_game(root, unpacker, checkpoint=checkpoint)
        else:
            uninstall_game(root, keep_saves=kind == "uninstall-keep", checkpoint=checkpoint)
    finally:
        sys.exit(SURVIVED_EXIT_CODE)


if __name__ == "__main__":
    _child_main(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
