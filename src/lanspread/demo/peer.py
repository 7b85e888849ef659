"""The demo peer: a second, real peer on this machine that offers the demo games.

It is a :class:`PeerRuntime` in the app's own process and event loop, not a child
process: one Ctrl-C stops both peers in order, a crash of the app cannot leave an
orphan peer behind, it starts without a second interpreter (a few hundred ms
saved), and the demo games are small, so sharing the loop costs the UI nothing.

Lifecycle::

    async with DemoPeer(catalog) as demo:      # temp dirs, games written, peer
        ...                                    # started, every game hashed (servable)
        demo.watch(event)                      # feed it the user's runtime events
        await demo.keep_linked(current_runtime)  # dial it on every (re)start
    # the peer said goodbye and its temporary folder is gone

The peer listens on 127.0.0.1 only, runs no mDNS (it never appears on a real
LAN) and is found by the user's peer with a direct connect, which is dialled
again whenever the user's runtime (re)starts or loses the link.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from lanspread.core.catalog import Catalog
from lanspread.core.manifest import MIN_CHUNK_SIZE
from lanspread.demo.games import DEFAULT_PLAY_SECONDS, DEMO_GAMES, DemoGame
from lanspread.demo.roots import write_demo_library
from lanspread.errors import ConfigError, LanspreadError
from lanspread.net.listener import Closing
from lanspread.runtime.commands import Connect
from lanspread.runtime.events import Event, LocalReady, PeerLost
from lanspread.runtime.options import InstallPolicy, RuntimeOptions
from lanspread.runtime.runtime import PeerRuntime
from lanspread.seeding.manifests import HashState

log = logging.getLogger(__name__)

DEMO_PEER_NAME = "Demo peer"
DEMO_DIR_PREFIX = "lanspread-demo-"
# Hashing the demo library (about 11 MiB) takes milliseconds; a peer that is not
# ready after this long is broken, not slow, and the app says so.
DEMO_READY_TIMEOUT = 30.0
# The smallest chunk the manifests allow: a demo game spans several chunks, so its
# download reports progress in steps instead of jumping from 0 to 100%.
DEMO_CHUNK_SIZE = MIN_CHUNK_SIZE


class DemoPeer(Closing):
    def __init__(
        self,
        catalog: Catalog,
        *,
        games: tuple[DemoGame, ...] = DEMO_GAMES,
        play_seconds: int = DEFAULT_PLAY_SECONDS,
        parent_dir: Path | None = None,
    ) -> None:
        missing = [game.id for game in games if game.id not in catalog]
        if missing:
            raise ConfigError(f"the catalog has no entry for the demo game {missing[0]!r}")
        self._catalog = catalog
        self._games = games
        self._play_seconds = play_seconds
        self._parent_dir = parent_dir
        self._base: Path | None = None
        self._runtime: PeerRuntime | None = None
        self._dial = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> DemoPeer:
        await self.start()
        return self

    async def close(self) -> None:
        """The same as :meth:`stop` (what ``async with`` calls on the way out)."""
        await self.stop()

    async def start(self) -> None:
        """Write the demo library to a new temporary folder and start serving it."""
        if self._base is not None:
            raise ConfigError("the demo peer is already started")
        self._base = await asyncio.to_thread(self._make_base)
        try:
            games = self._base / "games"
            await asyncio.to_thread(write_demo_library, games, self._games, self._play_seconds)
            self._runtime = PeerRuntime(self._options(games, self._base / "state"))
            await self._runtime.start()
            await self._wait_servable(self._runtime)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "demo peer %s serving %d demo games on %s",
            self._runtime.peer_id,
            len(self._games),
            self._runtime.listen_addr,
        )

    def _make_base(self) -> Path:
        try:
            return Path(tempfile.mkdtemp(prefix=DEMO_DIR_PREFIX, dir=self._parent_dir))
        except OSError as exc:
            raise ConfigError(
                f"cannot create a folder for the demo peer: {exc.strerror or exc}"
            ) from exc

    def _options(self, game_dir: Path, state_dir: Path) -> RuntimeOptions:
        return RuntimeOptions(
            game_dir=game_dir,
            state_dir=state_dir,
            catalog=self._catalog,
            name=DEMO_PEER_NAME,
            listen_host="127.0.0.1",
            listen_port=0,
            mdns=False,
            install_policy=InstallPolicy.MANUAL,
            chunk_size=DEMO_CHUNK_SIZE,
        )

    async def _wait_servable(self, runtime: PeerRuntime) -> None:
        """Return once every demo game is hashed: a peer serves only hashed games."""
        try:
            async with asyncio.timeout(DEMO_READY_TIMEOUT):
                await runtime.hashing.wait_hashed(len(self._games))
        except TimeoutError as exc:
            raise ConfigError(
                f"the demo peer could not prepare its games within {DEMO_READY_TIMEOUT:.0f} s"
            ) from exc
        for game in self._games:
            if await runtime.hashing.state(game.id) is not HashState.READY:
                reason = runtime.hashing.failure(game.id) or "not hashed"
                raise ConfigError(f"the demo peer cannot serve {game.id}: {reason}")

    async def stop(self) -> None:
        """Say goodbye, stop the peer and delete its temporary folder. Idempotent."""
        runtime, self._runtime = self._runtime, None
        try:
            if runtime is not None:
                runtime.shutdown()
                await runtime.wait_stopped()
        finally:
            base, self._base = self._base, None
            if base is not None:
                await asyncio.to_thread(_remove_tree, base)

    # -- facts -------------------------------------------------------------------

    @property
    def runtime(self) -> PeerRuntime:
        if self._runtime is None:
            raise ConfigError("the demo peer is not running")
        return self._runtime

    @property
    def listen_addr(self) -> str:
        return self.runtime.listen_addr

    @property
    def peer_id(self) -> str:
        return self.runtime.peer_id

    @property
    def base_dir(self) -> Path | None:
        """The temporary folder holding the demo peer's games and state, while it runs."""
        return self._base

    # -- linking the user's peer -------------------------------------------------

    @property
    def link_wanted(self) -> bool:
        """:meth:`watch` saw a reason to dial and :meth:`keep_linked` has not dialled yet."""
        return self._dial.is_set()

    def watch(self, event: Event) -> None:
        """Look at one event of the user's runtime: dial again when it (re)started or lost us."""
        match event:
            case LocalReady():
                self._dial.set()
            case PeerLost(peer_id=peer_id, reason=reason):
                if self._runtime is not None and peer_id == self.peer_id and reason != "goodbye":
                    self._dial.set()
            case _:
                pass

    async def keep_linked(self, current_runtime: Callable[[], PeerRuntime]) -> None:
        """Dial the demo peer from ``current_runtime()`` whenever :meth:`watch` asks; forever."""
        while True:
            await self._dial.wait()
            self._dial.clear()
            await self.link(current_runtime)

    async def link(self, current_runtime: Callable[[], PeerRuntime]) -> bool:
        """One direct connect from the user's peer to this one; False (logged) if it failed."""
        try:
            await current_runtime().execute(Connect(addr=self.listen_addr))
        except LanspreadError as exc:
            log.warning("could not connect to the demo peer: %s", exc)
            return False
        log.info("connected to the demo peer at %s", self.listen_addr)
        return True


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except OSError as exc:
        log.warning("could not delete the demo peer's folder %s: %s", path, exc.strerror or exc)
