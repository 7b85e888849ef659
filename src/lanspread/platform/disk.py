"""Free space on the filesystem holding a folder.

``shutil.disk_usage`` answers on every platform lanspread runs on; each branch is
written so a platform that needs something else has its place.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def free_bytes(folder: Path, platform: str = sys.platform) -> int:
    """Bytes an unprivileged process may still write on ``folder``'s filesystem."""
    if platform == "win32":
        # GetDiskFreeSpaceExW underneath: the caller's quota, not the volume's total.
        return shutil.disk_usage(folder).free
    if platform == "darwin":
        return shutil.disk_usage(folder).free
    # Linux and the other POSIX systems: statvfs f_bavail, the root reserve excluded.
    return shutil.disk_usage(folder).free
