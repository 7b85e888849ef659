"""The serving shell on real directories: what is opened, what is refused, nothing leaks."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.platforms import fd_is_blocking, make_fifo
from tests.support.trees import Tree, write_tree

from lanspread.core.servegate import (
    MAX_PATH_DEPTH,
    GateState,
    NodeKind,
    RefusalReason,
    ServeErrorCode,
)
from lanspread.errors import LanspreadError, StorageError
from lanspread.platform import fileio
from lanspread.seeding import serving
from lanspread.seeding.serving import (
    ServedFile,
    ServeRefused,
    list_served_files,
    resolve_for_serving,
    resolve_partial_for_serving,
)

GAME = "quake3"
STATE = GateState(catalog_ids=frozenset({GAME, "ut2004"}), active_operations=frozenset())


@pytest.fixture(params=["openat", "paths"])
def walker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with the descriptor walk and with the portable path walk."""
    mode: str = request.param
    if mode == "openat" and not serving._DIR_FD_WALK:
        pytest.skip("this platform has no openat walk")
    monkeypatch.setattr(serving, "_DIR_FD_WALK", mode == "openat")
    return mode


@pytest.fixture
def game_dir(game_dir: Path) -> Path:
    """A game directory holding one downloaded game with nested payload and installer files."""
    files: Tree = {
        "version.ini": "1.32\n",
        "quake3.eti": b"archive-bytes",
        "maps/deep/q3dm17.eti": b"nested",
        "local/quake3.exe": b"installed",
        ".local.backup/x": b"backup",
        ".lanspread.json": "{}",
    }
    write_tree(game_dir / GAME, files)
    return game_dir


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A secret file and folder outside every game root."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd").write_bytes(b"root:x:0:0")
    return secret


def _open_fd_count() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    """Fail the test when it leaves a descriptor open."""
    before = _open_fd_count()
    yield
    assert _open_fd_count() == before


def _refused(game_dir: Path, path: str, state: GateState = STATE, game: str = GAME) -> ServeRefused:
    with pytest.raises(ServeRefused) as info:
        resolve_for_serving(game_dir, game, path, state)
    return info.value


def _read_all(served: ServedFile) -> bytes:
    return fileio.pread(served.fd, served.size + 1, 0)


# --- what is served -------------------------------------------------------------


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("quake3.eti", b"archive-bytes"),
        ("version.ini", b"1.32\n"),
        ("maps/deep/q3dm17.eti", b"nested"),
    ],
)
def test_payload_files_are_opened_read_only_with_their_size(
    game_dir: Path, path: str, content: bytes
) -> None:
    """Archives, the sentinel and nested payload files come back as open, blocking descriptors."""
    with resolve_for_serving(game_dir, GAME, path, STATE) as served:
        assert served.relative_path == path
        assert served.path == game_dir / GAME / path
        assert served.size == len(content)
        assert _read_all(served) == content
        assert fd_is_blocking(served.fd)
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.write(served.fd, b"x")
    assert served.closed
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(served.fd)


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_symlinked_game_directory_is_the_users_choice(game_dir: Path, tmp_path: Path) -> None:
    """The configured game directory may itself be a link; only links below it are refused."""
    link = tmp_path / "games-link"
    link.symlink_to(game_dir)
    with resolve_for_serving(link, GAME, "quake3.eti", STATE) as served:
        assert _read_all(served) == b"archive-bytes"


def test_served_file_close_is_idempotent(game_dir: Path) -> None:
    """Closing twice is harmless: the descriptor is closed once."""
    served = resolve_for_serving(game_dir, GAME, "quake3.eti", STATE)
    served.close()
    served.close()
    assert served.closed


