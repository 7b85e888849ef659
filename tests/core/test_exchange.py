"""Peer exchange rules: which hints are admitted, what each peer is told, whom to ping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanspread.core.exchange import (
    MAX_DIALLED_PEERS,
    MAX_PING_INTERVAL,
    MAX_REQUERY_DELAY,
    MAX_SHARED_PEERS,
    MDNS_DEFER_DELAY,
    PING_BUDGET,
    REQUERY_BASE_DELAY,
    TIMEOUT_INTERVALS,
    ExchangeBook,
    Hint,
    admissible_hints,
    first_dial_delay,
    is_dialable_host,
    peer_timeout_for,
    peers_to_ping,
    ping_interval_for,
    requery_delay,
)

SELF = "self"


def hint(peer_id: str, host: str = "10.0.0.9", port: int = 4000) -> Hint:
    return Hint(peer_id, (host, port))


def admit(
    hints: list[Hint],
    *,
    proven: frozenset[str] = frozenset(),
    pending: frozenset[str] = frozenset(),
    proven_count: int | None = None,
) -> list[str]:
    admitted = admissible_hints(
        hints,
        self_id=SELF,
        proven=proven,
        proven_count=len(proven) if proven_count is None else proven_count,
        pending=pending,
    )
    return [h.peer_id for h in admitted]


@pytest.mark.parametrize(
    ("host", "dialable"),
    [
        ("10.0.0.1", True),
        ("127.0.0.1", True),
        ("fe80::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("224.0.0.251", False),
        ("ff02::fb", False),
        ("peer.example", False),
        ("", False),
    ],
)
def test_only_ip_literals_of_one_host_are_dialable(host: str, dialable: bool) -> None:
    """A name (our DNS queries chosen by a stranger), a wildcard or a group is never dialled."""
    assert is_dialable_host(host) is dialable


def test_a_hint_about_ourselves_or_a_proven_peer_is_ignored() -> None:
    """Gossip never moves a proven peer and never makes us dial ourselves."""
    assert admit([hint(SELF), hint("p1"), hint("p2")], proven=frozenset({"p1"})) == ["p2"]


def test_a_hint_for_an_untried_sighting_does_not_replace_its_address() -> None:
    """A liar naming another address for an id already awaiting its dial is not admitted."""
    assert admit([hint("p1", "10.6.6.6"), hint("p2")], pending=frozenset({"p1"})) == ["p2"]


def test_each_id_is_admitted_once_and_bad_hosts_are_dropped() -> None:
    """Repeats of one id keep the first; a hint naming a host by name is refused."""
    hints = [hint("p1", "10.0.0.1"), hint("p1", "10.0.0.2"), hint("p2", "evil.example")]
    admitted = admissible_hints(
        hints, self_id=SELF, proven=frozenset(), proven_count=0, pending=frozenset()
    )
    assert admitted == [hint("p1", "10.0.0.1")]


def test_admission_is_bounded_per_message() -> None:
    """However many hints a message carries, at most MAX_SHARED_PEERS are admitted."""
    hints = [hint(f"p{n}") for n in range(MAX_SHARED_PEERS * 3)]
    assert admit(hints) == [f"p{n}" for n in range(MAX_SHARED_PEERS)]


def test_no_hint_is_admitted_past_the_peer_bound() -> None:
    """At MAX_DIALLED_PEERS proven peers gossip adds no dials; just below it, only the room."""
    hints = [hint(f"p{n}") for n in range(10)]
    assert admit(hints, proven_count=MAX_DIALLED_PEERS) == []
    assert admit(hints, proven_count=MAX_DIALLED_PEERS - 3) == ["p0", "p1", "p2"]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d", SELF]), st.sampled_from(["1.1.1.1", "x"]))
    ),
    st.frozensets(st.sampled_from(["a", "b"])),
    st.frozensets(st.sampled_from(["c"])),
)
def test_admitted_hints_never_name_self_proven_or_pending_peers(
    raw: list[tuple[str, str]], proven: frozenset[str], pending: frozenset[str]
) -> None:
    """Whatever the gossip: admitted ids are unique, unknown, not pending and dialable."""
    admitted = admissible_hints(
        [hint(peer_id, host) for peer_id, host in raw],
        self_id=SELF,
        proven=proven,
        proven_count=len(proven),
        pending=pending,
    )
    names = [h.peer_id for h in admitted]
    assert len(names) == len(set(names))
    assert not set(names) & (proven | pending | {SELF})
    assert all(is_dialable_host(h.address[0]) for h in admitted)


PROVEN = {f"p{n}": (f"10.0.0.{n}", 4000) for n in range(1, 5)}


def test_a_handshake_snapshot_leaves_out_the_recipient() -> None:
    """A Hello to p1 names every other proven peer, never p1 itself."""
    book = ExchangeBook()
    assert [h.peer_id for h in book.snapshot(PROVEN, "p1")] == ["p2", "p3", "p4"]
    assert [h.peer_id for h in book.snapshot(PROVEN, None)] == ["p1", "p2", "p3", "p4"]
    assert book.snapshot(PROVEN, "p2")[0] == Hint("p1", ("10.0.0.1", 4000))


def test_a_snapshot_names_what_the_recipient_lacks_first() -> None:
    """When the snapshot must be cut, the peers the recipient has not heard of go first."""
    many = {f"q{n:03}": ("10.0.1.1", 4000 + n) for n in range(MAX_SHARED_PEERS + 10)}
    book = ExchangeBook()
    book.told("r", [f"q{n:03}" for n in range(10)])
    names = [h.peer_id for h in book.snapshot(many, "r")]
    assert len(names) == MAX_SHARED_PEERS
    assert names[0] == "q010"
    assert "q000" not in names


def test_deltas_name_each_peer_once_until_it_is_forgotten() -> None:
    """A delta names the peers not told yet; nothing once all are; again after a drop."""
    book = ExchangeBook()
    book.told("p1", ["p2"])
    assert [h.peer_id for h in book.delta(PROVEN, "p1")] == ["p3", "p4"]
    assert book.delta(PROVEN, "p1") == []
    assert not book.pending(PROVEN, "p1")
    book.forget("p3")
    assert book.pending(PROVEN, "p1")
    assert [h.peer_id for h in book.delta(PROVEN, "p1")] == ["p3"]
    book.forget("p1")
    assert [h.peer_id for h in book.delta(PROVEN, "p1")] == ["p2", "p3", "p4"]


def test_a_delta_is_bounded_and_the_rest_follows_next_time() -> None:
    """More new peers than MAX_SHARED_PEERS go out over several messages, none lost."""
    many = {f"q{n:03}": ("10.0.1.1", 4000 + n) for n in range(MAX_SHARED_PEERS + 5)}
    book = ExchangeBook()
    first = book.delta(many, "r")
    assert len(first) == MAX_SHARED_PEERS
    assert book.pending(many, "r")
    second = book.delta(many, "r")
    assert len(second) == 5
    assert {h.peer_id for h in first + second} == set(many) - {"r"}


def test_what_a_peer_told_us_is_not_told_back() -> None:
    """Ids a peer named in its own hints are not sent back to it."""
    book = ExchangeBook()
    book.told("p1", ["p2", "p3"])
    assert [h.peer_id for h in book.delta(PROVEN, "p1")] == ["p4"]


def test_reset_replaces_what_a_peer_is_known_to_hold() -> None:
    """After a new handshake only what that handshake carried counts as told."""
    book = ExchangeBook()
    book.told("p1", ["p2", "p3", "p4"])
    book.reset("p1", ["p2"])
    assert [h.peer_id for h in book.delta(PROVEN, "p1")] == ["p3", "p4"]


def test_the_ping_interval_stretches_with_the_party_up_to_its_cap() -> None:
    """Small parties ping at the base interval; bigger ones at PING_BUDGET pings a second."""
    assert ping_interval_for(1, 2.0) == 2.0
    assert ping_interval_for(10, 2.0) == 2.0
    assert ping_interval_for(25, 2.0) == 25 / PING_BUDGET
    assert ping_interval_for(48, 2.0) == 48 / PING_BUDGET
    assert ping_interval_for(500, 2.0) == MAX_PING_INTERVAL
    assert ping_interval_for(500, 20.0) == 20.0


def test_the_timeout_covers_several_stretched_intervals() -> None:
    """A peer is dropped after TIMEOUT_INTERVALS stretched intervals, never before the base."""
    assert peer_timeout_for(2, 2.0, 10.0) == 10.0
    assert peer_timeout_for(48, 2.0, 10.0) == TIMEOUT_INTERVALS * (48 / PING_BUDGET)
    assert peer_timeout_for(500, 2.0, 10.0) == TIMEOUT_INTERVALS * MAX_PING_INTERVAL


def test_only_idle_links_are_pinged() -> None:
    """A peer heard from within the interval needs no ping; the rest, in id order."""
    seen = {"b": 9.0, "a": 1.0, "c": 5.0}
    assert peers_to_ping(seen, 10.0, 5.0) == ["a", "c"]
    assert peers_to_ping(seen, 10.0, 10.0) == []


def test_mdns_requeries_back_off_to_a_cap() -> None:
    """Re-announcements start after REQUERY_BASE_DELAY, double, and stop at the cap."""
    delays = [requery_delay(n) for n in range(8)]
    assert delays[:3] == [REQUERY_BASE_DELAY, 2 * REQUERY_BASE_DELAY, 4 * REQUERY_BASE_DELAY]
    assert delays[-1] == MAX_REQUERY_DELAY
    assert delays == sorted(delays)
    assert requery_delay(10_000) == MAX_REQUERY_DELAY


def test_of_two_peers_seeing_each_other_the_smaller_id_dials_first() -> None:
    """One handshake per pair: the larger id defers its first dial by MDNS_DEFER_DELAY."""
    assert first_dial_delay("a" * 64, "b" * 64) == 0.0
    assert first_dial_delay("b" * 64, "a" * 64) == MDNS_DEFER_DELAY
