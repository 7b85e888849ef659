"""The first minute: what a player alone is told, and folders that are not games here."""

from __future__ import annotations

from pathlib import Path

from tests.web.test_viewmodel import facts

from lanspread.storage.catalog_file import load_bundled_catalog
from lanspread.storage.folders import StrayFolder, closest_game_id, stray_folders
from lanspread.web.viewmodel import (
    PeerFacts,
    RuntimeFacts,
    RuntimeState,
    SelfFacts,
    StrayFacts,
    ViewInput,
    build_view,
)

ME = SelfFacts(name="alpha", peer_id="a" * 16, listen_addr="10.0.0.2:7878", game_dir="/g")
RUNNING = RuntimeFacts(RuntimeState.RUNNING)
CATALOG = load_bundled_catalog()


def test_alone_the_library_says_why_and_what_to_do() -> None:
    """No peers: the panel explains the grey cards and lists the four ways on."""
    guidance = build_view(ViewInput(games=(facts(),), runtime=RUNNING, me=ME)).guidance
    assert guidance is not None
    assert (guidance.alone_title, guidance.alone_text) == (
        "No other players yet",
        "A game turns available when someone on this network who has it runs lanspread. "
        "Until then, the cards are grey.",
    )
    assert [step.title for step in guidance.steps] == [
        "Wait for friends",
        "Connect to an address",
        "Add games you own",
        "Just looking?",
    ]
    assert "Put a game's folder in /g, named as the catalog names it" in guidance.steps[2].text


def test_with_a_peer_and_no_strays_there_is_no_panel() -> None:
    """Once a friend is there, nothing needs explaining."""
    peer = PeerFacts("b" * 16, "bravo", "10.0.0.3:7878", ())
    view = build_view(ViewInput(games=(facts(),), runtime=RUNNING, me=ME, peers=(peer,)))
    assert view.guidance is None


def test_a_stray_folder_gets_a_hint_naming_the_likely_game() -> None:
    """A hand-named folder: "not in the catalog", with the rename that makes it a game."""
    peer = PeerFacts("b" * 16, "bravo", "10.0.0.3:7878", ())
    strays = (StrayFacts("Quake 3", "quake3", "Quake III Arena"), StrayFacts("photos"))
    view = build_view(
        ViewInput(games=(facts(),), runtime=RUNNING, me=ME, peers=(peer,), strays=strays)
    )
    guidance = view.guidance
    assert guidance is not None
    assert (guidance.alone_title, guidance.strays_title) == (
        None,
        "Folders in /g that are not games here",
    )
    assert [(s.name, s.hint) for s in guidance.strays] == [
        (
            "Quake 3",
            "Not in the catalog. If it is Quake III Arena, rename the folder to “quake3”.",
        ),
        (
            "photos",
            "Not in the catalog: lanspread leaves it alone. A folder is a game once it is "
            "named like a catalog game (its id, such as quake3).",
        ),
    ]


def test_closest_game_matches_ids_and_names_loosely() -> None:
    """Case, spaces and punctuation do not matter; unrelated names match nothing."""
    assert closest_game_id("Quake III Arena", CATALOG) == "quake3"
    assert closest_game_id("QUAKE3", CATALOG) == "quake3"
    assert closest_game_id("Age of Empires 2", CATALOG) == "aoe2"
    assert closest_game_id("holiday photos", CATALOG) is None
    assert closest_game_id("...", CATALOG) is None


def test_stray_folders_lists_only_non_catalog_folders(tmp_path: Path) -> None:
    """Catalog roots, files and hidden folders are not strays."""
    for name in ("quake3", "Quake 3", ".lanspread-tmp", "photos"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert stray_folders(tmp_path, CATALOG) == (
        StrayFolder("photos", None),
        StrayFolder("Quake 3", "quake3"),
    )
    assert stray_folders(tmp_path / "missing", CATALOG) == ()


def test_the_demo_peer_is_always_labelled() -> None:
    """The Demo peer carries its label in the peers panel; a player never does."""
    demo = PeerFacts("d" * 16, "Demo peer", "127.0.0.1:7000", (), demo=True)
    player = PeerFacts("b" * 16, "bravo", "10.0.0.3:7878", ())
    view = build_view(ViewInput(games=(facts(),), runtime=RUNNING, me=ME, peers=(demo, player)))
    labels = {peer.name: peer.demo_label for peer in view.peers}
    assert labels == {"Demo peer": "Demo: games from this computer", "bravo": None}
