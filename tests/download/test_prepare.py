"""Preparing payload storage, opening payload files safely, positional writes and syncs."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.download_roots import (
    CHUNK,
    GAME_ID,
    blob,
    build_manifest,
    game_files,
    mounted_tmpfs,
)
from tests.support.install_roots import snapshot
from tests.support.ownership import record_as_downloaded
from tests.support.platforms import allocated_bytes, make_fifo
from tests.support.trees import write_tree

from lanspread.core.manifest import GameManifest
from lanspread.download.prepare import (
    FREE_SPACE_MARGIN,
    fsync_files,
    open_for_reading,
    open_for_writing,
    prepare_game_storage,
    sync_fd,
    write_at,
)
from lanspread.errors import StorageError
from lanspread.files.atomic import DiskFull
from lanspread.files.ownership import InTheWay, claim_download
from lanspread.platform import fileio

# The code under test (or the test itself) makes the root: whether it was made is part
# of what these tests prove.
pytestmark = pytest.mark.absent_root

INSTALLER_STATE = {
    "local/game.exe": b"installed",
    "local/saves/slot1.sav": b"the user's own save",
    ".local.backup/old.exe": b"backup",
    ".lanspread.json": b"{}",
    ".softlan_game_installed": b"",
    ".sync/state": b"sync tool",
}

# macOS and Windows have no posix_fallocate: their files are sized by truncation alone.
NEEDS_FALLOCATE = pytest.mark.skipif(
    sys.platform in {"darwin", "win32"}, reason="this platform has no posix_fallocate"
)


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    with mounted_tmpfs("4m") as mount_point:
        yield mount_point


def _big_game() -> dict[str, bytes]:
    """A 5 MiB game: more than the 4 MiB test disk holds."""
    return {
        "quake3.eti": blob(10, 3 * CHUNK),
        "quake3.part2.eti": blob(11, 2 * CHUNK),
        "version.ini": b"version = 2.0\n",
    }


def _payload_sizes(root: Path, manifest: GameManifest) -> dict[str, int]:
    return {
        file.path: (root / file.path).stat().st_size
        for file in manifest.files
        if not file.is_sentinel
    }


# --- prepare_game_storage: layout ----------------------------------------------------------


def test_prepare_creates_the_root_folders_and_full_size_files_but_not_the_sentinel(
    root: Path,
) -> None:
    """A fresh root gets every payload file at its final size, blocks reserved, no sentinel."""
    manifest = build_manifest(game_files())
    prepare_game_storage(root, manifest, margin=0)
    assert _payload_sizes(root, manifest) == {
        file.path: file.size for file in manifest.files if not file.is_sentinel
    }
    assert not (root / "version.ini").exists()
    assert (root / "maps/extra").is_dir()
    big = (root / "quake3.eti").stat()
    assert allocated_bytes(big) >= big.st_size, "posix_fallocate should reserve every block"


def test_prepare_keeps_the_bytes_of_files_that_already_exist(root: Path) -> None:
    """An update keeps existing bytes: a longer file is cut, a shorter one extended with zeros."""
    files = game_files()
    old_big = blob(50, 3 * CHUNK)
    old_small = b"old prefix"
    write_tree(root, {"quake3.eti": old_big, "quake3.part2.eti": old_small})
    manifest = build_manifest(files)
    prepare_game_storage(root, manifest, margin=0)
    assert (root / "quake3.eti").read_bytes() == old_big[: len(files["quake3.eti"])]
    extended = (root / "quake3.part2.eti").read_bytes()
    assert extended[: len(old_small)] == old_small
    assert extended[len(old_small) :] == bytes(len(files["quake3.part2.eti"]) - len(old_small))


def test_prepare_removes_stale_payload_and_keeps_installer_names_sentinel_and_transients(
    root: Path,
) -> None:
    """Old archives and folders lanspread recorded go; installer-owned names, transients,
    version.ini and the player's own files (a mod in the root, a save in a payload
    folder) stay byte for byte."""
    kept = {
        **INSTALLER_STATE,
        ".version.ini.discarded": b"version = 1.0\n",
        ".lanspread.download.json": b"journal",
        "version.ini": b"version = 1.0\n",
    }
    write_tree(root, {**kept, "quake3.v1.eti": b"stale archive", "oldmaps/a.eti": b"stale"})
    write_tree(root, {"maps/stale.eti": b"stale nested"})
    record = record_as_downloaded(root)
    players = {"my-mod.pak": b"the player's mod", "maps/mine.bsp": b"the player's map"}
    write_tree(root, players)
    prepare_game_storage(root, build_manifest(game_files()), margin=0, owned=record)
    after = snapshot(root)
    assert {path: after[path] for path in kept} == kept
    assert {path: after[path] for path in players} == players
    for stale in ("quake3.v1.eti", "oldmaps", "oldmaps/a.eti", "maps/stale.eti"):
        assert stale not in after


def test_without_a_record_prepare_deletes_nothing(root: Path) -> None:
    """No ownership record, no proof: every entry that is not the manifest's stays."""
    players = {"quake3.v1.eti": b"copied by hand", "saves/slot1.sav": b"a save"}
    write_tree(root, players)
    prepare_game_storage(root, build_manifest(game_files()), margin=0)
    after = snapshot(root)
    assert {path: after[path] for path in players} == players


