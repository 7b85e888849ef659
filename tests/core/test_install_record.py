"""The install-record rules: classifying local/, planning the carry-over, naming .mine copies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.install_record import (
    MAX_MINE_COPIES,
    Carry,
    CarryConflict,
    LocalFile,
    RecordedFile,
    diff_local,
    local_update_pending,
    make_record,
    mine_name,
    needs_hash,
    plan_carry,
)
from lanspread.core.recovery import (
    Intent,
    IntentLog,
    RecordSteps,
    RecoveryOutcome,
    decide_record_steps,
)

H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


def row(path: str, digest: str = H1, size: int = 10) -> RecordedFile:
    return RecordedFile(path=path, size=size, blake3=digest)


def found(path: str, digest: str | None = H1, size: int = 10) -> LocalFile:
    return LocalFile(path=path, size=size, blake3=digest)


OLD = make_record("q3", "1.0", [row("q3.exe"), row("cfg/q3config.cfg")])


def test_record_files_are_sorted_by_path() -> None:
    """A record lists its files sorted, whatever order the walk found them in."""
    record = make_record("q3", "1.0", [row("b"), row("a/c"), row("a")])
    assert [entry.path for entry in record.files] == ["a", "a/c", "b"]


def test_diff_local_classifies_changed_missing_and_added() -> None:
    """Same size and hash is shipped; another hash or size is changed; unrecorded is added."""
    diff = diff_local(
        OLD,
        [found("q3.exe"), found("cfg/q3config.cfg", H2), found("saves/slot1.sav")],
    )
    assert (diff.changed, diff.missing, diff.added) == (
        ("cfg/q3config.cfg",),
        (),
        ("saves/slot1.sav",),
    )
    assert diff.players == ("cfg/q3config.cfg", "saves/slot1.sav")
    missing = diff_local(OLD, [found("q3.exe", None, 11)])
    assert (missing.changed, missing.missing) == (("q3.exe",), ("cfg/q3config.cfg",))


def test_a_clean_tree_has_no_differences() -> None:
    """Exactly the recorded files with their hashes is clean."""
    assert diff_local(OLD, [found("q3.exe"), found("cfg/q3config.cfg")]).clean


def test_only_a_recorded_file_of_the_recorded_size_is_hashed() -> None:
    """Hashing is needed only where size alone cannot tell a change."""
    assert needs_hash(row("a"), 10)
    assert not needs_hash(row("a"), 11)
    assert not needs_hash(None, 10)


def test_carry_keeps_added_files_and_renames_changed_shipped_ones() -> None:
    """A save goes to its own path; an edited config the new version ships becomes .mine."""
    new = {"q3.exe": row("q3.exe", H3), "cfg/q3config.cfg": row("cfg/q3config.cfg", H3)}
    tree = {"q3.exe": False, "cfg": True, "cfg/q3config.cfg": False}
    plan = plan_carry(
        OLD,
        [found("q3.exe"), found("cfg/q3config.cfg", H2), found("saves/slot1.sav")],
        new,
        tree,
    )
    assert plan.kept == ("saves/slot1.sav",)
    assert plan.renamed == (Carry("cfg/q3config.cfg", "cfg/q3config.cfg.mine"),)


def test_a_changed_file_the_new_version_drops_stays_as_it_is() -> None:
    """An edited shipped file whose path the new version does not ship keeps its name."""
    plan = plan_carry(OLD, [found("cfg/q3config.cfg", H2)], {}, {})
    assert plan.kept == ("cfg/q3config.cfg",)
    assert plan.renamed == ()


def test_an_unchanged_shipped_file_is_never_carried() -> None:
    """The old version's own files are replaced or dropped, never kept."""
    assert plan_carry(OLD, [found("q3.exe"), found("cfg/q3config.cfg")], {}, {}).carries == ()


def test_a_players_copy_equal_to_the_new_file_needs_no_mine() -> None:
    """When the player's edit is exactly what the new version ships, nothing is duplicated."""
    new = {"cfg/q3config.cfg": row("cfg/q3config.cfg", H2)}
    plan = plan_carry(OLD, [found("cfg/q3config.cfg", H2)], new, {"cfg/q3config.cfg": False})
    assert plan.carries == ()


def test_a_players_file_the_new_version_now_ships_is_kept_as_mine() -> None:
    """A mod file named like a file the new version adds is kept beside it."""
    new = {"baseq3/pak1.pk3": row("baseq3/pak1.pk3")}
    tree = {"baseq3": True, "baseq3/pak1.pk3": False}
    plan = plan_carry(OLD, [found("baseq3/pak1.pk3", H2)], new, tree)
    assert plan.renamed == (Carry("baseq3/pak1.pk3", "baseq3/pak1.pk3.mine"),)


def test_mine_names_skip_taken_names() -> None:
    """``.mine`` first, then ``.mine.1``, ``.mine.2`` and so on."""
    assert mine_name("a.cfg", set()) == "a.cfg.mine"
    assert mine_name("a.cfg", {"a.cfg.mine"}) == "a.cfg.mine.1"
    assert mine_name("a.cfg", {"a.cfg.mine", "a.cfg.mine.1"}) == "a.cfg.mine.2"


def test_mine_names_are_bounded() -> None:
    """A folder full of .mine copies ends the search with a clear error."""
    taken = {"a.mine"} | {f"a.mine.{n}" for n in range(1, MAX_MINE_COPIES + 1)}
    with pytest.raises(
        CarryConflict, match=r"^cannot keep your file a: 1000 copies already exist$"
    ):
        mine_name("a", taken)


