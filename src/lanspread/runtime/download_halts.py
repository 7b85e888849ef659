"""How a download that is not running shows: paused or failed, why, and until when.

What the player sees of a download that is not running comes from
:attr:`lanspread.runtime.downloads.DownloadManager.halted`, part of every game
snapshot, never from events:

==============================  ==========  ===============  ===========================
how it stopped                  state       reason           until
==============================  ==========  ===============  ===========================
every source left or went mute  paused      all-peers-gone   the next download or cancel,
                                                             or a source's return (the queue)
a journal found at start        paused      restart          the next download or cancel
the player paused it            paused      player           likewise (never by itself)
waiting for a download slot     paused      queued           its turn in the queue
any failure                     failed      failed           the next download or cancel
==============================  ==========  ===============  ===========================

The message of an ``all-peers-gone`` pause names the source that left last and
how far the download had got ("Alice left at 35%").

A paused or failed download with a journal on disk is discardable: ``cancel``
runs the same sweep as a cancelled download.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from lanspread.core.download_queue import PLAYER, QUEUED
from lanspread.core.engine import ALL_PEERS_GONE
from lanspread.runtime.replies import PAUSED

_T = TypeVar("_T")

# Why a download is paused (DownloadState.reason), with the words the player reads.
RESTART = "restart"
PAUSE_MESSAGES: Mapping[str, str] = {
    ALL_PEERS_GONE: "every source left or stopped answering",
    RESTART: "interrupted by a restart",
    PLAYER: "paused by you",
    QUEUED: "queued: waits for another download to finish",
}


@dataclass(frozen=True, slots=True)
class Halt:
    """How a download that is not running ended: paused or failed, and why."""

    state: str
    reason: str
    message: str


def paused(reason: str) -> Halt:
    """A pause for ``reason``, with the words the player reads."""
    return Halt(PAUSED, reason, PAUSE_MESSAGES[reason])


def put(facts: dict[str, _T], game_id: str, fact: _T | None) -> None:
    """Record ``fact`` of ``game_id``, or forget the one recorded when there is none."""
    if fact is None:
        facts.pop(game_id, None)
    else:
        facts[game_id] = fact
