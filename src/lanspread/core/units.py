"""Sizes in words, one way everywhere: the cards, the Downloads view and the refusals."""

from __future__ import annotations

_BYTE_UNITS = ("KB", "MB", "GB", "TB", "PB")


def format_bytes(count: int) -> str:
    """Decimal units with at most three significant digits: ``"2.1 GB"``, ``"480 MB"``."""
    if count < 1000:
        return f"{max(count, 0)} B"
    value = float(count)
    for unit in _BYTE_UNITS:
        value /= 1000
        if value < 999.5 or unit == _BYTE_UNITS[-1]:
            break
    return f"{value:.1f} {unit}" if value < 99.95 else f"{value:.0f} {unit}"
