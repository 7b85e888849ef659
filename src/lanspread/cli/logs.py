"""Logging of the ``lanspread`` commands: stderr, and a rotating file beside it.

Both ``lanspread`` and ``lanspread peer-cli`` log to stderr (what a terminal or a
driving script sees) and to ``lanspread.log`` in the log folder (what a player can
send after the party). The file rotates at :data:`MAX_LOG_BYTES` and keeps
:data:`LOG_BACKUP_COUNT` old files, so the disk it takes is bounded.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOG_FILE_NAME = "lanspread.log"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A LAN party at INFO writes a few hundred kilobytes a day; 5 MiB keeps the whole
# event, and a DEBUG session's last minutes, while staying small enough to attach.
MAX_LOG_BYTES = 5 * 1024 * 1024

# Rotated files kept beside the current one: 1 + 3 files bound the log at 20 MiB,
# nothing next to the games on the same disk, yet enough for a few sessions back.
LOG_BACKUP_COUNT = 3


def parse_log_level(value: str) -> str:
    """``--log-level``: one of :data:`LOG_LEVELS`, in any case."""
    level = value.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a log level; choose one of {', '.join(LOG_LEVELS).lower()}"
        )
    return level


# Where the log goes without --log-dir, as --help says it.
APP_LOG_DIR_HELP = "the platform's log folder, or STATE_DIR/log with --state-dir"
PEER_CLI_LOG_DIR_HELP = "STATE_DIR/log"


def add_log_arguments(
    parser: argparse.ArgumentParser, *, defaults: bool = True, log_dir_help: str = APP_LOG_DIR_HELP
) -> None:
    """``--log-level`` and ``--log-dir``, for every command."""
    parser.add_argument(
        "--log-level",
        type=parse_log_level,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        default="INFO" if defaults else argparse.SUPPRESS,
        help="debug, info, warning, error or critical, in any case (default info)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None if defaults else argparse.SUPPRESS,
        help=f"folder of the rotating log file (default: {log_dir_help})",
    )


@contextmanager
def stderr_logging(level: str) -> Iterator[None]:
    """Log records of ``level`` and above to stderr while the context lasts."""
    handler = logging.StreamHandler(sys.stderr)
    with _installed(handler, level):
        yield


@contextmanager
def file_logging(log_dir: Path, level: str) -> Iterator[Path | None]:
    """Also log to ``log_dir/lanspread.log``, rotated; yields its path.

    A log folder that cannot be created costs the file, never the run: a warning
    says why and the context yields ``None``.
    """
    path = log_dir.absolute() / LOG_FILE_NAME
    try:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # logs name peers and paths
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUP_COUNT, encoding="utf-8"
        )
    except OSError as exc:
        logging.getLogger("lanspread").warning(
            "no log file: cannot write to %s: %s", path, exc.strerror or exc
        )
        yield None
        return
    with _installed(handler, level):
        yield path


@contextmanager
def _installed(handler: logging.Handler, level: str) -> Iterator[None]:
    """``handler`` on the root logger at ``level``; removed and closed afterwards."""
    root = logging.getLogger()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
