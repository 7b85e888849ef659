"""mDNS discovery of lanspread peers, on python-zeroconf.

Theory of operation
-------------------
Each peer registers one service instance ``<label>._lanspread._tcp.local.``
that advertises its bound listener port, its addresses and three TXT entries:
``proto`` (the wire protocol version), ``peer_id`` (the full id) and ``name``
(the display name, bounded). The label is the peer id itself, cut to its first
32 characters because a DNS label holds at most 63 bytes and a peer id is a
64-character hex SHA-256. Two honest peers can only clash on a name if their
ids share 128 bits, but anyone can *squat* a peer's name (advertise it first).
When zeroconf's probe notices a clash, the peer registers again under
``<label>~<random hex>`` (up to :data:`REGISTER_ATTEMPTS` names), which a
squatter cannot predict; an advertisement's name only has to start with the
label of the id its TXT record claims. The id itself is proven by the handshake,
never by mDNS (see ``core/sightings``). The probe is best effort: zeroconf counts
a conflict only when the other holder's pointer record reaches our cache during
the ~1.2 s of probing.

:class:`Discovery` is built from the port and addresses of a listener that is
already bound, so it cannot advertise or browse before the peer can accept a
handshake (the original's cold-start race: a peer that browsed before its own
listener existed produced "A sees B but B never sees A").

``run()`` opens zeroconf on the event loop (zeroconf then starts no thread),
starts browsing, registers (probe, then announce), and only then reports.
Browser callbacks only record the latest change per instance in a bounded
:class:`ChangeQueue`; a few worker tasks resolve each instance with
``AsyncServiceInfo.async_request``, check it with the pure
:func:`parse_advertisement` and call ``on_found`` on the event loop, again
whenever the advertised port or address changes. The instances reported are
bounded by :data:`MAX_TRACKED_PEERS`; a new one evicts the one reported longest
ago (which only costs it a duplicate report later), so a flood of records cannot
keep an honest newcomer from being reported. Instances that are ours, speak
another protocol version, carry no peer id or do not resolve are logged at debug
level and skipped. ``on_gone`` is only a hint that a goodbye arrived; liveness
decides whether a peer is really gone.

Cancelling ``run()`` sends the goodbye packets (bounded by
:data:`GOODBYE_TIMEOUT`) and closes every socket before it returns.

Interfaces
----------
``interfaces=None`` listens and announces on every IPv4 address of the host,
loopback included (zeroconf's ``InterfaceChoice.All``). A list of IPv4
addresses restricts mDNS to those interfaces, for example the single veth
address of a peer in a network namespace, or ``["127.0.0.1"]`` for two peers on
one host. Loopback needs no system setting: with zeroconf's explicit
``IP_MULTICAST_IF`` and ``IP_MULTICAST_LOOP`` the kernel delivers the multicast
on ``lo`` even without the ``MULTICAST`` link flag (verified on Linux 6.18,
also in a namespace whose only interface is ``lo``).

``addresses=None`` advertises the ``interfaces`` addresses when given,
otherwise every non-loopback IPv4 address of the host (loopback only when the
host has nothing else), so remote peers are never handed ``127.0.0.1``.
Addresses are read once per ``run()``; after a network change the supervisor's
restart picks up the new ones.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import ifaddr
from zeroconf import (
    InterfaceChoice,
    NonUniqueNameException,
    NotRunningException,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from lanspread.errors import ConfigError, DiscoveryError

log = logging.getLogger(__name__)

SERVICE_TYPE = "_lanspread._tcp.local."
TXT_PROTOCOL_VERSION = "proto"
TXT_PEER_ID = "peer_id"
TXT_NAME = "name"

# A peer id is the hex SHA-256 of the peer's public key: 64 characters.
MAX_PEER_ID_LENGTH = 64
_PEER_ID_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_PEER_ID_LENGTH}}}")
# A DNS label holds at most 63 bytes, so an instance is named by the first 32
# characters of its peer id: 128 bits, which no two peers share by chance.
INSTANCE_LABEL_LENGTH = 32
# Between the label and the suffix of a name taken after a conflict; not a
# character of a peer id.
NAME_SUFFIX_SEPARATOR = "~"
# Random hex characters of that suffix: 32 bits a squatter cannot guess ahead.
NAME_SUFFIX_LENGTH = 8
# Our own name, then fresh random names: a squatter who reacts to every probe can
# make each fail, and after this many the peer runs undiscoverable rather than
# probing forever (others still learn its address from its Hellos).
REGISTER_ATTEMPTS = 4
# A display name only labels a peer in a list; 64 bytes fits any sensible machine
# or player name and keeps the TXT record far below one 255-byte TXT string.
MAX_NAME_BYTES = 64
# The protocol version is a small decimal integer; more digits are garbage.
MAX_PROTOCOL_VERSION_DIGITS = 9
# A LAN party is tens to a few hundred machines. These bounds cap memory when a
# host floods the network with advertisements: instances with a pending change
# (beyond it the oldest pending one is dropped), and instances reported (beyond
# it the one reported longest ago is forgotten).
MAX_PENDING_CHANGES = 512
MAX_TRACKED_PEERS = 512
# zeroconf answers a two-question request within about 1.35 s on a healthy LAN
# and uses 3 s as its own default; an instance that needs longer is broken.
RESOLVE_TIMEOUT = 3.0
# Resolves run in parallel so one silent instance cannot stall the others.
RESOLVE_WORKERS = 4
# zeroconf's own engine start normally takes milliseconds.
STARTUP_TIMEOUT = 5.0
# zeroconf sends three goodbye packets 125 ms apart (~0.25 s); the margin covers
# a busy event loop while staying well inside the runtime's shutdown budget.
GOODBYE_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class DiscoveredPeer:
    """A resolved, current-protocol lanspread instance other than ourselves."""

    peer_id: str
    name: str
    """Display name, at most :data:`MAX_NAME_BYTES` UTF-8 bytes, printable only."""
    host: str
    """The address to dial: IPv4 preferred, non-loopback before loopback."""
    port: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """An advertisement that is not a usable peer, and why."""

    reason: str


class Change(enum.Enum):
    RESOLVE = "resolve"
    REMOVE = "remove"


def is_valid_peer_id(peer_id: str) -> bool:
    """True for 1-64 letters, digits, ``-`` or ``_`` (a hex SHA-256 is one)."""
    return _PEER_ID_PATTERN.fullmatch(peer_id) is not None


def peer_label(peer_id: str) -> str:
    """The instance label of ``peer_id``: its first :data:`INSTANCE_LABEL_LENGTH` characters."""
    return peer_id[:INSTANCE_LABEL_LENGTH].lower()


def instance_name(peer_id: str) -> str:
    """The mDNS instance name a peer with ``peer_id`` registers."""
    return f"{peer_label(peer_id)}.{SERVICE_TYPE}"


def suffixed_instance_name(peer_id: str, suffix: str) -> str:
    """The instance name taken when ``instance_name(peer_id)`` is held by someone else."""
    return f"{peer_label(peer_id)}{NAME_SUFFIX_SEPARATOR}{suffix}.{SERVICE_TYPE}"


_SUFFIX_PATTERN = re.compile(rf"[0-9a-f]{{1,{NAME_SUFFIX_LENGTH}}}")


def instance_label(name: str) -> str | None:
    """The (lowercased) peer-id label of a lanspread instance name, or None for any other.

    A conflict suffix (``~`` and a few hex digits) is not part of the label.
    """
    end = f".{SERVICE_TYPE}"
    if not name.lower().endswith(end):
        return None
    label, separator, suffix = name[: -len(end)].lower().partition(NAME_SUFFIX_SEPARATOR)
    if separator and _SUFFIX_PATTERN.fullmatch(suffix) is None:
        return None
    valid = is_valid_peer_id(label) and len(label) <= INSTANCE_LABEL_LENGTH
    return label if valid else None


def bounded_name(raw: bytes) -> str:
    """A display name cut to :data:`MAX_NAME_BYTES`; invalid UTF-8 and control chars dropped."""
    text = raw[:MAX_NAME_BYTES].decode("utf-8", errors="ignore")
    return "".join(char for char in text if char.isprintable())


def choose_host(addresses: Sequence[str]) -> str | None:
    """The address to dial among ``addresses`` (in zeroconf's newest-first order).

    IPv4 is preferred (LAN parties are IPv4 and link-local IPv6 needs a scope), and a
    non-loopback address before a loopback one, which only works on the same host.
    """
    candidates = []
    for order, text in enumerate(addresses):
        try:
            address = ipaddress.ip_address(text.partition("%")[0])
        except ValueError:
            continue
        candidates.append((address.version != 4, address.is_loopback, order, text))
    return min(candidates)[3] if candidates else None


def parse_advertisement(
    name: str,
    properties: Mapping[bytes, bytes | None],
    port: int | None,
    addresses: Sequence[str],
    *,
    protocol_version: int,
) -> DiscoveredPeer | Ignored:
    """Turn a resolved instance into a peer, or say why it is not one. Never raises."""
    raw_version = properties.get(TXT_PROTOCOL_VERSION.encode())
    if raw_version is None:
        return Ignored("no protocol version")
    if not (raw_version.isdigit() and len(raw_version) <= MAX_PROTOCOL_VERSION_DIGITS):
        return Ignored("malformed protocol version")
    if int(raw_version) != protocol_version:
        return Ignored(f"protocol version {int(raw_version)}, we speak {protocol_version}")
    raw_peer_id = properties.get(TXT_PEER_ID.encode())
    if raw_peer_id is None:
        return Ignored("no peer id")
    peer_id = raw_peer_id.decode("ascii", errors="replace")
    if not is_valid_peer_id(peer_id):
        return Ignored("malformed peer id")
    if instance_label(name) != peer_label(peer_id):
        return Ignored(f"instance name does not match peer id {peer_id}")
    if not port:
        return Ignored("no port")
    host = choose_host(addresses)
    if host is None:
        return Ignored("no address")
    display_name = bounded_name(properties.get(TXT_NAME.encode()) or b"") or peer_id
    return DiscoveredPeer(peer_id=peer_id, name=display_name, host=host, port=port)


class ChangeQueue:
    """The latest pending change per instance name, handed to one worker at a time.

    Browser callbacks only ``put``; a name is never processed by two workers at
    once, and changes that arrive meanwhile collapse into the newest one. The
    newest pending name is taken first, and a full queue drops its oldest pending
    name: a flood of records that do not resolve cannot make a newcomer wait
    behind all of them, nor be dropped itself.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._latest: dict[str, Change] = {}
        self._busy: set[str] = set()
        self._ready = asyncio.Event()

    def put(self, name: str, change: Change) -> str | None:
        """Record ``change`` for ``name``; returns the pending name dropped to make room."""
        dropped = None
        if self._latest.pop(name, None) is None and len(self._latest) >= self._limit:
            dropped = next(iter(self._latest))
            del self._latest[dropped]
        self._latest[name] = change
        self._ready.set()
        return dropped

    async def take(self) -> tuple[str, Change]:
        """Wait for the newest pending name that no worker holds, and hold it."""
        while True:
            for name in reversed(self._latest):
                if name not in self._busy:
                    self._busy.add(name)
                    return name, self._latest.pop(name)
            self._ready.clear()
            await self._ready.wait()

    def done(self, name: str) -> None:
        """Release ``name``; a change that arrived meanwhile becomes takeable."""
        self._busy.discard(name)
        if name in self._latest:
            self._ready.set()


def _check_ip(address: str, what: str, *, ipv4_only: bool) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError as exc:
        raise ConfigError(f"{what} {address!r} is not an IP address") from exc
    if ipv4_only and parsed.version != 4:
        raise ConfigError(f"{what} {address!r} is not an IPv4 address")
    return str(parsed)


def _check_addresses(
    values: Sequence[str] | None, what: str, *, ipv4_only: bool
) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not values:
        raise ConfigError(f"{what}es must not be empty (pass None for the default)")
    return tuple(_check_ip(value, what, ipv4_only=ipv4_only) for value in values)


def advertisable_ipv4(addresses: Iterable[str]) -> list[str]:
    """The IPv4 addresses worth advertising: non-loopback ones, loopback only if alone."""
    unique = set(addresses)
    remote = sorted(a for a in unique if not ipaddress.ip_address(a).is_loopback)
    return remote or sorted(unique)


def host_ipv4_addresses() -> set[str]:
    """Every IPv4 address of this host, loopback included."""
    return {
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if ip.is_IPv4 and isinstance(ip.ip, str)
    }


class Discovery:
    """Advertise this peer and report the others, until cancelled."""

    def __init__(
        self,
        *,
        peer_id: str,
        name: str,
        port: int,
        protocol_version: int,
        addresses: Sequence[str] | None = None,
        interfaces: Sequence[str] | None = None,
        resolve_timeout: float = RESOLVE_TIMEOUT,
    ) -> None:
        """``port``/``addresses``: the bound listener; ``interfaces``: IPv4 addresses for mDNS."""
        if not is_valid_peer_id(peer_id):
            raise ConfigError(
                f"peer id {peer_id!r} is not 1-{MAX_PEER_ID_LENGTH} letters, digits, '-' or '_'"
            )
        if not 1 <= port <= 65535:
            raise ConfigError(f"listen port {port} is not a bound TCP port")
        if not 0 <= protocol_version < 10**MAX_PROTOCOL_VERSION_DIGITS:
            highest = 10**MAX_PROTOCOL_VERSION_DIGITS - 1
            raise ConfigError(f"protocol version {protocol_version} is outside 0-{highest}")
        self._peer_id = peer_id
        self._name = bounded_name(name.encode()) or peer_id
        self._port = port
        self._protocol_version = protocol_version
        self._interfaces = _check_addresses(interfaces, "interface address", ipv4_only=True)
        self._addresses = _check_addresses(addresses, "advertised address", ipv4_only=False)
        self._resolve_timeout = resolve_timeout
        self._known: dict[str, DiscoveredPeer] = {}
        self._instance_name = instance_name(peer_id)

    @property
    def instance_name(self) -> str:
        """The instance this peer registers (another one after a conflict)."""
        return self._instance_name

    async def run(
        self,
        on_found: Callable[[DiscoveredPeer], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> None:
        """Register, browse and report peers until cancelled; DiscoveryError if mDNS fails.

        The browser starts before the registration so that the probe for our name sees
        a peer already holding our id (zeroconf only detects a conflict whose pointer
        record is in its cache); changes are reported once we are registered.
        """
        self._known.clear()
        aiozc = self._open()
        try:
            await self._wait_until_started(aiozc)
            changes = ChangeQueue(MAX_PENDING_CHANGES)

            def on_change(
                zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
            ) -> None:
                self._note_change(changes, name, state_change)

            browser = AsyncServiceBrowser(aiozc.zeroconf, SERVICE_TYPE, handlers=[on_change])
            try:
                announced = await self._register(aiozc)
                await self._report(aiozc.zeroconf, changes, announced, on_found, on_gone)
            finally:
                await browser.async_cancel()
        finally:
            await self._close(aiozc)

    def _open(self) -> AsyncZeroconf:
        # zeroconf leaks its listen socket when an interface fails, so refuse first.
        missing = [a for a in self._interfaces or () if a not in host_ipv4_addresses()]
        if missing:
            raise DiscoveryError(f"interface address {', '.join(missing)} is not on this host")
        try:
            if self._interfaces is None:
                return AsyncZeroconf(interfaces=InterfaceChoice.All)
            return AsyncZeroconf(interfaces=list(self._interfaces))
        except (OSError, RuntimeError) as exc:
            raise DiscoveryError(f"cannot open mDNS sockets: {exc}") from exc

    async def _wait_until_started(self, aiozc: AsyncZeroconf) -> None:
        try:
            await aiozc.zeroconf.async_wait_for_start(timeout=STARTUP_TIMEOUT)
        except NotRunningException as exc:
            raise DiscoveryError(f"mDNS did not start within {STARTUP_TIMEOUT} s") from exc
        if not aiozc.zeroconf.engine.senders:
            where = "any interface" if self._interfaces is None else ", ".join(self._interfaces)
            raise DiscoveryError(f"no usable mDNS interface on {where}")
        log.debug("mDNS open for %s", self.instance_name)

    async def _register(self, aiozc: AsyncZeroconf) -> asyncio.Future[None]:
        """Probe for our instance name and start announcing it; another name on a conflict."""
        addresses = (
            self._addresses or self._interfaces or tuple(advertisable_ipv4(host_ipv4_addresses()))
        )
        self._instance_name = instance_name(self._peer_id)
        for attempt in range(1, REGISTER_ATTEMPTS + 1):
            info = AsyncServiceInfo(
                SERVICE_TYPE,
                self._instance_name,
                port=self._port,
                parsed_addresses=list(addresses),
                server=f"{peer_label(self._peer_id)}.local.",
                properties={
                    TXT_PROTOCOL_VERSION: str(self._protocol_version),
                    TXT_PEER_ID: self._peer_id,
                    TXT_NAME: self._name,
                },
            )
            try:
                announced = await aiozc.async_register_service(info)
            except NonUniqueNameException:
                log.warning(
                    "another responder holds %s (attempt %d of %d); taking another name",
                    self._instance_name,
                    attempt,
                    REGISTER_ATTEMPTS,
                )
                suffix = secrets.token_hex(NAME_SUFFIX_LENGTH // 2)
                self._instance_name = suffixed_instance_name(self._peer_id, suffix)
                continue
            log.debug("registered %s on port %d at %s", self._instance_name, self._port, addresses)
            return asyncio.ensure_future(announced)
        raise DiscoveryError(f"another responder took every name tried for peer id {self._peer_id}")

    async def _report(
        self,
        zeroconf: Zeroconf,
        changes: ChangeQueue,
        announced: asyncio.Future[None],
        on_found: Callable[[DiscoveredPeer], None],
        on_gone: Callable[[str], None] | None,
    ) -> None:
        """Finish announcing and work through the browser's changes until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_await_announcement(announced), name="mdns-announce")
                for index in range(RESOLVE_WORKERS):
                    group.create_task(
                        self._work(zeroconf, changes, on_found, on_gone),
                        name=f"mdns-resolve-{index}",
                    )
        except ExceptionGroup as failure:
            first = failure.exceptions[0]
            raise DiscoveryError(f"discovery stopped: {first!r}") from failure

    def _note_change(
        self, changes: ChangeQueue, name: str, state_change: ServiceStateChange
    ) -> None:
        """Browser callback (event loop): queue the change of a foreign lanspread instance."""
        label = instance_label(name)
        if label is None:
            log.debug("ignoring %s: not a lanspread instance name", name)
            return
        if label == peer_label(self._peer_id):
            log.debug("ignoring our own advertisement %s", name)
            return
        change = Change.REMOVE if state_change is ServiceStateChange.Removed else Change.RESOLVE
        dropped = changes.put(name, change)
        if dropped is not None:
            log.debug("dropping the pending change of %s: %d pending", dropped, MAX_PENDING_CHANGES)

    async def _work(
        self,
        zeroconf: Zeroconf,
        changes: ChangeQueue,
        on_found: Callable[[DiscoveredPeer], None],
        on_gone: Callable[[str], None] | None,
    ) -> None:
        while True:
            name, change = await changes.take()
            try:
                if change is Change.REMOVE:
                    self._forget(name, on_gone)
                else:
                    await self._resolve(zeroconf, name, on_found)
            finally:
                changes.done(name)

    async def _resolve(
        self, zeroconf: Zeroconf, name: str, on_found: Callable[[DiscoveredPeer], None]
    ) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(zeroconf, int(self._resolve_timeout * 1000)):
            log.debug("ignoring %s: not resolved within %.1f s", name, self._resolve_timeout)
            return
        result = parse_advertisement(
            name,
            info.properties,
            info.port,
            info.parsed_scoped_addresses(),
            protocol_version=self._protocol_version,
        )
        if isinstance(result, Ignored):
            log.debug("ignoring %s: %s", name, result.reason)
            return
        if self._known.get(name) == result:
            return
        self._known.pop(name, None)  # re-inserted last: the newest report
        if len(self._known) >= MAX_TRACKED_PEERS:
            oldest = next(iter(self._known))
            del self._known[oldest]
            log.debug(
                "forgetting %s to track %s: already tracking %d peers",
                oldest,
                name,
                MAX_TRACKED_PEERS,
            )
        self._known[name] = result
        on_found(result)

    def _forget(self, name: str, on_gone: Callable[[str], None] | None) -> None:
        peer = self._known.pop(name, None)
        if peer is not None and on_gone is not None:
            on_gone(peer.peer_id)

    async def _close(self, aiozc: AsyncZeroconf) -> None:
        """Send goodbyes (bounded), then close zeroconf's sockets."""
        try:
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await aiozc.async_unregister_all_services()
        except TimeoutError:
            log.warning("mDNS goodbye not sent within %.1f s; closing anyway", GOODBYE_TIMEOUT)
        finally:
            await aiozc.async_close()


async def _await_announcement(announced: asyncio.Future[None]) -> None:
    """Own zeroconf's announcement task so cancellation reaches it."""
    await announced
