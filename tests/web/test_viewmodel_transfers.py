"""The status line, the peers' rates and how much of a game each source has."""

from __future__ import annotations

from lanspread.core.catalog import CatalogGame
from lanspread.core.uploads import DEFAULT_GAMING_CAP
from lanspread.web.viewmodel import (
    GameFacts,
    PeerFacts,
    RuntimeFacts,
    RuntimeState,
    SourceFacts,
    TransferFacts,
    ViewInput,
    build_view,
    card,
    format_limit,
    transfer_view,
)

MIB = 1024 * 1024
GAME = CatalogGame(
    id="quake3", name="Quake III Arena", description="", genre="FPS", size_bytes=1, max_players=8
)


def test_the_status_line_says_totals_and_the_limit() -> None:
    """Up and down rates, the limit in force when there is one, the line in one sentence."""
    view = transfer_view(
        TransferFacts(
            upload_rate=2e6, download_rate=5e5, upload_limit=30 * MIB, effective_limit=30 * MIB
        )
    )
    assert (view.up_label, view.down_label) == ("↑ 2.0 MB/s", "↓ 500 KB/s")
    assert view.line == "Upload 2.0 MB/s (limit 30 MiB/s), download 500 KB/s"
    assert view.gaming_label is None
    assert (view.upload_limit_mib, view.gaming_cap_mib) == (30, 0)


def test_gaming_now_says_the_cap_in_force() -> None:
    """While a game runs under a cap the line says uploads are capped, at the lower limit."""
    view = transfer_view(
        TransferFacts(
            upload_limit=10 * MIB,
            gaming_cap=DEFAULT_GAMING_CAP,
            gaming=True,
            effective_limit=10 * MIB,
            waiting=2,
        )
    )
    assert view.gaming_label == "Gaming now: uploads capped at 10 MiB/s"
    assert view.line == (
        "Upload 0 B/s, download 0 B/s, 2 peers wait for a slot,"
        " Gaming now: uploads capped at 10 MiB/s"
    )
    assert transfer_view(TransferFacts(gaming=True, gaming_cap=0)).gaming_label is None


def test_limits_read_in_mib_a_second() -> None:
    """0 is unlimited; fractions keep two decimals."""
    assert format_limit(0) == "unlimited"
    assert format_limit(20 * MIB) == "20 MiB/s"
    assert format_limit(int(1.5 * MIB)) == "1.5 MiB/s"


def test_peers_show_what_they_pull_from_you() -> None:
    """A peer with rates both ways and a slot reads all three; an idle one reads nothing."""
    view = build_view(
        ViewInput(
            games=(),
            runtime=RuntimeFacts(RuntimeState.RUNNING),
            peers=(
                PeerFacts(
                    "p1",
                    "Bob",
                    "10.0.0.3:7000",
                    (),
                    upload_rate=4.2e6,
                    pulling=True,
                    download_rate=1e6,
                ),
                PeerFacts("p2", "Zed", "10.0.0.4:7000", (), upload_rate=10.0),
            ),
            transfer=TransferFacts(),
        )
    )
    assert [peer.rate_label for peer in view.peers] == [
        "↑ 4.2 MB/s · ↓ 1.0 MB/s · pulling from you",
        "",
    ]
    assert view.transfer is not None


def test_sources_say_how_much_of_the_game_each_has() -> None:
    """A complete copy first, then a partial one with its verified share, then one only
    installed."""
    sources = (
        SourceFacts("p1", "Bob", "10.0.0.3:7000", "1.2", ready=True, have_percent=100.0),
        SourceFacts("p2", "Ann", "10.0.0.4:7000", "1.2", ready=False, have_percent=42.7),
        SourceFacts("p3", "Zed", "10.0.0.5:7000", "1.2", ready=False),
    )
    view = card(GameFacts(game=GAME, sources=sources))
    assert [(s.name, s.have_label, s.have_percent) for s in view.sources] == [
        ("Bob", "Complete", 100.0),
        ("Ann", "Has 42%", 42.7),
        ("Zed", "Installed only", 0.0),
    ]
    assert [s.version_label for s in view.sources] == ["v1.2", "v1.2", "v1.2 · installed only"]
