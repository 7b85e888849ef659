"""The manifest cache and the background hashing service that fills it.

Theory of operation
-------------------
Serving a game needs its :class:`~lanspread.core.manifest.GameManifest`: BLAKE3
digests of every chunk, which cost a full read of the payload (~4 GiB/s of
hashing, but a disk read first). So manifests are computed once and persisted
per game in ``<state_dir>/manifests/<game_id>.mpk``, keyed by a **fingerprint**
of the payload: the sorted ``(path, size, mtime_ns)`` of every payload file
(the same walk as hashing: reserved root names skipped, symlinks never listed),
plus :data:`CACHE_FORMAT_VERSION` and the chunk size (``0``: the one the
payload's size calls for, ``core.manifest.chunk_size_for``). The root ``version.ini``
is a payload file, so a new version is a new fingerprint.

* :meth:`ManifestCache.lookup` only stats: it recomputes the fingerprint and
  returns the stored manifest when it still matches, ``None`` when it is stale,
  missing or unreadable (a corrupt file is deleted and rebuilt later).
* :meth:`ManifestCache.store` records a manifest with the fingerprint of the
  files as they are now. The downloader calls it after the sentinel is
  committed (it verified every chunk against that manifest while receiving),
  so a game obtained through lanspread is never hashed again.
* :class:`HashingService` hashes, one game at a time in a worker thread, every
  Ready game without a valid cached manifest, and stores the result only if
  the fingerprint taken before hashing still holds afterwards (a file changed
  meanwhile means the digests may mix two contents). It runs a pass when
  started, when :meth:`HashingService.library_changed` is called and when a
  lookup misses; reads go in ``HASH_BLOCK_SIZE`` blocks, optionally capped to
  ``max_rate`` bytes per second so a seeder's disk stays usable for playing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import blake3
import msgspec

from lanspread.core.catalog import is_valid_game_id
from lanspread.core.gameroot import is_reserved_name
from lanspread.core.library import Availability, LibrarySnapshot
from lanspread.core.manifest import (
    MAX_FILES_PER_GAME,
    MAX_MANIFEST_ENCODED_SIZE,
    GameManifest,
    ManifestError,
    chunk_size_for,
    validate_manifest,
)
from lanspread.errors import StorageError
from lanspread.files.atomic import atomic_write_bytes
from lanspread.files.entries import is_real_dir
from lanspread.files.hashing import HASH_BLOCK_SIZE, HashingStopped, hash_game_payload
from lanspread.files.version_ini import read_sentinel, version_from_sentinel

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 2
"""Bump when the fingerprint or the entry layout changes: older entries become misses."""
MANIFEST_DIR = "manifests"
CACHE_SUFFIX = ".mpk"
# A cache entry is a manifest plus a 64-character fingerprint and two integers.
MAX_CACHE_FILE_SIZE = MAX_MANIFEST_ENCODED_SIZE + 4096


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    fingerprint: str
    manifest: GameManifest


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Entry)


def payload_fingerprint(game_root: Path, chunk_size: int | None) -> str | None:
    """Hex BLAKE3 of the payload's ``(path, size, mtime_ns)`` list; stats only.

    ``None`` when the root is not a real folder, holds a special file (hashing
    refuses those) or more than ``MAX_FILES_PER_GAME`` files, or cannot be read.
    """
    try:
        if not is_real_dir(game_root):
            return None
        files = _stat_payload(game_root)
    except (OSError, StorageError):
        return None
    files.sort()
    header = [CACHE_FORMAT_VERSION, chunk_size or 0]
    return blake3.blake3(_ENCODER.encode([*header, files])).hexdigest()


class _Unhashable(StorageError):
    """The payload holds something hashing would refuse."""


def _stat_payload(game_root: Path) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    pending: list[tuple[Path, str]] = [(game_root, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if not prefix and is_reserved_name(entry.name):
                    continue
                info = entry.stat(follow_symlinks=False)
                relative = f"{prefix}{entry.name}"
                if stat.S_ISLNK(info.st_mode):
                    continue
                if stat.S_ISDIR(info.st_mode):
                    pending.append((Path(entry.path), f"{relative}/"))
                elif stat.S_ISREG(info.st_mode):
                    found.append((relative, info.st_size, info.st_mtime_ns))
                    if len(found) > MAX_FILES_PER_GAME:
                        raise _Unhashable(relative)
                else:
                    raise _Unhashable(relative)
    return found


class ManifestCache:
    """Persisted manifests per game, valid while the payload's fingerprint holds.

    Every method blocks (stats, reads, writes): call through ``asyncio.to_thread``.
    """

    def __init__(self, state_dir: Path, *, chunk_size: int | None = None) -> None:
        self._dir = state_dir / MANIFEST_DIR
        self._chunk_size = chunk_size
        self._memo: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    @property
    def chunk_size(self) -> int | None:
        """The chunk size of the manifests this cache serves (and hashing computes);
        ``None``: the one each payload's size calls for."""
        return self._chunk_size

    def path_for(self, game_id: str) -> Path:
        if not is_valid_game_id(game_id):
            raise ValueError(f"{game_id!r} is not a game id")
        return self._dir / f"{game_id}{CACHE_SUFFIX}"

    def fingerprint(self, game_dir: Path, game_id: str) -> str | None:
        return payload_fingerprint(game_dir / game_id, self._chunk_size)

    def lookup(self, game_dir: Path, game_id: str) -> GameManifest | None:
        """The cached manifest of ``game_id`` if the payload still matches it, else ``None``."""
        fingerprint = self.fingerprint(game_dir, game_id)
        if fingerprint is None:
            return None
        entry = self._memo.get(game_id) or self._load(game_id)
        if entry is None or entry.fingerprint != fingerprint:
            return None
        return entry.manifest

    def store(
        self, game_dir: Path, manifest: GameManifest, *, fingerprint: str | None = None
    ) -> bool:
        """Persist ``manifest`` for the payload as it is now; False when it cannot be keyed.

        ``fingerprint`` is the one taken before the manifest was computed; when
        given and no longer current, nothing is stored (the payload changed).
        Raises :class:`StorageError` when the state directory refuses the write.
        """
        expected = self._chunk_size or chunk_size_for(manifest.total_bytes)
        if manifest.chunk_size != expected:
            log.info(
                "not caching the manifest of %s: chunk size %d, this cache uses %d",
                manifest.game_id,
                manifest.chunk_size,
                expected,
            )
            return False
        current = self.fingerprint(game_dir, manifest.game_id)
        if current is None or (fingerprint is not None and fingerprint != current):
            return False
        entry = _Entry(CACHE_FORMAT_VERSION, current, manifest)
        path = self.path_for(manifest.game_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, _ENCODER.encode(entry))
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        with self._lock:
            self._memo[manifest.game_id] = entry
        return True

    def forget(self, game_id: str) -> None:
        """Drop the entry of ``game_id`` (memory and disk)."""
        with self._lock:
            self._memo.pop(game_id, None)
        with contextlib.suppress(FileNotFoundError):
            self.path_for(game_id).unlink()

    def _load(self, game_id: str) -> _Entry | None:
        path = self.path_for(game_id)
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_CACHE_FILE_SIZE + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the cached manifest %s: %s", path, exc)
            return None
        entry = self._decode(path, data, game_id)
        if entry is None:
            log.warning("ignoring the unusable cached manifest %s; it will be rebuilt", path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with self._lock:
            self._memo[game_id] = entry
        return entry

    def _decode(self, path: Path, data: bytes, game_id: str) -> _Entry | None:
        if len(data) > MAX_CACHE_FILE_SIZE:
            return None
        try:
            entry = _DECODER.decode(data)
            validate_manifest(entry.manifest)
        except (msgspec.DecodeError, ManifestError, UnicodeDecodeError) as exc:
            log.debug("cached manifest %s: %s", path, exc)
            return None
        if entry.format != CACHE_FORMAT_VERSION or entry.manifest.game_id != game_id:
            return None
        return entry


# --- the background hashing service -------------------------------------------------------


class _Operations(Protocol):
    def is_active(self, game_id: str) -> bool: ...


class LibrarySource(Protocol):
    """What the service reads from the local library (``LocalLibraryService`` fits)."""

    @property
    def game_dir(self) -> Path: ...

    @property
    def snapshot(self) -> LibrarySnapshot: ...

    @property
    def operations(self) -> _Operations: ...


class HashState(enum.Enum):
    READY = "ready"
    """A valid manifest is cached."""
    PENDING = "pending"
    """Not hashed yet, being hashed, or stale; a pass will (re)hash it."""
    FAILED = "failed"
    """The payload cannot be described (unreadable, unsafe name...); retried on change."""


class HashingService:
    """Hashes Ready games that have no valid cached manifest, one at a time."""

    def __init__(
        self,
        cache: ManifestCache,
        library: LibrarySource,
        *,
        max_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_rate is not None and max_rate <= 0:
            raise ValueError(f"max_rate must be positive, got {max_rate}")
        self._cache = cache
        self._library = library
        self._max_rate = max_rate
        self._clock = clock
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._failed: dict[str, str] = {}
        self._hashed = asyncio.Condition()
        self.hashed_count = 0
        """Games hashed since start (a test and stats hook)."""

    def library_changed(self) -> None:
        """The local library changed: re-check every game on the next pass."""
        self._failed.clear()
        self._wake.set()

    def failure(self, game_id: str) -> str | None:
        """Why the last hash of ``game_id`` failed, if it did."""
        return self._failed.get(game_id)

    async def manifest_for(self, game_id: str) -> GameManifest | None:
        """The servable manifest of ``game_id``, or ``None`` while it is (to be) hashed."""
        manifest = await asyncio.to_thread(self._cache.lookup, self._library.game_dir, game_id)
        if manifest is None and game_id not in self._failed:
            self._wake.set()
        return manifest

    async def state(self, game_id: str) -> HashState:
        if game_id in self._failed:
            return HashState.FAILED
        manifest = await asyncio.to_thread(self._cache.lookup, self._library.game_dir, game_id)
        return HashState.READY if manifest is not None else HashState.PENDING

    async def run(self) -> None:
        """The service: a pass at start, then one per wake-up, until cancelled."""
        self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._pass()

    async def _pass(self) -> None:
        for game_id, version in self._candidates():
            if self._library.operations.is_active(game_id) or game_id in self._failed:
                continue
            await self._hash_if_needed(game_id, version)

    def _candidates(self) -> list[tuple[str, str | None]]:
        return [
            (game.id, game.version)
            for game in self._library.snapshot.games
            if game.availability is Availability.READY
        ]

    async def _hash_if_needed(self, game_id: str, version: str | None) -> None:
        game_dir = self._library.game_dir
        if await asyncio.to_thread(self._cache.lookup, game_dir, game_id) is not None:
            return
        stop = threading.Event()
        work = asyncio.get_running_loop().run_in_executor(
            None, self._hash_and_store, game_dir, game_id, version, stop
        )
        try:
            stored = await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()  # the thread ends at its next block; wait for it, then go
            with contextlib.suppress(HashingStopped, StorageError):
                await work
            raise
        except StorageError as exc:
            log.warning("cannot hash %s; it is not served until it changes: %s", game_id, exc)
            self._failed[game_id] = str(exc)
            return
        if not stored:
            log.info("%s changed while it was hashed; hashing it again", game_id)
            self._wake.set()
            return
        async with self._hashed:
            self.hashed_count += 1
            self._hashed.notify_all()

    def _hash_and_store(
        self, game_dir: Path, game_id: str, version: str | None, stop: threading.Event
    ) -> bool:
        """Hash and store (blocking); False when the payload changed meanwhile."""
        fingerprint = self._cache.fingerprint(game_dir, game_id)
        if fingerprint is None:
            raise StorageError(f"the payload of {game_id} cannot be described")
        # The manifest names the version its own version.ini declares (read after the
        # fingerprint, which covers that file): the library snapshot may predate an
        # edit the files already hold, and a manifest labelled with the old version
        # would be rejected by every downloader until the payload changed again.
        declared = version_from_sentinel(read_sentinel(game_dir / game_id, time.time_ns()))
        if declared != version:
            log.info("%s declares version %s, the library says %s", game_id, declared, version)
        log.info("hashing %s", game_id)
        began = self._clock()
        should_stop = _Throttle(stop, self._max_rate, self._clock, self._sleep)
        try:
            manifest = hash_game_payload(
                game_dir / game_id, game_id, declared, self._cache.chunk_size, should_stop
            )
        except StorageError:
            if self._cache.fingerprint(game_dir, game_id) != fingerprint:
                return False  # a file changed under the reader (it shrank): not a defect
            raise
        if not self._cache.store(game_dir, manifest, fingerprint=fingerprint):
            return False
        log.info(
            "hashed %s: %d bytes in %.1f s",
            game_id,
            manifest.total_bytes,
            self._clock() - began,
        )
        return True

    async def wait_hashed(self, count: int) -> None:
        """Return once ``count`` games have been hashed since start."""
        async with self._hashed:
            await self._hashed.wait_for(lambda: self.hashed_count >= count)


class _Throttle:
    """``should_stop`` for ``hash_game_payload``: stops on request, paces reads to a rate.

    It is called once before each block read of at most ``HASH_BLOCK_SIZE`` bytes,
    so counting a full block per call never lets the real rate exceed the cap.
    """

    def __init__(
        self,
        stop: threading.Event,
        max_rate: float | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._stop = stop
        self._max_rate = max_rate
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._budgeted = 0

    def __call__(self) -> bool:
        if self._stop.is_set():
            return True
        if self._max_rate is not None:
            self._budgeted += HASH_BLOCK_SIZE
            while not self._stop.is_set():
                ahead = self._budgeted / self._max_rate - (self._clock() - self._started)
                if ahead <= 0:
                    break
                # Short naps, so a stop request is seen promptly even at a low rate.
                self._sleep(min(ahead, _MAX_NAP))
        return self._stop.is_set()


# The longest a throttled hash sleeps before looking at its stop flag again.
_MAX_NAP = 0.1