# --- game-level refusals --------------------------------------------------------


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_game_outside_the_catalog_is_refused(game_dir: Path) -> None:
    """An id the catalog does not list is GameNotFound, whatever is on disk."""
    (game_dir / "doom").mkdir()
    (game_dir / "doom" / "version.ini").write_text("1")
    refused = _refused(game_dir, "version.ini", game="doom")
    assert (refused.code, refused.reason) == (
        ServeErrorCode.GAME_NOT_FOUND,
        RefusalReason.NOT_IN_CATALOG,
    )
    assert str(refused) == "GameNotFound (not-in-catalog): 'doom' is not a catalog game"
    assert isinstance(refused, LanspreadError)


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_traversing_game_id_is_refused(game_dir: Path) -> None:
    """An id that is a path is refused before any path is built from it."""
    refused = _refused(game_dir, "passwd", game="../secret")
    assert refused.reason is RefusalReason.NOT_IN_CATALOG


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_game_with_an_active_operation_is_refused(game_dir: Path) -> None:
    """A busy game answers OperationInProgress."""
    state = GateState(catalog_ids=STATE.catalog_ids, active_operations={GAME})
    refused = _refused(game_dir, "quake3.eti", state)
    assert (refused.code, refused.reason) == (
        ServeErrorCode.OPERATION_IN_PROGRESS,
        RefusalReason.OPERATION_ACTIVE,
    )


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize("sentinel", ["absent", "directory", "symlink", "nested-only"])
def test_a_game_without_a_real_root_sentinel_is_refused(
    game_dir: Path, outside: Path, sentinel: str
) -> None:
    """Only a regular root version.ini makes a game servable; its files stay private otherwise."""
    root = game_dir / GAME
    (root / "version.ini").unlink()
    if sentinel == "directory":
        (root / "version.ini").mkdir()
    elif sentinel == "symlink":
        (root / "version.ini").symlink_to(outside / "passwd")
    elif sentinel == "nested-only":
        (root / "maps" / "version.ini").write_text("1")
    refused = _refused(game_dir, "quake3.eti")
    assert (refused.code, refused.reason) == (
        ServeErrorCode.GAME_NOT_FOUND,
        RefusalReason.NOT_DOWNLOADED,
    )
    assert refused.detail == "quake3 has no root version.ini"


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_missing_game_root_is_not_downloaded(game_dir: Path) -> None:
    """A catalog game with no folder at all is GameNotFound."""
    refused = _refused(game_dir, "x.eti", game="ut2004")
    assert refused.reason is RefusalReason.NOT_DOWNLOADED
    assert refused.detail == "the game root is missing"


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_missing_game_directory_is_not_downloaded(tmp_path: Path) -> None:
    """A game directory that does not exist serves nothing and raises no storage error."""
    refused = _refused(tmp_path / "nowhere", "x.eti")
    assert refused.reason is RefusalReason.NOT_DOWNLOADED


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_symlinked_game_root_is_refused(game_dir: Path, tmp_path: Path) -> None:
    """A game root that is a link (even to a valid game folder) is never walked."""
    real = tmp_path / "elsewhere"
    (game_dir / GAME).rename(real)
    (game_dir / GAME).symlink_to(real)
    refused = _refused(game_dir, "quake3.eti")
    assert (refused.reason, refused.detail) == (
        RefusalReason.SYMLINK,
        "the game root is a symlink",
    )


