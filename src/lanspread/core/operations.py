"""The operation table: at most one active disk-mutating operation per game.

An operation owns its game root while it runs: watcher events for the game are
dropped, scans keep the game's previous summary, the serve gate refuses its files
and a second command for the same game is refused with
:class:`~lanspread.errors.OperationInProgress`. The only allowed change of kind
is the download-to-install handoff (``DOWNLOADING`` to ``INSTALLING`` or
``UPDATING``), made explicitly with :meth:`OperationTable.handoff`.

One operation leaves its root as it is: an update downloading *beside* the old
version (into its staged root, :mod:`lanspread.files.staging`). Marked with
:meth:`OperationTable.beside`, its game stays served (:meth:`OperationTable.root_busy`
leaves it out) until the handoff to its install, which clears the mark.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from lanspread.errors import InvalidGameState, OperationInProgress


class OperationKind(enum.Enum):
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    UPDATING = "updating"
    UNINSTALLING = "uninstalling"
    REMOVING = "removing"


_HANDOFFS = {
    OperationKind.DOWNLOADING: frozenset({OperationKind.INSTALLING, OperationKind.UPDATING}),
}


class OperationTable:
    def __init__(self) -> None:
        self._active: dict[str, OperationKind] = {}
        self._beside: set[str] = set()

    def begin(self, game_id: str, kind: OperationKind) -> None:
        current = self._active.get(game_id)
        if current is not None:
            raise OperationInProgress(f"{game_id} is busy: {current.value}")
        self._active[game_id] = kind

    def handoff(self, game_id: str, to: OperationKind) -> None:
        current = self._active.get(game_id)
        if current is None or to not in _HANDOFFS.get(current, frozenset()):
            shown = current.value if current else "idle"
            raise InvalidGameState(f"{game_id} cannot go from {shown} to {to.value}")
        self._active[game_id] = to
        self._beside.discard(game_id)

    def beside(self, game_id: str) -> None:
        """The game's running download writes beside its root, which stays served."""
        if game_id not in self._active:
            raise InvalidGameState(f"{game_id} has no operation to run beside its files")
        self._beside.add(game_id)

    def root_busy(self) -> frozenset[str]:
        """The games whose root an operation owns now (the serve gate refuses them)."""
        return frozenset(self._active) - self._beside

    def end(self, game_id: str) -> OperationKind | None:
        """Clear the game's operation; returns what it was (``None`` if idle)."""
        self._beside.discard(game_id)
        return self._active.pop(game_id, None)

    def get(self, game_id: str) -> OperationKind | None:
        return self._active.get(game_id)

    def is_active(self, game_id: str) -> bool:
        return game_id in self._active

    def snapshot(self) -> Mapping[str, OperationKind]:
        return MappingProxyType(dict(self._active))
