"""Chunk bitfields and partial availability: layout, bounds and the decoder's checks."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.partials import DIGEST, partial

from lanspread.core.bitfield import (
    MAX_BITFIELD_BYTES,
    MAX_BITFIELD_CHUNKS,
    BitfieldError,
    ChunkBitfield,
    PartialAvailability,
    bitfield_size,
)
from lanspread.core.manifest import MAX_CHUNKS_PER_GAME
from lanspread.errors import ProtocolError


@st.composite
def bitfields(draw: st.DrawFn) -> ChunkBitfield:
    count = draw(st.integers(min_value=0, max_value=300))
    held = draw(st.sets(st.integers(min_value=0, max_value=count - 1))) if count else set()
    return ChunkBitfield.from_indexes(count, held)


def test_the_bound_is_the_manifest_chunk_limit() -> None:
    """A bitfield covers at most the manifest's chunk bound, in 8 KiB."""
    assert MAX_BITFIELD_CHUNKS == MAX_CHUNKS_PER_GAME == 65_536
    assert MAX_BITFIELD_BYTES == 8192


def test_layout_is_the_journal_layout() -> None:
    """Bit i sits in byte i // 8 at 1 << (i % 8), like the download journal's done bitmap."""
    chunks = ChunkBitfield.from_indexes(19, [0, 9, 18])
    assert chunks.to_bytes() == bytes([0b0000_0001, 0b0000_0010, 0b0000_0100])
    assert bitfield_size(19) == 3
    assert ChunkBitfield.empty(0).to_bytes() == b""


@given(bitfields())
def test_bytes_round_trip(chunks: ChunkBitfield) -> None:
    """Decoding the encoding gives the same set, and the bytes are exactly ceil(n / 8) long."""
    data = chunks.to_bytes()
    assert len(data) == bitfield_size(chunks.chunk_count)
    assert ChunkBitfield.from_bytes(data, chunks.chunk_count) == chunks
    assert list(chunks.indexes()) == sorted(chunks.indexes())
    assert ChunkBitfield.from_indexes(chunks.chunk_count, chunks.indexes()) == chunks


@given(bitfields(), st.data())
def test_covers_is_every_index_held(chunks: ChunkBitfield, data: st.DataObject) -> None:
    """covers(first, last) holds iff every index of the inclusive span is held."""
    if not chunks.chunk_count:
        assert not chunks.covers(0, 0)
        return
    first = data.draw(st.integers(min_value=0, max_value=chunks.chunk_count - 1))
    last = data.draw(st.integers(min_value=first, max_value=chunks.chunk_count - 1))
    assert chunks.covers(first, last) == all(i in chunks for i in range(first, last + 1))


def test_set_operations() -> None:
    """Union joins, without subtracts, held and complete count, membership is bounded."""
    a = ChunkBitfield.from_indexes(4, [0, 1])
    b = ChunkBitfield.from_indexes(4, [1, 3])
    assert list(a.union(b).indexes()) == [0, 1, 3]
    assert list(a.without(b).indexes()) == [0]
    assert a.union(b).held == 3
    assert not a.complete
    assert ChunkBitfield.from_indexes(4, range(4)).complete
    assert 4 not in a
    assert -1 not in a
    assert not a.covers(1, 4)


def test_wrong_length_is_refused() -> None:
    """A bitfield whose length disagrees with the manifest's chunk count is refused."""
    with pytest.raises(BitfieldError) as caught:
        ChunkBitfield.from_bytes(bytes(3), 8)
    assert str(caught.value) == "a bitfield of 3 bytes does not cover 8 chunks (expected 1 bytes)"
    assert isinstance(caught.value, ProtocolError)


def test_bits_past_the_last_chunk_are_refused() -> None:
    """Padding bits must be zero, so equal sets always have equal bytes."""
    with pytest.raises(BitfieldError, match=r"^a bitfield over 9 chunks sets a bit past the last$"):
        ChunkBitfield.from_bytes(bytes([0, 0b10]), 9)


@pytest.mark.parametrize("count", [-1, MAX_BITFIELD_CHUNKS + 1])
def test_chunk_count_is_bounded(count: int) -> None:
    """No bitfield covers a negative count or more chunks than a manifest may have."""
    with pytest.raises(BitfieldError, match=rf"^a chunk count of {count} is outside \[0, 65536\]$"):
        ChunkBitfield.empty(count)


@pytest.mark.parametrize("index", [-1, 8])
def test_index_out_of_range_is_refused(index: int) -> None:
    """An index outside the chunk count is refused, not silently grown into."""
    with pytest.raises(
        BitfieldError, match=rf"^chunk index {index} is outside a manifest of 8 chunks$"
    ):
        ChunkBitfield.empty(8).with_indexes([index])


def test_union_of_different_counts_is_refused() -> None:
    """Bitfields over different manifests cannot be joined."""
    with pytest.raises(BitfieldError, match=r"^cannot join bitfields over 8 and 9 chunks$"):
        ChunkBitfield.empty(8).union(ChunkBitfield.empty(9))


def test_partial_availability_round_trips() -> None:
    """A partial availability encodes its digest, count and bytes, and decodes to its chunks."""
    value = partial(10, [0, 9])
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(value), type=PartialAvailability)
    assert decoded == value
    assert list(decoded.chunks.indexes()) == [0, 9]
    assert decoded.bitfield == bytes([1, 2])


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (
            {"manifest_digest": DIGEST, "chunk_count": 8, "bitfield": bytes(2)},
            "a bitfield of 2 bytes does not cover 8 chunks (expected 1 bytes)",
        ),
        (
            {"manifest_digest": DIGEST, "chunk_count": 3, "bitfield": b"\x08"},
            "a bitfield over 3 chunks sets a bit past the last",
        ),
    ],
    ids=["wrong-length", "padding-bits"],
)
def test_decoding_refuses_mis_sized_bitfields(raw: dict[str, object], error: str) -> None:
    """A bitfield whose length or padding disagrees with its chunk count fails at decode."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.msgpack.decode(msgspec.msgpack.encode(raw), type=PartialAvailability)
    assert str(caught.value) == error


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (
            {
                "manifest_digest": DIGEST,
                "chunk_count": 8,
                "bitfield": bytes(MAX_BITFIELD_BYTES + 1),
            },
            "$.bitfield",
        ),
        (
            {"manifest_digest": DIGEST, "chunk_count": MAX_BITFIELD_CHUNKS + 1, "bitfield": b""},
            "$.chunk_count",
        ),
        ({"manifest_digest": "D" * 64, "chunk_count": 0, "bitfield": b""}, "$.manifest_digest"),
    ],
    ids=["oversized-bitfield", "too-many-chunks", "bad-digest"],
)
def test_decoding_refuses_out_of_bound_fields(raw: dict[str, object], where: str) -> None:
    """An oversized bitfield, a chunk count past the bound or a bad digest fail at decode."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.msgpack.decode(msgspec.msgpack.encode(raw), type=PartialAvailability)
    assert str(caught.value).endswith(f" - at `{where}`")