def test_a_folder_where_a_file_belongs_and_a_file_where_a_folder_belongs_are_replaced(
    root: Path,
) -> None:
    """Our own payload of the wrong kind (a folder at a file path, a file at a folder
    path) is replaced when the download claims the root."""
    write_tree(root, {"quake3.eti/inner.bin": b"x", "maps": b"a file, not a folder"})
    record_as_downloaded(root)
    manifest = build_manifest(game_files())
    record = claim_download(root, manifest, adopt=False)
    prepare_game_storage(root, manifest, margin=0, owned=record)
    assert (root / "quake3.eti").is_file()
    assert (root / "maps").is_dir()
    assert (root / "maps/extra/dm1.eti").stat().st_size == len(game_files()["maps/extra/dm1.eti"])


def test_a_link_in_place_of_a_payload_file_refuses_the_download(root: Path, tmp_path: Path) -> None:
    """A link lanspread did not make at a payload path refuses the claim; link and target stay."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not yours")
    root.mkdir()
    (root / "quake3.eti").symlink_to(outside)
    with pytest.raises(InTheWay) as caught:
        claim_download(root, build_manifest(game_files()), adopt=True)
    assert str(caught.value) == (
        "quake3: quake3.eti already in the game folder and not created by lanspread; "
        "move it out of the game folder to download"
    )
    assert (root / "quake3.eti").is_symlink()
    assert outside.read_bytes() == b"not yours"


def test_a_link_in_place_of_a_payload_folder_refuses_the_download(
    root: Path, tmp_path: Path
) -> None:
    """A link where a payload folder belongs refuses the claim; nothing is created through it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.mkdir()
    (root / "maps").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InTheWay) as caught:
        claim_download(root, build_manifest(game_files()), adopt=False)
    assert str(caught.value).startswith("quake3: maps already in the game folder")
    assert (root / "maps").is_symlink()
    assert list(elsewhere.iterdir()) == []


def test_special_files_at_payload_paths_are_never_removed(root: Path) -> None:
    """A FIFO at a payload path refuses the claim; an unrecorded one elsewhere survives prepare."""
    root.mkdir()
    make_fifo(root / "quake3.eti")
    make_fifo(root / "leftover.fifo")
    with pytest.raises(InTheWay):
        claim_download(root, build_manifest(game_files()), adopt=True)
    (root / "quake3.eti").unlink()
    record = claim_download(root, build_manifest(game_files()), adopt=False)
    prepare_game_storage(root, build_manifest(game_files()), margin=0, owned=record)
    assert (root / "quake3.eti").is_file()
    assert (root / "leftover.fifo").exists()


