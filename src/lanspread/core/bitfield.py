"""Chunk bitfields and the partial availability a downloading peer announces.

Theory of operation
-------------------
A peer that is downloading a game serves the chunks it has verified and made
durable. It says which ones with a **bitfield** over the chunks of the agreed
manifest, indexed in manifest order: files in the manifest's (sorted) path order,
each file's chunks in offset order, so chunk ``i`` of the game is the ``i``-th
``(path, offset)`` pair (the order of ``core.planning.manifest_tasks`` and of the
download journal's ``done`` bitmap). Bit ``i`` lives in byte ``i // 8`` at
``1 << (i % 8)``: the journal's layout, so a committed journal bitmap is a
bitfield as it stands. A bitfield of ``n`` chunks is exactly ``ceil(n / 8)``
bytes and every bit past ``n - 1`` is zero; anything else is refused
(:class:`BitfieldError`), so two equal bitfields always have equal bytes and a
stranger cannot make us hold more than the manifest's chunk count allows.

:class:`PartialAvailability` is what the library announcement carries for such a
game (``GameSummary.partial``): the manifest digest the chunks belong to, the
manifest's chunk count and the bitfield. The decoder checks the shape
(:data:`MAX_BITFIELD_BYTES`, the exact length, zero padding); whether the chunk
count agrees with the manifest is checked where the manifest is known
(:meth:`ChunkBitfield.from_bytes` with the manifest's count, or
``core.partial.AvailabilityBook.holders``).

This module imports nothing else of lanspread's core: the library carries these
types, and ``core.manifest`` (which the library's types are imported by) takes its
chunk count bound from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Final

import msgspec

from lanspread.errors import ProtocolError

# One bit per chunk of the largest manifest a peer may send: this is
# core.manifest.MAX_CHUNKS_PER_GAME (defined here because core.manifest imports the
# library, which carries bitfields; core.manifest takes its bound from this value).
MAX_BITFIELD_CHUNKS: Final = 65_536
# The bytes of a bitfield over MAX_BITFIELD_CHUNKS chunks: 8 KiB.
MAX_BITFIELD_BYTES: Final = (MAX_BITFIELD_CHUNKS + 7) // 8
MANIFEST_DIGEST_HEX_LENGTH: Final = 64
"""Hex characters of a manifest digest (BLAKE3, 32 bytes; ``core.manifest.manifest_digest``)."""

ManifestDigest = Annotated[
    str, msgspec.Meta(pattern=rf"^[0-9a-f]{{{MANIFEST_DIGEST_HEX_LENGTH}}}$")
]
"""The hex BLAKE3 digest of a manifest's canonical encoding."""
ChunkCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_BITFIELD_CHUNKS)]


class BitfieldError(ProtocolError):
    """A bitfield, or a chunk index, does not fit the chunk count it claims to cover."""


def bitfield_size(chunk_count: int) -> int:
    """The exact byte length of a bitfield over ``chunk_count`` chunks."""
    return (chunk_count + 7) // 8