# --- path refusals --------------------------------------------------------------


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize(
    "path", ["local/quake3.exe", "local", ".local.backup/x", ".lanspread.json", "LOCAL/quake3.exe"]
)
def test_reserved_names_are_refused(game_dir: Path, path: str) -> None:
    """The install, its backups and the intent log are never served, in any letter case."""
    refused = _refused(game_dir, path)
    assert (refused.code, refused.reason) == (
        ServeErrorCode.GAME_NOT_FOUND,
        RefusalReason.RESERVED_PATH,
    )


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize("path", ["../ut2004/x", "/etc/passwd", "maps/../local/quake3.exe", ""])
def test_traversal_is_refused_by_syntax(game_dir: Path, path: str) -> None:
    """Paths that climb out, are absolute or empty are refused before the disk is touched."""
    assert _refused(game_dir, path).reason is RefusalReason.UNSAFE_PATH


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_symlink_to_outside_is_refused(game_dir: Path, outside: Path) -> None:
    """A payload-named link to a file outside the root is never followed."""
    (game_dir / GAME / "stolen.eti").symlink_to(outside / "passwd")
    refused = _refused(game_dir, "stolen.eti")
    assert (refused.reason, refused.detail) == (RefusalReason.SYMLINK, "component 1 is a symlink")


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_symlink_inside_the_root_is_refused_too(game_dir: Path) -> None:
    """Links are not served even when they point at payload: no link is ever followed."""
    (game_dir / GAME / "alias.eti").symlink_to("quake3.eti")
    assert _refused(game_dir, "alias.eti").reason is RefusalReason.SYMLINK


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize("target", ["outside", "local", "payload"])
def test_a_symlinked_parent_directory_is_refused(
    game_dir: Path, outside: Path, target: str
) -> None:
    """A linked folder on the way is refused, wherever it points."""
    root = game_dir / GAME
    destination = {"outside": outside, "local": root / "local", "payload": root / "maps"}[target]
    (root / "linked").symlink_to(destination)
    inner = {"outside": "passwd", "local": "quake3.exe", "payload": "deep/q3dm17.eti"}[target]
    refused = _refused(game_dir, f"linked/{inner}")
    assert (refused.reason, refused.detail) == (RefusalReason.SYMLINK, "component 1 is a symlink")


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_fifo_is_refused_without_blocking(game_dir: Path) -> None:
    """A FIFO is a special file: refused, and never opened (an open would wait for a writer)."""
    make_fifo(game_dir / GAME / "pipe.eti")
    refused = _refused(game_dir, "pipe.eti")
    assert (refused.reason, refused.detail) == (
        RefusalReason.SPECIAL_FILE,
        "component 1 is a device, FIFO or socket",
    )


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_link_to_a_device_is_a_link(game_dir: Path) -> None:
    """A link to /dev/null is refused as a link before its target could matter."""
    (game_dir / GAME / "null.eti").symlink_to("/dev/null")
    assert _refused(game_dir, "null.eti").reason is RefusalReason.SYMLINK


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize(
    ("path", "reason", "detail"),
    [
        ("missing.eti", RefusalReason.FILE_NOT_FOUND, "component 1 does not exist"),
        ("maps/missing/x.eti", RefusalReason.FILE_NOT_FOUND, "component 2 does not exist"),
        (
            "quake3.eti/x",
            RefusalReason.FILE_NOT_FOUND,
            "component 1 is a file, not a directory",
        ),
        ("maps", RefusalReason.NOT_A_REGULAR_FILE, "component 1 is a directory"),
        ("maps/deep", RefusalReason.NOT_A_REGULAR_FILE, "component 2 is a directory"),
    ],
)
def test_missing_files_and_directories_are_refused(
    game_dir: Path, path: str, reason: RefusalReason, detail: str
) -> None:
    """Only an existing regular file is served; the detail says which component failed."""
    refused = _refused(game_dir, path)
    assert (refused.code, refused.reason, refused.detail) == (
        ServeErrorCode.GAME_NOT_FOUND,
        reason,
        detail,
    )


# --- races: what the open itself guarantees --------------------------------------


def _lie_about(monkeypatch: pytest.MonkeyPatch, name: str, kind: NodeKind) -> None:
    """Make the walk's first lstat of ``name`` report ``kind``: the entry changes right after."""
    real = serving._FdRoot._lstat_kind
    lied: list[str] = []

    def lying(self: serving._FdRoot, parent: int, child: str) -> NodeKind:
        if child == name and not lied:
            lied.append(child)
            return kind
        return real(self, parent, child)

    monkeypatch.setattr(serving._FdRoot, "_lstat_kind", lying)


