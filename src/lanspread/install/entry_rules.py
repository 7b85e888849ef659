"""What an archive entry may be, and where it may land: pure rules, no disk.

Every entry of every archive is checked here before libarchive writes a byte of
it (libarchive's secure-extraction flags are a second line, never the only one).

**Names.** ``/`` and ``\\`` both separate components: archives made on Windows
use backslashes, and a game extracted on Windows must land where it lands on
Linux. Empty and ``.`` components are dropped. A name is refused when it

* is absolute: starts with a separator (POSIX ``/x``, ``\\x``, UNC ``\\\\host\\share``),
* names a drive or a stream: any component holding ``:`` (``C:``, ``file:stream``),
* climbs: any ``..`` component,
* cannot exist on Windows: a reserved device name (``CON``, ``PRN``, ``AUX``,
  ``NUL``, ``COM1``-``COM9``, ``LPT1``-``LPT9``, also with an extension such
  as ``nul.txt``), a character from ``<>"|?*`` or a control character, or a
  trailing dot or space. Peers on both systems must get the same game, so
  these are refused everywhere rather than extracted differently,
* is longer than :data:`MAX_ENTRY_PATH_BYTES` or has a component longer than
  :data:`MAX_COMPONENT_BYTES`.

**Kinds.** Regular files, directories, symlinks and hard links only. Device
files, FIFOs and sockets are refused.

**Links.** A symlink's target must be relative (same absolute and drive rules)
and, resolved from the link's folder, stay inside the destination. A hard
link's target must be a regular file extracted earlier in the same game. No
entry may pass through or replace a symlink, and a symlink may not replace
an earlier entry, so the symlinks a game ends up with are exactly the ones
declared. Once every entry is known, :meth:`Namespace.check_symlinks` resolves
each symlink through the chain of all the others (as the kernel would) and
refuses one that leaves the destination or loops.

**Modes.** :func:`safe_mode` keeps read and execute bits, drops setuid,
setgid and sticky bits and write access for group and others, and always gives
the owner read and write (and execute on folders) so that the game can later
be updated and uninstalled.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

# Linux's PATH_MAX and NAME_MAX: a longer name cannot be created on the
# platforms we run on, and bounding it bounds the memory the namespace keeps.
MAX_ENTRY_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 255
MAX_LINK_TARGET_BYTES = 4096
# The kernel's own limit on symlinks followed while resolving one path (ELOOP).
MAX_SYMLINK_HOPS = 40

_RESERVED_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{n}" for n in "123456789¹²³"}
    | {f"LPT{n}" for n in "123456789¹²³"}
)
_FORBIDDEN_CHARS = re.compile(r'[<>"|?*\x00-\x1f]')
_SEPARATORS = re.compile(r"[/\\]")

_OWNER_RW = 0o600
_OWNER_RWX = 0o700
_KEPT_BITS = 0o755  # read/execute for all, write for the owner only; no setuid/setgid/sticky

Parts = tuple[str, ...]


class UnsafeEntry(Exception):
    """Why an entry is refused; the caller adds the archive and entry names."""

    def __init__(self, reason: str, *, entry: Parts = ()) -> None:
        super().__init__(reason)
        self.entry = entry
        """The entry to blame when the caller cannot know it (a symlink found unsafe at the end)."""


class EntryKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


def entry_parts(name: str) -> Parts:
    """The checked components of an entry name; ``()`` means the destination itself."""
    if not name:
        raise UnsafeEntry("empty name")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_ENTRY_PATH_BYTES:
        raise UnsafeEntry(f"name longer than {MAX_ENTRY_PATH_BYTES} bytes")
    if _SEPARATORS.match(name):
        raise UnsafeEntry("absolute path")
    parts = tuple(part for part in _SEPARATORS.split(name) if part not in ("", "."))
    for part in parts:
        _check_component(part)
    return parts


def _check_component(part: str) -> None:
    if part == "..":
        raise UnsafeEntry("'..' component")
    if ":" in part:
        raise UnsafeEntry(f"drive letter or stream name in component {part!r}")
    if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES:
        raise UnsafeEntry(f"component longer than {MAX_COMPONENT_BYTES} bytes")
    if _FORBIDDEN_CHARS.search(part):
        raise UnsafeEntry(f"character not allowed on Windows in component {part!r}")
    if part.endswith((".", " ")):
        raise UnsafeEntry(f"trailing dot or space in component {part!r}")
    if part.split(".", 1)[0].rstrip(" ").upper() in _RESERVED_DEVICE_NAMES:
        raise UnsafeEntry(f"Windows reserved device name {part!r}")


def link_target_parts(target: str) -> list[str]:
    """The raw components of a symlink target (``..`` kept); absolute targets refused."""
    if not target:
        raise UnsafeEntry("empty link target")
    if len(target.encode("utf-8", "surrogateescape")) > MAX_LINK_TARGET_BYTES:
        raise UnsafeEntry(f"link target longer than {MAX_LINK_TARGET_BYTES} bytes")
    if _SEPARATORS.match(target):
        raise UnsafeEntry(f"absolute link target {target!r}")
    parts = [part for part in _SEPARATORS.split(target) if part not in ("", ".")]
    if any(":" in part for part in parts):
        raise UnsafeEntry(f"drive letter or stream name in link target {target!r}")
    return parts


def lexical_target(link: Parts, target: str) -> Parts:
    """Where a symlink points, resolved by its text alone; refused if that leaves the root."""
    resolved = list(link[:-1])
    for part in link_target_parts(target):
        if part == "..":
            if not resolved:
                raise UnsafeEntry(f"symlink target {target!r} leaves the destination")
            resolved.pop()
        else:
            resolved.append(part)
    return tuple(resolved)


def safe_mode(perm: int, kind: EntryKind) -> int:
    """The permission bits an extracted entry gets (see the module docstring)."""
    owner = _OWNER_RWX if kind is EntryKind.DIR else _OWNER_RW
    return (perm & _KEPT_BITS) | owner


@dataclass
class Namespace:
    """Every path a game's archives declared so far, to check links against."""

    kinds: dict[Parts, EntryKind] = field(default_factory=dict)
    symlinks: dict[Parts, str] = field(default_factory=dict)

    def add(self, parts: Parts, kind: EntryKind, link_target: str = "") -> None:
        """Record one entry, refusing it if it breaks a link rule."""
        for depth in range(1, len(parts)):
            if parts[:depth] in self.symlinks:
                raise UnsafeEntry(f"passes through symlink {'/'.join(parts[:depth])!r}")
        if parts in self.symlinks:
            raise UnsafeEntry("replaces a symlink extracted earlier")
        if kind is EntryKind.SYMLINK:
            if parts in self.kinds:
                raise UnsafeEntry("symlink replaces an entry extracted earlier")
            lexical_target(parts, link_target)
            self.symlinks[parts] = link_target
        elif kind is EntryKind.HARDLINK:
            self._check_hardlink(link_target)
        for depth in range(1, len(parts)):
            self.kinds.setdefault(parts[:depth], EntryKind.DIR)
        self.kinds[parts] = kind

    def _check_hardlink(self, target: str) -> None:
        try:
            target_parts = entry_parts(target)
        except UnsafeEntry as exc:
            raise UnsafeEntry(f"hard link target {target!r}: {exc}") from exc
        if self.kinds.get(target_parts) not in (EntryKind.FILE, EntryKind.HARDLINK):
            raise UnsafeEntry(
                f"hard link target {target!r} is not a regular file extracted earlier"
            )

    def check_symlinks(self) -> None:
        """Refuse any symlink that, followed through the others, leaves the root or loops."""
        for link in sorted(self.symlinks):
            try:
                self._resolve(link)
            except UnsafeEntry as exc:
                raise UnsafeEntry(f"symlink {'/'.join(link)!r}: {exc}", entry=link) from exc

    def _resolve(self, path: Parts) -> Parts:
        """``realpath`` over the declared symlinks; real folders have lexical parents."""
        resolved: list[str] = []
        pending = list(path)
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if not resolved:
                    raise UnsafeEntry("resolves outside the destination")
                resolved.pop()
                continue
            candidate = (*resolved, part)
            target = self.symlinks.get(candidate)
            if target is None:
                resolved.append(part)
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise UnsafeEntry(f"more than {MAX_SYMLINK_HOPS} symlinks in a chain")
            pending[:0] = link_target_parts(target)
        return tuple(resolved)
