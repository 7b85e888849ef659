"""The Downloads panel of the view model: rows, labels, buttons and the tab title."""

from __future__ import annotations

from lanspread.runtime.download_queue import DownloadEntry, DownloadsView, UploadEntry
from lanspread.web.viewmodel._downloads import downloads_panel, page_title

MB = 1000 * 1000


def entry(game: str, state: str, done: int = 0, total: int = 0, **more: object) -> DownloadEntry:
    fields: dict[str, object] = {
        "reason": "",
        "message": "",
        "bytes_per_second": 0.0,
        "eta_seconds": None,
    }
    fields.update(more)
    return DownloadEntry(
        game=game,
        name=game.title(),
        state=state,
        done_bytes=done,
        total_bytes=total,
        **fields,  # type: ignore[arg-type]
    )


def view(*entries: DownloadEntry, uploads: tuple[UploadEntry, ...] = ()) -> DownloadsView:
    return DownloadsView(
        downloads=entries,
        download_rate=2.5 * MB,
        upload_rate=10 * MB,
        uploads=uploads,
        free_bytes=120_000 * MB,
    )


def test_rows_keep_the_queue_order_with_their_words_and_buttons() -> None:
    """Running, queued and paused downloads show in the runtime's order, each with its
    state, sizes, rate, reason and the buttons its state allows (no move up for the
    first queued, no move down for the last)."""
    panel = downloads_panel(
        view(
            entry("quake3", "downloading", 35 * MB, 155 * MB, bytes_per_second=5 * MB),
            entry("cs16", "queued"),
            entry("openttd", "queued"),
            entry("teeworlds", "paused", reason="player", message="paused by you"),
            entry(
                "aoe2",
                "paused",
                10 * MB,
                40 * MB,
                reason="all-peers-gone",
                message="Alice left at 25%",
            ),
        )
    )
    assert [(r.game, r.state_label, r.buttons) for r in panel.rows] == [
        ("quake3", "Downloading", ("pause",)),
        ("cs16", "Queued", ("move-down", "pause")),
        ("openttd", "Queued", ("move-up", "pause")),
        ("teeworlds", "Paused", ("resume",)),
        ("aoe2", "Paused", ("resume",)),
    ]
    first, queued, _last, by_player, paused = panel.rows
    assert (first.percent_label, first.done_label, first.rate_label) == (
        "22%",
        "35.0 MB of 155 MB",
        "5.0 MB/s",
    )
    assert queued.note == "Starts when a running download finishes"
    assert paused.note == "Paused: Alice left at 25%"
    assert by_player.note == "Paused by you"
    assert (by_player.done_label, paused.done_label) == ("", "10.0 MB of 40.0 MB")
    assert (panel.active, panel.can_pause_all, panel.can_resume_all) == (3, True, True)


def test_totals_uploads_and_free_space_are_labelled() -> None:
    """The panel gives total down and up rates, who pulls what from us, and free space."""
    upload = UploadEntry(
        peer_id="p" * 64,
        peer_name="Alice",
        game="quake3",
        game_name="Quake 3",
        bytes_per_second=10 * MB,
    )
    panel = downloads_panel(view(uploads=(upload,)))
    assert (panel.down_label, panel.up_label, panel.free_label) == (
        "↓ 2.5 MB/s",
        "↑ 10.0 MB/s",
        "120 GB free in the game folder",
    )
    assert [(u.peer, u.game, u.rate_label) for u in panel.uploads] == [
        ("Alice", "Quake 3", "10.0 MB/s")
    ]
    assert (panel.rows, panel.active, panel.can_pause_all) == ((), 0, False)


def test_the_tab_title_shows_the_progress_of_the_running_downloads() -> None:
    """The title adds the running downloads' bytes together; queued and paused ones and
    downloads of unknown size do not count; with none running it is the name alone."""
    running = (
        entry("quake3", "downloading", 30 * MB, 100 * MB),
        entry("cs16", "downloading", 12 * MB, 0),
        entry("aoe2", "downloading", 0, 0),
        entry("dota", "paused", 100 * MB, 100 * MB),
    )
    assert page_title(running) == "[30%] lanspread"
    assert page_title(running[3:]) == "lanspread"
