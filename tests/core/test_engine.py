"""The download engine's rules, without sockets and with an injected clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanspread.core.conflict import ContentConflict, ContentSide
from lanspread.core.engine import (
    ALL_PEERS_GONE,
    COMMIT_EVERY_CHUNKS,
    ENDGAME_CHUNKS,
    MAX_CHUNK_ATTEMPTS,
    MAX_SOURCE_STRIKES,
    UNMEASURED_GRACE,
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
    DownloadEngine,
    End,
    Ending,
    Event,
    ExcludeSource,
    Fetch,
    FetchSentinel,
    JournalCommitted,
    Link,
    ManifestsAnswered,
    ManifestUnavailable,
    Phase,
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
    Standing,
    Start,
    Tick,
)
from lanspread.core.gameroot import VERSION_FILE
from lanspread.core.manifest import (
    MIN_CHUNK_SIZE,
    ChunkDigest,
    FileManifest,
    GameManifest,
    chunk_spans,
    manifest_digest,
)
from lanspread.core.planning import ChunkKey

C = MIN_CHUNK_SIZE
A = TypeVar("A", bound=Action)


def entry(path: str, size: int, salt: str = "") -> FileManifest:
    chunks = tuple(
        ChunkDigest(offset, length, blake3.blake3(f"{salt}{path}:{offset}".encode()).digest())
        for offset, length in chunk_spans(size, C)
    )
    return FileManifest(path=path, size=size, chunks=chunks)


def make_manifest(*files: FileManifest, version: str = "1.0") -> GameManifest:
    listed = [*files, entry(VERSION_FILE, 4)]
    return GameManifest(
        game_id="quake3",
        version=version,
        chunk_size=C,
        files=tuple(sorted(listed, key=lambda file: file.path)),
    )


def chunks(count: int, path: str = "a.eti") -> GameManifest:
    """A game of one file of ``count`` whole chunks."""
    return make_manifest(entry(path, count * C))


def of(kind: type[A], actions: Iterable[Action]) -> list[A]:
    return [action for action in actions if isinstance(action, kind)]


def fetched(actions: Iterable[Action]) -> dict[str, list[ChunkKey]]:
    out: dict[str, list[ChunkKey]] = {}
    for fetch in of(Fetch, actions):
        out.setdefault(fetch.source, []).extend(task.key for task in fetch.tasks)
    return out


class Drive:
    """An engine and its clock: feed events, keep every action."""

    def __init__(
        self,
        depth: int = 2,
        *,
        endgame: bool = False,
        excluded: Sequence[str] = (),
        slow_depth: int | None = None,
    ):
        self.engine = DownloadEngine(
            "quake3", excluded=excluded, depth=depth, endgame=endgame, slow_depth=slow_depth
        )
        self.now = 100.0
        self.log: list[Action] = []

    def __call__(self, event: Event, *, at: float | None = None) -> list[Action]:
        if at is not None:
            self.now = at
        actions = self.engine.handle(event, self.now)
        self.log += actions
        return actions

    def to_fetching(
        self,
        manifest: GameManifest,
        sources: Sequence[str] = ("bravo",),
        *,
        done: frozenset[ChunkKey] = frozenset(),
        live: Sequence[str] | None = None,
        open_all: bool = True,
    ) -> list[Action]:
        self(Start("1.0", tuple(sources)))
        self(ManifestsAnswered(dict.fromkeys(sources, manifest)))
        actions = self(Prepared(done, frozenset(sources if live is None else live)))
        if open_all:
            for connect in of(Connect, actions):
                actions += self(ConnectionOpened(connect.source))
        return actions

    def end(self) -> End:
        ends = of(End, self.log)
        assert len(ends) == 1, self.log
        return ends[0]


# --- the source check ----------------------------------------------------------------------


def test_start_asks_every_offering_peer_but_the_liars_in_order() -> None:
    """The manifests are asked of every offering peer not remembered as a liar, in order."""
    drive = Drive(excluded=["charlie"])
    assert drive(Start("1.0", ("delta", "charlie", "bravo"))) == [AskManifests(("delta", "bravo"))]
    assert drive.engine.phase is Phase.AGREEING


def test_start_with_only_liars_fails_and_with_nobody_pauses() -> None:
    """Only liars offering: failed with the liars message; nobody offering: paused."""
    drive = Drive(excluded=["charlie"])
    assert drive(Start("1.0", ("charlie",))) == [
        End(
            Ending.FAILED,
            "every peer offering quake3 sent corrupt data earlier; "
            "not downloading from them again until lanspread restarts",
        )
    ]
    assert Drive()(Start("1.0", ())) == [End(Ending.PAUSED, ALL_PEERS_GONE)]


def test_manifests_of_another_version_are_rejected_and_the_rest_prepared() -> None:
    """A source answering another version is reported; the agreed manifest is prepared."""
    drive = Drive()
    good, old = chunks(2), chunks(2)
    old = make_manifest(entry("a.eti", 2 * C), version="0.9")
    drive(Start("1.0", ("bravo", "charlie", "delta")))
    actions = drive(
        ManifestsAnswered(
            {"bravo": good, "charlie": old, "delta": ManifestUnavailable("timed out")}
        )
    )
    assert actions == [RejectSource("charlie", "offered version 0.9, not 1.0"), Prepare(good)]
    assert drive.engine.sources == ("bravo",)


def test_no_manifest_fails_and_says_when_the_peers_are_still_hashing() -> None:
    """No usable manifest fails the download; when every peer is still preparing, it says so."""
    drive = Drive()
    drive(Start("1.0", ("bravo",)))
    drive(ManifestsAnswered({"bravo": ManifestUnavailable("reset")}))
    assert drive.end() == End(Ending.FAILED, "no peer could describe quake3 right now")
    drive = Drive()
    drive(Start("1.0", ("bravo", "charlie")))
    drive(
        ManifestsAnswered(
            {
                "bravo": ManifestUnavailable("not ready", not_ready=True),
                "charlie": ManifestUnavailable("not ready", not_ready=True),
            }
        )
    )
    assert drive.end() == End(
        Ending.FAILED, "the peers are still preparing quake3 for sharing; try again shortly"
    )


def charlie_alone(
    manifest: GameManifest, *, pinned_digest: str | None = None, chosen_digest: str | None = None
) -> End:
    """How a download with charlie as its one source of ``manifest`` ends."""
    drive = Drive()
    drive(Start("1.0", ("charlie",)))
    drive(
        ManifestsAnswered(
            {"charlie": manifest}, pinned_digest=pinned_digest, chosen_digest=chosen_digest
        )
    )
    return drive.end()


def test_pins_keep_only_the_pinned_manifest_and_report_unpinned_offers() -> None:
    """With a pin, sources of another manifest are rejected; none left fails with the pin
    message; unpinned offers are reported."""
    pinned, other = chunks(2), make_manifest(entry("a.eti", 2 * C, salt="x"))
    drive = Drive()
    drive(Start("1.0", ("bravo", "charlie")))
    actions = drive(
        ManifestsAnswered(
            {"bravo": pinned, "charlie": other},
            pinned_digest=manifest_digest(pinned),
            unpinned=(("delta", "2.0"),),
        )
    )
    assert of(RejectSource, actions)[0] == RejectSource(
        "delta", "offers 2.0, which the party catalog does not pin"
    )
    assert [r.source for r in of(RejectSource, actions)] == ["delta", "charlie"]
    assert of(Prepare, actions) == [Prepare(pinned)]
    assert charlie_alone(other, pinned_digest=manifest_digest(pinned)) == End(
        Ending.FAILED,
        "none of the 1 peers offering quake3 1.0 has the content the party catalog pins; "
        "not downloading",
    )


# --- source choice --------------------------------------------------------------------------


def test_prepared_begins_and_connects_every_live_source_with_work() -> None:
    """Begin carries the resumed bytes; live sources are dialled, departed ones are not."""
    drive = Drive()
    actions = drive.to_fetching(
        chunks(4),
        ("bravo", "charlie", "delta"),
        done=frozenset({("a.eti", 0)}),
        live=("bravo", "charlie"),
        open_all=False,
    )
    assert actions[0] == Begin("1.0", 4 * C + 4, ("bravo", "charlie", "delta"), C)
    assert isinstance(actions[1], ReportProgress)
    assert of(Connect, actions) == [Connect("bravo"), Connect("charlie")]


def test_each_connection_gets_depth_chunks_and_no_chunk_twice() -> None:
    """Two sources share the chunks, each up to the pipeline depth, none twice, resumed
    chunks skipped, version.ini never among them."""
    drive = Drive(depth=2)
    actions = drive.to_fetching(chunks(6), ("bravo", "charlie"), done=frozenset({("a.eti", 0)}))
    assert fetched(actions) == {
        "bravo": [("a.eti", C), ("a.eti", 3 * C)],
        "charlie": [("a.eti", 2 * C), ("a.eti", 4 * C)],
    }


def test_a_verified_chunk_is_reported_and_refills_the_pipeline() -> None:
    """ChunkDone for the verified chunk, then exactly one more chunk for that source."""
    drive = Drive(depth=2)
    drive.to_fetching(chunks(4))
    actions = drive(ChunkVerified("bravo", ("a.eti", 0)), at=101.0)
    assert [a.task.key for a in of(ChunkDone, actions)] == [("a.eti", 0)]
    assert fetched(actions) == {"bravo": [("a.eti", 2 * C)]}


def test_rarest_chunks_are_fetched_first() -> None:
    """With partial availability maps, a source asks first for the chunks fewest sources
    hold, whatever their order in the file."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(4), ("bravo",), open_all=False)
    everything = frozenset({("a.eti", i * C) for i in range(4)})
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=everything - {("a.eti", 3 * C)}))
    drive(SourceOffered("delta", frozenset({"a.eti"}), has=frozenset({("a.eti", 0), ("a.eti", C)})))
    actions = drive(ConnectionOpened("bravo"))
    # a.eti@3C is held by bravo only, @2C by bravo and charlie, @0 and @C by three.
    assert fetched(actions) == {"bravo": [("a.eti", 3 * C)]}
    actions = drive(ConnectionOpened("charlie"))
    assert fetched(actions) == {"charlie": [("a.eti", 2 * C)]}
    actions = drive(ConnectionOpened("delta"))
    assert fetched(actions) == {"delta": [("a.eti", 0)]}


