"""The serving shell: gather what the serve gate needs from the disk, open what it allows.

How a read cannot be redirected
-------------------------------
On POSIX the walk holds a directory file descriptor at every step and opens the
next component *relative to it* (``openat``) with ``O_NOFOLLOW``: the kernel
refuses to follow a symlink in the last position, and there is no other position,
because every component is its own ``openat``. Each component is first
``lstat``-ed relative to the parent descriptor so that symlinks, devices, FIFOs
and sockets are classified without ever being opened (opening a device can have
side effects, opening a FIFO can block); regular files and directories are then
opened (``O_NONBLOCK`` in case a FIFO was swapped in meanwhile) and ``fstat``-ed,
and the gate judges the kind of what is actually held. A symlink swapped in
between check and open makes the open fail with ``ELOOP``, which is reported as a
symlink. The real path of the opened file comes from the descriptor itself
(``/proc/self/fd`` on Linux), so the "inside the root" check is about the bytes
that will be sent, not about a name that may have changed.

Where ``openat`` is missing (Windows) the same walk runs on paths: ``lstat`` each
component (reparse points, junctions included, count as symlinks), open the
final file, check with ``fstat`` that it is the file the ``lstat`` saw, and check
its real path. A local user who swaps a parent folder for a junction between
those steps and back again could still win that race; only local users can
create links in the game directory, and they can read those files anyway.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath
from types import TracebackType

from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.servegate import (
    GateState,
    NodeKind,
    Refusal,
    RefusalReason,
    ResolvedPathFacts,
    ServeErrorCode,
    check_game,
    check_game_request,
    check_game_root,
    check_relative_path,
    check_resolved,
    split_relative_path,
)
from lanspread.errors import LanspreadError, StorageError
from lanspread.platform import fileio

# GetGame lists every payload file in one frame; the wire's MAX_GAME_FILES bounds
# that answer to 3,000 entries, far above the few dozen archives a game ships.
MAX_SERVED_FILES = 3_000

_DIR_FD_WALK = (
    os.name == "posix"
    and {os.open, os.stat} <= os.supports_dir_fd
    and os.scandir in os.supports_fd
    and hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
)
"""Walk with ``openat`` and ``O_NOFOLLOW``; otherwise the portable path walk."""

_OPEN_FLAGS = (
    os.O_RDONLY
    | fileio.O_NOFOLLOW
    | fileio.O_CLOEXEC
    | fileio.O_NOCTTY
    | fileio.O_NONBLOCK
    | fileio.O_BINARY
)
_DIR_FLAGS = _OPEN_FLAGS | fileio.O_DIRECTORY
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG})
# What an open that fails after lstat said "file" or "directory" tells: the entry
# was swapped (for a link, for nothing, or for a socket) in between.
_SWAPPED_KIND_FOR_ERRNO = {
    errno.ELOOP: NodeKind.SYMLINK,
    errno.ENOENT: NodeKind.MISSING,
    errno.ENOTDIR: NodeKind.MISSING,
    errno.ENXIO: NodeKind.SPECIAL,
}


class ServeRefused(LanspreadError):
    """The serve gate refused a request; ``code`` is what the requester is answered."""

    def __init__(self, code: ServeErrorCode, reason: RefusalReason, detail: str = "") -> None:
        super().__init__(f"{code.value} ({reason.value}): {detail}")
        self.code = code
        self.reason = reason
        self.detail = detail

    @classmethod
    def from_refusal(cls, refusal: Refusal) -> ServeRefused:
        return cls(refusal.reason.code, refusal.reason, refusal.detail)


class ServedFile:
    """An open, read-only descriptor of a payload file the gate allowed.

    The caller owns the descriptor: ``sendfile`` from it, then :meth:`close` it (or
    use the object as a context manager).
    """

    __slots__ = ("_closed", "fd", "path", "relative_path", "size")

    def __init__(self, path: Path, relative_path: str, size: int, fd: int) -> None:
        self.path = path
        self.relative_path = relative_path
        self.size = size
        """The size of the opened file, from ``fstat`` on the descriptor."""
        self.fd = fd
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.fd)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ServedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resolve_for_serving(
    game_dir: Path, game_id: str, relative_path: str, gate_state: GateState
) -> ServedFile:
    """Open ``<game_dir>/<game_id>/<relative_path>`` for serving, or raise :class:`ServeRefused`.

    Raises :class:`~lanspread.errors.StorageError` when the disk fails for another
    reason than the file not being there (permissions, I/O errors). Blocking: call
    it through ``asyncio.to_thread``.
    """
    _check_request(game_id, gate_state)
    _refuse_if(check_relative_path(relative_path))
    with _open_root(game_dir, game_id) as root:
        _check_game_on_disk(root, game_id, gate_state)
        return _open_payload(root, relative_path)


def resolve_partial_for_serving(
    game_dir: Path, game_id: str, relative_path: str, gate_state: GateState
) -> ServedFile:
    """Open a payload file of a game being downloaded here, or raise :class:`ServeRefused`.

    The path rules of :func:`resolve_for_serving` (syntax, no link anywhere, a
    regular file inside a real root) without its game rules: a partial copy has no
    ``version.ini`` and an active download. The caller ran
    ``core.servegate.check_partial_game`` and ``check_partial_chunk`` first, which
    decide whether the bytes asked for may be served at all. Blocking.
    """
    _check_request(game_id, gate_state, partial=True)
    _refuse_if(check_relative_path(relative_path))
    with _open_root(game_dir, game_id) as root:
        _refuse_if(check_game_root(root.kind))
        return _open_payload(root, relative_path)


def _open_payload(root: _Root, relative_path: str) -> ServedFile:
    components = split_relative_path(relative_path)
    kinds, fd = root.walk(components)
    try:
        facts = ResolvedPathFacts(
            root=root.kind,
            components=kinds,
            depth=len(components),
            root_real_path=root.real_path(),
            real_path=None if fd is None else root.file_real_path(fd, components),
        )
        _refuse_if(check_resolved(facts))
        assert fd is not None  # check_resolved refuses a walk that opened nothing
        size = _fstat(fd, root.path).st_size
        _set_blocking(fd)
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return ServedFile(root.path.joinpath(*components), relative_path, size, fd)


def list_served_files(game_dir: Path, game_id: str, gate_state: GateState) -> list[tuple[str, int]]:
    """Every payload file the gate would serve, as ``(relative_path, size)`` sorted by path.

    Reserved root names, symlinks, special files and names the path syntax refuses
    are left out, exactly as :func:`resolve_for_serving` would refuse them.
    """
    _check_request(game_id, gate_state)
    with _open_root(game_dir, game_id) as root:
        _check_game_on_disk(root, game_id, gate_state)
        return sorted(root.list_files())


def _check_request(game_id: str, gate_state: GateState, *, partial: bool = False) -> None:
    """Refuse a request for a game the gate does not serve; ``partial``: a copy being
    downloaded here, whose own download is the active operation, so none counts."""
    _refuse_if(
        check_game_request(
            game_id,
            catalog_ids=gate_state.catalog_ids,
            active_operations=() if partial else gate_state.active_operations,
            withheld=gate_state.withheld,
        )
    )


def _check_game_on_disk(root: _Root, game_id: str, gate_state: GateState) -> None:
    _refuse_if(check_game_root(root.kind))
    _refuse_if(
        check_game(
            game_id,
            catalog_ids=gate_state.catalog_ids,
            active_operations=gate_state.active_operations,
            sentinel_present=root.sentinel_present(),
            withheld=gate_state.withheld,
        )
    )


def _refuse_if(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise ServeRefused.from_refusal(refusal)


def _open_root(game_dir: Path, game_id: str) -> _Root:
    return _FdRoot(game_dir, game_id) if _DIR_FD_WALK else _PathRoot(game_dir, game_id)


def _kind(mode: int, attributes: int = 0) -> NodeKind:
    if stat.S_ISLNK(mode) or attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT:
        return NodeKind.SYMLINK
    if stat.S_ISDIR(mode):
        return NodeKind.DIRECTORY
    if stat.S_ISREG(mode):
        return NodeKind.REGULAR_FILE
    return NodeKind.SPECIAL


def _kind_of(result: os.stat_result) -> NodeKind:
    return _kind(result.st_mode, getattr(result, "st_file_attributes", 0))


def _storage_error(path: Path, exc: OSError) -> StorageError:
    return StorageError(f"cannot read {path} for serving: {exc.strerror or exc}")


def _fstat(fd: int, where: Path) -> os.stat_result:
    try:
        return os.fstat(fd)
    except OSError as exc:
        raise _storage_error(where, exc) from exc


def _set_blocking(fd: int) -> None:
    # Opened non-blocking so a FIFO swapped in could not hang the open; a regular
    # file is read the ordinary way from here on.
    fileio.make_blocking(fd)


def _fd_real_path(fd: int, fallback: Path) -> PurePath:
    """The path the kernel holds for ``fd``; the resolved ``fallback`` where it cannot say."""
    with contextlib.suppress(OSError):
        return PurePath(Path(f"/proc/self/fd/{fd}").readlink())
    return PurePath(os.path.realpath(fallback))


class _Root(abc.ABC):
    """A game root being walked; the two subclasses differ only in how they reach files."""

    def __init__(self, game_dir: Path, game_id: str) -> None:
        self.path = game_dir / game_id
        self.kind = NodeKind.MISSING

    def __enter__(self) -> _Root:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the walk holds."""

    @abc.abstractmethod
    def sentinel_present(self) -> bool: ...

    @abc.abstractmethod
    def walk(self, components: tuple[str, ...]) -> tuple[tuple[NodeKind, ...], int | None]:
        """Kinds from the root down, stopping at the first non-directory; the file's fd."""

    @abc.abstractmethod
    def real_path(self) -> PurePath | None: ...

    @abc.abstractmethod
    def file_real_path(self, fd: int, components: tuple[str, ...]) -> PurePath: ...

    @abc.abstractmethod
    def list_files(self) -> list[tuple[str, int]]: ...


