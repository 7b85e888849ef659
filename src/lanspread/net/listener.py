"""A listener whose connections are tasks of one task group: accept, admit, serve, close.

Both servers of a peer, the TLS peer server (:mod:`lanspread.net.peer_server`)
and the plain-TCP data server (:mod:`lanspread.seeding.dataserver`), take
connections the same way, written once here:

* **Accept.** Each wake-up takes up to :data:`ACCEPT_BATCH` queued connections.
  A failed ``accept`` (usually out of file descriptors) is logged and retried
  after :data:`ACCEPT_RETRY_DELAY` instead of spinning; the connections already
  served go on meanwhile.
* **Admit before any read.** A new connection first takes a slot of the server's
  evicting :class:`~lanspread.core.admission.SlotTable`, keyed by its source
  address: over the per-address cap its socket is closed at once (logged at
  debug only, so a flood does not flood the log); with the table full the oldest
  connection of the biggest holder is cut to make room (:meth:`AcceptingServer._evict`).
  The connection gives its slot back (:meth:`AcceptingServer._end_admission`) once it
  proved itself or ended.
* **Serve.** Each connection is a task of the server's task group running
  :meth:`AcceptingServer._serve`; its socket is closed when the task ends, even a task
  cut before it ever ran.
* **Close.** :meth:`AcceptingServer.close` stops accepting, cancels every
  connection and returns once every task finished; it is idempotent, and a second
  caller waits for the first.

:class:`Closing` is the ``async with`` exit of everything closed this way (the
servers, a peer connection, the demo peer).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Any

from lanspread.core.admission import SlotTable
from lanspread.core.refusal import Refused

log = logging.getLogger(__name__)

# A failed accept (usually out of file descriptors) is retried after this pause
# instead of spinning; established connections keep being served meanwhile.
ACCEPT_RETRY_DELAY = 0.1
# Connections taken from the kernel's queue per wake-up of the accept loop. Under a
# flood of connects each one costs a future and a loop iteration otherwise; bounded
# so one wake-up never starves the connections already served (the listen backlog,
# LISTEN_BACKLOG, is the most there can be anyway).
ACCEPT_BATCH = 64


class Closing:
    """``async with`` closes the object on the way out; subclasses define :meth:`close`."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AcceptingServer(Closing):
    """The accept loop and lifecycle of a server; subclasses serve each connection."""

    def __init__(
        self, host: str, port: int, gate: SlotTable, *, clock: Callable[[], float], kind: str
    ) -> None:
        self._host = host
        self._requested_port = port
        self._gate = gate
        """Slots of the connections not yet proven, per source address (evicting)."""
        self._gate_tasks: dict[int, asyncio.Task[None]] = {}
        self._clock = clock
        self._kind = kind
        """What the server serves, for logs and task names (``peer``, ``data``)."""
        self._listener: socket.socket | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._port = 0

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    @property
    def host(self) -> str:
        return self._host

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def _listen(self, listener: socket.socket) -> None:
        """Start accepting on ``listener`` (bound and listening); the server owns it now."""
        self._listener = listener
        self._port = int(listener.getsockname()[1])
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._accept_task = self._task_group.create_task(
            self._accept_loop(listener), name=f"lanspread-{self._kind}-accept-{self._port}"
        )

    async def close(self) -> None:
        """Stop accepting, cut every connection and await every task. Idempotent."""
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            if self._listener is not None:
                await self._closed.wait()  # another caller is closing it
            return
        if self._accept_task is not None:
            self._accept_task.cancel()
        for task in list(self._connections):
            task.cancel()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            if self._listener is not None:
                self._listener.close()
            self._closed.set()
            log.info("%s server on port %d closed", self._kind, self._port)

    async def wait_closed(self) -> None:
        """Return once :meth:`close` has finished."""
        await self._closed.wait()

    async def _serve(self, sock: socket.socket, host: str, slot: int) -> None:
        """Serve one admitted connection; call :meth:`_end_admission` with ``slot`` when
        it proved itself (and in any case when it ends)."""
        raise NotImplementedError

    def _evict(self, task: asyncio.Task[None]) -> None:
        """Cut a connection not yet proven, to make room for a new one."""
        task.cancel()

    def _end_admission(self, slot: int) -> None:
        """Give back the admission slot (idempotent)."""
        self._gate.release(slot)
        self._gate_tasks.pop(slot, None)

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        task_group = self._task_group
        assert task_group is not None
        while True:
            try:
                sock, address = await loop.sock_accept(listener)
            except OSError as exc:
                log.warning("accepting a %s connection failed: %s", self._kind, exc)
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            self._take(task_group, sock, address)
            # The ones already queued are taken now, without a trip through the loop each.
            for _ in range(ACCEPT_BATCH - 1):
                try:
                    sock, address = listener.accept()
                except OSError:  # none waiting (or a failure the next await reports)
                    break
                sock.setblocking(False)
                self._take(task_group, sock, address)

    def _take(self, task_group: asyncio.TaskGroup, sock: socket.socket, address: Any) -> None:
        """Admit one accepted connection and start serving it, or close it at once."""
        host = str(address[0])
        outcome = self._gate.admit(host, self._clock())
        if isinstance(outcome, Refused):
            # Debug only: a flood would otherwise flood the log too.
            log.debug(
                "refusing a %s connection from %s: %s", self._kind, host, outcome.reason.value
            )
            sock.close()
            return
        if outcome.evicted is not None:
            evicted = self._gate_tasks.pop(outcome.evicted, None)
            if evicted is not None:
                log.debug("cutting a %s connection to make room for %s", self._kind, host)
                self._evict(evicted)
        task = task_group.create_task(
            self._serve(sock, host, outcome.slot),
            name=f"lanspread-{self._kind}-conn-{address}",
        )
        # A task cut (evicted) before it ever ran never reaches its own cleanup.
        task.add_done_callback(functools.partial(_close_socket, sock))
        self._gate_tasks[outcome.slot] = task
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)


def _close_socket(sock: socket.socket, _: asyncio.Task[None]) -> None:
    sock.close()  # a no-op when the connection already closed it


__all__ = ["ACCEPT_BATCH", "ACCEPT_RETRY_DELAY", "AcceptingServer", "Closing"]
