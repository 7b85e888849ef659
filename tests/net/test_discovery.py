"""mDNS discovery: the pure advertisement rules, then real zeroconf on loopback.

The network tests run every zeroconf instance on ``127.0.0.1`` only. Loopback needs
no system setting (see the module docstring of ``lanspread.net.discovery``), so
nothing here is skipped. Peer ids are random per test, and assertions only look at
the ids a test created, so other lanspread instances on this host cannot disturb
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.waiting import wait_until
from zeroconf import NonUniqueNameException, NotRunningException, Zeroconf
from zeroconf._dns import DNSPointer
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf._utils import net as zeroconf_net
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from lanspread.errors import ConfigError, DiscoveryError
from lanspread.net import discovery
from lanspread.net.discovery import (
    MAX_NAME_BYTES,
    REGISTER_ATTEMPTS,
    SERVICE_TYPE,
    Change,
    ChangeQueue,
    DiscoveredPeer,
    Discovery,
    Ignored,
    advertisable_ipv4,
    bounded_name,
    choose_host,
    instance_label,
    instance_name,
    parse_advertisement,
    suffixed_instance_name,
)

PROTOCOL = 7
LOOPBACK = "127.0.0.1"
# The bound for two fresh peers to see each other.
DISCOVERY_DEADLINE = 3.0
# How long a test waits for anything before failing with a clear message.
WAIT_TIMEOUT = 6.0
# RFC 1035 numbers for hand-made packets.
DNS_TYPE_PTR = 12
DNS_CLASS_IN = 1
DNS_FLAGS_RESPONSE_AUTHORITATIVE = 0x8000 | 0x0400


def new_peer_id() -> str:
    """A fresh id shaped like the real ones (hex SHA-256, 64 characters)."""
    return secrets.token_hex(32)


def private_protocol() -> int:
    """A protocol version no other test's peers speak, for tests that count every peer.

    Other lanspread instances on this host's loopback (another test run) are then
    ignored as peers of another version.
    """
    return 1000 + secrets.randbelow(10**6)


def display_name(peer_id: str) -> str:
    return f"peer {peer_id[:8]}"


def loopback_discovery(
    peer_id: str, port: int, *, protocol_version: int = PROTOCOL, resolve_timeout: float = 3.0
) -> Discovery:
    return Discovery(
        peer_id=peer_id,
        name=display_name(peer_id),
        port=port,
        protocol_version=protocol_version,
        interfaces=[LOOPBACK],
        resolve_timeout=resolve_timeout,
    )


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


class Sightings:
    """Records ``on_found`` / ``on_gone`` calls with their time, and waits for them."""

    def __init__(self) -> None:
        self.found: list[DiscoveredPeer] = []
        self.found_at: dict[str, float] = {}
        self.gone: list[str] = []
        self._changed = asyncio.Event()

    def on_found(self, peer: DiscoveredPeer) -> None:
        self.found.append(peer)
        self.found_at.setdefault(peer.peer_id, time.monotonic())
        self._changed.set()

    def on_gone(self, peer_id: str) -> None:
        self.gone.append(peer_id)
        self._changed.set()

    def found_for(self, peer_id: str) -> list[DiscoveredPeer]:
        return [peer for peer in self.found if peer.peer_id == peer_id]

    def found_ids(self) -> set[str]:
        return {peer.peer_id for peer in self.found}

    async def wait_for(self, what: str, predicate: Callable[[], bool]) -> None:
        await wait_until(predicate, what, timeout=WAIT_TIMEOUT, changed=self._changed)


class LogWatcher(logging.Handler):
    """Collects the discovery logger's messages and waits for one to appear."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self._changed.set()

    async def wait_for(self, message: str) -> None:
        await wait_until(
            lambda: message in self.messages,
            f"the log message {message!r}",
            timeout=WAIT_TIMEOUT,
            changed=self._changed,
        )