def test_prepare_twice_is_idempotent(root: Path) -> None:
    """Preparing a prepared root (a resume) changes no byte and needs no free space."""
    manifest = build_manifest(game_files())
    prepare_game_storage(root, manifest, margin=0)
    (root / "quake3.eti").write_bytes(game_files()["quake3.eti"])
    before = snapshot(root)
    prepare_game_storage(root, manifest, margin=10**18)
    assert snapshot(root) == before


@pytest.mark.parametrize("kind", ["link", "file"])
def test_a_root_that_is_not_a_folder_is_refused(root: Path, tmp_path: Path, kind: str) -> None:
    """A game root that is a link (never followed) or a file is refused with the path named."""
    if kind == "link":
        target = tmp_path / "target"
        target.mkdir()
        root.symlink_to(target, target_is_directory=True)
    else:
        root.write_bytes(b"")
    with pytest.raises(StorageError) as caught:
        prepare_game_storage(root, build_manifest(game_files()), margin=0)
    assert str(caught.value) == f"{root} is not a folder (links are not followed)"


def test_an_invalid_manifest_is_refused_before_anything_is_created(root: Path) -> None:
    """A manifest that breaks the rules (here: no sentinel) is a StorageError; no root appears."""
    manifest = build_manifest({"a.eti": b"x", "version.ini": b"v"})
    broken = GameManifest(
        game_id=manifest.game_id,
        version=manifest.version,
        chunk_size=manifest.chunk_size,
        files=manifest.files[:1],
    )
    with pytest.raises(StorageError) as caught:
        prepare_game_storage(root, broken, margin=0)
    assert str(caught.value) == f"cannot prepare {root}: manifest of 'quake3': no root version.ini"
    assert not root.exists()


def test_a_root_whose_parent_is_missing_is_a_storage_error(tmp_path: Path) -> None:
    """The game directory must exist: prepare creates the root, not the game directory."""
    root = tmp_path / "missing" / GAME_ID
    with pytest.raises(StorageError) as caught:
        prepare_game_storage(root, build_manifest(game_files()), margin=0)
    assert str(caught.value) == f"cannot create {root}: No such file or directory"


def test_an_unlistable_folder_is_a_storage_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the survey cannot list fails the prepare with the folder named."""
    root.mkdir()

    def refuse(path: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(StorageError) as caught:
        prepare_game_storage(root, build_manifest(game_files()), margin=0)
    assert str(caught.value) == f"cannot list {root}: Permission denied"


@NEEDS_FALLOCATE
def test_a_filesystem_without_fallocate_is_not_an_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """posix_fallocate refused as unsupported leaves the files sized by ftruncate alone."""

    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    manifest = build_manifest(game_files())
    prepare_game_storage(root, manifest, margin=0)
    assert _payload_sizes(root, manifest)["quake3.eti"] == len(game_files()["quake3.eti"])


@NEEDS_FALLOCATE
def test_another_allocation_error_is_a_storage_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An allocation error that is not 'unsupported' or 'full' names the file and the reason."""

    def broken(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "posix_fallocate", broken)
    with pytest.raises(StorageError) as caught:
        prepare_game_storage(root, build_manifest(game_files()), margin=0)
    assert str(caught.value) == f"cannot allocate {root / 'maps/extra/dm1.eti'}: Input/output error"


# --- prepare_game_storage: disk full -------------------------------------------------------


def test_disk_full_fails_early_with_the_numbers_and_changes_nothing(tmpfs: Path) -> None:
    """On a 4 MiB disk a 5 MiB game fails before any change, naming needed and free bytes."""
    root = tmpfs / GAME_ID
    write_tree(root, {"quake3.eti": b"old version", "local/game.exe": b"installed"})
    before = snapshot(root)
    manifest = build_manifest(_big_game())
    to_allocate = sum(file.size for file in manifest.files if not file.is_sentinel)
    to_allocate -= allocated_bytes((root / "quake3.eti").stat())  # the old file's blocks are reused
    available = shutil.disk_usage(tmpfs).free
    with pytest.raises(DiskFull) as caught:
        prepare_game_storage(root, manifest, margin=0)
    assert str(caught.value) == (
        f"not enough disk space for {root}: needs {to_allocate} bytes "
        f"({to_allocate} to allocate plus a 0-byte margin), {available} available"
    )
    assert (caught.value.needed, caught.value.available) == (to_allocate, available)
    assert snapshot(root) == before


