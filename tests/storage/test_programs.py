"""The record of programs run, on disk: read back, and a bad file is an empty record."""

from __future__ import annotations

from pathlib import Path

from lanspread.core.programs import ProgramRecord
from lanspread.storage.programs import PROGRAMS_FILE, load_programs, program_digest, save_programs


def test_a_saved_record_loads_back_and_a_missing_one_is_empty(tmp_path: Path) -> None:
    """What Play remembered is there after a restart; no file is no program run yet."""
    assert load_programs(tmp_path).last_run("quake3") is None
    record = ProgramRecord()
    record.ran("quake3", "ab" * 32)
    save_programs(tmp_path, record)
    assert load_programs(tmp_path).last_run("quake3") == "ab" * 32


def test_a_malformed_or_linked_record_is_an_empty_one(tmp_path: Path) -> None:
    """Garbage, or a link planted in its place, costs at most one more question."""
    (tmp_path / PROGRAMS_FILE).write_text("not json")
    assert load_programs(tmp_path).last_run("quake3") is None
    (tmp_path / PROGRAMS_FILE).unlink()
    target = tmp_path / "elsewhere.json"
    record = ProgramRecord()
    record.ran("quake3", "cd" * 32)
    target.write_bytes(record.encode())
    (tmp_path / PROGRAMS_FILE).symlink_to(target)
    assert load_programs(tmp_path).last_run("quake3") is None


def test_the_program_digest_changes_with_any_byte(tmp_path: Path) -> None:
    """One changed byte of the executable is another program."""
    program = tmp_path / "start.sh"
    program.write_bytes(b"#!/bin/sh\necho a\n")
    first = program_digest(program)
    program.write_bytes(b"#!/bin/sh\necho b\n")
    assert program_digest(program) != first
    assert len(first) == 64
