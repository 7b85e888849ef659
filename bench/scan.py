"""Library scan benchmark: cold scan, warm scan and single-game rescan.

Usage: ``.venv/bin/python bench/scan.py [--games N] [--files F]``

Generates, in a temp dir, a catalog of N games and a game directory where each
root holds F payload files: a ``version.ini``, archives of a few KiB and one
nested payload folder. The tree is back-dated by an hour, as a library
downloaded earlier is, so sentinels are settled. After one warm-up scan it
measures (medians):

* cold scan: no index, every root read in full, index written;
* warm scan: index loaded, nothing changed (the index load is shown apart);
* single-game rescan of an unchanged game, and of a game whose archive changed
  (a cold read of that root; the index is written by the next full scan);
* one index save (encode, write, fsync, rename), for reference.

Goals: warm at least 10x faster than cold; a single-game rescan under 5 ms.

The warm path's floor is one ``lstat`` per root-level payload entry plus an
``open``/``fstat``/``close`` of the root: an archive rewritten in place moves no
folder mtime, so nothing cheaper proves its size unchanged. With ~10 entries per
root that floor is most of the warm time, which bounds the ratio to a few x
unless the cold path has much more to walk (deep nested payload).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lanspread.core.catalog import Catalog, CatalogGame
from lanspread.storage.index import INDEX_FILE_NAME, LibraryIndex
from lanspread.storage.scanner import LibraryScanner

WARM_TO_COLD_GOAL = 10.0
RESCAN_GOAL_MS = 5.0
FULL_SCAN_RUNS = 5
RESCAN_RUNS = 300
NESTED_DIR = "redist"
AN_HOUR_NS = 3600 * 1_000_000_000


def make_catalog(games: int) -> Catalog:
    entries = {}
    for number in range(games):
        game_id = f"game-{number:05d}"
        entries[game_id] = CatalogGame(
            id=game_id,
            name=f"Game {number}",
            description="generated for the scan benchmark",
            size_bytes=1_000_000_000,
            genre="Benchmark",
            max_players=8,
            executable="game.exe",
        )
    return Catalog(games=entries, source="<bench>")


def populate(game_dir: Path, catalog: Catalog, files: int, rng: random.Random) -> None:
    """``files`` payload files per root: version.ini, archives, a nested folder's files."""
    nested_files = max(1, files // 5)
    archives = max(0, files - 1 - nested_files)
    past_ns = time.time_ns() - AN_HOUR_NS
    for game in catalog:
        root = game_dir / game.id
        nested = root / NESTED_DIR
        nested.mkdir(parents=True)
        paths = [root / "version.ini"]
        paths[0].write_text(f"[game]\nversion = 1.{rng.randrange(100)}\n")
        for number in range(archives):
            path = root / f"{game.id}.{number:03d}.eti"
            path.write_bytes(os.urandom(rng.randrange(2048, 6144)))
            paths.append(path)
        for number in range(nested_files):
            path = nested / f"extra{number}.bin"
            path.write_bytes(os.urandom(rng.randrange(1024, 4096)))
            paths.append(path)
        for path in [*paths, nested, root]:
            os.utime(path, ns=(past_ns, past_ns))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(runs: int, action: Callable[[], object]) -> float:
    return statistics.median(timed(action) for _ in range(runs))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=2000)
    parser.add_argument("--files", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(1)
    catalog = make_catalog(args.games)
    with tempfile.TemporaryDirectory(prefix="lanspread-bench-") as temp:
        game_dir = Path(temp) / "games"
        index_path = Path(temp) / "state" / INDEX_FILE_NAME
        index_path.parent.mkdir()
        populate(game_dir, catalog, args.files, rng)

        def cold_scan() -> None:
            index_path.unlink(missing_ok=True)
            index = LibraryIndex.load(index_path, game_dir)
            found = LibraryScanner(game_dir, catalog, index).scan_all()
            assert len(found) == args.games

        cold_scan()  # warm-up: page cache, dentries, CPU frequency
        cold = median_of(FULL_SCAN_RUNS, cold_scan)
        load = median_of(FULL_SCAN_RUNS, lambda: LibraryIndex.load(index_path, game_dir))
        scanner = LibraryScanner(game_dir, catalog, LibraryIndex.load(index_path, game_dir))
        warm = median_of(FULL_SCAN_RUNS, scanner.scan_all)
        assert not scanner.index.changed

        ids = sorted(catalog.ids)
        unchanged = median_of(RESCAN_RUNS, lambda: scanner.scan_game(rng.choice(ids)))

        def changed_rescan() -> None:
            game_id = rng.choice(ids)
            archive = game_dir / game_id / f"{game_id}.000.eti"
            stamp = time.time_ns() - AN_HOUR_NS + rng.randrange(1, 10**9)
            os.utime(archive, ns=(stamp, stamp))
            scanner.scan_game(game_id)

        changed = median_of(RESCAN_RUNS, changed_rescan)
        save = median_of(FULL_SCAN_RUNS, scanner.index.save)

    per_game = 1000 / args.games
    ratio = cold / warm
    print(f"{args.games} games x {args.files} files")
    print(f"cold scan (no index):        {cold * per_game:8.4f} ms/game  {cold * 1000:8.1f} ms")
    print(f"warm scan (nothing changed): {warm * per_game:8.4f} ms/game  {warm * 1000:8.1f} ms")
    print(f"index load:                  {load * per_game:8.4f} ms/game  {load * 1000:8.1f} ms")
    print(f"single-game rescan, unchanged:       {unchanged * 1000:8.3f} ms")
    print(f"single-game rescan, archive changed: {changed * 1000:8.3f} ms")
    print(f"index save:                          {save * 1000:8.3f} ms")
    print(f"warm/cold ratio: {warm / cold:.3f} (warm is {ratio:.1f}x faster than cold)")
    print(f"goal warm >= {WARM_TO_COLD_GOAL:.0f}x faster than cold: {verdict(ratio >= 10)}")
    print(
        f"goal single-game rescan < {RESCAN_GOAL_MS:.0f} ms: "
        f"{verdict(max(unchanged, changed) * 1000 < RESCAN_GOAL_MS)}"
    )


if __name__ == "__main__":
    main()
