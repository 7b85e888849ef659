"""The download settle table: every root's facts, every row, and the proofs it keeps."""

from __future__ import annotations

import itertools

import pytest

from lanspread.core.settling import (
    SETTLE_ROWS,
    Journal,
    SettleDecision,
    SettleFacts,
    SettleRow,
    Sweep,
    decide_settle,
)

EVERY_ROOT = tuple(
    SettleFacts(real_dir, sentinel, journal, intent, record)
    for real_dir, sentinel, journal, intent, record in itertools.product(
        (False, True), (False, True), Journal, (False, True), (False, True)
    )
)


def test_every_root_matches_exactly_one_row() -> None:
    """The rows partition the facts: each of the 48 roots has one decision."""
    assert len(EVERY_ROOT) == 48
    for facts in EVERY_ROOT:
        assert sum(row.matches(facts) for row in SETTLE_ROWS) == 1, facts


@pytest.mark.parametrize("row", SETTLE_ROWS, ids=lambda row: row.name)
def test_every_row_is_used(row: SettleRow) -> None:
    """Each row decides some root, and ``decide_settle`` gives that row's decision."""
    roots = [facts for facts in EVERY_ROOT if row.matches(facts)]
    assert roots
    for facts in roots:
        assert decide_settle(facts) == row.decision


@pytest.mark.parametrize(
    ("facts", "decision"),
    [
        (SettleFacts(real_dir=False, journal=Journal.VALID, record=True), (False, Sweep.NOTHING)),
        (
            SettleFacts(True, sentinel=True, journal=Journal.VALID, record=True),
            (False, Sweep.COMMITTED_LEFTOVERS),
        ),
        (SettleFacts(True, sentinel=True, journal=Journal.CORRUPT), (False, Sweep.NOTHING)),
        (
            SettleFacts(True, journal=Journal.VALID, intent=True, record=True),
            (True, Sweep.PAUSED_LEFTOVERS),
        ),
        (SettleFacts(True, journal=Journal.VALID), (True, Sweep.NOTHING)),
        (
            SettleFacts(True, journal=Journal.CORRUPT, intent=True, record=True),
            (False, Sweep.NOTHING),
        ),
        (SettleFacts(True, journal=Journal.CORRUPT, record=True), (False, Sweep.PAYLOAD)),
        (SettleFacts(True, record=True), (False, Sweep.PAYLOAD)),
        (SettleFacts(True), (False, Sweep.NOTHING)),
    ],
    ids=[
        "a link or a file",
        "committed",
        "committed, no record",
        "paused, install intent beside it",
        "paused, no record",
        "install recovery owns it",
        "corrupt journal",
        "orphan of a kill",
        "the player's folder",
    ],
)
def test_the_rows_of_the_start(facts: SettleFacts, decision: tuple[bool, Sweep]) -> None:
    """The everyday roots of a start get the documented decision."""
    assert decide_settle(facts) == SettleDecision(*decision)


def test_nothing_is_swept_without_the_record_or_through_a_link() -> None:
    """Over every root: a sweep needs a real folder and a valid ownership record, and an
    install intent keeps the payload for install recovery."""
    for facts in EVERY_ROOT:
        sweep = decide_settle(facts).sweep
        if sweep is not Sweep.NOTHING:
            assert facts.real_dir, facts
            assert facts.record, facts
        if sweep is Sweep.PAYLOAD:
            assert not facts.intent, facts
            assert not facts.sentinel, facts
            assert facts.journal is not Journal.VALID, facts


def test_a_paused_download_is_a_valid_journal_without_a_sentinel() -> None:
    """Over every root: paused exactly when a real folder has a valid journal and no
    committed sentinel, with or without the record or an intent."""
    for facts in EVERY_ROOT:
        paused = facts.real_dir and not facts.sentinel and facts.journal is Journal.VALID
        assert decide_settle(facts).paused == paused, facts
