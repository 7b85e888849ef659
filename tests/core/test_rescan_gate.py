"""The per-game rescan gate: a burst of notices costs one scan plus at most one more."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.rescan_gate import RescanGate


def test_notice_while_idle_starts_a_scan() -> None:
    """Idle to scanning: the caller is told to scan now."""
    gate = RescanGate()

    assert gate.notice("a") is True
    assert gate.is_scanning("a")


def test_finished_without_notices_goes_idle() -> None:
    """Scanning to idle: no rescan when nothing happened meanwhile."""
    gate = RescanGate()
    gate.notice("a")

    assert gate.finished("a") is False
    assert not gate.is_scanning("a")
    assert gate.notice("a") is True


def test_notice_while_scanning_marks_one_pending_rescan() -> None:
    """Scanning to pending: the notice does not start a scan; finishing asks for one more."""
    gate = RescanGate()
    gate.notice("a")

    assert gate.notice("a") is False
    assert gate.finished("a") is True
    assert gate.is_scanning("a")
    assert gate.finished("a") is False
    assert not gate.is_scanning("a")


def test_burst_collapses_to_one_extra_rescan() -> None:
    """A hundred notices during one scan cost exactly one extra scan."""
    gate = RescanGate()
    started = [gate.notice("a") for _ in range(100)]

    extra = [gate.finished("a"), gate.finished("a")]

    assert started.count(True) == 1
    assert extra == [True, False]


def test_games_are_gated_independently() -> None:
    """Notices for one game never hold back or trigger scans of another."""
    gate = RescanGate()
    gate.notice("a")

    assert gate.notice("b") is True
    gate.notice("a")
    assert gate.finished("b") is False
    assert gate.finished("a") is True


def test_forget_drops_scanning_and_pending() -> None:
    """After forget, the game is idle and a notice starts a fresh scan."""
    gate = RescanGate()
    gate.notice("a")
    gate.notice("a")

    gate.forget("a")

    assert not gate.is_scanning("a")
    assert gate.finished("a") is False
    assert gate.notice("a") is True


@given(st.lists(st.sampled_from(["notice", "finish"]), max_size=60))
def test_scans_never_overlap_and_no_notice_is_lost(events: list[str]) -> None:
    """For any sequence: at most one scan runs, and every notice is covered by a later scan.

    A model runs the caller's loop: a True answer starts a scan (from notice) or
    another scan (from finished); "finish" ends the running scan, if any.
    """
    gate = RescanGate()
    running = False
    unscanned_notice = False
    for event in events:
        if event == "notice":
            if gate.notice("a"):
                assert not running
                running = True
                unscanned_notice = False
            else:
                assert running
                unscanned_notice = True
        elif running:
            again = gate.finished("a")
            assert again is unscanned_notice
            running = again
            unscanned_notice = False
        assert gate.is_scanning("a") is running
