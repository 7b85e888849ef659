"""The pure rules deciding which archive entries may be extracted, and where."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.install.entry_rules import (
    MAX_COMPONENT_BYTES,
    MAX_ENTRY_PATH_BYTES,
    MAX_SYMLINK_HOPS,
    EntryKind,
    Namespace,
    UnsafeEntry,
    entry_parts,
    lexical_target,
    safe_mode,
)


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a/b/c.txt", ("a", "b", "c.txt")),
        ("a\\b\\c.txt", ("a", "b", "c.txt")),
        ("./a//b/./c", ("a", "b", "c")),
        ("dir/", ("dir",)),
        ("./", ()),
        (".", ()),
        ("icon.d/cons", ("icon.d", "cons")),
        ("CONSOLE", ("CONSOLE",)),
        ("..a/b..c", ("..a", "b..c")),
    ],
)
def test_safe_names_split_into_components(name: str, parts: tuple[str, ...]) -> None:
    """Both separators split, empty and ``.`` parts drop, look-alikes of bad names pass."""
    assert entry_parts(name) == parts


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty name"),
        ("/etc/passwd", "absolute path"),
        ("\\evil", "absolute path"),
        ("\\\\server\\share\\evil", "absolute path"),
        ("//server/share/evil", "absolute path"),
        ("C:\\evil", "drive letter or stream name in component 'C:'"),
        ("c:evil", "drive letter or stream name in component 'c:evil'"),
        ("file.txt:stream", "drive letter or stream name in component 'file.txt:stream'"),
        ("../evil", "'..' component"),
        ("a/../../evil", "'..' component"),
        ("a\\..\\evil", "'..' component"),
        ("CON", "Windows reserved device name 'CON'"),
        ("dir/aux.txt", "Windows reserved device name 'aux.txt'"),
        ("Com1.log", "Windows reserved device name 'Com1.log'"),
        ("lpt9", "Windows reserved device name 'lpt9'"),
        ("nul .txt", "Windows reserved device name 'nul .txt'"),
        ("a<b", "character not allowed on Windows in component 'a<b'"),
        ("what?", "character not allowed on Windows in component 'what?'"),
        ("tab\there", "character not allowed on Windows in component 'tab\\there'"),
        ("trailing.", "trailing dot or space in component 'trailing.'"),
        ("space /x", "trailing dot or space in component 'space '"),
        ("x" * (MAX_COMPONENT_BYTES + 1), f"component longer than {MAX_COMPONENT_BYTES} bytes"),
        ("a/" * (MAX_ENTRY_PATH_BYTES // 2 + 1), f"name longer than {MAX_ENTRY_PATH_BYTES} bytes"),
    ],
)
def test_unsafe_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    """Absolute, drive, stream, climbing, Windows-impossible and oversized names are refused."""
    with pytest.raises(UnsafeEntry, match=f"^{re.escape(reason)}$"):
        entry_parts(name)


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "c:d", "CON"]), max_size=8))
def test_accepted_names_never_climb_or_carry_drives(components: list[str]) -> None:
    """Whatever a name holds, an accepted one has only plain components."""
    for separator in ("/", "\\"):
        try:
            parts = entry_parts(separator.join(components))
        except UnsafeEntry:
            continue
        assert all(part not in ("", ".", "..") and ":" not in part for part in parts)


@pytest.mark.parametrize(
    ("link", "target", "resolved"),
    [
        (("lib", "libfoo.so"), "libfoo.so.1", ("lib", "libfoo.so.1")),
        (("bin", "run"), "../lib/run", ("lib", "run")),
        (("top",), ".", ()),
        (("a", "b", "c"), "..\\..\\x", ("x",)),
    ],
)
def test_symlink_targets_resolve_inside(
    link: tuple[str, ...], target: str, resolved: tuple[str, ...]
) -> None:
    """Relative targets resolve from the link's folder, either separator."""
    assert lexical_target(link, target) == resolved


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("../x", "symlink target '../x' leaves the destination"),
        ("/etc/passwd", "absolute link target '/etc/passwd'"),
        ("\\\\host\\share", "absolute link target '\\\\\\\\host\\\\share'"),
        ("C:\\Windows", "drive letter or stream name in link target 'C:\\\\Windows'"),
        ("", "empty link target"),
    ],
)
def test_escaping_symlink_targets_are_refused(target: str, reason: str) -> None:
    """A target that climbs out, is absolute or names a drive is refused."""
    with pytest.raises(UnsafeEntry, match=f"^{re.escape(reason)}$"):
        lexical_target(("link",), target)


