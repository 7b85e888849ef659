"""Adoption: does a found folder hold exactly a version peers offer?

A catalog-named folder lanspread cannot prove it made (a copy from a USB stick,
archives without ``version.ini``) is *found*. :func:`compare_folder` hashes it
against a manifest a peer offers: every payload file the manifest lists must be a
regular file (never through a link) of the manifest's size whose every chunk has
the manifest's BLAKE3 digest. The sentinel is not compared: a found folder has
none, the adoption fetches it. Files the manifest does not list are the player's
and do not count. Reads only: nothing is written, moved or deleted.

The answer lists what differs, one line a file, sorted by path, so the player
reads which files keep the folder from being adopted.

Blocks (one sequential read of the matching payload); the runtime runs it through
``asyncio.to_thread`` and stops it with ``should_stop``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from lanspread.core.manifest import GameManifest
from lanspread.download.reuse import reusable_chunks
from lanspread.files.entries import lstat_or_none


def compare_folder(
    root: Path, manifest: GameManifest, should_stop: Callable[[], bool] | None = None
) -> tuple[str, ...]:
    """What keeps ``root`` from holding exactly ``manifest``'s payload; empty when it does.

    Raises :class:`~lanspread.errors.StorageError` when a file cannot be read.
    """
    matching = reusable_chunks(root, manifest, should_stop)
    differs: list[str] = []
    for file in manifest.files:
        if file.is_sentinel:
            continue
        info = _stat_within(root, file.path)
        if info is None or not stat.S_ISREG(info.st_mode):
            differs.append(f"{file.path}: missing")
        elif info.st_size != file.size:
            differs.append(f"{file.path}: {info.st_size} bytes, the game's has {file.size}")
        elif any((file.path, chunk.offset) not in matching for chunk in file.chunks):
            differs.append(f"{file.path}: other content")
    return tuple(sorted(differs))


def _stat_within(root: Path, relative: str) -> os.stat_result | None:
    """``lstat`` of ``root/relative`` when no component on the way is a link."""
    path = root
    for part in relative.split("/")[:-1]:
        path = path / part
        info = lstat_or_none(path)
        if info is None or not stat.S_ISDIR(info.st_mode):
            return None
    return lstat_or_none(root / relative)


__all__ = ["compare_folder"]
