"""Filesystem watching of the game directory, mapped to game ids.

The game directory and each catalog game root are watched non-recursively. A
create, modify, attribute, delete or move event maps to the game id whose root
it touches; open and close events are ignored (a scan's own reads would
otherwise trigger more scans). Non-catalog names are dropped here, so they stay
invisible. Whether a notice leads to a rescan is decided by the caller's rescan
gate; a periodic fallback scan covers anything a watcher misses (network
filesystems, overflowed inotify queues, nested changes).

Notices are delivered on the event loop through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

log = logging.getLogger(__name__)

_IGNORED_EVENT_TYPES = frozenset({EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED, EVENT_TYPE_CLOSED_NO_WRITE})


def game_id_for_path(game_dir: Path, path: Path, catalog_ids: frozenset[str]) -> str | None:
    """The catalog game whose root ``path`` is, or is a direct child of."""
    if path.parent == game_dir:
        candidate = path.name
    elif path.parent.parent == game_dir:
        candidate = path.parent.name
    else:
        return None
    return candidate if candidate in catalog_ids else None


class _Handler(FileSystemEventHandler):
    def __init__(self, monitor: DirectoryMonitor) -> None:
        self._monitor = monitor

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENT_TYPES:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self._monitor._observed(Path(_as_text(raw)))


def _as_text(raw: str | bytes) -> str:
    return raw.decode(errors="surrogateescape") if isinstance(raw, bytes) else raw


class DirectoryMonitor:
    """Watches ``game_dir`` and its catalog game roots; calls ``notify(game_id)`` on the loop."""

    def __init__(
        self,
        game_dir: Path,
        catalog_ids: frozenset[str],
        notify: Callable[[str], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._game_dir = game_dir
        self._catalog_ids = catalog_ids
        self._notify = notify
        self._loop = loop
        self._observer = Observer()
        self._handler = _Handler(self)
        self._root_watches: dict[str, ObservedWatch] = {}
        self._stopped = False

    def start(self) -> None:
        self._observer.schedule(self._handler, str(self._game_dir), recursive=False)
        for game_id in sorted(self._catalog_ids):
            self.sync_root_watch(game_id)
        self._observer.start()

    def stop(self) -> None:
        self._stopped = True
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)

    def sync_root_watch(self, game_id: str) -> bool:
        """Watch the game's root when it is a real directory; drop the watch otherwise.

        True when a watch was newly added: changes made between the root's creation
        and now were not seen, so the caller must rescan the game once more.
        """
        root = self._game_dir / game_id
        exists = root.is_dir() and not root.is_symlink()
        watch = self._root_watches.get(game_id)
        if exists and watch is None:
            try:
                self._root_watches[game_id] = self._observer.schedule(
                    self._handler, str(root), recursive=False
                )
            except OSError as exc:
                log.warning("cannot watch %s: %s (the fallback scan covers it)", root, exc)
                return False
            return True
        if not exists and watch is not None:
            del self._root_watches[game_id]
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(watch)
        return False

    def _observed(self, path: Path) -> None:
        game_id = game_id_for_path(self._game_dir, path, self._catalog_ids)
        if game_id is None or self._stopped:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while the observer stopped
            self._loop.call_soon_threadsafe(self._deliver, game_id)

    def _deliver(self, game_id: str) -> None:
        if not self._stopped:
            self._notify(game_id)
