"""The seeder steering rule: which chunk requests a complete source sends elsewhere."""

from __future__ import annotations

from lanspread.core.steering import (
    MAX_STEERS,
    PROGRESS_SECONDS,
    RECENT_SEND_SECONDS,
    STEER_MEMORY_SECONDS,
    SteeringRule,
)

GAME = "quake3"


def test_a_chunk_only_this_server_can_give_is_served() -> None:
    """Nobody else holds it, sends it or was sent it: served, however often asked."""
    rule = SteeringRule()
    for _ in range(MAX_STEERS + 2):
        assert rule.ask("alpha", GAME, 3, 10.0, holders=()) is False


def test_a_chunk_another_peer_announced_is_steered_away() -> None:
    """Another peer holds the chunk (the book says so): steered; the asker's own
    announcement does not count."""
    rule = SteeringRule()
    assert rule.ask("alpha", GAME, 3, 10.0, holders={"bravo"}) is True
    assert rule.ask("alpha", GAME, 4, 10.0, holders={"alpha"}) is False


def test_after_max_steers_the_asker_is_served_whatever_others_hold() -> None:
    """The same peer is steered away from the same chunk at most MAX_STEERS times, so a
    peer whose other sources never deliver does not starve; another chunk or another
    peer has its own count."""
    rule = SteeringRule()
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
    steer at all."""
    rule = SteeringRule()
    rule.sending("bravo", GAME, 3, 10.0)
    rule.sent("bravo", GAME, 3, 11.0)
    assert rule.ask("alpha", GAME, 3, 11.0 + RECENT_SEND_SECONDS / 2, holders=()) is True
    assert rule.ask("charlie", GAME, 3, 11.0 + RECENT_SEND_SECONDS, holders=()) is False
    rule.sending("bravo", GAME, 5, 20.0)
    rule.abandoned("bravo", GAME, 5)
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
    for index in range(10):
        rule.sending("bravo", GAME, index, 10.0)
        rule.sent("bravo", GAME, index, 10.0)
    for index in range(10):
        rule.ask("alpha", GAME, index, 10.5, holders={"charlie"})
    assert rule.remembered == 8
    rule.ask("alpha", GAME, 0, 10.5 + STEER_MEMORY_SECONDS, holders=())
    assert rule.remembered == 0


def test_an_expired_steer_count_starts_over() -> None:
    """Refusal counts older than STEER_MEMORY_SECONDS are forgotten: the asker may be
    steered away again later in a long download."""
    rule = SteeringRule()
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
    rule.abandoned("bravo", GAME, 3)
    assert rule.ask("alpha", GAME, 3, 10.5, holders=()) is True
    rule.abandoned("bravo", GAME, 3)
    assert rule.ask("charlie", GAME, 3, 10.5, holders=()) is False
