"""The wire meter: progress before the first chunk lands, and the rate over wire bytes."""

from __future__ import annotations

from dataclasses import dataclass

from lanspread.core.progress import ProgressSnapshot
from lanspread.runtime.wire import WireMeter

MiB = 1024 * 1024


@dataclass(eq=False)
class FakeConnection:
    """A data connection that only counts what it received."""

    bytes_received: int = 0


def snapshot(downloaded: int, total: int) -> ProgressSnapshot:
    return ProgressSnapshot(downloaded, total, 0.0, None)


def test_bytes_in_flight_show_before_the_first_chunk_is_verified() -> None:
    """With 3 MiB received of a chunk not yet verified, the event says 0 verified and
    3 MiB in flight, and a rate above zero."""
    meter = WireMeter()
    connection = FakeConnection()
    meter.opened(connection)
    meter.progress("quake3", snapshot(0, 64 * MiB), verified=0, now=0.0)
    connection.bytes_received = 3 * MiB
    event = meter.progress("quake3", snapshot(0, 64 * MiB), verified=0, now=1.0)
    assert (event.downloaded_bytes, event.in_flight_bytes) == (0, 3 * MiB)
    assert event.bytes_per_second == 3 * MiB
    assert event.eta_seconds == (61 * MiB) / (3 * MiB)


def test_verified_bytes_leave_the_flight_and_closed_connections_still_count() -> None:
    """Bytes of verified chunks are no longer in flight; a closed connection's bytes
    stay in the total, and in flight never passes what is left to download."""
    meter = WireMeter()
    first, second = FakeConnection(), FakeConnection()
    meter.opened(first)
    meter.opened(second)
    first.bytes_received = 16 * MiB
    second.bytes_received = 2 * MiB
    meter.closed(first)
    event = meter.progress("quake3", snapshot(16 * MiB, 32 * MiB), verified=16 * MiB, now=0.0)
    assert (meter.received, event.in_flight_bytes) == (18 * MiB, 2 * MiB)
    second.bytes_received = 40 * MiB
    event = meter.progress("quake3", snapshot(16 * MiB, 32 * MiB), verified=16 * MiB, now=1.0)
    assert event.in_flight_bytes == 16 * MiB
    assert event.eta_seconds == 0.0
