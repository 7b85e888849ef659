"""The operation table: one active operation per game, and only the download handoffs."""

from __future__ import annotations

import pytest

from lanspread.core.operations import OperationKind, OperationTable
from lanspread.errors import InvalidGameState, OperationInProgress


@pytest.mark.parametrize("kind", list(OperationKind))
def test_begin_marks_the_game_active(kind: OperationKind) -> None:
    """Any kind of operation can start on an idle game and is reported while it runs."""
    table = OperationTable()

    table.begin("quake3", kind)

    assert table.get("quake3") is kind
    assert table.is_active("quake3")
    assert dict(table.snapshot()) == {"quake3": kind}


@pytest.mark.parametrize("first", list(OperationKind))
@pytest.mark.parametrize("second", list(OperationKind))
def test_second_operation_on_a_busy_game_is_refused(
    first: OperationKind, second: OperationKind
) -> None:
    """A busy game refuses every second command with OperationInProgress naming the first."""
    table = OperationTable()
    table.begin("quake3", first)

    with pytest.raises(OperationInProgress) as caught:
        table.begin("quake3", second)

    assert str(caught.value) == f"quake3 is busy: {first.value}"
    assert table.get("quake3") is first


def test_games_are_independent() -> None:
    """An operation on one game does not block another game."""
    table = OperationTable()
    table.begin("a", OperationKind.DOWNLOADING)
    table.begin("b", OperationKind.UNINSTALLING)

    assert dict(table.snapshot()) == {
        "a": OperationKind.DOWNLOADING,
        "b": OperationKind.UNINSTALLING,
    }


@pytest.mark.parametrize("target", [OperationKind.INSTALLING, OperationKind.UPDATING])
def test_download_hands_off_to_install_or_update(target: OperationKind) -> None:
    """Downloading may become Installing or Updating without ever going idle."""
    table = OperationTable()
    table.begin("quake3", OperationKind.DOWNLOADING)

    table.handoff("quake3", target)

    assert table.get("quake3") is target


ALLOWED = {
    (OperationKind.DOWNLOADING, OperationKind.INSTALLING),
    (OperationKind.DOWNLOADING, OperationKind.UPDATING),
}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (current, target)
        for current in OperationKind
        for target in OperationKind
        if (current, target) not in ALLOWED
    ],
)
def test_every_other_handoff_is_refused(current: OperationKind, target: OperationKind) -> None:
    """Only the download-to-install handoffs exist; every other change is InvalidGameState."""
    table = OperationTable()
    table.begin("quake3", current)

    with pytest.raises(InvalidGameState) as caught:
        table.handoff("quake3", target)

    assert str(caught.value) == f"quake3 cannot go from {current.value} to {target.value}"
    assert table.get("quake3") is current


def test_handoff_of_an_idle_game_is_refused() -> None:
    """There is nothing to hand off when the game is idle."""
    table = OperationTable()

    with pytest.raises(InvalidGameState) as caught:
        table.handoff("quake3", OperationKind.INSTALLING)

    assert str(caught.value) == "quake3 cannot go from idle to installing"
    assert not table.is_active("quake3")


def test_end_clears_and_reports_what_ran() -> None:
    """end returns the finished kind, leaves the game idle and free for a new operation."""
    table = OperationTable()
    table.begin("quake3", OperationKind.DOWNLOADING)
    table.handoff("quake3", OperationKind.INSTALLING)

    finished = table.end("quake3")
    table.begin("quake3", OperationKind.UNINSTALLING)

    assert finished is OperationKind.INSTALLING
    assert table.get("quake3") is OperationKind.UNINSTALLING


def test_end_of_an_idle_game_is_none() -> None:
    """Ending twice (or never started) is harmless and says None."""
    table = OperationTable()

    assert table.end("quake3") is None
    assert table.get("quake3") is None
    assert not table.is_active("quake3")


def test_snapshot_is_a_frozen_copy() -> None:
    """A snapshot neither changes with the table nor lets callers change the table."""
    table = OperationTable()
    table.begin("a", OperationKind.REMOVING)
    snapshot = table.snapshot()

    table.end("a")
    table.begin("b", OperationKind.DOWNLOADING)

    assert dict(snapshot) == {"a": OperationKind.REMOVING}
    with pytest.raises(TypeError):
        snapshot["c"] = OperationKind.UPDATING  # type: ignore[index]


def test_an_update_downloading_beside_its_root_leaves_the_root_served_until_its_install() -> None:
    """A download marked beside its root is not root-busy (the old version stays served);
    the handoff to its install, or its end, makes the root the operation's again."""
    table = OperationTable()
    table.begin("quake3", OperationKind.DOWNLOADING)
    table.begin("openttd", OperationKind.DOWNLOADING)
    table.beside("quake3")
    assert table.root_busy() == frozenset({"openttd"})
    table.handoff("quake3", OperationKind.UPDATING)
    assert table.root_busy() == frozenset({"openttd", "quake3"})
    table.end("quake3")
    table.begin("quake3", OperationKind.DOWNLOADING)
    assert "quake3" in table.root_busy()  # a new operation starts root-busy


def test_only_a_running_operation_can_run_beside_its_root() -> None:
    """Marking an idle game is a bug, said plainly."""
    table = OperationTable()
    with pytest.raises(InvalidGameState) as caught:
        table.beside("quake3")
    assert str(caught.value) == "quake3 has no operation to run beside its files"
