"""Peer addresses as people and peers write them, and where mDNS runs.

``HOST:PORT`` with an IPv6 host in brackets (``[fe80::1]:7878``), the form of
``listen_addr``, ``PeerView.addr`` and the ``connect`` command.
"""

from __future__ import annotations

import ipaddress

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
