"""Swarming between real peer processes: downloaders serve what they verified (S81-S84).

One seeder holds openttd (a 47 MiB archive of three 16 MiB chunks and a small
one); its link is throttled so that a downloader that started first holds
verified chunks while the others still need them. Every copy is proved byte
exact against the fixture's SHA-256 manifest. Scenario ids: ``SCENARIOS.md``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lanspread.download.journal import load as load_journal
from tests.netns.transfer_lan import (
    CHUNK,
    DISK_POLL,
    OPENTTD,
    BuildLan,
    Lan,
    Peer,
    journal_done_bytes,
    of_game,
    payload_manifest,
)
from tests.support.waiting import wait_until

# 7.5 MB/s from the seeder: a 16 MiB chunk takes about 2.2 s, so the first
# downloader has journaled a chunk seconds before it could finish, and a peer
# on an unthrottled veth delivers that chunk far sooner than the seeder could.
SEEDER_RATE = "60mbit"
# A journaled chunk, the whole download, and a chunk from a given peer: at the
# rate above the whole game through the seeder alone takes under 30 s.
JOURNAL_TIMEOUT = 20.0
SWARM_TIMEOUT = 60.0


def served_by(receiver: Peer, game_id: str) -> set[str]:
    """The peer ids named by ``receiver``'s ``chunk-finished`` events of ``game_id``."""
    return {e["peer_id"] for e in of_game(receiver.process.events, "chunk-finished", game_id)}


async def seeded_party(lan: Lan, downloaders: int) -> tuple[Peer, list[Peer]]:
    """A throttled seeder of openttd and ``downloaders`` peers that all see it offered."""
    specs = [("h1", (OPENTTD,))] + [(f"h{i + 2}", ()) for i in range(downloaders)]
    seeder, *others = await lan.start(specs)
    for peer in others:
        await lan.ready_to_fetch(peer, [seeder], OPENTTD)
    await lan.throttle(seeder, SEEDER_RATE)
    return seeder, others


def rot_journaled_chunks(root: Path) -> None:
    """Flip a byte in every chunk of openttd.eti the journal in ``root`` holds durable."""
    journal = load_journal(root)
    assert journal is not None
    with open(root / "openttd.eti", "r+b") as archive:
        for path, offset in journal.done_keys:
            if path == "openttd.eti":
                archive.seek(offset + 100)
                old = archive.read(1)
                archive.seek(offset + 100)
                archive.write(b"\x00" if old == b"\xff" else b"\xff")


async def first_chunk_journaled(peer: Peer) -> None:
    """Wait until ``peer``'s download of openttd has made a chunk durable.

    Polled: the journal is a file on disk, which signals nothing.
    """
    await wait_until(
        lambda: journal_done_bytes(peer.root("openttd")) >= CHUNK,
        f"{peer.name} to journal a chunk",
        timeout=JOURNAL_TIMEOUT,
        poll=DISK_POLL,
    )


async def a_chunk_from(receiver: Peer, source: Peer) -> None:
    await receiver.process.wait_for(
        lambda e: e.get("event") == "chunk-finished" and e.get("peer_id") == source.peer_id,
        SWARM_TIMEOUT,
        what=f"a chunk of {source.name} at {receiver.name}",
    )


async def finished_byte_exact(lan: Lan, *peers: Peer) -> None:
    for peer in peers:
        await peer.process.wait_for(
            lambda e: (
                e.get("event") in ("download-finished", "download-failed")
                and e.get("game") == "openttd"
            ),
            SWARM_TIMEOUT,
            what=f"the end of openttd at {peer.name}",
        )
        assert not of_game(peer.process.events, "download-failed", "openttd")
        assert payload_manifest(peer.root("openttd")) == lan.cache.manifest(OPENTTD)


async def test_downloaders_serve_each_other_and_all_end_byte_exact(build_lan: BuildLan) -> None:
    """S81: 1 seeder -> 4 downloaders: chunks come from downloaders, every copy is exact.

    d1 starts first; once it journaled a chunk, d2-d4 start and fetch what d1
    (and then each other) verified: their ``chunk-finished`` events name peers
    other than the seeder. All four end byte exact with no failure.
    """
    lan = await build_lan(5)
    seeder, (d1, *rest) = await seeded_party(lan, 4)
    await d1.command("download", "openttd")
    await first_chunk_journaled(d1)
    for peer in rest:
        await peer.command("download", "openttd")
    await finished_byte_exact(lan, d1, *rest)
    others = set().union(*(served_by(peer, "openttd") for peer in rest)) - {seeder.peer_id}
    assert others, "no chunk came from a downloader"
    assert others <= {peer.peer_id for peer in (d1, *rest)}


async def test_a_killed_partial_source_costs_only_its_in_flight_chunks(
    build_lan: BuildLan,
) -> None:
    """S82: kill -9 of a downloader that serves another: the other finishes, no failure.

    d2 has verified a chunk from d1 when d1 is killed; d2 fetches the rest from
    the seeder and ends byte exact without ``download-failed``.
    """
    lan = await build_lan(3)
    _, (d1, d2) = await seeded_party(lan, 2)
    await d1.command("download", "openttd")
    await first_chunk_journaled(d1)
    await d2.command("download", "openttd")
    await a_chunk_from(d2, d1)
    assert await lan.network.kill(d1.process) == -9
    await finished_byte_exact(lan, d2)


async def test_a_partial_source_that_cancels_is_no_source_any_more(build_lan: BuildLan) -> None:
    """S83: a downloader serving another cancels: its root goes, the other finishes exact.

    The cancel withdraws d1's partial at once (its provider answers nothing, its
    library summary loses the partial); chunks d2 still wanted from it come from the
    seeder, and d2 ends without a failure.
    """
    lan = await build_lan(3)
    _, (d1, d2) = await seeded_party(lan, 2)
    await d1.command("download", "openttd")
    await first_chunk_journaled(d1)
    await d2.command("download", "openttd")
    await a_chunk_from(d2, d1)
    await d1.command("cancel", "openttd")
    await d1.outcome("openttd")
    assert of_game(d1.process.events, "download-cancelled", "openttd")
    assert not d1.root("openttd").exists()
    await finished_byte_exact(lan, d2)


async def test_a_partial_source_that_lies_is_excluded(build_lan: BuildLan) -> None:
    """S84: a downloader whose verified chunks rot on its disk is rejected and excluded.

    After d1 journaled its first chunks a byte of each is flipped on d1's disk; d2
    asks d1 for them, the hash check fails, ``source-rejected`` names d1 as having
    sent corrupt bytes, nothing more comes from d1 (chunks d1 verified after the rot
    may have reached d2 before, and are good), and d2 ends byte exact.
    """
    lan = await build_lan(3)
    _, (d1, d2) = await seeded_party(lan, 2)
    await d1.command("download", "openttd")
    await first_chunk_journaled(d1)
    await asyncio.to_thread(rot_journaled_chunks, d1.root("openttd"))
    await d2.command("download", "openttd")
    rejected = await d2.process.wait_for(
        lambda e: e.get("event") == "source-rejected" and e.get("peer_id") == d1.peer_id,
        SWARM_TIMEOUT,
        what="d1 rejected at d2",
    )
    assert rejected["reason"] == "sent corrupt bytes for openttd.eti"
    await finished_byte_exact(lan, d2)
    after = d2.process.events[d2.process.events.index(rejected) :]
    assert not [
        e for e in of_game(after, "chunk-finished", "openttd") if e["peer_id"] == d1.peer_id
    ]