@dataclass(frozen=True, slots=True)
class ChunkBitfield:
    """An immutable set of chunk indexes below ``chunk_count``, stored as one integer.

    Build one with :meth:`empty`, :meth:`from_bytes` or :meth:`from_indexes`; the
    constructor trusts its arguments.
    """

    chunk_count: int
    bits: int
    """Bit ``i`` set iff chunk ``i`` is held (little-endian: the wire's byte order)."""

    @classmethod
    def empty(cls, chunk_count: int) -> ChunkBitfield:
        _check_count(chunk_count)
        return cls(chunk_count, 0)

    @classmethod
    def from_bytes(cls, data: bytes, chunk_count: int) -> ChunkBitfield:
        """Decode ``data`` as a bitfield over exactly ``chunk_count`` chunks."""
        _check_count(chunk_count)
        expected = bitfield_size(chunk_count)
        if len(data) != expected:
            raise BitfieldError(
                f"a bitfield of {len(data)} bytes does not cover {chunk_count} chunks "
                f"(expected {expected} bytes)"
            )
        bits = int.from_bytes(data, "little")
        if bits >> chunk_count:
            raise BitfieldError(f"a bitfield over {chunk_count} chunks sets a bit past the last")
        return cls(chunk_count, bits)

    @classmethod
    def from_indexes(cls, chunk_count: int, indexes: Iterable[int]) -> ChunkBitfield:
        return cls.empty(chunk_count).with_indexes(indexes)

    def to_bytes(self) -> bytes:
        return self.bits.to_bytes(bitfield_size(self.chunk_count), "little")

    def with_indexes(self, indexes: Iterable[int]) -> ChunkBitfield:
        """This set plus ``indexes``; :class:`BitfieldError` for one out of range."""
        # Setting bits in bytes, not in the integer: each integer operation copies
        # the whole bitfield, which made thousands of indexes cost milliseconds.
        data = bytearray(self.to_bytes())
        for index in indexes:
            data[self._checked(index) >> 3] |= 1 << (index & 7)
        return ChunkBitfield(self.chunk_count, int.from_bytes(data, "little"))

    def union(self, other: ChunkBitfield) -> ChunkBitfield:
        if other.chunk_count != self.chunk_count:
            raise BitfieldError(
                f"cannot join bitfields over {self.chunk_count} and {other.chunk_count} chunks"
            )
        return ChunkBitfield(self.chunk_count, self.bits | other.bits)

    def without(self, other: ChunkBitfield) -> ChunkBitfield:
        """The chunks held here but not in ``other`` (which covers the same count)."""
        return ChunkBitfield(self.chunk_count, self.bits & ~other.bits)

    def covers(self, first: int, last: int) -> bool:
        """True iff every chunk from ``first`` to ``last`` (inclusive) is held."""
        if not 0 <= first <= last < self.chunk_count:
            return False
        span = last - first + 1
        mask = ((1 << span) - 1) << first
        return self.bits & mask == mask

    def __contains__(self, index: object) -> bool:
        return (
            isinstance(index, int)
            and 0 <= index < self.chunk_count
            and bool(self.bits >> index & 1)
        )

    def indexes(self) -> Iterator[int]:
        """The held chunk indexes, ascending."""
        for position, byte in enumerate(self.to_bytes()):
            if byte:
                base = position * 8
                yield from (base + bit for bit in range(8) if byte >> bit & 1)

    @property
    def held(self) -> int:
        """How many chunks are held."""
        return self.bits.bit_count()

    @property
    def complete(self) -> bool:
        return self.held == self.chunk_count

    def _checked(self, index: int) -> int:
        if not 0 <= index < self.chunk_count:
            raise BitfieldError(
                f"chunk index {index} is outside a manifest of {self.chunk_count} chunks"
            )
        return index


def _check_count(chunk_count: int) -> None:
    if not 0 <= chunk_count <= MAX_BITFIELD_CHUNKS:
        raise BitfieldError(f"a chunk count of {chunk_count} is outside [0, {MAX_BITFIELD_CHUNKS}]")


class PartialAvailability(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The verified, durable chunks of a game a peer is downloading (``GameSummary.partial``).

    The game's ``version`` is the summary's; the chunks belong to the manifest with
    ``manifest_digest`` and to nothing else.
    """

    manifest_digest: ManifestDigest
    chunk_count: ChunkCount
    """The manifest's chunk count; a holder checks it against the manifest it agreed."""
    bitfield: Annotated[bytes, msgspec.Meta(max_length=MAX_BITFIELD_BYTES)]
    """Exactly ``ceil(chunk_count / 8)`` bytes, zero past the last chunk (see the module
    docstring)."""

    def __post_init__(self) -> None:
        # Raised during decoding, msgspec reports this as a validation error naming the
        # field's place; the frame decoder turns that into a ProtocolError.
        try:
            ChunkBitfield.from_bytes(self.bitfield, self.chunk_count)
        except BitfieldError as exc:
            raise ValueError(str(exc)) from exc

    @classmethod
    def of(cls, manifest_digest: str, chunks: ChunkBitfield) -> PartialAvailability:
        return cls(
            manifest_digest=manifest_digest,
            chunk_count=chunks.chunk_count,
            bitfield=chunks.to_bytes(),
        )

    @property
    def chunks(self) -> ChunkBitfield:
        """The decoded bitfield (validated when this value was built)."""
        return ChunkBitfield(self.chunk_count, int.from_bytes(self.bitfield, "little"))
