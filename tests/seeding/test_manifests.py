"""The manifest cache (hit, miss, stale, corrupt) and the background hashing service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest
from tests.support.platforms import make_fifo
from tests.support.waiting import wait_until

from lanspread.core.library import Availability, GameSummary, LibrarySnapshot, make_snapshot
from lanspread.core.manifest import MIN_CHUNK_SIZE, GameManifest
from lanspread.files.hashing import HASH_BLOCK_SIZE, hash_game_payload
from lanspread.seeding.manifests import (
    CACHE_FORMAT_VERSION,
    HashingService,
    HashState,
    ManifestCache,
    _Throttle,
    payload_fingerprint,
)

GAME = "quake3"
WAIT = 10.0


def make_game(game_dir: Path, game_id: str = GAME, size: int = 3 * MIN_CHUNK_SIZE + 7) -> Path:
    root = game_dir / game_id
    root.mkdir(parents=True)
    (root / "version.ini").write_text("1.0")
    (root / "data.eti").write_bytes(os.urandom(size))
    (root / "local").mkdir()
    (root / "local" / "save.dat").write_bytes(b"not payload")
    return root


@pytest.fixture
def game_dir(game_dir: Path) -> Path:
    """The game folder holding quake3."""
    make_game(game_dir)
    return game_dir


@pytest.fixture
def cache(tmp_path: Path) -> ManifestCache:
    return ManifestCache(tmp_path / "state", chunk_size=MIN_CHUNK_SIZE)


def manifest_of(
    game_dir: Path, game_id: str = GAME, chunk_size: int = MIN_CHUNK_SIZE
) -> GameManifest:
    return hash_game_payload(game_dir / game_id, game_id, "1.0", chunk_size)


# --- the cache ------------------------------------------------------------------------------


def test_miss_then_hit_after_store(cache: ManifestCache, game_dir: Path) -> None:
    """Nothing cached is a miss; a stored manifest is returned while the payload is unchanged."""
    assert cache.lookup(game_dir, GAME) is None
    manifest = manifest_of(game_dir)
    assert cache.store(game_dir, manifest)
    assert cache.lookup(game_dir, GAME) == manifest
    assert (
        ManifestCache(cache.path_for(GAME).parent.parent, chunk_size=MIN_CHUNK_SIZE).lookup(
            game_dir, GAME
        )
        == manifest
    ), "a fresh cache object reads the persisted entry"


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "data.eti").write_bytes(b"shorter"),
        lambda root: os.utime(root / "data.eti", ns=(1, 1)),
        lambda root: (root / "version.ini").write_text("1.1"),
        lambda root: (root / "extra.eti").write_bytes(b"new file"),
        lambda root: (root / "data.eti").unlink(),
    ],
    ids=["size", "mtime", "version", "added", "removed"],
)
def test_any_payload_change_makes_the_entry_stale(
    cache: ManifestCache, game_dir: Path, change: Callable[[Path], object]
) -> None:
    """A different size, mtime, version file or file list is a miss, not a wrong manifest."""
    cache.store(game_dir, manifest_of(game_dir))
    change(game_dir / GAME)
    assert cache.lookup(game_dir, GAME) is None


def test_reserved_and_symlinked_entries_do_not_affect_the_fingerprint(game_dir: Path) -> None:
    """Changes under local/ or a symlink added are not payload: the entry stays valid."""
    root = game_dir / GAME
    before = payload_fingerprint(root, MIN_CHUNK_SIZE)
    (root / "local" / "save.dat").write_bytes(b"played more")
    (root / "link.eti").symlink_to(root / "data.eti")
    assert payload_fingerprint(root, MIN_CHUNK_SIZE) == before is not None


def test_special_file_or_missing_root_has_no_fingerprint(game_dir: Path) -> None:
    """A FIFO in the payload (hashing refuses it) or a missing root cannot be keyed."""
    root = game_dir / GAME
    make_fifo(root / "pipe")
    assert payload_fingerprint(root, MIN_CHUNK_SIZE) is None
    assert payload_fingerprint(game_dir / "absent", MIN_CHUNK_SIZE) is None


def test_corrupt_cache_file_is_ignored_and_deleted(cache: ManifestCache, game_dir: Path) -> None:
    """Garbage in the cache file is a miss; the file is removed so it gets rebuilt."""
    path = cache.path_for(GAME)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x93garbage")
    assert cache.lookup(game_dir, GAME) is None
    assert not path.exists()


def test_entry_of_another_game_or_format_is_ignored(
    cache: ManifestCache, game_dir: Path, tmp_path: Path
) -> None:
    """An entry renamed to another game's file, or of another format version, is a miss."""
    make_game(game_dir, "doom")
    cache.store(game_dir, manifest_of(game_dir, "doom"))
    cache.path_for("doom").rename(cache.path_for(GAME))
    fresh = ManifestCache(tmp_path / "state", chunk_size=MIN_CHUNK_SIZE)
    assert fresh.lookup(game_dir, GAME) is None
    stored = manifest_of(game_dir)
    assert fresh.store(game_dir, stored)
    raw = msgspec.msgpack.decode(cache.path_for(GAME).read_bytes())
    raw["format"] = CACHE_FORMAT_VERSION + 1
    cache.path_for(GAME).write_bytes(msgspec.msgpack.encode(raw))
    assert (
        ManifestCache(tmp_path / "state", chunk_size=MIN_CHUNK_SIZE).lookup(game_dir, GAME) is None
    )


