"""Downloads between real runtimes on loopback: multi-source, cancel, resume, update, faults."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.archives import ArchiveFormat, Member, write_game_root
from tests.support.download_roots import build_manifest, mounted_tmpfs
from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded
from tests.support.waiting import wait_until

from lanspread.core.gameroot import DOWNLOAD_JOURNAL_FILE, INSTALL_RECORD_FILE, OWNERSHIP_FILE
from lanspread.errors import InvalidGameState, OperationInProgress, StorageError, UnknownGame
from lanspread.files.ownership import claim_download
from lanspread.runtime.commands import (
    Cancel,
    ChooseContent,
    Connect,
    Download,
    Remove,
    SetGameDir,
    Update,
)
from lanspread.runtime.events import (
    ChunkFinished,
    DownloadAllPeersGone,
    DownloadBegin,
    DownloadCancelled,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    InstallFinished,
    RemoveFinished,
    SourceRejected,
)
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.runtime import PeerRuntime
from lanspread.seeding.manifests import HashState

Start = Callable[..., Any]
MiB = 1024 * 1024
CHUNK = MiB
WAIT = 20.0
# More than three chunks, and not a whole number of them.
GAME_SIZE = 3 * MiB + 123


def noise(seed: int, size: int) -> bytes:
    """Deterministic incompressible bytes."""
    return random.Random(seed).randbytes(size)


def make_game(
    game_dir: Path, game_id: str = "quake3", *, version: str = "1.0", size: int = GAME_SIZE
) -> Path:
    """An installable game of two archives, larger than one chunk."""
    return write_game_root(
        game_dir / game_id,
        {
            "game.eti": (
                ArchiveFormat.TAR,
                [
                    Member("start.sh", b"#!/bin/sh\nexit 0\n", mode=0o755),
                    Member("pak0.pk3", noise(1, size)),
                ],
            ),
            "extra.eti": (ArchiveFormat.ZIP, {"maps/dm17.bsp": noise(2, MiB // 2)}),
        },
        version=version,
    )


def tree_digest(
    root: Path, *, skip: tuple[str, ...] = ("local", INSTALL_RECORD_FILE, OWNERSHIP_FILE)
) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (relative paths), skipping top-level names.

    The ownership record is skipped by default: its bytes hold inode numbers.
    """
    digests = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in skip or not path.is_file():
            continue
        digests[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def rot_every_chunk(archive: Path) -> None:
    """Flip one byte in every chunk of ``archive`` but keep its size and mtime."""
    stat = archive.stat()
    with open(archive, "r+b") as handle:
        for offset in range(0, stat.st_size, CHUNK):
            handle.seek(offset + 100)
            handle.write(b"\xff")
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))


async def hashed(runtime: PeerRuntime, game_id: str = "quake3") -> None:
    """Wait until ``runtime`` can serve ``game_id`` (its manifest is hashed).

    Polled: a manifest found in the cache at start is ready without any event.
    """

    async def ready() -> bool:
        return await runtime.hashing.state(game_id) is HashState.READY

    await wait_until(ready, f"{game_id} to be hashed", timeout=WAIT)


async def peers(start: Start, *names: str, **options: Any) -> list[PeerRuntime]:
    runtimes = [await start(name, chunk_size=CHUNK, **options) for name in names]
    for other in runtimes[1:]:
        await runtimes[0].execute(Connect(addr=other.listen_addr))
    for other in runtimes[1:]:
        for third in runtimes[1:]:
            if third is not other and third.peer_id not in other.network.known_peers():
                await other.execute(Connect(addr=third.listen_addr))
    return runtimes


async def offered(runtime: PeerRuntime, game_id: str = "quake3", count: int = 1) -> None:
    """Wait until ``count`` peers offer ``game_id`` to ``runtime``."""
    await RuntimeEvents(runtime).until(
        lambda: len(runtime.network.sources_for(game_id)[1]) >= count,
        f"{count} peers to offer {game_id}",
        within=WAIT,
    )


async def serving(downloader: PeerRuntime, *sources: PeerRuntime) -> None:
    """Wait until every source can serve quake3 and the downloader sees them all offer it."""
    for source in sources:
        await hashed(source)
    await offered(downloader, count=len(sources))


async def serving_pair(
    start: Start, tmp_path: Path, *, size: int = GAME_SIZE, version: str = "1.0", **options: Any
) -> tuple[PeerRuntime, PeerRuntime]:
    """alpha and bravo linked, bravo holding quake3 (``size`` bytes of archive) and serving
    it to alpha; ``options`` go to both runtimes."""
    make_game(tmp_path / "bravo" / "games", version=version, size=size)
    alpha, bravo = await peers(start, "alpha", "bravo", **options)
    await serving(alpha, bravo)
    return alpha, bravo