def test_the_margin_is_part_of_the_check(tmpfs: Path) -> None:
    """A game that fits only without the margin fails with the default margin named."""
    root = tmpfs / GAME_ID
    manifest = build_manifest({"a.eti": blob(3, CHUNK), "version.ini": b"v"})
    available = shutil.disk_usage(tmpfs).free
    with pytest.raises(DiskFull) as caught:
        prepare_game_storage(root, manifest)
    assert str(caught.value) == (
        f"not enough disk space for {root}: needs {CHUNK + FREE_SPACE_MARGIN} bytes "
        f"({CHUNK} to allocate plus a {FREE_SPACE_MARGIN}-byte margin), {available} available"
    )
    assert not root.exists()
    prepare_game_storage(root, manifest, margin=0)
    assert (root / "a.eti").stat().st_size == CHUNK


def test_space_freed_by_stale_archives_counts(tmpfs: Path) -> None:
    """Replacing a 3 MiB old archive by a 3 MiB new one fits a 4 MiB disk: the old one is freed."""
    root = tmpfs / GAME_ID
    write_tree(root, {"old.eti": blob(4, 3 * CHUNK)})
    record = record_as_downloaded(root)
    manifest = build_manifest({"new.eti": blob(5, 3 * CHUNK), "version.ini": b"v"})
    prepare_game_storage(root, manifest, margin=0, owned=record)
    assert not (root / "old.eti").exists()
    assert (root / "new.eti").stat().st_size == 3 * CHUNK


def test_a_disk_filled_after_the_check_is_a_clean_disk_full(
    tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another program takes the space after the check, allocation fails as DiskFull."""
    root = tmpfs / GAME_ID
    real = shutil.disk_usage(tmpfs)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real._replace(free=10 * real.total))
    with pytest.raises(DiskFull) as caught:
        prepare_game_storage(root, build_manifest(_big_game()), margin=0)
    assert str(caught.value).startswith("disk full while allocating ")
    assert str(caught.value).endswith(": No space left on device")


# --- open_for_writing / open_for_reading ------------------------------------------------------


@pytest.fixture
def prepared(root: Path) -> Path:
    prepare_game_storage(root, build_manifest(game_files()), margin=0)
    return root


def test_open_for_writing_gives_a_descriptor_of_the_prepared_file(prepared: Path) -> None:
    """The descriptor writes into the payload file in place."""
    fd = open_for_writing(prepared, "maps/extra/dm1.eti")
    try:
        write_at(fd, b"hello", 3)
    finally:
        os.close(fd)
    assert (prepared / "maps/extra/dm1.eti").read_bytes()[:8] == b"\0\0\0hello"


def test_open_for_writing_never_follows_a_link(prepared: Path, tmp_path: Path) -> None:
    """A link swapped in for a payload file after preparation is refused, its target untouched."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not yours")
    (prepared / "quake3.eti").unlink()
    (prepared / "quake3.eti").symlink_to(outside)
    with pytest.raises(StorageError) as caught:
        open_for_writing(prepared, "quake3.eti")
    assert str(caught.value) == (
        f"{prepared / 'quake3.eti'}: the path crosses a link or a non-folder; not following it"
    )
    assert outside.read_bytes() == b"not yours"


