"""Catalogs, sideloaded games and runtime options for tests that start peers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from lanspread.core.catalog import Catalog, CatalogGame
from lanspread.runtime.options import RuntimeOptions


def make_catalog(*ids: str, executable: str | None = "start.sh") -> Catalog:
    games = {
        gid: CatalogGame(
            id=gid,
            name=gid.title(),
            description="",
            size_bytes=1,
            genre="Test",
            max_players=2,
            executable=executable,
        )
        for gid in ids
    }
    return Catalog(games=games, source="<test>")


CATALOG = make_catalog("quake3", "cs16", "aoe2", "openttd")


def sideload(game_dir: Path, game_id: str, version: str = "1.0", payload: bytes = b"x") -> Path:
    root = game_dir / game_id
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.eti").write_bytes(payload)
    (root / "version.ini").write_text(version)
    return root


def loopback_options(base: Path, name: str, **overrides: Any) -> RuntimeOptions:
    options = RuntimeOptions(
        game_dir=base / name / "games",
        state_dir=base / name / "state",
        catalog=CATALOG,
        name=name,
        listen_host="127.0.0.1",
        listen_port=0,
        mdns=False,
        mdns_interfaces=("127.0.0.1",),
        ping_interval=0.2,
        peer_timeout=2.0,
        goodbye_timeout=2.0,
        restart_delay=0.2,
    )
    return replace(options, **overrides)