def test_store_refuses_a_payload_that_changed_since_the_fingerprint(
    cache: ManifestCache, game_dir: Path
) -> None:
    """A manifest computed from a payload that changed meanwhile is not stored."""
    before = cache.fingerprint(game_dir, GAME)
    manifest = manifest_of(game_dir)
    (game_dir / GAME / "data.eti").write_bytes(b"changed")
    assert not cache.store(game_dir, manifest, fingerprint=before)
    assert not cache.path_for(GAME).exists()


def test_store_refuses_another_chunk_size(tmp_path: Path, game_dir: Path) -> None:
    """A manifest at another chunk size than the cache's is not cached (peers would disagree)."""
    other = ManifestCache(tmp_path / "state", chunk_size=2 * MIN_CHUNK_SIZE)
    assert not other.store(game_dir, manifest_of(game_dir))


def test_cache_without_a_chunk_size_takes_what_the_payload_size_calls_for(
    tmp_path: Path, game_dir: Path
) -> None:
    """A cache that pins no chunk size (every peer's) stores manifests at the game's own
    size, refuses others, and keys its entries apart from a pinned cache's."""
    auto = ManifestCache(tmp_path / "auto")
    assert auto.chunk_size is None
    assert not auto.store(game_dir, manifest_of(game_dir, chunk_size=2 * MIN_CHUNK_SIZE))
    assert auto.store(game_dir, hash_game_payload(game_dir / GAME, GAME, "1.0", None))
    found = auto.lookup(game_dir, GAME)
    assert found is not None
    assert found.chunk_size == MIN_CHUNK_SIZE
    pinned = payload_fingerprint(game_dir / GAME, MIN_CHUNK_SIZE)
    assert payload_fingerprint(game_dir / GAME, None) not in (None, pinned)


def test_forget_and_bad_ids(cache: ManifestCache, game_dir: Path) -> None:
    """forget drops the entry; a path-like id is refused before touching the disk."""
    cache.store(game_dir, manifest_of(game_dir))
    cache.forget(GAME)
    assert cache.lookup(game_dir, GAME) is None
    with pytest.raises(ValueError, match=r"^'\.\./x' is not a game id$"):
        cache.path_for("../x")


# --- the hashing service ------------------------------------------------------------------


@dataclass
class FakeOperations:
    active: set[str] = field(default_factory=set)

    def is_active(self, game_id: str) -> bool:
        return game_id in self.active


@dataclass
class FakeLibrary:
    game_dir: Path
    snapshot: LibrarySnapshot
    operations: FakeOperations = field(default_factory=FakeOperations)


def ready(*game_ids: str) -> LibrarySnapshot:
    return make_snapshot(
        1,
        [
            GameSummary(
                id=game_id,
                availability=Availability.READY,
                version="1.0",
                installed=False,
                size_bytes=1,
            )
            for game_id in game_ids
        ],
    )


@pytest.fixture
def library(game_dir: Path) -> FakeLibrary:
    return FakeLibrary(game_dir, ready(GAME))


class Gate:
    """A fake clock and ``sleep`` for the throttle: the first nap parks the hashing
    thread until released; every nap advances the clock by its length."""

    def __init__(self) -> None:
        self.parked = threading.Event()
        self.release = threading.Event()
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def __call__(self, seconds: float) -> None:
        self.parked.set()
        assert self.release.wait(WAIT)
        self.now += seconds


@contextlib.asynccontextmanager
async def running(service: HashingService) -> AsyncIterator[None]:
    """Run the service for the block, then cancel it and wait for it to end."""
    async with asyncio.TaskGroup() as group:
        task = group.create_task(service.run())
        try:
            yield
        finally:
            task.cancel()


async def test_background_hashing_turns_not_ready_into_a_manifest(
    cache: ManifestCache, library: FakeLibrary, game_dir: Path
) -> None:
    """A Ready game without a manifest is not servable; once the service hashed it, it is."""
    service = HashingService(cache, library)
    assert await service.manifest_for(GAME) is None
    assert await service.state(GAME) is HashState.PENDING
    async with running(service):
        await asyncio.wait_for(service.wait_hashed(1), WAIT)
        manifest = await service.manifest_for(GAME)
    assert manifest == manifest_of(game_dir)
    assert await service.state(GAME) is HashState.READY


