"""Fixtures of the install-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanspread.core.gameroot import INSTALLING_DIR, OWNED_MARKER


@pytest.fixture
def dest(root: Path) -> Path:
    """The staging folder as the install transaction hands it over: it holds its marker."""
    staging = root / INSTALLING_DIR
    staging.mkdir()
    (staging / OWNED_MARKER).write_bytes(b"")
    return staging
