"""The view model: every action state, its transitions, labels and artwork."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.catalog import CatalogGame
from lanspread.core.conflict import ContentConflict, ContentSide
from lanspread.core.lifecycle import Halt, LifecycleFacts, actions, state_of
from lanspread.core.operations import OperationKind
from lanspread.runtime.replies import UninstallPlan, VerifyReply
from lanspread.web.viewmodel import (
    MAX_LISTED_FILES,
    Action,
    ConflictSideView,
    ConflictView,
    DownloadSample,
    GameFacts,
    InstallSample,
    NoticeFacts,
    PeerFacts,
    RuntimeFacts,
    RuntimeState,
    SelfFacts,
    SourceFacts,
    ViewInput,
    artwork,
    build_view,
    card,
    deletes_label,
    file_list,
    format_bytes,
    format_eta,
    format_percent,
    format_speed,
    monogram,
    notice_view,
    percent_of,
    primary_action,
    uninstall_dialog,
    unrecorded_verify_view,
    verify_view,
)

QUAKE = CatalogGame(
    id="quake3",
    name="Quake III Arena",
    description="Fast arena shooter.",
    size_bytes=480_000_000,
    genre="Shooter",
    max_players=16,
    executable="quake3.exe",
)
HALFWAY = DownloadSample(
    downloaded_bytes=240_000_000,
    total_bytes=480_000_000,
    bytes_per_second=12_500_000.0,
    eta_seconds=19.2,
)


def facts(*, operation: str | None = None, running: bool = False, **changes: Any) -> GameFacts:
    """Quake's facts as the runtime gives them: the state and the allowed commands come
    from core.lifecycle, given the operation, the running flag and the shown fields."""
    shown = dataclasses.replace(GameFacts(game=QUAKE, peer_count=2), **changes)
    staged = (
        shown.installed
        and shown.downloaded
        and shown.installed_version is not None
        and shown.installed_version != shown.local_version
    )
    halt = Halt.PAUSED if shown.paused_percent is not None else None
    if shown.failed_reason is not None:
        halt = Halt.FAILED
    lifecycle = LifecycleFacts(
        downloaded=shown.downloaded,
        installed=shown.installed,
        staged=staged,
        offered=shown.peer_count > 0,
        newer_offered=shown.update_available and not staged,
        found=shown.found_reason is not None,
        halt=halt,
        discardable=shown.discardable,
        operation=OperationKind(operation) if operation is not None else None,
        running=running,
        playable=shown.game.executable is not None,
    )
    return dataclasses.replace(shown, state=state_of(lifecycle), actions=actions(lifecycle))


def kinds(game: GameFacts) -> tuple[str, str, str | None, bool]:
    action = primary_action(game)
    return action.kind, action.label, action.command, action.busy


# -- the action table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("game", "expected"),
    [
        (facts(), ("download", "Download", "download", False)),
        (facts(peer_count=0), ("unavailable", "Unavailable", None, False)),
        (facts(pending="download"), ("checking", "Checking peers", None, True)),
        (facts(pending="update"), ("checking", "Checking peers", None, True)),
        (facts(operation="downloading"), ("downloading", "Downloading", None, True)),
        (
            facts(operation="downloading", download=HALFWAY),
            ("downloading", "50%", None, True),
        ),
        (facts(downloaded=True), ("install", "Install", "install", False)),
        (
            facts(downloaded=True, operation="installing"),
            ("installing", "Installing", None, True),
        ),
        (facts(downloaded=True, installed=True), ("play", "Play", "play", False)),
        (facts(downloaded=True, installed=True, running=True), ("running", "Stop", "stop", False)),
        (
            facts(downloaded=True, installed=True, update_available=True),
            ("update", "Update", "update", False),
        ),
        (facts(installed=True, operation="updating"), ("updating", "Updating", None, True)),
        (
            facts(installed=True, operation="uninstalling"),
            ("uninstalling", "Uninstalling", None, True),
        ),
        (facts(downloaded=True, operation="removing"), ("removing", "Removing files", None, True)),
        (facts(paused_percent=43.0), ("paused", "Resume", "download", False)),
        (
            facts(installed=True, game=dataclasses.replace(QUAKE, executable=None)),
            ("installed", "Installed", None, False),
        ),
        (facts(installed=True), ("play", "Play", "play", False)),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_primary_action_table(game: GameFacts, expected: tuple[str, str, str | None, bool]) -> None:
    """Each fact combination maps to exactly the action the module's table names."""
    assert kinds(game) == expected


