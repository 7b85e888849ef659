"""Adopt a found folder: hash it against the version peers offer, then make it ours.

A folder named like a catalog game that lanspread cannot prove it made is shown as
*found, not from lanspread* (``core.library.FoundGame``). ``adopt`` asks a ready
peer offering the newest version for its manifest, hashes the folder against it
(:func:`lanspread.download.adoption.compare_folder`, reads only) and:

* when every game file is there with the manifest's size and bytes, starts a
  download that adopts them (``files.ownership.claim_download`` with ``adopt``):
  every chunk is reused, only ``version.ini`` is fetched and committed, and the
  ownership record names the player's files as adopted, so they may be rewritten
  but are never deleted. The folder is then a local copy like any other;
* otherwise says which files differ and changes nothing.

Nothing of the player's is moved or deleted either way.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from lanspread.core.lifecycle import Command, Refusal
from lanspread.core.manifest import GameManifest
from lanspread.download.adoption import compare_folder
from lanspread.errors import LanspreadError
from lanspread.runtime.replies import AdoptReply

if TYPE_CHECKING:
    from lanspread.runtime.downloads import DownloadManager
    from lanspread.runtime.lifecycle import Lifecycle
    from lanspread.runtime.peers import PeerNetwork

log = logging.getLogger(__name__)

# A peer that does not describe the game within this long is skipped: a manifest is a
# few MiB at most and comes from a cache, so a slower answer means a busy or gone peer.
MANIFEST_WAIT_SECONDS = 15.0


async def adopt(
    game_id: str,
    *,
    game_dir: Path,
    lifecycle: Lifecycle,
    network: PeerNetwork,
    downloads: DownloadManager,
) -> AdoptReply:
    """Compare the found folder of ``game_id`` with the offered version; adopt it if equal."""
    lifecycle.require(game_id, Command.ADOPT)
    version, offering = network.sources_for(game_id)
    manifest = await _manifest(network, game_id, offering)
    differs = await asyncio.to_thread(compare_folder, game_dir / game_id, manifest)
    compared = sum(1 for file in manifest.files if not file.is_sentinel)
    if differs:
        return AdoptReply(game_id, version, adopted=False, differs=differs, compared_files=compared)
    downloads.download(game_id, adopt=True)
    return AdoptReply(game_id, version, adopted=True, compared_files=compared)


async def _manifest(network: PeerNetwork, game_id: str, offering: tuple[str, ...]) -> GameManifest:
    """The manifest of the first offering peer that describes the game in time."""
    for peer_id in offering:
        try:
            async with asyncio.timeout(MANIFEST_WAIT_SECONDS):
                return await network.fetch_manifest(peer_id, game_id)
        except (LanspreadError, OSError, TimeoutError) as exc:
            log.info("%s did not describe %s for adoption: %s", peer_id, game_id, exc)
    raise Refusal.NO_SOURCE.error(game_id)


__all__ = ["MANIFEST_WAIT_SECONDS", "adopt"]
