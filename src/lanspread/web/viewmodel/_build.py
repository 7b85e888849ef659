"""The whole page: every card in shelf order, the peers, this peer, the runtime banner."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lanspread.web.viewmodel._cards import card, shelf
from lanspread.web.viewmodel._dialogs import notice_view
from lanspread.web.viewmodel._downloads import downloads_panel
from lanspread.web.viewmodel._facts import (
    PeerFacts,
    RuntimeFacts,
    RuntimeState,
    TransferFacts,
    ViewInput,
)
from lanspread.web.viewmodel._guidance import guidance_view
from lanspread.web.viewmodel._labels import (
    art_slots,
    avatar_color,
    count_label,
    format_limit,
    format_speed,
    mib_per_second,
    monogram,
)
from lanspread.web.viewmodel._views import (
    CardView,
    FilterCounts,
    PeerCard,
    RuntimeView,
    SetupView,
    TransferView,
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
        rate_label=_peer_rate(peer),
        demo_label=DEMO_LABEL if peer.demo else None,
    )


DEMO_LABEL = "Demo: games from this computer"


# Below this a rate reads as nothing: a few stray bytes in the window are not a transfer.
_NOTICEABLE_RATE = 1024.0


def _peer_rate(peer: PeerFacts) -> str:
    parts = []
    if peer.upload_rate >= _NOTICEABLE_RATE:
        parts.append(f"↑ {format_speed(peer.upload_rate)}")
    if peer.download_rate >= _NOTICEABLE_RATE:
        parts.append(f"↓ {format_speed(peer.download_rate)}")
    if peer.pulling:
        parts.append("pulling from you")
    return " · ".join(parts)


def transfer_view(transfer: TransferFacts) -> TransferView:
    """The status line: total up and down, and the gaming-now throttle while it is on."""
    up = f"↑ {format_speed(transfer.upload_rate)}"
    down = f"↓ {format_speed(transfer.download_rate)}"
    gaming = None
    if transfer.gaming and transfer.gaming_cap > 0:
        gaming = f"Gaming now: uploads capped at {format_limit(transfer.effective_limit)}"
    parts = [f"Upload {format_speed(transfer.upload_rate)}"]
    if transfer.effective_limit > 0 and gaming is None:
        parts[0] += f" (limit {format_limit(transfer.effective_limit)})"
    parts.append(f"download {format_speed(transfer.download_rate)}")
    if transfer.waiting:
        parts.append(count_label(transfer.waiting, "peer waits", "peers wait") + " for a slot")
    if gaming is not None:
        parts.append(gaming)
    return TransferView(
        up_label=up,
        down_label=down,
        line=", ".join(parts),
        gaming_label=gaming,
        upload_limit_mib=mib_per_second(transfer.upload_limit),
        gaming_cap_mib=mib_per_second(transfer.gaming_cap),
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
    slots = art_slots(game.game.id for game in facts.games)
    cards = tuple(card(game, slots[game.game.id]) for game in ordered)
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
        transfer=None if facts.transfer is None else transfer_view(facts.transfer),
        downloads=None if facts.downloads is None else downloads_panel(facts.downloads),
        guidance=guidance_view(facts),
    )