def test_downloading_fill_shows_percent_and_speed() -> None:
    """A downloading card fills to the percent and reads percent plus the current speed."""
    action = primary_action(facts(operation="downloading", download=HALFWAY))
    assert action == Action(
        kind="downloading",
        label="50%",
        command=None,
        busy=True,
        percent=50.0,
        detail="12.5 MB/s",
    )
    assert card(facts(operation="downloading", download=HALFWAY)).status.label == "Downloading"


def test_progress_is_kept_only_while_downloading() -> None:
    """A download sample is drawn only while the operation table says downloading."""
    stale = facts(downloaded=True, operation=None, download=HALFWAY)
    assert primary_action(stale).kind == "install"
    assert card(stale).progress is None
    installing = facts(downloaded=True, operation="installing", download=HALFWAY)
    assert primary_action(installing).percent is None
    assert card(installing).progress is None


def test_stale_operation_is_cleared_by_the_snapshot() -> None:
    """When the snapshot no longer lists an operation, no spinner remains, whatever the overlays."""
    finished = facts(
        downloaded=True,
        installed=True,
        operation=None,
        download=HALFWAY,
        install=InstallSample(10, 20),
    )
    view = card(finished)
    assert view.action.kind == "play"
    assert not view.action.busy
    assert view.progress is None
    assert view.status.tone == "ok"


def test_checking_peers_is_only_optimistic() -> None:
    """A pending click yields to a real operation, and disappears once nothing is pending."""
    assert kinds(facts(pending="download", operation="downloading"))[0] == "downloading"
    assert kinds(facts(pending="download", operation="downloading", download=HALFWAY))[0] == (
        "downloading"
    )
    assert kinds(facts(pending=None))[0] == "download"
    assert kinds(facts(pending="install", downloaded=True))[0] == "install"


def test_paused_shows_resume_with_percentage() -> None:
    """A paused download offers Resume, fills to its share and says where it stopped."""
    action = primary_action(facts(paused_percent=43.7))
    assert (action.label, action.detail, action.percent) == ("Resume", "43%", 43.7)
    assert card(facts(paused_percent=43.7)).status.label == "Paused"
    assert card(facts(paused_percent=43.7)).note == "Paused at 43%"
    assert primary_action(facts(paused_percent=43.7, operation="downloading")).kind == (
        "downloading"
    )


def test_paused_percentage_is_clamped() -> None:
    """A journal reporting more than 100% (or less than 0) still draws a sane button."""
    assert primary_action(facts(paused_percent=140.0)).percent == 100.0
    assert primary_action(facts(paused_percent=-3.0)).detail == "0%"
    assert card(facts(paused_percent=140.0)).note == "Paused at 100%"


def test_running_game_blocks_other_actions() -> None:
    """While a game runs, the card says Running and the detail offers no uninstall."""
    view = card(facts(downloaded=True, installed=True, running=True))
    assert view.action.kind == "running"
    assert view.status.label == "Running"
    assert [action.id for action in view.actions] == ["view-files"]


def test_error_line_and_status() -> None:
    """A failed last operation shows its reason on the card and a Failed pill."""
    view = card(facts(last_error="Download failed: every peer left"))
    assert view.error == "Download failed: every peer left"
    assert view.status.label == "Failed"
    assert view.status.tone == "error"
    assert view.action.kind == "download"


def test_a_found_folder_shows_its_label_and_reason() -> None:
    """A folder lanspread did not make shows "Found — not from lanspread" and why, and the
    detail view says what lanspread does with it; with no peer offering the game the
    card offers nothing."""
    reason = "no version.ini, no download record (.lanspread.files.json); left as it is"
    view = card(facts(found_reason=reason, peer_count=0))
    assert (view.status.label, view.status.tone, view.status.reason) == (
        "Found — not from lanspread",
        "warn",
        reason,
    )
    assert (view.action.kind, view.action.label, view.action.command) == (
        "found",
        "Unavailable",
        None,
    )
    assert view.note == (
        "No version.ini, no download record (.lanspread.files.json); left as it is"
    )
    assert view.explanation == (
        "lanspread never changes or deletes your files in this folder. A download adds "
        "the game's files beside them, and stops if one of yours has a name the game needs."
    )
    plain = card(facts())
    assert (plain.status.reason, plain.explanation, plain.note) == (None, None, None)


