"""The download engine: one download's rules as a state machine without I/O.

Theory of operation
-------------------
:class:`DownloadEngine` takes events (what the shell observed, at ``now``) and
returns actions (I/O for the shell to perform, each answered by an event; the
pairs are tabled in :mod:`.messages`). It reads no clock, opens no socket and
touches no file; the shell in ``runtime/transfer.py`` only performs what it is told.

::

    IDLE --Start--> AGREEING --ManifestsAnswered--> PREPARING --Prepared--> FETCHING
      (no source: paused;      (version, pins, conflicts:        (journal, sizes,
       only liars: failed)      RejectSource; none: failed)       resumed chunks)
    FETCHING --every payload chunk done--> SENTINEL --SentinelFetched--> COMMITTING
    COMMITTING --SentinelCommitted--> End(finished)

    any phase --Cancel--> End(cancelled), except PREPARING and COMMITTING, where the
    blocking disk step finishes first (a cancel during the commit is "late": the
    download finishes and nothing is installed on the player's behalf)

**Fetching.** The agreed manifest's chunks (version.ini aside) minus those
already verified on disk wait for a source. Every usable source holding a
waiting chunk is connected; each open connection keeps up to ``depth`` chunks in
flight, chosen rarest-first for the source expected to finish soonest (see
:mod:`.swarm` for the choice, the tail rule and the endgame). A verified chunk
is reported (:class:`ChunkDone`) and frees its slot for the next one.

**Failures.** A chunk that fails (refused, cut short, connection lost, or bytes
not matching the manifest) waits again, counted: at ``max_attempts`` failures
the download fails naming the chunk and its last failure. A source that failed
it is not asked for it again while another usable holder has not failed it. A
hash mismatch excludes the source from the game (:class:`ExcludeSource`: the
runtime remembers it as a liar) and closes its connection. A source whose
connections fail :data:`~.swarm.MAX_SOURCE_STRIKES` times in a row with no
verified chunk between is dropped; one whose data server cannot be reached at
all counts as gone.

**Partial sources.** A source still downloading is offered with the chunks it
holds (``SourceOffered.has``), again whenever they grow. Its
:attr:`~.messages.ChunkFault.NOT_AVAILABLE` takes the chunk off its map, uncounted:
not from it now, neither a strike nor an attempt. A hash mismatch excludes it like
any source. A complete source's :attr:`~.messages.ChunkFault.STEERED` (its seeder
steering: other peers hold the chunk) leaves that chunk off it for
``swarm.STEER_BACKOFF``, uncounted too, so the partial holders get it.

**Leaving.** A source that leaves (:class:`SourceLost`) takes only its in-flight
chunks with it: its connection is closed, and once it is
(:class:`ConnectionClosed`: no more bytes can land) those chunks wait again,
uncounted.

**Stopping.** When nothing is in flight or connecting and a waiting chunk has no
usable holder, the download ends: **paused** (:data:`ALL_PEERS_GONE`) when a
holder left or cannot be reached (it may come back), **failed** otherwise (every
holder sent bad data or kept failing), with the journal committed once more so
the progress survives.

**Durability.** The journal is committed (payload fsync, then the journal) when
:func:`.cadence.should_commit` says so, one commit at a time; version.ini is
fetched, into memory, only when every payload chunk is verified and no commit
runs, and its commit makes everything durable before it completes the download.

**Progress.** The engine owns the byte counters and the sampler; the shell's one
timer sends :class:`Tick` at :attr:`DownloadEngine.next_deadline`.
"""

from lanspread.core.engine.cadence import (
    COMMIT_EVERY_BYTES,
    COMMIT_EVERY_CHUNKS,
    COMMIT_INTERVAL_SECONDS,
    should_commit,
)
from lanspread.core.engine.machine import ALL_PEERS_GONE, DownloadEngine, Phase
from lanspread.core.engine.messages import (
    Action,
    AskManifests,
    Begin,
    Cancel,
    ChunkDone,
    ChunkFailed,
    ChunkFault,
    ChunkVerified,
    CloseConnection,
    CommitJournal,
    CommitSentinel,
    Connect,
    ConnectFailed,
    ConnectionClosed,
    ConnectionOpened,
    CopyPlaced,
    DiskFailed,
    End,
    Ending,
    Event,
    ExcludeSource,
    Fetch,
    FetchSentinel,
    JournalCommitted,
    ManifestsAnswered,
    ManifestUnavailable,
    PlaceCopy,
    Prepare,
    Prepared,
    RejectSource,
    ReportProgress,
    SentinelCommitted,
    SentinelFailed,
    SentinelFetched,
    SourceLost,
    SourceOffered,
    Start,
    Tick,
)
from lanspread.core.engine.swarm import (
    ENDGAME_CHUNKS,
    MAX_CHUNK_ATTEMPTS,
    MAX_COPIES,
    MAX_SOURCE_STRIKES,
    MAX_STEERS_TAKEN,
    RATE_SMOOTHING,
    STEER_BACKOFF,
    TAIL_CONNECT_GRACE,
    UNMEASURED_GRACE,
    Link,
    Standing,
)

__all__ = [
    "ALL_PEERS_GONE",
    "COMMIT_EVERY_BYTES",
    "COMMIT_EVERY_CHUNKS",
    "COMMIT_INTERVAL_SECONDS",
    "ENDGAME_CHUNKS",
    "MAX_CHUNK_ATTEMPTS",
    "MAX_COPIES",
    "MAX_SOURCE_STRIKES",
    "MAX_STEERS_TAKEN",
    "RATE_SMOOTHING",
    "STEER_BACKOFF",
    "TAIL_CONNECT_GRACE",
    "UNMEASURED_GRACE",
    "Action",
    "AskManifests",
    "Begin",
    "Cancel",
    "ChunkDone",
    "ChunkFailed",
    "ChunkFault",
    "ChunkVerified",
    "CloseConnection",
    "CommitJournal",
    "CommitSentinel",
    "Connect",
    "ConnectFailed",
    "ConnectionClosed",
    "ConnectionOpened",
    "CopyPlaced",
    "DiskFailed",
    "DownloadEngine",
    "End",
    "Ending",
    "Event",
    "ExcludeSource",
    "Fetch",
    "FetchSentinel",
    "JournalCommitted",
    "Link",
    "ManifestUnavailable",
    "ManifestsAnswered",
    "Phase",
    "PlaceCopy",
    "Prepare",
    "Prepared",
    "RejectSource",
    "ReportProgress",
    "SentinelCommitted",
    "SentinelFailed",
    "SentinelFetched",
    "SourceLost",
    "SourceOffered",
    "Standing",
    "Start",
    "Tick",
    "should_commit",
]
