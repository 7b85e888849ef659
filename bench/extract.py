"""Extraction benchmark: lanspread's extractor against the fastest reference extractor.

Usage: ``.venv/bin/python bench/extract.py [--size-mib 512] [--runs 3] [--dir PATH]
[--solid-mib 256] [--rar PATH]``

Scenario "mixed": one game root of about ``--size-mib`` MiB spread over five
archives of mixed formats: stored RAR 4, stored RAR 5, stored zip, tar and
stored 7z (content is random, so the run measures I/O and the extractors, not
compression). Each archive holds a few large files and a couple of hundred
small ones, so per-entry costs count too. lanspread reads the RAR parts with
7-Zip and the rest with libarchive.

Scenario "solid-rar5": one solid RAR 5 archive of ``--solid-mib`` MiB of
half-compressible files, written by the real ``rar`` (Debian's non-free
``rar`` package; ``--rar`` names its binary when it is not on ``PATH``; the
scenario is left out without it, since 7-Zip cannot write RAR).

References: ``bsdtar -xf`` (Debian's ``libarchive-tools``) and the packaged
``7zz x`` itself, each archive in turn; a reference that cannot read a
scenario's archives is left out of it. Every extractor writes into a fresh
folder on the same filesystem; after one warm-up pass of each, every run syncs
the disk, then times each, rotating the order. Medians are reported with the
ratio of lanspread's throughput to the fastest reference's. Peak RSS is that
of one more lanspread extraction in a child process (its own and its largest
child's, the 7zz process). Goal: lanspread at least 0.9x the fastest reference.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

# CPU time of the bsdtar children comes from getrusage, which Windows lacks.
assert sys.platform != "win32"

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the archive writers live in the test support package

from tests.support.archives import ArchiveFormat, build_archive  # noqa: E402

from lanspread.install import _sevenzip  # noqa: E402
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
RSS_POLL_SECONDS = 0.05
SOLID_FILE_BYTES = 8 * MIB
SOLID_SMALL_FILES = 400
SOLID_SMALL_FILE_BYTES = 32 * 1024

Action = Callable[[Path, Path], None]


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


def first_volumes(root: Path) -> list[Path]:
    """The archives to hand a reference tool: every ``.eti`` but later volumes."""
    return sorted(
        path for path in root.glob("*.eti") if ".part" not in path.name or ".part1." in path.name
    )


def run_bsdtar(root: Path, dest: Path) -> None:
    dest.mkdir()
    for archive in first_volumes(root):
        subprocess.run(
            ["bsdtar", "-xf", str(archive), "-C", str(dest)], check=True, capture_output=True
        )


def run_7zz(root: Path, dest: Path) -> None:
    dest.mkdir()
    for archive in first_volumes(root):
        subprocess.run(
            [str(_sevenzip.binary()), "x", "-y", "-bd", f"-o{dest}", str(archive)],
            check=True,
            capture_output=True,
        )


def make_solid_rar5(root: Path, size_mib: int, rar: str) -> int:
    """A solid RAR 5 of half-compressible files written by ``rar``; the payload bytes."""
    source = root.parent / "solid-source"
    source.mkdir(parents=True)
    root.mkdir(parents=True)
    total = 0
    for number in range(SOLID_SMALL_FILES):
        data = half_compressible(SOLID_SMALL_FILE_BYTES)
        (source / f"small{number:04d}.dat").write_bytes(data)
        total += len(data)
    number = 0
    while total < size_mib * MIB:
        data = half_compressible(SOLID_FILE_BYTES)
        (source / f"pak{number:03d}.pak").write_bytes(data)
        total += len(data)
        number += 1
    archive = root / "solid.rar"
    subprocess.run(
        [rar, "a", "-ma5", "-s", "-m3", "-ep1", "-r", "-idq", str(archive), f"{source}/"],
        check=True,
        capture_output=True,
    )
    archive.rename(root / "solid.eti")
    shutil.rmtree(source)
    return total


def half_compressible(size: int) -> bytes:
    """Random bytes, each 4 KiB block repeated once: about 2:1 for a real compressor."""
    block = 4096
    parts = []
    for _ in range(size // (2 * block)):
        chunk = os.urandom(block)
        parts += [chunk, chunk]
    return b"".join(parts)[:size].ljust(size, b"\0")


def usable(action: Action, root: Path, out: Path) -> bool:
    """True if the reference reads every archive of the scenario."""
    try:
        action(root, out)
    except subprocess.CalledProcessError:
        return False
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return True


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
    """Wall and CPU seconds per run for each tool, after a warm-up pass; order rotates."""
    tools: dict[str, Action] = {"lanspread": run_lanspread}
    references: tuple[tuple[str, Action], ...] = (("bsdtar", run_bsdtar), ("7zz", run_7zz))
    for name, action in references:
        if usable(action, root, out / name):
            tools[name] = action
        else:
            print(f"{name:>10}: cannot read these archives, left out")
    for name, action in tools.items():
        timed(action, root, out / name)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    names = list(tools)
    for run in range(runs):
        order = names[run % len(names) :] + names[: run % len(names)]
        for name in order:
            times[name].append(timed(tools[name], root, out / name))
    return times


def peak_rss(root: Path, out: Path) -> tuple[int, int]:
    """Peak RSS in KiB of a lanspread extraction in a child: its own, and its largest child's.

    Read from Linux's /proc (see :func:`rss_probe`).
    """
    dest = out / "rss"
    child = subprocess.run(
        [sys.executable, __file__, "--rss-probe", str(root), str(dest)],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(dest, ignore_errors=True)
    own, largest_child = child.stdout.split()
    return int(own), int(largest_child)


def rss_probe(root: Path, dest: Path) -> None:
    """Print this process's and its largest child's peak RSS (KiB) over one extraction.

    ``ru_maxrss`` is useless here: Linux carries a process's high-water mark
    across fork and exec, so a child of the benchmark (which holds the
    generated archives in memory) would report the benchmark's size. The
    kernel's per-address-space ``VmHWM`` is read instead, for this process at
    the end and for its children (7zz) by polling while they run.
    """
    children_peak = 0
    done = threading.Event()

    def poll_children() -> None:
        nonlocal children_peak
        while not done.wait(RSS_POLL_SECONDS):
            for pid in _child_pids():
                if _command_name(pid) == "7zz":  # not a fork that has yet to exec 7zz
                    children_peak = max(children_peak, _vm_hwm_kib(pid))

    poller = threading.Thread(target=poll_children)
    poller.start()
    try:
        run_lanspread(root, dest)
    finally:
        done.set()
        poller.join()
    print(_vm_hwm_kib(os.getpid()), children_peak)


def _child_pids() -> list[int]:
    pids: list[int] = []
    for children in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in children.read_text().split()]
    return pids


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _vm_hwm_kib(pid: int) -> int:
    """Peak resident set of a live process's address space, from /proc (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to generate (a temp dir)")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="where to extract (default: beside the game)"
    )
    parser.add_argument("--solid-mib", type=int, default=256)
    parser.add_argument("--rar", default=shutil.which("rar"), help="the rar binary")
    parser.add_argument("--rss-probe", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(*args.rss_probe)
        return
    if shutil.which("bsdtar") is None:
        sys.exit("bsdtar is missing: apt-get install libarchive-tools")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="lanspread-bench-") as tmp:
        root = Path(tmp) / "game"
        started = time.perf_counter()
        total = make_game(root, args.size_mib)
        print(
            f"mixed: {len(FORMATS)} archives ({', '.join(f.value for f in FORMATS)}),"
            f" {total / MIB:.0f} MiB payload, generated in {time.perf_counter() - started:.1f} s"
        )
        scenario(root, total, args)
        shutil.rmtree(root)
        if args.rar is None:
            print("solid-rar5: left out, no rar binary (Debian non-free package rar, or --rar)")
            return
        root = Path(tmp) / "solid" / "game"
        started = time.perf_counter()
        total = make_solid_rar5(root, args.solid_mib, args.rar)
        size = (root / "solid.eti").stat().st_size
        print(
            f"solid-rar5: one solid RAR 5 by {args.rar}, {total / MIB:.0f} MiB payload"
            f" in {size / MIB:.0f} MiB, generated in {time.perf_counter() - started:.1f} s"
        )
        scenario(root, total, args)


def scenario(root: Path, total: int, args: argparse.Namespace) -> None:
    out = Path(tempfile.mkdtemp(dir=args.out_dir or root.parent, prefix="out-"))
    try:
        times = measure(root, out, args.runs)
        own, child = peak_rss(root, out)
    finally:
        shutil.rmtree(out)
    report(times, total, args.runs)
    print(f"  peak RSS: lanspread {own / 1024:.0f} MiB, its 7zz child {child / 1024:.0f} MiB")


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
    references = [name for name in median if name != "lanspread"]
    fastest = max(references, key=lambda name: median[name])
    ratio = median["lanspread"] / median[fastest]
    verdict = "meets" if ratio >= RATIO_GOAL else "MISSES"
    print(
        f"     ratio: {ratio:.2f}x {fastest} median, the fastest reference"
        f" ({verdict} the {RATIO_GOAL}x goal), {best['lanspread'] / best[fastest]:.2f}x best"
    )


if __name__ == "__main__":
    main()