def test_open_for_writing_never_follows_a_linked_folder(prepared: Path, tmp_path: Path) -> None:
    """A link swapped in for a payload folder is refused: nothing is opened through it."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "extra").mkdir(parents=True)
    (elsewhere / "extra/dm1.eti").write_bytes(b"not yours")
    shutil.rmtree(prepared / "maps")
    (prepared / "maps").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StorageError) as caught:
        open_for_writing(prepared, "maps/extra/dm1.eti")
    assert "the path crosses a link or a non-folder; not following it" in str(caught.value)
    assert (elsewhere / "extra/dm1.eti").read_bytes() == b"not yours"


def test_a_linked_root_is_never_followed_by_open(tmp_path: Path, prepared: Path) -> None:
    """Opening through a root that is a link is refused."""
    link = tmp_path / "linked-root"
    link.symlink_to(prepared, target_is_directory=True)
    with pytest.raises(StorageError):
        open_for_writing(link, "quake3.eti")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../escape.eti", "component '..'"),
        ("/etc/passwd", "absolute"),
        ("maps/../../x", "component '..'"),
        ("local/game.exe", "'local' is reserved"),
        (".lanspread.download.json", "'.lanspread.download.json' is reserved"),
        ("a\\b", "forbidden character '\\\\'"),
    ],
)
def test_open_refuses_paths_outside_the_payload(prepared: Path, path: str, reason: str) -> None:
    """Unsafe or reserved paths are refused before anything is opened, with the rule named."""
    for opener in (open_for_writing, open_for_reading):
        with pytest.raises(StorageError) as caught:
            opener(prepared, path)
        assert (
            str(caught.value)
            == f"refusing {path!r} under {prepared}: unsafe path {path!r}: {reason}"
        )


def test_open_for_writing_refuses_the_sentinel(prepared: Path) -> None:
    """The sentinel is only ever committed through its temp file, never written in place."""
    with pytest.raises(StorageError) as caught:
        open_for_writing(prepared, "version.ini")
    assert str(caught.value) == (
        f"refusing to open {prepared / 'version.ini'} for writing: the sentinel is committed "
        "last through its temp file"
    )


def test_open_for_writing_needs_a_prepared_file(prepared: Path) -> None:
    """A payload file that does not exist is not created behind the preparation's back."""
    with pytest.raises(StorageError) as caught:
        open_for_writing(prepared, "new.eti")
    assert str(caught.value) == (
        f"{prepared / 'new.eti'} does not exist (prepare the game storage first)"
    )


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_open_for_writing_refuses_what_is_not_a_regular_file(prepared: Path, kind: str) -> None:
    """A FIFO (never blocked on) or a folder at a payload path is not a payload file."""
    target = prepared / "odd.eti"
    if kind == "fifo":
        make_fifo(target)
    else:
        target.mkdir()
    with pytest.raises(StorageError) as caught:
        open_for_writing(prepared, "odd.eti")
    assert str(caught.value) == f"{target} is not a regular file"


