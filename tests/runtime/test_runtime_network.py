"""Two and three real runtimes on loopback: discovery, library sync, liveness, goodbye."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.events import RuntimeEvents
from tests.support.peers import sideload

from lanspread.errors import ConfigError, PeerRefused, SelfConnect
from lanspread.net.wire import GetGame, ManifestResponse
from lanspread.runtime.commands import Connect, ListGames, ListPeers, SetGameDir, Status
from lanspread.runtime.events import (
    Event,
    LocalLibraryChanged,
    LocalReady,
    PeerDiscovered,
    PeerLost,
    RemoteGamesChanged,
)
from lanspread.runtime.runtime import GameList, PeerList, PeerRuntime

Start = Callable[..., Any]
WAIT = 10.0


def has_remote_game(peer_id: str, game_id: str) -> Callable[[Event], bool]:
    return lambda e: (
        isinstance(e, RemoteGamesChanged)
        and e.peer_id == peer_id
        and any(g.id == game_id for g in e.games)
    )


async def test_direct_connect_gives_both_sides_each_others_games(
    start_runtime: Start, tmp_path: Any
) -> None:
    """A connect by address records each peer on the other side with its library."""
    sideload(tmp_path / "alpha" / "games", "quake3")
    sideload(tmp_path / "bravo" / "games", "cs16")
    alpha = await start_runtime("alpha")
    bravo = await start_runtime("bravo")
    watch_alpha, watch_bravo = RuntimeEvents(alpha), RuntimeEvents(bravo)
    view = await alpha.execute(Connect(addr=bravo.listen_addr))
    assert view is not None
    assert view.peer_id == bravo.peer_id
    await watch_alpha.first(Event, has_remote_game(bravo.peer_id, "cs16"))
    await watch_bravo.first(Event, has_remote_game(alpha.peer_id, "quake3"))
    peers = await bravo.execute(ListPeers())
    assert isinstance(peers, PeerList)
    assert [(p.peer_id, p.name, p.games) for p in peers.peers] == [
        (alpha.peer_id, "alpha", ("quake3",))
    ]
    games = await bravo.execute(ListGames())
    assert isinstance(games, GameList)
    quake = next(g for g in games.games if g.id == "quake3")
    assert (quake.peer_count, quake.latest_version, quake.downloaded) == (1, "1.0", False)


async def test_mdns_discovery_is_symmetric_and_fast(start_runtime: Start, tmp_path: Any) -> None:
    """Two peers with mDNS on loopback find each other, both ways, within 3 seconds."""
    sideload(tmp_path / "alpha" / "games", "quake3")
    sideload(tmp_path / "bravo" / "games", "cs16")
    began = time.monotonic()
    alpha, bravo = await asyncio.gather(
        start_runtime("alpha", mdns=True), start_runtime("bravo", mdns=True)
    )
    watch_alpha, watch_bravo = RuntimeEvents(alpha), RuntimeEvents(bravo)
    await asyncio.gather(
        watch_alpha.first(Event, has_remote_game(bravo.peer_id, "cs16"), within=3.0),
        watch_bravo.first(Event, has_remote_game(alpha.peer_id, "quake3"), within=3.0),
    )
    print(f"symmetric discovery took {time.monotonic() - began:.2f}s")


async def test_local_change_reaches_peer_as_delta(start_runtime: Start, tmp_path: Any) -> None:
    """A game copied in on one peer appears on the other without a new handshake."""
    alpha = await start_runtime("alpha")
    bravo = await start_runtime("bravo")
    watch_bravo = RuntimeEvents(bravo)
    await alpha.execute(Connect(addr=bravo.listen_addr))
    await watch_bravo.first(Event, lambda e: isinstance(e, PeerDiscovered))
    sideload(alpha.game_dir, "aoe2", "2.0")
    event = await watch_bravo.first(Event, has_remote_game(alpha.peer_id, "aoe2"))
    assert isinstance(event, RemoteGamesChanged)
    assert [g.version for g in event.games if g.id == "aoe2"] == ["2.0"]


async def test_self_connect_is_refused(start_runtime: Start) -> None:
    """Connecting to our own listener is refused and records nothing."""
    alpha = await start_runtime("alpha")
    with pytest.raises(SelfConnect, match="self-connect refused"):
        await alpha.execute(Connect(addr=alpha.listen_addr))
    assert alpha.status().peers == 0


async def test_connect_to_nowhere_fails_cleanly(start_runtime: Start) -> None:
    """A connect to a port with no listener fails with a transport error, the peer runs on."""
    alpha = await start_runtime("alpha")
    with pytest.raises(Exception, match=r"127\.0\.0\.1:1\b") as caught:
        await alpha.execute(Connect(addr="127.0.0.1:1"))
    assert type(caught.value).__name__ == "TransportError"
    with pytest.raises(ConfigError, match="not a HOST:PORT address"):
        await alpha.execute(Connect(addr="no-port-here"))
    assert alpha.status().peers == 0


async def test_goodbye_drops_the_peer_at_once(start_runtime: Start) -> None:
    """A clean shutdown is seen as PeerLost(goodbye) on the other side right away."""
    alpha = await start_runtime("alpha", peer_timeout=60.0)
    bravo = await start_runtime("bravo", peer_timeout=60.0)
    watch_alpha = RuntimeEvents(alpha)
    await alpha.execute(Connect(addr=bravo.listen_addr))
    began = time.monotonic()
    bravo.shutdown()
    await bravo.wait_stopped()
    lost = await watch_alpha.first(Event, lambda e: isinstance(e, PeerLost), within=3.0)
    assert lost == PeerLost(peer_id=bravo.peer_id, reason="goodbye")
    assert time.monotonic() - began < 3.0
    assert alpha.status().peers == 0


async def test_a_peer_that_vanishes_without_goodbye_is_dropped_at_once(
    start_runtime: Start,
) -> None:
    """A peer whose links close without a goodbye (a killed process) is dropped as
    disconnected as soon as its link to us closes, long before the liveness timeout."""
    alpha = await start_runtime("alpha", peer_timeout=60.0)
    bravo = await start_runtime("bravo", goodbye_timeout=0.0)
    watch_alpha = RuntimeEvents(alpha)
    await alpha.execute(Connect(addr=bravo.listen_addr))
    began = time.monotonic()
    bravo.shutdown()
    await bravo.wait_stopped()
    lost = await watch_alpha.first(Event, lambda e: isinstance(e, PeerLost), within=5.0)
    assert lost == PeerLost(peer_id=bravo.peer_id, reason="disconnected")
    assert time.monotonic() - began < 5.0
    assert alpha.status().peers == 0


async def test_get_game_lists_payload_and_hides_local(start_runtime: Start, tmp_path: Any) -> None:
    """GetGame answers the hashed manifest of the payload, never local/ or reserved files."""
    root = sideload(tmp_path / "bravo" / "games", "quake3")
    (root / "local").mkdir()
    (root / "local" / "saves.dat").write_bytes(b"secret")
    (root / ".lanspread.json").write_text("{}")
    alpha = await start_runtime("alpha")
    bravo = await start_runtime("bravo")
    await alpha.execute(Connect(addr=bravo.listen_addr))
    link = await alpha.network.link(bravo.peer_id)
    await bravo.hashing.wait_hashed(1)
    files = await link.request(GetGame(game_id="quake3"))
    assert isinstance(files, ManifestResponse)
    assert [(f.path, f.is_sentinel) for f in files.manifest.files] == [
        ("data.eti", False),
        ("version.ini", True),
    ]
    with pytest.raises(PeerRefused, match="GameNotFound"):
        await link.request(GetGame(game_id="cs16"))


async def test_runtime_reports_status_and_ready(start_runtime: Start, tmp_path: Any) -> None:
    """Status tells identity, listener, game dir and counts; the id survives a restart."""
    sideload(tmp_path / "alpha" / "games", "quake3")
    alpha = await start_runtime("alpha")
    status = await alpha.execute(Status())
    assert status == alpha.status()
    assert (status.games, status.peers, status.name) == (1, 0, "alpha")
    first_id = alpha.peer_id
    alpha.shutdown()
    await alpha.wait_stopped()
    again = await start_runtime("alpha")
    assert again.peer_id == first_id


async def test_set_game_dir_command(start_runtime: Start, tmp_path: Any) -> None:
    """set-game-dir switches folders and the new library is published."""
    alpha = await start_runtime("alpha")
    watch = RuntimeEvents(alpha)
    other = tmp_path / "elsewhere"
    sideload(other, "openttd")
    reply = await alpha.execute(SetGameDir(path=str(other)))
    assert reply is not None
    assert alpha.game_dir == other.resolve()
    await watch.first(
        Event,
        lambda e: isinstance(e, LocalLibraryChanged) and [g.id for g in e.games] == ["openttd"],
    )


async def test_port_in_use_fails_start_with_a_clear_error(
    start_runtime: Start, tmp_path: Any
) -> None:
    """Starting on a port another peer holds raises ConfigError naming the address."""
    alpha = await start_runtime("alpha")
    port = int(alpha.listen_addr.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
        await start_runtime("bravo", listen_port=port)


async def test_local_ready_is_the_first_event(tmp_path: Any) -> None:
    """A subscriber that joins before start sees LocalReady with the bound address."""
    from tests.support.peers import loopback_options

    runtime = PeerRuntime(loopback_options(tmp_path, "alpha"))
    events = runtime.subscribe()
    await runtime.start()
    try:
        first = await asyncio.wait_for(anext(aiter(events)), WAIT)
        assert isinstance(first, LocalReady)
        assert first.listen_addr == runtime.listen_addr
        assert first.peer_id == runtime.peer_id
    finally:
        runtime.shutdown()
        await runtime.wait_stopped()


def test_mdns_runs_where_the_peer_listens(tmp_path: Any) -> None:
    """A peer bound to one address announces only there; a wildcard means every interface."""
    from dataclasses import replace

    from tests.support.peers import loopback_options

    from lanspread.runtime.addresses import mdns_interfaces

    options = loopback_options(tmp_path, "alpha", mdns_interfaces=None)
    assert mdns_interfaces(options) == ("127.0.0.1",)
    assert mdns_interfaces(replace(options, listen_host="0.0.0.0")) is None
    assert mdns_interfaces(replace(options, listen_host="::")) is None
    chosen = replace(options, listen_host="0.0.0.0", mdns_interfaces=("10.0.0.5",))
    assert mdns_interfaces(chosen) == ("10.0.0.5",)
