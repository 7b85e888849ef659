"""Drive a JSON Lines child process (``lanspread peer-cli``, the mDNS probe) from asyncio tests.

The child reads one command per line on stdin (``{"cmd": ..., "id": ...}``),
writes one event per line on stdout (``{"event": ...}``) and logs on stderr.
``JsonlProcess`` keeps every event it has seen in ``events`` and hands each one
out at most once: ``wait_for`` returns the oldest event not yet taken that
matches, so waiting for ``A`` after ``B`` arrived first still finds ``A``, and
waiting twice for the same name gets two successive events.

A background reader drains stdout all the time, so a child that nobody waits
on never blocks on a full pipe. Stderr goes straight to a file; every failure
message carries its tail and the most recent events, which is most of what a
failing multi-host test needs to be diagnosed.

Any stdout line that is not a JSON object with a string ``event`` is a protocol
violation of the child: the next ``wait_for`` fails and names the line.
"""

# Test helpers take their own timeout (ASYNC109): the failure message names it
# and what was awaited, which a caller's asyncio.timeout could not.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.platforms import KILL_SIGNAL, continue_signal, stop_signal
from tests.support.waiting import wait_until

Event = dict[str, Any]
EventMatch = str | Mapping[str, Any] | Callable[[Event], bool]

# One event line may carry a whole library listing; 16 MiB is far above any
# real event and still bounds the memory a runaway child can make us buffer.
MAX_EVENT_LINE_BYTES = 16 * 1024 * 1024
# Enough context to see what led up to a failure without drowning the report.
RECENT_EVENTS_IN_REPORT = 20
STDERR_TAIL_LINES = 40
# A log line is short; reading this much from the end always holds the tail.
STDERR_TAIL_BYTES = 16 * 1024
# A report prints events and stray lines cut to this length.
REPORT_LINE_CHARS = 400
DEFAULT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
REPLY_EVENT = "reply"
ERROR_EVENT = "error"


class CommandFailed(AssertionError):
    """The child answered a request with an ``error`` event."""

    def __init__(self, process_name: str, command: Mapping[str, Any], event: Event) -> None:
        super().__init__(f"{process_name}: command {dict(command)!r} failed: {event!r}")
        self.command = dict(command)
        self.event = event


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from ``/proc`` (``R``, ``S``, ``T``, ``Z``...), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name in parentheses may itself contain spaces or parentheses.
    return stat[stat.rindex(")") + 2]


def describe_match(match: EventMatch) -> str:
    """How a failure message names what was awaited."""
    if isinstance(match, str):
        return f"event {match!r}"
    if isinstance(match, Mapping):
        return f"event matching {dict(match)!r}"
    return f"event satisfying {getattr(match, '__qualname__', repr(match))}"


def matches(match: EventMatch, event: Event) -> bool:
    """Whether ``event`` is what ``match`` asks for (name, field subset or predicate)."""
    if isinstance(match, str):
        return bool(event.get("event") == match)
    if isinstance(match, Mapping):
        return all(key in event and event[key] == value for key, value in match.items())
    return match(event)


