"""``--log-level`` and the rotating log file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lanspread.cli import logs
from lanspread.cli.app import build_parser
from lanspread.cli.logs import (
    LOG_BACKUP_COUNT,
    LOG_FILE_NAME,
    MAX_LOG_BYTES,
    file_logging,
    stderr_logging,
)

PEER_CLI_ARGS = ["peer-cli", "--name", "a", "--game-dir", "g", "--state-dir", "s"]

LEVEL_ERROR = (
    "argument --log-level: 'loud' is not a log level; "
    "choose one of debug, info, warning, error, critical"
)


@pytest.mark.parametrize(
    "prefix", [[], ["demo"], PEER_CLI_ARGS], ids=["lanspread", "demo", "peer-cli"]
)
@pytest.mark.parametrize("given", ["warning", "Warning", "WARNING"])
def test_log_level_is_case_insensitive(prefix: list[str], given: str) -> None:
    """Every command takes the level in any case and hands on its upper-case name."""
    args = build_parser().parse_args([*prefix, "--log-level", given])
    assert args.log_level == "WARNING"


@pytest.mark.parametrize("prefix", [[], PEER_CLI_ARGS], ids=["lanspread", "peer-cli"])
def test_unknown_log_level_is_refused_by_the_parser(
    prefix: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A level that does not exist stops the command with status 2 and lists the choices."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*prefix, "--log-level", "loud"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.endswith(f": error: {LEVEL_ERROR}\n")


def test_log_level_defaults_to_info() -> None:
    """Without ``--log-level`` both commands log at INFO."""
    assert build_parser().parse_args([]).log_level == "INFO"
    assert build_parser().parse_args(PEER_CLI_ARGS).log_level == "INFO"


def test_log_bounds_are_sane() -> None:
    """The file is bounded: a few MiB each, a few files, tens of MiB at most in all."""
    assert 1024 * 1024 <= MAX_LOG_BYTES <= 16 * 1024 * 1024
    assert 1 <= LOG_BACKUP_COUNT <= 10
    assert MAX_LOG_BYTES * (LOG_BACKUP_COUNT + 1) <= 64 * 1024 * 1024


def test_file_log_rotates_and_keeps_a_bounded_number_of_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the size bound the file rotates; only LOG_BACKUP_COUNT old files are kept."""
    monkeypatch.setattr(logs, "MAX_LOG_BYTES", 2000)
    log_dir = tmp_path / "log"
    record = "x" * 100
    with file_logging(log_dir, "INFO") as path:
        assert path == log_dir / LOG_FILE_NAME
        for number in range(500):
            logging.getLogger("lanspread.test").info("%d %s", number, record)
    names = sorted(entry.name for entry in log_dir.iterdir())
    kept = [f"{LOG_FILE_NAME}.{n}" for n in range(1, LOG_BACKUP_COUNT + 1)]
    assert names == sorted([LOG_FILE_NAME, *kept])
    assert all(entry.stat().st_size <= 2000 for entry in log_dir.iterdir())
    assert "499 " + record in (log_dir / LOG_FILE_NAME).read_text()


def test_file_log_is_removed_from_the_root_logger_afterwards(tmp_path: Path) -> None:
    """Leaving the context detaches and closes the handler and restores the root level."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    with stderr_logging("DEBUG"), file_logging(tmp_path / "log", "DEBUG"):
        assert root.level == logging.DEBUG
        assert len(root.handlers) == len(before[0]) + 2
    assert (list(root.handlers), root.level) == before


def test_file_log_keeps_records_below_the_level_out(tmp_path: Path) -> None:
    """At WARNING, an INFO record stays out of the file and a WARNING one goes in."""
    with file_logging(tmp_path / "log", "WARNING") as path:
        logging.getLogger("lanspread.test").info("quiet")
        logging.getLogger("lanspread.test").warning("loud")
    assert path is not None
    lines = path.read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == ["WARNING lanspread.test: loud"]


def test_a_log_folder_that_cannot_exist_costs_only_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file where the log folder should be: a warning, no log file, the run goes on."""
    blocker = tmp_path / "log"
    blocker.write_text("a file, not a folder")
    with file_logging(blocker, "INFO") as path:
        assert path is None
    expected = f"no log file: cannot write to {blocker / LOG_FILE_NAME}: "
    assert [record.getMessage()[: len(expected)] for record in caplog.records] == [expected]


@pytest.mark.parametrize(
    "prefix", [[], ["demo"], PEER_CLI_ARGS], ids=["lanspread", "demo", "peer-cli"]
)
def test_log_dir_is_taken_by_every_command(prefix: list[str], tmp_path: Path) -> None:
    """``--log-dir`` names the log folder; without it the command picks the default (None)."""
    parser = build_parser()
    assert parser.parse_args([*prefix, "--log-dir", str(tmp_path)]).log_dir == tmp_path
    assert parser.parse_args(prefix).log_dir is None