def test_a_found_folder_a_peer_offers_can_be_downloaded_into() -> None:
    """The runtime downloads into a found folder (the player's files there stay, and a
    file in the way stops the download): with a peer offering the game the card offers
    Download and still says whose folder it is."""
    reason = "no version.ini, no download record (.lanspread.files.json); left as it is"
    view = card(facts(found_reason=reason))
    assert (view.action.kind, view.action.label, view.action.command) == (
        "download",
        "Download",
        "download",
    )
    assert (view.status.label, view.note) == (
        "Found — not from lanspread",
        reason[:1].upper() + reason[1:],
    )
    assert view.explanation is not None


def test_a_found_folder_offers_adopt_and_view_files_and_never_a_deletion() -> None:
    """A found folder offers View files, and Adopt while a peer offers the game (its
    manifest is what the folder is hashed against), each named with the game for a screen
    reader; Remove, Uninstall and Discard never appear, with peers or without."""
    adopt = ("adopt", "adopt", "Adopt as a local copy: Quake III Arena")
    view_files = ("view-files", None, "View files: Quake III Arena")
    for peers, expected in ((0, [view_files]), (2, [adopt, view_files])):
        view = card(facts(found_reason="no version.ini; left as it is", peer_count=peers))
        assert [(a.id, a.command, a.aria_label) for a in view.actions] == expected


def test_update_available() -> None:
    """An installed game with a newer version on the network offers Update, and Play aside."""
    game = facts(
        downloaded=True,
        installed=True,
        local_version="1.0",
        latest_version="1.2",
        update_available=True,
    )
    view = card(game)
    assert view.action.command == "update"
    assert view.version_label == "v1.0 → v1.2"
    assert view.status.label == "Update available"
    assert view.update
    assert [action.id for action in view.actions] == [
        "play",
        "uninstall",
        "verify",
        "view-files",
    ]


def test_a_downloaded_update_not_yet_installed_is_labelled_from_the_record() -> None:
    """Installed 1.0 with 2.0 downloaded (an update that failed or was killed) reads
    "v1.0 → v2.0" and offers Update, even with no peer online."""
    game = facts(
        downloaded=True,
        installed=True,
        local_version="2.0",
        installed_version="1.0",
        update_available=True,
        peer_count=0,
    )
    view = card(game)
    assert view.version_label == "v1.0 → v2.0"
    assert view.action.command == "update"


def test_install_progress_shows_percent_without_speed() -> None:
    """Extraction progress fills the button and the panel, with no speed or cancel."""
    view = card(facts(downloaded=True, operation="installing", install=InstallSample(300, 1200)))
    assert view.action.percent == 25.0
    assert view.action.detail == "25%"
    assert view.progress is not None
    assert (view.progress.kind, view.progress.speed_label, view.progress.can_cancel) == (
        "install",
        None,
        False,
    )


# -- the detail view -------------------------------------------------------------------------


def test_detail_progress_has_bytes_speed_eta_percent_and_cancel() -> None:
    """The detail progress panel carries every number the player wants, and Cancel."""
    view = card(facts(operation="downloading", download=HALFWAY))
    assert view.progress is not None
    assert msgspec.structs.asdict(view.progress) == {
        "kind": "download",
        "percent": 50.0,
        "percent_label": "50%",
        "done_label": "240 MB of 480 MB",
        "speed_label": "12.5 MB/s",
        "eta_label": "20s",
        "can_cancel": True,
    }
    assert [action.id for action in view.actions] == ["cancel"]


def test_remove_files_asks_with_a_warning() -> None:
    """Remove files is offered for a downloaded, uninstalled game behind a warning."""
    view = card(facts(downloaded=True))
    remove = next(action for action in view.actions if action.id == "remove")
    assert remove.danger
    assert remove.confirm == (
        "Remove the downloaded files of Quake III Arena? Getting them back means "
        "downloading 480 MB from peers again, which can take a long time."
    )
    assert [action.id for action in view.actions] == ["remove", "view-files"]


def test_uninstall_keeps_downloaded_files() -> None:
    """Uninstall is offered for an installed game, and says the files stay."""
    view = card(facts(downloaded=True, installed=True))
    uninstall = next(action for action in view.actions if action.id == "uninstall")
    assert uninstall.command == "uninstall"
    assert uninstall.confirm is not None
    assert "downloaded files stay" in uninstall.confirm
    assert "remove" not in [action.id for action in view.actions]


def test_paused_download_can_be_discarded() -> None:
    """A paused download can be resumed (primary) or discarded, and its files viewed."""
    view = card(facts(paused_percent=20.0, discardable=True))
    assert [action.id for action in view.actions] == ["discard", "view-files"]
    discard = view.actions[0]
    assert (discard.label, discard.command, discard.danger) == ("Discard download", "cancel", True)
    assert discard.confirm == (
        "Discard the paused download of Quake III Arena? The part already downloaded "
        "is deleted; getting it back means downloading it again."
    )


