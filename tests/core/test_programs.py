"""Play's rule for the programs of unpinned versions, and its bounded record."""

from __future__ import annotations

from lanspread.core.programs import ProgramRecord, play_question

QUESTION = (
    "This version of Quake III Arena was not pinned by the organizer and its program "
    "changed since you last played: run it?"
)
FIRST_QUESTION = (
    "This version of Quake III Arena was not pinned by the organizer: its program "
    "comes from other players and nobody vouched for it. Run it?"
)


def ask(record: ProgramRecord, digest: str, *, pinned: bool = False) -> str | None:
    return play_question("quake3", "Quake III Arena", digest, pinned=pinned, record=record)


def test_a_first_program_asks_and_a_changed_program_asks_again() -> None:
    """An unpinned game's first program asks before it runs (nobody vouched for it, so
    an attacker's first "update" does not run unasked); once run it is remembered, and
    another digest for that game (an update or a peer's replacement) asks again."""
    record = ProgramRecord()
    assert ask(record, "aa") == FIRST_QUESTION
    assert ask(record, "aa", pinned=True) is None
    record.ran("quake3", "aa")
    assert ask(record, "aa") is None
    assert ask(record, "bb") == QUESTION


def test_an_accepted_program_never_asks_again_and_a_pin_never_asks() -> None:
    """Once run or accepted, a digest runs at once, even going back to it; a version the
    party catalog pins runs whatever its program."""
    record = ProgramRecord()
    record.ran("quake3", "aa")
    record.ran("quake3", "bb")
    assert ask(record, "aa") is None
    assert ask(record, "cc", pinned=True) is None
    assert ask(record, "cc") == QUESTION


def test_the_record_survives_encoding_and_is_bounded() -> None:
    """What is written to the state folder reads back the same; the oldest programs are
    forgotten first, so a flood of versions cannot grow it without limit."""
    record = ProgramRecord(limit=2)
    for game, digest in (("a", "1"), ("b", "2"), ("c", "3")):
        record.ran(game, digest)
    again = ProgramRecord.decode(record.encode())
    assert (again.last_run("a"), again.last_run("c")) == (None, "3")
    assert (again.is_accepted("1"), again.is_accepted("2")) == (False, True)
