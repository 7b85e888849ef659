"""The download queue over loopback: auto-resume, pause by the player, queue order."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.runtime.test_downloads import (
    CHUNK,
    MiB,
    Start,
    hashed,
    make_game,
    offered,
    paused_by_departure,
    peers,
    serving_pair,
)
from tests.support.events import RuntimeEvents

from lanspread.errors import InvalidGameState, UnknownGame
from lanspread.runtime.commands import (
    Connect,
    Download,
    ListDownloads,
    MoveDownload,
    Pause,
    PauseAll,
    Resume,
    ResumeAll,
)
from lanspread.runtime.download_queue import DownloadsView
from lanspread.runtime.events import (
    ChunkFinished,
    DownloadBegin,
    DownloadFinished,
    DownloadPaused,
)
from lanspread.runtime.replies import OperationStarted


async def test_a_returning_source_resumes_the_download_by_itself(
    start_runtime: Start, tmp_path: Path
) -> None:
    """After the only source left mid-download, a peer offering the same version and
    manifest joining makes the download resume without a click, and it finishes."""
    alpha, _bravo, events = await paused_by_departure(start_runtime, tmp_path)
    make_game(tmp_path / "charlie" / "games", size=128 * MiB)
    charlie = await start_runtime("charlie", chunk_size=CHUNK)
    await hashed(charlie)
    await alpha.execute(Connect(addr=charlie.listen_addr))
    await offered(alpha)
    begun = await events.first(DownloadBegin, where=lambda e: e.resumed_bytes > 0)
    assert begun.sources == (charlie.peer_id,)
    await events.first(DownloadFinished)


async def test_a_download_the_player_paused_does_not_resume_by_itself(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Pause keeps the files and shows "paused by you"; a source on the network does not
    resume it, the player's Resume does."""
    alpha, _bravo = await serving_pair(start_runtime, tmp_path, size=96 * MiB)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(ChunkFinished)
    assert await alpha.execute(Pause(game="quake3")) == OperationStarted(
        game="quake3", operation="pausing"
    )
    paused = await events.first(DownloadPaused)
    assert paused.reason == "player"
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert view.download_state is not None
    assert (view.download_state.reason, view.download_state.message) == (
        "player",
        "paused by you",
    )
    assert alpha.queue.auto_resume() == ()
    await alpha.execute(Resume(game="quake3"))
    await events.first(DownloadFinished)
    with pytest.raises(InvalidGameState, match=r"^Quake3 has no download to pause$"):
        await alpha.execute(Pause(game="quake3"))
    with pytest.raises(UnknownGame, match=r"^'doom' is not a game of the catalog$"):
        await alpha.execute(Pause(game="doom"))


async def test_downloads_past_the_limit_wait_in_order_and_can_be_moved(
    start_runtime: Start, tmp_path: Path
) -> None:
    """With one slot, the second and third downloads queue in the order asked, the
    Downloads view lists them so, a move reorders them, and they start as slots free."""
    for game_id in ("quake3", "cs16", "aoe2"):
        make_game(tmp_path / "bravo" / "games", game_id, size=8 * MiB)
    alpha, bravo = await peers(start_runtime, "alpha", "bravo")
    for game_id in ("quake3", "cs16", "aoe2"):
        await hashed(bravo, game_id)
        await offered(alpha, game_id)
    alpha.queue.limit = 1
    events = RuntimeEvents(alpha)
    replies = [await alpha.execute(Download(game=g)) for g in ("quake3", "cs16", "aoe2")]
    assert [r.operation for r in replies if isinstance(r, OperationStarted)] == [
        "downloading",
        "queued",
        "queued",
    ]
    view = await alpha.execute(ListDownloads())
    assert isinstance(view, DownloadsView)
    assert [(d.game, d.state) for d in view.downloads] == [
        ("quake3", "downloading"),
        ("cs16", "queued"),
        ("aoe2", "queued"),
    ]
    moved = await alpha.execute(MoveDownload(game="aoe2", step=-1))
    assert isinstance(moved, DownloadsView)
    assert [d.game for d in moved.downloads] == ["quake3", "aoe2", "cs16"]
    finished = await events.first(DownloadFinished, where=lambda e: e.game == "cs16")
    assert [e.game for e in events.of(DownloadBegin)][:3] == ["quake3", "aoe2", "cs16"]
    assert finished.game == "cs16"


async def test_a_game_shows_one_size_the_size_its_download_fetches(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Before the download, the game's view gives the size the source offers (not the
    catalog's guess); after it, the size of the copy here, the same number."""
    alpha, bravo = await serving_pair(start_runtime, tmp_path, size=8 * MiB)
    offered_size = bravo.local.library.get("quake3")
    assert offered_size is not None
    before = next(g for g in alpha.games() if g.id == "quake3")
    assert before.download_bytes == offered_size.size_bytes
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished)
    bravo.shutdown()
    await bravo.wait_stopped()
    await RuntimeEvents(alpha).until(
        lambda: not alpha.network.sources_for("quake3")[1], "bravo to leave", within=10.0
    )
    after = next(g for g in alpha.games() if g.id == "quake3")
    assert after.download_bytes == offered_size.size_bytes


async def test_pause_all_then_resume_all_restores_the_queue(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Pause all stops the running download and the queued ones; resume all starts the
    first again and queues the rest behind it, in their order."""
    for game_id in ("quake3", "cs16", "aoe2"):
        make_game(tmp_path / "bravo" / "games", game_id, size=64 * MiB)
    alpha, bravo = await peers(start_runtime, "alpha", "bravo")
    for game_id in ("quake3", "cs16", "aoe2"):
        await hashed(bravo, game_id)
        await offered(alpha, game_id)
    alpha.queue.limit = 1
    events = RuntimeEvents(alpha)
    for game_id in ("quake3", "cs16", "aoe2"):
        await alpha.execute(Download(game=game_id))
    await events.first(ChunkFinished)
    await alpha.execute(PauseAll())
    await events.first(DownloadPaused, where=lambda e: e.game == "quake3" and e.reason == "player")
    paused = await alpha.execute(ListDownloads())
    assert isinstance(paused, DownloadsView)
    assert [(d.game, d.state, d.reason) for d in paused.downloads] == [
        ("aoe2", "paused", "player"),
        ("cs16", "paused", "player"),
        ("quake3", "paused", "player"),
    ]
    resumed = await alpha.execute(ResumeAll())
    assert isinstance(resumed, DownloadsView)
    assert [(d.game, d.state) for d in resumed.downloads] == [
        ("quake3", "downloading"),
        ("cs16", "queued"),
        ("aoe2", "queued"),
    ]
