"""Partial seeding's runtime bookkeeping without sockets: the sender, the provider and
what a running download offers its engine."""

from __future__ import annotations

from lanspread.core.bitfield import ChunkBitfield, PartialAvailability
from lanspread.core.engine import ManifestUnavailable, SourceOffered
from lanspread.core.manifest import (
    MIN_CHUNK_SIZE,
    ChunkDigest,
    FileManifest,
    GameManifest,
    manifest_digest,
)
from lanspread.core.partial import HaveDelta, partial_summary
from lanspread.runtime.swarming import (
    JOIN_ATTEMPTS,
    JOIN_RETRY_SECONDS,
    PartialSharing,
    SwarmView,
    join_complete,
)

CS = MIN_CHUNK_SIZE
PEER = "p" * 64
OTHER = "q" * 64


def file_of(path: str, size: int, salt: int = 0) -> FileManifest:
    chunks = tuple(
        ChunkDigest(offset, min(CS, size - offset), bytes([salt]) * 32)
        for offset in range(0, size, CS)
    )
    return FileManifest(path, size, chunks)


def manifest_of(salt: int = 0) -> GameManifest:
    files = (file_of("a.eti", 3 * CS, salt), file_of("version.ini", 3, salt))
    return GameManifest("quake3", "2.0", CS, files)


MANIFEST = manifest_of()
DIGEST = manifest_digest(MANIFEST)
PATHS = frozenset({"a.eti"})


def bits(*indexes: int) -> bytes:
    return ChunkBitfield.from_indexes(MANIFEST.chunk_count, indexes).to_bytes()


def announcing(peer_bits: tuple[int, ...]) -> tuple[PartialSharing, list[str]]:
    """A receiver that learned ``PEER`` holds ``peer_bits`` of MANIFEST, and its listener log."""
    sharing = PartialSharing(send_have=lambda delta: None)
    changed: list[str] = []
    sharing.add_listener(changed.append)
    partial = PartialAvailability.of(
        DIGEST, ChunkBitfield.from_indexes(MANIFEST.chunk_count, peer_bits)
    )
    summary = partial_summary("quake3", None, version="2.0", partial=partial)
    sharing.peer_library(PEER, [summary], authoritative=True)
    return sharing, changed


async def test_the_provider_serves_only_what_the_journal_committed_until_the_end() -> None:
    """begin announces the committed bitmap and serves it; durable widens it; end withdraws
    everything at once, and the batcher announces nothing more."""
    sent: list[HaveDelta] = []
    announced: list[tuple[str, str | None, PartialAvailability]] = []
    sharing = PartialSharing(send_have=sent.append)
    sharing.announce = lambda *partial: announced.append(partial)
    sharing.begin(MANIFEST, bits(0))
    verified = sharing.verified("quake3")
    assert verified is not None
    assert list(verified.durable.indexes()) == [0]
    assert announced == [("quake3", "2.0", PartialAvailability.of(DIGEST, verified.durable))]
    sharing.durable("quake3", bits(0, 2))
    verified = sharing.verified("quake3")
    assert verified is not None
    assert list(verified.durable.indexes()) == [0, 2]
    assert sharing.batcher.announced() == {"quake3": DIGEST}
    sharing.end("quake3")
    assert sharing.verified("quake3") is None
    assert sharing.batcher.announced() == {}
    sharing.close()


async def test_the_book_follows_handshakes_have_deltas_and_departures() -> None:
    """Every change of what a peer holds calls the listeners with the game."""
    sharing, changed = announcing((0,))
    assert changed == ["quake3"]
    assert sharing.peer_have(PEER, HaveDelta("quake3", DIGEST, (1,))) is None
    held = sharing.book.partial_of(PEER, "quake3")
    assert held is not None
    assert list(held.chunks.indexes()) == [0, 1]
    refusal = sharing.peer_have(OTHER, HaveDelta("quake3", DIGEST, (1,)))
    assert refusal is not None
    assert refusal.detail == f"peer {OTHER} announced no partial copy of quake3"
    sharing.peer_lost(PEER)
    assert sharing.book.partial_of(PEER, "quake3") is None
    assert changed == ["quake3", "quake3", "quake3"]


