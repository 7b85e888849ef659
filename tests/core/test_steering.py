"""The seeder steering rule: which chunk requests a complete source sends elsewhere."""

from __future__ import annotations

from lanspread.core.steering import (
    IDLE_SERVE_SECONDS,
    MAX_STEERS,
    PROGRESS_SECONDS,
    RECENT_SEND_SECONDS,
    STEER_MEMORY_SECONDS,
    SteeringRule,
)

GAME = "quake3"


def busy_rule() -> SteeringRule:
    """A rule whose server is sending another game's chunk: its link is not idle."""
    rule = SteeringRule()
    rule.sending("delta", "unreal", 0, 0.0)
    return rule


def test_a_chunk_only_this_server_can_give_is_served() -> None:
    """Nobody else holds it, sends it or was sent it: served, however often asked."""
    rule = SteeringRule()
    for _ in range(MAX_STEERS + 2):
        assert rule.ask("alpha", GAME, 3, 10.0, holders=()) is False


def test_a_chunk_another_peer_announced_is_steered_away() -> None:
    """Another peer holds the chunk (the book says so): steered; the asker's own
    announcement does not count."""
    rule = busy_rule()
    assert rule.ask("alpha", GAME, 3, 10.0, holders={"bravo"}) is True
    assert rule.ask("alpha", GAME, 4, 10.0, holders={"alpha"}) is False


def test_after_max_steers_the_asker_is_served_whatever_others_hold() -> None:
    """The same peer is steered away from the same chunk at most MAX_STEERS times, so a
    peer whose other sources never deliver does not starve; another chunk or another
    peer has its own count."""
    rule = busy_rule()
    answers = [rule.ask("alpha", GAME, 3, 10.0 + i, holders={"bravo"}) for i in range(5)]
    assert answers == [True] * MAX_STEERS + [False] * (5 - MAX_STEERS)
    assert rule.ask("alpha", GAME, 4, 20.0, holders={"bravo"}) is True
    assert rule.ask("charlie", GAME, 3, 20.0, holders={"bravo"}) is True


def test_a_send_in_flight_to_another_peer_steers_while_it_progresses() -> None:
    """A chunk being sent to bravo steers alpha away while the send is younger than
    PROGRESS_SECONDS; an older one (maybe stalled) does not."""
    rule = SteeringRule()
    rule.sending("bravo", GAME, 3, 10.0)
    assert rule.ask("alpha", GAME, 3, 10.0 + PROGRESS_SECONDS / 2, holders=()) is True
    assert rule.ask("charlie", GAME, 3, 10.0 + PROGRESS_SECONDS, holders=()) is False
    assert rule.ask("bravo", GAME, 3, 11.0, holders=()) is False


def test_a_finished_send_steers_until_its_announcement_is_due() -> None:
    """A chunk fully sent to bravo steers others for RECENT_SEND_SECONDS (bravo's
    announcement is on the way), then no longer without one; an abandoned send does not
    steer at all. (Another send keeps the link busy throughout.)"""
    rule = SteeringRule()
    rule.sending("delta", GAME, 9, 10.0)
    rule.sending("bravo", GAME, 3, 10.0)
    rule.sent("bravo", GAME, 3, 11.0)
    assert rule.ask("alpha", GAME, 3, 11.0 + RECENT_SEND_SECONDS / 2, holders=()) is True
    assert rule.ask("charlie", GAME, 3, 11.0 + RECENT_SEND_SECONDS, holders=()) is False
    rule.sending("bravo", GAME, 5, 20.0)
    rule.abandoned("bravo", GAME, 5, 20.1)
    assert rule.ask("alpha", GAME, 5, 20.5, holders=()) is False


def test_games_are_kept_apart() -> None:
    """A send of chunk 3 of one game says nothing of chunk 3 of another."""
    rule = SteeringRule()
    rule.sending("bravo", GAME, 3, 10.0)
    assert rule.ask("alpha", "unreal", 3, 10.5, holders=()) is False


def test_memory_is_bounded_by_count_and_by_age() -> None:
    """Finished sends and steer counts are capped (oldest dropped) and expire; sends in
    flight end with their send."""
    rule = SteeringRule(max_recent=4, max_records=4)
    rule.sending("delta", "unreal", 0, 10.0)  # keeps the link busy
    for index in range(10):
        rule.sending("bravo", GAME, index, 10.0)
        rule.sent("bravo", GAME, index, 10.0)
    for index in range(10):
        rule.ask("alpha", GAME, index, 10.5, holders={"charlie"})
    assert rule.remembered == 9
    rule.ask("alpha", GAME, 0, 10.5 + STEER_MEMORY_SECONDS, holders=())
    assert rule.remembered == 1


def test_an_expired_steer_count_starts_over() -> None:
    """Refusal counts older than STEER_MEMORY_SECONDS are forgotten: the asker may be
    steered away again later in a long download."""
    rule = busy_rule()
    for i in range(MAX_STEERS):
        assert rule.ask("alpha", GAME, 3, 10.0 + i, holders={"bravo"}) is True
    later = 10.0 + MAX_STEERS + STEER_MEMORY_SECONDS
    assert rule.ask("alpha", GAME, 3, later, holders={"bravo"}) is True


def test_two_sends_of_one_chunk_to_one_peer_end_one_at_a_time() -> None:
    """Two connections of bravo fetching the same chunk (an endgame copy): the chunk is
    in flight until both sends ended."""
    rule = SteeringRule()
    rule.sending("bravo", GAME, 3, 10.0)
    rule.sending("bravo", GAME, 3, 10.1)
    rule.abandoned("bravo", GAME, 3, 10.2)
    assert rule.ask("alpha", GAME, 3, 10.5, holders=()) is True
    rule.abandoned("bravo", GAME, 3, 10.3)
    assert rule.ask("charlie", GAME, 3, 10.5, holders=()) is False


def test_an_idle_link_serves_what_others_hold() -> None:
    """Once the last send ended IDLE_SERVE_SECONDS ago and none runs, a chunk others hold
    is served (the swarm's end: nobody asks for a new chunk); before that, or with a send
    running, it is steered as usual, and the served ask costs no steer."""
    rule = SteeringRule()
    rule.sending("bravo", GAME, 1, 10.0)
    rule.sent("bravo", GAME, 1, 11.0)
    just_after = 11.0 + IDLE_SERVE_SECONDS / 2
    assert rule.ask("alpha", GAME, 3, just_after, holders={"bravo"}) is True
    idle = 11.0 + IDLE_SERVE_SECONDS
    assert rule.ask("alpha", GAME, 4, idle, holders={"bravo"}) is False
    rule.sending("charlie", GAME, 5, idle)
    assert rule.ask("alpha", GAME, 4, idle + 1.0, holders={"bravo"}) is True


def test_a_server_that_sent_nothing_yet_is_idle() -> None:
    """A peer that just finished its own copy has sent nothing as a complete source: it
    serves a straggler's chunk that others hold rather than steering it for seconds."""
    rule = SteeringRule()
    assert rule.ask("alpha", GAME, 3, 100.0, holders={"bravo"}) is False


def test_an_abandoned_last_send_leaves_the_link_idle() -> None:
    """A send that failed ends the busy stretch like one that finished."""
    rule = SteeringRule()
    rule.sending("bravo", GAME, 1, 10.0)
    rule.abandoned("bravo", GAME, 1, 10.5)
    assert rule.ask("alpha", GAME, 3, 10.5 + IDLE_SERVE_SECONDS, holders={"bravo"}) is False