@pytest.mark.usefixtures("no_fd_leak")
@pytest.mark.skipif(not serving._DIR_FD_WALK, reason="needs the openat walk")
def test_a_file_swapped_for_a_link_after_lstat_is_not_followed(
    game_dir: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_NOFOLLOW makes the open itself refuse a link that lstat did not see."""
    (game_dir / GAME / "swapped.eti").symlink_to(outside / "passwd")
    _lie_about(monkeypatch, "swapped.eti", NodeKind.REGULAR_FILE)
    assert _refused(game_dir, "swapped.eti").reason is RefusalReason.SYMLINK


@pytest.mark.usefixtures("no_fd_leak")
@pytest.mark.skipif(not serving._DIR_FD_WALK, reason="needs the openat walk")
def test_a_directory_swapped_for_a_link_after_lstat_is_not_followed(
    game_dir: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parent folder replaced by a link between lstat and open is refused by the open."""
    (game_dir / GAME / "linked").symlink_to(outside)
    _lie_about(monkeypatch, "linked", NodeKind.DIRECTORY)
    refused = _refused(game_dir, "linked/passwd")
    assert (refused.reason, refused.detail) == (RefusalReason.SYMLINK, "component 1 is a symlink")


@pytest.mark.usefixtures("no_fd_leak")
@pytest.mark.skipif(not serving._DIR_FD_WALK, reason="needs the openat walk")
def test_a_file_swapped_for_a_fifo_after_lstat_does_not_block(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO swapped in is opened non-blocking, recognised by fstat and refused."""
    make_fifo(game_dir / GAME / "pipe.eti")
    _lie_about(monkeypatch, "pipe.eti", NodeKind.REGULAR_FILE)
    assert _refused(game_dir, "pipe.eti").reason is RefusalReason.SPECIAL_FILE


@pytest.mark.usefixtures("no_fd_leak")
@pytest.mark.skipif(not serving._DIR_FD_WALK, reason="needs the openat walk")
def test_a_file_that_vanishes_after_lstat_is_not_found(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry removed between lstat and open is reported missing, not as a storage error."""
    _lie_about(monkeypatch, "gone.eti", NodeKind.REGULAR_FILE)
    assert _refused(game_dir, "gone.eti").reason is RefusalReason.FILE_NOT_FOUND


@pytest.mark.usefixtures("no_fd_leak")
def test_the_path_walk_refuses_a_file_replaced_after_lstat(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without openat, fstat must show the very file lstat saw, else the open is refused."""
    monkeypatch.setattr(serving, "_DIR_FD_WALK", False)
    target = str(game_dir / GAME / "quake3.eti")
    other = os.lstat(game_dir / GAME / "version.ini")
    real_lstat = os.lstat

    def lstat(path: Any, **kwargs: Any) -> os.stat_result:
        return other if str(path) == target else real_lstat(path, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    assert _refused(game_dir, "quake3.eti").reason is RefusalReason.SYMLINK


def _failing_open(fail_name: str) -> Callable[..., int]:
    real_open = os.open

    def failing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path).endswith(fail_name):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_open(path, flags, *args, **kwargs)

    return failing


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_disk_error_is_a_storage_error(game_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An I/O error while opening is translated to StorageError naming the file."""
    monkeypatch.setattr(os, "open", _failing_open("q3dm17.eti"))
    with pytest.raises(StorageError) as info:
        resolve_for_serving(game_dir, GAME, "maps/deep/q3dm17.eti", STATE)
    assert str(info.value).startswith("cannot read ")
    assert str(info.value).endswith("q3dm17.eti for serving: Input/output error")


# --- list_served_files ------------------------------------------------------------


def _populate_listing_tree(game_dir: Path, outside: Path) -> None:
    root = game_dir / GAME
    (root / ".sync").mkdir()
    (root / ".sync" / "state").write_text("x")
    (root / ".lanspread.download.json").write_text("{}")
    (root / ".version.ini.tmp").write_text("2")
    (root / "LOCAL").mkdir()
    (root / "LOCAL" / "alias.eti").write_text("x")
    (root / "link.eti").symlink_to(outside / "passwd")
    (root / "linkdir").symlink_to(outside)
    (root / "maps" / "inner-link.eti").symlink_to("deep/q3dm17.eti")
    make_fifo(root / "pipe.eti")
    (root / "what?.eti").write_text("unportable")
    (root / "maps" / "local").mkdir()
    (root / "maps" / "local" / "nested-local.eti").write_bytes(b"12345")
    (root / "empty").mkdir()


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_list_served_files_lists_exactly_what_would_be_served(
    game_dir: Path, outside: Path
) -> None:
    """Payload files with their sizes, sorted; no reserved name, link, FIFO or unportable name."""
    _populate_listing_tree(game_dir, outside)
    listed = list_served_files(game_dir, GAME, STATE)
    assert listed == [
        ("maps/deep/q3dm17.eti", 6),
        ("maps/local/nested-local.eti", 5),
        ("quake3.eti", 13),
        ("version.ini", 5),
    ]
    for relative, size in listed:
        with resolve_for_serving(game_dir, GAME, relative, STATE) as served:
            assert served.size == size


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_list_served_files_skips_paths_deeper_than_the_limit(game_dir: Path) -> None:
    """A file nested deeper than the path syntax allows is not listed (it could not be served)."""
    deep = game_dir / GAME / Path(*["d"] * MAX_PATH_DEPTH)
    deep.mkdir(parents=True)
    (deep / "too-deep.eti").write_text("x")
    (deep.parent / "just-fits.eti").write_text("x")
    listed = dict(list_served_files(game_dir, GAME, STATE))
    assert "/".join(["d"] * (MAX_PATH_DEPTH - 1) + ["just-fits.eti"]) in listed
    assert not any(path.endswith("too-deep.eti") for path in listed)


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_list_served_files_bounds_the_listing(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payload with more files than the limit is a storage error, not an unbounded answer."""
    monkeypatch.setattr(serving, "MAX_SERVED_FILES", 3)
    (game_dir / GAME / "fourth.eti").write_bytes(b"4")
    with pytest.raises(StorageError) as info:
        list_served_files(game_dir, GAME, STATE)
    assert str(info.value) == f"{game_dir / GAME} holds more than 3 payload files"


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        ("not-in-catalog", ServeErrorCode.GAME_NOT_FOUND, RefusalReason.NOT_IN_CATALOG),
        ("busy", ServeErrorCode.OPERATION_IN_PROGRESS, RefusalReason.OPERATION_ACTIVE),
        ("no-sentinel", ServeErrorCode.GAME_NOT_FOUND, RefusalReason.NOT_DOWNLOADED),
        ("root-symlink", ServeErrorCode.GAME_NOT_FOUND, RefusalReason.SYMLINK),
    ],
)
def test_list_served_files_applies_the_game_gate(
    game_dir: Path, tmp_path: Path, case: str, code: ServeErrorCode, reason: RefusalReason
) -> None:
    """GetGame refuses what file requests refuse, and exposes nothing of local files."""
    game, state = GAME, STATE
    if case == "not-in-catalog":
        game = "doom"
    elif case == "busy":
        state = GateState(catalog_ids=STATE.catalog_ids, active_operations=frozenset({GAME}))
    elif case == "no-sentinel":
        (game_dir / GAME / "version.ini").unlink()
    else:
        (game_dir / GAME).rename(tmp_path / "moved")
        (game_dir / GAME).symlink_to(tmp_path / "moved")
    with pytest.raises(ServeRefused) as info:
        list_served_files(game_dir, game, state)
    assert (info.value.code, info.value.reason) == (code, reason)


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_list_served_files_translates_disk_errors(
    game_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that cannot be opened mid-listing is a StorageError, with no descriptor leaked."""
    real_scandir = os.scandir

    def failing(path: Any = ".") -> Any:
        where = str(Path(f"/proc/self/fd/{path}").readlink() if isinstance(path, int) else path)
        if where.endswith("deep"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", failing)
    with pytest.raises(StorageError, match=r"deep for serving: Input/output error$"):
        list_served_files(game_dir, GAME, STATE)


# --- partial copies ---------------------------------------------------------------


BUSY = GateState(catalog_ids=STATE.catalog_ids, active_operations=frozenset({GAME}))
"""A download is an active operation: the whole-game rules refuse a partial copy."""


@pytest.mark.usefixtures("walker", "no_fd_leak")
def test_a_partial_root_is_opened_without_a_sentinel_or_idle_game(game_dir: Path) -> None:
    """The partial resolver skips the sentinel and operation rules the whole game needs."""
    (game_dir / GAME / "version.ini").unlink()
    assert _refused(game_dir, "quake3.eti", BUSY).reason is RefusalReason.OPERATION_ACTIVE
    with resolve_partial_for_serving(game_dir, GAME, "maps/deep/q3dm17.eti", BUSY) as served:
        assert _read_all(served) == b"nested"


@pytest.mark.usefixtures("walker", "no_fd_leak")
@pytest.mark.parametrize(
    ("game", "path", "reason"),
    [
        ("doom", "quake3.eti", RefusalReason.NOT_IN_CATALOG),
        (GAME, "local/quake3.exe", RefusalReason.RESERVED_PATH),
        (GAME, "../quake3/quake3.eti", RefusalReason.UNSAFE_PATH),
        (GAME, "link.eti", RefusalReason.SYMLINK),
        (GAME, "missing.eti", RefusalReason.FILE_NOT_FOUND),
        ("ut2004", "x.eti", RefusalReason.NOT_DOWNLOADED),
    ],
)
def test_the_partial_resolver_keeps_every_path_rule(
    game_dir: Path, outside: Path, game: str, path: str, reason: RefusalReason
) -> None:
    """Catalog, reserved names, traversal, links and a missing root are refused as ever."""
    (game_dir / GAME / "link.eti").symlink_to(outside / "passwd")
    with pytest.raises(ServeRefused) as info:
        resolve_partial_for_serving(game_dir, game, path, BUSY)
    assert info.value.reason is reason
    assert info.value.code is ServeErrorCode.GAME_NOT_FOUND
