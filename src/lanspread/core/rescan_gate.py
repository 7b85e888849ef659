"""Per-game rescan gate: a burst of change notices costs at most one extra rescan.

For each game the gate is idle, scanning, or scanning with one rescan pending.
A notice while idle starts a scan; notices while scanning only mark the pending
flag; when the scan finishes, a pending flag starts exactly one more scan.
"""

from __future__ import annotations


class RescanGate:
    def __init__(self) -> None:
        self._scanning: set[str] = set()
        self._pending: set[str] = set()

    def notice(self, game_id: str) -> bool:
        """Record a change; True when the caller should start a scan now."""
        if game_id in self._scanning:
            self._pending.add(game_id)
            return False
        self._scanning.add(game_id)
        return True

    def finished(self, game_id: str) -> bool:
        """Record a finished scan; True when the caller should scan once more."""
        if game_id in self._pending:
            self._pending.discard(game_id)
            return True
        self._scanning.discard(game_id)
        return False

    def forget(self, game_id: str) -> None:
        """Drop all state for a game (its scans were abandoned)."""
        self._scanning.discard(game_id)
        self._pending.discard(game_id)

    def is_scanning(self, game_id: str) -> bool:
        return game_id in self._scanning
