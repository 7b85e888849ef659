"""The data client: pipelined chunk fetches, hashed and written as they arrive.

Theory of operation
-------------------
The wire format is in :mod:`lanspread.net.datawire`; the server is
:mod:`lanspread.seeding.dataserver`.

:meth:`DataConnection.open` dials, sends the hello and waits for
admission, all raced against a cancellation event and a timeout.
:meth:`DataConnection.fetch` requests chunks keeping up to ``depth`` requests
in flight. Each answer is received with ``recv_into`` into one of
:data:`RECEIVE_BUFFERS` reusable buffers of :data:`RECEIVE_BUFFER_SIZE` bytes by
the connection's receive thread, while its digest thread feeds the previous
buffer to a :class:`~lanspread.files.hashing.ChunkHasher` and writes it with
a positional write at its offset (the event loop only schedules; on two cores
the socket copy overlaps the hash and the write, which bench/throughput.py
showed is worth ~1.3x). Memory is two buffers per connection whatever the
chunk or game size. It yields one :class:`ChunkResult` per task, in task
order: written bytes are *not* fsynced; the caller fsyncs and journals.

::

    ChunkOutcome   meaning                                   next
    OK             every byte arrived, digest matches        connection usable
    HASH_MISMATCH  every byte arrived, digest differs        connection usable
    REFUSED        the server answered a refusal status      connection usable
    SHORT_READ     the connection ended inside this chunk    later tasks: CONNECTION_LOST
    CONNECTION_LOST  reset, timeout, violation, or an        every later task too
                   earlier chunk already lost the connection
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import enum
import functools
import logging
import os
import socket
import struct
import sys
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from lanspread.core.planning import ChunkTask
from lanspread.errors import (
    ConnectionClosed,
    LanspreadError,
    ProtocolError,
    StorageError,
    TransportError,
)
from lanspread.files.hashing import ChunkHasher
from lanspread.net.dataplane import (
    IDLE_TIMEOUT,
    AdmissionRefused,
    DataPlaneCancelled,
    recv_exactly,
    tune_data_socket,
)
from lanspread.net.datawire import (
    HEADER_SIZE,
    ChunkRequest,
    DataStatus,
    decode_header,
    encode_hello,
    encode_request,
)
from lanspread.net.sendfile import pwrite_all

log = logging.getLogger(__name__)

# Dialing a LAN peer and being admitted takes milliseconds; an unreachable host
# would otherwise hang for the kernel's SYN retries (minutes).
CONNECT_TIMEOUT = 10.0


# The client's one receive buffer: hashing and writing 1 MiB per call keeps the
# syscall and call overhead small next to the copy, and memory stays bounded.
RECEIVE_BUFFER_SIZE = 1024 * 1024


# Receive buffers per connection: one being filled from the socket while the other
# is hashed and written; more would only help if hashing or writing were slower than
# the network, and then the socket buffer already absorbs the bursts.
RECEIVE_BUFFERS = 2


# Requests the client keeps queued on one connection. The server answers in
# order; two queued requests already hide the request round trip, four also cover
# a slow gate check (bench/throughput.py measures depths 1 to 8).
DEFAULT_PIPELINE_DEPTH = 4


# More queued requests buy nothing and only delay noticing a failed connection.
MAX_PIPELINE_DEPTH = 32


_T = TypeVar("_T")


class ChunkOutcome(enum.Enum):
    OK = "ok"
    HASH_MISMATCH = "hash-mismatch"
    REFUSED = "refused"
    SHORT_READ = "short-read"
    CONNECTION_LOST = "connection-lost"


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What became of one task; see the outcome table in the module docstring."""

    task: ChunkTask
    outcome: ChunkOutcome
    status: DataStatus | None = None
    """The server's refusal status (for ``REFUSED`` only)."""
    detail: str = ""
    """What went wrong, for logs and terminal failure reasons."""

    @property
    def ok(self) -> bool:
        return self.outcome is ChunkOutcome.OK