@pytest.fixture
def logs() -> Iterator[LogWatcher]:
    logger = logging.getLogger(discovery.__name__)
    watcher = LogWatcher()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watcher)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(previous)


@pytest.fixture
async def raw_zeroconf() -> AsyncIterator[AsyncZeroconf]:
    """A plain zeroconf instance on loopback, for advertisements lanspread would never make."""
    aiozc = AsyncZeroconf(interfaces=[LOOPBACK])
    try:
        yield aiozc
    finally:
        await aiozc.async_close()


def raw_service(
    peer_id: str, *, port: int, properties: dict[str, str], address: str = LOOPBACK
) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        SERVICE_TYPE,
        instance_name(peer_id),
        port=port,
        parsed_addresses=[address],
        server=f"{peer_id[:32]}.local.",
        properties=properties,
    )


def valid_txt(peer_id: str, *, protocol_version: int = PROTOCOL) -> dict[str, str]:
    return {"proto": str(protocol_version), "peer_id": peer_id, "name": display_name(peer_id)}


async def register_raw(aiozc: AsyncZeroconf, info: AsyncServiceInfo) -> None:
    """Register without probing (the name is random) and wait for the announcements."""
    await (await aiozc.async_register_service(info, cooperating_responders=True))


@contextlib.asynccontextmanager
async def running(
    *peers: tuple[Discovery, Sightings],
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run each discovery in a task group; cancel them all on the way out."""
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(peer.run(sightings.on_found, sightings.on_gone))
            for peer, sightings in peers
        ]
        try:
            yield tasks
        finally:
            for task in tasks:
                task.cancel()


# --- the pure rules ---------------------------------------------------------------


def good_txt(peer_id: str = "abc") -> dict[bytes, bytes | None]:
    return {b"proto": b"7", b"peer_id": peer_id.encode(), b"name": b"Alice"}


def test_a_valid_advertisement_becomes_a_peer() -> None:
    """All fields present and consistent: the peer carries id, name, chosen host and port."""
    result = parse_advertisement(
        instance_name("abc"), good_txt(), 4000, ["127.0.0.1"], protocol_version=7
    )
    assert result == DiscoveredPeer(peer_id="abc", name="Alice", host="127.0.0.1", port=4000)


@pytest.mark.parametrize(
    ("changes", "port", "addresses", "reason"),
    [
        ({b"proto": None}, 4000, ["10.0.0.1"], "no protocol version"),
        ({b"proto": b"seven"}, 4000, ["10.0.0.1"], "malformed protocol version"),
        ({b"proto": b"1234567890"}, 4000, ["10.0.0.1"], "malformed protocol version"),
        ({b"proto": b"8"}, 4000, ["10.0.0.1"], "protocol version 8, we speak 7"),
        ({b"peer_id": None}, 4000, ["10.0.0.1"], "no peer id"),
        ({b"peer_id": b"a.b"}, 4000, ["10.0.0.1"], "malformed peer id"),
        ({b"peer_id": b"\xff"}, 4000, ["10.0.0.1"], "malformed peer id"),
        ({b"peer_id": b"xyz"}, 4000, ["10.0.0.1"], "instance name does not match peer id xyz"),
        ({}, None, ["10.0.0.1"], "no port"),
        ({}, 0, ["10.0.0.1"], "no port"),
        ({}, 4000, [], "no address"),
        ({}, 4000, ["not-an-address"], "no address"),
    ],
)
def test_unusable_advertisements_are_ignored_with_a_reason(
    changes: dict[bytes, bytes | None], port: int | None, addresses: list[str], reason: str
) -> None:
    """Every rule that rejects an advertisement says which one, in words for the debug log."""
    properties = good_txt() | changes
    properties = {key: value for key, value in properties.items() if value is not None}
    result = parse_advertisement(
        instance_name("abc"), properties, port, addresses, protocol_version=7
    )
    assert result == Ignored(reason)


def test_a_full_length_peer_id_is_named_by_its_first_32_characters() -> None:
    """A 64-character id fits no DNS label: the instance carries its prefix, TXT the whole id."""
    peer_id = "ab" * 32
    assert instance_name(peer_id) == f"{'ab' * 16}._lanspread._tcp.local."
    properties = good_txt(peer_id)
    result = parse_advertisement(
        instance_name(peer_id), properties, 4000, ["10.0.0.1"], protocol_version=7
    )
    assert result == DiscoveredPeer(peer_id=peer_id, name="Alice", host="10.0.0.1", port=4000)
    impostor = parse_advertisement(
        instance_name("cd" * 32), properties, 4000, ["10.0.0.1"], protocol_version=7
    )
    assert impostor == Ignored(f"instance name does not match peer id {peer_id}")


def test_a_foreign_instance_name_is_ignored() -> None:
    """A name outside our service type can never be taken for a peer."""
    result = parse_advertisement(
        "abc._other._tcp.local.", good_txt(), 4000, ["10.0.0.1"], protocol_version=7
    )
    assert result == Ignored("instance name does not match peer id abc")


def test_display_name_is_bounded_and_cleaned() -> None:
    """Long names are cut at a character boundary; control characters and bad UTF-8 go."""
    assert bounded_name("é".encode() * 40) == "é" * (MAX_NAME_BYTES // 2)
    assert bounded_name(b"a" * 63 + "é".encode()) == "a" * 63
    assert bounded_name(b"Al\x00ice\n\xff") == "Alice"


def test_missing_or_empty_display_name_falls_back_to_the_peer_id() -> None:
    """A peer without a usable name is still listed, under its id."""
    for raw_name in (None, b"", b"\x01\x02"):
        properties = good_txt()
        del properties[b"name"]
        if raw_name is not None:
            properties[b"name"] = raw_name
        result = parse_advertisement(
            instance_name("abc"), properties, 4000, ["10.0.0.1"], protocol_version=7
        )
        assert isinstance(result, DiscoveredPeer)
        assert result.name == "abc"


def test_host_choice_prefers_ipv4_then_non_loopback_then_zeroconf_order() -> None:
    """IPv4 beats IPv6, LAN beats loopback, and ties keep zeroconf's newest-first order."""
    assert choose_host(["fd00::2", "10.0.0.2"]) == "10.0.0.2"
    assert choose_host(["127.0.0.1", "10.0.0.2", "10.0.0.3"]) == "10.0.0.2"
    assert choose_host(["fe80::1%eth0", "::1"]) == "fe80::1%eth0"
    assert choose_host(["127.0.0.1", "fd00::2"]) == "127.0.0.1"
    assert choose_host(["junk"]) is None


def test_instance_label_accepts_only_lanspread_instances() -> None:
    """The label is the peer id for our type (case-insensitive suffix) and None otherwise."""
    assert instance_label("ABC-1._lanspread._tcp.local.") == "abc-1"
    assert instance_label("abc._LANSPREAD._tcp.local.") == "abc"
    assert instance_label("a b._lanspread._tcp.local.") is None
    assert instance_label(f"{'a' * 33}._lanspread._tcp.local.") is None
    assert instance_label("abc._http._tcp.local.") is None


def test_a_conflict_suffix_is_not_part_of_the_label() -> None:
    """``<label>~<hex>`` names the same id as ``<label>``; any other suffix is not ours."""
    peer_id = "ab" * 32
    renamed = suffixed_instance_name(peer_id, "0f3a9c1d")
    assert renamed == f"{'ab' * 16}~0f3a9c1d._lanspread._tcp.local."
    assert instance_label(renamed) == "ab" * 16
    assert instance_label("abc~._lanspread._tcp.local.") is None
    assert instance_label("abc~xyz._lanspread._tcp.local.") is None
    assert instance_label("abc~123456789._lanspread._tcp.local.") is None
    result = parse_advertisement(renamed, good_txt(peer_id), 4000, ["10.0.0.1"], protocol_version=7)
    assert result == DiscoveredPeer(peer_id=peer_id, name="Alice", host="10.0.0.1", port=4000)


@given(
    name=st.text(max_size=80),
    properties=st.dictionaries(
        st.sampled_from([b"proto", b"peer_id", b"name"]) | st.binary(max_size=12),
        st.none() | st.binary(max_size=300),
        max_size=6,
    ),
    port=st.none() | st.integers(min_value=0, max_value=65535),
    addresses=st.lists(st.text(max_size=40), max_size=4),
)
def test_parse_advertisement_never_raises(
    name: str,
    properties: dict[bytes, bytes | None],
    port: int | None,
    addresses: list[str],
) -> None:
    """Whatever a host on the LAN advertises, parsing gives a bounded peer or a reason."""
    result = parse_advertisement(name, properties, port, addresses, protocol_version=7)
    if isinstance(result, DiscoveredPeer):
        assert len(result.name.encode()) <= MAX_NAME_BYTES
        assert result.host in addresses
        assert instance_label(name) is not None
    else:
        assert result.reason


async def test_change_queue_collapses_changes_and_serialises_each_name() -> None:
    """The newest change wins; a held name is not handed out again until released."""
    changes = ChangeQueue(limit=2)
    assert changes.put("a", Change.RESOLVE) is None
    assert changes.put("a", Change.REMOVE) is None
    assert await changes.take() == ("a", Change.REMOVE)
    assert changes.put("a", Change.RESOLVE) is None
    assert changes.put("b", Change.RESOLVE) is None
    assert await changes.take() == ("b", Change.RESOLVE)
    waiting = asyncio.ensure_future(changes.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    changes.done("a")
    assert await asyncio.wait_for(waiting, WAIT_TIMEOUT) == ("a", Change.RESOLVE)


async def test_change_queue_is_bounded_and_serves_the_newest_first() -> None:
    """Beyond its limit the queue drops its oldest pending name; the newest is taken first."""
    changes = ChangeQueue(limit=2)
    assert changes.put("flood1", Change.RESOLVE) is None
    assert changes.put("flood2", Change.RESOLVE) is None
    assert changes.put("flood2", Change.REMOVE) is None  # an update drops nothing
    assert changes.put("newcomer", Change.RESOLVE) == "flood1"
    assert await changes.take() == ("newcomer", Change.RESOLVE)
    assert await changes.take() == ("flood2", Change.REMOVE)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"peer_id": "has space"}, "peer id 'has space' is not 1-64 letters, digits, '-' or '_'"),
        ({"peer_id": "a" * 65}, f"peer id {'a' * 65!r} is not 1-64 letters, digits, '-' or '_'"),
        ({"port": 0}, "listen port 0 is not a bound TCP port"),
        ({"port": 65536}, "listen port 65536 is not a bound TCP port"),
        ({"protocol_version": -1}, "protocol version -1 is outside 0-999999999"),
        (
            {"protocol_version": 10**9},
            "protocol version 1000000000 is outside 0-999999999",
        ),
        ({"interfaces": ["eth0"]}, "interface address 'eth0' is not an IP address"),
        ({"interfaces": ["::1"]}, "interface address '::1' is not an IPv4 address"),
        ({"interfaces": []}, "interface addresses must not be empty (pass None for the default)"),
        ({"addresses": ["host"]}, "advertised address 'host' is not an IP address"),
        ({"addresses": []}, "advertised addresses must not be empty (pass None for the default)"),
    ],
)
def test_unusable_configuration_is_refused(overrides: dict[str, object], message: str) -> None:
    """Options that could not work are refused up front with a ConfigError naming the value."""
    options: dict[str, object] = {
        "peer_id": "abc",
        "name": "Alice",
        "port": 4000,
        "protocol_version": PROTOCOL,
    }
    with pytest.raises(ConfigError) as caught:
        Discovery(**options | overrides)  # type: ignore[arg-type]
    assert str(caught.value) == message


