"""What goes into the download engine (events) and what comes out (actions).

Every event is a fact the shell observed; every action is one piece of I/O the
shell performs and answers with an event. The pairs:

==========================  =================================================
action                      answered by
==========================  =================================================
:class:`AskManifests`       :class:`ManifestsAnswered`
:class:`Prepare`            :class:`Prepared` or :class:`DiskFailed`
:class:`Connect`            :class:`ConnectionOpened` (then, once it is shut,
                            :class:`ConnectionClosed`) or :class:`ConnectFailed`
:class:`Fetch`              one :class:`ChunkVerified` or :class:`ChunkFailed`
                            per task, unless the connection is closed first
:class:`CloseConnection`    :class:`ConnectionClosed` (after its last write)
:class:`CommitJournal`      :class:`JournalCommitted` or :class:`DiskFailed`
:class:`FetchSentinel`      :class:`SentinelFetched` or :class:`SentinelFailed`
:class:`PlaceCopy`          :class:`CopyPlaced` or :class:`DiskFailed`
:class:`CommitSentinel`     :class:`SentinelCommitted` or :class:`DiskFailed`
==========================  =================================================

:class:`ChunkDone`, :class:`RejectSource`, :class:`ExcludeSource`,
:class:`Begin` and :class:`ReportProgress` are reports, answered by nothing;
:class:`End` is the last action of every download.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from lanspread.core.conflict import ContentConflict
from lanspread.core.manifest import GameManifest
from lanspread.core.planning import ChunkKey, ChunkTask
from lanspread.core.progress import ProgressSnapshot

# --- events -------------------------------------------------------------------------


class ChunkFault(enum.Enum):
    """Why one requested chunk did not arrive verified (the data client's outcomes)."""

    HASH_MISMATCH = "hash-mismatch"
    """Every byte arrived and the digest differs: the source lied or its disk rots."""
    REFUSED = "refused"
    """The server refused the request; the connection is still usable."""
    NOT_AVAILABLE = "not-available"
    """A partial source does not hold the chunk (any more): not from it now. Neither a
    strike nor a counted attempt; the connection is still usable."""
    STEERED = "steered"
    """A complete source sent us to other holders for this chunk: not from it for a
    short back-off. Neither a strike nor a counted attempt; the connection is usable."""
    SHORT_READ = "short-read"
    """The connection ended inside the chunk; the connection is dead."""
    CONNECTION_LOST = "connection-lost"
    """The connection died before the chunk's bytes came; the connection is dead."""

    @property
    def kills_connection(self) -> bool:
        return self in (ChunkFault.SHORT_READ, ChunkFault.CONNECTION_LOST)

    @property
    def elsewhere(self) -> bool:
        """The source sent us elsewhere for the chunk, uncounted."""
        return self in (ChunkFault.NOT_AVAILABLE, ChunkFault.STEERED)

    @property
    def bytes_arrived(self) -> bool:
        """The chunk's bytes crossed the wire (speed counts retry waste too)."""
        return self is ChunkFault.HASH_MISMATCH


# --- what many messages share -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """An event or action about one source (a peer offering the game)."""

    source: str


@dataclass(frozen=True, slots=True)
class SourceChunk(SourceMessage):
    """An event about one chunk of one source, named by its key."""

    key: ChunkKey


@dataclass(frozen=True, slots=True)
class SourceTask(SourceMessage):
    """An action on one chunk of one source, with where it goes in the file."""

    task: ChunkTask


@dataclass(frozen=True, slots=True)
class SourceVerdict(SourceMessage):
    """A source not used for this download, and why (a report, answered by nothing)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Start:
    """The download command: the newest version and the peers offering it, in order."""

    latest: str | None
    offering: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ManifestUnavailable:
    """A source that did not describe the game (timeout, refusal, broken connection)."""

    detail: str
    not_ready: bool = False
    """It answered that it is still hashing the game for sharing."""


@dataclass(frozen=True, slots=True)
class ManifestsAnswered:
    """Every asked source's answer, and what the party catalog pins (if anything)."""

    answers: Mapping[str, GameManifest | ManifestUnavailable]
    pinned_digest: str | None = None
    """The manifest digest the party pins for the latest version; ``None``: no pin."""
    unpinned: tuple[tuple[str, str], ...] = ()
    """``(peer, version)`` offers the party catalog does not pin, to be reported."""
    chosen_digest: str | None = None
    """The content the player chose for the latest version in a conflict; ``None``: none."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """Storage is ready: the chunks already verified on disk, and who is still here."""

    done: frozenset[ChunkKey]
    live: frozenset[str]


@dataclass(frozen=True, slots=True)
class SourceOffered(SourceMessage):
    """A source with the agreed manifest joined, or tells what it now holds.

    ``paths`` are the files it holds exactly as agreed; ``has`` narrows them to the
    chunks it has verified itself (a source still downloading), ``None`` for all.
    """

    paths: frozenset[str]
    has: frozenset[ChunkKey] | None = None


@dataclass(frozen=True, slots=True)
class SourceLost(SourceMessage):
    """The network dropped the peer (goodbye, silence, or a closed control link)."""


@dataclass(frozen=True, slots=True)
class ConnectionOpened(SourceMessage):
    """The data connection asked for by :class:`Connect` is open."""


@dataclass(frozen=True, slots=True)
class ConnectFailed(SourceMessage):
    """No data connection: no ticket, not admitted, or the host did not answer."""

    detail: str
    unreachable: bool
    """The peer could not be reached at all (as good as gone for this download)."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed(SourceMessage):
    """The connection is shut and will write no more bytes; unanswered chunks are void."""


@dataclass(frozen=True, slots=True)
class ChunkVerified(SourceChunk):
    """The chunk arrived and matches the manifest (written in place, or as a copy)."""


@dataclass(frozen=True, slots=True)
class ChunkFailed(SourceChunk):
    """The chunk did not arrive verified; ``fault`` says why."""

    fault: ChunkFault
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CopyPlaced(SourceChunk):
    """A winning endgame copy is written in place (see :class:`PlaceCopy`)."""


@dataclass(frozen=True, slots=True)
class JournalCommitted:
    """The payload was fsynced, then the journal written, as of the matching action."""


@dataclass(frozen=True, slots=True)
class DiskFailed:
    """A local disk step failed (preparing, writing, syncing, committing)."""

    detail: str


@dataclass(frozen=True, slots=True)
class SentinelFetched(SourceMessage):
    """version.ini's bytes from ``source``, verified against the manifest."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SentinelFailed(SourceMessage):
    """``source`` did not deliver a verified version.ini."""

    fault: ChunkFault | None
    """``None``: no connection could be opened."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SentinelCommitted:
    """Every byte is durable and version.ini is in place: the download is complete."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (the shell's one timer, armed at :attr:`DownloadEngine.next_deadline`)."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """The player cancelled."""


Event: TypeAlias = (
    Start
    | ManifestsAnswered
    | Prepared
    | SourceOffered
    | SourceLost
    | ConnectionOpened
    | ConnectFailed
    | ConnectionClosed
    | ChunkVerified
    | ChunkFailed
    | CopyPlaced
    | JournalCommitted
    | DiskFailed
    | SentinelFetched
    | SentinelFailed
    | SentinelCommitted
    | Tick
    | Cancel
)

# --- actions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AskManifests:
    """Ask every one of ``sources`` for its manifest of the game."""

    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RejectSource(SourceVerdict):
    """Report a source not used for this download, and why."""


@dataclass(frozen=True, slots=True)
class ExcludeSource(SourceVerdict):
    """The source sent corrupt bytes: remember it as a liar for the game, and report it."""


@dataclass(frozen=True, slots=True)
class Prepare:
    """Claim the names, resume or start the journal, size the files (blocking disk work)."""

    manifest: GameManifest


@dataclass(frozen=True, slots=True)
class Begin:
    """Fetching starts: what the download is, and what a resume already holds."""

    version: str | None
    total_bytes: int
    sources: tuple[str, ...]
    resumed_bytes: int


@dataclass(frozen=True, slots=True)
class Connect(SourceMessage):
    """Open a data connection to ``source`` (ticket over TLS, then plain TCP)."""


@dataclass(frozen=True, slots=True)
class Fetch(SourceMessage):
    """Request ``tasks`` on ``source``'s open connection, after those already asked.

    The engine never has more than ``depth`` chunks in flight on one connection.
    """

    tasks: tuple[ChunkTask, ...]
    scratch: bool = False
    """Endgame copies: write them aside, never in place (another source is writing
    there); :class:`PlaceCopy` moves a winning copy in once that source is closed."""


@dataclass(frozen=True, slots=True)
class PlaceCopy(SourceTask):
    """Write ``source``'s verified scratch copy of ``task`` at its place in the file."""


@dataclass(frozen=True, slots=True)
class CloseConnection(SourceMessage):
    """Stop ``source``'s connection (or its opening) and its outstanding requests."""


@dataclass(frozen=True, slots=True)
class ChunkDone(SourceTask):
    """A chunk is verified on disk for the first time: mark it in the journal, report it."""


@dataclass(frozen=True, slots=True)
class CommitJournal:
    """Fsync the payload written so far, then write the journal of what is marked."""


@dataclass(frozen=True, slots=True)
class FetchSentinel(SourceMessage):
    """Fetch version.ini's chunks from ``source`` into memory, verified."""

    tasks: tuple[ChunkTask, ...]
    size: int


@dataclass(frozen=True, slots=True)
class CommitSentinel:
    """Make every payload byte durable, commit version.ini, then remove the journal."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ReportProgress:
    """Report how far the download is (sampled at the progress interval)."""

    snapshot: ProgressSnapshot


class Ending(enum.Enum):
    FINISHED = "finished"
    CANCELLED = "cancelled"
    PAUSED = "paused"
    FAILED = "failed"

    @property
    def keeps_progress(self) -> bool:
        """The journal may stay for a later resume (a pause, or a failure to retry)."""
        return self in (Ending.PAUSED, Ending.FAILED)


@dataclass(frozen=True, slots=True)
class End:
    """The download is over: the shell stops every connection and settles the root."""

    ending: Ending
    reason: str = ""
    """The pause reason code, or what the player reads for a failure."""
    late_cancel: bool = False
    """Finished, but a cancel arrived during the commit: do no more (no install)."""
    commit_journal: bool = False
    """Commit the journal once more after the last connection closed (keeps progress)."""
    conflict: ContentConflict | None = None
    """Failed because the sources of an unpinned version offer different content."""


Action: TypeAlias = (
    AskManifests
    | RejectSource
    | ExcludeSource
    | Prepare
    | Begin
    | Connect
    | Fetch
    | PlaceCopy
    | CloseConnection
    | ChunkDone
    | CommitJournal
    | FetchSentinel
    | CommitSentinel
    | ReportProgress
    | End
)
