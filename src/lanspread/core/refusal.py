"""One refusal type for the pure rules that answer "yes, this" or "no, because".

A table, book or gate that refuses returns :class:`Refused` with a member of its own
reason enum, so callers test ``isinstance(outcome, Refused)`` and read ``reason``
the same way whichever rule refused. Construct it unsubscripted (``Refused(reason)``;
the type checker infers the enum): calling ``Refused[X](...)`` fails on Python 3.11,
whose generic alias cannot tag a frozen slotted instance.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R", bound=enum.Enum)


@dataclass(frozen=True, slots=True)
class Refused(Generic[R]):
    """A refusal: ``reason`` from the refusing module's enum; ``detail`` says what
    exactly, where the reason alone does not (empty otherwise)."""

    reason: R
    detail: str = ""
