"""One running instance per state folder.

Two peers on one state folder would share one identity, one settings file and one
manifest cache, and step on each other. The first ``lanspread`` (or ``peer-cli``)
holds an OS file lock on ``<state_dir>/lanspread.lock`` while it runs; a second one
finds it held (:class:`~lanspread.errors.AlreadyRunning`) and exits with
:data:`EXIT_ALREADY_RUNNING`, telling the user where
the running instance's UI is.

The lock is :mod:`filelock`'s OS lock (``flock`` on POSIX, ``msvcrt.locking`` on
Windows): the OS drops it when its process dies, so a killed instance never blocks
the next start. The soft fallback (a marker file, which a dead process would leave
behind) is turned off for that reason.

The UI address goes to ``<state_dir>/ui-url``, written owner-only (it carries the
access key) once the UI listens and removed when the instance stops, but only if it
still holds exactly what this instance wrote.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from types import TracebackType

import filelock

from lanspread.errors import AlreadyRunning, ConfigError

log = logging.getLogger(__name__)

LOCK_FILE_NAME = "lanspread.lock"
UI_URL_FILE_NAME = "ui-url"

# First line of the UI address file: marks a file an instance of ours wrote, so a
# leftover of a killed instance can be recognised and replaced, and nothing else.
UI_URL_HEADER = "lanspread ui-url 1"

# Exit status of a start refused because another instance holds the state folder
# (2 is taken by bad options, 1 by a failed runtime, 130 by Ctrl-C).
EXIT_ALREADY_RUNNING = 3

# The address file is a header line and one URL; anything longer is not ours.
MAX_UI_URL_FILE_BYTES = 4096


class InstanceLock:
    """The state folder's instance lock and the UI address file beside it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.url_file = state_dir / UI_URL_FILE_NAME
        self._lock = filelock.FileLock(
            state_dir / LOCK_FILE_NAME, timeout=0, fallback_to_soft=False
        )
        self._published: bytes | None = None

    def acquire(self) -> None:
        """Hold the lock, or raise :class:`AlreadyRunning` saying where the UI is.

        :class:`ConfigError` when the folder cannot be locked at all.
        """
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise AlreadyRunning(self._running_message()) from None
        except OSError as exc:  # no OS locks on this filesystem, no permission, ...
            raise ConfigError(
                f"cannot lock the state folder {self.state_dir}: {exc.strerror or exc}"
            ) from exc
        if _read_own_url_file(self.url_file) is not None:
            # Written by an instance that died without cleaning up: the lock was free.
            self.url_file.unlink(missing_ok=True)

    def publish_ui_url(self, url: str) -> None:
        """Write ``url`` to the address file (owner-only), replacing an older one of ours.

        Something else under that name is not ours to replace: it stays, a warning
        says so, and a second start cannot show the address. Raises ``OSError``
        when the disk refuses.
        """
        if os.path.lexists(self.url_file) and _read_own_url_file(self.url_file) is None:
            log.warning("not writing the UI address: %s is not a file of ours", self.url_file)
            return
        content = f"{UI_URL_HEADER}\n{url}\n".encode()
        temp = self.url_file.with_name(f"{UI_URL_FILE_NAME}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with open(fd, "wb") as stream:
                stream.write(content)
            temp.replace(self.url_file)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._published = content

    def release(self) -> None:
        """Remove the address file if it is still the one we wrote; drop the lock."""
        try:
            if self._published is not None and _read_bytes(self.url_file) == self._published:
                self.url_file.unlink(missing_ok=True)
            self._published = None
        finally:
            self._lock.release()

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _running_message(self) -> str:
        where = f"another instance is already running with the state folder {self.state_dir}"
        url = _read_own_url_file(self.url_file)
        if url is None:
            return f"{where}; it shows no web UI (a peer-cli, or a lanspread still starting)"
        return f"{where}; its UI is at {url}"


def _read_bytes(path: Path) -> bytes | None:
    with contextlib.suppress(OSError), open(path, "rb") as stream:
        return stream.read(MAX_UI_URL_FILE_BYTES + 1)
    return None


def _read_own_url_file(path: Path) -> str | None:
    """The URL in ``path`` when it is an address file of ours, else ``None``."""
    data = _read_bytes(path)
    if data is None or len(data) > MAX_UI_URL_FILE_BYTES:
        return None
    lines = data.decode("utf-8", "replace").splitlines()
    if len(lines) != 2 or lines[0] != UI_URL_HEADER or not lines[1].startswith("http://"):
        return None
    return lines[1]
