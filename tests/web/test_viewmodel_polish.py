"""What the cards say to screen readers, the one size they show, and their generated art."""

from __future__ import annotations

import dataclasses
import itertools

from tests.web.test_viewmodel import HALFWAY, facts

from lanspread.demo import with_demo_games
from lanspread.runtime.addresses import shown_addr
from lanspread.storage.catalog_file import load_bundled_catalog
from lanspread.web.viewmodel import (
    APPROXIMATE_SIZE,
    ARTWORK_PATTERNS,
    DOWNLOAD_SIZE,
    DownloadSample,
    GameFacts,
    RuntimeFacts,
    RuntimeState,
    ViewInput,
    art_slots,
    build_view,
    card,
    emblem,
)

# Two hues closer than this read as one colour on a small tile.
MIN_HUE_DISTANCE = 30


def test_every_card_button_names_its_game() -> None:
    """The card's one button is spoken with the game's name in every state."""
    spoken = {
        "download": card(facts()).action.aria_label,
        "play": card(facts(downloaded=True, installed=True, local_version="1")).action.aria_label,
        "unavailable": card(facts(peer_count=0)).action.aria_label,
        "resume": card(facts(paused_percent=42.0, discardable=True)).action.aria_label,
        "downloading": card(facts(operation="downloading", download=HALFWAY)).action.aria_label,
    }
    assert spoken == {
        "download": "Download Quake III Arena",
        "play": "Play Quake III Arena",
        "unavailable": "Quake III Arena: unavailable",
        "resume": "Resume Quake III Arena, 42%",
        "downloading": "Quake III Arena: downloading 50%, 12.5 MB/s",
    }


def test_one_size_the_downloads_own_where_known() -> None:
    """Before a download the catalog's estimate shows, marked approximate; once the
    download knows its total (running or paused) that total shows everywhere."""
    idle = card(facts())
    assert (idle.size_label, idle.size_caption, idle.size_bytes) == (
        "~480 MB",
        APPROXIMATE_SIZE,
        480_000_000,
    )
    small = DownloadSample(10_000_000, 155_000_000, 1.0, None)
    running = card(facts(operation="downloading", download=small))
    assert (running.size_label, running.size_caption) == ("155 MB", DOWNLOAD_SIZE)
    assert running.progress is not None
    assert running.progress.done_label == "10.0 MB of 155 MB"
    paused = card(facts(paused_percent=5.0, discardable=True, known_size=155_000_000))
    assert (paused.size_label, paused.size_caption) == ("155 MB", DOWNLOAD_SIZE)
    remove = card(facts(downloaded=True, known_size=155_000_000))
    confirm = next(action.confirm for action in remove.actions if action.id == "remove")
    assert confirm is not None
    assert "downloading 155 MB from peers again" in confirm


def test_cards_carry_what_the_page_sorts_by() -> None:
    """Availability (the shelf), size and when the game was last played travel with
    every card, so the page sorts without asking the peer."""
    played = card(facts(downloaded=True, installed=True, last_played=99.0))
    assert (played.shelf, played.last_played, played.size_bytes) == (0, 99.0, 480_000_000)
    assert card(facts()).shelf == 1
    assert card(facts(peer_count=0)).shelf == 2


def test_generated_art_of_the_catalog_is_distinct() -> None:
    """No two games of the bundled catalog (with the demo games) share a pattern and a
    hue: every tile looks different, and none carries letters that could repeat."""
    catalog = with_demo_games(load_bundled_catalog())
    view = build_view(
        ViewInput(
            games=tuple(GameFacts(game=game) for game in catalog),
            runtime=RuntimeFacts(RuntimeState.RUNNING),
        )
    )
    arts = {game.id: game.art for game in view.games}
    assert len(arts) == len(catalog)
    for (one, a), (other, b) in itertools.combinations(arts.items(), 2):
        hue_a = int(a.color_a.split()[0][4:])
        hue_b = int(b.color_a.split()[0][4:])
        distance = min(abs(hue_a - hue_b), 360 - abs(hue_a - hue_b))
        assert distance > 0, (one, other)
        if a.pattern == b.pattern:
            assert distance >= MIN_HUE_DISTANCE, (one, other)
    assert {art.pattern for art in arts.values()} == set(range(ARTWORK_PATTERNS))


def test_art_slots_ignore_names_and_order() -> None:
    """A game's slot depends on the ids of the catalog, not on its name or listing order."""
    ids = ["quake3", "cs16", "aoe2"]
    assert art_slots(ids) == art_slots(reversed(ids))
    assert sorted(index for index, _total in art_slots(ids).values()) == [0, 1, 2]
    renamed = dataclasses.replace(facts().game, name="Something Else")
    assert card(facts(game=renamed), (1, 3)).art.color_a == card(facts(), (1, 3)).art.color_a


def test_emblems_follow_the_genre() -> None:
    """Each genre word has its emblem; an unknown genre gets the controller."""
    assert [emblem(g) for g in ("Co-op Shooter", "Action RPG", "MOBA", "Puzzle")] == [
        "crosshair",
        "sword",
        "tower",
        "controller",
    ]


def test_own_address_is_the_lan_address_not_the_wildcard() -> None:
    """A peer listening on every interface shows the address others reach it at."""
    assert shown_addr("0.0.0.0:7878", lambda: "192.168.1.20") == "192.168.1.20:7878"
    assert shown_addr("[::]:7878", lambda: "10.0.0.5") == "10.0.0.5:7878"
    assert shown_addr("0.0.0.0:7878", lambda: None) == "0.0.0.0:7878"
    assert shown_addr("10.1.1.1:7000", lambda: "192.168.1.20") == "10.1.1.1:7000"
