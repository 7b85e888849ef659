"""A big party: a 16-peer mesh, a peer behind a multicast filter, a liar in the gossip.

Real ``lanspread peer-cli`` processes, one per namespace on one bridge, as in
``test_network_scenarios.py`` (whose ``Scenario`` builds the peers here). Scenario
ids (S85-S87) are listed in ``SCENARIOS.md``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from tests.netns.test_network_scenarios import (
    Peer,
    Scenario,
    assert_peer_lists,
    logged,
)
from tests.support.fixtures import FIXTURE_CATALOG_IDS, FixtureGame, write_catalog
from tests.support.netns import Host, NetworkFactory, set_multicast_flood
from tests.support.waiting import wait_until

LIAR = Path(__file__).resolve().parents[1] / "support" / "gossip_liar.py"
MESH_PEERS = 16
# Peers are started this many at a time: sixteen interpreters at once on a loaded
# 2-core runner overrun a peer's start timeout, four take a few seconds, and each
# wave's mDNS announcements still collide.
START_WAVE = 4
# From the last start to a full mesh of 16: the party goal is 10 s at 48 peers on
# a quiet machine; a shared CI runner gets twice that.
MESH_BOUND = 20.0
# A peer that learned one peer by connect learns the rest from its hints: one
# handshake, then dials within the dial budget.
JOIN_BOUND = 10.0
# The liar's dial and the victim's refused dial: a handshake or two.
LIAR_TIMEOUT = 20.0


def games_for(index: int) -> tuple[FixtureGame, ...]:
    """One catalog game per peer, the catalog's ids in turn."""
    return (FixtureGame(FIXTURE_CATALOG_IDS[index % len(FIXTURE_CATALOG_IDS)]),)


async def scenario(network_factory: NetworkFactory, tmp_path: Path, hosts: int) -> Scenario:
    network = await network_factory(hosts)
    catalog = write_catalog(tmp_path / "catalog.toml")
    return Scenario(network, tmp_path / "peers", catalog)


async def start_peers(scenario: Scenario, hosts: list[Host]) -> list[Peer]:
    """Start a peer on each host, each with one game, in waves of START_WAVE started
    together; return once all run."""
    peers: list[Peer] = []
    for first in range(0, len(hosts), START_WAVE):
        wave = [
            await scenario.spawn(host, games_for(first + index))
            for index, host in enumerate(hosts[first : first + START_WAVE])
        ]
        await asyncio.gather(*(peer.started() for peer in wave))
        peers += wave
    return peers


async def knows(peer: Peer, count: int, within: float) -> None:
    """``peer`` reports knowing ``count`` peers (its ``peer-count-updated``)."""
    await peer.process.wait_for({"event": "peer-count-updated", "count": count}, within)


# --- S85: a 16-peer mesh ----------------------------------------------------------------


async def test_sixteen_peers_reach_a_full_mesh(
    network_factory: NetworkFactory, tmp_path: Path
) -> None:
    """S85: 16 peers started in waves of four each know the 15 others within MESH_BOUND.

    mDNS announcements of a wave collide; whatever a peer misses it learns from the
    hints of the peers it reached. ``list-peers`` then agrees everywhere.
    """
    party = await scenario(network_factory, tmp_path, MESH_PEERS)
    peers = await start_peers(party, list(party.network.hosts))
    last_start = max(peer.started_at for peer in peers)
    await asyncio.gather(*(knows(peer, MESH_PEERS - 1, MESH_BOUND) for peer in peers))
    took = time.monotonic() - last_start
    print(f"\n16-peer full mesh {took:.2f}s after the last start")
    assert took <= MESH_BOUND
    await assert_peer_lists(peers)


# --- S86: multicast blocked, one connect ------------------------------------------------


async def test_a_peer_without_multicast_learns_everyone_from_one_connect(
    network_factory: NetworkFactory, tmp_path: Path
) -> None:
    """S86: with multicast blocked, a newcomer joins 5 peers through one connect.

    The five find each other by mDNS; then the switch stops flooding multicast to
    every port, so the sixth can neither hear nor be heard. It connects to one of
    them and learns the four others from that handshake's hints, and they learn it
    from its dials.
    """
    party = await scenario(network_factory, tmp_path, 6)
    *crowd_hosts, loner_host = party.network.hosts
    crowd = await start_peers(party, crowd_hosts)
    await asyncio.gather(*(knows(peer, len(crowd) - 1, MESH_BOUND) for peer in crowd))
    await set_multicast_flood(
        party.network, {host.switch_port: False for host in party.network.hosts}
    )
    (loner,) = await start_peers(party, [loner_host])
    began = time.monotonic()
    await loner.process.request({"cmd": "connect", "addr": crowd[0].addr})
    everyone = [*crowd, loner]
    await asyncio.gather(*(knows(peer, len(crowd), JOIN_BOUND) for peer in everyone))
    print(f"\nloner knows all {len(crowd)} {time.monotonic() - began:.2f}s after its connect")
    await assert_peer_lists(everyone)


# --- S87: a lying hint ------------------------------------------------------------------


async def test_a_hint_lying_about_an_id_is_refused_and_never_moves_the_real_peer(
    network_factory: NetworkFactory, tmp_path: Path
) -> None:
    """S87: a liar puts bravo's id at charlie's address in its Hello, then again in pings.

    No multicast: the victim learns only from the liar's hints and connects. The
    lie is dialled expecting bravo, charlie's certificate refuses it, and bravo stays
    unknown. Once the victim connects to bravo, the lie repeated changes nothing:
    bravo stays at its own address and ``list-peers`` is exactly the truth.
    """
    party = await scenario(network_factory, tmp_path, 4)
    victim_host, bravo_host, charlie_host, liar_host = party.network.hosts
    await set_multicast_flood(
        party.network, {host.switch_port: False for host in party.network.hosts}
    )
    victim, bravo, charlie = await start_peers(party, [victim_host, bravo_host, charlie_host])
    argv = [
        sys.executable, str(LIAR), "--target", victim_host.address,
        "--port", str(victim.port), "--state-dir", str(tmp_path / "liar"),
        "--claim-id", bravo.peer_id, "--claim-host", charlie_host.address,
        "--claim-port", str(charlie.port),
    ]  # fmt: skip
    liar = await party.network.spawn(liar_host, argv, name="liar")
    liar_id = (await liar.wait_for("lied", LIAR_TIMEOUT))["peer_id"]
    refusal = f"a hint put peer {bravo.peer_id} at {charlie.addr}; the dial there failed"
    await wait_until(logged(victim, refusal), "the lying hint to be refused", timeout=LIAR_TIMEOUT)
    listed = await victim.process.request({"cmd": "list-peers"})
    assert [p["peer_id"] for p in listed["data"]["peers"]] == [liar_id]
    await victim.process.request({"cmd": "connect", "addr": bravo.addr})
    await victim.process.request({"cmd": "connect", "addr": charlie.addr})
    await liar.send({"again": True})
    await liar.wait_for("lied", LIAR_TIMEOUT)
    listed = await victim.process.request({"cmd": "list-peers"})
    addresses = {p["peer_id"]: p["addr"] for p in listed["data"]["peers"]}
    assert addresses[bravo.peer_id] == bravo.addr
    assert addresses[charlie.peer_id] == charlie.addr
    assert set(addresses) == {bravo.peer_id, charlie.peer_id, liar_id}