async def test_single_source_download_installs_byte_exact(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A download fetches every byte, commits the sentinel last, then installs (policy auto)."""
    alpha, bravo = await serving_pair(start_runtime, tmp_path)
    source_root = bravo.game_dir / "quake3"
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(InstallFinished)
    root = alpha.game_dir / "quake3"
    assert tree_digest(root) == tree_digest(source_root)
    assert (root / "local" / "pak0.pk3").stat().st_size == 3 * MiB + 123
    assert not (root / DOWNLOAD_JOURNAL_FILE).exists()
    begin = events.of(DownloadBegin)[0]
    assert begin.total_bytes == sum(p.stat().st_size for p in source_root.iterdir())
    assert begin.sources == (bravo.peer_id,)
    progress = events.of(DownloadProgress)
    assert progress[0].bytes_per_second == 0.0
    assert progress[-1].downloaded_bytes == progress[-1].total_bytes
    chunks = events.of(ChunkFinished)
    assert len(chunks) >= 4
    assert {c.peer_id for c in chunks} == {bravo.peer_id}
    order = [type(e) for e in events.seen if type(e) in (DownloadFinished, InstallFinished)]
    assert order == [DownloadFinished, InstallFinished]
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.downloaded, view.installed, view.operation) == (True, True, None)


async def test_multi_source_download_uses_every_source(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Chunks of one game come from several peers and the result matches each source."""
    make_game(tmp_path / "bravo" / "games", size=6 * MiB)
    source_root = make_game(tmp_path / "charlie" / "games", size=6 * MiB)
    alpha, bravo, charlie = await peers(
        start_runtime, "alpha", "bravo", "charlie", install_policy=InstallPolicy.MANUAL
    )
    await serving(alpha, bravo, charlie)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(source_root)
    assert {c.peer_id for c in events.of(ChunkFinished)} == {bravo.peer_id, charlie.peer_id}
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.downloaded, view.installed) == (True, False)


async def test_status_counts_the_bytes_each_peer_served(
    start_runtime: Start, tmp_path: Path
) -> None:
    """The ``bytes_served`` of status is the upload counter: every byte of the download
    (chunks and sentinel) is counted by the source that sent it, none by the downloader."""
    make_game(tmp_path / "bravo" / "games", size=2 * MiB)
    alpha, bravo = await peers(start_runtime, "alpha", "bravo", install_policy=InstallPolicy.MANUAL)
    assert bravo.status().bytes_served == 0
    await serving(alpha, bravo)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    total = events.of(DownloadBegin)[0].total_bytes
    # The source counts a chunk once its send returns, which may be after the
    # downloader has already read the last bytes.
    await wait_until(
        lambda: bravo.status().bytes_served >= total, f"bravo to count {total} bytes served"
    )
    assert (bravo.status().bytes_served, alpha.status().bytes_served) == (total, 0)


async def test_command_preconditions(start_runtime: Start, tmp_path: Path) -> None:
    """Non-catalog ids, games nobody offers, and duplicate downloads are refused."""
    make_game(tmp_path / "bravo" / "games", size=32 * MiB)
    alpha, bravo = await peers(start_runtime, "alpha", "bravo")
    with pytest.raises(UnknownGame, match="'doom' is not a game of the catalog"):
        await alpha.execute(Download(game="doom"))
    with pytest.raises(InvalidGameState, match="no peer offers Cs16 right now"):
        await alpha.execute(Download(game="cs16"))
    with pytest.raises(InvalidGameState, match="Cs16 has no download to cancel"):
        await alpha.execute(Cancel(game="cs16"))
    await serving(alpha, bravo)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    with pytest.raises(OperationInProgress, match="Quake3 is busy: downloading"):
        await alpha.execute(Download(game="quake3"))
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled)


async def test_cancel_fresh_download_leaves_nothing(start_runtime: Start, tmp_path: Path) -> None:
    """Cancel mid-download removes the game root entirely, within a second."""
    alpha, _bravo = await serving_pair(start_runtime, tmp_path, size=96 * MiB)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(ChunkFinished)
    began = time.monotonic()
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled)
    latency = time.monotonic() - began
    assert not (alpha.game_dir / "quake3").exists()
    assert latency < 1.0, f"cancel took {latency:.2f}s"
    assert alpha.local.operations.snapshot() == {}
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.downloaded, view.paused_bytes) == (False, 0)


