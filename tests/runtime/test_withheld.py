"""A withheld copy (its install found a damaged archive) is no longer announced to
peers, is announced again once a good copy replaces it, and stays withheld across a
restart."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded
from tests.support.peers import sideload

from lanspread.runtime.commands import Connect, Install, Redownload, Update
from lanspread.runtime.events import DownloadFinished, InstallFailed, PeerDiscovered
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.runtime import PeerRuntime
from lanspread.storage.withheld import WITHHELD_FILE_NAME, load_withheld

Start = Callable[..., Any]
SENTENCE = "data.eti is damaged or not a game archive; download it again"


def damaged_copy(base: Path, name: str) -> None:
    """A copy of quake3 that lanspread downloaded but whose archive is garbage."""
    record_as_downloaded(sideload(base / name / "games", "quake3", payload=b"not an archive"))


async def connected(alpha: PeerRuntime, bravo: PeerRuntime) -> RuntimeEvents:
    """Connect ``alpha`` to ``bravo``; the events of ``bravo`` from before the link."""
    watch = RuntimeEvents(bravo)
    await alpha.execute(Connect(addr=bravo.listen_addr))
    await watch.first(PeerDiscovered, lambda e: e.peer_id == alpha.peer_id)
    return watch


async def test_a_withheld_copy_is_not_announced_until_a_good_copy_replaces_it(
    start_runtime: Start, tmp_path: Path
) -> None:
    """After alpha's install finds a damaged archive, bravo stops listing alpha as a
    source of the game while alpha still shows its damaged copy; after alpha downloads
    a good copy again (from bravo), bravo lists alpha as a source again."""
    damaged_copy(tmp_path, "alpha")
    sideload(tmp_path / "bravo" / "games", "quake3", payload=b"a good copy")
    alpha = await start_runtime("alpha", install_policy=InstallPolicy.MANUAL)
    bravo = await start_runtime("bravo")
    watch_alpha = RuntimeEvents(alpha)
    watch_bravo = await connected(alpha, bravo)
    await watch_bravo.until(
        lambda: bravo.network.sources_for("quake3") == ("1.0", (alpha.peer_id,)),
        "bravo lists alpha as a source of quake3",
    )

    await alpha.execute(Install(game="quake3"))
    assert (await watch_alpha.first(InstallFailed)).reason == SENTENCE
    await watch_bravo.until(
        lambda: bravo.network.sources_for("quake3") == (None, ()),
        "bravo no longer lists alpha as a source of quake3",
    )
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.downloaded, view.damaged) == (True, SENTENCE)
    assert "quake3" in alpha.local.snapshot.by_id()
    assert "quake3" not in alpha.local.announced.by_id()

    await alpha.execute(Redownload(game="quake3"))
    await watch_alpha.first(DownloadFinished, lambda e: e.game == "quake3")
    await watch_bravo.until(
        lambda: bravo.network.sources_for("quake3") == ("1.0", (alpha.peer_id,)),
        "bravo lists alpha as a source of quake3 again",
    )
    assert dict(alpha.local.withheld) == {}
    assert (alpha.game_dir / "quake3" / "data.eti").read_bytes() == b"a good copy"


async def test_the_mark_survives_a_restart(start_runtime: Start, tmp_path: Path) -> None:
    """A restarted alpha still withholds the damaged copy: the damaged view, the serve
    gate and the announcement all keep it, and a peer that meets the restarted alpha
    does not list it as a source."""
    damaged_copy(tmp_path, "alpha")
    alpha = await start_runtime("alpha")
    watch_alpha = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await watch_alpha.first(InstallFailed)
    assert (alpha.local.state_dir / WITHHELD_FILE_NAME).is_file()
    alpha.shutdown()
    await alpha.wait_stopped()

    again = await start_runtime("alpha")
    assert dict(again.local.withheld) == {"quake3": SENTENCE}
    assert next(g for g in again.games() if g.id == "quake3").damaged == SENTENCE
    assert again.network.seeder.scope().gate_state.withheld == frozenset({"quake3"})
    assert "quake3" not in again.local.announced.by_id()
    bravo = await start_runtime("bravo")
    await connected(again, bravo)  # bravo has alpha's handshake library now
    assert again.peer_id in bravo.network.known_peers()
    assert bravo.network.sources_for("quake3") == (None, ())


async def test_deleting_the_folder_by_hand_lifts_the_mark(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A player who deletes the damaged folder by hand lifts the mark (saved too), so
    a copy put there later is announced as any other."""
    damaged_copy(tmp_path, "alpha")
    alpha = await start_runtime("alpha")
    watch_alpha = RuntimeEvents(alpha)
    await alpha.execute(Install(game="quake3"))
    await watch_alpha.first(InstallFailed)
    shutil.rmtree(alpha.game_dir / "quake3")
    await watch_alpha.until(lambda: not alpha.local.withheld, "the mark is lifted")
    sideload(alpha.game_dir, "quake3", payload=b"a copy put back")
    await watch_alpha.until(
        lambda: "quake3" in alpha.local.announced.by_id(), "quake3 is announced again"
    )
    # Scans run one at a time and the lift is saved inside the scan that saw the folder
    # gone: the later scan that found the copy again came after the save.
    assert load_withheld(alpha.local.state_dir, alpha.game_dir) == {}


async def test_a_newer_version_downloaded_over_a_withheld_copy_lifts_the_mark(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Updating a withheld, never-installed copy to a newer version moves the new,
    verified payload in: the mark is lifted and the game is announced again."""
    damaged_copy(tmp_path, "alpha")
    sideload(tmp_path / "bravo" / "games", "quake3", version="2.0", payload=b"a good copy")
    alpha = await start_runtime("alpha", install_policy=InstallPolicy.MANUAL)
    bravo = await start_runtime("bravo")
    watch_alpha = RuntimeEvents(alpha)
    watch_bravo = await connected(alpha, bravo)
    await alpha.execute(Install(game="quake3"))
    await watch_alpha.first(InstallFailed)
    await alpha.execute(Update(game="quake3"))
    await watch_alpha.first(DownloadFinished, lambda e: e.game == "quake3")
    assert dict(alpha.local.withheld) == {}
    assert load_withheld(alpha.local.state_dir, alpha.game_dir) == {}
    await watch_bravo.until(
        lambda: bravo.network.sources_for("quake3") == ("2.0", (alpha.peer_id,)),
        "bravo lists alpha as a source of quake3 2.0",
    )
