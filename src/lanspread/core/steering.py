"""Seeder steering: a complete source sends a chunk once and lets the swarm spread it.

Theory of operation
-------------------
Every downloader keeps chunks in flight from a complete source and none of them
sees the others' choices, so without steering a seeder splits its upload over
copies of the same chunks. :class:`SteeringRule` remembers, per game and chunk
index, which peers this server is sending it to right now and which it sent it to
fully in the last :data:`RECENT_SEND_SECONDS`. When a peer asks for a chunk,
:meth:`SteeringRule.ask` answers ``True`` ("get it from another source now") when

* another peer announced holding it (``holders``: the availability book's peers
  with a partial copy at this server's manifest digest, and the chunk verified), or
* it is being sent to another peer and that send started less than
  :data:`PROGRESS_SECONDS` ago (a progressing transfer: that peer will announce
  it), or was fully sent to another peer less than :data:`RECENT_SEND_SECONDS` ago
  (its announcement is on the way),

and the asker was not steered away from that chunk :data:`MAX_STEERS` times
already, and this server's link is busy: a send runs (or waits for its upload
turn), or the last one ended less than :data:`IDLE_SERVE_SECONDS` ago. The
steer-count rule is what keeps anybody from starving: a chunk only this server
can give is always served, and one that others hold but somehow never reach the
asker is served after a few refusals. The idle rule is what a swarm's end needs:
once every chunk left this server, nobody asks it for a new one, and the last
downloaders' last chunks come sooner from an idle link than from peers busy
serving each other. A server that has sent nothing yet is idle too: a downloader
that just finished its copy serves the stragglers at once (at a swarm's start
nobody holds a chunk, so there is nothing to steer anyway). The data server answers a steered
request with a refusal status; the downloader's engine then leaves that chunk off
this source for a short back-off (``core.engine.swarm.STEER_BACKOFF``).

What the caller does
--------------------
``rule.ask(asker, game, index, now, holders)`` before queueing the send (``True``:
refuse); ``rule.sending(...)`` when its bytes start; ``rule.sent(...)`` once every
byte went out, or ``rule.abandoned(...)`` when the send failed. ``now`` is the
caller's monotonic clock; the rule has none.

Bounds
------
Sends in flight are as many as the data server's connections; finished sends and
refusal counts are capped at :data:`MAX_RECENT_SENDS` and :data:`MAX_STEER_RECORDS`,
the oldest going first, and expire with time.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Final

from lanspread.core.bounded import BoundedTable

# A finished send counts as "they will hold it" for this long: the receiver verifies
# the chunk, commits its journal and announces it within a have interval (one to two
# seconds); three more cover a busy machine. After that only its announcement counts.
RECENT_SEND_SECONDS: Final = 5.0

# A send in flight counts as progressing this long after it started: a 4 MiB chunk
# at 10 Mbit/s (one eighth of a 100 Mbit/s link split eight ways) takes 3.4 s. A send
# older than this may be stuck behind a stalled receiver; asking peers are served.
PROGRESS_SECONDS: Final = 10.0

# A link with no send running for this long serves what others hold too. Mid-swarm a
# downloader asks for its next chunk within a round trip of the last one's end, so a
# seeder busy handing out new chunks is never idle this long; at the end nobody asks
# for a new chunk, and a few tenths of a second of 100 Mbit/s are a chunk's worth.
IDLE_SERVE_SECONDS: Final = 0.5

# The same peer is steered away from the same chunk at most this often: then it is
# served, whatever others hold (its other sources may be unreachable from it).
MAX_STEERS: Final = 3

# Finished sends remembered: a 200 GiB game in 4 MiB chunks sent to a few peers within
# RECENT_SEND_SECONDS is far fewer; older entries are the least useful.
MAX_RECENT_SENDS: Final = 4096

# (peer, chunk) refusal counts remembered, oldest dropped first: a few per chunk of
# what many peers ask within a download's busiest minutes.
MAX_STEER_RECORDS: Final = 16384

# Refusal counts older than this are forgotten: the swarm has moved on by then.
STEER_MEMORY_SECONDS: Final = 120.0

_Chunk = tuple[str, int]
"""(game id, chunk index at this server's manifest)."""


class SteeringRule:
    """Which chunk requests a complete source refuses with "elsewhere now" (see the module)."""

    def __init__(
        self,
        *,
        max_recent: int = MAX_RECENT_SENDS,
        max_records: int = MAX_STEER_RECORDS,
    ) -> None:
        self._in_flight: dict[_Chunk, dict[str, tuple[float, int]]] = {}
        """Per chunk, the peers it is being sent to: (when it started, sends running)."""
        self._recent: BoundedTable[tuple[_Chunk, str], float] = BoundedTable(max_recent)
        """(chunk, peer) -> when its last full send ended, oldest first."""
        self._steered: BoundedTable[tuple[_Chunk, str], tuple[int, float]] = BoundedTable(
            max_records
        )
        """(chunk, peer) -> (refusals, when the last one was), oldest first."""
        self._idle_since: float | None = -math.inf
        """When the last send ended with none left running (-inf: none yet); ``None``: busy."""

    def ask(
        self, asker: str, game_id: str, index: int, now: float, holders: Collection[str]
    ) -> bool:
        """Whether to refuse ``asker`` chunk ``index`` of ``game_id`` as "elsewhere now".

        ``holders``: peers that announced holding it at this server's manifest.
        """
        self._expire(now)
        chunk = (game_id, index)
        if not self._elsewhere(asker, chunk, now, holders) or self._idle(now):
            return False
        count, _ = self._steered.get((chunk, asker)) or (0, now)
        steer = count < MAX_STEERS
        self._steered.put((chunk, asker), (count + steer, now))  # kept until sent or expired
        return steer

    def sending(self, peer: str, game_id: str, index: int, now: float) -> None:
        """The bytes of chunk ``index`` start going to ``peer``."""
        peers = self._in_flight.setdefault((game_id, index), {})
        started, running = peers.get(peer, (now, 0))
        peers[peer] = (started, running + 1)
        self._idle_since = None

    def sent(self, peer: str, game_id: str, index: int, now: float) -> None:
        """Every byte of chunk ``index`` went to ``peer``."""
        self._end(peer, (game_id, index), now)
        key = ((game_id, index), peer)
        self._recent.put(key, now)
        self._steered.pop(key)

    def abandoned(self, peer: str, game_id: str, index: int, now: float) -> None:
        """The send of chunk ``index`` to ``peer`` failed before its last byte."""
        self._end(peer, (game_id, index), now)

    @property
    def remembered(self) -> int:
        """Entries held (sends in flight, finished sends, refusal counts): for tests."""
        in_flight = sum(len(peers) for peers in self._in_flight.values())
        return in_flight + len(self._recent) + len(self._steered)

    def _elsewhere(self, asker: str, chunk: _Chunk, now: float, holders: Collection[str]) -> bool:
        if any(peer != asker for peer in holders):
            return True
        for peer, (started, _) in self._in_flight.get(chunk, {}).items():
            if peer != asker and now - started < PROGRESS_SECONDS:
                return True
        return any(sent == chunk and peer != asker for (sent, peer) in self._recent)

    def _idle(self, now: float) -> bool:
        """No send running for :data:`IDLE_SERVE_SECONDS` (or none ever)."""
        return self._idle_since is not None and now - self._idle_since >= IDLE_SERVE_SECONDS

    def _end(self, peer: str, chunk: _Chunk, now: float) -> None:
        peers = self._in_flight.get(chunk)
        if peers is None or peer not in peers:
            return
        started, running = peers[peer]
        if running > 1:
            peers[peer] = (started, running - 1)
            return
        del peers[peer]
        if not peers:
            del self._in_flight[chunk]
        if not self._in_flight:
            self._idle_since = now

    def _expire(self, now: float) -> None:
        self._recent.forget_oldest_while(lambda ended: now - ended >= RECENT_SEND_SECONDS)
        self._steered.forget_oldest_while(lambda steer: now - steer[1] >= STEER_MEMORY_SECONDS)
