"""Start options of a :class:`~lanspread.runtime.PeerRuntime`."""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass, field
from pathlib import Path

from lanspread.core.catalog import Catalog
from lanspread.core.uploads import DEFAULT_GAMING_CAP, UNLIMITED
from lanspread.runtime.local_library import DEFAULT_FALLBACK_SCAN_INTERVAL

DEFAULT_LISTEN_PORT = 0
"""Any free port: mDNS tells peers where we listen."""

MAX_DISPLAY_NAME_LENGTH = 64


class InstallPolicy(enum.Enum):
    """Whether a finished download is installed right away."""

    AUTO = "auto"
    MANUAL = "manual"


def default_display_name() -> str:
    return socket.gethostname()[:MAX_DISPLAY_NAME_LENGTH] or "lanspread"


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    game_dir: Path
    state_dir: Path
    catalog: Catalog
    name: str = field(default_factory=default_display_name)
    listen_host: str = "0.0.0.0"
    listen_port: int = DEFAULT_LISTEN_PORT
    mdns: bool = True
    """Announce and browse with mDNS; tests that only use direct connects turn it off."""
    mdns_interfaces: tuple[str, ...] | None = None
    """Addresses to run mDNS on; ``None`` means every interface."""
    fallback_scan_interval: float = DEFAULT_FALLBACK_SCAN_INTERVAL
    ping_interval: float = 2.0
    peer_timeout: float = 10.0
    """A peer that has not answered for this long is dropped with ``PeerLost``."""
    goodbye_timeout: float = 2.0
    restart_delay: float = 5.0
    install_policy: InstallPolicy = InstallPolicy.AUTO
    chunk_size: int | None = None
    """Chunk size of the manifests this peer computes for the games it serves; ``None``:
    the one each game's size calls for (``core.manifest.chunk_size_for``), as every peer."""
    party_code: str | None = None
    """The canonical party code (``core.party.parse_party_code``); ``None``: no party."""
    upload_limit: int = UNLIMITED
    """Upload bytes a second in all (0: unlimited)."""
    gaming_upload_cap: int = DEFAULT_GAMING_CAP
    """Upload bytes a second while a game launched here runs (0: no cap)."""