class JsonlProcess:
    """An asyncio child process speaking JSON Lines; build it with ``start``."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.name = name
        self.stderr_path = stderr_path
        self.events: list[Event] = []
        self._process = process
        self._taken: set[int] = set()
        self._violations: list[str] = []
        self._eof = False
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._reader = asyncio.get_running_loop().create_task(
            self._read_events(), name=f"jsonl-reader-{name}"
        )

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        name: str,
        stderr_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> JsonlProcess:
        """Start ``argv`` with piped stdin/stdout and stderr written to ``stderr_path``."""
        stderr_path.parent.mkdir(parents=True, exist_ok=True)
        # Creating an empty log file is not blocking work worth a thread.
        with open(stderr_path, "wb") as stderr:  # noqa: ASYNC230
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                limit=MAX_EVENT_LINE_BYTES,
            )
        return cls(name, process, stderr_path)

    @property
    def pid(self) -> int:
        """The child's pid (``ip netns exec`` execs the command, so it is the program's own)."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has been reaped, negative for a signal."""
        return self._process.returncode

    async def send(self, command: Mapping[str, Any]) -> None:
        """Write one command line to the child's stdin."""
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing() or self.returncode is not None:
            raise AssertionError(self._report(f"cannot send {dict(command)!r}: stdin is closed"))
        stdin.write(json.dumps(dict(command)).encode() + b"\n")
        try:
            async with asyncio.timeout(DEFAULT_TIMEOUT):
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise AssertionError(self._report(f"cannot send {dict(command)!r}: {exc}")) from exc
        except TimeoutError:
            raise AssertionError(
                self._report(f"stdin stayed full for {DEFAULT_TIMEOUT}s sending {dict(command)!r}")
            ) from None

    async def wait_for(
        self, match: EventMatch, timeout: float = DEFAULT_TIMEOUT, *, what: str | None = None
    ) -> Event:
        """Take the oldest event not taken yet that matches; fail clearly on timeout or exit.

        ``what`` names the awaited event in failure messages; by default it is
        derived from ``match``.
        """
        what = what or describe_match(match)
        try:
            async with asyncio.timeout(timeout), self._changed:
                while True:
                    if self._violations:
                        raise AssertionError(self._report(f"protocol violation waiting for {what}"))
                    event = self._take(match)
                    if event is not None:
                        return event
                    if self._eof:
                        break
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                self._report(f"timed out after {timeout}s waiting for {what}")
            ) from None
        await self._settle_exit()
        raise AssertionError(
            self._report(f"exited (status {self.returncode}) while waiting for {what}")
        )

    async def request(self, command: Mapping[str, Any], timeout: float = DEFAULT_TIMEOUT) -> Event:
        """Send ``command`` with a correlation id; return its reply or raise ``CommandFailed``."""
        sent = dict(command)
        sent.setdefault("id", next(self._ids))
        await self.send(sent)
        command_id = sent["id"]

        def is_answer(event: Event) -> bool:
            return bool(
                event.get("event") in (REPLY_EVENT, ERROR_EVENT) and event.get("id") == command_id
            )

        answer = await self.wait_for(is_answer, timeout, what=f"the answer to {sent!r}")
        if answer["event"] == ERROR_EVENT:
            raise CommandFailed(self.name, sent, answer)
        return answer

    def signal(self, signum: int) -> None:
        """Send ``signum`` unless the child has already been reaped (its pid may be reused)."""
        if self.returncode is None:
            try:
                self._process.send_signal(signum)
            except ProcessLookupError:
                return

    async def freeze(self) -> None:
        """SIGSTOP the child and return once the kernel shows it stopped."""
        self.signal(stop_signal())
        # Polled: the kernel signals nobody when a process stops or runs again.
        await wait_until(
            lambda: process_state(self.pid) in ("T", "Z", None),
            f"{self.name} (pid {self.pid}) to stop",
            timeout=CLOSE_TIMEOUT,
        )

    async def thaw(self) -> None:
        """SIGCONT the child and return once the kernel shows it running again."""
        self.signal(continue_signal())
        await wait_until(
            lambda: process_state(self.pid) != "T",
            f"{self.name} (pid {self.pid}) to run again",
            timeout=CLOSE_TIMEOUT,
        )

    async def exited(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Wait for the child to exit on its own; its exit status.

        Polled: asyncio's ``Process.wait`` returns only once every pipe has closed too,
        which a grandchild that inherited stdout (a game, the demo peer) can hold open
        long after the child itself exited.
        """
        await wait_until(
            lambda: self.returncode is not None, f"{self.name} to exit", timeout=timeout
        )
        status = self.returncode
        assert status is not None
        return status

    async def kill(self) -> int:
        """SIGKILL the child, reap it and finish reading its output; return its status."""
        self.signal(KILL_SIGNAL)
        return await self._finish(self._process.wait())

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Close stdin, give the child ``timeout`` seconds to exit, then kill it."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            async with asyncio.timeout(timeout):
                await self._process.wait()
        except TimeoutError:
            self.signal(KILL_SIGNAL)
        return await self._finish(self._process.wait())

    def report(self, headline: str) -> str:
        """A failure message: headline, recent events, stray lines and the stderr tail."""
        return self._report(headline)

    async def _finish(self, exited: Awaitable[int]) -> int:
        status = await exited
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(self._reader)
        except TimeoutError:
            # A grandchild still holds stdout open; stop reading it.
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        return status

    async def _settle_exit(self) -> None:
        # stdout closes a moment before the child is reaped; wait briefly so the
        # message can give the exit status.
        try:
            async with asyncio.timeout(1.0):
                await self._process.wait()
        except TimeoutError:
            return

    def _take(self, match: EventMatch) -> Event | None:
        for index, event in enumerate(self.events):
            if index not in self._taken and matches(match, event):
                self._taken.add(index)
                return event
        return None

    async def _read_events(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            while line := await stdout.readline():
                self._record(line)
                async with self._changed:
                    self._changed.notify_all()
        except ValueError as exc:
            self._violations.append(f"stdout line longer than {MAX_EVENT_LINE_BYTES} bytes: {exc}")
        finally:
            self._eof = True
            async with self._changed:
                self._changed.notify_all()

    def _record(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            self.events.append(event)
        else:
            text = line.decode(errors="replace")
            self._violations.append(f"not a JSON event line: {_clip(text)}")

    def _report(self, headline: str) -> str:
        state = "running" if self.returncode is None else f"exited with {self.returncode}"
        lines = [f"{self.name} (pid {self.pid}, {state}): {headline}"]
        recent = self.events[-RECENT_EVENTS_IN_REPORT:]
        lines.append(f"recent events ({len(recent)} of {len(self.events)}):")
        lines.extend(f"  {_clip(json.dumps(event))}" for event in recent)
        if self._violations:
            lines.append("stdout lines that are not events:")
            lines.extend(f"  {violation}" for violation in self._violations[-5:])
        lines.append(f"stderr tail ({self.stderr_path}):")
        lines.extend(f"  {line}" for line in _tail(self.stderr_path))
        return "\n".join(lines)


def _clip(text: str) -> str:
    text = text.rstrip("\n")
    if len(text) <= REPORT_LINE_CHARS:
        return text
    return text[:REPORT_LINE_CHARS] + f"... ({len(text)} chars)"


def _tail(path: Path) -> list[str]:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - STDERR_TAIL_BYTES))
            data = stream.read()
    except FileNotFoundError:
        return ["(no stderr file)"]
    lines = data.decode(errors="replace").splitlines()[-STDERR_TAIL_LINES:]
    return [_clip(line) for line in lines] or ["(empty)"]