class _FdRoot(_Root):
    """Walks with directory descriptors, ``openat`` and ``O_NOFOLLOW`` (POSIX)."""

    def __init__(self, game_dir: Path, game_id: str) -> None:
        super().__init__(game_dir, game_id)
        self._fd: int | None = None
        try:
            # The game directory itself is the user's choice and may be a link.
            parent = os.open(game_dir, os.O_RDONLY | fileio.O_DIRECTORY | fileio.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in _MISSING_ERRNOS:
                return
            raise _storage_error(game_dir, exc) from exc
        try:
            self.kind, self._fd = self._open_child(parent, game_id, open_file=False)
        finally:
            os.close(parent)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def sentinel_present(self) -> bool:
        if self._fd is None:
            return False
        return self._lstat_kind(self._fd, VERSION_FILE) is NodeKind.REGULAR_FILE

    def walk(self, components: tuple[str, ...]) -> tuple[tuple[NodeKind, ...], int | None]:
        if self._fd is None:
            return (), None
        kinds: list[NodeKind] = []
        parent, owned = self._fd, False
        try:
            for index, name in enumerate(components):
                final = index == len(components) - 1
                kind, fd = self._open_child(parent, name, open_file=final)
                kinds.append(kind)
                if owned:
                    os.close(parent)
                    owned = False
                if fd is not None and final and kind is not NodeKind.REGULAR_FILE:
                    os.close(fd)
                    fd = None
                if fd is None or final:
                    return tuple(kinds), fd
                parent, owned = fd, True
        finally:
            if owned:
                os.close(parent)
        return tuple(kinds), None

    def real_path(self) -> PurePath | None:
        return None if self._fd is None else _fd_real_path(self._fd, self.path)

    def file_real_path(self, fd: int, components: tuple[str, ...]) -> PurePath:
        return _fd_real_path(fd, self.path.joinpath(*components))

    def list_files(self) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        if self._fd is not None:
            self._list_into(os.dup(self._fd), "", found)
        return found

    def _list_into(self, dir_fd: int, prefix: str, found: list[tuple[str, int]]) -> None:
        """List the directory ``dir_fd`` (which this call closes) into ``found``."""
        try:
            for name, result in _children(dir_fd, self.path / prefix):
                relative = prefix + name
                if check_relative_path(relative) is not None:
                    continue
                kind = _kind_of(result)
                if kind is NodeKind.REGULAR_FILE:
                    _append_bounded(found, (relative, result.st_size), self.path)
                elif kind is NodeKind.DIRECTORY:
                    _, sub_fd = self._open_child(dir_fd, name, open_file=False)
                    if sub_fd is not None:
                        self._list_into(sub_fd, f"{relative}/", found)
        finally:
            os.close(dir_fd)

    def _open_child(
        self, parent: int, name: str, *, open_file: bool
    ) -> tuple[NodeKind, int | None]:
        """Classify ``name`` under ``parent`` without following links.

        A directory, or a regular file when ``open_file``, is opened and the kind of
        what is held is returned with its descriptor; anything else is never opened.
        """
        kind = self._lstat_kind(parent, name)
        if kind is NodeKind.DIRECTORY:
            flags = _DIR_FLAGS
        elif kind is NodeKind.REGULAR_FILE and open_file:
            flags = _OPEN_FLAGS
        else:
            return kind, None
        try:
            fd = os.open(name, flags, dir_fd=parent)
        except OSError as exc:
            swapped = _SWAPPED_KIND_FOR_ERRNO.get(exc.errno or 0)
            if swapped is None:
                raise _storage_error(self.path / name, exc) from exc
            # Linux answers ENOTDIR, not ELOOP, for a link opened with O_DIRECTORY:
            # look again to report what replaced the entry.
            now = self._lstat_kind(parent, name)
            return (swapped if now is kind else now), None
        try:
            held = _kind_of(_fstat(fd, self.path / name))
        except StorageError:
            os.close(fd)
            raise
        if held is not kind:
            os.close(fd)
            return held, None
        return held, fd

    def _lstat_kind(self, parent: int, name: str) -> NodeKind:
        try:
            return _kind_of(os.stat(name, dir_fd=parent, follow_symlinks=False))
        except OSError as exc:
            if exc.errno in _MISSING_ERRNOS:
                return NodeKind.MISSING
            raise _storage_error(self.path / name, exc) from exc


def _children(dir_fd: int, where: Path) -> list[tuple[str, os.stat_result]]:
    """The entries of ``dir_fd`` with their ``lstat``, sorted by name."""
    try:
        with os.scandir(dir_fd) as entries:
            children = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
    except OSError as exc:
        raise _storage_error(where, exc) from exc
    return sorted(children, key=lambda child: child[0])


class _PathRoot(_Root):
    """Walks by path with ``lstat`` per component, for platforms without ``openat``."""

    def __init__(self, game_dir: Path, game_id: str) -> None:
        super().__init__(game_dir, game_id)
        self.kind = _lstat_path_kind(self.path)

    def close(self) -> None:
        """Nothing is held between steps of a path walk."""

    def sentinel_present(self) -> bool:
        if self.kind is not NodeKind.DIRECTORY:
            return False
        return _lstat_path_kind(self.path / VERSION_FILE) is NodeKind.REGULAR_FILE

    def walk(self, components: tuple[str, ...]) -> tuple[tuple[NodeKind, ...], int | None]:
        if self.kind is not NodeKind.DIRECTORY:
            return (), None
        kinds: list[NodeKind] = []
        current = self.path
        for name in components:
            current = current / name
            kinds.append(_lstat_path_kind(current))
            if kinds[-1] is not NodeKind.DIRECTORY:
                break
        if len(kinds) != len(components) or kinds[-1] is not NodeKind.REGULAR_FILE:
            return tuple(kinds), None
        return self._open_checked(current, kinds)

    def _open_checked(
        self, path: Path, kinds: list[NodeKind]
    ) -> tuple[tuple[NodeKind, ...], int | None]:
        """Open ``path`` and make sure the file held is the one ``lstat`` saw."""
        try:
            seen = os.lstat(path)
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno in _MISSING_ERRNOS:
                return (*kinds[:-1], NodeKind.MISSING), None
            if exc.errno == errno.ELOOP:
                return (*kinds[:-1], NodeKind.SYMLINK), None
            raise _storage_error(path, exc) from exc
        held = _fstat(fd, path)
        if (held.st_dev, held.st_ino) != (seen.st_dev, seen.st_ino):
            os.close(fd)
            return (*kinds[:-1], NodeKind.SYMLINK), None
        return (*kinds[:-1], _kind_of(held)), fd

    def real_path(self) -> PurePath | None:
        if self.kind is not NodeKind.DIRECTORY:
            return None
        return PurePath(os.path.realpath(self.path))

    def file_real_path(self, fd: int, components: tuple[str, ...]) -> PurePath:
        return PurePath(os.path.realpath(self.path.joinpath(*components)))

    def list_files(self) -> list[tuple[str, int]]:
        if self.kind is not NodeKind.DIRECTORY:
            return []
        found: list[tuple[str, int]] = []
        for relative, result in _scan_paths(self.path, ""):
            _append_bounded(found, (relative, result.st_size), self.path)
        return found


def _scan_paths(directory: Path, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
    try:
        with os.scandir(directory) as entries:
            children = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
    except OSError as exc:
        if exc.errno in _MISSING_ERRNOS:
            return
        raise _storage_error(directory, exc) from exc
    for name, result in sorted(children, key=lambda child: child[0]):
        relative = prefix + name
        if check_relative_path(relative) is not None:
            continue
        kind = _kind_of(result)
        if kind is NodeKind.REGULAR_FILE:
            yield relative, result
        elif kind is NodeKind.DIRECTORY:
            yield from _scan_paths(directory / name, f"{relative}/")


def _lstat_path_kind(path: Path) -> NodeKind:
    try:
        return _kind_of(os.lstat(path))
    except OSError as exc:
        if exc.errno in _MISSING_ERRNOS:
            return NodeKind.MISSING
        raise _storage_error(path, exc) from exc


def _append_bounded(found: list[tuple[str, int]], item: tuple[str, int], root: Path) -> None:
    if len(found) >= MAX_SERVED_FILES:
        raise StorageError(f"{root} holds more than {MAX_SERVED_FILES} payload files")
    found.append(item)
