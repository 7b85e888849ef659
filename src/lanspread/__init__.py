"""lanspread: peer-to-peer game sharing for LAN parties.

The Python API is :class:`PeerRuntime`: start it with :class:`RuntimeOptions`,
send typed commands with :meth:`PeerRuntime.execute`, iterate typed events from
:meth:`PeerRuntime.subscribe`, stop it with :meth:`PeerRuntime.shutdown` and
:meth:`PeerRuntime.wait_stopped`. The desktop app and ``lanspread peer-cli`` are
thin layers over it.
"""

from typing import TYPE_CHECKING

from lanspread._version import __version__
from lanspread.core.catalog import Catalog, CatalogGame
from lanspread.errors import (
    CatalogError,
    ConfigError,
    ConnectionClosed,
    InvalidGameState,
    LanspreadError,
    OperationError,
    OperationInProgress,
    PeerRefused,
    ProtocolError,
    SelfConnect,
    StorageError,
    TransportError,
    UnknownGame,
    VersionMismatch,
)
from lanspread.runtime import commands, events
from lanspread.runtime.options import InstallPolicy, RuntimeOptions
from lanspread.storage.catalog_file import load_bundled_catalog, load_catalog

if TYPE_CHECKING:
    from lanspread.runtime.runtime import PeerRuntime

__all__ = [
    "Catalog",
    "CatalogError",
    "CatalogGame",
    "ConfigError",
    "ConnectionClosed",
    "InstallPolicy",
    "InvalidGameState",
    "LanspreadError",
    "OperationError",
    "OperationInProgress",
    "PeerRefused",
    "PeerRuntime",
    "ProtocolError",
    "RuntimeOptions",
    "SelfConnect",
    "StorageError",
    "TransportError",
    "UnknownGame",
    "VersionMismatch",
    "__version__",
    "commands",
    "events",
    "load_bundled_catalog",
    "load_catalog",
]


def __getattr__(name: str) -> object:
    # PeerRuntime brings the installer and so libarchive: it is imported on first
    # use, so that importing lanspread (as the command does first) never fails on a
    # system without libarchive, and the command can say how to install it.
    if name == "PeerRuntime":
        from lanspread.runtime.runtime import PeerRuntime

        return PeerRuntime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
