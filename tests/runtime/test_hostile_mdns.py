"""Spoofed and flooding mDNS records against real runtimes on loopback.

mDNS is not signed. These tests play the attacker by handing the network the
records a spoofer would advertise, and check that a proven peer never moves by
a record alone, that a real move is still followed, and that a flood of fake
records neither grows memory nor keeps an honest newcomer out.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from tests.support.events import RuntimeEvents
from tests.support.peers import sideload
from tests.support.waiting import wait_until

from lanspread.core.sightings import MAX_SIGHTINGS
from lanspread.net.discovery import DiscoveredPeer
from lanspread.runtime.addresses import parse_addr
from lanspread.runtime.commands import Connect
from lanspread.runtime.events import Event
from lanspread.runtime.runtime import PeerRuntime

Start = Callable[..., Any]
WAIT = 10.0
"""Upper bound for any wait here; reaching it means the test failed. The waits poll: the
peer table notes a failed dial or a move without publishing an event."""


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def address_of(runtime: PeerRuntime, peer_id: str) -> tuple[str, int] | None:
    record = runtime.network._db.get(peer_id)
    return None if record is None else record.address


async def test_a_spoofed_record_never_moves_a_proven_peer(
    start_runtime: Start, tmp_path: Any
) -> None:
    """A record putting a proven peer elsewhere is dialled, fails the proof and changes nothing."""
    sideload(tmp_path / "bravo" / "games", "quake3")
    alpha = await start_runtime("alpha")
    bravo = await start_runtime("bravo")
    mallory = await start_runtime("mallory")
    await alpha.execute(Connect(addr=bravo.listen_addr))
    proven = address_of(alpha, bravo.peer_id)
    assert proven == parse_addr(bravo.listen_addr)
    link = await alpha.network.link(bravo.peer_id)
    for host, port in (parse_addr(mallory.listen_addr), ("127.0.0.1", closed_port())):
        alpha.network.exchange.on_advertised(
            DiscoveredPeer(peer_id=bravo.peer_id, name="bravo", host=host, port=port)
        )
        sighting = alpha.network.exchange.sightings.get(bravo.peer_id)
        assert sighting is not None
        await wait_until(
            lambda: _failed(alpha, bravo), "the spoofed address to fail its dial", timeout=WAIT
        )
        assert address_of(alpha, bravo.peer_id) == proven
        assert await alpha.network.link(bravo.peer_id) is link
        manifest = await alpha.network.fetch_manifest(bravo.peer_id, "quake3")
        assert manifest.game_id == "quake3"
        alpha.network.exchange.on_advertisement_gone(bravo.peer_id)


def _failed(alpha: PeerRuntime, bravo: PeerRuntime) -> bool:
    sighting = alpha.network.exchange.sightings.get(bravo.peer_id)
    return sighting is not None and sighting.failures >= 1


async def test_a_real_move_is_followed_once_the_handshake_proves_it(
    start_runtime: Start,
) -> None:
    """When the advertised address really answers with the peer's key, the peer moves there."""
    alpha = await start_runtime("alpha")
    bravo = await start_runtime("bravo")
    await alpha.execute(Connect(addr=bravo.listen_addr))
    stale = ("127.0.0.1", closed_port())
    assert alpha.network._db.update_address(bravo.peer_id, stale)
    host, port = parse_addr(bravo.listen_addr)
    alpha.network.exchange.on_advertised(
        DiscoveredPeer(peer_id=bravo.peer_id, name="bravo", host=host, port=port)
    )
    await wait_until(
        lambda: address_of(alpha, bravo.peer_id) == (host, port), "bravo to move", timeout=WAIT
    )
    assert bravo.peer_id not in alpha.network.exchange.sightings


async def test_a_flood_of_fake_records_is_bounded_and_a_newcomer_still_gets_in(
    start_runtime: Start,
) -> None:
    """600 fake records fill at most MAX_SIGHTINGS; an honest newcomer after them is dialled."""
    alpha = await start_runtime("alpha")
    charlie = await start_runtime("charlie")
    watch = RuntimeEvents(alpha)
    dead = closed_port()
    for number in range(600):
        alpha.network.exchange.on_advertised(
            DiscoveredPeer(peer_id=f"{number:064x}", name="fake", host="127.0.0.1", port=dead)
        )
    assert alpha.network.sightings <= MAX_SIGHTINGS
    host, port = parse_addr(charlie.listen_addr)
    alpha.network.exchange.on_advertised(
        DiscoveredPeer(peer_id=charlie.peer_id, name="charlie", host=host, port=port)
    )
    await watch.first(Event, lambda _: charlie.peer_id in alpha.network.known_peers(), within=5.0)
    assert alpha.network.known_peers() == frozenset({charlie.peer_id})
    assert alpha.network.sightings <= MAX_SIGHTINGS
