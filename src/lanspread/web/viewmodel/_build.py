"""The whole page: every card in shelf order, the peers, this peer, the runtime banner."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lanspread.web.viewmodel._cards import card, shelf
from lanspread.web.viewmodel._dialogs import notice_view
from lanspread.web.viewmodel._facts import PeerFacts, RuntimeFacts, RuntimeState, ViewInput
from lanspread.web.viewmodel._labels import avatar_color, count_label, monogram
from lanspread.web.viewmodel._views import (
    CardView,
    FilterCounts,
    PeerCard,
    RuntimeView,
    SetupView,
    ViewModel,
)

# The banner of a runtime that is not failed: (message, whether Restart is offered).
_RUNTIME_BANNERS: Mapping[RuntimeState, tuple[str | None, bool]] = {
    RuntimeState.STARTING: ("Starting the lanspread peer…", False),
    RuntimeState.RUNNING: (None, False),
    RuntimeState.STOPPED: ("The lanspread peer stopped.", True),
}


def _peer_card(peer: PeerFacts, names: dict[str, str]) -> PeerCard:
    games = tuple(sorted((names.get(gid, gid) for gid in peer.games), key=str.lower))
    return PeerCard(
        peer_id=peer.peer_id,
        name=peer.name,
        addr=peer.addr,
        initials=monogram(peer.name),
        color=avatar_color(peer.peer_id),
        games=games,
        games_label=count_label(len(games), "game", "games") if games else "No games yet",
    )


def _runtime_view(runtime: RuntimeFacts) -> RuntimeView:
    if runtime.state is RuntimeState.FAILED:
        where = f" ({runtime.component})" if runtime.component else ""
        message = f"The lanspread peer stopped{where}: {runtime.error or 'unknown error'}"
        return RuntimeView(state=runtime.state.value, message=message, can_restart=True)
    banner, can_restart = _RUNTIME_BANNERS[runtime.state]
    return RuntimeView(state=runtime.state.value, message=banner, can_restart=can_restart)


def _counts(cards: Iterable[CardView]) -> FilterCounts:
    cards = tuple(cards)
    return FilterCounts(
        all=len(cards),
        installed=sum(card.installed for card in cards),
        downloadable=sum(card.downloadable for card in cards),
        updates=sum(card.update for card in cards),
    )


def build_view(facts: ViewInput) -> ViewModel:
    ordered = sorted(facts.games, key=lambda g: (shelf(g), g.game.name.lower()))
    cards = tuple(card(game) for game in ordered)
    names = {game.game.id: game.game.name for game in facts.games}
    peers = tuple(
        _peer_card(peer, names) for peer in sorted(facts.peers, key=lambda p: p.name.lower())
    )
    return ViewModel(
        games=cards,
        peers=peers,
        me=facts.me,
        runtime=_runtime_view(facts.runtime),
        setup=SetupView(
            needed=facts.setup_needed,
            game_dir=facts.setup_game_dir,
            display_name=facts.setup_name,
        ),
        counts=_counts(cards),
        notices=tuple(notice_view(notice, names) for notice in facts.notices),
    )