def test_a_source_gets_only_chunks_it_holds() -> None:
    """A partial source is never asked for a chunk outside its availability map."""
    drive = Drive(depth=4)
    drive.to_fetching(chunks(4), ("bravo",), open_all=False)
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset({("a.eti", 2 * C)})))
    actions = drive(ConnectionOpened("charlie"))
    assert fetched(actions) == {"charlie": [("a.eti", 2 * C)]}


def test_load_aware_the_faster_source_asks_first_and_gets_the_last_chunks() -> None:
    """Measured rates decide: in the tail a chunk waits for the fast busy source rather
    than going to a slow idle one."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(6), ("bravo", "charlie"))
    # bravo: a chunk per second; charlie: a chunk per 10 seconds.
    drive(ChunkVerified("bravo", ("a.eti", 0)), at=101.0)  # bravo now holds @2C
    drive(ChunkVerified("bravo", ("a.eti", 2 * C)), at=102.0)  # bravo now holds @3C
    drive(ChunkVerified("charlie", ("a.eti", C)), at=110.0)  # charlie would take @4C
    assert drive.engine.swarm.sources["charlie"].in_flight == {}
    actions = drive(ChunkVerified("bravo", ("a.eti", 3 * C)), at=110.5)
    assert fetched(actions) == {"bravo": [("a.eti", 4 * C)]}
    actions = drive(ChunkVerified("bravo", ("a.eti", 4 * C)), at=111.5)
    assert fetched(actions) == {"bravo": [("a.eti", 5 * C)]}


def test_rates_are_measured_from_completions() -> None:
    """A source's rate is its chunk per completion interval, smoothed."""
    drive = Drive(depth=2)
    drive.to_fetching(chunks(8))
    drive(ChunkVerified("bravo", ("a.eti", 0)), at=102.0)
    assert drive.engine.swarm.sources["bravo"].rate == C / 2.0
    drive(ChunkVerified("bravo", ("a.eti", C)), at=103.0)
    assert drive.engine.swarm.sources["bravo"].rate == pytest.approx(0.7 * C / 2 + 0.3 * C)


