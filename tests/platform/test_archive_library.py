"""The message a system without libarchive gets: one install step per platform."""

from __future__ import annotations

import pytest

from lanspread.platform.archive_library import install_hint, missing_libarchive_message

PREFIX = "cannot load libarchive, the library lanspread unpacks games with. "


@pytest.mark.parametrize(
    ("platform_name", "os_release", "hint"),
    [
        (
            "linux",
            {"ID": "debian"},
            "On Debian or Ubuntu install it with: apt-get install libarchive13",
        ),
        (
            "linux",
            {"ID": "linuxmint", "ID_LIKE": "ubuntu debian"},
            "On Debian or Ubuntu install it with: apt-get install libarchive13",
        ),
        ("linux", {"ID": "fedora"}, "On Fedora install it with: dnf install libarchive"),
        (
            "linux",
            {"ID": "almalinux", "ID_LIKE": "rhel centos fedora"},
            "On Fedora install it with: dnf install libarchive",
        ),
        (
            "linux",
            {"ID": "arch"},
            "On Debian or Ubuntu install it with: apt-get install libarchive13; "
            "On Fedora install it with: dnf install libarchive; "
            "elsewhere install your system's libarchive package",
        ),
        (
            "darwin",
            {},
            "On macOS install it with: brew install libarchive; Homebrew keeps it out of the "
            "default search path, so start lanspread with "
            "LIBARCHIVE=$(brew --prefix libarchive)/lib/libarchive.dylib",
        ),
        (
            "win32",
            {},
            "The Windows bundle of lanspread ships it: reinstall lanspread from the bundle",
        ),
    ],
)
def test_each_platform_gets_its_own_install_step(
    platform_name: str, os_release: dict[str, str], hint: str
) -> None:
    """Debian, Ubuntu-likes, Fedora-likes, other Linux, macOS and Windows each get their step."""
    assert install_hint(platform_name, os_release) == hint
    assert missing_libarchive_message(platform_name, os_release) == f"{PREFIX}{hint}."


def test_a_system_without_os_release_gets_every_linux_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """When /etc/os-release cannot be read the message lists the common package managers."""

    def unreadable() -> dict[str, str]:
        raise OSError("no os-release")

    monkeypatch.setattr("platform.freedesktop_os_release", unreadable)
    assert missing_libarchive_message("linux") == (
        f"{PREFIX}On Debian or Ubuntu install it with: apt-get install libarchive13; "
        "On Fedora install it with: dnf install libarchive; "
        "elsewhere install your system's libarchive package."
    )
