"""The engine and a complete source's seeder steering (``ChunkFault.STEERED``)."""

from __future__ import annotations

from tests.core.test_engine import C, Drive, chunks, fetched, of

from lanspread.core.engine import (
    MAX_STEERS_TAKEN,
    STEER_BACKOFF,
    ChunkFailed,
    ChunkFault,
    ChunkVerified,
    CloseConnection,
    Connect,
    ConnectionClosed,
    ConnectionOpened,
    End,
    SourceOffered,
    Tick,
)


def test_a_steered_chunk_goes_to_the_partial_holder_uncounted() -> None:
    """A complete source that steers a chunk away gets no strike and the chunk no
    attempt; the source is not asked for it again during the back-off (it gets other
    chunks), and the partial source holding it is."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(4), ("bravo",))
    key = fetched(drive.log)["bravo"][0]
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset({key})))
    actions = drive(ChunkFailed("bravo", key, ChunkFault.STEERED, "refused: ELSEWHERE"))
    assert len(fetched(actions)["bravo"]) == 1
    assert key not in fetched(actions)["bravo"]
    bravo = drive.engine.swarm.sources["bravo"]
    assert bravo.strikes == 0
    assert drive.engine.swarm.attempts.get(key) is None
    assert fetched(drive(ConnectionOpened("charlie")))["charlie"] == [key]
    assert not of(End, drive.log)


def test_the_complete_source_is_asked_again_once_the_back_off_is_over() -> None:
    """The partial holder fails the steered chunk: while the back-off runs the download
    waits (it does not stop as if no source could take it); once it is over the
    complete source is asked for the chunk again."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1), ("bravo",))
    key = ("a.eti", 0)
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset({key})))
    steered_at = drive.now
    drive(ChunkFailed("bravo", key, ChunkFault.STEERED, "refused: ELSEWHERE"))
    actions = drive(ConnectionOpened("charlie"))
    assert fetched(actions) == {"charlie": [key]}
    assert of(CloseConnection, actions) == [CloseConnection("bravo")]  # no work left on it
    drive(ConnectionClosed("bravo"))
    actions = drive(ChunkFailed("charlie", key, ChunkFault.NOT_AVAILABLE, "refused"))
    assert of(Connect, actions) == [Connect("bravo")]
    assert fetched(drive(ConnectionOpened("bravo"))) == {}
    assert fetched(drive(Tick(), at=steered_at + STEER_BACKOFF / 2)) == {}
    assert not of(End, drive.log)
    actions = drive(Tick(), at=steered_at + STEER_BACKOFF)
    assert fetched(actions) == {"bravo": [key]}
    assert drive.engine.swarm.attempts.get(key) is None


def test_a_steer_from_the_only_source_is_waited_out_not_failed() -> None:
    """Steered by the only source there is: no End, and the chunk is asked of it again
    after the back-off; it then verifies."""
    drive = Drive(depth=2)
    drive.to_fetching(chunks(1), ("bravo",))
    key = ("a.eti", 0)
    steered_at = drive.now
    assert fetched(drive(ChunkFailed("bravo", key, ChunkFault.STEERED, "elsewhere"))) == {}
    assert not of(End, drive.log)
    assert fetched(drive(Tick(), at=steered_at + STEER_BACKOFF)) == {"bravo": [key]}
    drive(ChunkVerified("bravo", key))
    assert drive.engine.swarm.complete


def test_a_partial_sources_steer_status_is_not_taken_as_a_steer() -> None:
    """STEERED is a complete source's answer: from a partial source it is counted like
    any failure (an attempt), not a back-off."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(2), ("bravo",), open_all=False)
    key = ("a.eti", C)
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset({key})))
    drive(ConnectionOpened("charlie"))
    assert fetched(drive.log)["charlie"] == [key]
    drive(ChunkFailed("charlie", key, ChunkFault.STEERED, "elsewhere"))
    assert drive.engine.swarm.attempts.get(key) == 1
    assert drive.engine.swarm.sources["charlie"].steered == {}


def test_a_source_that_keeps_steering_a_chunk_is_counted_as_failing() -> None:
    """A complete source that steers one chunk away more than MAX_STEERS_TAKEN times
    (an honest seeder serves it after three) is stalling: from then on its answer
    counts as a failed attempt, so the download ends instead of waiting forever."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(1), ("bravo",))
    key = ("a.eti", 0)
    bravo = drive.engine.swarm.sources["bravo"]
    for _ in range(MAX_STEERS_TAKEN):
        drive(ChunkFailed("bravo", key, ChunkFault.STEERED, "refused: ELSEWHERE"))
        drive(Tick(), at=drive.now + STEER_BACKOFF)
    assert drive.engine.swarm.attempts.get(key) is None
    assert of(End, drive.log) == []
    assert key in bravo.in_flight
    drive(ChunkFailed("bravo", key, ChunkFault.STEERED, "refused: ELSEWHERE"))
    assert drive.engine.swarm.attempts.get(key) == 1


def test_an_open_source_in_a_back_off_does_not_hold_the_others_back() -> None:
    """Small-game fairness never stalls a download: charlie steered the last chunk away
    and may not be asked for it during the back-off, so bravo, which already fetched
    more, takes it instead of the download ending with "no source took it"."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(3), ("bravo", "charlie"))
    first = fetched(drive.log)
    bravo_key, charlie_key = first["bravo"][0], first["charlie"][0]
    third = fetched(drive(ChunkVerified("bravo", bravo_key)))["bravo"][0]
    drive(ChunkFailed("charlie", charlie_key, ChunkFault.STEERED, "refused: ELSEWHERE"))
    actions = drive(ChunkVerified("bravo", third))
    assert fetched(actions) == {"bravo": [charlie_key]}
    assert of(End, drive.log) == []


def test_a_partial_source_that_turns_complete_is_reconnected() -> None:
    """A partial source that finished its own download is offered again as complete: its
    open connection (a partial ticket, refused from now on) is closed, its chunk in
    flight waits again, and the next connection asks it for any chunk, uncounted."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(4), ("bravo",))
    key = ("a.eti", 3 * C)
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset({key})))
    actions = drive(ConnectionOpened("charlie"))
    assert fetched(actions) == {"charlie": [key]}
    actions = drive(SourceOffered("charlie", frozenset({"a.eti"})))
    assert of(CloseConnection, actions) == [CloseConnection("charlie")]
    actions = drive(ConnectionClosed("charlie"))
    assert of(Connect, actions) == [Connect("charlie")]
    assert drive.engine.swarm.attempts.get(key) is None
    assert len(fetched(drive(ConnectionOpened("charlie")))["charlie"]) == 1


def test_a_complete_source_offered_again_keeps_its_connection() -> None:
    """Offering a complete source again (a rejoin) or a partial one with more chunks
    closes nothing."""
    drive = Drive(depth=1)
    drive.to_fetching(chunks(4), ("bravo",))
    assert of(CloseConnection, drive(SourceOffered("bravo", frozenset({"a.eti"})))) == []
    drive(SourceOffered("charlie", frozenset({"a.eti"}), has=frozenset({("a.eti", 0)})))
    drive(ConnectionOpened("charlie"))
    more = frozenset({("a.eti", 0), ("a.eti", C)})
    assert (
        of(CloseConnection, drive(SourceOffered("charlie", frozenset({"a.eti"}), has=more))) == []
    )
