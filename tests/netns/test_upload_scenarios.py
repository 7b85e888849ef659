"""The gaming-now throttle between real peer processes in network namespaces (S81).

The source plays quake3 (its start script blocks on a FIFO the test holds, see
``test_install_scenarios.release_valve``) while the receiver downloads openttd
(47 MiB) from it. The source's upload is capped at :data:`CAP` while the game
runs: the transfer takes at least the time the cap allows (with a 20 % margin),
where the veth moves it in well under a second unthrottled (S22).
"""

from __future__ import annotations

import os
import time

from lanspread.core.uploads import BURST_SECONDS, UNLIMITED
from tests.netns.test_install_scenarios import release_valve
from tests.netns.transfer_lan import (
    INSTALL_ENDINGS,
    OPENTTD,
    QUAKE3,
    BuildLan,
    MiB,
    payload_manifest,
)

# The gaming-now cap of this scenario: 47 MiB at 16 MiB/s is about three seconds,
# long enough to tell from an unthrottled veth, short enough for a quick test.
CAP = 16 * MiB


async def test_gaming_now_caps_a_sources_upload_while_its_game_runs(
    build_lan: BuildLan,
) -> None:
    """S81: while a game launched on the source runs, its upload stays under the cap.

    ``set-upload-limit`` sets the cap (kept, applied at once); ``status`` says
    gaming and the cap while the game runs; the receiver's openttd arrives byte
    exact no faster than the cap allows; once the game exits ``status`` says the
    limit is lifted.
    """
    lan = await build_lan(2)
    receiver, source = await lan.start([("h1", ()), ("h2", (QUAKE3, OPENTTD))])
    await source.command("install", "quake3")
    installed = await source.outcome("quake3", INSTALL_ENDINGS)
    assert installed["event"] == "install-finished", source.process.report(str(installed))
    reply = await source.process.request({"cmd": "set-upload-limit", "gaming_cap": CAP})
    assert (reply["data"]["gaming_cap"], reply["data"]["effective_limit"]) == (CAP, UNLIMITED)
    await lan.ready_to_fetch(receiver, [source], OPENTTD)
    total = sum(
        (source.root("openttd") / path).stat().st_size for path in lan.cache.manifest(OPENTTD)
    )

    with release_valve(source.root("quake3") / "local") as valve:
        await source.process.request({"cmd": "play", "game": "quake3", "run_unpinned": True})
        await source.process.wait_for("game-started")
        status = (await source.process.request({"cmd": "status"}))["data"]
        assert (status["gaming"], status["upload_limit"]) == (True, CAP)
        began = time.monotonic()
        await receiver.command("download", "openttd")
        await receiver.finished("openttd")
        elapsed = time.monotonic() - began
        os.write(valve, b"0\n")
        await source.process.wait_for("game-exited")

    print(f"\n{total / MiB:.1f} MiB under a {CAP / MiB:.0f} MiB/s cap in {elapsed:.2f}s")
    assert elapsed >= (total - CAP * BURST_SECONDS) / CAP * 0.8
    assert payload_manifest(receiver.root("openttd")) == lan.cache.manifest(OPENTTD)
    status = (await source.process.request({"cmd": "status"}))["data"]
    assert (status["gaming"], status["upload_limit"]) == (False, UNLIMITED)