# --- retries and give-up bounds ----------------------------------------------------------------


def test_a_failed_chunk_goes_to_another_source_and_costs_an_attempt() -> None:
    """A refused chunk waits again, is given first to a source that has not failed it."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(4), ("bravo", "charlie"))
    drive(ChunkFailed("bravo", ("a.eti", 0), ChunkFault.REFUSED, "refused: BUSY"))
    assert drive.engine.swarm.attempts[("a.eti", 0)] == 1
    assert fetched(drive.log[-1:]) == {"bravo": [("a.eti", 2 * C)]}
    actions = drive(ChunkVerified("charlie", ("a.eti", C)))
    assert fetched(actions) == {"charlie": [("a.eti", 0)]}


def test_the_only_source_retries_until_the_attempt_limit_then_the_download_fails() -> None:
    """One source: the chunk is retried on it; the last allowed failure fails the download
    with the chunk, the count and the last reason."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1))
    for _ in range(MAX_CHUNK_ATTEMPTS - 1):
        actions = drive(ChunkFailed("bravo", ("a.eti", 0), ChunkFault.REFUSED, "refused: BUSY"))
        assert fetched(actions) == {"bravo": [("a.eti", 0)]}
    drive(ChunkFailed("bravo", ("a.eti", 0), ChunkFault.REFUSED, "refused: BUSY"))
    assert drive.end() == End(
        Ending.FAILED,
        f"a.eti at offset 0 could not be fetched: failed {MAX_CHUNK_ATTEMPTS} times "
        f"(limit {MAX_CHUNK_ATTEMPTS}); last: bravo refused: refused: BUSY",
        commit_journal=True,
    )


def test_a_lost_connection_fails_its_chunks_and_the_source_is_redialled() -> None:
    """A connection lost inside a chunk: its chunks wait again (counted), no request goes
    out until it is closed, then the source is dialled again."""
    drive = Drive(depth=2)
    drive.to_fetching(chunks(4))
    actions = drive(ChunkFailed("bravo", ("a.eti", 0), ChunkFault.SHORT_READ, "cut"))
    actions += drive(ChunkFailed("bravo", ("a.eti", C), ChunkFault.CONNECTION_LOST, "cut"))
    assert of(Fetch, actions) == []
    assert drive(ConnectionClosed("bravo")) == [Connect("bravo")]
    assert fetched(drive(ConnectionOpened("bravo"))) == {"bravo": [("a.eti", 0), ("a.eti", C)]}


def test_a_source_that_keeps_failing_connections_is_dropped() -> None:
    """Refused admissions in a row make a source unreliable; with no other source the
    download fails naming it."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1), open_all=False)
    for _ in range(MAX_SOURCE_STRIKES):
        drive(ConnectFailed("bravo", "admission refused", unreachable=False))
    assert drive.end() == End(
        Ending.FAILED,
        "a.eti at offset 0 could not be fetched: no source left (bravo kept failing)",
        commit_journal=True,
    )
    assert of(Connect, drive.log) == [Connect("bravo")] * MAX_SOURCE_STRIKES


def test_an_unreachable_source_counts_as_gone() -> None:
    """A data server that cannot be reached at all: the download pauses."""
    drive = Drive()
    drive.to_fetching(chunks(2), open_all=False)
    drive(ConnectFailed("bravo", "connection refused", unreachable=True))
    assert drive.end() == End(Ending.PAUSED, ALL_PEERS_GONE, commit_journal=True)


# --- liars ----------------------------------------------------------------------------------


def test_a_source_sending_a_bad_chunk_is_excluded_and_the_chunk_refetched() -> None:
    """A hash mismatch excludes the source (reported once), closes its connection, and
    the chunk goes to an honest source."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(3), ("bravo", "charlie"))
    actions = drive(ChunkFailed("charlie", ("a.eti", C), ChunkFault.HASH_MISMATCH, "differs"))
    assert of(ExcludeSource, actions) == [ExcludeSource("charlie", "sent corrupt bytes for a.eti")]
    assert of(CloseConnection, actions) == [CloseConnection("charlie")]
    drive(ConnectionClosed("charlie"))
    actions = drive(ChunkVerified("bravo", ("a.eti", 0)))
    assert fetched(actions) == {"bravo": [("a.eti", C)]}