def test_a_card_names_who_left_or_that_it_waits_in_the_queue() -> None:
    """A download paused because its source left reads "Paused: Alice left at 35%" (the
    reason says how far itself); one waiting in the queue says what it waits for, and
    its pill says Queued."""
    left = card(facts(paused_percent=35.2, paused_reason="Alice left at 35%", discardable=True))
    assert left.note == "Paused: Alice left at 35%"
    queued = card(
        facts(paused_percent=0.0, paused_reason="queued: waits for another download to finish")
    )
    assert queued.note == "Queued: starts when a running download finishes"
    assert (queued.status.label, queued.status.tone) == ("Queued", "info")


def test_paused_card_says_how_far_and_why() -> None:
    """The runtime's reason follows the share on the card: "Paused at N% — why"; Resume is
    the main action even with no peer online (the click then says why it cannot start)."""
    view = card(
        facts(
            peer_count=0,
            paused_percent=62.5,
            paused_reason="interrupted by a restart",
            discardable=True,
        )
    )
    assert view.note == "Paused at 62% — interrupted by a restart"
    assert (view.action.kind, view.action.label, view.action.command) == (
        "paused",
        "Resume",
        "download",
    )
    assert (view.status.label, view.status.tone) == ("Paused", "warn")
    assert view.error is None
    assert "discard" in [action.id for action in view.actions]


def test_paused_note_hides_while_an_operation_runs() -> None:
    """A resumed download draws progress, not the old pause, and offers no discard."""
    view = card(
        facts(operation="downloading", paused_percent=40.0, paused_reason="x", discardable=True)
    )
    assert view.note is None
    assert view.action.kind == "downloading"
    assert [action.id for action in view.actions] == ["cancel", "view-files"]


def test_failed_download_offers_retry_and_discard() -> None:
    """A failed download shows its reason, Retry as the main action and Discard aside."""
    view = card(facts(failed_reason="disk full", discardable=True))
    assert (view.action.kind, view.action.label, view.action.command, view.action.busy) == (
        "failed",
        "Retry",
        "download",
        False,
    )
    assert view.error == "Download failed: disk full"
    assert (view.status.label, view.status.tone) == ("Failed", "error")
    assert view.note is None
    assert [action.id for action in view.actions] == ["discard", "view-files"]
    assert view.actions[0].confirm is not None
    assert view.actions[0].confirm.startswith("Discard the failed download of Quake III Arena?")


def test_failed_update_of_a_downloaded_game_retries_the_update() -> None:
    """A downloaded game refuses a plain download, so Retry sends update."""
    view = card(facts(downloaded=True, failed_reason="no peer could describe quake3"))
    assert (view.action.label, view.action.command) == ("Retry", "update")


def test_failure_without_files_offers_no_discard() -> None:
    """A download that failed before anything reached the disk has nothing to discard."""
    view = card(facts(failed_reason="simulated bug"))
    assert view.action.label == "Retry"
    assert view.actions == ()


def test_a_newer_failure_of_another_operation_wins_the_error_line() -> None:
    """The last operation's failure (an overlay) is shown before an older download failure."""
    view = card(facts(failed_reason="disk full", last_error="Install failed: bad archive"))
    assert view.error == "Install failed: bad archive"


def test_no_files_no_view_files() -> None:
    """A game with nothing on disk offers no View files."""
    assert card(facts()).actions == ()


def test_sources_list_ready_peers_first() -> None:
    """Per-peer sources show name, address and version; installed-only peers come last."""
    game = facts(
        sources=(
            SourceFacts("p2", "zed", "10.0.0.2:7000", None, ready=False),
            SourceFacts("p1", "Bob", "10.0.0.3:7000", "1.2", ready=True),
        )
    )
    sources = card(game).sources
    assert [(s.name, s.addr, s.version_label, s.ready) for s in sources] == [
        ("Bob", "10.0.0.3:7000", "v1.2", True),
        ("zed", "10.0.0.2:7000", "version unknown · installed only", False),
    ]


def test_card_labels() -> None:
    """Size, players, peers and search text are ready to print."""
    view = card(facts(peer_count=1))
    assert (view.size_label, view.players_label, view.peers_label) == (
        "~480 MB",
        "Up to 16 players",
        "1 peer",
    )
    assert card(facts(peer_count=0)).peers_label == "No peers"
    assert view.search == "quake iii arena shooter quake3"
    assert view.art.cover_url is None
    assert card(facts(has_cover=True)).art.cover_url == "/api/covers/quake3"