# --- real zeroconf on loopback ------------------------------------------------------


async def test_two_peers_discover_each_other_within_three_seconds() -> None:
    """Two fresh peers on loopback each report the other, with its name, address and port."""
    alpha_id, bravo_id = new_peer_id(), new_peer_id()
    alpha, seen_by_alpha = loopback_discovery(alpha_id, 40001), Sightings()
    bravo, seen_by_bravo = loopback_discovery(bravo_id, 40002), Sightings()
    started = time.monotonic()
    async with running((alpha, seen_by_alpha), (bravo, seen_by_bravo)):
        await seen_by_alpha.wait_for(
            "alpha sees bravo", lambda: bravo_id in seen_by_alpha.found_ids()
        )
        await seen_by_bravo.wait_for(
            "bravo sees alpha", lambda: alpha_id in seen_by_bravo.found_ids()
        )
    alpha_latency = seen_by_alpha.found_at[bravo_id] - started
    bravo_latency = seen_by_bravo.found_at[alpha_id] - started
    print(
        f"discovery latency: alpha->bravo {alpha_latency:.3f} s, bravo->alpha {bravo_latency:.3f} s"
    )
    assert max(alpha_latency, bravo_latency) < DISCOVERY_DEADLINE
    assert DiscoveredPeer(bravo_id, display_name(bravo_id), LOOPBACK, 40002) in seen_by_alpha.found
    assert DiscoveredPeer(alpha_id, display_name(alpha_id), LOOPBACK, 40001) in seen_by_bravo.found


