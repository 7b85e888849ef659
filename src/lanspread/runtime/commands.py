"""Typed commands a :class:`~lanspread.runtime.PeerRuntime` accepts.

Each command is a ``msgspec.Struct`` tagged with its JSON Lines name, so the peer
CLI turns ``{"cmd": "connect", "addr": "10.0.0.2:7878"}`` into ``Connect(addr=...)``
with one ``msgspec.convert`` and gets a precise error for a missing or mistyped
field.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# Paths and addresses typed by a person; far above any real value.
MAX_PATH_LENGTH = 4096
MAX_ADDR_LENGTH = 300

GameIdArg = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
"""A game id as a caller typed it; the runtime checks it against the catalog."""


class Command(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="cmd"):
    """Base of every command."""


class Status(Command, frozen=True, tag="status"):
    """This peer's identity, addresses, game directory and counts."""


class ListGames(Command, frozen=True, tag="list-games"):
    """Every catalog game with its local state and what peers offer."""


class ListPeers(Command, frozen=True, tag="list-peers"):
    """The peers currently known, with their addresses and games."""


class Connect(Command, frozen=True, tag="connect"):
    """Dial a peer directly (for networks where multicast is blocked)."""

    addr: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ADDR_LENGTH)]


class SetGameDir(Command, frozen=True, tag="set-game-dir"):
    """Switch to another game directory; refused while operations run."""

    path: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PATH_LENGTH)]


class Shutdown(Command, frozen=True, tag="shutdown"):
    """Say goodbye to every peer and stop."""


class Download(Command, frozen=True, tag="download"):
    """Download (or resume downloading) a game from the peers that have its newest version."""

    game: GameIdArg


class Cancel(Command, frozen=True, tag="cancel"):
    """Stop a running download, or discard a paused one."""

    game: GameIdArg


class Update(Command, frozen=True, tag="update"):
    """Fetch the newest version from the peers advertising it, then install it."""

    game: GameIdArg


class Install(Command, frozen=True, tag="install"):
    """Extract a downloaded game into ``local/``."""

    game: GameIdArg


class Uninstall(Command, frozen=True, tag="uninstall"):
    """Delete ``local/`` only; the downloaded archives stay."""

    game: GameIdArg
    keep_saves: bool = False
    """Leave the player's own files (saves, mods, edited configs) in ``local/``."""
    dry_run: bool = False
    """Only report what the uninstall would delete and keep."""


class Verify(Command, frozen=True, tag="verify"):
    """Compare ``local/`` with its install record: changed, missing and added files."""

    game: GameIdArg


class Repair(Command, frozen=True, tag="repair"):
    """Re-extract the installed game, keeping the player's files (edited ones as ``.mine``)."""

    game: GameIdArg


class Remove(Command, frozen=True, tag="remove"):
    """Delete the files of a downloaded game that is not installed."""

    game: GameIdArg


class Play(Command, frozen=True, tag="play"):
    """Start the installed game's executable."""

    game: GameIdArg


AnyCommand = (
    Status
    | ListGames
    | ListPeers
    | Connect
    | SetGameDir
    | Shutdown
    | Download
    | Cancel
    | Update
    | Install
    | Uninstall
    | Verify
    | Repair
    | Remove
    | Play
)
