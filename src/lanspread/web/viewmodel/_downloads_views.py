"""What the page draws of the Downloads panel (built by ``_downloads``)."""

from __future__ import annotations

import msgspec


class DownloadRow(msgspec.Struct, frozen=True):
    game: str
    name: str
    state: str
    state_label: str
    percent: float
    percent_label: str
    done_label: str
    """ "35 MB of 155 MB"; empty before the size is known."""
    rate_label: str | None
    eta_label: str | None
    note: str | None
    """Why it waits or stopped ("Paused: Alice left at 35%")."""
    buttons: tuple[str, ...]
    """``pause``, ``resume``, ``move-up``, ``move-down``: the page sends each as a command."""


class UploadRow(msgspec.Struct, frozen=True):
    peer: str
    game: str
    rate_label: str


class DownloadsPanel(msgspec.Struct, frozen=True):
    rows: tuple[DownloadRow, ...]
    active: int
    """Downloads running or queued: the count beside the sidebar's Downloads entry."""
    down_label: str
    up_label: str
    free_label: str
    uploads: tuple[UploadRow, ...]
    page_title: str
    """The tab's title: progress of the running downloads first, when any."""
    can_pause_all: bool
    can_resume_all: bool
