"""The rules of the download queue: order, auto-resume, pause reason, free space."""

from __future__ import annotations

from lanspread.core.download_queue import (
    PLAYER,
    QUEUED,
    SPACE_MARGIN_BYTES,
    Offer,
    move,
    should_auto_resume,
    source_left_message,
    space_refusal,
    to_start,
)
from lanspread.core.engine import ALL_PEERS_GONE

DIGEST = "d" * 64


def test_a_source_back_at_the_same_version_and_manifest_resumes() -> None:
    """A download paused by leaving sources resumes on an offer of its version, whose
    manifest is the journal's or not known before asking (a complete copy)."""
    for digest in (DIGEST, None):
        offers = [Offer("1.0", digest)]
        assert should_auto_resume(
            ALL_PEERS_GONE, version="1.0", manifest_digest=DIGEST, offers=offers
        )


def test_another_version_or_manifest_does_not_resume() -> None:
    """An offer of another version, or of the same version at another manifest, or no
    offer at all leaves the download paused."""
    for offers in ([Offer("2.0", None)], [Offer("1.0", "e" * 64)], []):
        assert not should_auto_resume(
            ALL_PEERS_GONE, version="1.0", manifest_digest=DIGEST, offers=offers
        )


def test_a_download_the_player_paused_never_resumes_by_itself() -> None:
    """Paused by the player, queued or interrupted by a restart: no auto-resume."""
    for reason in (PLAYER, QUEUED, "restart"):
        assert not should_auto_resume(
            reason, version="1.0", manifest_digest=DIGEST, offers=[Offer("1.0", DIGEST)]
        )


def test_move_clamps_to_the_ends_and_ignores_strangers() -> None:
    """Moving up or down swaps neighbours, stops at either end, and leaves the order
    alone for a game not queued."""
    order = ("a", "b", "c")
    assert move(order, "b", -1) == ("b", "a", "c")
    assert move(order, "b", 1) == ("a", "c", "b")
    assert move(order, "a", -1) == order
    assert move(order, "c", 1) == order
    assert move(order, "z", 1) == order


def test_free_slots_start_the_first_queued() -> None:
    """Only as many queued downloads start as slots are free, first first."""
    assert to_start(("a", "b", "c"), active=1, limit=3) == ("a", "b")
    assert to_start(("a",), active=3, limit=3) == ()
    assert to_start(("a",), active=5, limit=3) == ()


def test_the_pause_reason_names_who_left_and_how_far() -> None:
    """The card's reason names the last source that left and the whole percent."""
    assert source_left_message("Alice", 35.9) == "Alice left at 35%"
    assert source_left_message(None, 0.0) == "Every source left at 0%"


def test_a_download_the_disk_cannot_hold_is_refused_with_both_sizes() -> None:
    """Free space below the download plus the margin refuses it, naming the game and
    the needed and free sizes; enough space passes."""
    gib = 1024**3
    assert space_refusal("Quake", 2 * gib, 3 * gib) is None
    assert space_refusal("Quake", 2 * gib, 2 * gib + SPACE_MARGIN_BYTES - 1) == (
        "not enough disk space for Quake: it needs 2.1 GB, 2.2 GB free"
    )
