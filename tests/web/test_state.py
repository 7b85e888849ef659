"""The UI state store: overlays from events, always bounded by authoritative snapshots."""

from __future__ import annotations

import math

import pytest

from lanspread.core.library import Availability, GameSummary
from lanspread.runtime.events import (
    ActiveOperationsChanged,
    ChunkFinished,
    DownloadAllPeersGone,
    DownloadBegin,
    DownloadCancelled,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    GameExited,
    GameStarted,
    InstallBegin,
    InstallFailed,
    InstallFinished,
    InstallProgress,
    LocalLibraryChanged,
    PeerDiscovered,
    RemoveFailed,
    RemoveFinished,
    RenamedFile,
    UninstallFailed,
    UninstallFinished,
)
from lanspread.web.state import (
    MAX_ERROR_LENGTH,
    MAX_NOTICES,
    SPEED_SMOOTHING_SECONDS,
    GameOverlay,
    UiState,
)
from lanspread.web.viewmodel import DownloadSample, InstallSample, NoticeFacts


def progress(done: int, total: int = 1000, speed: float = 50.0) -> DownloadProgress:
    return DownloadProgress(
        game="quake3",
        downloaded_bytes=done,
        total_bytes=total,
        bytes_per_second=speed,
        eta_seconds=(total - done) / speed,
    )


def downloading(store: UiState, game: str = "quake3") -> None:
    store.apply(ActiveOperationsChanged(operations={game: "downloading"}))


def test_progress_overlay_follows_events_while_downloading() -> None:
    """DownloadBegin seeds the sample with resumed bytes; progress replaces it."""
    store = UiState()
    downloading(store)
    store.apply(
        DownloadBegin(
            game="quake3", version="1.0", total_bytes=1000, sources=("p1",), resumed_bytes=200
        )
    )
    assert store.overlay("quake3").download == DownloadSample(200, 1000, 0.0, None)
    store.apply(progress(500))
    assert store.overlay("quake3").download == DownloadSample(500, 1000, 50.0, 10.0)


def test_download_speed_is_averaged_over_seconds() -> None:
    """A burst then a silent second reads as a falling rate, not as 50 then 0; the ETA
    follows the averaged rate, and a new download starts its average afresh."""
    now = [100.0]
    store = UiState(clock=lambda: now[0])
    downloading(store)
    store.apply(progress(500, speed=50.0))
    assert store.overlay("quake3").download == DownloadSample(500, 1000, 50.0, 10.0)
    now[0] += SPEED_SMOOTHING_SECONDS
    store.apply(progress(500, speed=1e-9))
    sample = store.overlay("quake3").download
    assert sample is not None
    assert sample.bytes_per_second == pytest.approx(50.0 / math.e)
    assert sample.eta_seconds == pytest.approx(500 / (50.0 / math.e))
    store.apply(
        DownloadBegin(game="quake3", version="1", total_bytes=1000, sources=(), resumed_bytes=0)
    )
    store.apply(progress(100, speed=7.0))
    restarted = store.overlay("quake3").download
    assert restarted is not None
    assert restarted.bytes_per_second == 7.0


def test_snapshot_without_download_drops_progress() -> None:
    """Progress is kept only while the snapshot says downloading."""
    store = UiState()
    downloading(store)
    store.apply(progress(500))
    store.apply(ActiveOperationsChanged(operations={}))
    assert store.overlay("quake3") == GameOverlay()


def test_reconcile_drops_install_progress_when_idle() -> None:
    """Install progress survives while installing or updating, and not after."""
    store = UiState()
    store.apply(ActiveOperationsChanged(operations={"quake3": "installing"}))
    store.apply(InstallBegin(game="quake3", update=False))
    store.apply(InstallProgress(game="quake3", extracted_bytes=5, total_bytes=10))
    store.reconcile({"quake3": "updating"})
    assert store.overlay("quake3").install == InstallSample(5, 10)
    store.reconcile({"quake3": None})
    assert store.overlay("quake3").install is None


def test_failure_sets_error_until_next_operation() -> None:
    """A *Failed event sets the error line; a snapshot showing a new operation clears it."""
    store = UiState()
    store.apply(InstallFailed(game="quake3", reason="disk full"))
    assert store.overlay("quake3").last_error == "Install failed: disk full"
    store.reconcile({})
    assert store.overlay("quake3").last_error == "Install failed: disk full"
    store.reconcile({"quake3": "installing"})
    assert store.overlay("quake3").last_error is None


