"""When the app starts the demo (only when asked), and how ``lanspread demo`` parses its
options."""

from __future__ import annotations

import pytest

from lanspread.cli.app import build_parser
from lanspread.demo import DemoMode, choose_demo_mode
from lanspread.storage.catalog_file import load_bundled_catalog

CATALOG = load_bundled_catalog()


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(None, DemoMode.OFF), (True, DemoMode.ON), (False, DemoMode.OFF)],
)
def test_the_demo_runs_only_when_asked(requested: bool | None, expected: DemoMode) -> None:
    """--demo and ``lanspread demo`` start it; nothing else does, a first run included."""
    assert choose_demo_mode(requested) is expected


def test_demo_subcommand_takes_the_app_options_before_or_after_it() -> None:
    """Options after ``demo`` win; options before it are kept; defaults stay the app's."""
    parser = build_parser()
    plain = parser.parse_args(["demo"])
    assert (plain.command, plain.name, plain.ui_port, plain.no_browser, plain.demo) == (
        "demo",
        None,
        0,
        False,
        None,
    )
    before = parser.parse_args(["--name", "Alex", "--ui-port", "8123", "demo"])
    assert (before.name, before.ui_port) == ("Alex", 8123)
    after = parser.parse_args(["--name", "Alex", "demo", "--name", "Sam", "--no-browser"])
    assert (after.name, after.no_browser) == ("Sam", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--no-demo"])
    assert parser.parse_args(["--no-demo"]).demo is False
    assert parser.parse_args(["--demo"]).demo is True
