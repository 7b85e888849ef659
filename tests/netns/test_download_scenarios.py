"""Downloads between real peer processes, one per network namespace (S20-S39).

Every transfer is proved by comparing SHA-256 manifests of the receiver's game
root with the source's (``local/`` excluded: it is never served). How the tests
wait without sleeps (a source's manifest cache, ``remote-games-changed``, a
throttled link for mid-transfer actions) is described in ``transfer_lan.py``.
Scenario ids are listed in ``SCENARIOS.md``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.netns.transfer_lan import (
    CHUNK,
    CS16,
    DISK_POLL,
    INSTALL_ENDINGS,
    OPENTTD,
    QUAKE3,
    QUAKE3_V2,
    BuildLan,
    Peer,
    journal_chunks,
    journal_done_bytes,
    local_manifest,
    of_game,
    payload_manifest,
    sha256,
)
from tests.support.waiting import wait_until


def chunk_sources(receiver: Peer, game_id: str) -> dict[tuple[str, int], str]:
    """``(path, offset) -> peer id`` of every ``chunk-finished`` of ``game_id``."""
    return {
        (e["path"], e["offset"]): e["peer_id"]
        for e in of_game(receiver.process.events, "chunk-finished", game_id)
    }


# --- S20-S22: single source, multi-source, one file from two peers --------------------


async def test_single_source_download_is_byte_exact(build_lan: BuildLan) -> None:
    """S20: one source, every archive fetched, the receiver's root equals the source's.

    ``download`` replies at once; ``download-begin`` names the one source, the total
    and no resumed bytes; the last ``download-progress`` is complete; every
    ``chunk-finished`` comes from the source; ``list-games`` then shows the game
    downloaded and not installed (policy manual).
    """
    lan = await build_lan(2)
    receiver, source = await lan.start([("h1", ()), ("h2", (QUAKE3,))])
    await lan.ready_to_fetch(receiver, [source], QUAKE3)
    reply = await receiver.command("download", "quake3")
    assert reply["data"] == {"game": "quake3", "operation": "downloading"}
    await receiver.finished("quake3")

    expected = lan.cache.manifest(QUAKE3)
    assert payload_manifest(receiver.root("quake3")) == expected
    assert payload_manifest(source.root("quake3")) == expected
    events = receiver.process.events
    [begin] = of_game(events, "download-begin", "quake3")
    total = sum((source.root("quake3") / path).stat().st_size for path in expected)
    assert (begin["version"], begin["total_bytes"], begin["resumed_bytes"]) == ("1.0", total, 0)
    assert begin["sources"] == [source.peer_id]
    progress = of_game(events, "download-progress", "quake3")
    assert (progress[-1]["downloaded_bytes"], progress[-1]["total_bytes"]) == (total, total)
    chunks = chunk_sources(receiver, "quake3")
    assert {path for path, _ in chunks} == {a.name for a in QUAKE3.archives}
    assert set(chunks.values()) == {source.peer_id}
    view = (await receiver.games())["quake3"]
    assert (view["downloaded"], view["installed"], view["local_version"]) == (True, False, "1.0")
    assert (view["operation"], view["paused_bytes"]) == (None, 0)


async def test_multi_source_download_uses_every_source(build_lan: BuildLan) -> None:
    """S21: three sources of one game deliver chunks, and the result is byte exact.

    The game has four small archives (one chunk each): ``download-begin`` names all
    three sources and ``chunk-finished`` events arrive from more than one. Which
    sources get the four chunks depends on when their data connections open (the tail
    waits for an opening connection at most ``TAIL_CONNECT_GRACE``, and one whose
    ticket or connect fails is not waited for), so on a loaded machine one of the
    three may be left with none; ``test_a_small_game_waits_for_the_sources_still_opening``
    proves the dealing rule itself without timing.
    """
    lan = await build_lan(4)
    receiver, *sources = await lan.start(
        [("h1", ()), ("h2", (CS16,)), ("h3", (CS16,)), ("h4", (CS16,))]
    )
    await lan.ready_to_fetch(receiver, sources, CS16)
    await receiver.command("download", "cs16")
    await receiver.finished("cs16")
    assert payload_manifest(receiver.root("cs16")) == lan.cache.manifest(CS16)
    [begin] = of_game(receiver.process.events, "download-begin", "cs16")
    ids = {source.peer_id for source in sources}
    assert set(begin["sources"]) == ids
    used = set(chunk_sources(receiver, "cs16").values())
    assert used <= ids
    assert len(used) >= 2


async def test_one_file_larger_than_a_chunk_comes_from_two_peers(build_lan: BuildLan) -> None:
    """S22: the chunks of one 47 MiB archive are split between two sources.

    ``openttd.eti`` is three chunks (offsets 0, 16 and 32 MiB); both sources
    deliver at least one of them, and the reassembled file is byte exact.
    """
    lan = await build_lan(3)
    receiver, *sources = await lan.start([("h1", ()), ("h2", (OPENTTD,)), ("h3", (OPENTTD,))])
    await lan.ready_to_fetch(receiver, sources, OPENTTD)
    began = time.monotonic()
    await receiver.command("download", "openttd")
    await receiver.finished("openttd")
    print(f"\n47 MiB from two sources in {time.monotonic() - began:.2f}s")
    assert payload_manifest(receiver.root("openttd")) == lan.cache.manifest(OPENTTD)
    big = {
        offset: peer
        for (path, offset), peer in chunk_sources(receiver, "openttd").items()
        if path == "openttd.eti"
    }
    assert sorted(big) == [0, CHUNK, 2 * CHUNK]
    assert set(big.values()) == {source.peer_id for source in sources}


# --- S23-S24: sources vanishing ------------------------------------------------------------

# 10 MB/s per source: a 16 MiB chunk takes 1.6 s, so nothing of the big archive
# has arrived when a source is killed right after download-begin.
SLOW_SOURCE = "80mbit"
# 15 MB/s: one 16 MiB chunk takes just over a second, so the journal (committed at
# most once a second) records each chunk as it completes.
JOURNALED_RATE = "120mbit"
# 2 MB/s: the two small games (1.8 MiB together) need about a second.
CONCURRENT_RATE = "16mbit"
# 125 KB/s: what is left of a chunk cannot arrive while the test acts.
STALLED = "1mbit"


async def test_killed_source_is_replaced_by_the_other_one(build_lan: BuildLan) -> None:
    """S23: kill -9 of one of two sources mid-download; the survivor delivers the rest.

    Both sources are throttled, so neither has delivered any chunk of the 47 MiB
    archive when one is killed right after ``download-begin`` (which names both).
    The planner had split the archive's three chunks between them; in the end all
    three come from the survivor, the download finishes without a failure and the
    root is byte exact.
    """
    lan = await build_lan(3)
    receiver, survivor, victim = await lan.start(
        [("h1", ()), ("h2", (OPENTTD,)), ("h3", (OPENTTD,))]
    )
    await lan.ready_to_fetch(receiver, [survivor, victim], OPENTTD)
    await asyncio.gather(lan.throttle(survivor, SLOW_SOURCE), lan.throttle(victim, SLOW_SOURCE))
    await receiver.command("download", "openttd")
    begin = await receiver.process.wait_for({"event": "download-begin", "game": "openttd"})
    assert set(begin["sources"]) == {survivor.peer_id, victim.peer_id}
    assert await lan.network.kill(victim.process) == -9
    assert not [path for path, _ in chunk_sources(receiver, "openttd") if path == "openttd.eti"]
    await lan.unthrottle(survivor)
    await receiver.finished("openttd")
    assert payload_manifest(receiver.root("openttd")) == lan.cache.manifest(OPENTTD)
    big = {
        o: p for (path, o), p in chunk_sources(receiver, "openttd").items() if path == "openttd.eti"
    }
    assert big == {0: survivor.peer_id, CHUNK: survivor.peer_id, 2 * CHUNK: survivor.peer_id}
    assert not of_game(receiver.process.events, "download-failed", "openttd")


@pytest.mark.parametrize("how", ["shutdown", "kill"])
async def test_losing_the_only_source_pauses_and_its_return_resumes(
    build_lan: BuildLan, how: str
) -> None:
    """S24: the only source leaves mid-download (``shutdown`` or kill -9): paused, then resumed.

    After the first 16 MiB chunk is in, the source goes away: the receiver reports
    ``download-all-peers-gone`` (no ``download-failed``), ``list-games`` shows the
    game paused with the journaled bytes and no operation. The source comes back
    with the same folders and the download resumes by itself, with no command
    (``download-begin.resumed_bytes`` equals the paused bytes), fetches only the rest
    and ends byte exact.
    """
    lan = await build_lan(2)
    receiver, source = await lan.start([("h1", ()), ("h2", (OPENTTD,))])
    await lan.ready_to_fetch(receiver, [source], OPENTTD)
    await lan.throttle(source, JOURNALED_RATE)
    await receiver.command("download", "openttd")
    await receiver.process.wait_for(
        {"event": "chunk-finished", "game": "openttd", "path": "openttd.eti"}, 20
    )
    if how == "shutdown":
        await source.process.request({"cmd": "shutdown"})
        assert await source.exited() == 0
    else:
        assert await lan.network.kill(source.process) == -9
    gone = await receiver.outcome("openttd", timeout=30)
    assert gone["event"] == "download-all-peers-gone", receiver.process.report(str(gone))
    view = (await receiver.games())["openttd"]
    paused = journal_done_bytes(receiver.root("openttd"))
    assert journal_chunks(receiver.root("openttd"), "openttd.eti") >= 1
    assert (view["paused_bytes"], view["operation"], view["downloaded"]) == (paused, None, False)
    assert view["paused_total_bytes"] == sum(
        (source.root("openttd") / path).stat().st_size for path in lan.cache.manifest(OPENTTD)
    )

    await lan.unthrottle(source)
    await lan.restart(source)
    # No command: the source's return resumes the download by itself (auto-resume).
    await receiver.finished("openttd")
    begins = of_game(receiver.process.events, "download-begin", "openttd")
    assert begins[-1]["resumed_bytes"] == paused
    assert payload_manifest(receiver.root("openttd")) == lan.cache.manifest(OPENTTD)


# --- S25-S26: cancel ---------------------------------------------------------------------


async def test_cancel_of_a_fresh_download_removes_its_root(build_lan: BuildLan) -> None:
    """S25: a second command on a downloading game is refused; cancel removes the root.

    While the download runs (the source is throttled), another ``download`` is
    refused with ``operation-in-progress`` and ``install``/``remove``/``uninstall``
    with ``invalid-state``. ``cancel`` replies ``cancelling``, ``download-cancelled``
    follows, the game root is gone, ``list-games`` shows nothing paused, and a
    second ``cancel`` has nothing to cancel.
    """
    lan = await build_lan(2)
    receiver, source = await lan.start([("h1", ()), ("h2", (OPENTTD,))])
    await lan.ready_to_fetch(receiver, [source], OPENTTD)
    await lan.throttle(source, SLOW_SOURCE)
    await receiver.command("download", "openttd")
    await receiver.process.wait_for({"event": "download-begin", "game": "openttd"})
    assert receiver.root("openttd").is_dir()
    assert await receiver.refused("download", "openttd") == (
        "operation-in-progress",
        "Fixture openttd is busy: downloading",
    )
    assert await receiver.refused("install", "openttd") == (
        "invalid-state",
        "Fixture openttd is not downloaded",
    )
    assert await receiver.refused("remove", "openttd") == (
        "invalid-state",
        "Fixture openttd is not downloaded",
    )
    assert await receiver.refused("uninstall", "openttd") == (
        "invalid-state",
        "Fixture openttd is not installed",
    )
    reply = await receiver.command("cancel", "openttd")
    assert reply["data"] == {"game": "openttd", "operation": "cancelling"}
    await receiver.finished("openttd", "download-cancelled")
    assert not receiver.root("openttd").exists()
    view = (await receiver.games())["openttd"]
    assert (view["downloaded"], view["paused_bytes"], view["operation"]) == (False, 0, None)
    assert await receiver.refused("cancel", "openttd") == (
        "invalid-state",
        "Fixture openttd has no download to cancel",
    )


async def test_cancel_of_an_update_keeps_the_installed_game(build_lan: BuildLan) -> None:
    """S26: cancelling the update of an installed game leaves 1.0 whole: archives and ``local/``.

    The receiver installed quake3 1.0 and wrote a save game into ``local/``; a
    source offers 2.0 through a throttled link. ``update`` starts (2.0 downloads
    beside 1.0, into ``.lanspread.update/``), ``cancel`` ends it with
    ``download-cancelled``: the staged files are discarded, the 1.0 archives and
    ``version.ini`` are byte for byte what they were, ``local/`` holds exactly the
    1.0 install plus the save game, and ``list-games`` shows the game installed
    and downloaded, with the update still available.
    """
    lan = await build_lan(2)
    receiver, source = await lan.start([("h1", (QUAKE3,)), ("h2", (QUAKE3_V2,))])
    await receiver.command("install", "quake3")
    finished = await receiver.outcome("quake3", INSTALL_ENDINGS)
    assert finished["event"] == "install-finished"
    save = receiver.root("quake3") / "local" / "baseq3" / "save0.sav"
    save.write_bytes(b"level 3, 99 health")
    installed = local_manifest(receiver.root("quake3"))
    assert installed == {**QUAKE3.local_manifest(), "baseq3/save0.sav": sha256(save)}

    await lan.ready_to_fetch(receiver, [source], QUAKE3_V2)
    await lan.throttle(source, STALLED)
    reply = await receiver.command("update", "quake3")
    assert reply["data"] == {"game": "quake3", "operation": "downloading"}
    await receiver.process.wait_for({"event": "download-begin", "game": "quake3"})
    await receiver.command("cancel", "quake3")
    await receiver.finished("quake3", "download-cancelled")
    assert sorted(path.name for path in receiver.root("quake3").iterdir()) == [
        ".lanspread.files.json",
        ".lanspread.install.json",
        "docs.eti",
        "game.eti",
        "local",
        "maps.eti",
        "music.eti",
        "version.ini",
    ]
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    assert local_manifest(receiver.root("quake3")) == installed
    view = (await receiver.games())["quake3"]
    assert (view["installed"], view["downloaded"], view["update_available"]) == (True, True, True)
    assert (view["operation"], view["paused_bytes"]) == (None, 0)


# --- S27: the downloader killed and restarted ---------------------------------------------


@pytest.mark.parametrize("chunks_before_kill", [1, 2], ids=["early", "late"])
async def test_downloader_killed_mid_download_resumes_after_restart(
    build_lan: BuildLan, chunks_before_kill: int
) -> None:
    """S27: kill -9 of the downloader after 1 (early) or 2 (late) of 3 chunks, then resume.

    The source sends about one chunk a second, so the journal records each chunk
    as it lands; once it holds the wanted number, the link is stalled (nothing
    more can complete) and the downloader is killed. Restarted with the same
    folders it shows the game paused with exactly the journaled bytes of the
    total, and ``download`` resumes from there (``download-begin.resumed_bytes``),
    fetching only the missing chunks; the final root is byte exact.
    """
    lan = await build_lan(2)
    receiver, source = await lan.start([("h1", ()), ("h2", (OPENTTD,))])
    await lan.ready_to_fetch(receiver, [source], OPENTTD)
    await lan.throttle(source, JOURNALED_RATE)
    await receiver.command("download", "openttd")
    root = receiver.root("openttd")
    await wait_until(
        lambda: journal_chunks(root, "openttd.eti") >= chunks_before_kill,
        f"the journal to record {chunks_before_kill} chunks",
        timeout=20,
        poll=DISK_POLL,
    )
    await lan.throttle(source, STALLED)
    assert await lan.network.kill(receiver.process) == -9
    assert not of_game(receiver.process.events, "download-finished", "openttd")
    journaled = journal_done_bytes(root)
    assert journal_chunks(root, "openttd.eti") == chunks_before_kill

    await lan.unthrottle(source)
    receiver = await lan.restart(receiver)
    view = (await receiver.games())["openttd"]
    total = sum(
        (source.root("openttd") / path).stat().st_size for path in lan.cache.manifest(OPENTTD)
    )
    assert (view["paused_bytes"], view["paused_total_bytes"]) == (journaled, total)
    assert (view["downloaded"], view["operation"]) == (False, None)
    print(f"\npaused at {100 * journaled / total:.1f}% after kill -9")
    await lan.ready_to_fetch(receiver, [source], OPENTTD)
    await receiver.command("download", "openttd")
    await receiver.finished("openttd")
    [begin] = of_game(receiver.process.events, "download-begin", "openttd")
    assert begin["resumed_bytes"] == journaled
    fetched = sum(
        e["length"] for e in of_game(receiver.process.events, "chunk-finished", "openttd")
    )
    assert fetched == total - journaled - len(OPENTTD.sentinel)
    assert payload_manifest(root) == lan.cache.manifest(OPENTTD)


# --- S28: two downloads at once --------------------------------------------------------


async def test_two_games_download_concurrently_from_one_source(build_lan: BuildLan) -> None:
    """S28: two different games download at the same time from the same source.

    The source is throttled so neither can finish before both have begun: both
    ``download-begin`` events precede the first ``download-finished``, and both
    roots are byte exact.
    """
    lan = await build_lan(2)
    receiver, source = await lan.start([("h1", ()), ("h2", (QUAKE3, CS16))])
    await asyncio.gather(
        lan.ready_to_fetch(receiver, [source], QUAKE3),
        lan.ready_to_fetch(receiver, [source], CS16),
    )
    await lan.throttle(source, CONCURRENT_RATE)
    await receiver.command("download", "quake3")
    await receiver.command("download", "cs16")
    status = await receiver.process.request({"cmd": "status"})
    assert status["data"]["operations"] == {"quake3": "downloading", "cs16": "downloading"}
    await asyncio.gather(receiver.finished("quake3"), receiver.finished("cs16"))
    names = [
        (e["event"], e["game"])
        for e in receiver.process.events
        if e["event"] in ("download-begin", "download-finished")
    ]
    first_finish = min(names.index(("download-finished", g)) for g in ("quake3", "cs16"))
    assert {g for kind, g in names[:first_finish] if kind == "download-begin"} == {"quake3", "cs16"}
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    assert payload_manifest(receiver.root("cs16")) == lan.cache.manifest(CS16)


# --- S29: the serve gate ---------------------------------------------------------------


async def test_busy_source_is_not_used_and_local_is_never_served(build_lan: BuildLan) -> None:
    """S29: a source updating the game keeps serving the old version; ``local/`` never crosses.

    h2 holds quake3 1.0 installed; h3 holds 2.0; h1 cannot reach h3 (prohibit
    routes both ways), so h2 is h1's only source. h2 updates from h3 through a
    stalled link: while its update downloads beside 1.0 (operation
    ``downloading``), h2 still announces and serves 1.0, and h1 downloads 1.0 from
    it byte for byte. The link is freed, h2 finishes the update and installs 2.0
    (policy auto), a file is written into h2's ``local/`` only, and h1 now updates
    to 2.0 from h2: byte exact, no ``local/`` at all on h1.
    """
    lan = await build_lan(3)
    h1, h2, h3 = lan.network.hosts
    await lan.isolate(h1, h3)
    receiver, busy, upstream = await asyncio.gather(
        lan.spawn(h1), lan.spawn(h2, (QUAKE3,), install_policy="auto"), lan.spawn(h3, (QUAKE3_V2,))
    )
    await asyncio.gather(receiver.started(), busy.started(), upstream.started())
    await busy.command("install", "quake3")
    assert (await busy.outcome("quake3", INSTALL_ENDINGS))["event"] == "install-finished"
    await asyncio.gather(
        lan.ready_to_fetch(busy, [upstream], QUAKE3_V2),
        lan.ready_to_fetch(receiver, [busy], QUAKE3),
    )
    await lan.throttle(upstream, STALLED)
    await busy.command("update", "quake3")
    await busy.process.wait_for({"event": "download-begin", "game": "quake3"})

    # The update writes only into h2's staging folder: 1.0 stays announced and served.
    await receiver.command("download", "quake3")
    await receiver.finished("quake3")
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    assert set(chunk_sources(receiver, "quake3").values()) == {busy.peer_id}
    assert not of_game(busy.process.events, "download-finished", "quake3")
    status = await busy.process.request({"cmd": "status"})
    assert status["data"]["operations"] == {"quake3": "downloading"}

    await lan.unthrottle(upstream)
    await busy.finished("quake3")
    updated = await busy.outcome("quake3", INSTALL_ENDINGS)
    assert updated["event"] == "install-finished"
    secret = busy.root("quake3") / "local" / "only-here.sav"
    secret.write_bytes(b"never served")
    await lan.ready_to_fetch(receiver, [busy], QUAKE3_V2)
    await receiver.command("update", "quake3")
    await receiver.finished("quake3")
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3_V2)
    assert not (receiver.root("quake3") / "local").exists()
    assert set(chunk_sources(receiver, "quake3").values()) == {busy.peer_id}


async def test_a_failed_update_stays_playable_and_shareable(build_lan: BuildLan) -> None:
    """S44: an update whose install fails leaves the old version playable and re-shareable.

    h2 holds quake3 1.0 installed, with a save in ``local/``; h3 offers a 2.0 whose
    ``game.eti`` is not an archive (its manifest is what h3 hashed, so the download
    verifies); h1 cannot reach h3. h2's update downloads 2.0 beside 1.0 and its
    install fails: h2's archives and ``version.ini`` are 1.0 byte for byte, ``local/``
    is the 1.0 install plus the save, ``list-games`` says 1.0 installed and
    downloaded. Then h1 downloads quake3 from h2: 1.0, byte exact, every chunk from h2.
    """
    lan = await build_lan(3)
    h1, h2, h3 = lan.network.hosts
    await lan.isolate(h1, h3)
    broken = lan.base / "h3" / "games"
    broken.mkdir(parents=True)
    await asyncio.to_thread(lan.cache.place, broken, QUAKE3_V2)
    (broken / "quake3" / "game.eti").write_bytes(b"PK\x03\x04 not an archive at all")
    receiver, updater, upstream = await asyncio.gather(
        lan.spawn(h1), lan.spawn(h2, (QUAKE3,)), lan.spawn(h3)
    )
    await asyncio.gather(receiver.started(), updater.started(), upstream.started())
    await updater.command("install", "quake3")
    assert (await updater.outcome("quake3", INSTALL_ENDINGS))["event"] == "install-finished"
    root = updater.root("quake3")
    save = root / "local" / "baseq3" / "save0.sav"
    save.write_bytes(b"level 3, 99 health")
    installed = local_manifest(root)
    await lan.ready_to_fetch(updater, [upstream], QUAKE3_V2)

    await updater.command("update", "quake3")
    await updater.finished("quake3")
    failed = await updater.outcome("quake3", INSTALL_ENDINGS)
    assert failed["event"] == "install-failed", updater.process.report(str(failed))
    assert payload_manifest(root) == lan.cache.manifest(QUAKE3)
    assert local_manifest(root) == installed
    view = (await updater.games())["quake3"]
    assert (view["installed"], view["downloaded"], view["installed_version"]) == (
        True,
        True,
        "1.0",
    )

    await lan.ready_to_fetch(receiver, [updater], QUAKE3)
    await receiver.command("download", "quake3")
    await receiver.finished("quake3")
    assert payload_manifest(receiver.root("quake3")) == lan.cache.manifest(QUAKE3)
    assert set(chunk_sources(receiver, "quake3").values()) == {updater.peer_id}
