"""The library's guidance: what a player alone on the network can do, and the folders in
the game folder that lanspread does not know."""

from __future__ import annotations

import msgspec

from lanspread.web.viewmodel._facts import RuntimeState, StrayFacts, ViewInput

ALONE_TITLE = "No other players yet"
ALONE_TEXT = (
    "A game turns available when someone on this network who has it runs lanspread. "
    "Until then, the cards are grey."
)


class GuidanceStep(msgspec.Struct, frozen=True):
    title: str
    text: str


class StrayView(msgspec.Struct, frozen=True):
    name: str
    hint: str


class GuidanceView(msgspec.Struct, frozen=True):
    """The panel above the grid; ``alone`` is ``None`` once a peer is there."""

    alone_title: str | None
    alone_text: str | None
    steps: tuple[GuidanceStep, ...]
    strays_title: str | None
    strays: tuple[StrayView, ...]


def alone_steps(game_dir: str) -> tuple[GuidanceStep, ...]:
    """What to do alone: wait, connect to an address, add games you own, or try the demo."""
    return (
        GuidanceStep(
            "Wait for friends",
            "Their games appear here by themselves as soon as they start lanspread.",
        ),
        GuidanceStep(
            "Connect to an address",
            "If this network hides players from each other, ask a friend for the address "
            "shown under their name and connect to it.",
        ),
        GuidanceStep(
            "Add games you own",
            f"Put a game's folder in {game_dir}, named as the catalog names it (quake3, "
            "aoe2, …): lanspread finds it and shares it.",
        ),
        GuidanceStep(
            "Just looking?",
            "Run “lanspread demo” to try everything with a few small demo games.",
        ),
    )


def stray_hint(stray: StrayFacts) -> str:
    """Why the folder is not in the library, and what would make it one."""
    if stray.suggestion_id is not None and stray.suggestion_name is not None:
        return (
            f"Not in the catalog. If it is {stray.suggestion_name}, rename the folder to "
            f"“{stray.suggestion_id}”."
        )
    return (
        "Not in the catalog: lanspread leaves it alone. A folder is a game once it is "
        "named like a catalog game (its id, such as quake3)."
    )


def guidance_view(facts: ViewInput) -> GuidanceView | None:
    """The panel, or ``None`` when there is nothing to say (peers are there, no strays)."""
    if facts.runtime.state is not RuntimeState.RUNNING or facts.me is None:
        return None
    alone = not facts.peers
    if not alone and not facts.strays:
        return None
    strays = tuple(StrayView(stray.name, stray_hint(stray)) for stray in facts.strays)
    return GuidanceView(
        alone_title=ALONE_TITLE if alone else None,
        alone_text=ALONE_TEXT if alone else None,
        steps=alone_steps(facts.me.game_dir) if alone else (),
        strays_title=f"Folders in {facts.me.game_dir} that are not games here" if strays else None,
        strays=strays,
    )
