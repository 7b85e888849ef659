"""The namespace harness itself: reachability, mDNS, fault injection and complete teardown."""

from __future__ import annotations

import asyncio
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.jsonl_process import CommandFailed, JsonlProcess, process_state
from tests.support.netns import (
    LOCK_DIR,
    Host,
    NetnsError,
    Network,
    NetworkFactory,
    deafen_to_mdns,
    list_namespaces,
    namespace_identity,
    pids_in,
    sweep_stale,
)
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = REPO_ROOT / "tests" / "support" / "mdns_probe.py"
SERVICE_TYPE = "_lanspread-probe._tcp.local."

# A run that dies without closing its network: argv[1] is "reaper" or "no-reaper",
# argv[2] the log folder. It prints its prefix and the pid of a process it left
# running in a namespace, then SIGKILLs itself.
CRASHING_RUN = """
import asyncio, os, signal, sys
from pathlib import Path
from tests.support.netns import Network

async def main() -> None:
    network = Network(["a", "b"], log_dir=Path(sys.argv[2]), reaper=sys.argv[1] == "reaper")
    await network.start()
    sleeper = await network.spawn(network.hosts[0], ["sleep", "600"])
    print(network.prefix, sleeper.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def python_lines(*lines: str) -> list[str]:
    """argv of a host-side child that prints ``lines`` to stdout and exits."""
    return [sys.executable, "-c", f"print({chr(10).join(lines)!r})"]


async def start_on_host(argv: list[str], tmp_path: Path, name: str = "child") -> JsonlProcess:
    return await JsonlProcess.start(argv, name=name, stderr_path=tmp_path / f"{name}.stderr")


async def start_probe(network: Network, host: Host, interfaces: str = "all") -> JsonlProcess:
    """An mDNS probe in ``host``, started with the venv's python; returns once it is ready."""
    probe = await network.spawn(
        host, [sys.executable, str(PROBE), "--interfaces", interfaces], name=f"probe-{host.name}"
    )
    await probe.wait_for("ready")
    return probe


def root_interfaces() -> set[str]:
    return {name for _index, name in socket.if_nameindex()}


def lock_file(prefix: str) -> Path:
    """The lock file of the run named ``lsn-<token>-``."""
    return LOCK_DIR / f"{prefix.removeprefix('lsn-').removesuffix('-')}.lock"


def is_gone(pid: int) -> bool:
    """Dead: reaped, or a zombie waiting for an init that does not reap."""
    return process_state(pid) in (None, "Z")


@dataclass
class RunSnapshot:
    """What a run had while it was up, to prove afterwards that none of it is left."""

    prefix: str
    namespaces: tuple[str, ...]
    identities: set[tuple[int, int]]
    pids: list[int]
    root_interfaces: set[str]

    @classmethod
    def of(cls, network: Network, interfaces_before: set[str]) -> RunSnapshot:
        identities = {namespace_identity(name) for name in network.namespaces}
        assert None not in identities, f"missing namespaces of {network.prefix}"
        known = {identity for identity in identities if identity is not None}
        return cls(network.prefix, network.namespaces, known, pids_in(known), interfaces_before)

    def assert_nothing_left(self) -> None:
        assert self.pids, "the snapshot must have seen processes to prove they are gone"
        assert not [name for name in list_namespaces() if name.startswith(self.prefix)]
        assert pids_in(self.identities) == []
        assert [pid for pid in self.pids if not is_gone(pid)] == []
        assert root_interfaces() == self.root_interfaces
        assert not lock_file(self.prefix).exists()


async def test_two_hosts_reach_each_other(network_factory: NetworkFactory) -> None:
    """Two namespaces get .1 and .2 on one bridge and answer each other's ICMP echo."""
    before = root_interfaces()
    network = await network_factory(2)
    first, second = network.hosts
    assert (first.address, second.address) == ("10.213.0.1", "10.213.0.2")
    assert set(network.namespaces) <= set(list_namespaces())
    assert await network.ping(first, [second.address]) == {second.address}
    assert await network.ping(second, [first.address]) == {first.address}
    assert root_interfaces() == before, "the harness must create nothing in the root namespace"


async def test_five_hosts_reach_each_other(network_factory: NetworkFactory) -> None:
    """In a five-host network every host answers every other host."""
    network = await network_factory(5)
    addresses = {host.address for host in network.hosts}
    answers = await asyncio.gather(
        *(network.ping(host, addresses - {host.address}) for host in network.hosts)
    )
    for host, answered in zip(network.hosts, answers, strict=True):
        assert answered == addresses - {host.address}, host.name


