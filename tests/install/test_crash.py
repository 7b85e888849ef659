"""kill -9 at every step of every transaction, then startup recovery.

Each case runs the transaction in a child process
(:mod:`tests.support.install_crash_child`) that SIGKILLs itself at a chosen
point: before a named step, after the Nth extracted file, or at the Nth file
deletion of a backup or rollback. The parent then runs
:func:`recover_game_root` and asserts the root is *exactly* the old or the new
state: no staging or backup left, no intent, archives intact, the player's save
and edited config in ``local/`` whichever state survives, and an install record
that names the version and files ``local/`` really holds.

The update cases start from what a finished download of 2.0 leaves: ``version.ini``
says 2.0 while ``local/`` and its record hold 1.0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from tests.support.install_roots import (
    KEPT,
    NEW_FILES,
    OLD_INSTALL,
    OLD_SHIPPED,
    UPDATED,
    Snapshot,
    digests,
    downloaded_snapshot,
    installed_snapshot,
    make_root,
    recorded,
    snapshot,
)
from tests.support.platforms import KILLED_RETURNCODE

from lanspread.core.recovery import RecoveryOutcome
from lanspread.install.sweep import recover_game_root
from lanspread.install.transaction import (
    INSTALL_STEPS,
    KEEP_SAVES_UNINSTALL_STEPS,
    MOVE_LOCAL_TO_BACKUP,
    PROMOTE,
    UNINSTALL_STEPS,
    UPDATE_STEPS,
)

REPO = Path(__file__).resolve().parents[2]
# A child imports lanspread and runs one small transaction: seconds at most even on a busy box.
CHILD_TIMEOUT_SECONDS = 60

Record = tuple[str | None, dict[str, str]] | None


class State(NamedTuple):
    tree: Snapshot
    record: Record


DOWNLOADED = State(downloaded_snapshot(), None)
INSTALLED = State(installed_snapshot(NEW_FILES), ("1.0", digests(NEW_FILES)))
OLD = State(installed_snapshot(OLD_INSTALL, "2.0"), ("1.0", digests(OLD_SHIPPED)))
NEW = State(installed_snapshot(UPDATED, "2.0"), ("2.0", digests(NEW_FILES)))
UNINSTALLED = State(downloaded_snapshot("2.0"), None)
KEPT_ONLY = State(installed_snapshot(KEPT, "2.0"), (None, {}))


def _kill_at(kind: str, root: Path, stop: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.install_crash_child", kind, str(root), stop],
        env=env,
        capture_output=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == KILLED_RETURNCODE, (
        f"child exited {done.returncode} instead of being killed: {done.stderr.decode()}"
    )


def _until(steps: tuple[str, ...], last: str) -> list[str]:
    return list(steps[: steps.index(last) + 1])


def _cases() -> list[tuple[str, str, State]]:
    """(transaction, kill point, expected root after recovery)."""
    cases: list[tuple[str, str, State]] = []
    for step in INSTALL_STEPS:
        cases.append(
            (
                "install",
                f"step:{step}",
                DOWNLOADED if step in _until(INSTALL_STEPS, PROMOTE) else INSTALLED,
            )
        )
    cases += [("install", f"file:{n}", DOWNLOADED) for n in (1, 3)]
    for step in UPDATE_STEPS:
        cases.append(
            ("update", f"step:{step}", OLD if step in _until(UPDATE_STEPS, PROMOTE) else NEW)
        )
    cases += [("update", f"file:{n}", OLD) for n in (1, 3)]
    cases += [("update", f"unlink:{n}", NEW) for n in (1, 3)]
    cases += [("update", f"rollback:{n}", OLD) for n in (1, 2)]
    for step in UNINSTALL_STEPS:
        # Once local/ has moved to the backup, recovery finishes the uninstall.
        after = OLD if step in _until(UNINSTALL_STEPS, MOVE_LOCAL_TO_BACKUP) else UNINSTALLED
        cases.append(("uninstall", f"step:{step}", after))
    cases += [("uninstall", f"unlink:{n}", UNINSTALLED) for n in (1, 3)]
    for step in KEEP_SAVES_UNINSTALL_STEPS:
        after = OLD if step in _until(KEEP_SAVES_UNINSTALL_STEPS, PROMOTE) else KEPT_ONLY
        cases.append(("uninstall-keep", f"step:{step}", after))
    cases += [("uninstall-keep", f"unlink:{n}", KEPT_ONLY) for n in (1, 3)]
    return cases


CASES = _cases()


def _start(kind: str, game_dir: Path) -> Path:
    if kind == "install":
        return make_root(game_dir)
    return make_root(game_dir, installed=OLD_INSTALL, version="2.0", recorded=OLD_SHIPPED)


@pytest.mark.parametrize(
    ("kind", "stop", "expected"), CASES, ids=[f"{kind}-{stop}" for kind, stop, _ in CASES]
)
def test_kill_then_recover_leaves_old_or_new_state(
    tmp_path: Path, kind: str, stop: str, expected: State
) -> None:
    """After a SIGKILL at this point, one recovery pass yields exactly the old or the new
    root, with the player's files in it and a record naming its true version."""
    root = _start(kind, tmp_path / "games")

    _kill_at(kind, root, stop)
    report = recover_game_root(root)

    assert State(snapshot(root), recorded(root)) == expected
    assert report.outcome is not RecoveryOutcome.NEEDS_ATTENTION
    assert recover_game_root(root).outcome is RecoveryOutcome.CLEAN
    leftovers = {p.name for p in root.iterdir() if p.name.startswith(".lanspread.install.")}
    assert leftovers <= {".lanspread.install.json"}


def test_every_step_is_covered() -> None:
    """The case table kills at every step each transaction declares."""
    covered = {(kind, stop) for kind, stop, _ in CASES}
    for kind, steps in (
        ("install", INSTALL_STEPS),
        ("update", UPDATE_STEPS),
        ("uninstall", UNINSTALL_STEPS),
        ("uninstall-keep", KEEP_SAVES_UNINSTALL_STEPS),
    ):
        assert {(kind, f"step:{step}") for step in steps} <= covered
