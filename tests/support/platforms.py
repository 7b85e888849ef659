"""Test-only calls that exist on some platforms only, one small helper each.

Each helper has a branch per platform, written with ``sys.platform`` checks the
type checker follows. Where a platform lacks the thing a test needs (a FIFO, a
device node, a stopped process), the helper skips that test there with the
reason; nothing skips on Linux, where CI runs. This module does not import
pytest at the top, so the crash children that import it stay light.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path
from typing import Final, NoReturn

if sys.platform == "win32":
    # os.kill with a number other than the console events calls TerminateProcess:
    # the process ends at once, uncatchable, with that number as its exit status.
    KILL_SIGNAL: Final[int] = signal.SIGTERM
    KILLED_RETURNCODE: Final[int] = signal.SIGTERM
else:
    KILL_SIGNAL: Final[int] = signal.SIGKILL
    KILLED_RETURNCODE: Final[int] = -signal.SIGKILL
"""The signal that kills a process outright, and the status its parent then sees."""

# st_blocks counts 512-byte units on every POSIX system, whatever the block size.
STAT_BLOCK_SIZE: Final = 512


def _skip(reason: str) -> NoReturn:
    # Imported here: only tests reach this, and the crash children stay light.
    import pytest

    pytest.skip(reason)


def kill_hard(pid: int) -> None:
    """End process ``pid`` at once, without letting it clean up."""
    os.kill(pid, KILL_SIGNAL)


def make_fifo(path: Path) -> None:
    """Create a named pipe at ``path`` (skips the test where there are none)."""
    if sys.platform == "win32":
        _skip("Windows has no named pipes in the file system")
    else:
        os.mkfifo(path)


def make_null_device(path: Path) -> None:
    """Create a character device node like ``/dev/null`` at ``path`` (needs root)."""
    if sys.platform == "win32":
        _skip("Windows has no device nodes in the file system")
    else:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))


def is_root() -> bool:
    """Whether this process runs as the superuser (never on Windows)."""
    if sys.platform == "win32":
        root = False
    else:
        root = os.geteuid() == 0
    return root


def allocated_bytes(info: os.stat_result) -> int:
    """The bytes the file system reserved for a file (skips where stat does not say)."""
    if sys.platform == "win32":
        _skip("Windows stat does not report allocated blocks")
    else:
        return info.st_blocks * STAT_BLOCK_SIZE


def fd_is_blocking(fd: int) -> bool:
    """Whether ``fd`` is in blocking mode (Windows file descriptors always are)."""
    if sys.platform == "win32":
        blocking = True
    else:
        blocking = os.get_blocking(fd)
    return blocking


def stop_signal() -> int:
    """The signal that freezes a process (skips where there is none)."""
    if sys.platform == "win32":
        _skip("Windows cannot freeze a process with a signal")
    else:
        return signal.SIGSTOP


def continue_signal() -> int:
    """The signal that lets a frozen process run again (skips where there is none)."""
    if sys.platform == "win32":
        _skip("Windows cannot freeze a process with a signal")
    else:
        return signal.SIGCONT


def try_lock_exclusive(fd: int) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting; False if another holds it.

    POSIX: ``flock``, released by the kernel when the holder dies; Windows: a
    byte-range lock on the first byte, released when the holder's handle closes.
    """
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
    else:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    return True
