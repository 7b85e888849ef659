"""Files on disk for tests: one file, or a tree of them under a folder, in one call."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lanspread.core.gameroot import VERSION_FILE

Tree = Mapping[str, bytes | str]
"""Relative path (``/``-separated) to the file's bytes, or its text (written as UTF-8)."""


def write_file(path: Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) at ``path``, making its missing folders; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def write_tree(root: Path, files: Tree) -> Path:
    """Write ``files`` under ``root`` (made with every missing folder); returns ``root``.

    A top-level ``version.ini`` is written last, as a download writes it: a reader
    never sees the sentinel before the files it vouches for.
    """
    root.mkdir(parents=True, exist_ok=True)
    for relative in sorted(files, key=lambda path: path == VERSION_FILE):
        write_file(root / relative, files[relative])
    return root