@pytest.mark.parametrize("interfaces", ["all", "veth-address"])
async def test_mdns_service_is_discovered_across_the_bridge(
    network_factory: NetworkFactory, interfaces: str
) -> None:
    """A zeroconf service registered in one namespace is browsed and resolved from another.

    Both interface choices the docstring of ``tests.support.netns`` recommends
    work: ``InterfaceChoice.All`` and the veth address alone.
    """
    network = await network_factory(["alpha", "bravo"])
    alpha, bravo = network.hosts

    def choice(host: Host) -> str:
        return "all" if interfaces == "all" else host.address

    advertiser = await start_probe(network, alpha, choice(alpha))
    browser = await start_probe(network, bravo, choice(bravo))
    registered = await advertiser.request(
        {"cmd": "register", "name": "alpha", "address": alpha.address, "port": 4000}
    )
    assert registered["registered"] == f"alpha.{SERVICE_TYPE}"
    await browser.request({"cmd": "browse"})
    found = await browser.wait_for({"event": "service-found", "name": f"alpha.{SERVICE_TYPE}"})
    assert (found["addresses"], found["port"]) == ([alpha.address], 4000)
    assert await advertiser.close() == 0
    assert await browser.close() == 0


async def test_a_deafened_host_is_heard_but_hears_no_mdns(network_factory: NetworkFactory) -> None:
    """deafen_to_mdns drops every mDNS packet to a host, unicast answers too, and nothing else.

    bravo is deafened and browses first, alpha and charlie after it. Both find the
    two others' services (bravo's announcements and answers still go out); bravo,
    whose queries had longer to be answered than charlie's, has found no other's,
    and it still answers pings.
    """
    network = await network_factory(["alpha", "bravo", "charlie"])
    alpha, bravo, charlie = network.hosts
    await deafen_to_mdns(network, bravo)
    probes = [await start_probe(network, host) for host in network.hosts]
    for host, probe in zip(network.hosts, probes, strict=True):
        await probe.request(
            {"cmd": "register", "name": host.name, "address": host.address, "port": 4000}
        )
    deaf = probes[1]
    for probe in (deaf, probes[0], probes[2]):
        await probe.request({"cmd": "browse"})
    for probe, others in ((probes[0], (bravo, charlie)), (probes[2], (alpha, bravo))):
        for other in others:
            await probe.wait_for({"event": "service-found", "name": f"{other.name}.{SERVICE_TYPE}"})
    heard = {event["name"] for event in deaf.events if event["event"] == "service-found"}
    assert heard <= {f"bravo.{SERVICE_TYPE}"}  # its own service, from its own cache
    assert await network.ping(bravo, {alpha.address}) == {alpha.address}


async def test_cut_link_isolates_a_host_until_restored(network_factory: NetworkFactory) -> None:
    """cut_link silences one host (others still talk); restore_link brings it back."""
    network = await network_factory(3)
    first, second, third = network.hosts
    await network.cut_link(first)
    assert await network.ping(first, [second.address], timeout=0.3) == frozenset()
    assert await network.ping(second, [first.address], timeout=0.3) == frozenset()
    assert await network.ping(second, [third.address]) == {third.address}
    await network.restore_link(first)
    assert await network.ping(first, [second.address, third.address]) == {
        second.address,
        third.address,
    }


async def test_freeze_thaw_and_kill_a_jsonl_process(network_factory: NetworkFactory) -> None:
    """A frozen probe answers nothing, answers late once thawed, and SIGKILL ends it."""
    network = await network_factory(1)
    probe = await start_probe(network, network.hosts[0])
    assert (await probe.request({"cmd": "ping"}))["pong"] is True

    await network.freeze(probe)
    assert process_state(probe.pid) == "T"
    with pytest.raises(AssertionError, match=r"timed out after 0\.3s waiting for the answer to"):
        await probe.request({"cmd": "ping", "id": "late"}, timeout=0.3)

    await network.thaw(probe)
    assert process_state(probe.pid) != "T"
    late = await probe.wait_for({"event": "reply", "id": "late"})
    assert late["pong"] is True
    assert (await probe.request({"cmd": "ping"}))["pong"] is True

    pid = probe.pid
    assert await network.kill(probe) == -9
    assert is_gone(pid)


