"""The sources of one download and which chunk goes where: no I/O, no clock.

Every source has an **availability map**: the files it holds exactly as agreed
(``paths``) and, for a source that is itself still downloading, the chunks of
them it has verified (``has``; ``None`` means every chunk of ``paths``). A
chunk's **rarity** is how many usable sources hold it.

Choice, in the order the engine applies it (:meth:`Swarm.assign`):

1. **Which source asks next (load-aware).** Among the open connections with a
   free pipeline slot, the one expected to finish one more chunk soonest: its
   bytes in flight plus one chunk over its measured rate (sources not measured
   yet go first, so every source gets measured; ties: fewer chunks in flight,
   then the smaller name).
2. **Which chunk (rarest-first).** Chunks that came back (a failure, a source
   that left) first, then the needed chunks by rarity, then (path, offset) so a
   source reads its files front to back, or with a ``salt`` an order of the
   download's own, so that peers starting together ask for different chunks and
   have something to trade. With ``slow_depth`` a source whose chunk takes over
   :data:`SLOW_CHUNK_SECONDS` (or not measured yet) keeps at most that many in
   flight. A chunk is skipped for a source that
   does not hold it, for one that already failed it while another usable
   holder has not, and for a complete source that steered it away (its seeder
   steering: other peers hold it) until :data:`STEER_BACKOFF` has passed.
3. **The tail.** When the chunks left unassigned would fit in the slots of the
   connections open or opening, a chunk is withheld from a source when another
   open source holding it (busy now) would still finish it sooner by their
   rates: the slow source does not get the last chunks just because it is idle.
   While some connected source is not measured yet, the tail is dealt round
   robin: no source gets a chunk ahead of another open or opening source that
   has work, so the first connection of a small game does not take it all. A
   source whose first chunk has been in flight for :data:`UNMEASURED_GRACE`
   holds no one back any more: a trickle never stalls the others.
4. **Endgame.** Once nothing is left unassigned and at most
   :data:`ENDGAME_CHUNKS` chunks are in flight, an idle source may ask for one of
   them too (at most :data:`MAX_COPIES` holders a chunk); the first verified copy
   wins and the other holders' connections are told to drop it.

The rate of a source is a moving average of its chunk completions: the time
from the previous completion (or from when its pipeline went from empty to
busy) to this one, over the chunk's length. Pipelined answers arrive one after
the other, so that interval is the time one chunk took on the wire.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lanspread.core.planning import ChunkKey, ChunkTask

# A complete source that steered a chunk away (``ChunkFault.STEERED``: other peers
# hold it or are getting it) is not asked for it again for this long: enough for the
# partial holders to serve it or for their announcements to arrive (a journal commit
# a second, then a have interval of a quarter second), short enough that a chunk
# whose holders fail or leave comes back to the seeder soon; the seeder serves it
# after a few steers anyway.
STEER_BACKOFF = 2.0

# Steers taken from one complete source for one chunk before its next one counts as a
# failed attempt: an honest seeder serves a chunk after three steers of a peer
# (``core.steering.MAX_STEERS``), so a source that keeps steering is stalling us.
MAX_STEERS_TAKEN = 4

# A chunk that failed this often, across every source that could serve it, is not
# a passing glitch (a peer leaving, a reset connection): fail the download with the
# reasons instead of retrying forever. Enough for one retry on each of a few sources
# plus a retry on the last one standing.
MAX_CHUNK_ATTEMPTS = 4

# Connections to one source that failed in a row (refused, reset, cut inside a
# chunk) with no verified chunk in between before this download stops dialling it:
# a source under our control would otherwise make us redial it forever; three
# covers a passing reset and a restart of its data server.
MAX_SOURCE_STRIKES = 3

# How long an opening data connection holds back the tail of a small game for its
# share: on a LAN a connection opens in milliseconds, but a ticket over TLS plus the
# data connect took over two seconds on a loaded two-core machine running a dozen
# peers; five cover that, and a source that never opens costs at most five seconds
# on the last few chunks (one that fails to connect stops holding back at once).
TAIL_CONNECT_GRACE = 5.0

# A source whose first chunk is still in flight this long after it was asked for no
# longer holds the others back in the tail's round robin: the round robin only spreads
# a small game's last chunks over sources that open together, and on a LAN such a
# chunk lands in milliseconds. A source this slow is a trickle (the reported one sent
# 2 KiB/s and kept a download at 46% for 150 s); the others take the chunks left by
# their measured rates, and the endgame copies the one it holds.
UNMEASURED_GRACE = 1.0

# Weight of the newest chunk in a source's measured rate: a third follows a source
# slowing down within a few chunks without jumping at every scheduling hiccup.
RATE_SMOOTHING = 0.3

# The endgame starts when at most this many chunks are still in flight and none is
# waiting. Every duplicate costs up to a chunk of wasted transfer (16 MiB by
# default), so the bound keeps the waste to a few chunks at the very end while
# still covering a stalled last chunk on each of a few slow sources.
ENDGAME_CHUNKS = 4

# Holders of one chunk at once in the endgame: the original and one copy. More
# copies only multiply the waste; a second copy already beats one slow source.
MAX_COPIES = 2

# A source whose next chunk takes longer than this (or is not measured yet) keeps at
# most SLOW_DEPTH chunks in flight when the engine bounds it (``slow_depth``): on a
# slow or shared link a deep pipeline only promises chunks that other sources (peers
# still downloading) could deliver sooner, while two keep the link busy whenever a
# chunk takes far longer than a round trip.
SLOW_CHUNK_SECONDS = 0.5


class Link(enum.Enum):
    """The data connection to a source, as far as the engine knows."""

    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    """Asked to close, or broken; no request goes out until it is closed."""

    @property
    def active(self) -> bool:
        """Opening or open: the source has, or is about to have, a connection to close."""
        return self in (Link.CONNECTING, Link.OPEN)


class Standing(enum.Enum):
    """Whether a source may still serve this download, and if not, why (the value is
    how a failure reason words it)."""

    USABLE = "usable"
    GONE = "gone"
    """The network dropped it: may come back (a pause, not a failure)."""
    UNREACHABLE = "unreachable"
    """Its data server could not be reached at all: as good as gone."""
    EXCLUDED = "sent bad data"
    """It sent bytes that do not match the manifest."""
    UNRELIABLE = "kept failing"
    """Its connections failed :data:`MAX_SOURCE_STRIKES` times in a row."""

    @property
    def may_return(self) -> bool:
        return self in (Standing.GONE, Standing.UNREACHABLE)


@dataclass(slots=True)
class Source:
    name: str
    paths: frozenset[str]
    has: frozenset[ChunkKey] | None = None
    link: Link = Link.IDLE
    standing: Standing = Standing.USABLE
    in_flight: dict[ChunkKey, ChunkTask] = field(default_factory=dict)
    rate: float | None = None
    """Measured bytes per second; ``None`` until its first chunk."""
    busy_since: float | None = None
    """When the current stretch of completions started (``None``: nothing in flight)."""
    strikes: int = 0
    last_trouble: str = ""
    assigned: int = 0
    """Chunks ever put in flight on this source (the tail's round robin counts them)."""
    connecting_since: float | None = None
    """When its data connection was asked for (``None``: never)."""
    steered: dict[ChunkKey, float] = field(default_factory=dict)
    steers_taken: dict[ChunkKey, int] = field(default_factory=dict)
    """How often this complete source steered each chunk away (one entry a chunk at most)."""
    """Chunks this complete source steered away, and until when it is not asked for them."""

    def holds(self, key: ChunkKey) -> bool:
        return key[0] in self.paths and (self.has is None or key in self.has)

    @property
    def usable(self) -> bool:
        return self.standing is Standing.USABLE

    @property
    def in_flight_bytes(self) -> int:
        return sum(task.length for task in self.in_flight.values())

    def expected_seconds(self, extra: int) -> float | None:
        """Seconds until ``extra`` more bytes would be in, at the measured rate."""
        if not self.rate:
            return None
        return (self.in_flight_bytes + extra) / self.rate

    def record_completion(self, length: int, now: float, started: float | None) -> None:
        """Fold a chunk completed at ``now`` into the rate; ``started``: when the stretch
        it ended began (taken before the chunk left :attr:`in_flight`)."""
        if started is not None and now > started:
            sample = length / (now - started)
            self.rate = (
                sample
                if self.rate is None
                else (1 - RATE_SMOOTHING) * self.rate + RATE_SMOOTHING * sample
            )
        self.busy_since = now if self.in_flight else None


class Swarm:
    """The needed chunks, who holds them, and who fetches which (see the module doc)."""

    def __init__(
        self,
        tasks: Iterable[ChunkTask],
        depth: int,
        *,
        salt: str = "",
        slow_depth: int | None = None,
    ) -> None:
        self.depth = depth
        self._salt = salt
        self._slow_depth = slow_depth
        self.tasks: dict[ChunkKey, ChunkTask] = {task.key: task for task in tasks}
        self.pending: set[ChunkKey] = set(self.tasks)
        self.done: set[ChunkKey] = set()
        self.holders: dict[ChunkKey, set[str]] = {}
        self.attempts: dict[ChunkKey, int] = {}
        self.failed_by: dict[ChunkKey, set[str]] = {}
        self.last_failure: dict[ChunkKey, str] = {}
        self.copies: dict[ChunkKey, set[str]] = {}
        """Endgame: the sources fetching a chunk into scratch space, not in place."""
        self.won: dict[ChunkKey, str] = {}
        """Endgame: chunks whose scratch copy verified first, waiting to be placed."""
        self.sources: dict[str, Source] = {}
        self.unit = max((task.length for task in self.tasks.values()), default=1)
        self._no_work: dict[str, int] = {}
        self._returns = 0
        self._order: list[ChunkKey] = []
        self._head = 0
        self._returned: list[ChunkKey] = []

    # -- facts ------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return not self.pending and not self.holders

    def usable_holders(self, key: ChunkKey) -> list[Source]:
        return [s for s in self.sources.values() if s.usable and s.holds(key)]

    def rarity(self, key: ChunkKey) -> int:
        return len(self.usable_holders(key))

    def open_sources(self) -> list[Source]:
        return [s for s in self.sources.values() if s.usable and s.link is Link.OPEN]

    def wants_connection(self, source: Source) -> bool:
        """Idle and usable, and holds a chunk still waiting for a source."""
        if not source.usable or source.link is not Link.IDLE:
            return False
        return self.has_work_for(source)

    def has_work_for(self, source: Source) -> bool:
        """Whether a waiting chunk is one ``source`` holds. Cached: waiting chunks only
        grow when one comes back or availability changes, so a source found without
        work stays without work until then."""
        if self._no_work.get(source.name) == self._returns:
            return False
        if source.has is not None:
            found = any(key in self.pending for key in source.has if key[0] in source.paths)
        else:
            found = any(key[0] in source.paths for key in self.pending)
        if not found:
            self._no_work[source.name] = self._returns
        return found

    def steered_away(self, now: float) -> bool:
        """A waiting chunk is held back from a usable source by a steer not over yet
        (the progress ticks bring the engine back when it is)."""
        return any(
            until > now and key in self.pending
            for source in self.sources.values()
            if source.usable
            for key, until in source.steered.items()
        )

    def idle_without_work(self, source: Source) -> bool:
        """Open, nothing in flight, and nothing waiting that it holds: close it."""
        return source.link is Link.OPEN and not source.in_flight and not self.has_work_for(source)

    # -- changes ----------------------------------------------------------------------

    def mark_done(self, keys: Iterable[ChunkKey]) -> None:
        for key in keys:
            if key in self.tasks:
                self.pending.discard(key)
                self.done.add(key)

    def add_source(self, name: str, paths: frozenset[str], has: frozenset[ChunkKey] | None) -> bool:
        """Add or update a source; True when a partial source turned complete (it finished
        its own download): its connection was opened with a partial ticket, which its
        server no longer honours, so the caller reopens it (a complete ticket next)."""
        existing = self.sources.get(name)
        turned = existing is not None and existing.has is not None and has is None
        if existing is None:
            self.sources[name] = Source(name, paths, has)
        else:
            existing.paths, existing.has = paths, has
        self.reorder()
        return turned

    def withdraw(self, source: Source, key: ChunkKey, now: float) -> bool:
        """``source`` sent us elsewhere for ``key``, uncounted: a partial source does not
        hold it (forget that it does; its next availability may bring it back), a complete
        one steered it away (not from it for :data:`STEER_BACKOFF`). The chunk waits for
        another holder. False (nothing changed) when a complete source has steered this
        chunk :data:`MAX_STEERS_TAKEN` times already: the caller counts a failure."""
        if source.has is not None:
            if key in source.has:
                source.has = source.has - {key}
        else:
            taken = source.steers_taken.get(key, 0)
            if taken >= MAX_STEERS_TAKEN:
                return False
            source.steers_taken[key] = taken + 1
            source.steered = {k: t for k, t in source.steered.items() if t > now}
            source.steered[key] = now + STEER_BACKOFF
        self.give_back(source, key)
        self.reorder()
        return True

    def set_standing(self, source: Source, standing: Standing) -> None:
        if source.usable and standing is not Standing.USABLE:
            source.standing = standing
            self.reorder()

    def reorder(self) -> None:
        """Sort the waiting chunks rarest first (after any change of availability)."""
        self._returns += 1
        rarity = self._rarities()
        self._order = sorted(self.pending, key=lambda key: (rarity.get(key, 0), self._tie(key)))
        self._head = 0
        self._returned = [key for key in self._returned if key in self.pending]

    def _tie(self, key: ChunkKey) -> tuple[str, int] | bytes:
        """Among equally rare chunks: file order, or with a salt an order of this download's
        own, so downloaders starting together do not all ask for the same chunks first."""
        if not self._salt:
            return key
        return hashlib.blake2b(f"{self._salt}\0{key[0]}\0{key[1]}".encode(), digest_size=8).digest()

    def depth_of(self, source: Source) -> int:
        """How many chunks ``source`` may have in flight now."""
        if self._slow_depth is None:
            return self.depth
        per_chunk = self.unit / source.rate if source.rate else None
        if per_chunk is None or per_chunk > SLOW_CHUNK_SECONDS:
            return min(self.depth, self._slow_depth)
        return self.depth

    def _rarities(self) -> Mapping[ChunkKey, int]:
        counts: dict[ChunkKey, int] = {}
        usable = [s for s in self.sources.values() if s.usable]
        by_path: dict[str, int] = {}
        for source in usable:
            if source.has is None:
                for path in source.paths:
                    by_path[path] = by_path.get(path, 0) + 1
            else:
                for key in source.has:
                    if key[0] in source.paths:
                        counts[key] = counts.get(key, 0) + 1
        for key in self.pending:
            counts[key] = counts.get(key, 0) + by_path.get(key[0], 0)
        return counts

    def give_back(self, source: Source, key: ChunkKey) -> ChunkTask | None:
        """Take ``key`` off ``source``; it waits again unless done or held elsewhere."""
        task = source.in_flight.pop(key, None)
        holders = self.holders.get(key)
        if holders is not None:
            holders.discard(source.name)
            if not holders:
                del self.holders[key]
        copies = self.copies.get(key)
        if copies is not None:
            copies.discard(source.name)
            if not copies:
                del self.copies[key]
        if (
            task is not None
            and key not in self.done
            and key not in self.holders
            and key not in self.won
        ):
            self.pending.add(key)
            self._returned.append(key)
            self._returns += 1
        if not source.in_flight:
            source.busy_since = None
        return task

    def give_back_all(self, source: Source) -> None:
        for key in list(source.in_flight):
            self.give_back(source, key)

    def record_failure(self, source: Source, key: ChunkKey, why: str) -> int:
        self.failed_by.setdefault(key, set()).add(source.name)
        self.last_failure[key] = why
        self.attempts[key] = self.attempts.get(key, 0) + 1
        return self.attempts[key]

    # -- choice ----------------------------------------------------------------------

    def assign(self, now: float, *, endgame: bool) -> list[tuple[str, ChunkTask, bool]]:
        """Fill free pipeline slots: ``(source, task, is_copy)`` newly put in flight."""
        out: list[tuple[str, ChunkTask, bool]] = []
        while self.pending or endgame:
            free = [s for s in self.open_sources() if len(s.in_flight) < self.depth_of(s)]
            if not free:
                break
            free.sort(key=lambda source: _eagerness(source, self.unit))
            picked = self._pick_any(free, now)
            if picked is None:
                break
            out.append(picked)
        return out

    def _pick_any(self, free: list[Source], now: float) -> tuple[str, ChunkTask, bool] | None:
        active = [s for s in self.sources.values() if s.usable and s.link.active]
        tail = len(self.pending) <= sum(self.depth_of(s) for s in active)
        for source in free:
            if tail and self._over_share(source, active, now):
                continue
            if self.pending:
                key = self._pick(source, tail, now)
                if key is not None:
                    return source.name, self._start(source, key, now), False
            else:
                key = self._pick_copy(source, now)
                if key is not None:
                    self.copies.setdefault(key, set()).add(source.name)
                    return source.name, self._start(source, key, now), True
        return None

    def _over_share(self, source: Source, active: list[Source], now: float) -> bool:
        """Until every connected source is measured, none gets more chunks than another
        with work (the first connection would otherwise take a small game's every chunk,
        one after the other, while the others are still opening). A connection still
        opening after :data:`TAIL_CONNECT_GRACE` no longer holds the others back."""
        if all(s.rate is not None or self._overdue(s, now) for s in active):
            return False
        others = [
            other.assigned
            for other in active
            if other is not source
            and (
                (other.in_flight and not self._overdue(other, now))
                or self._opening_with_work(other, now)
            )
        ]
        return bool(others) and source.assigned > min(others)

    def _overdue(self, source: Source, now: float) -> bool:
        """Not measured yet, its first chunk asked for :data:`UNMEASURED_GRACE` ago or more."""
        return (
            source.rate is None
            and source.busy_since is not None
            and now - source.busy_since >= UNMEASURED_GRACE
        )

    def _opening_with_work(self, source: Source, now: float) -> bool:
        """Still opening (for less than :data:`TAIL_CONNECT_GRACE`) and holding a waiting
        chunk. An open source with nothing in flight never holds another back: it asks
        in the same round if it can, and if it cannot (a back-off, a failed chunk) the
        others must not wait for it."""
        return (
            source.link is Link.CONNECTING
            and source.connecting_since is not None
            and now - source.connecting_since < TAIL_CONNECT_GRACE
            and self.has_work_for(source)
        )

    def _start(self, source: Source, key: ChunkKey, now: float) -> ChunkTask:
        self.pending.discard(key)
        task = self.tasks[key]
        if not source.in_flight:
            source.busy_since = now
        source.in_flight[key] = task
        source.assigned += 1
        self.holders.setdefault(key, set()).add(source.name)
        return task

    def _pick(self, source: Source, tail: bool, now: float) -> ChunkKey | None:
        for index, key in enumerate(self._returned):
            if key in self.pending and self._allowed(source, key, tail, now):
                del self._returned[index]
                return key
        index = self._head
        while index < len(self._order):
            key = self._order[index]
            if key not in self.pending:
                if index == self._head:
                    self._head += 1
            elif self._allowed(source, key, tail, now):
                if index == self._head:
                    self._head += 1
                return key
            index += 1
        return None

    def _allowed(self, source: Source, key: ChunkKey, tail: bool, now: float) -> bool:
        if not source.holds(key) or source.steered.get(key, now) > now:
            return False
        failed = self.failed_by.get(key)
        if failed and source.name in failed:
            fresh = [s for s in self.usable_holders(key) if s.name not in failed]
            if fresh:
                return False
        return not (tail and self._faster_elsewhere(source, key))

    def _faster_elsewhere(self, source: Source, key: ChunkKey) -> bool:
        length = self.tasks[key].length
        mine = source.expected_seconds(length)
        if mine is None:
            return False
        failed = self.failed_by.get(key, set())
        for other in self.open_sources():
            if other is source or not other.holds(key) or other.name in failed:
                continue
            theirs = other.expected_seconds(length)
            if theirs is not None and theirs < mine:
                return True
        return False

    def _pick_copy(self, source: Source, now: float) -> ChunkKey | None:
        """An endgame duplicate for an idle ``source``: the chunk in flight longest
        with the fewest holders, held by ``source`` and not already on it."""
        if source.in_flight or len(self.holders) > ENDGAME_CHUNKS:
            return None
        for key, holders in self.holders.items():
            if len(holders) >= MAX_COPIES or key in self.won or source.name in holders:
                continue
            if source.steered.get(key, now) > now or not source.holds(key):
                continue
            if source.name not in self.failed_by.get(key, set()):
                return key
        return None


def _eagerness(source: Source, unit: int) -> tuple[float, int, str]:
    expected = source.expected_seconds(unit)
    return (expected if expected is not None else -1.0, len(source.in_flight), source.name)