def test_when_the_only_source_lied_the_download_fails() -> None:
    """No honest source left: failed (not paused), naming the liar."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(2))
    drive(ChunkFailed("bravo", ("a.eti", 0), ChunkFault.HASH_MISMATCH, "differs"))
    drive(ConnectionClosed("bravo"))
    assert drive.end() == End(
        Ending.FAILED,
        "a.eti at offset 0 could not be fetched: no source left (bravo sent bad data); "
        "last: bravo hash-mismatch: differs",
        commit_journal=True,
    )


# --- leaving -------------------------------------------------------------------------------


def test_a_leaving_source_takes_only_its_in_flight_chunks_once_closed() -> None:
    """A source that leaves mid-chunk is closed; its in-flight chunks wait again only once
    the connection is closed, uncounted, and go to the source still here; the other
    source's chunks are untouched."""
    drive = Drive(depth=2)
    drive.to_fetching(chunks(8), ("bravo", "charlie"))
    charlie_had = set(drive.engine.swarm.sources["charlie"].in_flight)
    bravo_had = set(drive.engine.swarm.sources["bravo"].in_flight)
    actions = drive(SourceLost("charlie"))
    assert actions == [CloseConnection("charlie")]
    assert not charlie_had & drive.engine.swarm.pending
    drive(ConnectionClosed("charlie"))
    assert charlie_had <= drive.engine.swarm.pending
    assert set(drive.engine.swarm.sources["bravo"].in_flight) == bravo_had
    assert drive.engine.swarm.attempts == {}
    actions = drive(ChunkVerified("bravo", min(bravo_had)))
    assert fetched(actions) == {"bravo": [min(charlie_had)]}


def test_every_source_gone_pauses_the_download() -> None:
    """The last source leaving pauses with its reason and the journal kept."""
    drive = Drive()
    drive.to_fetching(chunks(4), ("bravo",))
    drive(SourceLost("bravo"))
    drive(ConnectionClosed("bravo"))
    assert drive.end() == End(Ending.PAUSED, ALL_PEERS_GONE, commit_journal=True)


def test_a_source_lost_during_the_source_check_is_not_dialled() -> None:
    """A peer lost before storage is ready counts as gone from the start."""
    drive = Drive()
    drive(Start("1.0", ("bravo", "charlie")))
    drive(SourceLost("charlie"))
    manifest = chunks(2)
    drive(ManifestsAnswered({"bravo": manifest, "charlie": manifest}))
    actions = drive(Prepared(frozenset(), frozenset({"bravo", "charlie"})))
    assert of(Connect, actions) == [Connect("bravo")]


def test_a_returning_source_is_used_again() -> None:
    """A source that left and is offered again is dialled again."""
    drive = Drive()
    drive.to_fetching(chunks(4), ("bravo", "charlie"))
    drive(SourceLost("charlie"))
    drive(ConnectionClosed("charlie"))
    actions = drive(SourceOffered("charlie", frozenset({"a.eti"})))
    assert of(Connect, actions) == [Connect("charlie")]


# --- endgame --------------------------------------------------------------------------------


def test_endgame_copies_the_last_chunks_to_idle_sources_into_scratch() -> None:
    """With nothing waiting and few chunks in flight, an idle source asks for a copy of
    one, into scratch space; never a third holder."""
    drive = Drive(depth=1, endgame=True)
    drive.to_fetching(chunks(2), ("bravo", "charlie", "delta"))
    copies = [f for f in of(Fetch, drive.log) if f.scratch]
    assert [(f.source, [t.key for t in f.tasks]) for f in copies] == [("delta", [("a.eti", 0)])]
    assert all(len(h) <= 2 for h in drive.engine.swarm.holders.values())


def test_endgame_the_original_wins_and_the_copy_is_dropped() -> None:
    """The in-place holder verifies first: done, and the copy holder is closed; its late
    answer changes nothing."""
    drive = Drive(depth=1, endgame=True)
    drive.to_fetching(chunks(1), ("bravo", "charlie"))
    assert [(f.source, f.scratch) for f in of(Fetch, drive.log)] == [
        ("bravo", False),
        ("charlie", True),
    ]
    actions = drive(ChunkVerified("bravo", ("a.eti", 0)))
    assert [a.task.key for a in of(ChunkDone, actions)] == [("a.eti", 0)]
    assert CloseConnection("charlie") in actions
    assert drive(ChunkVerified("charlie", ("a.eti", 0))) == []


def test_endgame_a_winning_copy_is_placed_after_the_original_is_closed() -> None:
    """The copy verifies first: the in-place holder is closed, then the copy is placed, and
    only then is the chunk done."""
    drive = Drive(depth=1, endgame=True)
    drive.to_fetching(chunks(2), ("bravo", "charlie", "delta"))
    actions = drive(ChunkVerified("delta", ("a.eti", 0)))
    assert CloseConnection("bravo") in actions
    assert of(PlaceCopy, actions) == []
    assert of(ChunkDone, actions) == []
    actions = drive(ConnectionClosed("bravo"))
    assert [(p.source, p.task.key) for p in of(PlaceCopy, actions)] == [("delta", ("a.eti", 0))]
    assert ("a.eti", 0) not in drive.engine.swarm.pending
    actions = drive(CopyPlaced("delta", ("a.eti", 0)))
    assert [a.task.key for a in of(ChunkDone, actions)] == [("a.eti", 0)]