# -- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (12_500_000, "12.5 MB"),
        (480_000_000, "480 MB"),
        (999_499, "999 KB"),
        (999_950, "1.0 MB"),
        (2_100_000_000, "2.1 GB"),
        (11_500_000_000, "11.5 GB"),
        (3 * 10**18, "3000 PB"),
    ],
)
def test_format_bytes(count: int, text: str) -> None:
    """Sizes read in decimal units with at most three significant digits."""
    assert format_bytes(count) == text


@given(st.integers(min_value=0, max_value=10**17))
def test_format_bytes_never_shows_four_digits(count: int) -> None:
    """Below a petabyte the number part is always under 1000 and parses as a number."""
    number, unit = format_bytes(count).split(" ")
    assert float(number) < 1000
    assert unit in {"B", "KB", "MB", "GB", "TB", "PB"}


@pytest.mark.parametrize(
    ("speed", "text"),
    [
        (12_500_000.0, "12.5 MB/s"),
        (0.0, "0 B/s"),
        (-5.0, "0 B/s"),
        (float("nan"), "0 B/s"),
        (850.4, "850 B/s"),
        (1_234_567_890.0, "1.2 GB/s"),
    ],
)
def test_format_speed(speed: float, text: str) -> None:
    """The speed label reads like "12.5 MB/s"; nonsense reads as zero."""
    assert format_speed(speed) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, None),
        (float("inf"), None),
        (-1.0, None),
        (0.0, "0s"),
        (0.2, "1s"),
        (42.0, "42s"),
        (59.5, "1m 00s"),
        (185.0, "3m 05s"),
        (3600.0, "1h 00m"),
        (4320.0, "1h 12m"),
        (99 * 3600.0, "more than 99h"),
    ],
)
def test_format_eta(seconds: float | None, text: str | None) -> None:
    """ETA rounds up to whole seconds and switches units at a minute and an hour."""
    assert format_eta(seconds) == text


def test_percent_helpers() -> None:
    """Percent is clamped, empty totals read as zero and labels round down."""
    assert percent_of(5, 0) == 0.0
    assert percent_of(15, 10) == 100.0
    assert percent_of(-1, 10) == 0.0
    assert format_percent(99.99) == "99%"
    assert format_percent(100.0) == "100%"


# -- artwork -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "letters"),
    [
        ("Age of Empires II", "AE"),
        ("Quake III Arena", "QI"),
        ("OpenTTD", "OP"),
        ("The Settlers", "SE"),
        ("Battlefield: Bad Company 2", "BB"),
        ("!!!", "?"),
        ("The", "TH"),
    ],
)
def test_monogram(name: str, letters: str) -> None:
    """Monograms take the first letters of the significant words."""
    assert monogram(name) == letters


def test_artwork_is_deterministic_and_varies_by_id() -> None:
    """The same id always draws the same art; different ids draw different colours."""
    first = artwork("quake3", "Quake III Arena", None)
    assert first == artwork("quake3", "Quake III Arena", None)
    assert first.color_a != artwork("cs16", "Counter-Strike", None).color_a
    assert re.fullmatch(r"hsl\(\d{1,3} 70% 42%\)", first.color_a)
    assert 115 <= first.angle < 225
    assert 0 <= first.pattern < 8


# -- the whole view ----------------------------------------------------------------------------


def test_build_view_counts_sorts_and_names_peer_games() -> None:
    """The view sorts cards by name, counts the filters and names each peer's games."""
    aoe = dataclasses.replace(QUAKE, id="aoe2", name="Age of Empires II", executable=None)
    view = build_view(
        ViewInput(
            games=(
                facts(downloaded=True, installed=True, update_available=True),
                facts(game=aoe, peer_count=1),
            ),
            runtime=RuntimeFacts(RuntimeState.RUNNING),
            peers=(PeerFacts("p1", "bob", "10.0.0.3:7000", ("quake3", "aoe2")),),
            me=SelfFacts("alice", "p0", "0.0.0.0:7000", "/games"),
        )
    )
    assert [game.id for game in view.games] == ["quake3", "aoe2"]
    assert msgspec.structs.asdict(view.counts) == {
        "all": 2,
        "installed": 1,
        "downloadable": 1,
        "updates": 1,
    }
    assert view.peers[0].games == ("Age of Empires II", "Quake III Arena")
    assert view.peers[0].games_label == "2 games"
    assert view.peers[0].initials == "BO"
    assert view.runtime.message is None
    assert view.me is not None
    assert view.me.name == "alice"
    assert msgspec.json.decode(msgspec.json.encode(view))["games"][1]["action"]["kind"] == (
        "download"
    )


