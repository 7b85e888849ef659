"""The Downloads panel: the queue in order, rates, who pulls from us, free space.

Built from the runtime's :class:`~lanspread.runtime.download_queue.DownloadsView`;
every label is made here, the page only draws it. The page's title carries the
progress of the running downloads ("[42%] lanspread").
"""

from __future__ import annotations

from collections.abc import Mapping

from lanspread.core.download_queue import PLAYER
from lanspread.runtime.download_queue import DownloadEntry, DownloadsView
from lanspread.web.viewmodel._downloads_views import DownloadRow, DownloadsPanel, UploadRow
from lanspread.web.viewmodel._labels import (
    format_bytes,
    format_eta,
    format_percent,
    format_speed,
    percent_of,
)

PAGE_TITLE = "lanspread"

# What each state of a download is called, and the buttons it offers, in order.
_STATE_LABELS: Mapping[str, str] = {
    "downloading": "Downloading",
    "queued": "Queued",
    "paused": "Paused",
    "failed": "Failed",
}
_BUTTONS: Mapping[str, tuple[str, ...]] = {
    "downloading": ("pause",),
    "queued": ("move-up", "move-down", "pause"),
    "paused": ("resume",),
    "failed": ("resume",),
}


def _row(entry: DownloadEntry, first: bool = False, last: bool = False) -> DownloadRow:
    percent = percent_of(entry.done_bytes, entry.total_bytes)
    running = entry.state == "downloading"
    note = None
    if entry.state == "paused" and entry.reason == PLAYER:
        note = "Paused by you"
    elif entry.state == "paused" and entry.message:
        note = f"Paused: {entry.message}"
    elif entry.state == "failed":
        note = f"Failed: {entry.message}"
    elif entry.state == "queued":
        note = "Starts when a running download finishes"  # the pill says Queued
    return DownloadRow(
        game=entry.game,
        name=entry.name,
        state=entry.state,
        state_label=_STATE_LABELS.get(entry.state, entry.state),
        percent=percent,
        percent_label=format_percent(percent),
        done_label=(
            f"{format_bytes(entry.done_bytes)} of {format_bytes(entry.total_bytes)}"
            if entry.total_bytes > 0
            else ""
        ),
        rate_label=format_speed(entry.bytes_per_second) if running else None,
        eta_label=format_eta(entry.eta_seconds) if running else None,
        note=note,
        buttons=tuple(
            button
            for button in _BUTTONS.get(entry.state, ())
            if not (button == "move-up" and first) and not (button == "move-down" and last)
        ),
    )


def page_title(entries: tuple[DownloadEntry, ...]) -> str:
    """ "[42%] lanspread" while downloads run (their bytes together), else the name."""
    running = [e for e in entries if e.state == "downloading" and e.total_bytes > 0]
    if not running:
        return PAGE_TITLE
    done = sum(e.done_bytes for e in running)
    total = sum(e.total_bytes for e in running)
    return f"[{format_percent(percent_of(done, total))}] {PAGE_TITLE}"


def downloads_panel(view: DownloadsView) -> DownloadsPanel:
    queued = [entry.game for entry in view.downloads if entry.state == "queued"]
    rows = tuple(
        _row(entry, first=entry.game == queued[0], last=entry.game == queued[-1])
        if entry.state == "queued"
        else _row(entry)
        for entry in view.downloads
    )
    free = (
        "Free space unknown"
        if view.free_bytes is None
        else f"{format_bytes(view.free_bytes)} free in the game folder"
    )
    return DownloadsPanel(
        rows=rows,
        active=sum(row.state in {"downloading", "queued"} for row in rows),
        down_label=f"↓ {format_speed(view.download_rate)}",
        up_label=f"↑ {format_speed(view.upload_rate)}",
        free_label=free,
        uploads=tuple(
            UploadRow(
                peer=upload.peer_name,
                game=upload.game_name,
                rate_label=format_speed(upload.bytes_per_second),
            )
            for upload in view.uploads
        ),
        page_title=page_title(view.downloads),
        can_pause_all=any(row.state in {"downloading", "queued"} for row in rows),
        can_resume_all=any(row.state == "paused" for row in rows),
    )