async def test_update_then_cancel_keeps_the_install(start_runtime: Start, tmp_path: Path) -> None:
    """Cancelling an update of an installed game keeps local/ and the old version's
    archives byte for byte (the update downloaded beside them): still downloaded, and
    served while the update ran."""
    root = make_game(tmp_path / "alpha" / "games", version="1.0", size=MiB)
    record_as_downloaded(root, root_created=True)
    (root / "local").mkdir()
    (root / "local" / "savegame.dat").write_bytes(b"my progress")
    before = _tree(root)
    alpha, _bravo = await serving_pair(start_runtime, tmp_path, version="2.0", size=96 * MiB)
    events = RuntimeEvents(alpha)
    await alpha.execute(Update(game="quake3"))
    await events.first(ChunkFinished)
    assert "quake3" not in alpha.local.operations.root_busy()  # 1.0 is still served
    assert (root / ".lanspread.update" / "quake3").is_dir()
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled)
    assert _tree(root) == before
    assert not (root / ".lanspread.update").exists()
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.installed, view.downloaded, view.update_available) == (True, True, True)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the ownership record, by relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name != OWNERSHIP_FILE
    }


async def test_update_installs_the_new_version_and_reuses_unchanged_bytes(
    start_runtime: Start, tmp_path: Path
) -> None:
    """An update fetches only what changed and replaces local/ with the new version."""
    old = make_game(tmp_path / "alpha" / "games", version="1.0", size=4 * MiB)
    new = write_game_root(
        tmp_path / "bravo" / "games" / "quake3",
        {
            "game.eti": (
                ArchiveFormat.TAR,
                [
                    Member("start.sh", b"#!/bin/sh\nexit 0\n", mode=0o755),
                    Member("pak0.pk3", noise(1, 4 * MiB)),
                ],
            ),
            "extra.eti": (ArchiveFormat.ZIP, {"maps/dm17.bsp": noise(3, MiB)}),
        },
        version="2.0",
    )
    assert (old / "game.eti").read_bytes() == (new / "game.eti").read_bytes()
    alpha, bravo = await peers(start_runtime, "alpha", "bravo")
    events = RuntimeEvents(alpha)
    from lanspread.runtime.commands import Install

    await alpha.execute(Install(game="quake3"))
    await events.first(InstallFinished)
    await serving(alpha, bravo)
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert view.update_available
    await alpha.execute(Update(game="quake3"))
    await events.first(InstallFinished, where=lambda e: len(events.of(InstallFinished)) >= 2)
    assert tree_digest(old) == tree_digest(new)
    begin = events.of(DownloadBegin)[0]
    assert begin.resumed_bytes >= (new / "game.eti").stat().st_size
    fetched = {c.path for c in events.of(ChunkFinished)}
    assert "game.eti" not in fetched
    assert (old / "local" / "maps" / "dm17.bsp").read_bytes() == noise(3, MiB)
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.local_version, view.update_available) == ("2.0", False)