def test_cards_sort_by_shelf_then_name() -> None:
    """Games on disk come first, then games peers offer, then the rest, each by name."""

    def named(name: str, **changes: Any) -> GameFacts:
        game = dataclasses.replace(QUAKE, id=name.lower(), name=name)
        return facts(game=game, peer_count=changes.pop("peer_count", 0), **changes)

    view = build_view(
        ViewInput(
            games=(
                named("Zeta", installed=True),
                named("Alpha"),
                named("Mid", peer_count=1),
                named("Beta", paused_percent=3.0),
                named("Busy", operation="downloading"),
                named("Gamma", downloaded=True),
            ),
            runtime=RuntimeFacts(RuntimeState.RUNNING),
        )
    )
    assert [game.name for game in view.games] == ["Beta", "Gamma", "Zeta", "Busy", "Mid", "Alpha"]


def test_runtime_failure_banner() -> None:
    """A failed runtime yields a message naming the component and a restart offer."""
    view = build_view(
        ViewInput(games=(), runtime=RuntimeFacts(RuntimeState.FAILED, "server", "port in use"))
    )
    assert view.runtime.message == "The lanspread peer stopped (server): port in use"
    assert view.runtime.can_restart
    starting = build_view(ViewInput(games=(), runtime=RuntimeFacts(RuntimeState.STARTING)))
    assert not starting.runtime.can_restart
    assert starting.runtime.message == "Starting the lanspread peer…"


def test_setup_screen_facts_pass_through() -> None:
    """The first-run screen gets the suggested folder and name."""
    view = build_view(
        ViewInput(
            games=(),
            runtime=RuntimeFacts(RuntimeState.RUNNING),
            setup_needed=True,
            setup_game_dir="/home/me/games",
            setup_name="me",
        )
    )
    assert (view.setup.needed, view.setup.game_dir, view.setup.display_name) == (
        True,
        "/home/me/games",
        "me",
    )


# -- keeping the player's files -----------------------------------------------------------


def test_an_installed_game_offers_verify_named_for_the_game() -> None:
    """Verify files is offered for an idle installed game, never while it runs or is busy."""
    view = card(facts(downloaded=True, installed=True))
    verify = next(action for action in view.actions if action.id == "verify")
    assert (verify.label, verify.command, verify.aria_label, verify.danger) == (
        "Verify files",
        "verify",
        "Verify files: Quake III Arena",
        False,
    )
    for busy in (facts(installed=True, running=True), facts(installed=True, operation="updating")):
        assert "verify" not in [action.id for action in card(busy).actions]
    assert "verify" not in [action.id for action in card(facts(downloaded=True)).actions]


def plan(files: int, size: int, players: tuple[str, ...], players_bytes: int = 0) -> UninstallPlan:
    return UninstallPlan(
        game="quake3",
        keep_saves=False,
        delete_files=files,
        delete_bytes=size,
        players_files=players,
        players_bytes=players_bytes,
    )


SAVES = (*(f"saves/slot{n}.sav" for n in range(1, 8)), "baseq3/q3config.cfg")


def test_uninstall_dialog_says_what_it_deletes_and_lists_the_players_files() -> None:
    """The dialog counts files and bytes for both choices, lists the first five of the
    player's files with "and N more", and ticks Keep by default."""
    dialog = uninstall_dialog("Quake III Arena", plan(1_242, 2_100_000_000, SAVES, 10_000_000))
    assert dialog.title == "Uninstall Quake III Arena?"
    assert dialog.text == (
        "The downloaded files stay, so you can install it again without downloading."
    )
    assert dialog.delete_label == "Deletes 1,242 files, 2.1 GB, yours included"
    assert dialog.keep_delete_label == "Deletes 1,234 files, 2.1 GB; your 8 files stay"
    assert dialog.players_title == "Your own files here (saves, settings): 8"
    assert dialog.players.paths == SAVES[:MAX_LISTED_FILES]
    assert dialog.players.more_label == "and 3 more"
    assert (dialog.keep_label, dialog.keep_offered, dialog.keep_default) == (
        "Keep my saves and settings",
        True,
        True,
    )
    assert dialog.keep_aria_label == "Keep my saves and settings of Quake III Arena"


