"""An attacker forging real mDNS records on the switch (S88-S90).

The spoofer (``tests/support/mdns_spoofer.py``) runs in its own namespace and
multicasts lanspread records that point at its decoy, a listener presenting its
own key: a spoofed address for a live peer's id (S88), a peer's instance name
squatted before that peer restarts (S89), and a flood of records with made-up
ids (S90). The in-process versions, which hand the runtime the records instead
of sending them, are ``tests/runtime/test_hostile_mdns.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lanspread.core.sightings import DIAL_BURST, DIAL_RATE
from lanspread.net.discovery import MAX_TRACKED_PEERS, REGISTER_ATTEMPTS, instance_name
from tests.netns.transfer_lan import PEER_POLL, QUAKE3, BuildLan, Lan, Peer, payload_manifest
from tests.support.jsonl_process import Event, JsonlProcess
from tests.support.netns import Host, deafen_to_mdns
from tests.support.waiting import wait_until

# The spoofer runs as a module of the repository (it shares the foreign peer's helpers).
REPO = Path(__file__).resolve().parents[2]
SPOOFER = "tests.support.mdns_spoofer"
# Python start-up, a key and certificate, then the records' announcements (a flood
# of FAKE_RECORDS goes out in batches of 100, about half a second each).
SPOOFER_READY_TIMEOUT = 60.0
# The spoofer withdraws its records (three goodbye packets) and exits.
SPOOFER_EXIT_TIMEOUT = 15.0
# From the spoofed announcement to the receiver's dial of the decoy: the browser's
# update, a resolve from the cache and a dial within the dial budget. Seconds on a
# quiet machine; a loaded 2-core runner gets a generous margin.
SPOOF_DIAL_TIMEOUT = 30.0
# The restarted peer probes its name (~1.5 s), meets the squatter, probes a fresh
# name and announces it; then a handshake. Generous for a loaded runner.
REDISCOVERY_TIMEOUT = 30.0
# The reported attack: 600 records, more than the MAX_TRACKED_PEERS (512) that
# discovery reports, so a table that refused newcomers once full would refuse
# the honest one. The bridge carries them in about three seconds.
FAKE_RECORDS = 600
# From the newcomer's start to the receiver listing it: its announcement, the
# receiver's queue of the flood's changes, a dial due (up to 1 s deferred) and its
# turn in the dial budget. The in-process flood test allows 5 s; a namespace and a
# loaded runner twice that and more.
NEWCOMER_BOUND = 15.0
# A dial reaches the decoy up to this long after the receiver spent its token (a
# connect on a loaded runner), so the decoy's first dial may come late and its last
# early: the span it measures may be this much shorter than the receiver's.
DIAL_JITTER = 0.5


async def spawn_spoofer(
    lan: Lan, host: Host, state_dir: Path, *options: str
) -> tuple[JsonlProcess, Event]:
    """Start the spoofer on ``host`` with ``options``; it and its ``ready`` once its records
    are out."""
    argv = [
        sys.executable,
        "-m",
        SPOOFER,
        "--address",
        host.address,
        "--state-dir",
        str(state_dir),
        *options,
    ]
    spoofer = await lan.network.spawn(host, argv, name="spoofer", cwd=REPO)
    return spoofer, await spoofer.wait_for("ready", SPOOFER_READY_TIMEOUT)


def addr(peer: Peer) -> str:
    return f"{peer.host.address}:{peer.port}"


async def listed(peer: Peer) -> dict[str, str]:
    """``list-peers`` of ``peer``: address by peer id."""
    reply = await peer.process.request({"cmd": "list-peers"})
    return {p["peer_id"]: p["addr"] for p in reply["data"]["peers"]}


async def spoofer_stats(spoofer: JsonlProcess) -> tuple[Event, list[Event]]:
    """End the spoofer; its ``stats`` and every ``dialled`` it said."""
    assert await spoofer.close(SPOOFER_EXIT_TIMEOUT) == 0, spoofer.report("spoofer failed")
    [stats] = [event for event in spoofer.events if event["event"] == "stats"]
    return stats, [event for event in spoofer.events if event["event"] == "dialled"]


# --- S88: a spoofed address for a known peer --------------------------------------------


async def test_a_spoofed_record_for_a_known_peer_never_moves_it(
    build_lan: BuildLan, tmp_path: Path
) -> None:
    """S88: the source's own instance name, advertised at the spoofer, does not move it.

    The spoofer's record takes the source's name with the source's id and its
    decoy's address. The receiver acts on it: it dials the decoy expecting the
    source's id (the decoy says ``dialled``), the certificate there fails the pin,
    and ``list-peers`` keeps the source at its real address while a download of
    quake3 from the source, started with the spoof still up, ends byte exact.

    Without the defence the record itself rewrote the address (the issue: downloads
    stopped, 20 s after the spoofer went quiet): with ``on_advertised`` moving a
    proven peer at once, ``list-peers`` shows the decoy and the test fails there.
    """
    lan = await build_lan(3)
    receiver, source = await lan.start([("h1", ()), ("h2", (QUAKE3,))])
    await lan.ready_to_fetch(receiver, [source], QUAKE3)
    spoofer, ready = await spawn_spoofer(
        lan, lan.host("h3"), tmp_path / "spoofer", "--claim-id", source.peer_id
    )
    dialled = await spoofer.wait_for("dialled", SPOOF_DIAL_TIMEOUT)
    after = dialled["at"] - ready["since"]
    print(
        f"\nthe receiver dialled the spoofed address {after * 1000:.0f} ms after its announcement"
    )
    assert dialled["remote"].rsplit(":", 1)[0] == receiver.host.address
    assert (await listed(receiver))[source.peer_id] == addr(source)
    began = time.monotonic()
    await receiver.command("download", "quake3")
    await receiver.finished("quake3")
    print(f"download with the spoof up took {time.monotonic() - began:.2f}s")
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    assert await listed(receiver) == {source.peer_id: addr(source)}
    stats, dials = await spoofer_stats(spoofer)
    print(f"spoofer: {stats}")
    assert {dial["remote"].rsplit(":", 1)[0] for dial in dials} == {receiver.host.address}


# --- S89: a squatted instance name ------------------------------------------------------


async def test_a_peer_whose_name_is_squatted_registers_another_and_is_found(
    build_lan: BuildLan, tmp_path: Path
) -> None:
    """S89: the source stops, the spoofer takes its instance name, the source restarts.

    The restarted source's probe meets the squatter ("another responder holds
    <its name> (attempt 1 of 4); taking another name") and it registers under
    ``<label>~<hex>``; the receiver then sees it offering quake3 at its new address
    (a fresh port) and downloads quake3 from it byte exact.

    Without the defence the conflict ended the source's discovery: it neither
    advertised nor browsed, and the receiver, which only knew its old port, never
    found it again (checked with REGISTER_ATTEMPTS at 1: the wait for the receiver
    to see the restarted source times out).
    """
    lan = await build_lan(3)
    receiver, source = await lan.start([("h1", ()), ("h2", (QUAKE3,))])
    await lan.ready_to_fetch(receiver, [source], QUAKE3)
    assert await source.process.close() == 0, source.process.report("source failed to stop")
    spoofer, _ = await spawn_spoofer(
        lan, lan.host("h3"), tmp_path / "spoofer", "--claim-id", source.peer_id
    )
    restarted_at = time.monotonic()
    again = await lan.restart(source)
    conflict = (
        f"another responder holds {instance_name(source.peer_id)} "
        f"(attempt 1 of {REGISTER_ATTEMPTS}); taking another name"
    )
    await wait_until(
        lambda: conflict in again.process.stderr_path.read_text(errors="replace"),
        "the restarted source to meet the squatter",
        timeout=REDISCOVERY_TIMEOUT,
    )
    await lan.ready_to_fetch(receiver, [again], QUAKE3)
    print(f"\nthe receiver saw the restarted source {time.monotonic() - restarted_at:.2f}s after")
    # On its old port the receiver's re-dial of the last proven address would have
    # found it without mDNS; a fresh port (the kernel's pick) leaves mDNS the only way.
    assert again.port != source.port
    await receiver.command("download", "quake3")
    await receiver.finished("quake3")
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    assert await listed(receiver) == {source.peer_id: addr(again)}
    stats, _ = await spoofer_stats(spoofer)
    print(f"spoofer: {stats}")


# --- S90: a flood of fake records -------------------------------------------------------


async def test_a_flood_of_fake_records_does_not_hide_an_honest_newcomer(
    build_lan: BuildLan, tmp_path: Path
) -> None:
    """S90: FAKE_RECORDS records with made-up ids, then a newcomer the receiver must find.

    Every mDNS packet to the newcomer is dropped: it is heard but hears nothing,
    so only the receiver's own discovery can bring them together, through a flood
    that fills its discovery table and its sightings. The receiver lists the
    newcomer within NEWCOMER_BOUND of its start and nobody else (no fake is ever
    proven), and the dials the flood drew (counted at the decoy) stay within the
    dial budget (DIAL_BURST, then DIAL_RATE a second).

    Without the defences the newcomer is not listed within the bound: checked by
    turning each off in turn, a discovery table that ignores records once full
    ("already tracking 512 peers"), a sightings table that refuses new ones once
    full, and dials handed out oldest first (behind 256 failing fakes at 10 a second).
    """
    assert FAKE_RECORDS > MAX_TRACKED_PEERS
    lan = await build_lan(3)
    (receiver,) = await lan.start([("h1", ())])
    await deafen_to_mdns(lan.network, lan.host("h3"))
    spoofer, ready = await spawn_spoofer(
        lan, lan.host("h2"), tmp_path / "spoofer", "--fake", str(FAKE_RECORDS)
    )
    print(f"\n{FAKE_RECORDS} fake records announced in {time.monotonic() - ready['since']:.2f}s")
    (newcomer,) = await lan.start([("h3", ())])
    began = time.monotonic()

    async def newcomer_listed() -> bool:
        return (await listed(receiver)).get(newcomer.peer_id) == addr(newcomer)

    await wait_until(
        newcomer_listed,
        "the receiver to list the newcomer",
        timeout=NEWCOMER_BOUND,
        poll=PEER_POLL,
    )
    print(f"the receiver listed the newcomer {time.monotonic() - began:.2f}s after its start")
    assert await listed(receiver) == {newcomer.peer_id: addr(newcomer)}
    stats, dials = await spoofer_stats(spoofer)
    assert dials, "the flood drew no dial at all"
    span = dials[-1]["at"] - dials[0]["at"]
    print(f"spoofer: {stats}; {len(dials)} dials over {span:.2f}s")
    assert {dial["remote"].rsplit(":", 1)[0] for dial in dials} == {receiver.host.address}
    assert len(dials) <= DIAL_BURST + DIAL_RATE * (span + DIAL_JITTER)