class ChunkSink(Protocol):
    """Where chunks are written: an open, writable descriptor per task's file."""

    def fd_for(self, task: ChunkTask) -> int:
        """The descriptor to write ``task``'s bytes into at ``task.offset``."""
        ...


class _Lost(LanspreadError):
    """The connection can no longer carry answers."""


class DataConnection:
    """An admitted data connection. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        sock: socket.socket,
        description: str,
        *,
        depth: int,
        idle_timeout: float,
        buffer_size: int,
    ) -> None:
        _check_depth(depth)
        self._sock = sock
        self._description = description
        self._depth = depth
        self._buffers = [bytearray(buffer_size) for _ in range(RECEIVE_BUFFERS)]
        # One thread receives, the other hashes and writes what was received before:
        # on two cores the copy out of the socket overlaps the hash and the write.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"data-recv-{description}"
        )
        self._digester = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"data-digest-{description}"
        )
        self._lost: str | None = None
        self._busy = False
        self.bytes_received = 0
        """Chunk bytes received and written (verified or not)."""
        _make_blocking_with_idle_timeout(sock, idle_timeout)

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        token: bytes,
        *,
        cancel: asyncio.Event | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        depth: int = DEFAULT_PIPELINE_DEPTH,
        idle_timeout: float = IDLE_TIMEOUT,
        buffer_size: int = RECEIVE_BUFFER_SIZE,
    ) -> DataConnection:
        """Dial ``host:port``, present ``token`` and wait for admission.

        Raises :class:`TransportError` when the server cannot be reached or does
        not answer within ``connect_timeout``, :class:`AdmissionRefused` when it
        refuses the ticket, :class:`ProtocolError` for a garbled answer and
        :class:`DataPlaneCancelled` when ``cancel`` is set first.
        """
        description = f"{host}:{port}"
        # The caller's bugs are said before anything is dialled.
        _check_depth(depth)
        encode_hello(token)
        try:
            async with asyncio.timeout(connect_timeout):
                sock = await _until_cancelled(_connect_and_admit(host, port, token), cancel)
        except TimeoutError as exc:
            raise TransportError(
                f"data server {description} did not admit us within {connect_timeout} s"
            ) from exc
        return cls(
            sock, description, depth=depth, idle_timeout=idle_timeout, buffer_size=buffer_size
        )

    @property
    def is_usable(self) -> bool:
        return self._lost is None

    async def close(self) -> None:
        """Close the socket and stop the worker thread. Idempotent."""
        self._mark_lost("closed by this peer")
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._executor.shutdown(wait=True)
        self._digester.shutdown(wait=True)

    async def __aenter__(self) -> DataConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def fetch(
        self, tasks: Iterable[ChunkTask], sink: ChunkSink
    ) -> AsyncGenerator[ChunkResult, None]:
        """Fetch every task in order; yield one :class:`ChunkResult` per task.

        Raises :class:`StorageError` when writing to the sink fails (the connection
        is closed: the answer stream was left mid-chunk). Leaving the iteration
        early also closes the connection, since answers are still on their way;
        iterate inside ``contextlib.aclosing(connection.fetch(...))`` so that
        happens at once.
        """
        if self._busy:
            raise RuntimeError("one fetch at a time per data connection")
        self._busy = True
        queue = iter(tasks)
        in_flight: collections.deque[tuple[ChunkTask, int]] = collections.deque()
        finished = False
        try:
            while True:
                if self._lost is not None:
                    for task, _ in in_flight:
                        yield self._lost_result(task)
                    for task in queue:
                        yield self._lost_result(task)
                    finished = True
                    return
                outgoing = self._fill_window(queue, in_flight, sink)
                if not in_flight:
                    finished = True
                    return
                task, fd = in_flight[0]
                result = await self._in_thread(self._exchange, outgoing, task, fd)
                in_flight.popleft()
                yield result
        finally:
            self._busy = False
            if not finished:
                await self.close()

    def _fill_window(
        self,
        queue: Iterator[ChunkTask],
        in_flight: collections.deque[tuple[ChunkTask, int]],
        sink: ChunkSink,
    ) -> bytes:
        frames: list[bytes] = []
        while len(in_flight) < self._depth:
            task = next(queue, None)
            if task is None:
                break
            in_flight.append((task, sink.fd_for(task)))
            frames.append(encode_request(ChunkRequest(task.path, task.offset, task.length)))
        return b"".join(frames)

    def _lost_result(self, task: ChunkTask) -> ChunkResult:
        return ChunkResult(task, ChunkOutcome.CONNECTION_LOST, detail=self._lost or "")

    def _mark_lost(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function`` on the connection's thread; cancellation cuts the socket."""
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(function, *args)
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._mark_lost("cancelled")
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            await asyncio.wait([future])  # the cut socket ends the thread's work at once
            raise

    # -- worker thread ------------------------------------------------------------

    def _exchange(self, outgoing: bytes, task: ChunkTask, fd: int) -> ChunkResult:
        """Send the queued requests, then receive the answer for ``task`` (blocking)."""
        try:
            if outgoing:
                self._sock.sendall(outgoing)
            header = decode_header(self._recv_small(HEADER_SIZE))
        except (_Lost, ProtocolError, OSError) as exc:
            self._mark_lost(f"connection to {self._description} lost: {_why(exc)}")
            return self._lost_result(task)
        if header.status is not DataStatus.OK:
            return ChunkResult(
                task, ChunkOutcome.REFUSED, header.status, f"refused: {header.status.name}"
            )
        if header.length != task.length:
            self._mark_lost(
                f"{self._description} announced {header.length} bytes for a "
                f"{task.length}-byte chunk"
            )
            return self._lost_result(task)
        return self._receive_chunk(task, fd)

    def _receive_chunk(self, task: ChunkTask, fd: int) -> ChunkResult:
        """Receive ``task``'s bytes; the digest thread hashes and writes them meanwhile."""
        hasher = ChunkHasher(task)
        pending: collections.deque[concurrent.futures.Future[None]] = collections.deque()
        position = task.offset
        end = task.offset + task.length
        turn = 0
        while position < end:
            if len(pending) == len(self._buffers):
                pending.popleft().result()  # the buffer about to be reused is free again
            buffer = self._buffers[turn % len(self._buffers)]
            turn += 1
            view = memoryview(buffer)[: min(end - position, len(buffer))]
            try:
                got = self._fill(view)
            except OSError as exc:
                self._drain(pending)
                self._mark_lost(f"connection to {self._description} lost: {_why(exc)}")
                return ChunkResult(task, ChunkOutcome.SHORT_READ, detail=self._lost or "")
            if got:
                pending.append(
                    self._digester.submit(self._digest, hasher, fd, view[:got], position, task)
                )
                position += got
            if got < len(view):
                self._drain(pending)
                self._mark_lost(f"{self._description} closed the connection inside a chunk")
                return ChunkResult(
                    task,
                    ChunkOutcome.SHORT_READ,
                    detail=f"{hasher.received} of {task.length} bytes arrived",
                )
        self._drain(pending)
        if not hasher.matches():
            return ChunkResult(task, ChunkOutcome.HASH_MISMATCH, detail="BLAKE3 digest differs")
        return ChunkResult(task, ChunkOutcome.OK)

    @staticmethod
    def _drain(pending: collections.deque[concurrent.futures.Future[None]]) -> None:
        """Wait for every queued hash-and-write; the first failure is raised."""
        while pending:
            pending.popleft().result()

    def _digest(
        self, hasher: ChunkHasher, fd: int, data: memoryview, position: int, task: ChunkTask
    ) -> None:
        """On the digest thread: hash and write one received piece, in arrival order."""
        hasher.update(data)
        self._write(fd, data, position, task)
        self.bytes_received += len(data)

    def _fill(self, view: memoryview) -> int:
        """Receive into ``view`` until it is full or the stream ends; the bytes received."""
        got = 0
        while got < len(view):
            count = self._sock.recv_into(view[got:], 0, _WAIT_ALL)
            if not count:
                break
            got += count
        return got

    def _recv_small(self, size: int) -> bytes:
        data = bytearray(size)
        got = self._fill(memoryview(data))
        if got < size:
            raise _Lost("the server closed the connection" if not got else "truncated header")
        return bytes(data)

    def _write(self, fd: int, data: memoryview, position: int, task: ChunkTask) -> None:
        try:
            pwrite_all(fd, data, position)
        except OSError as exc:
            self._mark_lost("a local write failed")
            raise StorageError(
                f"cannot write {task.path} at offset {position}: {exc.strerror or exc}"
            ) from exc