def test_endgame_waits_until_few_chunks_are_in_flight() -> None:
    """No copy while more than ENDGAME_CHUNKS chunks are in flight."""
    drive = Drive(depth=ENDGAME_CHUNKS + 1, endgame=True)
    drive.to_fetching(chunks(ENDGAME_CHUNKS + 1), ("bravo", "charlie"))
    assert [f for f in of(Fetch, drive.log) if f.scratch] == []


# --- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["agreeing", "fetching", "sentinel"])
def test_cancel_ends_at_once_in_the_network_phases(phase: str) -> None:
    """While waiting on peers a cancel ends the download at once, without a commit."""
    drive = Drive(depth=1)
    if phase == "agreeing":
        drive(Start("1.0", ("bravo",)))
    else:
        drive.to_fetching(chunks(1))
        if phase == "sentinel":
            drive(ChunkVerified("bravo", ("a.eti", 0)))
            assert drive.engine.phase is Phase.SENTINEL
    assert drive(Cancel()) == [End(Ending.CANCELLED)]


def test_cancel_while_preparing_waits_for_the_disk_step() -> None:
    """Storage being prepared: the cancel takes effect when the blocking step returns."""
    drive = Drive()
    drive(Start("1.0", ("bravo",)))
    drive(ManifestsAnswered({"bravo": chunks(1)}))
    assert drive(Cancel()) == []
    assert drive(Prepared(frozenset(), frozenset({"bravo"}))) == [End(Ending.CANCELLED)]


def test_cancel_during_the_sentinel_commit_is_late() -> None:
    """The commit cannot be undone: the download finishes, marked as cancelled late."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1))
    drive(ChunkVerified("bravo", ("a.eti", 0)))
    drive(SentinelFetched("bravo", b"1.0\n"))
    assert drive(Cancel()) == []
    actions = drive(SentinelCommitted())
    assert isinstance(actions[0], ReportProgress)
    assert actions[-1] == End(Ending.FINISHED, late_cancel=True)


def test_events_after_the_end_are_ignored() -> None:
    """Nothing comes out of an ended engine."""
    drive = Drive()
    drive.to_fetching(chunks(2))
    drive(Cancel())
    assert drive(ChunkVerified("bravo", ("a.eti", 0))) == []
    assert drive.engine.next_deadline is None


# --- durability, sentinel and progress -----------------------------------------------------------


def test_the_journal_is_committed_a_second_after_the_first_chunk_one_at_a_time() -> None:
    """A commit is due COMMIT_INTERVAL after the last one when chunks completed; never two
    at once; the deadline tells the shell when to tick."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(6))
    assert drive(ChunkVerified("bravo", ("a.eti", 0)), at=100.5) != []
    assert of(CommitJournal, drive.log) == []
    assert drive.engine.next_deadline == 100.5
    drive(Tick(), at=100.5)
    assert drive.engine.next_deadline == 101.0
    assert of(CommitJournal, drive(Tick(), at=101.0)) == [CommitJournal()]
    drive(ChunkVerified("bravo", ("a.eti", C)), at=102.5)
    assert of(CommitJournal, drive.log) == [CommitJournal()]
    assert of(CommitJournal, drive(JournalCommitted(), at=102.6)) == [CommitJournal()]


def test_waiting_for_the_sentinel_sets_only_the_progress_deadline() -> None:
    """Once every payload chunk is in, the journal commit timer is off (the sentinel
    commit journals everything itself): the deadline is the next progress sample and
    moves past each tick, so a shell's timer never fires over and over."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1))
    drive(ChunkVerified("bravo", ("a.eti", 0)), at=100.2)
    assert drive.engine.phase is Phase.SENTINEL
    deadline = drive.engine.next_deadline
    assert deadline is not None
    drive(Tick(), at=deadline)
    assert drive.engine.next_deadline == deadline + 0.5
    drive(Tick(), at=deadline + 0.5)
    assert drive.engine.next_deadline == deadline + 1.0


def test_the_journal_is_committed_every_batch_of_chunks() -> None:
    """COMMIT_EVERY_CHUNKS chunks force a commit before a second has passed."""
    drive = Drive(depth=4)
    drive.to_fetching(chunks(COMMIT_EVERY_CHUNKS + 4))
    for index in range(COMMIT_EVERY_CHUNKS):
        drive(ChunkVerified("bravo", ("a.eti", index * C)), at=100.0)
    assert of(CommitJournal, drive.log) == [CommitJournal()]


def test_the_sentinel_waits_for_a_running_commit_then_comes_from_the_first_trusted_source() -> None:
    """Every payload chunk in: connections close, version.ini is fetched once no commit
    runs, from the first source in name order; its bytes are committed."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(2), ("charlie", "bravo"))
    assert of(CommitJournal, drive(ChunkVerified("bravo", ("a.eti", 0)), at=101.0)) == [
        CommitJournal()
    ]
    actions = drive(ChunkVerified("charlie", ("a.eti", C)), at=101.5)
    assert of(FetchSentinel, actions) == []
    assert of(CommitJournal, actions) == []
    actions = drive(JournalCommitted())
    assert [(f.source, f.size) for f in of(FetchSentinel, actions)] == [("bravo", 4)]
    assert drive(SentinelFetched("bravo", b"1.0\n")) == [CommitSentinel(b"1.0\n")]


