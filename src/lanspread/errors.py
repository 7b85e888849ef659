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
    ├── ArchiveLibraryMissing   libarchive cannot be loaded (says how to get it on this OS)
    ├── RuntimeUnavailable      the runtime is starting, failed or stopped (web UI)
    └── BadRequest              a front end got a request it cannot read (local misuse)
        ├── InvalidJson             the body or line is not JSON at all
        └── InvalidCommand          not a command object, or a missing, mistyped or unknown field
            └── UnknownCommand          no command of that name on this front end

Local misuse (``OperationError``) is kept apart from remote violations
(``ProtocolError``), and an orderly close (``ConnectionClosed``) apart from a broken
one (``TransportError``). Third-party exceptions are translated at the edge with
``raise ... from exc`` and never leak through the public API.

Codes
-----
:data:`PUBLIC_CODES` gives every class of the tree the stable code string the
front ends report (the peer CLI's ``error`` event, the web API's
``{"ok": false, "error": {"code": ...}}``) and the web API's HTTP status. Both
front ends map an exception with :func:`public_code` only, so they cannot
disagree; a subclass defined elsewhere reports its nearest ancestor's code, and
anything that is no :class:`LanspreadError` is ``internal-error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


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

    reason: str | None = None
    """The stable code of the lifecycle rule that refused the command
    (:class:`lanspread.core.lifecycle.Refusal`), when one did."""

    def __init__(self, *args: object, reason: str | None = None) -> None:
        super().__init__(*args)
        self.reason = reason


class UnknownGame(OperationError):
    """The game id is not in the catalog (or is not a valid id at all)."""


class OperationInProgress(OperationError):
    """The game already has an active operation."""


class InvalidGameState(OperationError):
    """The game's files are not in a state that allows the command."""


class SelfConnect(OperationError):
    """A direct connect reached this very peer."""


class ProgramChanged(OperationError):
    """Play of an unpinned version whose program changed since the last play: the
    message is the question for the player (``play`` with ``run_unpinned`` answers yes)."""


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


class RuntimeUnavailable(LanspreadError):
    """The runtime is starting, failed or stopped; commands wait for a restart."""


class BadRequest(LanspreadError):
    """A front end got a request it cannot read (the web API's body, a peer CLI line)."""


class InvalidJson(BadRequest):
    """The request is not JSON at all (or a peer CLI line is over its bound)."""


class InvalidCommand(BadRequest):
    """The request is JSON but no well-formed command: not an object, or a field is
    missing, mistyped or unknown."""


class UnknownCommand(InvalidCommand):
    """No command of that name is offered on this front end."""


@dataclass(frozen=True, slots=True)
class PublicCode:
    """How the front ends report one class of error."""

    code: str
    """The stable code string (``error`` events, web API error bodies)."""
    http_status: int
    """The web API's status for it."""


PUBLIC_CODES: Mapping[type[LanspreadError], PublicCode] = MappingProxyType(
    {
        LanspreadError: PublicCode("error", 500),
        CatalogError: PublicCode("catalog-error", 400),
        ConfigError: PublicCode("config-error", 400),
        AlreadyRunning: PublicCode("already-running", 409),
        OperationError: PublicCode("operation-error", 409),
        UnknownGame: PublicCode("unknown-game", 404),
        OperationInProgress: PublicCode("operation-in-progress", 409),
        InvalidGameState: PublicCode("invalid-state", 409),
        SelfConnect: PublicCode("self-connect", 409),
        ProgramChanged: PublicCode("program-changed", 409),
        StorageError: PublicCode("storage-error", 500),
        IntentLogCorrupt: PublicCode("storage-error", 500),
        InstallRecordCorrupt: PublicCode("storage-error", 500),
        ProtocolError: PublicCode("protocol-error", 502),
        FrameTooLarge: PublicCode("protocol-error", 502),
        VersionMismatch: PublicCode("protocol-error", 502),
        PeerRefused: PublicCode("peer-refused", 502),
        PeerIdMismatch: PublicCode("peer-id-mismatch", 502),
        ConnectionClosed: PublicCode("connection-closed", 502),
        TransportError: PublicCode("connect-failed", 502),
        DiscoveryError: PublicCode("discovery-error", 500),
        PartyError: PublicCode("party-error", 400),
        ArchiveLibraryMissing: PublicCode("archive-library-missing", 500),
        RuntimeUnavailable: PublicCode("runtime-unavailable", 503),
        BadRequest: PublicCode("invalid-request", 400),
        InvalidJson: PublicCode("invalid-json", 400),
        InvalidCommand: PublicCode("invalid-command", 400),
        UnknownCommand: PublicCode("unknown-command", 400),
    }
)
"""Every class of the tree above, with its code and HTTP status."""

INTERNAL_ERROR = PublicCode("internal-error", 500)
"""Anything that is no :class:`LanspreadError`: a bug, reported without a trace."""


def public_code(exc: BaseException) -> PublicCode:
    """The code of ``exc``'s class, or of its nearest ancestor in :data:`PUBLIC_CODES`."""
    for kind in type(exc).__mro__:
        found = PUBLIC_CODES.get(kind)
        if found is not None:
            return found
    return INTERNAL_ERROR
