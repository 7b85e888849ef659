"""Peer addresses as people and peers write them, and where mDNS runs.

``HOST:PORT`` with an IPv6 host in brackets (``[fe80::1]:7878``), the form of
``listen_addr``, ``PeerView.addr`` and the ``connect`` command.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from lanspread.errors import ConfigError
from lanspread.runtime.options import RuntimeOptions


def format_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_addr(text: str) -> tuple[str, int]:
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"{text!r} is not a HOST:PORT address")
    return host, int(port_text)


def mdns_interfaces(options: RuntimeOptions) -> tuple[str, ...] | None:
    """Where to run mDNS: the configured interfaces, else the listen address when the
    peer listens on one specific IPv4 address (nobody could reach it elsewhere), else
    every interface (``None``)."""
    if options.mdns_interfaces is not None:
        return options.mdns_interfaces
    try:
        address = ipaddress.ip_address(options.listen_host)
    except ValueError:
        return None
    if address.version == 4 and not address.is_unspecified:
        return (options.listen_host,)
    return None


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


# A documentation address (RFC 5737): "connecting" a UDP socket to it sends nothing,
# and the kernel picks the interface of the default route, the one the LAN sees.
_ROUTE_PROBE = ("192.0.2.1", 9)


def lan_host() -> str | None:
    """This machine's IPv4 address on its default route; ``None`` without a route."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_ROUTE_PROBE)
            host = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if is_wildcard(host) else host


def shown_addr(listen_addr: str, lan: Callable[[], str | None] = lan_host) -> str:
    """The address other players reach this peer at: a wildcard listen address
    (``0.0.0.0:7878``) as the LAN address with the same port, anything else as it is."""
    host, port = parse_addr(listen_addr)
    if not is_wildcard(host):
        return listen_addr
    found = lan()
    return format_addr(found, port) if found is not None else listen_addr
