"""Extraction benchmark: lanspread's extractor against ``bsdtar -xf`` on the same archives.

Usage: ``.venv/bin/python bench/extract.py [--size-mib 512] [--runs 3] [--dir PATH]``

Generates, in a temp dir, one game root of about ``--size-mib`` MiB spread over
five archives of mixed formats: stored RAR 4, stored RAR 5, stored zip, tar and
stored 7z (content is random, so the run measures I/O and libarchive, not
compression). Each archive holds a few large files and a couple of hundred
small ones, so per-entry costs count too. Both extractors write into a fresh
folder on the same filesystem; after one warm-up pass of each, every run syncs
the disk, then times lanspread (``plan_extraction`` + ``extract`` with a
progress callback and a stop check, as an install does) and ``bsdtar -xf`` of
each archive in turn, alternating which goes first. Medians are reported, with
the ratio of throughputs. Goal: lanspread at least 0.9x bsdtar.

bsdtar comes from Debian's ``libarchive-tools`` (``apt-get install libarchive-tools``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# CPU time of the bsdtar children comes from getrusage, which Windows lacks.
assert sys.platform != "win32"

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the archive writers live in the test support package

from tests.support.archives import ArchiveFormat, build_archive  # noqa: E402

from lanspread.install.extract import extract, plan_extraction  # noqa: E402

RATIO_GOAL = 0.9
MIB = 1024 * 1024
FORMATS = (
    ArchiveFormat.RAR4,
    ArchiveFormat.RAR5,
    ArchiveFormat.ZIP,
    ArchiveFormat.TAR,
    ArchiveFormat.SEVEN_ZIP,
)
SMALL_FILES_PER_ARCHIVE = 200
SMALL_FILE_BYTES = 16 * 1024
LARGE_FILES_PER_ARCHIVE = 4


def archive_content(size: int, index: int) -> dict[str, bytes]:
    """``size`` bytes of random payload: small files first, the rest in a few large ones."""
    files: dict[str, bytes] = {}
    small_total = min(size // 4, SMALL_FILES_PER_ARCHIVE * SMALL_FILE_BYTES)
    for number in range(small_total // SMALL_FILE_BYTES):
        files[f"a{index}/data/small/{number:04d}.dat"] = os.urandom(SMALL_FILE_BYTES)
    large_total = size - len(files) * SMALL_FILE_BYTES
    for number in range(LARGE_FILES_PER_ARCHIVE):
        part = large_total // LARGE_FILES_PER_ARCHIVE
        files[f"a{index}/data/pak{number}.pak"] = os.urandom(part)
    files[f"a{index}/readme.txt"] = b"generated for the extraction benchmark\n"
    return files


def make_game(root: Path, size_mib: int) -> int:
    """Write the game's archives; the total payload bytes."""
    root.mkdir(parents=True)
    per_archive = size_mib * MIB // len(FORMATS)
    total = 0
    for index, fmt in enumerate(FORMATS):
        content = archive_content(per_archive, index)
        total += sum(map(len, content.values()))
        (root / f"part-{index}-{fmt.value}.eti").write_bytes(build_archive(fmt, content))
    return total


def run_lanspread(root: Path, dest: Path) -> None:
    plan = plan_extraction(root)
    extract(plan, dest, progress=lambda done, total: None, should_stop=lambda: False)


def run_bsdtar(root: Path, dest: Path) -> None:
    dest.mkdir()
    for archive in sorted(root.glob("*.eti")):
        subprocess.run(["bsdtar", "-xf", str(archive), "-C", str(dest)], check=True)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (bsdtar runs as a child)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action: Callable[[Path, Path], None], root: Path, dest: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one extraction into a fresh ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    os.sync()
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    action(root, dest)
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    shutil.rmtree(dest)
    return elapsed, cpu


def measure(root: Path, out: Path, runs: int) -> dict[str, list[tuple[float, float]]]:
    """Wall and CPU seconds per run for each tool, after a warm-up pass; order alternates."""
    tools = {"lanspread": run_lanspread, "bsdtar": run_bsdtar}
    for name, action in tools.items():
        timed(action, root, out / name)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    for run in range(runs):
        order = list(tools) if run % 2 == 0 else list(reversed(tools))
        for name in order:
            times[name].append(timed(tools[name], root, out / name))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to generate (a temp dir)")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="where to extract (default: beside the game)"
    )
    args = parser.parse_args()
    if shutil.which("bsdtar") is None:
        sys.exit("bsdtar is missing: apt-get install libarchive-tools")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="lanspread-bench-") as tmp:
        root = Path(tmp) / "game"
        started = time.perf_counter()
        total = make_game(root, args.size_mib)
        print(
            f"game: {len(FORMATS)} archives ({', '.join(f.value for f in FORMATS)}),"
            f" {total / MIB:.0f} MiB payload, generated in {time.perf_counter() - started:.1f} s"
        )
        out = Path(tempfile.mkdtemp(dir=args.out_dir or tmp, prefix="out-"))
        try:
            times = measure(root, out, args.runs)
        finally:
            shutil.rmtree(out)
        report(times, total, args.runs)


def report(times: dict[str, list[tuple[float, float]]], total: int, runs: int) -> None:
    mib = total / MIB
    median: dict[str, float] = {}
    best: dict[str, float] = {}
    for name, values in times.items():
        walls = [wall for wall, _ in values]
        median[name] = mib / statistics.median(walls)
        best[name] = mib / min(walls)
        cpu = statistics.median(cpu for _, cpu in values)
        listed = ", ".join(f"{wall:.2f}" for wall in walls)
        print(
            f"{name:>10}: {median[name]:5.0f} MiB/s median, {best[name]:5.0f} best,"
            f" {cpu / mib * 1024:.2f} CPU s/GiB ({runs} runs: {listed} s)"
        )
    ratio = median["lanspread"] / median["bsdtar"]
    verdict = "meets" if ratio >= RATIO_GOAL else "MISSES"
    print(
        f"     ratio: {ratio:.2f}x bsdtar median ({verdict} the {RATIO_GOAL}x goal),"
        f" {best['lanspread'] / best['bsdtar']:.2f}x best"
    )


if __name__ == "__main__":
    main()
