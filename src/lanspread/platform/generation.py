"""The generation number of a file: tells a reused inode number from the file it had.

An inode number alone does not prove a file is the one lanspread created: file
systems hand a freed number to the next new file. Linux file systems stamp each
inode with a generation that changes when the number is reused (ext4, btrfs,
XFS; read with the ``FS_IOC_GETVERSION`` ioctl). On Windows the file ID that
``os.stat`` reports as ``st_ino`` already carries NTFS's reuse sequence number,
so no extra number is needed there. Elsewhere, or on a file system without the
ioctl, there is no generation (``None``) and callers fall back to the inode and
the exact size.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys

# _IOR('v', 1, long) on 64-bit Linux; the kernel writes a 32-bit unsigned value.
_FS_IOC_GETVERSION = 0x80087601
_GENERATION_BUFFER = 8

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only

    def file_generation(path: str | os.PathLike[str]) -> int | None:
        """0: ``st_ino`` already carries the NTFS reuse sequence number."""
        del path
        return 0

elif sys.platform == "linux":

    def file_generation(path: str | os.PathLike[str]) -> int | None:
        """The generation of the file or folder at ``path`` (links not followed), or ``None``
        on a file system that keeps none."""
        import fcntl

        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError:
            return None
        try:
            buffer = bytearray(_GENERATION_BUFFER)
            fcntl.ioctl(fd, _FS_IOC_GETVERSION, buffer)
        except OSError:
            return None
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
        value: int = struct.unpack_from("=I", buffer)[0]
        return value

else:  # pragma: no cover - macOS and others keep no generation a user may read

    def file_generation(path: str | os.PathLike[str]) -> int | None:
        """``None``: the inode number and the size bound are the proof here."""
        del path
        return None


__all__ = ["file_generation"]
