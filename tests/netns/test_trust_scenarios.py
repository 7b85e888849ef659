"""Lying peer processes against an honest download (S91-S94).

The liar is a real peer-cli in its own namespace whose data server is patched
(``tests/support/patched_peer.py``): it announces, hands out manifests and
tickets and passes the serve gate like anyone, and only the bytes it sends lie.
cs16 is four archives, one chunk each, and the planner gives each source at
least one of them, so the liar is always asked for something; its
``lie-served`` events say what. In S93 the liar is an unpatched peer offering a
"newer version" of its own making at a party whose organizer pinned the real one;
in S94 two of them offer a 1.0 of their own and outnumber the honest peer.
Scenario ids: ``SCENARIOS.md``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lanspread.core.manifest import manifest_digest
from lanspread.core.party import PartyCatalog, Pin, party_code, public_key_bytes, sign_catalog
from lanspread.files.hashing import hash_game_payload
from lanspread.storage import party_files
from tests.netns.transfer_lan import (
    CHUNK,
    CS16,
    QUAKE3,
    BuildLan,
    Lan,
    Peer,
    of_game,
    payload_manifest,
)
from tests.support.archives import ArchiveFormat
from tests.support.fixtures import ArchiveSpec
from tests.support.patched_peer import TRICKLE_RATE

# The whole download with a trickler among the sources. The honest source alone
# takes about a second here; any archive chunk the trickler is asked for (256 KiB
# or more) would take it over two minutes at TRICKLE_RATE.
TRICKLE_BOUND = 15.0
REMOVE_ENDINGS = frozenset({"remove-finished", "remove-failed"})
KiB = 1024
# What the liar of S93 announces: a valid, installable quake3 "9.9", newer than
# anything the organizer pinned, with a program of its own.
LIARS_GAME = ArchiveSpec(
    "game.eti",
    ArchiveFormat.TAR,
    (("baseq3/pak0.pk3", 256 * KiB),),
    programs=(("quake3.exe", b"#!/bin/sh\necho owned\n"),),
    seed="liar",
)
FAKE_QUAKE3 = QUAKE3.with_version("9.9", LIARS_GAME)
# What the Sybils of S94 offer: quake3 1.0, the pinned version, with the liar's archive.
SYBIL_QUAKE3 = QUAKE3.with_version(QUAKE3.version, LIARS_GAME)


def lies(peer: Peer) -> list[dict[str, object]]:
    """The chunks the lying ``peer`` started to serve, oldest first."""
    return [event for event in peer.process.events if event.get("event") == "lie-served"]


async def honest_and_liar(lan: Lan, lie: str) -> tuple[Peer, Peer, Peer]:
    """A receiver, an honest source of cs16 and a lying one, the receiver seeing both."""
    receiver, honest = await lan.start([("h1", ()), ("h2", (CS16,))])
    liar = await lan.spawn(lan.host("h3"), (CS16,), name="liar", lie=lie)
    await liar.started()
    await lan.ready_to_fetch(receiver, [honest, liar], CS16)
    return receiver, honest, liar


async def test_a_peer_serving_corrupt_bytes_is_caught_and_never_asked_again(
    build_lan: BuildLan,
) -> None:
    """S91: a peer whose sender flips a byte of every chunk is excluded for the game.

    The download ends byte exact from the honest source, ``source-rejected`` names
    the liar, and the game view lists it as excluded. The files are removed and the
    game downloaded again: the liar is no source of it (``download-begin`` names the
    honest peer only) and is asked for no chunk.
    """
    lan = await build_lan(3)
    receiver, honest, liar = await honest_and_liar(lan, "corrupt")
    await receiver.command("download", "cs16")
    await receiver.finished("cs16")
    assert payload_manifest(receiver.root("cs16")) == lan.cache.manifest(CS16)
    told = lies(liar)
    assert told, "the liar was asked for no chunk: the scenario proved nothing"
    rejected = of_game(receiver.process.events, "source-rejected", "cs16")
    assert {event["peer_id"] for event in rejected} == {liar.peer_id}
    assert all(str(event["reason"]).startswith("sent corrupt bytes for ") for event in rejected)
    assert (await receiver.games())["cs16"]["excluded_peers"] == [liar.peer_id]

    await receiver.command("remove", "cs16")
    await receiver.outcome("cs16", REMOVE_ENDINGS)
    began_again = len(receiver.process.events)
    await receiver.command("download", "cs16")
    await receiver.finished("cs16")
    again = receiver.process.events[began_again:]
    [begin] = of_game(again, "download-begin", "cs16")
    assert begin["sources"] == [honest.peer_id]
    assert lies(liar) == told
    assert payload_manifest(receiver.root("cs16")) == lan.cache.manifest(CS16)


async def test_a_trickling_source_never_holds_a_download_back(build_lan: BuildLan) -> None:
    """S92: a source sending the right bytes at 2 KiB/s does not stall the download.

    The trickler is asked for at least one chunk (its first, unmeasured); the
    download still ends byte exact within TRICKLE_BOUND: once the trickler's first
    chunk is overdue (``UNMEASURED_GRACE``) it holds the honest source back no more,
    and the endgame asks the honest source for the chunk the trickler holds.
    (Before, the tail's round robin waited for the trickler's first chunk and the
    download stalled at 45%, as reported.)
    """
    lan = await build_lan(3)
    receiver, _, trickler = await honest_and_liar(lan, "trickle")
    began = time.monotonic()
    await receiver.command("download", "cs16")
    await receiver.finished("cs16")
    took = time.monotonic() - began
    asked = lies(trickler)
    assert asked, "the trickler was asked for no chunk: the scenario proved nothing"
    alone = max(int(str(event["length"])) for event in asked) / TRICKLE_RATE
    print(f"\ndownload with a trickler took {took:.2f}s; the trickle alone: {alone:.0f}s")
    assert took < TRICKLE_BOUND
    assert payload_manifest(receiver.root("cs16")) == lan.cache.manifest(CS16)


def organize(state_dir: Path, root: Path) -> str:
    """Sign a catalog pinning ``root``'s quake3 1.0 into the organizer's ``state_dir``
    (what ``party init``, ``catalog pin`` and ``catalog sign`` leave); the party code."""
    key = Ed25519PrivateKey.generate()
    manifest = hash_game_payload(root, QUAKE3.id, QUAKE3.version, CHUNK)
    pin = Pin(game_id=QUAKE3.id, version=QUAKE3.version, digest=manifest_digest(manifest))
    party_files.save_signed(state_dir, sign_catalog(key, PartyCatalog(pins=(pin,)), 1))
    return party_code(public_key_bytes(key))


async def test_a_liars_newer_version_is_no_source_and_no_update_at_a_party(
    build_lan: BuildLan,
) -> None:
    """S93: at a party pinning quake3 1.0, a peer announcing its own quake3 9.9 loses.

    The receiver downloads quake3: 1.0, byte exact, from the honest organizer's peer;
    ``source-rejected`` says the liar offers a version the catalog does not pin. With
    1.0 on its disk the receiver sees no update (``update_available`` false), an
    ``update`` is refused as up to date, and its files stay as they were.
    """
    lan = await build_lan(3)
    honest_games, liar_games = lan.base / "h2" / "games", lan.base / "liar" / "games"
    await asyncio.to_thread(lan.cache.place, honest_games, QUAKE3)
    await asyncio.to_thread(lan.cache.place, liar_games, FAKE_QUAKE3)
    code = await asyncio.to_thread(organize, lan.base / "h2" / "state", honest_games / "quake3")
    receiver, honest = await lan.start([("h1", ()), ("h2", ())], party=code)
    liar = await lan.spawn(lan.host("h3"), name="liar", party=code)
    await liar.started()
    await lan.ready_to_fetch(receiver, [honest], QUAKE3)
    await lan.ready_to_fetch(receiver, [liar], FAKE_QUAKE3)
    await receiver.command("download", "quake3")
    finished = await receiver.finished("quake3")
    assert finished["version"] == QUAKE3.version
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    chunks = of_game(receiver.process.events, "chunk-finished", "quake3")
    assert {event["peer_id"] for event in chunks} == {honest.peer_id}
    rejected = of_game(receiver.process.events, "source-rejected", "quake3")
    assert [(event["peer_id"], event["reason"]) for event in rejected] == [
        (liar.peer_id, f"offers {FAKE_QUAKE3.version}, which the party catalog does not pin")
    ]
    assert (await receiver.games())["quake3"]["update_available"] is False
    code_, message = await receiver.refused("update", "quake3")
    assert message.endswith("is up to date"), (code_, message)
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)


async def test_two_sybils_outnumbering_the_honest_peer_lose_to_the_pin(
    build_lan: BuildLan,
) -> None:
    """S94: at a party pinning quake3 1.0, two members offer a 1.0 of their own.

    They outnumber the honest organizer's peer two to one, and lose: the receiver
    downloads the pinned content byte exact, every chunk from the honest peer, and
    ``source-rejected`` names both Sybils as differing from the pin.
    """
    lan = await build_lan(4)
    honest_games = lan.base / "h2" / "games"
    await asyncio.to_thread(lan.cache.place, honest_games, QUAKE3)
    for name in ("sybil1", "sybil2"):
        await asyncio.to_thread(lan.cache.place, lan.base / name / "games", SYBIL_QUAKE3)
    code = await asyncio.to_thread(organize, lan.base / "h2" / "state", honest_games / "quake3")
    receiver, honest = await lan.start([("h1", ()), ("h2", ())], party=code)
    sybils = [
        await lan.spawn(lan.host(host), name=name, party=code)
        for host, name in (("h3", "sybil1"), ("h4", "sybil2"))
    ]
    for sybil in sybils:
        await sybil.started()
    await lan.ready_to_fetch(receiver, [honest, *sybils], QUAKE3)
    await receiver.command("download", "quake3")
    await receiver.finished("quake3")
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    chunks = of_game(receiver.process.events, "chunk-finished", "quake3")
    assert {event["peer_id"] for event in chunks} == {honest.peer_id}
    rejected = of_game(receiver.process.events, "source-rejected", "quake3")
    assert sorted((event["peer_id"], event["reason"]) for event in rejected) == sorted(
        (sybil.peer_id, "its quake3 1.0 differs from the content the party catalog pins")
        for sybil in sybils
    )