async def test_own_advertisement_is_ignored(logs: LogWatcher) -> None:
    """A peer's browser sees its own instance, skips it, and never reports itself."""
    peer_id = new_peer_id()
    peer, seen = loopback_discovery(peer_id, 40003), Sightings()
    async with running((peer, seen)):
        await logs.wait_for(f"ignoring our own advertisement {instance_name(peer_id)}")
    assert peer_id not in seen.found_ids()


async def test_peer_of_another_protocol_version_is_ignored(
    logs: LogWatcher, raw_zeroconf: AsyncZeroconf
) -> None:
    """An instance advertising another protocol version is resolved, logged and skipped."""
    peer, seen = loopback_discovery(new_peer_id(), 40004), Sightings()
    other_id = new_peer_id()
    await register_raw(
        raw_zeroconf,
        raw_service(other_id, port=40005, properties=valid_txt(other_id, protocol_version=8)),
    )
    async with running((peer, seen)):
        await logs.wait_for(
            f"ignoring {instance_name(other_id)}: protocol version 8, we speak {PROTOCOL}"
        )
    assert other_id not in seen.found_ids()


async def test_service_without_peer_id_is_ignored(
    logs: LogWatcher, raw_zeroconf: AsyncZeroconf
) -> None:
    """An instance of our type whose TXT has no ``peer_id`` is logged and skipped."""
    peer, seen = loopback_discovery(new_peer_id(), 40006), Sightings()
    other_id = new_peer_id()
    await register_raw(
        raw_zeroconf, raw_service(other_id, port=40007, properties={"proto": str(PROTOCOL)})
    )
    async with running((peer, seen)):
        await logs.wait_for(f"ignoring {instance_name(other_id)}: no peer id")
    assert other_id not in seen.found_ids()


