"""What to tell a user whose system cannot load libarchive, per platform.

lanspread unpacks games with libarchive, a shared library loaded at run time
through ``libarchive-c``. When it is missing the user gets
:class:`~lanspread.errors.ArchiveLibraryMissing` with the one command (or step)
that installs it on their system instead of a ctypes traceback.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping

# What loading the library raises when it is missing: OSError when a named file
# cannot be loaded; where find_library finds nothing, ctypes loads the program
# itself (POSIX: AttributeError for the first missing symbol) or refuses None
# (Windows: TypeError).
LOAD_ERRORS = (OSError, AttributeError, TypeError)

DEBIAN_HINT = "On Debian or Ubuntu install it with: apt-get install libarchive13"
FEDORA_HINT = "On Fedora install it with: dnf install libarchive"
MACOS_HINT = (
    "On macOS install it with: brew install libarchive; Homebrew keeps it out of the "
    "default search path, so start lanspread with "
    "LIBARCHIVE=$(brew --prefix libarchive)/lib/libarchive.dylib"
)
WINDOWS_HINT = "The Windows bundle of lanspread ships it: reinstall lanspread from the bundle"


def missing_libarchive_message(
    platform_name: str | None = None, os_release: Mapping[str, str] | None = None
) -> str:
    """The whole message for a system without libarchive (this one unless told otherwise;
    ``os_release`` as in /etc/os-release)."""
    hint = install_hint(sys.platform if platform_name is None else platform_name, os_release)
    return f"cannot load libarchive, the library lanspread unpacks games with. {hint}."


def install_hint(platform_name: str, os_release: Mapping[str, str] | None = None) -> str:
    """How to get libarchive on ``platform_name`` (a ``sys.platform`` value)."""
    if platform_name == "win32":
        return WINDOWS_HINT
    if platform_name == "darwin":
        return MACOS_HINT
    release = _os_release() if os_release is None else os_release
    family = {release.get("ID", ""), *release.get("ID_LIKE", "").split()}
    if family & {"debian", "ubuntu"}:
        return DEBIAN_HINT
    if family & {"fedora", "rhel", "centos"}:
        return FEDORA_HINT
    return f"{DEBIAN_HINT}; {FEDORA_HINT}; elsewhere install your system's libarchive package"


def _os_release() -> Mapping[str, str]:
    try:
        return platform.freedesktop_os_release()
    except OSError:
        return {}
