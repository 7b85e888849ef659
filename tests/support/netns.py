"""Hosts in Linux network namespaces on one bridge, for multi-host tests with real peers.

Theory of operation
-------------------
``Network(hosts)`` builds one *switch* namespace holding a bridge ``br0`` and
one namespace per host. Each host gets a veth pair: ``eth0`` in the host,
``v<N>`` in the switch, attached to the bridge. Nothing is created in the root
namespace, so interface names only need to be unique inside one namespace
(``eth0``, ``v1``, ``br0`` always fit the 15-character limit), and only the
namespace names carry the per-run prefix ``lsn-<token>-`` (``lsn-3fa09c-sw``,
``lsn-3fa09c-h1``). Every run uses the same addresses, 10.213.0.N/24 for host
N: the runs are separate networks.

Each host has ``lo`` up, ``eth0`` up with ``multicast on`` and a route for
224.0.0.0/4 via ``eth0``; the bridge has multicast snooping and STP off, so
mDNS floods to every port at once and a port forwards as soon as it is up.

Setup is two ``ip -batch`` calls plus one per host (run concurrently),
teardown is one ``/proc`` scan and one ``ip -batch`` call.

mDNS inside a namespace (the peer's discovery module needs the same knowledge)
-----------------------------------------------------------------------------
Measured with python-zeroconf 0.154 in these namespaces (``lo`` + ``eth0``):

* ``InterfaceChoice.All`` works: zeroconf joins 224.0.0.251 on every IPv4
  address, loopback included, and answers on ``eth0``.
* ``interfaces=["10.213.0.N"]`` (the veth address) works too.
* ``InterfaceChoice.Default`` works *only* because of the 224.0.0.0/4 route:
  without a multicast or default route it fails at start-up with
  ``OSError: [Errno 19] No such device`` from ``IP_ADD_MEMBERSHIP``. A LAN
  machine without a default route (an offline LAN party!) is the same case,
  so the peer should use ``InterfaceChoice.All`` (the harness test does).
* ``async_register_service`` with the default name-conflict probing takes
  1.2-1.7 s before the first announcement; with ``cooperating_responders=True``
  (the probe's choice) a browser resolves the service within ~50 ms.

Teardown and crashes
--------------------
``close()`` (or leaving ``async with``, also on an exception) SIGKILLs every
process spawned in the run and any other process still inside its namespaces,
waits until they are gone, then deletes the namespaces, which destroys the
veths and the bridge with them. A run that dies without ``close()`` is cleaned
up twice over: a tiny ``sh`` reaper per run, in its own session, waits for the
end of a pipe that only the test process holds and, when the pipe ends without
the word ``done``, deletes that run's namespaces; and ``sweep_stale()``
deletes the namespaces of every run whose owner is gone. Ownership is an
``flock`` on ``/run/lanspread-netns/<token>.lock``, which the kernel releases
when the owner dies, so a concurrent live run (another developer's test
session) is never swept and a reused pid cannot fake an owner.

Sockets from the test process
-----------------------------
``Network.socket(host, ...)`` opens a socket inside a host's namespace from
the test process itself (``setns`` around ``socket()``; the socket stays in
that namespace). ``ping`` uses it for ICMP echo, so reachability checks need
neither ``iputils-ping`` nor a child process. An open socket keeps its
namespace alive after ``close()``, so close every socket you open.
"""

# Harness calls take their own timeout (ASYNC109): failure messages name it.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import json
import os
import random
import re
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from lanspread.platform import fileio
from tests.support.jsonl_process import JsonlProcess
from tests.support.platforms import kill_hard, try_lock_exclusive
from tests.support.waiting import wait_until, wait_until_blocking

if TYPE_CHECKING:
    from typing import Self

