"""Manifests and game roots for the download-storage tests, and a small tmpfs to fill up."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import blake3

from lanspread.core.manifest import (
    MIN_CHUNK_SIZE,
    ChunkDigest,
    FileManifest,
    GameManifest,
    chunk_spans,
)
from lanspread.core.planning import manifest_tasks
from lanspread.download.journal import DownloadJournal
from lanspread.download.prepare import open_for_writing, prepare_game_storage, write_at
from lanspread.files.sentinel import begin_update, commit_sentinel
from tests.support.ownership import record_as_downloaded

GAME_ID = "quake3"
CHUNK = MIN_CHUNK_SIZE
SENTINEL_TEXT = b"version = 2.0\n"


def blob(seed: int, size: int) -> bytes:
    """``size`` deterministic pseudo-random bytes (incompressible, unlike repeated text)."""
    return random.Random(seed).randbytes(size)


def build_manifest(
    files: Mapping[str, bytes],
    *,
    game_id: str = GAME_ID,
    version: str | None = "2.0",
    chunk_size: int = CHUNK,
) -> GameManifest:
    """The manifest of ``files`` (relative path to bytes; must hold ``version.ini``)."""
    entries = tuple(
        FileManifest(
            path=path,
            size=len(data),
            chunks=tuple(
                ChunkDigest(
                    offset=offset,
                    length=length,
                    blake3=blake3.blake3(data[offset : offset + length]).digest(),
                )
                for offset, length in chunk_spans(len(data), chunk_size)
            ),
        )
        for path, data in sorted(files.items())
    )
    return GameManifest(game_id=game_id, version=version, chunk_size=chunk_size, files=entries)


def game_files(seed: int = 1) -> dict[str, bytes]:
    """A small game: two archives over chunk boundaries, a nested one, an empty file."""
    return {
        "quake3.eti": blob(seed, 2 * CHUNK + 1000),
        "quake3.part2.eti": blob(seed + 1, CHUNK // 2),
        "maps/extra/dm1.eti": blob(seed + 2, CHUNK + 7),
        "maps/empty.txt": b"",
        "version.ini": SENTINEL_TEXT,
    }


def write_all_chunks(root: Path, files: Mapping[str, bytes]) -> None:
    """Write every payload byte but the sentinel into a prepared root."""
    for path, data in files.items():
        if path == "version.ini" or not data:
            continue
        fd = open_for_writing(root, path)
        try:
            write_at(fd, data, 0, name=path)
        finally:
            os.close(fd)


def downloaded_root(game_dir: Path, files: Mapping[str, bytes]) -> Path:
    """A root holding ``files`` as a finished download (payload, then the sentinel)."""
    root = game_dir / GAME_ID
    game_dir.mkdir(parents=True, exist_ok=True)
    begin_update(root)
    prepare_game_storage(root, build_manifest(files), margin=0)
    write_all_chunks(root, files)
    commit_sentinel(root, files["version.ini"])
    return root


def paused_root(game_dir: Path, *, done: int) -> tuple[int, int]:
    """A fresh download of :func:`game_files` a stop interrupted after ``done`` journaled
    chunks, as a restart finds it: (done bytes, total bytes)."""
    files = game_files()
    manifest = build_manifest(files)
    tasks = manifest_tasks(manifest)
    root = game_dir / GAME_ID
    root.mkdir(parents=True)
    journal = DownloadJournal.create(root, manifest)
    prepare_game_storage(root, manifest, margin=0)
    write_all_chunks(root, files)
    journal.mark_done(task.key for task in tasks[:done])
    journal.commit_durable(sorted({task.path for task in tasks[:done]}))
    record_as_downloaded(root)  # the proof a real download writes before its first byte
    return sum(task.length for task in tasks[:done]), manifest.total_bytes


@contextlib.contextmanager
def mounted_tmpfs(size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (``4m``), unmounted afterwards.

    Mounting needs root. Outside CI a machine that cannot mount skips; in CI
    (``CI=true``) it fails with the reason, since the disk-full tests must run there.
    """
    mount_point = Path(tempfile.mkdtemp(prefix="lanspread-tmpfs-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        import pytest  # here, so the crash-test child never pays for importing pytest

        mount_point.rmdir()
        reason = (
            f"cannot mount a {size} tmpfs for the disk-full tests (they need root): "
            f"{done.stderr.decode().strip()}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)
        mount_point.rmdir()


def fill_disk(path: Path) -> None:
    """Write ``path`` until not one more byte fits (large blocks first, then single bytes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for block in (bytes(CHUNK // 16), b"x"):
            try:
                while os.write(fd, block):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
