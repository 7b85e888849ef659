"""The dependency lock: hashed requirement files made from pyproject.toml.

Theory of operation
-------------------
``pyproject.toml`` states ranges; the files under ``requirements/`` pin one
exact version of every package, for every platform and every Python from 3.11
on, each with the hashes of its wheels and source archive. Installs read only
those files, with ``pip --require-hashes``, so a new release upstream changes
nothing until someone moves the pins on purpose.

- ``python tools/lock.py lock`` resolves each lock with ``uv pip compile
  --universal --generate-hashes`` (``make lock`` installs uv from its own lock
  first) and writes at the top of each file the digest of the pyproject inputs
  it was made from.
- ``python tools/lock.py check`` recomputes those digests and fails, naming
  the file, when pyproject.toml and a lock disagree (a range, an extra or a
  build requirement changed without ``make lock``). It needs only the standard
  library, so a fresh machine can run it before anything is installed.

Each lock serves one purpose: ``app`` is what ``make run`` installs (the app
and the tools that build it in place), ``test`` adds the test suite's tools
and the bundle builder, ``lock`` is uv itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK_DIR = ROOT / "requirements"
DIGEST_PREFIX = "# lock-input-sha256: "
# The oldest Python the project supports; the universal resolution covers it and every newer one.
MINIMUM_PYTHON = "3.11"


@dataclass(frozen=True)
class Lock:
    """One requirement file and the pyproject inputs it pins."""

    name: str
    extras: tuple[str, ...]
    with_project: bool = True
    """Whether the project's own dependencies and build requirements belong to it."""

    def path(self, lock_dir: Path = LOCK_DIR) -> Path:
        return lock_dir / f"{self.name}.txt"


LOCKS = (
    Lock("app", ()),
    Lock("test", ("test", "bundle")),
    Lock("lock", ("lock",), with_project=False),
)


def _inputs(pyproject: dict[str, object], lock: Lock) -> list[str]:
    """The requirement lines ``lock`` is resolved from, in a stable order."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    optional = project.get("optional-dependencies", {})
    assert isinstance(optional, dict)
    lines: list[str] = []
    if lock.with_project:
        lines += project["dependencies"]
        build = pyproject["build-system"]
        assert isinstance(build, dict)
        lines += build["requires"]
    for extra in lock.extras:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no optional dependency group {extra!r}")
        lines += optional[extra]
    return lines


def input_digest(pyproject: dict[str, object], lock: Lock) -> str:
    """The digest written into ``lock``: it changes whenever one of its inputs does."""
    canonical = json.dumps(
        {"python": MINIMUM_PYTHON, "requirements": _inputs(pyproject, lock)}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _load_pyproject(path: Path = PYPROJECT) -> dict[str, object]:
    with path.open("rb") as file:
        return tomllib.load(file)


def recorded_digest(path: Path) -> str | None:
    """The input digest a lock file was written with, or None when it has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).strip()
    return None


def check(pyproject_path: Path = PYPROJECT, lock_dir: Path = LOCK_DIR) -> list[str]:
    """One sentence for each lock that does not match pyproject.toml; empty when all agree."""
    pyproject = _load_pyproject(pyproject_path)
    problems = []
    for lock in LOCKS:
        path = lock.path(lock_dir)
        recorded = recorded_digest(path)
        rel = f"{lock_dir.name}/{path.name}"
        if recorded is None:
            problems.append(f"{rel} is missing or was not written by `make lock`")
        elif recorded != input_digest(pyproject, lock):
            problems.append(f"{rel} does not match pyproject.toml")
    return problems


def _compile(uv: str, lock: Lock, pyproject: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / f"{lock.name}.in"
        source.write_text("\n".join(_inputs(pyproject, lock)) + "\n", encoding="utf-8")
        output = Path(scratch) / f"{lock.name}.txt"
        subprocess.run(
            [
                uv, "pip", "compile", str(source), "--universal",
                "--python-version", MINIMUM_PYTHON, "--generate-hashes", "--quiet",
                "--no-header", "--index-url", "https://pypi.org/simple",
                "--output-file", str(output),
            ],
            check=True,
        )  # fmt: skip
        header = (
            f"# The locked {lock.name} set, written by `make lock` from pyproject.toml.\n"
            f"{DIGEST_PREFIX}{input_digest(pyproject, lock)}\n"
        )
        lock.path().write_text(header + output.read_text(encoding="utf-8"), encoding="utf-8")


def lock_all(uv: str) -> None:
    """Resolve every lock anew from pyproject.toml."""
    pyproject = _load_pyproject()
    LOCK_DIR.mkdir(exist_ok=True)
    for lock in LOCKS:
        _compile(uv, lock, pyproject)
        print(f"wrote {lock.path().relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["lock", "check"])
    parser.add_argument("--uv", default=shutil.which("uv") or "uv", help="the uv executable")
    args = parser.parse_args(argv)
    if args.action == "lock":
        lock_all(args.uv)
        return 0
    problems = check()
    for problem in problems:
        print(f"lock check: {problem}: run `make lock`", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