def test_an_earlier_mine_copy_is_the_players_and_pushes_the_next_one_on() -> None:
    """A .mine kept by an earlier update is carried as is; the new copy takes .mine.1."""
    new = {"cfg/q3config.cfg": row("cfg/q3config.cfg", H3)}
    tree = {"cfg": True, "cfg/q3config.cfg": False}
    plan = plan_carry(
        OLD, [found("cfg/q3config.cfg", H2), found("cfg/q3config.cfg.mine", H2)], new, tree
    )
    assert plan.kept == ("cfg/q3config.cfg.mine",)
    assert plan.renamed == (Carry("cfg/q3config.cfg", "cfg/q3config.cfg.mine.1"),)


def test_a_players_file_under_a_new_file_is_a_conflict() -> None:
    """A save whose folder is a file (or link) in the new version cannot be placed."""
    with pytest.raises(
        CarryConflict,
        match=r"^cannot keep your file saves/slot1.sav: the new version has a file named saves$",
    ):
        plan_carry(OLD, [found("saves/slot1.sav")], {"saves": row("saves")}, {"saves": False})


def test_without_a_record_only_paths_the_new_version_ships_are_replaced() -> None:
    """An install made before records: every path the new version does not ship is kept."""
    new = {"q3.exe": row("q3.exe", H3)}
    plan = plan_carry(None, [found("q3.exe", None), found("saves/slot1.sav", None)], new, {})
    assert plan.kept == ("saves/slot1.sav",)


@given(
    paths=st.lists(st.from_regex(r"[a-c]{1,2}(/[a-c]{1,2})?", fullmatch=True), unique=True),
    shipped=st.sets(st.from_regex(r"[a-c]{1,2}(/[a-c]{1,2})?", fullmatch=True)),
)
def test_every_players_file_lands_on_its_own_free_name(paths: list[str], shipped: set[str]) -> None:
    """Property: each added file is carried once, to a name nothing else in the new tree has."""
    new = {path: row(path, H3) for path in shipped}
    tree = dict.fromkeys(shipped, False)
    try:
        plan = plan_carry(OLD, [found(path, H2) for path in paths], new, tree)
    except CarryConflict:
        return
    targets = [carry.target for carry in plan.carries]
    assert len(set(targets)) == len(targets)
    assert not set(targets) & set(shipped)
    assert sorted(carry.source for carry in plan.carries) == sorted(paths)


def test_local_update_pending_needs_a_known_other_version() -> None:
    """Only a recorded installed version that differs from the downloaded one is an update."""
    assert local_update_pending(True, True, "1.0", "2.0")
    assert not local_update_pending(True, True, "2.0", "2.0")
    assert not local_update_pending(True, True, None, "2.0")
    assert not local_update_pending(True, False, "1.0", None)
    assert not local_update_pending(False, True, "1.0", "2.0")


@pytest.mark.parametrize(
    ("intent", "outcome", "steps"),
    [
        (Intent.INSTALLING, RecoveryOutcome.ROLLED_FORWARD, RecordSteps(commit_pending=True)),
        (Intent.INSTALLING, RecoveryOutcome.ROLLED_BACK, RecordSteps(drop_pending=True)),
        (Intent.INSTALLING, RecoveryOutcome.INTENT_CLEARED, RecordSteps(drop_pending=True)),
        (Intent.UPDATING, RecoveryOutcome.ROLLED_FORWARD, RecordSteps(commit_pending=True)),
        (Intent.UPDATING, RecoveryOutcome.ROLLED_BACK, RecordSteps(drop_pending=True)),
        (Intent.UPDATING, RecoveryOutcome.INTENT_CLEARED, RecordSteps(drop_pending=True)),
        (
            Intent.UNINSTALLING,
            RecoveryOutcome.ROLLED_FORWARD,
            RecordSteps(drop_pending=True, drop_record=True),
        ),
        (
            Intent.UNINSTALLING,
            RecoveryOutcome.INTENT_CLEARED,
            RecordSteps(drop_pending=True, drop_record=True),
        ),
        (Intent.UNINSTALLING, RecoveryOutcome.ROLLED_BACK, RecordSteps(drop_pending=True)),
        (Intent.NONE, RecoveryOutcome.CLEAN, RecordSteps(drop_pending=True)),
        (Intent.NONE, RecoveryOutcome.CLEANED_STALE, RecordSteps(drop_pending=True)),
        (IntentLog.UNREADABLE, RecoveryOutcome.CLEANED_STALE, RecordSteps(drop_pending=True)),
        (IntentLog.UNREADABLE, RecoveryOutcome.NEEDS_ATTENTION, RecordSteps()),
    ],
)
def test_record_rows(
    intent: Intent | IntentLog, outcome: RecoveryOutcome, steps: RecordSteps
) -> None:
    """Each row of the record table: the record follows the outcome of the directories."""
    assert decide_record_steps(intent, outcome) == steps


@given(st.sampled_from([*Intent, IntentLog.UNREADABLE]), st.sampled_from(list(RecoveryOutcome)))
def test_a_pending_record_is_never_both_committed_and_dropped(
    intent: Intent | IntentLog, outcome: RecoveryOutcome
) -> None:
    """Property: the steps never commit and drop the pending record in the same pass, and only
    an interrupted install or update that rolled forward commits one."""
    steps = decide_record_steps(intent, outcome)
    assert not (steps.commit_pending and steps.drop_pending)
    if steps.commit_pending:
        assert intent in (Intent.INSTALLING, Intent.UPDATING)
        assert outcome is RecoveryOutcome.ROLLED_FORWARD
