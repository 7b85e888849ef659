"""The player's own files survive every lanspread command, byte for byte (S30).

lanspread deletes only what it can prove it created. This scenario starts a real
peer process on a games folder that was full of the player's files before
lanspread ever ran (saves, mods, a hand-installed game, a file the player named
``.lanspread.json``, a partial USB copy of a game) and drives it through start,
a change of game folder and back, a download, a cancelled download and a
remove, comparing the SHA-256 of every one of the player's files after each
step. Waiting is described in ``transfer_lan.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.netns.transfer_lan import OPENTTD, QUAKE3, BuildLan, Peer, payload_manifest
from tests.support.trees import write_tree

# Slow enough that the 47 MiB openttd download is still running when cancel lands.
SLOW_SOURCE = "80mbit"

# The player's games folder before lanspread ever ran (relative path -> bytes).
PLAYER_FILES: dict[str, bytes] = {
    # A hand-installed game with saves: no version.ini, nothing from lanspread.
    "factorio/saves/my-world-400h.zip": b"four hundred hours of factory",
    "factorio/bin/x64/factorio": b"\x7fELF a game installed by hand",
    # Mods and maps, and a file the player happened to name like lanspread's log.
    "warcraft3/my-mod.txt": b"a mod the player dropped in",
    "warcraft3/user-maps/map1.d2": b"the player's own map",
    "warcraft3/.lanspread.json": b'{"my": "notes, not an intent log"}',
    # A partial copy from a USB stick: an archive cut short, no version.ini.
    "teeworlds/teeworlds.eti": b"\x00" * 4096 + b"copy still running",
    # Files in the folders of games lanspread will download into.
    "quake3/my-mod.pk3": b"a mod next to the downloaded archives",
    "quake3/saves/slot1.sav": b"the player's quake3 save",
    "openttd/notes.txt": b"openttd notes the player keeps here",
}
# The second games folder the player switches to (and back from).
OTHER_FOLDER_FILES: dict[str, bytes] = {
    "quake3/game.eti": b"a complete copy the player made by hand",
    "quake3/version.ini": b"version = 1.0\n",
    "quake3/saves/slot2.sav": b"another save",
    "aoe2/campaign.sav": b"a campaign save",
}


def digests(base: Path, files: dict[str, bytes]) -> dict[str, str]:
    """SHA-256 of each of ``files`` as it is on disk now ("missing" when gone)."""
    result = {}
    for relative in files:
        path = base / relative
        result[relative] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
        )
    return result


def expected(files: dict[str, bytes]) -> dict[str, str]:
    return {relative: hashlib.sha256(data).hexdigest() for relative, data in files.items()}


async def set_game_dir(peer: Peer, path: Path) -> None:
    reply = await peer.process.request({"cmd": "set-game-dir", "path": str(path)})
    assert reply["data"] == {"game_dir": str(path)}


async def test_the_players_files_survive_every_command(build_lan: BuildLan) -> None:
    """S30: start, folder change and back, download, cancel and remove keep every byte of
    the player's files.

    At start the hand-installed factorio, the modded warcraft3 (with the player's
    ``.lanspread.json``) and the partial teeworlds copy are listed as found, not
    from lanspread, and untouched. Switching to a second folder (holding a
    complete quake3 copied by hand) and back settles each folder like a start and
    touches neither. quake3 then downloads into the folder holding the player's
    mod and save; an openttd download into a folder with the player's notes is
    cancelled mid-transfer (only what it created goes, the folder stays); remove
    of quake3 deletes only the downloaded files. After every step each of the
    player's files still has its original SHA-256.
    """
    lan = await build_lan(2)
    folder = lan.base / "h1" / "games"
    other = lan.base / "h1" / "other-games"
    write_tree(folder, PLAYER_FILES)
    write_tree(other, OTHER_FOLDER_FILES)
    want, want_other = expected(PLAYER_FILES), expected(OTHER_FOLDER_FILES)

    player, source = await lan.start([("h1", ()), ("h2", (QUAKE3, OPENTTD))])
    assert digests(folder, PLAYER_FILES) == want
    games = await player.games()
    for game_id in ("factorio", "warcraft3", "teeworlds"):
        assert games[game_id]["found"] is not None, player.process.report(str(games[game_id]))
        assert games[game_id]["found"].startswith("no version.ini, no download record")
    assert games["warcraft3"]["found"].endswith("not lanspread's: .lanspread.json; left as it is")

    await set_game_dir(player, other)
    assert digests(other, OTHER_FOLDER_FILES) == want_other
    assert (await player.games())["quake3"]["downloaded"] is True
    await set_game_dir(player, folder)
    assert digests(folder, PLAYER_FILES) == want
    assert digests(other, OTHER_FOLDER_FILES) == want_other

    await lan.ready_to_fetch(player, [source], QUAKE3)
    await player.command("download", "quake3")
    await player.finished("quake3")
    root = player.root("quake3")
    downloaded = payload_manifest(root)
    for relative in ("my-mod.pk3", "saves/slot1.sav"):
        del downloaded[relative]
    assert downloaded == lan.cache.manifest(QUAKE3)
    assert digests(folder, PLAYER_FILES) == want

    await lan.ready_to_fetch(player, [source], OPENTTD)
    await lan.throttle(source, SLOW_SOURCE)
    await player.command("download", "openttd")
    await player.process.wait_for({"event": "download-begin", "game": "openttd"})
    await player.command("cancel", "openttd")
    await player.finished("openttd", "download-cancelled")
    await lan.unthrottle(source)
    assert sorted(path.name for path in player.root("openttd").iterdir()) == ["notes.txt"]
    assert digests(folder, PLAYER_FILES) == want

    await player.command("remove", "quake3")
    removed = await player.outcome("quake3", ["remove-finished", "remove-failed"])
    assert removed["event"] == "remove-finished", player.process.report(str(removed))
    assert sorted(str(path.relative_to(root)) for path in root.rglob("*")) == [
        "my-mod.pk3",
        "saves",
        "saves/slot1.sav",
    ]
    assert digests(folder, PLAYER_FILES) == want
    assert digests(other, OTHER_FOLDER_FILES) == want_other