NAMESPACE_DIR = Path("/run/netns")
LOCK_DIR = Path("/run/lanspread-netns")
NAME_PREFIX = "lsn-"
SWITCH = "sw"
BRIDGE = "br0"
HOST_INTERFACE = "eth0"
SUBNET = "10.213.0"
PREFIX_LENGTH = 24
# Multicast loss is emulated in slots this long (see multicast_loss): short against
# mDNS's probes and announcements (250 ms to 1 s apart), long enough that one ``ip``
# call per slot costs the machine little.
LOSS_SLOT = 0.1
# Where every mDNS packet goes, multicast or unicast (RFC 6762).
MDNS_PORT = 5353
# Host N gets SUBNET.N; .0 and .255 are the network and broadcast addresses.
MAX_HOSTS = 254
# 24 random bits: two live runs colliding is a one-in-sixteen-million event,
# and the O_EXCL lock file turns even that into a clear error.
RUN_TOKEN_BYTES = 3
OWNED_NAMESPACE = re.compile(r"^lsn-(?P<token>[0-9a-f]{6})-(?P<host>[a-z][a-z0-9]{0,11})$")
HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
LOCK_FILE = re.compile(r"^(?P<token>[0-9a-f]{6})\.lock$")
COMMAND_TIMEOUT = 10.0
# How much of a failed command's stdout and stderr a failure message quotes.
OUTPUT_TAIL_CHARS = 2000
TEARDOWN_TIMEOUT = 5.0
# One ICMP echo reply is 20 bytes of IP header plus 8 of ICMP plus our payload.
ICMP_RECEIVE_BYTES = 2048
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMP_PAYLOAD = b"lanspread-netns"
_CLONE_NEWNET = 0x40000000

# The reaper: the pipe on stdin ends when the test process exits or dies; only
# a clean close() writes "done" first. $1 is the lock file, the rest namespaces.
_REAPER_SCRIPT = """
lock=$1; shift
read -r word
[ "$word" = done ] && exit 0
for ns in "$@"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; done
for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done
rm -f "$lock"
"""


class NetnsError(RuntimeError):
    """An ``ip`` command of the harness itself failed (setup, fault injection, teardown)."""


@dataclass(frozen=True)
class Host:
    """One machine of the test network."""

    name: str
    index: int
    namespace: str
    address: str

    @property
    def switch_port(self) -> str:
        """The switch-side veth, the host's port on the bridge."""
        return f"v{self.index}"


