"""Fetch axe-core, the accessibility engine the browser tests inject, into ``.cache/axe-core/``.

The pinned release's tarball comes from the npm registry and is checked against the
registry's pinned sha512 (its ``dist.integrity``) before anything is unpacked, so every
machine audits the page with the same bytes. Only ``axe.min.js`` is kept.

Usage: ``python tools/fetch_axe.py`` (idempotent; exits non-zero on any failure). The
audit in ``tests/browser/test_accessibility.py`` reads the file; under ``CI=true`` it
fails when the file is missing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGE = "axe-core"
VERSION = "4.10.3"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
SHA512 = "Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg=="
"""The registry's ``dist.integrity`` of the release (base64 of the tarball's sha512)."""
MEMBER = "package/axe.min.js"
MAX_TARBALL_BYTES = 8 * 1024 * 1024
"""The release's tarball is about 1 MiB; anything much larger is not the pinned release."""
DOWNLOAD_TIMEOUT = 60.0
"""Seconds for the registry to answer; a stalled mirror fails the fetch instead of hanging."""

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / ".cache" / "axe-core" / f"{PACKAGE}-{VERSION}"
SCRIPT = FOLDER / "axe.min.js"
STAMP = FOLDER / ".complete"


def main() -> int:
    if STAMP.is_file() and STAMP.read_text(encoding="utf-8").strip() == SHA512 and SCRIPT.is_file():
        print(f"axe-core present in {FOLDER}")
        return 0
    with urllib.request.urlopen(TARBALL, timeout=DOWNLOAD_TIMEOUT) as response:
        body = response.read(MAX_TARBALL_BYTES + 1)
    if len(body) > MAX_TARBALL_BYTES:
        print(f"{TARBALL}: larger than {MAX_TARBALL_BYTES} bytes", file=sys.stderr)
        return 1
    digest = base64.b64encode(hashlib.sha512(body).digest()).decode("ascii")
    if digest != SHA512:
        print(f"{TARBALL}: sha512 {digest}, expected {SHA512}", file=sys.stderr)
        return 1
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        source = archive.extractfile(MEMBER)
        if source is None:
            print(f"{TARBALL}: no {MEMBER}", file=sys.stderr)
            return 1
        script = source.read()
    FOLDER.mkdir(parents=True, exist_ok=True)
    SCRIPT.write_bytes(script)
    STAMP.write_text(SHA512 + "\n", encoding="utf-8")
    print(f"unpacked {MEMBER} ({len(script)} bytes) into {FOLDER}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