def test_uninstall_dialog_without_players_files_offers_no_checkbox() -> None:
    """With nothing of the player's in the folder there is nothing to keep: no list, no
    checkbox, one file counted in the singular."""
    dialog = uninstall_dialog("Quake III Arena", plan(1, 480, ()))
    assert dialog.delete_label == "Deletes 1 file, 480 B"
    assert (dialog.players_title, dialog.players.paths, dialog.players.more_label) == (
        None,
        (),
        None,
    )
    assert (dialog.keep_offered, dialog.keep_default) == (False, False)


def test_uninstall_dialog_when_only_the_players_files_remain() -> None:
    """Keeping everything there is deletes nothing, and the dialog says so plainly."""
    dialog = uninstall_dialog("Quake III Arena", plan(2, 30, SAVES[:2], 30))
    assert dialog.keep_delete_label == "Deletes nothing: the folder holds only your files"
    assert dialog.players.more_label is None


def verify(
    changed: tuple[str, ...] = (), missing: tuple[str, ...] = (), added: tuple[str, ...] = ()
) -> VerifyReply:
    return VerifyReply(
        game="quake3",
        version="1.0",
        ok=not (changed or missing),
        changed=changed,
        missing=missing,
        added=added,
        shipped_files=1_234,
    )


def test_verify_all_intact_counts_the_game_files() -> None:
    """An intact install says so with the count; the player's files are counted apart
    and Repair is not offered."""
    result = verify_view("Quake III Arena", verify(added=SAVES[:3]), repairable=True)
    assert (result.ok, result.tone, result.headline) == (
        True,
        "ok",
        "All 1,234 game files are intact",
    )
    assert result.players_label == "3 files of your own (saves, settings, mods) not counted"
    assert (result.changed_title, result.missing_title, result.can_repair) == (None, None, False)


def test_verify_lists_changed_and_missing_and_offers_repair() -> None:
    """Damage reads "3 changed, 1 missing" with the paths; Repair is offered, named for
    the game, and its confirmation says changed configs are kept as .mine."""
    changed = ("baseq3/q3config.cfg", "baseq3/pak0.pk3", "q3.exe")
    result = verify_view(
        "Quake III Arena", verify(changed=changed, missing=("baseq3/pak1.pk3",)), repairable=True
    )
    assert (result.ok, result.tone, result.headline) == (False, "warn", "3 changed, 1 missing")
    assert (result.changed_title, result.changed.paths) == ("Changed", changed)
    assert (result.missing_title, result.missing.paths) == ("Missing", ("baseq3/pak1.pk3",))
    assert result.players_label is None
    assert (result.can_repair, result.repair_note) == (True, None)
    assert result.repair_aria_label == "Repair Quake III Arena"
    assert result.repair_title == "Repair Quake III Arena?"
    assert result.repair_confirm == (
        "Changed and missing game files are extracted again from the downloaded files. "
        "Your own files stay where they are, and a game file you changed (a config) is "
        "kept beside the fresh one as q3config.cfg.mine."
    )


def test_verify_only_missing_and_no_archives_to_repair_from() -> None:
    """Only missing files read "2 missing"; without downloaded files Repair is not offered
    and the note says why."""
    result = verify_view("Quake III Arena", verify(missing=("a", "b")), repairable=False)
    assert result.headline == "2 missing"
    assert result.repair_confirm.endswith("kept beside the fresh one as <its name>.mine.")
    assert result.can_repair is False
    assert result.repair_note == (
        "Repair needs the downloaded files, and they are gone: download the game again."
    )


def test_verify_with_a_single_file() -> None:
    """One shipped file is counted in the singular."""
    reply = msgspec.structs.replace(verify(), shipped_files=1)
    assert verify_view("Q", reply, repairable=True).headline == "All 1 game file is intact"


def test_long_file_lists_are_cut_with_a_count() -> None:
    """A list longer than MAX_LISTED_FILES shows the first ones and "and N more"."""
    paths = tuple(f"f{n}" for n in range(1_005))
    listed = file_list(paths)
    assert listed.paths == paths[:MAX_LISTED_FILES]
    assert listed.more_label == "and 1,000 more"
    assert file_list(paths[:MAX_LISTED_FILES]).more_label is None


NAMES = {"quake3": "Quake III Arena"}


