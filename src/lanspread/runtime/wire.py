"""What a download's progress says between chunks: bytes on the wire and a steady rate.

The engine counts a chunk when it is verified; with 16 MiB chunks on a slow link
the card would say 0% and 0 B/s for a minute. :class:`WireMeter` adds what the
download's data connections have received and written but not yet verified (in
flight), and measures the rate over those wire bytes with the long
:data:`~lanspread.core.progress.WIRE_RATE_WINDOW`, so it neither waits for a chunk
nor flips between a value and 0.
"""

from __future__ import annotations

from typing import Protocol

from lanspread.core.progress import WIRE_RATE_WINDOW, ProgressSnapshot, SmoothedRate
from lanspread.runtime.events import DownloadProgress


class Receiving(Protocol):
    """A data connection as the meter reads it (a DataConnection)."""

    @property
    def bytes_received(self) -> int: ...


class WireMeter:
    """Bytes received over every data connection of one download, open and closed."""

    def __init__(self) -> None:
        self._open: set[Receiving] = set()
        self._closed_bytes = 0
        self._rate = SmoothedRate(WIRE_RATE_WINDOW)

    def opened(self, connection: Receiving) -> None:
        self._open.add(connection)

    def closed(self, connection: Receiving) -> None:
        if connection in self._open:
            self._open.remove(connection)
            self._closed_bytes += connection.bytes_received

    @property
    def received(self) -> int:
        """Chunk bytes received and written this run, verified or not."""
        return self._closed_bytes + sum(c.bytes_received for c in self._open)

    def progress(
        self, game_id: str, snapshot: ProgressSnapshot, verified: int, now: float
    ) -> DownloadProgress:
        """The progress event of ``snapshot``, with the bytes in flight (received beyond
        the ``verified`` bytes of chunks this run) and the wire rate."""
        received = self.received
        rate = self._rate.sample(now, received)
        in_flight = min(
            max(0, received - verified), snapshot.total_bytes - snapshot.downloaded_bytes
        )
        remaining = snapshot.total_bytes - snapshot.downloaded_bytes - in_flight
        eta = 0.0 if remaining <= 0 else (remaining / rate if rate > 0 else None)
        return DownloadProgress(
            game=game_id,
            downloaded_bytes=snapshot.downloaded_bytes,
            total_bytes=snapshot.total_bytes,
            bytes_per_second=rate,
            eta_seconds=eta,
            in_flight_bytes=in_flight,
        )
