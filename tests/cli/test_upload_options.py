"""--upload-limit and --gaming-cap: MiB/s in, bounded bytes a second out, saved values otherwise."""

from __future__ import annotations

import argparse

import pytest

from lanspread.cli.app import build_parser
from lanspread.cli.peer_cli import limit_from_mib, upload_limits
from lanspread.core.uploads import DEFAULT_GAMING_CAP, UNLIMITED
from lanspread.errors import ConfigError
from lanspread.storage.settings import Settings

MIB = 1024 * 1024


def test_mib_a_second_become_bytes_a_second_within_bounds() -> None:
    """0 is unlimited, fractions round; below 1 or above 10240 MiB/s is refused by name."""
    assert limit_from_mib(0, "--upload-limit") == UNLIMITED
    assert limit_from_mib(1.5, "--upload-limit") == 1.5 * MIB
    for value in (0.5, -1.0, 20000.0):
        with pytest.raises(ConfigError) as caught:
            limit_from_mib(value, "--gaming-cap")
        assert str(caught.value) == f"--gaming-cap {value:g}: expected 0 or 1-10240 MiB/s"


def test_options_given_win_over_the_saved_ones() -> None:
    """Each option replaces its saved value; one left out keeps the saved one."""
    saved = Settings(upload_limit=7 * MIB, gaming_upload_cap=3 * MIB)
    args = argparse.Namespace(upload_limit=None, gaming_cap=None)
    assert upload_limits(args, saved) == (7 * MIB, 3 * MIB)
    assert upload_limits(argparse.Namespace(upload_limit=2.0, gaming_cap=None), saved) == (
        2 * MIB,
        3 * MIB,
    )
    assert upload_limits(argparse.Namespace(), Settings()) == (UNLIMITED, DEFAULT_GAMING_CAP)


def test_both_front_ends_take_the_options() -> None:
    """The app and the peer CLI parse --upload-limit and --gaming-cap as MiB/s."""
    parser = build_parser()
    app = parser.parse_args(["--upload-limit", "30", "--gaming-cap", "10"])
    assert (app.upload_limit, app.gaming_cap) == (30.0, 10.0)
    cli = parser.parse_args(
        ["peer-cli", "--name", "a", "--game-dir", "g", "--state-dir", "s", "--upload-limit", "5"]
    )
    assert (cli.upload_limit, cli.gaming_cap) == (5.0, None)