async def test_request_error_raises_command_failed(
    network_factory: NetworkFactory,
) -> None:
    """An ``error`` event answering a request raises CommandFailed carrying that event."""
    network = await network_factory(1)
    probe = await start_probe(network, network.hosts[0])
    with pytest.raises(CommandFailed) as failure:
        await probe.request({"cmd": "bogus", "id": 7})
    assert failure.value.event == {
        "event": "error",
        "id": 7,
        "message": "ValueError: unknown command 'bogus'",
    }
    assert failure.value.command == {"cmd": "bogus", "id": 7}


async def test_timeout_report_names_the_wait_and_shows_events_and_stderr(
    network_factory: NetworkFactory,
) -> None:
    """A timed-out wait names what it awaited, the recent events and the stderr tail."""
    network = await network_factory(1)
    probe = await start_probe(network, network.hosts[0])
    with pytest.raises(AssertionError) as failure:
        await probe.wait_for("never-sent", timeout=0.2)
    message = str(failure.value)
    assert f"probe-h1 (pid {probe.pid}, running): timed out after 0.2s" in message
    assert "waiting for event 'never-sent'" in message
    assert '"event": "ready"' in message
    assert "probe ready on interfaces all" in message


async def test_wait_for_takes_each_event_once_in_any_order(tmp_path: Path) -> None:
    """Waiting for B before A finds both; waiting twice for a name gets both occurrences."""
    child = await start_on_host(
        python_lines('{"event": "a", "n": 1}', '{"event": "b"}', '{"event": "a", "n": 2}'),
        tmp_path,
    )
    assert await child.wait_for("b") == {"event": "b"}
    assert (await child.wait_for("a"))["n"] == 1
    assert (await child.wait_for("a"))["n"] == 2
    assert [event["event"] for event in child.events] == ["a", "b", "a"]
    assert await child.close() == 0


async def test_wait_for_fails_when_the_child_exits(tmp_path: Path) -> None:
    """Waiting on a child that exits without the event fails at once with its status."""
    child = await start_on_host(python_lines('{"event": "hello"}'), tmp_path)
    await child.wait_for("hello")
    with pytest.raises(AssertionError, match=r"exited \(status 0\) while waiting for event 'more'"):
        await child.wait_for("more", timeout=10)
    with pytest.raises(AssertionError, match=r"cannot send .* stdin is closed"):
        await child.send({"cmd": "anything"})
    assert await child.close() == 0


async def test_non_event_stdout_line_is_a_protocol_violation(tmp_path: Path) -> None:
    """A stdout line that is not a JSON event fails the next wait and is quoted."""
    child = await start_on_host(python_lines("debug print", '{"event": "x"}'), tmp_path)
    with pytest.raises(AssertionError) as failure:
        await child.wait_for("x")
    assert "protocol violation waiting for event 'x'" in str(failure.value)
    assert "not a JSON event line: debug print" in str(failure.value)
    await child.close()


async def test_close_kills_a_child_that_ignores_end_of_input(tmp_path: Path) -> None:
    """close() gives the child its timeout after closing stdin, then SIGKILLs it."""
    child = await start_on_host(["sleep", "600"], tmp_path)
    assert await child.close(timeout=0.2) == -9


async def populate_run(network: Network, stray_in: Host) -> RunSnapshot:
    """Start a probe and a stray background process, snapshot the run; caller closes it."""
    await start_probe(network, network.hosts[0])
    await network.run(stray_in, ["sh", "-c", "sleep 600 >/dev/null 2>&1 &"])
    return RunSnapshot.of(network, root_interfaces())


async def test_teardown_leaves_no_namespace_veth_or_process(
    netns_ready: list[str], tmp_path: Path
) -> None:
    """After close: no namespace of the run, no process in it, no root interface, no lock."""
    async with Network(2, log_dir=tmp_path) as network:
        snapshot = await populate_run(network, network.hosts[1])
        assert len(snapshot.pids) == 2, "the probe and the stray sleep"
    snapshot.assert_nothing_left()


async def test_teardown_after_a_failure_leaves_nothing(
    netns_ready: list[str], tmp_path: Path
) -> None:
    """An exception inside ``async with Network`` still tears everything down."""
    snapshots: list[RunSnapshot] = []

    async def fail_inside_a_network() -> None:
        async with Network(2, log_dir=tmp_path) as network:
            snapshots.append(await populate_run(network, network.hosts[0]))
            raise RuntimeError("simulated test failure")

    with pytest.raises(RuntimeError, match=r"^simulated test failure$"):
        await fail_inside_a_network()
    snapshots[0].assert_nothing_left()


