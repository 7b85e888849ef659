"""kill -9 at every step of every transaction, then startup recovery.

Each case runs the transaction in a child process
(:mod:`tests.support.install_crash_child`) that SIGKILLs itself at a chosen
point: before a named step, after the Nth extracted file, or at the Nth file
deletion of a backup or rollback. The parent then runs
:func:`recover_game_root` and asserts the root is *exactly* the old or the new
state: no staging or backup left, no intent, archives intact and the user's
own files in ``local/`` kept whenever the old install survives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.install_roots import (
    NEW_FILES,
    OLD_INSTALL,
    Snapshot,
    downloaded_snapshot,
    installed_snapshot,
    make_root,
    snapshot,
)
from tests.support.platforms import KILLED_RETURNCODE

from lanspread.core.recovery import RecoveryOutcome
from lanspread.install.sweep import recover_game_root
from lanspread.install.transaction import (
    CLEAR_INTENT,
    INSTALL_STEPS,
    MOVE_LOCAL_TO_BACKUP,
    PROMOTE,
    UNINSTALL_STEPS,
    UPDATE_STEPS,
)

REPO = Path(__file__).resolve().parents[2]
# A child imports lanspread and runs one small transaction: seconds at most even on a busy box.
CHILD_TIMEOUT_SECONDS = 60

DOWNLOADED = downloaded_snapshot()
OLD = installed_snapshot(OLD_INSTALL)
NEW = installed_snapshot(NEW_FILES)


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


def _steps_until(steps: tuple[str, ...], last: str) -> list[str]:
    return list(steps[: steps.index(last) + 1])


def _cases() -> list[tuple[str, str, Snapshot | None, Snapshot]]:
    """(transaction, kill point, installed before, expected root after recovery)."""
    cases: list[tuple[str, str, Snapshot | None, Snapshot]] = []
    for step in INSTALL_STEPS:
        after = NEW if step == CLEAR_INTENT else DOWNLOADED
        cases.append(("install", f"step:{step}", None, after))
    cases += [("install", f"file:{n}", None, DOWNLOADED) for n in (1, 3)]
    for step in UPDATE_STEPS:
        after = OLD if step in _steps_until(UPDATE_STEPS, PROMOTE) else NEW
        cases.append(("update", f"step:{step}", OLD, after))
    cases += [("update", f"file:{n}", OLD, OLD) for n in (1, 3)]
    cases += [("update", f"unlink:{n}", OLD, NEW) for n in (1, 3)]
    cases += [("update", f"rollback:{n}", OLD, OLD) for n in (1, 2)]
    for step in UNINSTALL_STEPS:
        # Once local/ has moved to the backup, recovery finishes the uninstall.
        after = OLD if step in _steps_until(UNINSTALL_STEPS, MOVE_LOCAL_TO_BACKUP) else DOWNLOADED
        cases.append(("uninstall", f"step:{step}", OLD, after))
    cases += [("uninstall", f"unlink:{n}", OLD, DOWNLOADED) for n in (1, 3)]
    return cases


CASES = _cases()


@pytest.mark.parametrize(
    ("kind", "stop", "before", "expected"),
    CASES,
    ids=[f"{kind}-{stop}" for kind, stop, _, _ in CASES],
)
def test_kill_then_recover_leaves_old_or_new_state(
    tmp_path: Path, kind: str, stop: str, before: Snapshot | None, expected: Snapshot
) -> None:
    """After a SIGKILL at this point, one recovery pass yields exactly the old or the new root."""
    installed = OLD_INSTALL if before is not None else None
    root = make_root(tmp_path / "games", installed=installed)
    assert snapshot(root) == (before if before is not None else DOWNLOADED)

    _kill_at(kind, root, stop)
    report = recover_game_root(root)

    assert snapshot(root) == expected
    assert report.outcome is not RecoveryOutcome.NEEDS_ATTENTION
    assert recover_game_root(root).outcome is RecoveryOutcome.CLEAN


def test_every_step_is_covered() -> None:
    """The case table kills at every step each transaction declares."""
    covered = {(kind, stop) for kind, stop, _, _ in CASES}
    for kind, steps in (
        ("install", INSTALL_STEPS),
        ("update", UPDATE_STEPS),
        ("uninstall", UNINSTALL_STEPS),
    ):
        assert {(kind, f"step:{step}") for step in steps} <= covered