async def test_changed_port_and_address_are_reported_again(raw_zeroconf: AsyncZeroconf) -> None:
    """A peer re-announcing another port and address is reported again, exactly once.

    zeroconf reads the newest SRV record and lists addresses newest first, so the
    moved state is reported as one change, and the repeated announcements are not.
    """
    peer, seen = loopback_discovery(new_peer_id(), 40008), Sightings()
    other_id = new_peer_id()
    txt = valid_txt(other_id)
    await register_raw(raw_zeroconf, raw_service(other_id, port=40009, properties=txt))
    first = DiscoveredPeer(other_id, display_name(other_id), LOOPBACK, 40009)
    moved = DiscoveredPeer(other_id, display_name(other_id), "127.0.0.2", 40010)
    async with running((peer, seen)):
        await seen.wait_for("the first advertisement", lambda: first in seen.found)
        update = raw_service(other_id, port=40010, properties=txt, address="127.0.0.2")
        await (await raw_zeroconf.async_update_service(update))
        await seen.wait_for("the moved advertisement", lambda: moved in seen.found)
    assert seen.found_for(other_id) == [first, moved]


async def test_clean_shutdown_is_reported_as_gone() -> None:
    """When a peer stops, its goodbye reaches the other side as ``on_gone(peer_id)``."""
    alpha_id, bravo_id = new_peer_id(), new_peer_id()
    alpha, seen_by_alpha = loopback_discovery(alpha_id, 40011), Sightings()
    bravo, seen_by_bravo = loopback_discovery(bravo_id, 40012), Sightings()
    async with asyncio.TaskGroup() as group:
        alpha_task = group.create_task(alpha.run(seen_by_alpha.on_found, seen_by_alpha.on_gone))
        bravo_task = group.create_task(bravo.run(seen_by_bravo.on_found, seen_by_bravo.on_gone))
        await seen_by_alpha.wait_for(
            "alpha sees bravo", lambda: bravo_id in seen_by_alpha.found_ids()
        )
        bravo_task.cancel()
        stopped = time.monotonic()
        await seen_by_alpha.wait_for("bravo's goodbye", lambda: bravo_id in seen_by_alpha.gone)
        print(f"removal seen {time.monotonic() - stopped:.3f} s after cancelling the peer")
        alpha_task.cancel()
    assert bravo_task.cancelled()
    assert seen_by_alpha.gone.count(bravo_id) == 1