async def crash_a_run(tmp_path: Path, *, reaper: bool) -> tuple[str, int]:
    """Run CRASHING_RUN; return its prefix and the pid it left in a namespace."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_RUN,
        "reaper" if reaper else "no-reaper",
        str(tmp_path),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    assert child.returncode == -9
    prefix, pid = out.decode().split()
    return prefix, int(pid)


def namespaces_of(prefix: str) -> list[str]:
    return [name for name in list_namespaces() if name.startswith(prefix)]


async def test_reaper_cleans_up_a_killed_run(netns_ready: list[str], tmp_path: Path) -> None:
    """When the test process is SIGKILLed, its reaper deletes the namespaces and processes."""
    prefix, sleeper = await crash_a_run(tmp_path, reaper=True)
    # The reaper deletes the namespaces, then the processes' lock: wait for all of it.
    await wait_until(
        lambda: not namespaces_of(prefix) and is_gone(sleeper) and not lock_file(prefix).exists(),
        f"the reaper to remove {prefix}* and its lock",
        timeout=5,
    )


async def test_sweep_stale_removes_a_crashed_run_and_spares_live_ones(
    network_factory: NetworkFactory, tmp_path: Path
) -> None:
    """sweep_stale deletes a dead run's namespaces and kills its processes, not a live run's."""
    live = await network_factory(1)
    prefix, sleeper = await crash_a_run(tmp_path, reaper=False)
    crashed = namespaces_of(prefix)
    assert crashed == [f"{prefix}a", f"{prefix}b", f"{prefix}sw"]
    assert not is_gone(sleeper)

    removed = sweep_stale()

    assert set(crashed) <= set(removed)
    assert not set(live.namespaces) & set(removed)
    assert all(name.startswith("lsn-") for name in removed)
    assert namespaces_of(prefix) == []
    assert is_gone(sleeper)
    assert set(live.namespaces) <= set(list_namespaces())
    assert await live.ping(live.hosts[0], [live.hosts[0].address]) == {live.hosts[0].address}


async def test_run_reports_failure_and_timeout(network_factory: NetworkFactory) -> None:
    """run() returns output, and fails naming the command on a bad status or a hang."""
    network = await network_factory(1)
    host = network.hosts[0]
    result = await network.run(host, ["ip", "-brief", "address", "show", "eth0"])
    assert "10.213.0.1/24" in result.stdout
    with pytest.raises(AssertionError, match=r"^\['false'\] in h1 exited with 1\n"):
        await network.run(host, ["false"])
    assert (await network.run(host, ["false"], check=False)).returncode == 1
    with pytest.raises(
        AssertionError, match=r"^\['sleep', '600'\] in h1 did not finish within 0.2s$"
    ):
        await network.run(host, ["sleep", "600"], timeout=0.2)


async def test_failed_setup_leaves_nothing(netns_ready: list[str], tmp_path: Path) -> None:
    """If ``ip`` fails halfway through setup, start() raises and removes what it made."""
    network = Network(3, log_dir=tmp_path)
    clash = network.hosts[1].namespace
    # A namespace of the same name makes "netns add" fail after the switch and h1.
    adding = await asyncio.create_subprocess_exec("ip", "netns", "add", clash)
    assert await adding.wait() == 0
    with pytest.raises(NetnsError, match=rf"^ip -batch - failed \(1\): .*{clash}"):
        await network.start()
    assert namespaces_of(network.prefix) == []
    assert not lock_file(network.prefix).exists()


async def test_fault_injection_on_an_unknown_host_fails_clearly(
    network_factory: NetworkFactory,
) -> None:
    """cut_link on a host that is not in the network raises NetnsError naming the port."""
    network = await network_factory(1)
    ghost = Host("ghost", 9, f"{network.prefix}ghost", "10.213.0.9")
    with pytest.raises(NetnsError, match=r'Cannot find device "v9"'):
        await network.cut_link(ghost)
    with pytest.raises(KeyError, match="no host 'ghost' in this network"):
        network.host("ghost")


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        (0, "a network has 1 to 254 hosts, not 0"),
        (["sw"], "host name 'sw' must be 1-12 lowercase letters or digits"),
        (["Alpha"], "host name 'Alpha' must be 1-12 lowercase letters or digits"),
        (["a", "a"], r"host names must be unique: \['a', 'a'\]"),
    ],
)
def test_bad_host_lists_are_refused(hosts: int | list[str], message: str) -> None:
    """Host lists that would make clashing or invalid names are refused before any setup."""
    with pytest.raises(ValueError, match=message):
        Network(hosts)