def test_a_download_failure_is_no_overlay() -> None:
    """A failed download is the runtime snapshot's fact: the event sets no error line."""
    store = UiState()
    store.apply(DownloadFailed(game="quake3", reason="every peer left"))
    assert store.overlay("quake3") == GameOverlay()


def test_a_content_conflict_is_told_in_a_sentence_not_in_digests() -> None:
    """A download stopped on a content conflict tells the player where to choose, in
    words, not the runtime's reason full of peer ids and digests; other failures keep
    their reason."""
    store = UiState()
    store.apply(
        DownloadFailed(
            game="quake3",
            reason="the peers offering quake3 1.0 disagree on its content (ab offers content cd)",
            conflict=True,
        )
    )
    store.apply(DownloadFailed(game="doom", reason="no peer has it"))
    assert [(n.game_id, n.message, n.kind) for n in store.notices] == [
        (
            "quake3",
            "Download stopped: the players offering it disagree on its content. "
            "Open the game to choose whose copy to trust.",
            "error",
        ),
        ("doom", "Download failed: no peer has it", "error"),
    ]


def test_error_stays_while_same_operation_continues() -> None:
    """An operation already running when the failure arrived does not clear it again."""
    store = UiState()
    store.reconcile({"quake3": "installing"})
    store.apply(InstallFailed(game="quake3", reason="disk full"))
    store.reconcile({"quake3": "installing"})
    assert store.overlay("quake3").last_error == "Install failed: disk full"


def test_every_failure_kind_has_its_prefix() -> None:
    """Uninstall and remove failures are named too; a finished event clears the error."""
    store = UiState()
    store.apply(UninstallFailed(game="a", reason="busy"))
    store.apply(RemoveFailed(game="b", reason="denied"))
    assert store.overlay("a").last_error == "Uninstall failed: busy"
    assert store.overlay("b").last_error == "Removing files failed: denied"
    store.apply(InstallFinished(game="a"))
    store.apply(RemoveFinished(game="b"))
    assert store.overlay("a").last_error is None
    assert store.overlay("b").last_error is None


def test_long_failure_reason_is_clipped() -> None:
    """A peer-supplied reason cannot flood the card."""
    store = UiState()
    store.apply(InstallFailed(game="quake3", reason="x" * 5000))
    error = store.overlay("quake3").last_error
    assert error is not None
    assert len(error) == MAX_ERROR_LENGTH
    assert error.endswith("…")


def test_pending_click_until_reply_or_snapshot() -> None:
    """A click is pending until its reply, or until a snapshot shows the real operation."""
    store = UiState()
    store.apply(InstallFailed(game="quake3", reason="no archives"))
    store.mark_pending("quake3", "download")
    assert store.overlay("quake3").pending == "download"
    assert store.overlay("quake3").last_error is None
    assert not store.clear_pending("quake3", "update")
    assert store.clear_pending("quake3", "download")
    assert store.overlay("quake3").pending is None

    store.mark_pending("quake3", "download")
    store.reconcile({"quake3": "downloading"})
    assert store.overlay("quake3").pending is None
    assert not store.clear_pending("quake3", "download")


def test_failure_event_resolves_pending() -> None:
    """A failure for the game ends its optimistic state at once."""
    store = UiState()
    store.mark_pending("quake3", "download")
    store.apply(DownloadFailed(game="quake3", reason="no peer has it"))
    assert store.overlay("quake3").pending is None


def test_events_never_make_a_game_paused() -> None:
    """Every source leaving, then any other download event, leaves no paused overlay:
    paused is the runtime snapshot's fact, true after a restart as well."""
    store = UiState()
    downloading(store)
    store.apply(progress(430))
    store.apply(ActiveOperationsChanged(operations={}))
    store.apply(DownloadAllPeersGone(game="quake3"))
    assert store.overlay("quake3") == GameOverlay()
    for ending in (
        DownloadCancelled(game="quake3"),
        DownloadFinished(game="quake3", version="1.0"),
        RemoveFinished(game="quake3"),
        LocalLibraryChanged(
            revision=3,
            games=(
                GameSummary(
                    id="quake3",
                    availability=Availability.READY,
                    version="1.0",
                    installed=False,
                    size_bytes=1,
                ),
            ),
        ),
    ):
        store.apply(ending)
        assert store.overlay("quake3") == GameOverlay(), ending