async def test_cancellation_closes_sockets_and_tasks_and_frees_the_name() -> None:
    """Cancelled, run() leaves no task or socket behind; the same id can run again at once."""
    tasks_before = asyncio.all_tasks()
    fds_before = open_fds()
    peer_id, watcher_id = new_peer_id(), new_peer_id()
    watcher, seen = loopback_discovery(watcher_id, 40013), Sightings()
    async with running((watcher, seen)):
        async with running((loopback_discovery(peer_id, 40014), Sightings())):
            await seen.wait_for("the peer", lambda: peer_id in seen.found_ids())
        await seen.wait_for("the peer's goodbye", lambda: peer_id in seen.gone)
        # A supervisor restart under the same id works right after the cancellation.
        async with running((loopback_discovery(peer_id, 40015), Sightings())):
            await seen.wait_for(
                "the restarted peer",
                lambda: (
                    DiscoveredPeer(peer_id, display_name(peer_id), LOOPBACK, 40015) in seen.found
                ),
            )
    assert asyncio.all_tasks() == tasks_before
    assert open_fds() == fds_before


async def test_goodbye_timeout_still_closes_everything(
    logs: LogWatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the goodbyes overrun their bound, shutdown logs it and still closes every socket."""
    monkeypatch.setattr(discovery, "GOODBYE_TIMEOUT", 0.0)
    fds_before = open_fds()
    peer, seen = loopback_discovery(new_peer_id(), 40016), Sightings()
    async with running((peer, seen)):
        await logs.wait_for(f"ignoring our own advertisement {peer.instance_name}")
    assert "mDNS goodbye not sent within 0.0 s; closing anyway" in logs.messages
    assert open_fds() == fds_before


async def test_a_squatted_name_is_answered_by_registering_under_another(
    logs: LogWatcher, raw_zeroconf: AsyncZeroconf
) -> None:
    """Another responder announcing our name during our probe makes us take a suffixed name.

    zeroconf notices a conflict only when the other holder's pointer record reaches
    its cache while it probes, so the squatter announces right after we opened. The
    peer is then still discovered, under ``<label>~<random hex>``, with its real port.
    """
    peer_id = new_peer_id()
    squatted = instance_name(peer_id)

    async def announce_once_open() -> None:
        await logs.wait_for(f"mDNS open for {squatted}")
        rival = raw_service(peer_id, port=40017, properties=valid_txt(peer_id))
        await (await raw_zeroconf.async_register_service(rival, cooperating_responders=True))

    victim = loopback_discovery(peer_id, 40018)
    observer, seen = loopback_discovery(new_peer_id(), 40019), Sightings()
    async with asyncio.timeout(WAIT_TIMEOUT), asyncio.TaskGroup() as group:
        squatter = group.create_task(announce_once_open())
        async with running((victim, Sightings()), (observer, seen)):
            await squatter
            await seen.wait_for(
                "the victim under its new name",
                lambda: any(peer.port == 40018 for peer in seen.found_for(peer_id)),
            )
    assert victim.instance_name != squatted
    assert instance_label(victim.instance_name) == instance_label(squatted)
    assert (
        f"another responder holds {squatted} (attempt 1 of {REGISTER_ATTEMPTS}); "
        "taking another name"
    ) in logs.messages


async def test_a_squatter_taking_every_name_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    """After REGISTER_ATTEMPTS conflicts run() fails with a DiscoveryError (and is restarted)."""
    peer_id = new_peer_id()

    async def always_taken(self: AsyncZeroconf, info: AsyncServiceInfo) -> None:
        raise NonUniqueNameException

    monkeypatch.setattr(AsyncZeroconf, "async_register_service", always_taken)
    with pytest.raises(DiscoveryError) as caught:
        async with asyncio.timeout(WAIT_TIMEOUT):
            await loopback_discovery(peer_id, 40020).run(Sightings().on_found)
    assert str(caught.value) == f"another responder took every name tried for peer id {peer_id}"


async def test_interface_that_is_not_ours_is_fatal() -> None:
    """An interface address this host does not have fails at once, before zeroconf opens."""
    peer = Discovery(
        peer_id=new_peer_id(),
        name="x",
        port=40019,
        protocol_version=PROTOCOL,
        interfaces=["198.51.100.7"],
    )
    with pytest.raises(DiscoveryError) as caught:
        await peer.run(Sightings().on_found)
    assert str(caught.value) == "interface address 198.51.100.7 is not on this host"


async def test_socket_error_of_zeroconf_is_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError from zeroconf's socket setup surfaces as DiscoveryError, cause kept."""

    def refuse(**_: object) -> AsyncZeroconf:
        raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))

    monkeypatch.setattr(discovery, "AsyncZeroconf", refuse)
    with pytest.raises(DiscoveryError) as caught:
        await loopback_discovery(new_peer_id(), 40028).run(Sightings().on_found)
    assert str(caught.value) == "cannot open mDNS sockets: [Errno 98] Address already in use"
    assert isinstance(caught.value.__cause__, OSError)