def test_a_download_is_offered_each_partial_holder_once_per_change() -> None:
    """The view offers a holder of the agreed manifest with the chunks it holds, again only
    when they change, and an empty map once its partial is gone (uncounted, not a loss)."""
    sharing, _ = announcing((0, 2))
    view = SwarmView()
    view.start(MANIFEST, ["seeder"])
    held = frozenset({("a.eti", 0), ("a.eti", 2 * CS)})
    assert view.offers(sharing.book) == [SourceOffered(PEER, PATHS, held)]
    assert view.is_partial(PEER)
    assert not view.is_partial("seeder")
    assert view.offers(sharing.book) == []
    sharing.peer_have(PEER, HaveDelta("quake3", DIGEST, (1,)))
    everything = held | {("a.eti", CS)}
    assert view.offers(sharing.book) == [SourceOffered(PEER, PATHS, everything)]
    sharing.peer_lost(PEER)
    assert view.offers(sharing.book) == [SourceOffered(PEER, PATHS, frozenset())]
    assert view.offers(sharing.book) == []


def test_a_holder_of_another_manifest_is_never_offered() -> None:
    """Partial copies of another manifest of the game are not sources of this download."""
    sharing, _ = announcing((0,))
    view = SwarmView()
    view.start(manifest_of(salt=1), ["seeder"])
    assert view.offers(sharing.book) == []


def test_a_complete_peer_joins_once_its_manifest_is_the_agreed_one() -> None:
    """A new complete peer is asked once; the agreed manifest makes it a source of every
    file (no longer partial), another manifest never, and no answer lets it be asked again."""
    sharing, _ = announcing((0,))
    view = SwarmView()
    view.start(MANIFEST, ["seeder"])
    view.offers(sharing.book)
    assert view.new_complete(["seeder", PEER, OTHER]) == [PEER, OTHER]
    assert view.new_complete([PEER, OTHER]) == []
    assert view.complete_joined(PEER, MANIFEST) == SourceOffered(PEER, PATHS)
    assert not view.is_partial(PEER)
    assert view.complete_joined(OTHER, manifest_of(salt=1)) is None
    assert view.new_complete([OTHER]) == []
    late = "r" * 64
    assert view.new_complete([late]) == [late]
    assert view.complete_joined(late, ManifestUnavailable("timed out")) is None
    assert view.new_complete([late]) == [late]


class Describer:
    """A peer that answers "busy" ``busy`` times, then with ``manifest``; sleeps recorded."""

    def __init__(self, busy: int, manifest: GameManifest) -> None:
        self.busy = busy
        self.manifest = manifest
        self.asked = 0
        self.slept: list[float] = []

    async def describe(self, peer: str) -> GameManifest | ManifestUnavailable:
        self.asked += 1
        if self.asked <= self.busy:
            return ManifestUnavailable(f"{peer} is busy here; retry later")
        return self.manifest

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_a_peer_that_just_finished_is_asked_again_until_it_describes_the_game() -> None:
    """A peer offering the game while still taking its own copy in answers "busy": it is
    asked again every JOIN_RETRY_SECONDS and joins as a complete source once it answers."""
    view = SwarmView()
    view.start(MANIFEST, ["seeder"])
    assert view.new_complete([PEER]) == [PEER]
    peer = Describer(busy=3, manifest=MANIFEST)
    offer = await join_complete(view, PEER, peer.describe, peer.sleep)
    assert offer == SourceOffered(PEER, PATHS)
    assert peer.asked == 4
    assert peer.slept == [JOIN_RETRY_SECONDS] * 3


async def test_a_peer_that_never_describes_the_game_is_given_up_after_the_attempts() -> None:
    """After JOIN_ATTEMPTS answers without a manifest the peer is left until the next
    change of availability (it may be asked again then); another manifest is no source."""
    view = SwarmView()
    view.start(MANIFEST, ["seeder"])
    view.new_complete([PEER, OTHER])
    silent = Describer(busy=JOIN_ATTEMPTS, manifest=MANIFEST)
    assert await join_complete(view, PEER, silent.describe, silent.sleep) is None
    assert silent.asked == JOIN_ATTEMPTS
    assert view.new_complete([PEER]) == [PEER]
    other = Describer(busy=0, manifest=manifest_of(salt=1))
    assert await join_complete(view, OTHER, other.describe, other.sleep) is None
    assert other.slept == []
