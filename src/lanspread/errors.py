"""The one exception tree of lanspread.

::

    LanspreadError
    ├── CatalogError            a catalog file is malformed (names file, entry and field)
    ├── ConfigError             a start option is unusable (game dir, state dir, listen address)
    │   └── AlreadyRunning          another instance holds the state folder
    ├── OperationError          a local command cannot run as asked (local misuse)
    │   ├── UnknownGame             the id is not in the catalog
    │   ├── OperationInProgress     the game already has an active operation
    │   ├── InvalidGameState        the game is not in a state that allows the command
    │   └── SelfConnect             a direct connect reached this very peer
    ├── StorageError            the disk refused (full, permissions, vanished paths)
    │   ├── IntentLogCorrupt        a game root's install intent log cannot be read
    │   └── InstallRecordCorrupt    a game root's install record cannot be read
    ├── ProtocolError           a remote peer broke the wire protocol (remote violation)
    │   ├── FrameTooLarge           a frame header announced more than the maximum
    │   └── VersionMismatch         the peer speaks another PROTOCOL_VERSION
    ├── PeerRefused             a remote peer answered a request with a typed error
    ├── PeerIdMismatch          the peer at an address is not the peer id we dialed
    ├── ConnectionClosed        the other side closed the connection in an orderly way
    ├── TransportError          the connection broke (reset, TLS failure, timeout)
    ├── DiscoveryError          mDNS discovery cannot run (no usable interface, duplicate peer id)
    ├── PartyError              a party code, party key or signed catalog is unusable
    │   └── CatalogRefused          (core.party) wrong key, bad signature or older serial
    └── ArchiveLibraryMissing   libarchive cannot be loaded (says how to get it on this OS)

Local misuse (``OperationError``) is kept apart from remote violations
(``ProtocolError``), and an orderly close (``ConnectionClosed``) apart from a broken
one (``TransportError``). Third-party exceptions are translated at the edge with
``raise ... from exc`` and never leak through the public API.
"""

from __future__ import annotations


class LanspreadError(Exception):
    """Base of every error lanspread raises on purpose."""


class CatalogError(LanspreadError):
    """A catalog file is malformed; the message names the file, entry and field."""


class ConfigError(LanspreadError):
    """A start option cannot be used."""


class AlreadyRunning(ConfigError):
    """Another lanspread instance runs with the same state folder."""


class OperationError(LanspreadError):
    """A local command cannot be carried out as asked."""

    code = "operation-error"

    def __init__(self, *args: object, reason: str | None = None) -> None:
        super().__init__(*args)
        self.reason = reason
        """The stable code of the lifecycle rule that refused the command
        (:class:`lanspread.core.lifecycle.Refusal`), when one did."""


class UnknownGame(OperationError):
    """The game id is not in the catalog (or is not a valid id at all)."""

    code = "unknown-game"


class OperationInProgress(OperationError):
    """The game already has an active operation."""

    code = "operation-in-progress"


class InvalidGameState(OperationError):
    """The game's files are not in a state that allows the command."""

    code = "invalid-state"


class SelfConnect(OperationError):
    """A direct connect reached this very peer."""

    code = "self-connect"


class StorageError(LanspreadError):
    """The filesystem refused an operation (disk full, permissions, vanished paths)."""


class IntentLogCorrupt(StorageError):
    """A game root's ``.lanspread.json`` is malformed, foreign or of another format."""


class InstallRecordCorrupt(StorageError):
    """A game root's install record exists but cannot be trusted."""


class ProtocolError(LanspreadError):
    """A remote peer sent something the wire protocol does not allow."""


class FrameTooLarge(ProtocolError):
    """A frame header announced a payload larger than the maximum frame size."""


class VersionMismatch(ProtocolError):
    """The remote peer speaks another protocol version."""


class PeerRefused(LanspreadError):
    """A remote peer answered a request with a typed error response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PeerIdMismatch(LanspreadError):
    """The listener's certificate proves another peer id than the one we dialed."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected peer {expected}, but the certificate proves peer {actual}")
        self.expected = expected
        self.actual = actual


class ConnectionClosed(LanspreadError):
    """The other side closed the connection in an orderly way."""


class TransportError(LanspreadError):
    """The connection broke: reset, TLS failure or timeout."""


class DiscoveryError(LanspreadError):
    """mDNS discovery cannot run: no usable interface, sockets refused, or our peer id taken."""


class ArchiveLibraryMissing(LanspreadError):
    """The libarchive shared library cannot be loaded; the message says how to get it."""


class PartyError(LanspreadError):
    """A party code, party key or signed party catalog is unusable."""