def test_a_bad_sentinel_excludes_its_source_and_the_next_is_asked() -> None:
    """A corrupt version.ini excludes the source; the next one is tried; when none
    delivers, the download fails with the reason."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1), ("bravo", "charlie"))
    drive(ChunkVerified("bravo", ("a.eti", 0)))
    drive(ConnectionClosed("bravo"))
    actions = drive(SentinelFailed("bravo", ChunkFault.HASH_MISMATCH, "differs"))
    assert of(ExcludeSource, actions) == [
        ExcludeSource("bravo", "sent corrupt bytes for version.ini")
    ]
    assert [f.source for f in of(FetchSentinel, actions)] == ["charlie"]
    drive(SentinelFailed("charlie", None, "refused"))
    assert drive.end() == End(
        Ending.FAILED, "no source delivered a valid version.ini", commit_journal=True
    )


def test_the_sentinel_with_every_source_gone_pauses() -> None:
    """No sentinel source left on the network: paused, not failed."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1), ("bravo",))
    drive(ChunkVerified("bravo", ("a.eti", 0)))
    drive(SourceLost("bravo"))
    drive(SentinelFailed("bravo", ChunkFault.CONNECTION_LOST, "gone"))
    assert drive.end() == End(Ending.PAUSED, ALL_PEERS_GONE, commit_journal=True)