def test_a_game_start_only_records_when_it_was_last_played() -> None:
    """Whether a game runs is the runtime snapshot's fact (its state): GameStarted only
    records the start time (for sorting by last played, kept across a runtime restart),
    GameExited keeps nothing; both ask the page to redraw from the snapshot."""
    store = UiState(clock=lambda: 1234.5)
    assert store.apply(GameStarted(game="quake3", pid=42)) is True
    assert store.overlay("quake3") == GameOverlay(last_played=1234.5)
    assert store.apply(GameExited(game="quake3", returncode=0)) is True
    assert store.overlay("quake3") == GameOverlay(last_played=1234.5)
    store.reset()
    assert store.overlay("quake3") == GameOverlay(last_played=1234.5)
    assert store.overlay("cs16") == GameOverlay()


def test_noise_events_do_not_redraw() -> None:
    """Per-chunk events change nothing the page shows; other events ask for a redraw."""
    store = UiState()
    chunk = ChunkFinished(game="quake3", path="a.eti", offset=0, length=1, peer_id="p")
    assert store.apply(chunk) is False
    assert store.apply(PeerDiscovered(peer_id="p", name="bob", addr="10.0.0.2:1")) is True


def test_reset_forgets_everything_but_when_games_were_played() -> None:
    """A new runtime starts from a clean store; only the last-played times stay."""
    store = UiState(clock=lambda: 7.0)
    store.apply(DownloadFailed(game="quake3", reason="x"))
    store.mark_pending("cs16", "download")
    store.apply(GameStarted(game="aoe2", pid=1))
    store.reset()
    for game in ("quake3", "cs16"):
        assert store.overlay(game) == GameOverlay()
    assert store.overlay("aoe2") == GameOverlay(last_played=7.0)


def test_a_changed_game_folder_forgets_the_old_folders_progress_and_failure() -> None:
    """Progress or a failure seen in the old folder never shows on the new one; a
    click still pending stays, it belongs to the process."""
    store = UiState()
    downloading(store)
    store.apply(progress(430))
    store.apply(InstallFailed(game="cs16", reason="no archives"))
    store.mark_pending("ut99", "download")
    assert store.game_dir_changed()
    assert store.overlay("quake3") == GameOverlay()
    assert store.overlay("cs16") == GameOverlay()
    assert store.overlay("ut99").pending == "download"
    assert not store.game_dir_changed()


def test_an_install_that_kept_files_leaves_a_notice() -> None:
    """InstallFinished with kept or renamed files and UninstallFinished with kept files
    become notices with growing ids; an install that kept nothing leaves none."""
    store = UiState()
    store.apply(InstallFinished(game="cs16"))
    nothing_kept = store.notices
    assert nothing_kept == ()
    store.apply(
        InstallFinished(
            game="quake3",
            kept=("saves/a.sav",),
            renamed=(RenamedFile(path="q3config.cfg", kept_as="q3config.cfg.mine"),),
        )
    )
    store.apply(UninstallFinished(game="aoe2", kept=("save.dat",)))
    store.apply(UninstallFinished(game="cs16"))
    assert store.notices == (
        NoticeFacts(1, "quake3", ("saves/a.sav",), (("q3config.cfg", "q3config.cfg.mine"),)),
        NoticeFacts(2, "aoe2", ("save.dat",), uninstalled=True),
    )


def test_notices_are_bounded_and_outlive_a_runtime_restart() -> None:
    """Only the newest MAX_NOTICES stay; a reset keeps them and their ids keep growing,
    so a page never shows one twice."""
    store = UiState()
    for _ in range(MAX_NOTICES + 3):
        store.apply(InstallFinished(game="quake3", kept=("s",)))
    assert [notice.id for notice in store.notices] == list(range(4, MAX_NOTICES + 4))
    store.reset()
    store.apply(InstallFinished(game="quake3", kept=("s",)))
    assert store.notices[-1].id == MAX_NOTICES + 4
    assert len(store.notices) == MAX_NOTICES
