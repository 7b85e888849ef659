"""The pure parts of the fan-out benchmark (bench/fanout.py): ideals, options, read-outs."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from bench import fanout
from tests.support.fixtures import VERSION_FILE, FixtureGame, sideload

MiB = 1024 * 1024
# 100 Mbit/s: the benchmark's default rate, in bits per second.
RATE = 100e6


def test_seeder_only_time_is_every_copy_through_one_upload() -> None:
    """Client-server: four copies of 200 MiB over a 100 Mbit/s upload take 4 x 16.78 s."""
    assert fanout.seeder_only_seconds(200 * MiB, 4, RATE) == pytest.approx(67.108864)


def test_swarm_ideal_is_one_download_when_every_link_is_alike() -> None:
    """With the same rate everywhere, N copies over N + 1 uploads never outlast the one
    download every peer must make, so the ideal is size / rate for any N."""
    for downloaders in range(1, 65):
        ideal = fanout.swarm_ideal_seconds(200 * MiB, downloaders, RATE)
        assert ideal == pytest.approx(16.777216)


def test_archives_split_a_game_evenly_under_the_bound() -> None:
    """200 MiB becomes four archives of 50 MiB; an odd size spreads its remainder; a
    game smaller than the bound is one archive; an empty game is refused."""
    assert fanout.archive_sizes(200 * MiB) == (50 * MiB,) * 4
    assert fanout.archive_sizes(10, largest=4) == (4, 3, 3)
    assert fanout.archive_sizes(3 * MiB) == (3 * MiB,)
    with pytest.raises(ValueError, match="a game holds at least one byte, not 0"):
        fanout.archive_sizes(0)


def test_written_game_has_the_fixture_generators_bytes(tmp_path: Path) -> None:
    """Writing the game one archive at a time gives the bytes the fixture generator
    gives for the whole game at once."""
    game = FixtureGame("fanout", "1.0", (("part00.eti", 3000), ("part01.eti", 2000)))
    written = fanout.write_game(tmp_path / "bench", game)
    whole = sideload(tmp_path / "whole", game)
    for name in ("part00.eti", "part01.eti", VERSION_FILE):
        assert (written / name).read_bytes() == (whole / name).read_bytes(), name


def test_options_default_to_four_peers_of_200_mib_at_100_mbit() -> None:
    """No options: 4 downloaders, 200 MiB, 100 Mbit/s, the plain scenario at 0.5."""
    config = fanout.parse_config([])
    assert (config.peers, config.size_bytes, config.rate_bps) == (4, 200 * MiB, RATE)
    assert (config.scenario, config.at, config.verify) == (fanout.Scenario.PLAIN, 0.5, True)
    assert (config.downloaders, config.odd_one) == (["d1", "d2", "d3", "d4"], "d4")


def test_options_choose_a_scenario() -> None:
    """--late-joiner and --kill pick their scenario and --at its moment."""
    late = fanout.parse_config(["--peers", "8", "--late-joiner", "--at", "0.25"])
    assert (late.peers, late.scenario, late.at, late.odd_one) == (
        8,
        fanout.Scenario.LATE_JOINER,
        0.25,
        "d8",
    )
    killed = fanout.parse_config(["--kill", "--size-mib", "64", "--rate-mbit", "150"])
    assert (killed.scenario, killed.size_bytes, killed.rate_bps) == (
        fanout.Scenario.KILL,
        64 * MiB,
        150e6,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--peers", "0"], "--peers must be 1 to 32, not 0"),
        (["--peers", "33"], "--peers must be 1 to 32, not 33"),
        (["--peers", "1", "--kill"], "--late-joiner and --kill need at least 2 downloaders"),
        (["--size-mib", "0"], "--size-mib must be at least 1, not 0"),
        (["--rate-mbit", "0.5"], "--rate-mbit must be 1 to 10000, not 0.5"),
        (["--at", "1"], "1 is not between 0 and 1 (exclusive)"),
    ],
)
def test_bad_options_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each out-of-range option exits with a usage error naming the value."""
    with pytest.raises(SystemExit) as exited:
        fanout.parse_config(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(message)


def test_process_cpu_ticks_are_utime_plus_stime() -> None:
    """Fields 14 and 15 of /proc/<pid>/stat, even when the command name holds spaces
    and parentheses."""
    stat = "4242 (python3 (x) y) S 1 2 3 4 5 6 7 8 9 10 120 35 0 0 20 0 3 0 999 1 2"
    assert fanout.cpu_ticks(stat) == 155


def test_machine_ticks_count_idle_and_iowait_as_not_busy() -> None:
    """Of user nice system idle iowait irq softirq steal, idle and iowait are not busy;
    softirq is told apart; a window is the difference of two readings."""
    stat = "cpu  100 5 50 800 40 1 2 3 0 0\ncpu0 50 2 25 400 20 0 1 1 0 0\n"
    assert fanout.machine_ticks(stat) == fanout.MachineTicks(busy=161, softirq=2, total=1001)
    later = fanout.machine_ticks("cpu  110 5 60 900 40 1 7 3 0 0\n")
    assert later - fanout.machine_ticks(stat) == fanout.MachineTicks(25, 5, 125)


def test_interface_bytes_read_received_and_transmitted() -> None:
    """Bytes received and transmitted per interface of a /proc/net/dev listing."""
    net_dev = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets"
        " errs drop fifo colls carrier compressed\n"
        "    lo:       0       0    0    0    0     0          0         0        0       0"
        "    0    0    0     0       0          0\n"
        "    v1:    1099      12    0    0    0     0          0         0   209716      90"
        "    0    0    0     0       0          0\n"
    )
    assert fanout.interface_bytes(net_dev) == {"lo": (0, 0), "v1": (1099, 209716)}