def test_progress_counts_retries_as_speed_and_chunks_once() -> None:
    """Bytes of a mismatched chunk count as transferred, not as downloaded; the final
    snapshot is complete."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(2), ("bravo", "charlie"))
    drive(ChunkFailed("bravo", ("a.eti", 0), ChunkFault.HASH_MISMATCH, "differs"))
    drive(ConnectionClosed("bravo"))
    drive(ChunkVerified("charlie", ("a.eti", C)))
    drive(ChunkVerified("charlie", ("a.eti", 0)))
    assert drive.engine.tracker.transferred_bytes == 3 * C
    assert drive.engine.tracker.downloaded_bytes == 2 * C
    drive(SentinelFetched("charlie", b"1.0\n"))
    actions = drive(SentinelCommitted(), at=102.0)
    progress = of(ReportProgress, actions)[0].snapshot
    assert (progress.downloaded_bytes, progress.total_bytes) == (2 * C + 4, 2 * C + 4)
    assert drive.end() == End(Ending.FINISHED)


def test_a_disk_failure_fails_the_download_keeping_the_journal() -> None:
    """A write or sync refused by the disk fails the download with its words."""
    drive = Drive()
    drive.to_fetching(chunks(2))
    drive(DiskFailed("cannot write a.eti at offset 0: No space left on device"))
    assert drive.end() == End(
        Ending.FAILED,
        "cannot write a.eti at offset 0: No space left on device",
        commit_journal=True,
    )


def test_a_game_of_only_version_ini_commits_at_once() -> None:
    """Nothing to fetch but version.ini: straight to the sentinel."""
    drive = Drive()
    actions = drive.to_fetching(make_manifest(), ("bravo",), open_all=False)
    assert of(Connect, actions) == []
    assert [f.source for f in of(FetchSentinel, actions)] == ["bravo"]


# --- files held by some sources only ----------------------------------------------------------


def split_manifest() -> tuple[GameManifest, GameManifest, GameManifest]:
    """One game (a.eti, b.eti of 2 chunks each) and two manifests that each have one file
    of other content: bravo's b.eti, charlie's a.eti."""
    agreed = make_manifest(entry("a.eti", 2 * C), entry("b.eti", 2 * C))
    bravo = make_manifest(entry("a.eti", 2 * C), entry("b.eti", 2 * C, salt="x"))
    charlie = make_manifest(entry("a.eti", 2 * C, salt="y"), entry("b.eti", 2 * C))
    return agreed, bravo, charlie


def test_differing_unpinned_manifests_are_a_conflict_not_a_majority() -> None:
    """Two sources of one manifest and one of another, unpinned: no majority decides; the
    download fails listing the peers on each side, by peer, never by count or digest."""
    agreed, bravo, _ = split_manifest()
    drive = Drive()
    drive(Start("1.0", ("bravo", "charlie", "delta")))
    actions = drive(ManifestsAnswered({"bravo": bravo, "charlie": agreed, "delta": agreed}))
    assert of(Prepare, actions) == []
    end = drive.end()
    assert end.conflict == ContentConflict(
        "quake3",
        "1.0",
        (
            ContentSide(manifest_digest(bravo), ("bravo",)),
            ContentSide(manifest_digest(agreed), ("charlie", "delta")),
        ),
    )
    assert end == End(
        Ending.FAILED,
        f"the peers offering quake3 1.0 disagree on its content (bravo offers content "
        f"{manifest_digest(bravo)[:12]}; charlie, delta offer content "
        f"{manifest_digest(agreed)[:12]}); the party catalog does not pin it, so choose "
        "which to trust",
        conflict=end.conflict,
    )


def test_a_chosen_digest_keeps_only_its_sources_even_a_minority() -> None:
    """The player chose bravo's content: the two sources of the other one are rejected
    and bravo alone serves; a choice nobody offers fails with the choice message."""
    agreed, bravo, _ = split_manifest()
    drive = Drive()
    drive(Start("1.0", ("bravo", "charlie", "delta")))
    answers = {"bravo": bravo, "charlie": agreed, "delta": agreed}
    actions = drive(ManifestsAnswered(answers, chosen_digest=manifest_digest(bravo)))
    assert of(RejectSource, actions) == [
        RejectSource("charlie", "its quake3 1.0 differs from the content you chose"),
        RejectSource("delta", "its quake3 1.0 differs from the content you chose"),
    ]
    assert of(Prepare, actions) == [Prepare(bravo)]
    assert charlie_alone(agreed, chosen_digest=manifest_digest(bravo)) == End(
        Ending.FAILED,
        "none of the 1 peers offering quake3 1.0 has the content you chose; not downloading",
    )


def test_a_pin_outranks_a_choice_and_identical_manifests_need_none() -> None:
    """A party pin decides even when the player chose another digest; sources that all
    offer one manifest are used without any choice."""
    agreed, bravo, _ = split_manifest()
    answered = ManifestsAnswered(
        {"bravo": bravo, "charlie": agreed},
        pinned_digest=manifest_digest(agreed),
        chosen_digest=manifest_digest(bravo),
    )
    drive = Drive()
    drive(Start("1.0", ("bravo", "charlie")))
    assert of(Prepare, drive(answered)) == [Prepare(agreed)]
    drive = Drive()
    drive(Start("1.0", ("charlie", "delta")))
    actions = drive(ManifestsAnswered({"charlie": agreed, "delta": agreed}))
    assert of(Prepare, actions) == [Prepare(agreed)]


def test_engine_bounds_must_be_positive() -> None:
    """A pipeline depth or attempt limit below one is a caller bug."""
    with pytest.raises(ValueError, match=r"^depth must be at least 1, got 0$"):
        DownloadEngine("quake3", depth=0)
    with pytest.raises(ValueError, match=r"^max_attempts must be at least 1, got 0$"):
        DownloadEngine("quake3", depth=1, max_attempts=0)


# --- properties ---------------------------------------------------------------------------------


@st.composite
def swarms(draw: st.DrawFn) -> tuple[int, dict[str, frozenset[ChunkKey]], list[int]]:
    """A game of 1-12 chunks, 1-4 sources with availability maps covering every chunk,
    and a list of random choices driving the events."""
    count = draw(st.integers(1, 12))
    names = ["bravo", "charlie", "delta", "echo"][: draw(st.integers(1, 4))]
    keys = [("a.eti", i * C) for i in range(count)]
    has: dict[str, set[ChunkKey]] = {name: set() for name in names}
    for key in keys:
        holders = draw(st.sets(st.sampled_from(names), min_size=1))
        for name in holders:
            has[name].add(key)
    choices = draw(st.lists(st.integers(0, 99), min_size=1, max_size=200))
    return count, {name: frozenset(held) for name, held in has.items()}, choices


@settings(max_examples=150, deadline=None)
@given(swarms(), st.integers(1, 4), st.booleans())
def test_random_runs_keep_the_invariants_and_complete(
    swarm: tuple[int, dict[str, frozenset[ChunkKey]], list[int]], depth: int, endgame: bool
) -> None:
    """Whatever order chunks verify or fail in: no connection exceeds the depth, no chunk
    is in place on two sources, a waiting chunk is never in flight, done chunks never
    wait again; once failures stop, every chunk is fetched and version.ini asked for."""
    count, has, choices = swarm
    drive = Drive(depth=depth, endgame=endgame)
    manifest = chunks(count)
    names = tuple(has)
    drive(Start("1.0", names))
    drive(ManifestsAnswered(dict.fromkeys(names, manifest)))
    drive(Prepared(frozenset(), frozenset(names)))
    for name, held in has.items():
        drive(SourceOffered(name, frozenset({"a.eti"}), has=held))
    engine, swarm_state = drive.engine, drive.engine.swarm
    for step, choice in enumerate([*choices, *([0] * 400)]):
        if engine.phase is not Phase.FETCHING:
            break
        failing = step < len(choices) and choice % 7 == 0
        for action in list(drive.log):
            if (
                isinstance(action, Connect)
                and swarm_state.sources[action.source].link.value == "connecting"
            ):
                drive(ConnectionOpened(action.source))
        drive.log.clear()
        in_flight = [(s.name, key) for s in swarm_state.sources.values() for key in s.in_flight]
        closing = [s.name for s in swarm_state.sources.values() if s.link is Link.CLOSING]
        if closing:
            drive(ConnectionClosed(closing[choice % len(closing)]))
        elif in_flight:
            name, key = in_flight[choice % len(in_flight)]
            if failing:
                drive(ChunkFailed(name, key, ChunkFault.REFUSED, "busy"))
            else:
                drive(ChunkVerified(name, key))
        for copy in of(PlaceCopy, drive.log):
            drive(CopyPlaced(copy.source, copy.task.key))
        for source in swarm_state.sources.values():
            assert len(source.in_flight) <= depth
        in_place: dict[ChunkKey, int] = {}
        for source in swarm_state.sources.values():
            for key in source.in_flight:
                if source.name not in swarm_state.copies.get(key, set()):
                    in_place[key] = in_place.get(key, 0) + 1
        assert all(n == 1 for n in in_place.values())
        assert not swarm_state.pending & set(swarm_state.holders)
        assert not swarm_state.pending & swarm_state.done
    ends = of(End, drive.log)
    if ends:  # only the attempt limit may stop a run whose sources all stay
        assert ends[0].ending is Ending.FAILED
        assert "could not be fetched" in ends[0].reason
    else:
        assert swarm_state.done == {("a.eti", i * C) for i in range(count)}
        assert engine.phase is Phase.SENTINEL


def test_the_tail_of_a_small_game_is_shared_until_the_sources_are_measured() -> None:
    """Five chunks, three sources opening one after the other: the first to open takes
    its share (two), not a whole pipeline, so every source delivers."""
    drive = Drive(depth=4)
    drive.to_fetching(chunks(5), ("bravo", "charlie", "delta"))
    assert {source: len(keys) for source, keys in fetched(drive.log).items()} == {
        "bravo": 2,
        "charlie": 2,
        "delta": 1,
    }


def test_a_trickle_holds_the_others_back_only_until_its_grace_and_its_chunk_is_copied() -> None:
    """A source that never finishes its first chunk (a trickle) holds the tail's round
    robin back for UNMEASURED_GRACE only: then the measured source takes every chunk
    left, and the endgame copies the one the trickle holds, which wins."""
    drive = Drive(depth=4, endgame=True, slow_depth=1)
    drive.to_fetching(chunks(6), ("bravo", "trickle"))
    [stuck] = drive.engine.swarm.sources["trickle"].in_flight
    bravo = drive.engine.swarm.sources["bravo"]
    while bravo.in_flight:
        for key in list(bravo.in_flight):
            drive(ChunkVerified("bravo", key), at=100.1)
    left = set(drive.engine.swarm.pending)
    assert left, "the round robin held nothing back: the test proves nothing"
    assert fetched(drive(Tick(), at=100.0 + UNMEASURED_GRACE / 2)) == {}
    actions = drive(Tick(), at=100.0 + UNMEASURED_GRACE)
    assert set(fetched(actions)["bravo"]) == left
    for key in left:
        actions = drive(ChunkVerified("bravo", key), at=100.0 + UNMEASURED_GRACE)
    [copy] = [f for f in of(Fetch, actions) if f.scratch]
    assert (copy.source, [task.key for task in copy.tasks]) == ("bravo", [stuck])
    assert CloseConnection("trickle") in drive(ChunkVerified("bravo", stuck))
    actions = drive(ConnectionClosed("trickle"))
    assert [(p.source, p.task.key) for p in of(PlaceCopy, actions)] == [("bravo", stuck)]


# --- partial sources --------------------------------------------------------------------


def test_a_chunk_a_partial_source_lacks_goes_elsewhere_uncounted() -> None:
    """CHUNK_NOT_AVAILABLE from a partial source is neither a strike nor an attempt: the
    chunk leaves that source's map and waits for another holder."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(4), ("bravo",), open_all=False)
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset({("a.eti", 2 * C)})))
    drive(ConnectionOpened("charlie"))
    for _ in range(MAX_CHUNK_ATTEMPTS + 1):
        charlie = drive.engine.swarm.sources["charlie"]
        if ("a.eti", 2 * C) not in charlie.in_flight:
            break
        drive(ChunkFailed("charlie", ("a.eti", 2 * C), ChunkFault.NOT_AVAILABLE, "refused"))
    charlie = drive.engine.swarm.sources["charlie"]
    assert charlie.has == frozenset()
    assert charlie.strikes == 0
    assert drive.engine.swarm.attempts.get(("a.eti", 2 * C)) is None
    assert not of(End, drive.log)
    actions = drive(ConnectionOpened("bravo"))
    assert ("a.eti", 2 * C) in fetched(actions)["bravo"]