async def test_game_is_not_ready_while_its_hash_runs(
    cache: ManifestCache, library: FakeLibrary, game_dir: Path
) -> None:
    """Mid-hash (the thread parked by the rate cap) the game is still not servable."""
    gate = Gate()
    service = HashingService(
        cache, library, max_rate=float(HASH_BLOCK_SIZE), sleep=gate, clock=gate.clock
    )
    async with running(service):
        await asyncio.to_thread(gate.parked.wait, WAIT)
        assert await service.manifest_for(GAME) is None
        gate.release.set()
        await asyncio.wait_for(service.wait_hashed(1), WAIT)
        assert await service.manifest_for(GAME) == manifest_of(game_dir)


async def test_payload_changing_during_the_hash_is_hashed_again(
    cache: ManifestCache, library: FakeLibrary, game_dir: Path
) -> None:
    """A file rewritten while it is hashed: that result is dropped and the new bytes hashed."""
    gate = Gate()
    service = HashingService(
        cache, library, max_rate=float(HASH_BLOCK_SIZE), sleep=gate, clock=gate.clock
    )
    async with running(service):
        await asyncio.to_thread(gate.parked.wait, WAIT)
        (game_dir / GAME / "data.eti").write_bytes(os.urandom(MIN_CHUNK_SIZE + 1))
        gate.release.set()
        await asyncio.wait_for(service.wait_hashed(1), WAIT)
        manifest = await service.manifest_for(GAME)
    assert manifest == manifest_of(game_dir)
    assert service.hashed_count == 1


async def test_busy_games_wait_until_the_library_changes(
    cache: ManifestCache, library: FakeLibrary, game_dir: Path
) -> None:
    """A game with an active operation is skipped; library_changed after it ends hashes it."""
    make_game(game_dir, "doom", size=10)
    library.snapshot = ready("doom", GAME)
    library.operations.active.add(GAME)
    service = HashingService(cache, library)
    async with running(service):
        await asyncio.wait_for(service.wait_hashed(1), WAIT)
        assert await service.state("doom") is HashState.READY
        assert await service.state(GAME) is HashState.PENDING
        library.operations.active.clear()
        service.library_changed()
        await asyncio.wait_for(service.wait_hashed(2), WAIT)
    assert await service.state(GAME) is HashState.READY


async def test_unhashable_payload_is_failed_until_it_changes(
    cache: ManifestCache, library: FakeLibrary, game_dir: Path
) -> None:
    """A payload with a Windows device name fails once, is not retried per lookup, then is."""
    make_game(game_dir, "doom", size=10)
    (game_dir / "doom" / "aux.eti").write_bytes(b"x")
    library.snapshot = ready("doom", GAME)
    service = HashingService(cache, library)
    async with running(service):
        await asyncio.wait_for(service.wait_hashed(1), WAIT)
        # Polled: a failure is recorded without an event.
        await wait_until(lambda: service.failure("doom"), "doom's hash to fail", timeout=WAIT)
        assert await service.state("doom") is HashState.FAILED
        assert "'aux.eti' is a Windows device name" in (service.failure("doom") or "")
        (game_dir / "doom" / "aux.eti").unlink()
        service.library_changed()
        await asyncio.wait_for(service.wait_hashed(2), WAIT)
    assert await service.state("doom") is HashState.READY


async def test_cancelling_the_service_stops_the_hash_promptly(
    cache: ManifestCache, library: FakeLibrary
) -> None:
    """Cancelled mid-hash, the service stops its thread and stores nothing."""
    gate = Gate()
    service = HashingService(
        cache, library, max_rate=float(HASH_BLOCK_SIZE), sleep=gate, clock=gate.clock
    )
    async with running(service):
        await asyncio.to_thread(gate.parked.wait, WAIT)
        gate.release.set()  # the thread wakes, sees the stop flag at its next block
    assert not cache.path_for(GAME).exists()
    assert service.hashed_count == 0


def test_rate_cap_paces_reads() -> None:
    """At 4 blocks per second the throttle sleeps so block n starts no earlier than n/4 s."""
    now = [0.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    throttle = _Throttle(threading.Event(), 4.0 * HASH_BLOCK_SIZE, lambda: now[0], sleep)
    for _ in range(4):
        assert throttle() is False
    assert now[0] == pytest.approx(1.0)
    assert max(naps) <= 0.1


def test_rate_must_be_positive(cache: ManifestCache, library: FakeLibrary) -> None:
    """A zero cap would never hash anything: refused at construction."""
    with pytest.raises(ValueError, match=r"^max_rate must be positive, got 0$"):
        HashingService(cache, library, max_rate=0)


async def test_manifest_carries_the_version_on_disk_not_the_libraries_stale_one(
    cache: ManifestCache, game_dir: Path
) -> None:
    """A hash that runs before the scan saw a new version.ini still labels the new version.

    The library still says 1.0 while version.ini already says 2.0: the manifest must say
    2.0, or every downloader would reject this source as offering the wrong version.
    """
    (game_dir / GAME / "version.ini").write_text("2.0")
    stale_library = FakeLibrary(game_dir, ready(GAME))
    service = HashingService(cache, stale_library)
    async with running(service):
        await asyncio.wait_for(service.wait_hashed(1), WAIT)
        manifest = await service.manifest_for(GAME)
    assert manifest is not None
    assert manifest.version == "2.0"
