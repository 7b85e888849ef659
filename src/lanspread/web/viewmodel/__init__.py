"""The UI view model: facts in, everything the page draws out.

Theory of operation
-------------------
The page is a thin renderer: it never decides what a card says. This package turns
a :class:`ViewInput` (the catalog, the runtime's authoritative game views, and the
overlays the UI state store keeps) into a :class:`ViewModel` of labels, action
states and progress numbers, ready for JSON. No I/O and no clock: the same input
always gives the same view.

What a game may do is not decided here either. Each game arrives with the runtime's
lifecycle state and the commands the runtime would accept
(:mod:`lanspread.core.lifecycle`, the one table of those rules); a card draws the
state and offers only those commands. One card's primary button, by state:

===============================  ====================================================
state                            button
===============================  ====================================================
downloading, update-downloading  Downloading (fill and label: percent; detail: speed)
installing, updating             Installing, Updating (fill: percent once extraction
                                 reports it)
uninstalling, removing           Uninstalling, Removing files
running                          Stop (detail: Running)
(a pending download or update)   Checking peers: the optimistic answer to a click only
paused, update-paused            Resume (fill: the percentage already on disk; the card
                                 notes "Paused at N% — why")
failed, update-failed,           Retry (the card shows the failure)
downloaded-update-failed
found                            Unavailable, with the folder's story: the card and the
                                 detail view say why it is not lanspread's
found-offered                    Download (beside the player's files, which stay)
update-available, update-staged, Update
downloaded-update-available
installed                        Play (Installed when the catalog names no executable)
downloaded                       Install
not-downloaded                   Download
unavailable                      Unavailable
===============================  ====================================================

A paused or failed download comes from the runtime's game snapshot
(``GameView.download_state``), never from events, so it survives a restart of the
runtime and of the page alike; Discard (the ``cancel`` command, which runs the
download's own sweep) is offered in the detail view whenever the runtime allows it.

Overlays never decide the state on their own. The snapshot does: download progress
is drawn only while the game is downloading, install progress only while it
installs or updates, and a pending click only while no operation runs. So a missed
lifecycle event can never leave a spinner behind: the next snapshot shows the truth.

Modules: ``_facts`` (what comes in), ``_views`` (what goes out), ``_labels``
(numbers in words, artwork), ``_cards`` (a game's card), ``_dialogs`` (uninstall,
verify, notices), ``_build`` (the whole page).
"""

from lanspread.web.viewmodel._build import build_view, transfer_view
from lanspread.web.viewmodel._cards import (
    APPROXIMATE_SIZE,
    DOWNLOAD_SIZE,
    FOUND_EXPLANATION,
    FOUND_STATUS,
    card,
    download_percent,
    install_percent,
    primary_action,
    primary_aria_label,
    secondary_actions,
    shelf,
    size_of,
    status_of,
)
from lanspread.web.viewmodel._dialogs import (
    KEEP_LABEL,
    MAX_LISTED_FILES,
    deletes_label,
    file_list,
    notice_view,
    uninstall_dialog,
    uninstall_text,
    unrecorded_verify_view,
    verify_view,
)
from lanspread.web.viewmodel._facts import (
    OPTIMISTIC_COMMANDS,
    DownloadSample,
    GameFacts,
    InstallSample,
    NoticeFacts,
    PeerFacts,
    RuntimeFacts,
    RuntimeState,
    SelfFacts,
    SourceFacts,
    StrayFacts,
    TransferFacts,
    ViewInput,
)
from lanspread.web.viewmodel._labels import (
    ARTWORK_PATTERNS,
    MAX_ETA_HOURS,
    art_slots,
    artwork,
    avatar_color,
    count_label,
    emblem,
    format_bytes,
    format_eta,
    format_limit,
    format_percent,
    format_speed,
    monogram,
    percent_of,
)
from lanspread.web.viewmodel._views import (
    Action,
    ActionKind,
    Artwork,
    CardView,
    ConflictSideView,
    ConflictView,
    FileListView,
    FilterCounts,
    NoticeView,
    PeerCard,
    ProgressView,
    RuntimeView,
    SecondaryAction,
    SetupView,
    SourceView,
    StatusView,
    TransferView,
    UninstallDialogView,
    VerifyView,
    ViewModel,
)

__all__ = [
    "APPROXIMATE_SIZE",
    "ARTWORK_PATTERNS",
    "DOWNLOAD_SIZE",
    "FOUND_EXPLANATION",
    "FOUND_STATUS",
    "KEEP_LABEL",
    "MAX_ETA_HOURS",
    "MAX_LISTED_FILES",
    "OPTIMISTIC_COMMANDS",
    "Action",
    "ActionKind",
    "Artwork",
    "CardView",
    "ConflictSideView",
    "ConflictView",
    "DownloadSample",
    "FileListView",
    "FilterCounts",
    "GameFacts",
    "InstallSample",
    "NoticeFacts",
    "NoticeView",
    "PeerCard",
    "PeerFacts",
    "ProgressView",
    "RuntimeFacts",
    "RuntimeState",
    "RuntimeView",
    "SecondaryAction",
    "SelfFacts",
    "SetupView",
    "SourceFacts",
    "SourceView",
    "StatusView",
    "StrayFacts",
    "TransferFacts",
    "TransferView",
    "UninstallDialogView",
    "VerifyView",
    "ViewInput",
    "ViewModel",
    "art_slots",
    "artwork",
    "avatar_color",
    "build_view",
    "card",
    "count_label",
    "deletes_label",
    "download_percent",
    "emblem",
    "file_list",
    "format_bytes",
    "format_eta",
    "format_limit",
    "format_percent",
    "format_speed",
    "install_percent",
    "monogram",
    "notice_view",
    "percent_of",
    "primary_action",
    "primary_aria_label",
    "secondary_actions",
    "shelf",
    "size_of",
    "status_of",
    "transfer_view",
    "uninstall_dialog",
    "uninstall_text",
    "unrecorded_verify_view",
    "verify_view",
]
