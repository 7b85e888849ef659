"""A stranger in its own namespace floods a source while an honest download runs (S80).

The stranger (``tests/support/stranger.py``) runs on the third host with two
extra addresses, so it plays three strangers: it keeps idle sockets on the
source's control and data ports and self-made identities holding links and
asking for tickets. The receiver's download from that source must still finish
byte exact.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.netns.transfer_lan import QUAKE3, BuildLan, payload_manifest
from tests.support.netns import SUBNET

STRANGER = Path(__file__).resolve().parents[1] / "support" / "stranger.py"
# The stranger's host takes these extra addresses: three strangers in all.
EXTRA_ADDRESSES = (f"{SUBNET}.201", f"{SUBNET}.202")
# Self-made identities: 32 per address fill each address's link share.
SYBILS = 96
# Creating the identities (a key and a certificate each) and learning the data
# port take seconds on a busy two-core machine.
STRANGER_READY_TIMEOUT = 60.0
# The stranger sends its counters within this of the end of its input.
STRANGER_EXIT_TIMEOUT = 10.0


async def test_a_flood_from_a_namespace_does_not_stop_an_honest_download(
    build_lan: BuildLan, tmp_path: Path
) -> None:
    """S80: idle sockets on both ports and Sybil links from three addresses; the download ends.

    The stranger reports ``flooding`` once every flood runs; the receiver then
    downloads quake3 from the source, which ends with ``download-finished`` and a
    byte-exact root. The stranger's counters show the flood was real: it opened
    sockets on both ports and held Sybil links.
    """
    lan = await build_lan(3)
    receiver, source = await lan.start([("h1", ()), ("h2", (QUAKE3,))])
    await lan.ready_to_fetch(receiver, [source], QUAKE3)
    evil = lan.host("h3")
    for address in EXTRA_ADDRESSES:
        await lan.network.run(evil, ["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
    stranger = await lan.network.spawn(
        evil,
        [
            sys.executable,
            str(STRANGER),
            "--target",
            source.host.address,
            "--port",
            str(source.port),
            "--sources",
            ",".join((evil.address, *EXTRA_ADDRESSES)),
            "--state-dir",
            str(tmp_path / "stranger"),
            "--sybils",
            str(SYBILS),
        ],
        name="stranger",
    )
    flooding = await stranger.wait_for("flooding", STRANGER_READY_TIMEOUT)
    began = time.monotonic()
    await receiver.command("download", "quake3")
    await receiver.finished("quake3")
    print(f"\ndownload under the flood took {time.monotonic() - began:.2f}s")
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    await stranger.close(STRANGER_EXIT_TIMEOUT)
    [stats] = [event for event in stranger.events if event["event"] == "stats"]
    print(f"stranger: {stats}")
    assert stats[f"idle sockets opened on {source.port}"] > 0
    assert stats[f"idle sockets opened on {flooding['data_port']}"] > 0
    assert stats["sybil links"] > 0