@dataclass(frozen=True)
class CommandResult:
    """What a command run inside a namespace printed and returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Network:
    """N hosts on one bridge; use ``async with Network(5) as net:``.

    ``hosts`` is a count (hosts ``h1``..``hN``) or a sequence of names
    (lowercase letters and digits, at most 12 characters, not ``sw``).
    Stderr files of spawned processes go to ``log_dir`` (a temporary
    directory removed on close when not given). ``reaper=False`` leaves a
    killed run's namespaces for ``sweep_stale()``, which is how the harness
    test simulates a crash.
    """

    def __init__(
        self,
        hosts: int | Sequence[str] = 2,
        *,
        log_dir: Path | None = None,
        reaper: bool = True,
    ) -> None:
        names = [f"h{n}" for n in range(1, hosts + 1)] if isinstance(hosts, int) else list(hosts)
        _check_host_names(names)
        self.token = secrets.token_hex(RUN_TOKEN_BYTES)
        self.prefix = f"{NAME_PREFIX}{self.token}-"
        self.switch_namespace = f"{self.prefix}{SWITCH}"
        self.hosts = tuple(
            Host(name, index, f"{self.prefix}{name}", f"{SUBNET}.{index}")
            for index, name in enumerate(names, start=1)
        )
        self._log_dir = log_dir
        self._owns_log_dir = log_dir is None
        self._use_reaper = reaper
        self._reaper: asyncio.subprocess.Process | None = None
        self._lock_fd: int | None = None
        self._processes: list[JsonlProcess] = []
        self._started = False
        self._closed = False

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of this run, the switch first."""
        return (self.switch_namespace, *(host.namespace for host in self.hosts))

    @property
    def log_dir(self) -> Path:
        """Where spawned processes' stderr files are written."""
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix=self.prefix))
        return self._log_dir

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in this network: {[h.name for h in self.hosts]}")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Create the namespaces, the bridge, the veths and the addresses."""
        if self._started:
            raise NetnsError(f"network {self.prefix} was already started")
        self._started = True
        self._lock_fd = _create_lock(self.token)
        try:
            if self._use_reaper:
                self._reaper = await _start_reaper(_lock_path(self.token), self.namespaces)
            await _ip_batch([], _namespace_lines("add", self.namespaces))
            await _ip_batch(["-n", self.switch_namespace], _switch_lines(self.hosts))
            await asyncio.gather(
                *(_ip_batch(["-n", host.namespace], _host_lines(host)) for host in self.hosts)
            )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Kill every process of the run and delete its namespaces; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            for process in self._processes:
                await process.kill()
            await _remove_namespaces(self.namespaces)
        finally:
            # Release the lock even if removal failed: the reaper (then told to
            # sweep rather than "done") and sweep_stale() remove what is left.
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            if self._reaper is not None:
                await _stop_reaper(self._reaper, done=not self.namespaces_left())
            if self._owns_log_dir and self._log_dir is not None:
                shutil.rmtree(self._log_dir, ignore_errors=True)
        _lock_path(self.token).unlink(missing_ok=True)

    def namespaces_left(self) -> list[str]:
        """Namespaces of this run that still exist."""
        existing = set(list_namespaces())
        return [name for name in self.namespaces if name in existing]

    def exec_argv(self, host: Host, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside ``host``'s namespace."""
        return ["ip", "netns", "exec", host.namespace, *argv]

    async def run(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        timeout: float = COMMAND_TIMEOUT,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` to completion inside ``host``; ``check`` fails on a non-zero status."""
        process = await asyncio.create_subprocess_exec(
            *self.exec_argv(host, argv),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout):
                out, err = await process.communicate(stdin)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(
                f"{list(argv)} in {host.name} did not finish within {timeout}s"
            ) from None
        assert process.returncode is not None
        result = CommandResult(tuple(argv), process.returncode, out.decode(), err.decode())
        if check and result.returncode != 0:
            raise AssertionError(
                f"{list(argv)} in {host.name} exited with {result.returncode}\n"
                f"stdout: {result.stdout[-OUTPUT_TAIL_CHARS:]}\n"
                f"stderr: {result.stderr[-OUTPUT_TAIL_CHARS:]}"
            )
        return result

    async def spawn(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> JsonlProcess:
        """Start a JSON Lines process inside ``host``; the network kills it on close."""
        label = name or f"{host.name}-{Path(argv[0]).name}"
        stderr_path = self.log_dir / f"{label}-{len(self._processes) + 1}.stderr"
        process = await JsonlProcess.start(
            self.exec_argv(host, argv), name=label, stderr_path=stderr_path, env=env, cwd=cwd
        )
        self._processes.append(process)
        return process

    def socket(
        self,
        host: Host,
        family: socket.AddressFamily = socket.AF_INET,
        kind: socket.SocketKind = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> socket.socket:
        """A socket inside ``host``'s namespace, owned by the test process."""
        return open_socket_in(host.namespace, family, kind, proto)

    async def ping(
        self, source: Host, targets: Iterable[str], *, timeout: float = 1.0
    ) -> frozenset[str]:
        """ICMP-echo every target address from ``source``; return the ones that answered."""
        wanted = frozenset(targets)
        ident = secrets.randbits(16)
        loop = asyncio.get_running_loop()
        answered: set[str] = set()
        with self.socket(source, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
            sock.setblocking(False)
            for sequence, address in enumerate(sorted(wanted)):
                try:
                    await loop.sock_sendto(sock, _echo_request(ident, sequence), (address, 0))
                except OSError:
                    continue  # no route or no carrier right now: it will not answer
            try:
                async with asyncio.timeout(timeout):
                    while answered != wanted:
                        data, (sender, _) = await loop.sock_recvfrom(sock, ICMP_RECEIVE_BYTES)
                        if sender in wanted and _is_echo_reply(data, ident):
                            answered.add(sender)
            except TimeoutError:
                pass
        return frozenset(answered)

    async def cut_link(self, host: Host) -> None:
        """Unplug ``host``: its switch port goes down (``eth0`` loses carrier)."""
        await _ip(["-n", self.switch_namespace, "link", "set", host.switch_port, "down"])

    async def restore_link(self, host: Host) -> None:
        """Plug ``host`` back in; return once its bridge port forwards again.

        Like a real host, one that tried to reach a neighbour during the cut
        keeps an unresolved ARP entry and resolves it again on the kernel's
        retry timer, so its first packets may wait up to a second.
        """
        await _ip(["-n", self.switch_namespace, "link", "set", host.switch_port, "up"])

        async def forwarding() -> bool:
            return await self._port_state(host) == "forwarding"

        # Polled: the bridge moves the port to forwarding from a kernel work item.
        await wait_until(
            forwarding,
            f"port {host.switch_port} of {host.name} to forward",
            timeout=TEARDOWN_TIMEOUT,
        )

    async def freeze(self, process: JsonlProcess) -> None:
        """SIGSTOP ``process``; returns once it is stopped."""
        await process.freeze()

    async def thaw(self, process: JsonlProcess) -> None:
        """SIGCONT ``process``; returns once it runs again."""
        await process.thaw()

    async def kill(self, process: JsonlProcess) -> int:
        """SIGKILL ``process`` and reap it; returns its exit status (``-9``)."""
        return await process.kill()

    async def _port_state(self, host: Host) -> str:
        out = await _ip(["-n", self.switch_namespace, "-j", "-d", "link", "show", host.switch_port])
        details: list[dict[str, Any]] = json.loads(out)
        return str(details[0]["linkinfo"]["info_slave_data"]["state"])


class NetworkFactory:
    """Builds networks for one test and closes every one of them afterwards."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._networks: list[Network] = []

    async def __call__(self, hosts: int | Sequence[str] = 2) -> Network:
        """A started network of ``hosts``; it is closed when the test ends."""
        network = Network(hosts, log_dir=self._log_dir / f"network{len(self._networks) + 1}")
        self._networks.append(network)
        await network.start()
        return network

    async def close_all(self) -> None:
        """Close every network built, newest first."""
        for network in reversed(self._networks):
            await network.close()


def sweep_stale() -> list[str]:
    """Delete the namespaces of every run whose owner has died; return their names.

    Only names this harness creates (``lsn-<6 hex>-<host>``) are touched, and
    only those of runs whose lock nobody holds, so live runs are safe.
    """
    by_token: dict[str, list[str]] = {}
    for name in list_namespaces():
        match = OWNED_NAMESPACE.match(name)
        if match:
            by_token.setdefault(match["token"], []).append(name)
    if LOCK_DIR.is_dir():
        for entry in LOCK_DIR.iterdir():
            match = LOCK_FILE.match(entry.name)
            if match:
                by_token.setdefault(match["token"], [])
    removed: list[str] = []
    for token, names in sorted(by_token.items()):
        if _sweep_run(token, names):
            removed.extend(names)
    return sorted(removed)


def list_namespaces() -> list[str]:
    """Names of every named network namespace on the machine (``ip netns list``)."""
    if not NAMESPACE_DIR.is_dir():
        return []
    return sorted(entry.name for entry in NAMESPACE_DIR.iterdir())


def namespace_identity(namespace: str) -> tuple[int, int] | None:
    """The (device, inode) that names a namespace, or None if it has no name any more."""
    try:
        stat = (NAMESPACE_DIR / namespace).stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def pids_in(identities: Collection[tuple[int, int]]) -> list[int]:
    """Live processes whose network namespace is one of ``identities`` (zombies have none)."""
    pids: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "ns", "net").stat()
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in identities:
            pids.append(int(entry.name))
    return pids


def open_socket_in(namespace: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """Create a socket inside ``namespace`` from this thread, then switch back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | fileio.O_CLOEXEC)
    try:
        target = os.open(NAMESPACE_DIR / namespace, os.O_RDONLY | fileio.O_CLOEXEC)
        try:
            _setns(target)
            try:
                return socket.socket(family, kind, proto)
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def open_proc_net_in(namespace: str, name: str) -> BinaryIO:
    """Open ``/proc/thread-self/net/<name>`` (``dev``, ``tcp``...) as seen inside ``namespace``.

    The file keeps showing that namespace for as long as it is open: seek to 0 and
    read again for fresh figures, without entering the namespace again.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | fileio.O_CLOEXEC)
    try:
        target = os.open(NAMESPACE_DIR / namespace, os.O_RDONLY | fileio.O_CLOEXEC)
        try:
            _setns(target)
            try:
                return open(f"/proc/thread-self/net/{name}", "rb", buffering=0)
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc().setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def _check_host_names(names: Sequence[str]) -> None:
    if not 1 <= len(names) <= MAX_HOSTS:
        raise ValueError(f"a network has 1 to {MAX_HOSTS} hosts, not {len(names)}")
    for name in names:
        if not HOST_NAME.match(name) or name == SWITCH:
            raise ValueError(
                f"host name {name!r} must be 1-12 lowercase letters or digits, "
                f"start with a letter and not be {SWITCH!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"host names must be unique: {list(names)}")


def _namespace_lines(verb: str, namespaces: Iterable[str]) -> list[str]:
    return [f"netns {verb} {namespace}" for namespace in namespaces]


def _switch_lines(hosts: Iterable[Host]) -> list[str]:
    lines = [
        "link set lo up",
        f"link add {BRIDGE} type bridge mcast_snooping 0 stp_state 0",
        f"link set {BRIDGE} up",
    ]
    for host in hosts:
        peer = f"peer name {HOST_INTERFACE} netns {host.namespace}"
        lines.append(f"link add {host.switch_port} type veth {peer}")
        lines.append(f"link set {host.switch_port} master {BRIDGE} up")
    return lines


def _host_lines(host: Host) -> list[str]:
    return [
        "link set lo up",
        f"addr add {host.address}/{PREFIX_LENGTH} dev {HOST_INTERFACE}",
        f"link set {HOST_INTERFACE} multicast on up",
        f"route add 224.0.0.0/4 dev {HOST_INTERFACE}",
    ]


def multicast_flood_lines(ports: Mapping[str, bool]) -> list[str]:
    """``ip -batch`` lines setting each bridge port's ``mcast_flood`` (False: the switch
    no longer floods multicast, mDNS included, out of that port)."""
    return [
        f"link set dev {port} type bridge_slave mcast_flood {'on' if flood else 'off'}"
        for port, flood in ports.items()
    ]


async def set_multicast_flood(network: Network, ports: Mapping[str, bool]) -> None:
    await _ip_batch(["-n", network.switch_namespace], multicast_flood_lines(ports))


def mdns_drop_lines(port: str) -> list[str]:
    """``tc -batch`` lines that make bridge port ``port`` drop every mDNS packet it would
    send its host (UDP to port 5353, multicast or unicast) and pass everything else.

    The kernel here has neither ``prio`` nor a drop action, so an ``htb`` root sends
    everything to a full-speed class and a ``u32`` filter sends mDNS to a class whose
    queue holds nothing (``pfifo limit 0``).
    """
    return [
        f"qdisc add dev {port} root handle 1: htb default 1",
        f"class add dev {port} parent 1: classid 1:1 htb rate 10gbit",
        f"class add dev {port} parent 1: classid 1:2 htb rate 1mbit",
        f"qdisc add dev {port} parent 1:2 pfifo limit 0",
        f"filter add dev {port} parent 1: protocol ip u32"
        f" match ip protocol 17 0xff match ip dport {MDNS_PORT} 0xffff flowid 1:2",
    ]


async def deafen_to_mdns(network: Network, host: Host) -> None:
    """``host`` hears no mDNS at all from now on; what it sends still goes out.

    Unlike :func:`set_multicast_flood` this also drops the unicast answers a responder
    sends straight to a query that asks for one (zeroconf's first query does).
    """
    lines = "".join(f"{line}\n" for line in mdns_drop_lines(host.switch_port))
    await _ip(["netns", "exec", network.switch_namespace, "tc", "-batch", "-"], lines)


@contextlib.asynccontextmanager
async def multicast_loss(network: Network, share: float, seed: int = 0) -> AsyncIterator[None]:
    """While inside, each host misses about ``share`` of the multicast sent to it.

    This kernel has neither ``netem`` nor ``prio`` nor tc's ``drop`` action, so loss is
    emulated on the bridge: every :data:`LOSS_SLOT` each port's ``mcast_flood`` is
    turned off with probability ``share``, independently per port. Losses come in
    bursts of whole slots, which is harsher than independent drops.
    """
    chooser = random.Random(seed)
    ports = [host.switch_port for host in network.hosts]

    async def flip() -> None:
        while True:
            await set_multicast_flood(network, {port: chooser.random() >= share for port in ports})
            await asyncio.sleep(LOSS_SLOT)

    task = asyncio.create_task(flip())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await set_multicast_flood(network, dict.fromkeys(ports, True))


async def _ip(args: Sequence[str], stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        "ip",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise NetnsError(f"ip {' '.join(args)} hung for {COMMAND_TIMEOUT}s") from None
    if process.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed ({process.returncode}): {err.decode()}")
    return out.decode()


async def _ip_batch(options: Sequence[str], lines: Sequence[str]) -> None:
    await _ip([*options, "-batch", "-"], "".join(f"{line}\n" for line in lines))


async def _remove_namespaces(namespaces: Iterable[str]) -> None:
    names, identities = _existing(namespaces)
    _kill_all(pids_in(identities))
    await wait_until(
        lambda: not pids_in(identities), f"no process left in {names}", timeout=TEARDOWN_TIMEOUT
    )
    if names:
        await _ip_batch([], _namespace_lines("del", names))


def _remove_namespaces_now(namespaces: Iterable[str]) -> None:
    names, identities = _existing(namespaces)
    _kill_all(pids_in(identities))
    wait_until_blocking(
        lambda: not pids_in(identities),
        lambda: f"the processes in {names} to end after SIGKILL: {pids_in(identities)}",
        timeout=TEARDOWN_TIMEOUT,
    )
    if names:
        batch = "".join(f"{line}\n" for line in _namespace_lines("del", names))
        result = subprocess.run(
            ["ip", "-batch", "-"],
            input=batch,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise NetnsError(f"deleting {names} failed: {result.stderr}")


def _existing(namespaces: Iterable[str]) -> tuple[list[str], set[tuple[int, int]]]:
    names: list[str] = []
    identities: set[tuple[int, int]] = set()
    for namespace in namespaces:
        identity = namespace_identity(namespace)
        if identity is not None:
            names.append(namespace)
            identities.add(identity)
    return names, identities


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            kill_hard(pid)
        except ProcessLookupError:
            continue


def _lock_path(token: str) -> Path:
    return LOCK_DIR / f"{token}.lock"


def _create_lock(token: str) -> int:
    """Create the run's lock file already locked, so no sweeper ever sees it unlocked."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    staging = LOCK_DIR / f".{token}.{os.getpid()}.staging"
    fd = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_RDWR | fileio.O_CLOEXEC, 0o600)
    try:
        _lock_at_once(fd, staging)
        os.link(staging, _lock_path(token))
    except BaseException:
        os.close(fd)
        raise
    finally:
        staging.unlink()
    return fd


def _lock_at_once(fd: int, path: Path) -> None:
    if not try_lock_exclusive(fd):
        raise OSError(errno.EWOULDBLOCK, f"{path} is locked by another process")


def _sweep_run(token: str, names: Sequence[str]) -> bool:
    """Remove one run's namespaces and lock file if its owner is gone."""
    path = _lock_path(token)
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | fileio.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR | fileio.O_CLOEXEC, 0o600)
    try:
        if not try_lock_exclusive(fd):
            return False
        _remove_namespaces_now(names)
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


async def _start_reaper(lock: Path, namespaces: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        _REAPER_SCRIPT,
        "lanspread-netns-reaper",
        str(lock),
        *namespaces,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )


async def _stop_reaper(reaper: asyncio.subprocess.Process, *, done: bool) -> None:
    """Tell the reaper the run is clean (``done``) or let it sweep, and reap it."""
    assert reaper.stdin is not None
    try:
        reaper.stdin.write(b"done\n" if done else b"sweep\n")
        await reaper.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the reaper already ended: nothing to tell it
    reaper.stdin.close()
    try:
        async with asyncio.timeout(TEARDOWN_TIMEOUT):
            await reaper.wait()
    except TimeoutError:
        reaper.kill()
        await reaper.wait()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo_request(ident: int, sequence: int) -> bytes:
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, sequence)
    checksum = _checksum(header + ICMP_PAYLOAD)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum, ident, sequence) + ICMP_PAYLOAD


def _is_echo_reply(packet: bytes, ident: int) -> bool:
    header_length = (packet[0] & 0x0F) * 4
    icmp = packet[header_length : header_length + 8]
    if len(icmp) < 8:
        return False
    kind, _code, _checksum, reply_ident, _sequence = struct.unpack("!BBHHH", icmp)
    return bool(kind == ICMP_ECHO_REPLY and reply_ident == ident)