async def test_resume_after_shutdown_fetches_only_the_rest(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A download interrupted by a stop shows as paused and resumes where it left off."""
    alpha, bravo = await serving_pair(
        start_runtime, tmp_path, size=96 * MiB, install_policy=InstallPolicy.MANUAL
    )
    source_root = bravo.game_dir / "quake3"
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(ChunkFinished, where=lambda _: len(events.of(ChunkFinished)) >= 8)
    alpha.shutdown()
    await alpha.wait_stopped()
    assert (tmp_path / "alpha" / "games" / "quake3" / DOWNLOAD_JOURNAL_FILE).exists()
    alpha = await start_runtime("alpha", chunk_size=CHUNK, install_policy=InstallPolicy.MANUAL)
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert 0 < view.paused_bytes < view.paused_total_bytes
    await alpha.execute(Connect(addr=bravo.listen_addr))
    await offered(alpha)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    assert events.of(DownloadBegin)[0].resumed_bytes == view.paused_bytes
    fetched = sum(c.length for c in events.of(ChunkFinished))
    assert fetched == view.paused_total_bytes - view.paused_bytes - len(b"1.0\n")
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(source_root)


async def paused_by_departure(
    start_runtime: Start, tmp_path: Path
) -> tuple[PeerRuntime, PeerRuntime, RuntimeEvents]:
    """alpha downloading quake3 (128 MiB) from bravo, paused by bravo's shutdown after
    its first chunk: (alpha, bravo, alpha's events)."""
    alpha, bravo = await serving_pair(start_runtime, tmp_path, size=128 * MiB)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(ChunkFinished)
    bravo.shutdown()
    await bravo.wait_stopped()
    await events.first(DownloadAllPeersGone)
    return alpha, bravo, events


async def test_all_sources_gone_pauses_the_download(start_runtime: Start, tmp_path: Path) -> None:
    """When the only source leaves mid-download, the download pauses (not a failure)."""
    alpha, _bravo, events = await paused_by_departure(start_runtime, tmp_path)
    assert events.of(DownloadFailed) == []
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert view.paused_bytes > 0
    assert view.operation is None


async def honest_and_rotten(
    start_runtime: Start, tmp_path: Path
) -> tuple[PeerRuntime, PeerRuntime, PeerRuntime]:
    """alpha, offered quake3 (6 MiB, install policy manual) by an honest bravo and by
    charlie, a liar: a byte in every chunk it serves rotted after it hashed them, keeping
    size and mtime, so its cached manifest still claims the honest hashes."""
    make_game(tmp_path / "bravo" / "games", size=6 * MiB)
    liar = make_game(tmp_path / "charlie" / "games", size=6 * MiB)
    alpha, bravo, charlie = await peers(
        start_runtime, "alpha", "bravo", "charlie", install_policy=InstallPolicy.MANUAL
    )
    await hashed(bravo)
    await hashed(charlie)
    # Both archives: each download orders equally rare chunks its own way, so the
    # liar's first chunk may be of either.
    rot_every_chunk(liar / "game.eti")
    rot_every_chunk(liar / "extra.eti")
    await offered(alpha, count=2)
    return alpha, bravo, charlie


async def test_corrupt_source_is_detected_and_bypassed(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Bytes that do not match the manifest hash are refetched from an honest source."""
    alpha, bravo, charlie = await honest_and_rotten(start_runtime, tmp_path)
    honest = bravo.game_dir / "quake3"
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(honest)
    rejected = events.of(SourceRejected)
    assert rejected
    assert {r.peer_id for r in rejected} == {charlie.peer_id}
    assert "corrupt" in rejected[0].reason


async def test_source_vanishing_mid_download_fails_over(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A source that disappears without goodbye is replaced by the remaining one."""
    source_root = make_game(tmp_path / "bravo" / "games", size=64 * MiB)
    make_game(tmp_path / "charlie" / "games", size=64 * MiB)
    alpha, bravo, charlie = await peers(
        start_runtime, "alpha", "bravo", "charlie", install_policy=InstallPolicy.MANUAL
    )
    charlie_stops_silently = charlie  # no goodbye: like a crash
    await serving(alpha, bravo, charlie)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(ChunkFinished, where=lambda c: c.peer_id == charlie.peer_id)
    await charlie_stops_silently.network.close(goodbye_timeout=0.0)
    charlie_stops_silently.shutdown()
    await events.first(DownloadFinished, within=40.0)
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(source_root)
    assert events.of(DownloadFailed) == []


async def test_sources_that_disagree_are_a_conflict_the_player_resolves(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Two honest sources do not outvote a third whose manifest differs: the unpinned
    download fails showing both sides; once the player chooses the honest content the
    download uses only its sources and the other one is reported."""
    honest = make_game(tmp_path / "bravo" / "games", size=2 * MiB)
    make_game(tmp_path / "charlie" / "games", size=2 * MiB)
    liar = make_game(tmp_path / "delta" / "games", size=2 * MiB)
    (liar / "extra.eti").write_bytes(noise(9, 3 * MiB))
    alpha, *sources = await peers(
        start_runtime, "alpha", "bravo", "charlie", "delta", install_policy=InstallPolicy.MANUAL
    )
    await serving(alpha, *sources)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    failed = await events.first(DownloadFailed)
    assert failed.reason.startswith("the peers offering quake3 1.0 disagree on its content (")
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert view.conflict is not None
    sides = {side.peers: side.digest for side in view.conflict.sides}
    honest_peers = tuple(sorted((sources[0].peer_id, sources[1].peer_id)))
    assert set(sides) == {honest_peers, (sources[2].peer_id,)}
    assert not (alpha.game_dir / "quake3" / "version.ini").exists()
    await alpha.execute(Download(game="quake3"))  # asking again decides nothing either
    await wait_until(lambda: len(events.of(DownloadFailed)) == 2, "the second download to fail")
    assert events.of(DownloadFailed)[1].reason == failed.reason
    assert next(g for g in alpha.games() if g.id == "quake3").conflict == view.conflict
    await alpha.execute(ChooseContent(game="quake3", digest=sides[honest_peers]))
    await events.first(DownloadFinished)
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(honest)
    assert sources[2].peer_id in {r.peer_id for r in events.of(SourceRejected)}
    assert not any(c.peer_id == sources[2].peer_id for c in events.of(ChunkFinished))
    assert next(g for g in alpha.games() if g.id == "quake3").conflict is None
    with pytest.raises(InvalidGameState) as caught:
        await alpha.execute(ChooseContent(game="quake3", digest=sides[honest_peers]))
    assert str(caught.value) == "quake3 has no content conflict to resolve"


async def test_disk_full_fails_cleanly(start_runtime: Start, tmp_path: Path) -> None:
    """A download that does not fit is refused before it starts, naming the needed and
    free sizes, and creates nothing."""
    make_game(tmp_path / "bravo" / "games", size=8 * MiB)
    with mounted_tmpfs("4m") as small:
        alpha, bravo = await peers(start_runtime, "alpha", "bravo")
        await alpha.execute(SetGameDir(path=str(small)))
        await serving(alpha, bravo)
        with pytest.raises(
            StorageError,
            match=r"^not enough disk space for Quake3: it needs 8\.\d MB, [34]\.\d MB free$",
        ):
            await alpha.execute(Download(game="quake3"))
        assert not (small / "quake3").exists()
        view = next(g for g in alpha.games() if g.id == "quake3")
        assert (view.downloaded, view.operation) == (False, None)
        alpha.shutdown()
        await alpha.wait_stopped()


async def test_unexpected_error_fails_the_download_and_releases_the_game(
    start_runtime: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside the download path still ends with download-failed and no stuck operation."""
    alpha, _bravo = await serving_pair(start_runtime, tmp_path)

    def broken(*args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(alpha.downloads, "_prepare", broken)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    failed = await events.first(DownloadFailed)
    assert failed.reason == "simulated bug"
    assert alpha.local.operations.snapshot() == {}


async def test_cancel_of_a_paused_download_discards_it(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Cancel on a paused download (no transfer running) removes its files and journal."""
    alpha, _bravo, events = await paused_by_departure(start_runtime, tmp_path)
    assert (alpha.game_dir / "quake3" / DOWNLOAD_JOURNAL_FILE).exists()
    await alpha.execute(Cancel(game="quake3"))
    await events.first(DownloadCancelled)
    assert not (alpha.game_dir / "quake3").exists()
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.paused_bytes, view.operation) == (0, None)


async def test_a_changed_game_folder_forgets_the_old_paused_download(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Paused in folder A, switched to folder B holding a complete quake3 of the player's:
    the paused record does not survive the switch, so cancel cannot wipe B's copy."""
    alpha, _bravo, _events = await paused_by_departure(start_runtime, tmp_path)
    other = make_game(tmp_path / "folder-b", version="1.0", size=MiB)
    (other / "saves").mkdir()
    (other / "saves" / "slot1.sav").write_bytes(b"the player's save")
    before = tree_digest(other, skip=())
    await alpha.execute(SetGameDir(path=str(tmp_path / "folder-b")))
    assert alpha.downloads.partials == {}
    with pytest.raises(InvalidGameState) as caught:
        await alpha.execute(Cancel(game="quake3"))
    assert str(caught.value) == "Quake3 has no download to cancel"
    assert tree_digest(other, skip=()) == before


async def test_a_changed_game_folder_is_settled_like_a_start(
    start_runtime: Start, tmp_path: Path
) -> None:
    """The new folder gets install recovery, proven orphan settling, paused and found
    detection before anything acts on it."""
    (alpha,) = await peers(start_runtime, "alpha")
    folder = tmp_path / "folder-b"
    orphan = folder / "quake3"
    orphan.mkdir(parents=True)
    claim_download(orphan, build_manifest({"a.eti": b"x", "version.ini": b"v"}), adopt=False)
    (orphan / "a.eti").write_bytes(b"x")
    (orphan / "local").mkdir()
    (orphan / "local" / "game.exe").write_bytes(b"installed")
    (orphan / ".lanspread.json").write_text('{"format":1,"game_id":"quake3","intent":"Installing"}')
    players = folder / "openttd"
    (players / "saves").mkdir(parents=True)
    (players / "saves" / "my-world.zip").write_bytes(b"four hundred hours")
    await alpha.execute(SetGameDir(path=str(folder)))
    assert not (orphan / "a.eti").exists()
    assert not (orphan / ".lanspread.json").exists()
    assert (orphan / "local" / "game.exe").read_bytes() == b"installed"
    assert (players / "saves" / "my-world.zip").read_bytes() == b"four hundred hours"
    view = next(g for g in alpha.games() if g.id == "openttd")
    assert view.found == (
        "no version.ini, no download record (.lanspread.files.json); left as it is"
    )


def spy_requests(runtime: PeerRuntime) -> list[tuple[str, str]]:
    """Record every manifest and ticket request ``runtime`` makes: (kind, peer id)."""
    asked: list[tuple[str, str]] = []
    network = runtime.network
    fetch_manifest, request_ticket = network.fetch_manifest, network.request_ticket

    async def manifest_spy(peer_id: str, game_id: str) -> Any:
        asked.append(("manifest", peer_id))
        return await fetch_manifest(peer_id, game_id)

    async def ticket_spy(peer_id: str, game_id: str, digest: str | None = None) -> Any:
        asked.append(("ticket", peer_id))
        return await request_ticket(peer_id, game_id, digest)

    network.fetch_manifest = manifest_spy  # type: ignore[method-assign]
    network.request_ticket = ticket_spy  # type: ignore[method-assign]
    return asked


async def test_a_source_that_sent_corrupt_bytes_is_never_asked_again_until_a_restart(
    start_runtime: Start, tmp_path: Path
) -> None:
    """After a liar is caught, the next download of the game asks only the honest
    source (no manifest, no ticket from the liar) and the game view names the liar;
    a restarted runtime has forgotten it and asks it again."""
    alpha, bravo, charlie = await honest_and_rotten(start_runtime, tmp_path)
    honest = bravo.game_dir / "quake3"
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    assert {r.peer_id for r in events.of(SourceRejected)} == {charlie.peer_id}
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert view.excluded_peers == (charlie.peer_id,)
    await alpha.execute(Remove(game="quake3"))
    await events.first(RemoveFinished)

    again = RuntimeEvents(alpha)
    asked = spy_requests(alpha)
    await alpha.execute(Download(game="quake3"))
    await again.first(DownloadFinished)
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(honest)
    assert again.of(DownloadBegin)[0].sources == (bravo.peer_id,)
    assert {peer for _, peer in asked} == {bravo.peer_id}
    assert {kind for kind, _ in asked} == {"manifest", "ticket"}
    assert {c.peer_id for c in again.of(ChunkFinished)} == {bravo.peer_id}
    assert again.of(SourceRejected) == []
    await alpha.execute(Remove(game="quake3"))
    await again.first(RemoveFinished)

    alpha.shutdown()
    await alpha.wait_stopped()
    restarted = await start_runtime("alpha", chunk_size=CHUNK, install_policy=InstallPolicy.MANUAL)
    await restarted.execute(Connect(addr=bravo.listen_addr))
    await restarted.execute(Connect(addr=charlie.listen_addr))
    await offered(restarted, count=2)
    assert next(g for g in restarted.games() if g.id == "quake3").excluded_peers == ()
    fresh = RuntimeEvents(restarted)
    await restarted.execute(Download(game="quake3"))
    await fresh.first(DownloadFinished)
    assert fresh.of(DownloadBegin)[0].sources == tuple(sorted((bravo.peer_id, charlie.peer_id)))
    assert {r.peer_id for r in fresh.of(SourceRejected)} == {charlie.peer_id}


async def test_a_game_whose_every_source_lied_is_not_downloaded_again(
    start_runtime: Start, tmp_path: Path
) -> None:
    """When the only source sent corrupt bytes the download fails; resuming it is
    refused with a message naming the game, and the liar is never asked again."""
    liar = make_game(tmp_path / "charlie" / "games", size=2 * MiB)
    alpha, charlie = await peers(
        start_runtime, "alpha", "charlie", install_policy=InstallPolicy.MANUAL
    )
    await hashed(charlie)
    rot_every_chunk(liar / "game.eti")
    await offered(alpha)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFailed)
    assert {r.peer_id for r in events.of(SourceRejected)} == {charlie.peer_id}
    asked = spy_requests(alpha)
    with pytest.raises(
        InvalidGameState,
        match=r"^every peer offering Quake3 sent corrupt data earlier; "
        r"not downloading from them again until lanspread restarts$",
    ):
        await alpha.execute(Download(game="quake3"))
    assert asked == []
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert view.excluded_peers == (charlie.peer_id,)