@pytest.mark.parametrize(
    ("notice", "text"),
    [
        (
            NoticeFacts(
                1,
                "quake3",
                ("saves/a.sav", "saves/b.sav", "saves/c.sav"),
                (("baseq3/q3config.cfg", "baseq3/q3config.cfg.mine"),),
            ),
            "Kept your 3 files; your changed q3config.cfg is kept as q3config.cfg.mine",
        ),
        (
            NoticeFacts(2, "quake3", ("saves/a.sav",)),
            "Kept your 1 file",
        ),
        (
            NoticeFacts(3, "quake3", (), (("a.cfg", "a.cfg.mine"), ("b/b.cfg", "b/b.cfg.mine"))),
            "Your changed a.cfg and 1 other file are kept beside the new ones as .mine",
        ),
        (
            NoticeFacts(4, "quake3", ("saves/a.sav", "saves/b.sav"), uninstalled=True),
            "Kept your 2 files in its folder",
        ),
    ],
)
def test_notices_say_what_was_kept(notice: NoticeFacts, text: str) -> None:
    """An install or uninstall that kept the player's files becomes a toast with the game's
    name as its title."""
    view = notice_view(notice, NAMES)
    assert (view.id, view.title, view.text) == (notice.id, "Quake III Arena", text)


def test_build_view_carries_the_notices() -> None:
    """The view model passes notices through in order."""
    notices = (NoticeFacts(1, "quake3", ("s",)), NoticeFacts(2, "quake3", ("t", "u")))
    view = build_view(
        ViewInput(games=(facts(),), runtime=RuntimeFacts(RuntimeState.RUNNING), notices=notices)
    )
    assert [(n.id, n.text) for n in view.notices] == [
        (1, "Kept your 1 file"),
        (2, "Kept your 2 files"),
    ]


def test_verify_without_a_record_offers_repair_only_with_downloaded_files() -> None:
    """An install without a record cannot be checked: the result says so, and Repair (which
    makes the record) is offered only when the downloaded files are there."""
    result = unrecorded_verify_view("quake3", "Quake III Arena", repairable=True)
    assert (result.ok, result.tone, result.can_repair, result.repair_note) == (
        False,
        "warn",
        True,
        None,
    )
    assert result.headline == "lanspread has no record of these files, so it cannot check them"
    assert "kept beside the fresh one as <its name>.mine" in result.repair_confirm
    gone = unrecorded_verify_view("quake3", "Quake III Arena", repairable=False)
    assert (gone.can_repair, gone.repair_note) == (
        False,
        "Repair needs the downloaded files, and they are gone: download the game again.",
    )


def test_the_uninstall_label_counts_the_players_files_in_words() -> None:
    """One kept file reads "your 1 file stays", several "your N files stay"."""
    assert deletes_label(6, 4_100_000, 1, kept=True) == "Deletes 6 files, 4.1 MB; your 1 file stays"
    assert deletes_label(1, 7, 2, kept=True) == "Deletes 1 file, 7 B; your 2 files stay"
    assert deletes_label(1, 7, 2) == "Deletes 1 file, 7 B, yours included"


def test_peers_that_sent_corrupt_data_are_named_in_the_detail_view() -> None:
    """The detail view names each excluded peer by its name (its id once it is gone),
    one line; a game every peer is trusted for has no such line."""
    bob = SourceFacts("p1", "Bob", "10.0.0.3:7000", "1.2", ready=True)
    one = card(facts(sources=(bob,), excluded_peers=("p1",)))
    assert one.distrust_note == "Not downloading from Bob: it sent corrupt data"
    two = card(facts(sources=(bob,), excluded_peers=("p1", "p9")))
    assert two.distrust_note == "Not downloading from Bob, p9: they sent corrupt data"
    assert card(facts(sources=(bob,))).distrust_note is None


def test_a_content_conflict_lists_each_side_by_peer_name_with_its_digest() -> None:
    """Each content on offer is a row naming its peers (the id of one gone) and the
    digest choose-content takes; a flood of contents is summed up; none: no panel."""
    bob = SourceFacts("p1", "Bob", "10.0.0.3:7000", "1.2", ready=True)
    conflict = ContentConflict(
        "quake3",
        "1.2",
        (ContentSide("a" * 64, ("p1",)), ContentSide("b" * 64, ("p2", "p3"))),
        more_sides=2,
    )
    view = card(facts(sources=(bob,), conflict=conflict)).conflict
    assert view == ConflictView(
        headline="The peers offering version 1.2 disagree on its content, and the organizer "
        "did not pin it. Choose the one you trust:",
        sides=(
            ConflictSideView(digest="a" * 64, peers_label="Bob"),
            ConflictSideView(digest="b" * 64, peers_label="p2, p3"),
        ),
        more_label="and 2 others",
    )
    assert card(facts(sources=(bob,))).conflict is None
