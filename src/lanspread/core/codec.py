"""Decoding a MessagePack document a stranger sent, within a size bound.

Manifests and signed party catalogs arrive from peers; each is refused unread
above its size limit and refused with the caller's own error when malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

T = TypeVar("T")


def decode_bounded(
    decoder: msgspec.msgpack.Decoder[T],
    data: bytes | bytearray | memoryview,
    *,
    limit: int,
    what: str,
    error: Callable[[str], Exception],
) -> T:
    """``data`` decoded; ``error`` says ``<what> of N bytes exceeds the limit of <limit>``
    or ``malformed <what>: ...``."""
    if len(data) > limit:
        raise error(f"{what} of {len(data)} bytes exceeds the limit of {limit}")
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise error(f"malformed {what}: {exc}") from exc