def test_safe_mode_keeps_exec_bits_and_drops_privilege_bits() -> None:
    """Exec bits stay; setuid/setgid/sticky and group/other write go; the owner may write."""
    assert safe_mode(0o755, EntryKind.FILE) == 0o755
    assert safe_mode(0o6777, EntryKind.FILE) == 0o755
    assert safe_mode(0o1777, EntryKind.DIR) == 0o755
    assert safe_mode(0o000, EntryKind.FILE) == 0o600
    assert safe_mode(0o444, EntryKind.FILE) == 0o644
    assert safe_mode(0o500, EntryKind.DIR) == 0o700


def test_namespace_refuses_writing_through_or_over_a_symlink() -> None:
    """Once a symlink is declared no later entry may pass through it or replace it."""
    namespace = Namespace()
    namespace.add(("sub",), EntryKind.DIR)
    namespace.add(("link",), EntryKind.SYMLINK, "sub")
    with pytest.raises(UnsafeEntry, match=r"^passes through symlink 'link'$"):
        namespace.add(("link", "x"), EntryKind.FILE)
    with pytest.raises(UnsafeEntry, match=r"^replaces a symlink extracted earlier$"):
        namespace.add(("link",), EntryKind.FILE)
    with pytest.raises(UnsafeEntry, match=r"^symlink replaces an entry extracted earlier$"):
        namespace.add(("sub",), EntryKind.SYMLINK, "x")


def test_namespace_admits_hard_links_only_to_earlier_regular_files() -> None:
    """A hard link must name a regular file already extracted in this game."""
    namespace = Namespace()
    namespace.add(("dir", "file"), EntryKind.FILE)
    namespace.add(("hl",), EntryKind.HARDLINK, "dir/file")
    namespace.add(("hl2",), EntryKind.HARDLINK, "hl")
    with pytest.raises(UnsafeEntry, match=r"^hard link target 'dir' is not a regular file"):
        namespace.add(("x",), EntryKind.HARDLINK, "dir")
    with pytest.raises(UnsafeEntry, match=r"^hard link target 'later' is not a regular file"):
        namespace.add(("y",), EntryKind.HARDLINK, "later")
    with pytest.raises(UnsafeEntry, match=r"^hard link target '../etc/passwd': '..' component$"):
        namespace.add(("z",), EntryKind.HARDLINK, "../etc/passwd")


def test_a_symlink_chain_that_escapes_is_caught_once_all_links_are_known() -> None:
    """Each link looks harmless alone (``l -> .``, ``x -> l/..``); followed, ``x`` leaves."""
    namespace = Namespace()
    namespace.add(("l",), EntryKind.SYMLINK, ".")
    namespace.add(("x",), EntryKind.SYMLINK, "l/..")
    with pytest.raises(
        UnsafeEntry, match=r"^symlink 'x': resolves outside the destination$"
    ) as info:
        namespace.check_symlinks()
    assert info.value.entry == ("x",)


def test_symlink_loops_are_refused() -> None:
    """A loop cannot be proved to stay inside, so it is refused rather than followed forever."""
    namespace = Namespace()
    namespace.add(("a",), EntryKind.SYMLINK, "b")
    namespace.add(("b",), EntryKind.SYMLINK, "a")
    with pytest.raises(
        UnsafeEntry, match=f"^symlink 'a': more than {MAX_SYMLINK_HOPS} symlinks in a chain$"
    ):
        namespace.check_symlinks()


def test_inside_chains_and_dangling_links_pass() -> None:
    """Chains that stay inside and links to missing files are harmless and allowed."""
    namespace = Namespace()
    namespace.add(("lib", "libfoo.so.1.2"), EntryKind.FILE)
    namespace.add(("lib", "libfoo.so.1"), EntryKind.SYMLINK, "libfoo.so.1.2")
    namespace.add(("lib", "libfoo.so"), EntryKind.SYMLINK, "libfoo.so.1")
    namespace.add(("bin", "foo"), EntryKind.SYMLINK, "../lib/libfoo.so")
    namespace.add(("dangling",), EntryKind.SYMLINK, "not/there")
    namespace.check_symlinks()
    assert namespace._resolve(("bin", "foo")) == ("lib", "libfoo.so.1.2")