def test_a_have_update_gives_an_open_partial_source_new_work() -> None:
    """A grown availability map (a have delta) mid-download puts the partial source's
    idle pipeline back to work on the chunks it now holds."""
    drive = Drive(depth=2)
    drive.to_fetching(chunks(8), ("bravo",))
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset()))
    assert drive.engine.swarm.sources["charlie"].link is Link.IDLE
    held = frozenset({("a.eti", 6 * C), ("a.eti", 7 * C)})
    actions = drive(SourceOffered("charlie", frozenset({"a.eti"}), has=held))
    assert of(Connect, actions) == [Connect("charlie")]
    actions = drive(ConnectionOpened("charlie"))
    assert sorted(fetched(actions)["charlie"]) == sorted(held)


def test_a_partial_source_sending_bad_bytes_is_excluded_like_a_complete_one() -> None:
    """A hash mismatch from a partial source excludes it for the game and closes it;
    later availability updates do not bring it back."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(4), ("bravo",), open_all=False)
    held = frozenset({("a.eti", 2 * C), ("a.eti", 3 * C)})
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=held))
    drive(ConnectionOpened("charlie"))
    key = next(iter(drive.engine.swarm.sources["charlie"].in_flight))
    actions = drive(ChunkFailed("charlie", key, ChunkFault.HASH_MISMATCH))
    assert of(ExcludeSource, actions) == [ExcludeSource("charlie", "sent corrupt bytes for a.eti")]
    assert of(CloseConnection, actions) == [CloseConnection("charlie")]
    drive(ConnectionClosed("charlie"))
    actions = drive(SourceOffered("charlie", frozenset({"a.eti"}), has=held))
    assert of(Connect, actions) == []
    assert drive.engine.swarm.sources["charlie"].standing is Standing.EXCLUDED


def test_a_complete_source_joining_mid_download_shares_the_rest() -> None:
    """A complete source offered mid-download is connected and fed waiting chunks."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(6), ("bravo",))
    actions = drive(SourceOffered("charlie", frozenset({"a.eti"})))
    assert of(Connect, actions) == [Connect("charlie")]
    actions = drive(ConnectionOpened("charlie"))
    assert len(fetched(actions)["charlie"]) == 1


def test_failures_call_the_game_by_the_name_given() -> None:
    """An engine given the catalog name says it in its failures instead of the id."""
    drive = Drive()
    drive.engine = DownloadEngine("quake3", depth=2, endgame=False, name="Quake III Arena")
    drive(Start("1.0", ("bravo",)))
    drive(ManifestsAnswered({"bravo": ManifestUnavailable("reset")}))
    assert drive.end() == End(Ending.FAILED, "no peer could describe Quake III Arena right now")