async def test_no_interface_accepting_multicast_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    """When every multicast join is refused (as on WSL), run() fails instead of staying deaf."""
    monkeypatch.setattr(zeroconf_net, "add_multicast_member", lambda *_: False)
    fds_before = open_fds()
    peer = loopback_discovery(new_peer_id(), 40020)
    with pytest.raises(DiscoveryError) as caught:
        await peer.run(Sightings().on_found)
    assert str(caught.value) == "no usable mDNS interface on 127.0.0.1"
    assert open_fds() == fds_before


async def test_zeroconf_that_does_not_start_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zeroconf engine that never comes up is reported as a DiscoveryError, sockets closed."""

    async def never_started(self: Zeroconf, *_: object, **__: object) -> None:
        raise NotRunningException

    monkeypatch.setattr(Zeroconf, "async_wait_for_start", never_started)
    fds_before = open_fds()
    with pytest.raises(DiscoveryError) as caught:
        await loopback_discovery(new_peer_id(), 40021).run(Sightings().on_found)
    assert str(caught.value) == f"mDNS did not start within {discovery.STARTUP_TIMEOUT} s"
    assert open_fds() == fds_before


async def test_unresolvable_instance_is_skipped(
    logs: LogWatcher, raw_zeroconf: AsyncZeroconf
) -> None:
    """A pointer to an instance nobody answers for is logged after the resolve timeout."""
    peer = loopback_discovery(new_peer_id(), 40022, resolve_timeout=0.3)
    ghost = instance_name(new_peer_id())
    async with running((peer, Sightings())):
        await logs.wait_for(f"ignoring our own advertisement {peer.instance_name}")
        packet = DNSOutgoing(DNS_FLAGS_RESPONSE_AUTHORITATIVE)
        packet.add_answer_at_time(
            DNSPointer(SERVICE_TYPE, DNS_TYPE_PTR, DNS_CLASS_IN, 120, ghost), 0
        )
        raw_zeroconf.zeroconf.async_send(packet)
        await logs.wait_for(f"ignoring {ghost}: not resolved within 0.3 s")


async def test_failing_callback_ends_run_with_a_discovery_error(
    raw_zeroconf: AsyncZeroconf,
) -> None:
    """An exception from on_found stops discovery as a DiscoveryError the supervisor restarts."""
    other_id, protocol = new_peer_id(), private_protocol()
    txt = valid_txt(other_id, protocol_version=protocol)
    await register_raw(raw_zeroconf, raw_service(other_id, port=40023, properties=txt))

    def explode(peer: DiscoveredPeer) -> None:
        raise ValueError(f"cannot take {peer.peer_id}")

    peer = loopback_discovery(new_peer_id(), 40024, protocol_version=protocol)
    with pytest.raises(DiscoveryError) as caught:
        async with asyncio.timeout(WAIT_TIMEOUT):
            await peer.run(explode)
    assert str(caught.value) == f"discovery stopped: ValueError('cannot take {other_id}')"


async def test_tracked_peers_are_bounded_and_a_newcomer_is_still_reported(
    logs: LogWatcher, raw_zeroconf: AsyncZeroconf, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_TRACKED_PEERS, the instance reported longest ago is forgotten, not the new."""
    monkeypatch.setattr(discovery, "MAX_TRACKED_PEERS", 1)
    first_id, second_id, protocol = new_peer_id(), new_peer_id(), private_protocol()
    first_txt = valid_txt(first_id, protocol_version=protocol)
    await register_raw(raw_zeroconf, raw_service(first_id, port=40025, properties=first_txt))
    peer = loopback_discovery(new_peer_id(), 40026, protocol_version=protocol)
    seen = Sightings()
    async with running((peer, seen)):
        await seen.wait_for("the first peer", lambda: first_id in seen.found_ids())
        second_txt = valid_txt(second_id, protocol_version=protocol)
        await register_raw(raw_zeroconf, raw_service(second_id, port=40027, properties=second_txt))
        await seen.wait_for("the newcomer", lambda: second_id in seen.found_ids())
    assert (
        f"forgetting {instance_name(first_id)} to track {instance_name(second_id)}: "
        "already tracking 1 peers"
    ) in logs.messages


def test_advertised_addresses_leave_out_loopback_unless_it_is_all_there_is() -> None:
    """Remote peers are never handed 127.0.0.1 while the host has a LAN address."""
    assert advertisable_ipv4(["127.0.0.1", "192.168.1.5", "10.0.0.2"]) == [
        "10.0.0.2",
        "192.168.1.5",
    ]
    assert advertisable_ipv4(["127.0.0.1"]) == ["127.0.0.1"]
    assert advertisable_ipv4([]) == []
