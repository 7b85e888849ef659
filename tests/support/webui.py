"""A real runtime behind a real web UI on loopback, for server and browser tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lanspread.errors import StorageError
from lanspread.runtime.options import RuntimeOptions
from lanspread.runtime.runtime import PeerRuntime
from lanspread.storage.settings import SettingsStore
from lanspread.web.api import WebUI
from lanspread.web.viewmodel import RuntimeState
from tests.support.peers import loopback_options
from tests.support.waiting import DEFAULT_TIMEOUT, wait_until


@dataclass
class UiHarness:
    ui: WebUI
    options: RuntimeOptions
    opened: list[Path] = field(default_factory=list)
    """Folders the UI asked the file manager to show."""

    @property
    def runtime(self) -> PeerRuntime:
        return self.ui.host.runtime

    async def wait_running(self, other_than: PeerRuntime | None = None) -> PeerRuntime:
        def running() -> bool:
            state = self.ui.host.state.state
            if state is not RuntimeState.RUNNING:
                return False
            return other_than is None or self.ui.host.runtime is not other_than

        await wait_until(running, "the UI's runtime to run")
        return self.ui.host.runtime


@contextlib.asynccontextmanager
async def running_ui(
    base: Path,
    name: str,
    *,
    setup_needed: bool = False,
    serve: bool = False,
    display_name: str | None = None,
    open_fails: str | None = None,
    **overrides: Any,
) -> AsyncIterator[UiHarness]:
    """A :class:`WebUI` with a started runtime.

    ``serve=True`` binds the real server on 127.0.0.1 (for a browser); otherwise the
    caller mounts ``harness.ui.app`` in aiohttp's test server and binds the guard.
    ``name`` names the peer's folders; ``display_name`` is what players see.
    """
    options = replace(loopback_options(base, name), **overrides)
    if display_name is not None:
        options = replace(options, name=display_name)
    opened: list[Path] = []

    async def opener(folder: Path) -> None:
        if open_fails is not None:
            raise StorageError(open_fails)
        opened.append(folder)

    ui = WebUI(options, SettingsStore(options.state_dir), setup_needed=setup_needed, opener=opener)
    harness = UiHarness(ui=ui, options=options, opened=opened)
    ready = asyncio.Event()

    async def on_ready(url: str) -> None:
        ready.set()

    task: asyncio.Task[Any]
    if serve:
        task = asyncio.create_task(ui.serve(on_ready=on_ready), name=f"ui:{name}")
    else:
        task = asyncio.create_task(ui.run_services(), name=f"ui:{name}")
    try:
        if serve:
            await asyncio.wait_for(ready.wait(), DEFAULT_TIMEOUT)
        await harness.wait_running()
        yield harness
    finally:
        ui.stop()
        await asyncio.wait_for(task, DEFAULT_TIMEOUT)