def test_open_for_reading_returns_none_for_what_is_not_a_payload_file(
    prepared: Path, tmp_path: Path
) -> None:
    """Missing paths, links and folders read as 'no such payload file', regular files open."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    (prepared / "link.eti").symlink_to(outside)
    assert open_for_reading(prepared, "missing.eti") is None
    assert open_for_reading(prepared, "link.eti") is None
    assert open_for_reading(prepared, "maps") is None
    fd = open_for_reading(prepared, "quake3.part2.eti")
    assert fd is not None
    try:
        assert os.fstat(fd).st_size == len(game_files()["quake3.part2.eti"])
    finally:
        os.close(fd)


def test_an_open_error_other_than_a_link_is_reported(
    prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any other refusal to open names the path and the reason."""
    real_open = os.open

    def refuse(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if path == "quake3.eti":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(StorageError) as caught:
        open_for_writing(prepared, "quake3.eti")
    assert str(caught.value) == f"cannot open {prepared / 'quake3.eti'}: Permission denied"


# --- write_at ----------------------------------------------------------------------------------


def test_write_at_finishes_short_writes(prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A positional write that writes fewer bytes than asked is continued until all are written."""
    real = fileio.pwrite

    def one_byte_at_a_time(fd: int, data: fileio.Buffer, offset: int) -> int:
        return real(fd, data[:1], offset)

    monkeypatch.setattr(fileio, "pwrite", one_byte_at_a_time)
    fd = open_for_writing(prepared, "quake3.part2.eti")
    try:
        write_at(fd, b"abcdef", 10)
    finally:
        os.close(fd)
    assert (prepared / "quake3.part2.eti").read_bytes()[10:16] == b"abcdef"


def test_a_write_failing_with_enospc_mid_file_is_a_clean_disk_full(tmpfs: Path) -> None:
    """A payload file not backed by reserved blocks fills the disk mid-write: DiskFull, named."""
    root = tmpfs / GAME_ID
    root.mkdir()
    sparse = root / "quake3.eti"
    with open(sparse, "wb") as handle:
        handle.truncate(8 * CHUNK)
    fd = open_for_writing(root, "quake3.eti")
    data = blob(6, 8 * CHUNK)
    try:
        with pytest.raises(DiskFull) as caught:
            write_at(fd, data, 0, name="quake3.eti")
    finally:
        os.close(fd)
    message = str(caught.value)
    assert message.startswith("disk full while writing quake3.eti at offset ")
    assert message.endswith(": No space left on device")
    failed_at = int(message.split("offset ")[1].split(":")[0])
    assert 0 < failed_at <= 4 * CHUNK
    assert sparse.read_bytes()[:failed_at] == data[:failed_at]


def test_another_write_error_is_a_storage_error() -> None:
    """A write on a closed descriptor is a StorageError naming the file and the offset."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(StorageError) as caught:
        write_at(write_end, b"x", 5, name="quake3.eti")
    assert str(caught.value) == "cannot write quake3.eti at offset 5: Bad file descriptor"


# --- fsync_files / sync_fd ----------------------------------------------------------------------


def test_fsync_files_syncs_each_payload_file(
    prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every named file gets a data sync on a descriptor of that very file."""
    synced: list[int] = []
    real = fileio.data_sync

    def spy(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(fileio, "data_sync", spy)
    fsync_files(prepared, ["quake3.eti", "maps/extra/dm1.eti"])
    assert synced == [
        (prepared / "quake3.eti").stat().st_ino,
        (prepared / "maps/extra/dm1.eti").stat().st_ino,
    ]


def test_fsync_files_refuses_missing_and_unsafe_paths(prepared: Path) -> None:
    """A path that is not a prepared payload file is an error, never silently skipped."""
    with pytest.raises(StorageError) as caught:
        fsync_files(prepared, ["gone.eti"])
    assert str(caught.value) == (
        f"{prepared / 'gone.eti'} does not exist (prepare the game storage first)"
    )
    with pytest.raises(StorageError):
        fsync_files(prepared, ["../x"])


def test_a_failed_sync_is_a_storage_error() -> None:
    """A sync the kernel refuses is a StorageError naming the file."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(StorageError) as caught:
        sync_fd(write_end, name="quake3.eti")
    assert str(caught.value) == "cannot sync quake3.eti: Bad file descriptor"


# --- the tmpfs helper itself --------------------------------------------------------------------


def test_an_unmountable_tmpfs_fails_in_ci_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CI=true the disk-full tests never skip: a failed mount fails them, saying why."""

    def refuse(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(args, 32, b"", b"mount: permission denied")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as caught, mounted_tmpfs("4m"):
        pass
    assert str(caught.value) == (
        "cannot mount a 4m tmpfs for the disk-full tests (they need root): mount: permission denied"
    )


def test_a_resume_prepare_syncs_nothing_and_a_fresh_one_syncs_what_it_changed(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh: every new file and every folder that gained an entry is synced; resume: nothing."""
    manifest = build_manifest(game_files())
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    prepare_game_storage(root, manifest, margin=0)
    sized = {str(root / file.path) for file in manifest.files if file.size and not file.is_sentinel}
    folders = {str(root.parent), str(root), str(root / "maps"), str(root / "maps/extra")}
    assert set(synced) == sized | folders
    synced.clear()
    prepare_game_storage(root, manifest, margin=0)
    assert synced == []
