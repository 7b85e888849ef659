"""The lock check: pyproject.toml and the hashed lock files must agree."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools import lock

ROOT = Path(__file__).resolve().parents[2]


def _copy_project(tmp_path: Path) -> tuple[Path, Path]:
    pyproject = tmp_path / "pyproject.toml"
    shutil.copyfile(ROOT / "pyproject.toml", pyproject)
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return pyproject, tmp_path / "requirements"


def test_the_committed_locks_match_pyproject() -> None:
    """The repository's own lock files were made from its pyproject.toml as it stands."""
    assert lock.check() == []


def test_a_changed_range_is_reported_for_every_lock_it_feeds(tmp_path: Path) -> None:
    """Moving a dependency's range without `make lock` fails the check for app and test."""
    pyproject, lock_dir = _copy_project(tmp_path)
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('"blake3>=0.4,<2"', '"blake3>=0.4,<3"'), encoding="utf-8")
    assert lock.check(pyproject, lock_dir) == [
        "requirements/app.txt does not match pyproject.toml",
        "requirements/test.txt does not match pyproject.toml",
    ]


def test_a_changed_test_extra_leaves_the_app_lock_valid(tmp_path: Path) -> None:
    """A test tool's range feeds only the test lock."""
    pyproject, lock_dir = _copy_project(tmp_path)
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('"pytest>=8,<10"', '"pytest>=8,<11"'), encoding="utf-8")
    assert lock.check(pyproject, lock_dir) == [
        "requirements/test.txt does not match pyproject.toml"
    ]


def test_a_hand_written_lock_is_refused(tmp_path: Path) -> None:
    """A lock file without the digest line `make lock` writes is not accepted."""
    pyproject, lock_dir = _copy_project(tmp_path)
    (lock_dir / "lock.txt").write_text("uv==0.13.9\n", encoding="utf-8")
    assert lock.check(pyproject, lock_dir) == [
        "requirements/lock.txt is missing or was not written by `make lock`"
    ]


def test_every_locked_line_carries_a_hash() -> None:
    """Each pinned package in every lock names at least one sha256, so pip can require hashes."""
    for path in sorted((ROOT / "requirements").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        blocks = [b for b in text.split("\n") if b and not b.startswith((" ", "#"))]
        assert blocks, f"{path.name} pins nothing"
        for block in blocks:
            assert "==" in block, f"{path.name}: {block!r} is not pinned"
        assert text.count("--hash=sha256:") >= len(blocks)