# Ask the kernel to return only once the whole buffer is filled (or the stream ends,
# or the idle timeout passes): one wake-up per buffer instead of one per burst of
# segments, which on a busy two-core machine is CPU the hash and the write need.
_WAIT_ALL = getattr(socket, "MSG_WAITALL", 0)


def _make_blocking_with_idle_timeout(sock: socket.socket, seconds: float) -> None:
    """A blocking socket whose sends and receives fail after ``seconds`` without progress.

    Python's own socket timeout polls before every call and makes the socket
    non-blocking, which defeats ``MSG_WAITALL``; the kernel's SO_RCVTIMEO and
    SO_SNDTIMEO keep the socket blocking (a timeout surfaces as an ``OSError``).
    """
    sock.settimeout(None)
    if sys.platform == "win32":
        value = struct.pack("=I", max(1, int(seconds * 1000)))  # a DWORD of milliseconds
    else:
        whole = int(seconds)
        value = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))  # a timeval
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        sock.setsockopt(socket.SOL_SOCKET, option, value)


def _check_depth(depth: int) -> None:
    if not 1 <= depth <= MAX_PIPELINE_DEPTH:
        raise ValueError(f"depth must be 1 to {MAX_PIPELINE_DEPTH}, got {depth}")


def _why(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, BlockingIOError)):
        # SO_RCVTIMEO expiring surfaces as EAGAIN on a blocking socket.
        return "no data within the idle timeout"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def _until_cancelled(work: Coroutine[Any, Any, _T], cancel: asyncio.Event | None) -> _T:
    """Await ``work``; cancel it and raise :class:`DataPlaneCancelled` once ``cancel`` is set."""
    if cancel is None:
        return await work
    if cancel.is_set():
        work.close()
        raise DataPlaneCancelled("cancelled before the data connection was opened")
    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(work)
            watcher = group.create_task(cancel.wait())
            task.add_done_callback(lambda _: watcher.cancel())
            watcher.add_done_callback(lambda _: task.cancel())
    except BaseExceptionGroup as failed:
        # Only ``work`` can fail (the watcher only waits): re-raise its own error.
        raise failed.exceptions[0] from None
    if task.cancelled():
        raise DataPlaneCancelled("cancelled while the data connection was being opened")
    return task.result()


async def _connect_and_admit(host: str, port: int, token: bytes) -> socket.socket:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TransportError(f"cannot resolve data server {host}:{port}: {exc}") from exc
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            tune_data_socket(sock, nodelay=True)
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, encode_hello(token))
            header = decode_header(await recv_exactly(sock, HEADER_SIZE))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except ConnectionClosed as exc:
            sock.close()
            raise TransportError(f"data server {host}:{port} closed without answering") from exc
        except BaseException:
            sock.close()
            raise
        if header.status is not DataStatus.OK:
            sock.close()
            raise AdmissionRefused(header.status)
        return sock
    # asyncio's connect errors carry "Connect call failed (...)" as strerror; the
    # errno's own text ("Connection refused") is what a user understands.
    reason = (os.strerror(last.errno) if last.errno else str(last)) if last else "no address"
    raise TransportError(f"cannot connect to data server {host}:{port}: {reason}") from last
