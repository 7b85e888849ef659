"""Every CLI test runs with a private home: the platform folders point into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest

# The variables platformdirs reads for the folders lanspread uses (XDG on Linux,
# the known-folder fallbacks on Windows), plus HOME for everything else.
HOME_VARIABLES = (
    "HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "LOCALAPPDATA",
    "APPDATA",
)


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and the XDG folders of this process, and its children, into ``tmp_path``."""
    home = tmp_path / "home"
    for variable in HOME_VARIABLES:
        monkeypatch.setenv(variable, str(home / variable.lower()))
    monkeypatch.setenv("HOME", str(home))
    return home