def test_tbf_argv_shapes_one_device_of_one_namespace() -> None:
    """The tc command replaces the device's root qdisc with a tbf at the rate in bit/s."""
    assert fanout.tbf_argv("lsn-abc123-sw", "v3", 150e6) == [
        *("tc", "-netns", "lsn-abc123-sw", "qdisc", "replace", "dev", "v3", "root", "tbf"),
        *("rate", "150000000bit", "burst", fanout.TBF_BURST, "latency", fanout.TBF_LATENCY),
    ]


def test_check_copy_names_a_file_that_differs(tmp_path: Path) -> None:
    """The byte-for-byte check passes a copy and names the first file that differs."""
    game = FixtureGame("fanout", "1.0", (("part00.eti", 100),))
    source = sideload(tmp_path / "seed", game)
    copy = sideload(tmp_path / "copy", game)
    fanout.check_copy(source, copy)
    (copy / "part00.eti").write_bytes(hashlib.sha256(b"other").digest())
    expected = f"{copy / 'part00.eti'} differs from the seeder's {source / 'part00.eti'}"
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        fanout.check_copy(source, copy)


def test_sweep_removes_only_work_folders_no_live_run_holds(tmp_path: Path) -> None:
    """A killed run's folder (prefix and a lock nobody holds) goes; a live run's folder,
    a prefixed folder without a lock and any other folder stay."""
    stale = tmp_path / f"{fanout.WORKDIR_PREFIX}dead"
    (stale / "seed").mkdir(parents=True)
    (stale / fanout.OWNER_LOCK).touch()
    unproven = tmp_path / f"{fanout.WORKDIR_PREFIX}nolock"
    unproven.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    (other / fanout.OWNER_LOCK).touch()
    live, fd = fanout.claim_workdir(tmp_path)
    try:
        assert fanout.sweep_stale_workdirs(tmp_path) == [stale]
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
            [live.name, unproven.name, other.name]
        )
    finally:
        os.close(fd)
    assert fanout.sweep_stale_workdirs(tmp_path) == [live]
