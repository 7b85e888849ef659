"""Partial seeding between real runtimes on loopback: a downloader serves what it verified."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.runtime.test_downloads import (
    MiB,
    Start,
    make_game,
    peers,
    serving,
    tree_digest,
)
from tests.support.events import RuntimeEvents
from tests.support.waiting import wait_until

from lanspread.runtime.commands import Download
from lanspread.runtime.events import ChunkFinished, DownloadFinished
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.runtime import PeerRuntime

WAIT = 30.0
# The chunks the seeder sends before it holds back every other one (of 13 or so).
FREE_CHUNKS = 3


def hold_back(seeder: PeerRuntime, gate: asyncio.Event) -> None:
    """``seeder`` sends :data:`FREE_CHUNKS` chunks, then nothing until ``gate`` is set."""
    data = seeder.network.seeder.data_server
    assert data is not None
    send = data.shaper.send
    passed = 0

    async def gated(sock: Any, fd: int, offset: int, length: int, peer_id: str) -> int:
        nonlocal passed
        if passed >= FREE_CHUNKS:
            await gate.wait()
        passed += 1
        return await send(sock, fd, offset, length, peer_id)

    data.shaper.send = gated  # type: ignore[method-assign]


async def test_a_downloader_serves_its_verified_chunks_to_another(
    start_runtime: Start, tmp_path: Path
) -> None:
    """While alpha downloads, charlie fetches the chunks alpha verified from alpha itself
    (with a partial ticket: the seeder sends nothing more meanwhile), and both end byte
    exact once the seeder lets the rest go."""
    source = make_game(tmp_path / "bravo" / "games", size=12 * MiB)
    alpha, bravo, charlie = await peers(
        start_runtime, "alpha", "bravo", "charlie", install_policy=InstallPolicy.MANUAL
    )
    await serving(alpha, bravo)
    await serving(charlie, bravo)
    gate = asyncio.Event()
    hold_back(bravo, gate)
    alpha_events, charlie_events = RuntimeEvents(alpha), RuntimeEvents(charlie)
    await alpha.execute(Download(game="quake3"))

    def alpha_holds_the_free_chunks() -> bool:
        held = charlie.network.partials.book.partial_of(alpha.peer_id, "quake3")
        return held is not None and held.chunks.held >= FREE_CHUNKS

    # Polled: the availability book changes on have deltas, which signal nothing.
    await wait_until(alpha_holds_the_free_chunks, "alpha to announce its chunks", timeout=WAIT)
    await charlie.execute(Download(game="quake3"))
    await charlie_events.until(
        lambda: any(c.peer_id == alpha.peer_id for c in charlie_events.of(ChunkFinished)),
        "a chunk served by alpha",
        within=WAIT,
    )
    gate.set()
    await alpha_events.first(DownloadFinished)
    await charlie_events.first(DownloadFinished)
    for runtime in (alpha, charlie):
        assert tree_digest(runtime.game_dir / "quake3") == tree_digest(source)


async def test_the_seeder_steers_a_second_downloader_to_the_first(
    start_runtime: Start, tmp_path: Path
) -> None:
    """bravo holds back a chunk it is sending to alpha; charlie asking bravo for it is
    steered away (ELSEWHERE: it is in flight to alpha) instead of being sent a second
    copy, and only charlie is. Once bravo lets go, charlie fetches from alpha too and
    both end byte exact."""
    source = make_game(tmp_path / "bravo" / "games", size=12 * MiB)
    alpha, bravo, charlie = await peers(
        start_runtime, "alpha", "bravo", "charlie", install_policy=InstallPolicy.MANUAL
    )
    await serving(alpha, bravo)
    await serving(charlie, bravo)
    data = bravo.network.seeder.data_server
    assert data is not None
    gate = asyncio.Event()
    send = data.shaper.send
    passed = 0

    async def gated(sock: Any, fd: int, offset: int, length: int, peer_id: str) -> int:
        nonlocal passed
        if peer_id == alpha.peer_id:
            if passed >= FREE_CHUNKS:
                await gate.wait()
            passed += 1
        return await send(sock, fd, offset, length, peer_id)

    data.shaper.send = gated  # type: ignore[method-assign]
    rule = data.steering_rule
    ask = rule.ask
    steers: list[tuple[str, int, frozenset[str]]] = []

    def spied(asker: str, game_id: str, index: int, now: float, holders: Any) -> bool:
        steered = ask(asker, game_id, index, now, holders)
        if steered:
            steers.append((asker, index, frozenset(holders)))
        return steered

    rule.ask = spied  # type: ignore[method-assign]
    alpha_events, charlie_events = RuntimeEvents(alpha), RuntimeEvents(charlie)
    await alpha.execute(Download(game="quake3"))

    def alpha_holds_the_free_chunks() -> bool:
        held = charlie.network.partials.book.partial_of(alpha.peer_id, "quake3")
        return held is not None and held.chunks.held >= FREE_CHUNKS

    await wait_until(alpha_holds_the_free_chunks, "alpha to announce its chunks", timeout=WAIT)
    await charlie.execute(Download(game="quake3"))
    await wait_until(lambda: bool(steers), "bravo to steer charlie away", timeout=WAIT)
    assert {asker for asker, _, _ in steers} == {charlie.peer_id}
    gate.set()
    await alpha_events.first(DownloadFinished)
    await charlie_events.first(DownloadFinished)
    from_alpha = [c for c in charlie_events.of(ChunkFinished) if c.peer_id == alpha.peer_id]
    assert from_alpha
    for runtime in (alpha, charlie):
        assert tree_digest(runtime.game_dir / "quake3") == tree_digest(source)
