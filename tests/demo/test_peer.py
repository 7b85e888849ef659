"""The demo peer: a real second peer on loopback that serves the demo games, then vanishes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.peers import loopback_options
from tests.support.waiting import wait_until

from lanspread.demo import DEMO_GAMES, DEMO_PEER_NAME, DemoPeer, with_demo_games
from lanspread.demo import peer as demo_peer_module
from lanspread.errors import ConfigError, UnknownGame
from lanspread.runtime.commands import Download
from lanspread.runtime.events import InstallFinished, LocalReady, PeerLost
from lanspread.runtime.runtime import PeerRuntime
from lanspread.seeding.manifests import HashingService, HashState
from lanspread.storage.catalog_file import load_bundled_catalog

CATALOG = with_demo_games(load_bundled_catalog(), play_seconds=1)


@contextlib.asynccontextmanager
async def user_peer(base: Path, name: str = "user") -> AsyncIterator[PeerRuntime]:
    runtime = PeerRuntime(loopback_options(base, name, catalog=CATALOG))
    await runtime.start()
    try:
        yield runtime
    finally:
        runtime.shutdown()
        await runtime.wait_stopped()


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def demo_ids() -> set[str]:
    return {game.id for game in DEMO_GAMES}


async def test_demo_peer_serves_every_game_from_a_temp_folder_it_removes(tmp_path: Path) -> None:
    """Started, it listens on loopback without mDNS, has hashed every game; stopped, it is gone."""
    demo = DemoPeer(CATALOG, play_seconds=1, parent_dir=tmp_path)
    async with demo:
        runtime = demo.runtime
        base = demo.base_dir
        assert base is not None
        assert base.parent == tmp_path
        assert base.name.startswith("lanspread-demo-")
        assert runtime.name == DEMO_PEER_NAME
        assert demo.listen_addr.startswith("127.0.0.1:")
        assert runtime.local.game_dir == (base / "games").resolve()
        assert {game.id for game in runtime.local.snapshot.games} == demo_ids()
        for game_id in demo_ids():
            assert await runtime.hashing.state(game_id) is HashState.READY
    assert demo.base_dir is None
    assert leftovers(tmp_path) == []
    with pytest.raises(ConfigError, match="the demo peer is not running"):
        _ = demo.listen_addr


async def test_user_peer_downloads_and_installs_a_demo_game(tmp_path: Path) -> None:
    """A direct link to the demo peer is enough to download and install a demo game."""
    async with (
        DemoPeer(CATALOG, play_seconds=1, parent_dir=tmp_path) as demo,
        user_peer(tmp_path) as user,
    ):
        events = user.subscribe()
        assert await demo.link(lambda: user)
        await wait_until(
            lambda: all(view.peer_count == 1 for view in user.games() if view.id in demo_ids()),
            "the user to see every demo game",
        )
        await user.execute(Download(game="demo-pixelkart"))
        async with asyncio.timeout(10):
            async for event in events:
                if isinstance(event, InstallFinished) and event.game == "demo-pixelkart":
                    break
        local = user.local.game_dir / "demo-pixelkart" / "local"
        assert (local / "play.sh").stat().st_mode & 0o111
        assert (local / "tracks" / "tiny-loop.trk").stat().st_size == 1536 * 1024


async def test_watch_wants_a_link_only_for_a_new_runtime_or_a_lost_demo_peer(
    tmp_path: Path,
) -> None:
    """LocalReady and a non-goodbye PeerLost of the demo peer ask for a dial; nothing else."""
    async with DemoPeer(CATALOG, play_seconds=1, parent_dir=tmp_path) as demo:
        assert not demo.link_wanted
        demo.watch(PeerLost(peer_id="someone-else", reason="timeout"))
        demo.watch(PeerLost(peer_id=demo.peer_id, reason="goodbye"))
        demo.watch(InstallFinished(game="demo-pixelkart"))
        assert not demo.link_wanted
        demo.watch(PeerLost(peer_id=demo.peer_id, reason="timeout"))
        assert demo.link_wanted


async def test_keep_linked_dials_each_new_user_runtime(tmp_path: Path) -> None:
    """After a restart of the user's runtime, its LocalReady gets it linked again."""
    async with DemoPeer(CATALOG, play_seconds=1, parent_dir=tmp_path) as demo:
        current: list[PeerRuntime] = []
        async with asyncio.TaskGroup() as group:
            linker = group.create_task(demo.keep_linked(lambda: current[-1]))
            for name in ("first", "second"):
                async with user_peer(tmp_path, name) as user:
                    current.append(user)
                    demo.watch(LocalReady(user.peer_id, user.listen_addr, "", 0))
                    await wait_until(
                        lambda: demo.peer_id in current[-1].network.known_peers(),
                        f"the {name} runtime to be linked",
                    )
                    assert not demo.link_wanted
            linker.cancel()


async def test_a_failed_link_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the user's runtime is not there, link() says why and returns False."""

    def no_runtime() -> PeerRuntime:
        raise UnknownGame("no runtime right now")

    async with DemoPeer(CATALOG, play_seconds=1, parent_dir=tmp_path) as demo:
        with caplog.at_level(logging.WARNING, logger="lanspread.demo.peer"):
            assert await demo.link(no_runtime) is False
    assert "could not connect to the demo peer: no runtime right now" in caplog.text


async def test_a_catalog_without_demo_entries_is_refused() -> None:
    """The demo peer needs its games in the catalog both peers share."""
    with pytest.raises(ConfigError) as failure:
        DemoPeer(load_bundled_catalog())
    assert str(failure.value) == "the catalog has no entry for the demo game 'demo-starfield'"


async def test_starting_twice_is_refused(tmp_path: Path) -> None:
    """A started demo peer cannot be started again; the first one keeps running."""
    async with DemoPeer(CATALOG, play_seconds=1, parent_dir=tmp_path) as demo:
        with pytest.raises(ConfigError, match="the demo peer is already started"):
            await demo.start()
        assert demo.runtime.local.snapshot.games


async def test_no_temp_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A parent folder that cannot hold the demo's folder gives a ConfigError, nothing left."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    demo = DemoPeer(CATALOG, parent_dir=blocker)
    with pytest.raises(ConfigError) as failure:
        await demo.start()
    assert str(failure.value) == "cannot create a folder for the demo peer: Not a directory"
    assert demo.base_dir is None


async def test_games_not_ready_in_time_stop_the_peer_and_clean_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If hashing does not finish within the limit, start fails and the folder is removed."""
    monkeypatch.setattr(demo_peer_module, "DEMO_READY_TIMEOUT", 0)
    demo = DemoPeer(CATALOG, parent_dir=tmp_path)
    with pytest.raises(ConfigError) as failure:
        await demo.start()
    assert str(failure.value) == "the demo peer could not prepare its games within 0 s"
    assert leftovers(tmp_path) == []


async def test_an_unservable_game_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo game the peer could not hash fails the start with its id; the folder goes."""
    real_state = HashingService.state

    async def state(self: HashingService, game_id: str) -> HashState:
        if game_id == "demo-towersiege":
            return HashState.PENDING
        return await real_state(self, game_id)

    monkeypatch.setattr(HashingService, "state", state)
    demo = DemoPeer(CATALOG, parent_dir=tmp_path)
    with pytest.raises(ConfigError) as failure:
        await demo.start()
    assert str(failure.value) == "the demo peer cannot serve demo-towersiege: not hashed"
    assert leftovers(tmp_path) == []
