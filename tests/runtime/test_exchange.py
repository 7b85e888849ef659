"""Peer exchange between real runtimes on loopback: one connect joins the mesh, lies fail.

mDNS is off in these runtimes: every peer beyond the first is learned from hints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.waiting import wait_until

from lanspread.net.wire import PeerHint
from lanspread.runtime.addresses import parse_addr
from lanspread.runtime.commands import Connect
from lanspread.runtime.runtime import PeerRuntime

Start = Callable[..., Any]
WAIT = 10.0
"""Upper bound for any wait here; reaching it means the test failed. The waits poll the
peer tables, which fill from dials the exchange starts on its own."""


def knows(runtime: PeerRuntime, *others: PeerRuntime) -> bool:
    return {other.peer_id for other in others} <= runtime.network.known_peers()


async def test_one_connect_is_enough_to_learn_everyone(start_runtime: Start) -> None:
    """Four peers that each connect only to the hub end up in a full mesh."""
    hub = await start_runtime("hub")
    spokes = [await start_runtime(f"spoke{n}") for n in range(3)]
    for spoke in spokes:
        await spoke.execute(Connect(addr=hub.listen_addr))
    everyone = [hub, *spokes]

    def meshed() -> bool:
        return all(knows(r, *(o for o in everyone if o is not r)) for r in everyone)

    await wait_until(meshed, "a full mesh", timeout=WAIT)
    assert all(runtime.network.peer_count == 3 for runtime in everyone)


async def test_a_hint_that_lies_about_an_id_is_refused_and_the_real_address_wins(
    start_runtime: Start,
) -> None:
    """A hint putting bravo at mallory's address fails its proof; the true hint then gets in."""
    alpha = await start_runtime("alpha")
    bravo = await start_runtime("bravo")
    mallory = await start_runtime("mallory")
    await alpha.execute(Connect(addr=mallory.listen_addr))
    host, port = parse_addr(mallory.listen_addr)
    lie = PeerHint(peer_id=bravo.peer_id, host=host, port=port)
    alpha.network.exchange.heard(mallory.peer_id, [lie])

    def failed() -> bool:
        sighting = alpha.network.exchange.sightings.get(bravo.peer_id)
        return sighting is not None and sighting.failures >= 1

    await wait_until(failed, "the lying hint to fail its dial", timeout=WAIT)
    assert bravo.peer_id not in alpha.network.known_peers()
    real_host, real_port = parse_addr(bravo.listen_addr)
    truth = PeerHint(peer_id=bravo.peer_id, host=real_host, port=real_port)
    alpha.network.exchange.heard(mallory.peer_id, [truth])
    await wait_until(lambda: knows(alpha, bravo), "bravo proven at its own address", timeout=WAIT)
    record = alpha.network._db.get(bravo.peer_id)
    assert record is not None
    assert record.address == (real_host, real_port)


async def test_a_hint_never_moves_a_proven_peer(start_runtime: Start) -> None:
    """Once bravo is proven, a hint naming it elsewhere is not even dialled."""
    alpha = await start_runtime("alpha")
    bravo = await start_runtime("bravo")
    mallory = await start_runtime("mallory")
    await alpha.execute(Connect(addr=bravo.listen_addr))
    await alpha.execute(Connect(addr=mallory.listen_addr))
    link = await alpha.network.link(bravo.peer_id)
    host, port = parse_addr(mallory.listen_addr)
    alpha.network.exchange.heard(
        mallory.peer_id, [PeerHint(peer_id=bravo.peer_id, host=host, port=port)]
    )
    assert bravo.peer_id not in alpha.network.exchange.sightings
    record = alpha.network._db.get(bravo.peer_id)
    assert record is not None
    assert record.address == parse_addr(bravo.listen_addr)
    assert await alpha.network.link(bravo.peer_id) is link
