"""A tiny JSON Lines mDNS probe: registers and browses ``_lanspread-probe._tcp.local.``.

The namespace harness test runs one probe per network namespace to prove that
multicast DNS crosses the bridge, and drives it with ``JsonlProcess`` exactly
the way the multi-host tests drive ``lanspread peer-cli``: one command per line
on stdin, one event per line on stdout, logs on stderr.

Usage: ``python mdns_probe.py [--interfaces all|default|ADDR[,ADDR...]]``

Commands (each may carry an ``id``, echoed in its ``reply`` or ``error``)::

    {"cmd": "register", "id": 1, "name": "alpha", "address": "10.213.0.1", "port": 4000}
    {"cmd": "browse", "id": 2}
    {"cmd": "ping", "id": 3}

Events: ``ready`` once zeroconf is up, ``reply`` / ``error`` per command,
``service-found`` (name, addresses, port) for every resolved service the browser
sees, ``service-removed`` (name). End of stdin unregisters, closes zeroconf and
exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from zeroconf import Error, InterfaceChoice, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

SERVICE_TYPE = "_lanspread-probe._tcp.local."
# How long one resolve of a found service may take; the bridge answers in
# milliseconds, so a second only matters when something is broken.
RESOLVE_TIMEOUT_MS = 3000
# A command line is a short JSON object typed by a test; anything longer is a bug.
MAX_COMMAND_BYTES = 64 * 1024

log = logging.getLogger("mdns_probe")


def emit(event: str, **fields: Any) -> None:
    """Write one event line to stdout and flush it at once."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def parse_interfaces(value: str) -> InterfaceChoice | list[str]:
    """Map the ``--interfaces`` option onto zeroconf's interface choice."""
    if value == "all":
        return InterfaceChoice.All
    if value == "default":
        return InterfaceChoice.Default
    return [address for address in value.split(",") if address]


def parse_command(line: bytes) -> dict[str, Any]:
    """One command line as a JSON object; anything else is a ValueError or TypeError."""
    command = json.loads(line)
    if not isinstance(command, dict):
        raise TypeError(f"a command is a JSON object, not {type(command).__name__}")
    return command


class Probe:
    """One zeroconf instance, its registrations and at most one browser."""

    def __init__(self, zeroconf: AsyncZeroconf) -> None:
        self._zeroconf = zeroconf
        self._browser: AsyncServiceBrowser | None = None
        self._registered: list[AsyncServiceInfo] = []
        self._resolves: set[asyncio.Task[None]] = set()
        self._announcements: list[asyncio.Future[Any]] = []

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one command and return the reply's fields."""
        name = command.get("cmd")
        if name == "ping":
            return {"pong": True}
        if name == "register":
            return await self._register(command)
        if name == "browse":
            return self._browse()
        raise ValueError(f"unknown command {name!r}")

    async def _register(self, command: dict[str, Any]) -> dict[str, Any]:
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{command['name']}.{SERVICE_TYPE}",
            parsed_addresses=[str(command["address"])],
            port=int(command["port"]),
            server=f"{command['name']}.local.",
        )
        # Each probe registers its own unique name, so the one-second name
        # conflict probing of RFC 6762 would only slow the test down.
        announcing = await self._zeroconf.async_register_service(info, cooperating_responders=True)
        self._announcements.append(asyncio.ensure_future(announcing))
        self._registered.append(info)
        return {"registered": info.name}

    def _browse(self) -> dict[str, Any]:
        if self._browser is None:
            self._browser = AsyncServiceBrowser(
                self._zeroconf.zeroconf, SERVICE_TYPE, handlers=[self._on_change]
            )
        return {"browsing": SERVICE_TYPE}

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            emit("service-removed", name=name)
            return
        if state_change is ServiceStateChange.Added:
            task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
            self._resolves.add(task)
            task.add_done_callback(self._resolves.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if await info.async_request(self._zeroconf.zeroconf, RESOLVE_TIMEOUT_MS):
            emit("service-found", name=name, addresses=info.parsed_addresses(), port=info.port)
        else:
            log.warning("could not resolve %s", name)

    async def close(self) -> None:
        """Stop browsing and resolving, unregister every service."""
        pending = [*self._resolves, *self._announcements]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        for info in self._registered:
            await self._zeroconf.async_unregister_service(info)


async def read_commands(probe: Probe) -> None:
    """Answer command lines from stdin until it closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_COMMAND_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command_id: Any = None
        try:
            command = parse_command(line)
            command_id = command.get("id")
            fields = await probe.handle(command)
        except (ValueError, KeyError, TypeError, OSError, Error) as exc:
            emit("error", id=command_id, message=f"{type(exc).__name__}: {exc}")
        else:
            emit("reply", id=command_id, **fields)


async def main() -> None:
    """Start zeroconf on the chosen interfaces and serve commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interfaces", default="all")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    zeroconf = AsyncZeroconf(interfaces=parse_interfaces(args.interfaces))
    probe = Probe(zeroconf)
    try:
        await zeroconf.zeroconf.async_wait_for_start()
        log.info("probe ready on interfaces %s", args.interfaces)
        emit("ready", pid=os.getpid(), interfaces=args.interfaces)
        await read_commands(probe)
    finally:
        await probe.close()
        await zeroconf.async_close()


if __name__ == "__main__":
    asyncio.run(main())
