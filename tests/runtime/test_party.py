"""Party mode between real runtimes on loopback: pinned content beats liars and Sybils,
signed catalogs spread, forged ones are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.runtime.test_downloads import (
    CHUNK,
    WAIT,
    hashed,
    make_game,
    noise,
    peers,
    serving,
    tree_digest,
)
from tests.support.events import RuntimeEvents
from tests.support.ownership import record_as_downloaded

from lanspread.core.conflict import conflict_failure
from lanspread.core.manifest import manifest_digest
from lanspread.core.party import (
    PartyCatalog,
    Pin,
    SignedCatalog,
    party_code,
    pinned_failure,
    public_key_bytes,
    sign_catalog,
)
from lanspread.errors import InvalidGameState, PeerRefused
from lanspread.files.hashing import hash_game_payload
from lanspread.net.handshake import LISTENER_NOT_A_MEMBER, NOT_A_MEMBER
from lanspread.net.wire import OfferCatalog
from lanspread.runtime.commands import Connect, Download, Update
from lanspread.runtime.events import (
    ChunkFinished,
    DownloadFailed,
    DownloadFinished,
    PartyCatalogAdopted,
    PartyCatalogRefused,
    SourceRejected,
)
from lanspread.runtime.options import InstallPolicy
from lanspread.runtime.runtime import PeerRuntime
from lanspread.storage import party_files

Start = Callable[..., Any]
MiB = 1024 * 1024

PARTY_KEY = Ed25519PrivateKey.generate()
CODE = party_code(public_key_bytes(PARTY_KEY))
PINNED_REASON = "its quake3 1.0 differs from the content the party catalog pins"


def pin_of(root: Path, version: str = "1.0") -> Pin:
    """The pin the organizer's ``catalog pin`` records for ``root``."""
    manifest = hash_game_payload(root, "quake3", version, CHUNK)
    return Pin(game_id="quake3", version=version, digest=manifest_digest(manifest))


def organize(state_dir: Path, *pins: Pin, serial: int = 1) -> SignedCatalog:
    """What ``catalog sign`` leaves in the organizer's state folder."""
    signed = sign_catalog(PARTY_KEY, PartyCatalog(pins=pins), serial)
    party_files.save_signed(state_dir, signed)
    return signed


def garbage_game(game_dir: Path, version: str = "1.0") -> Path:
    """A valid game whose archives are not the organizer's (a 'quake3.exe' of its own)."""
    root = make_game(game_dir, version=version, size=2 * MiB)
    (root / "extra.eti").write_bytes(noise(666, MiB))
    return root


async def adopted(runtime: PeerRuntime, serial: int) -> None:
    def holds() -> bool:
        return runtime.party.catalog is not None and runtime.party.catalog.serial >= serial

    await RuntimeEvents(runtime).until(holds, f"catalog serial {serial} adopted", within=WAIT)


async def test_newer_unpinned_version_of_a_liar_loses_to_the_pinned_content(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A liar announcing quake3 9.9 with garbage is no source and no update: the
    honest pinned 1.0 is downloaded, and the liar is reported."""
    honest = make_game(tmp_path / "bravo" / "games", size=2 * MiB)
    garbage_game(tmp_path / "mallory" / "games", version="9.9")
    organize(tmp_path / "bravo" / "state", pin_of(honest))
    alpha, bravo, mallory = await peers(
        start_runtime,
        "alpha",
        "bravo",
        "mallory",
        party_code=CODE,
        install_policy=InstallPolicy.MANUAL,
    )
    await adopted(alpha, 1)
    await serving(alpha, bravo)
    assert alpha.network.sources_for("quake3") == ("1.0", (bravo.peer_id,))
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    finished = await events.first(DownloadFinished, within=WAIT)
    assert finished.version == "1.0"
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(honest)
    assert [(r.peer_id, r.reason) for r in events.of(SourceRejected)] == [
        (mallory.peer_id, "offers 9.9, which the party catalog does not pin")
    ]
    assert {c.peer_id for c in events.of(ChunkFinished)} == {bravo.peer_id}


async def test_a_liars_newer_version_is_no_update_for_a_party_member(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A player holding the pinned 1.0 sees no update when a liar announces 9.9, and an
    update command leaves the honest archives alone."""
    mine = make_game(tmp_path / "alpha" / "games", size=MiB)
    record_as_downloaded(mine, root_created=True)
    before = tree_digest(mine)
    garbage_game(tmp_path / "mallory" / "games", version="9.9")
    organize(tmp_path / "alpha" / "state", pin_of(mine))
    alpha, mallory = await peers(start_runtime, "alpha", "mallory", party_code=CODE)
    await hashed(mallory)
    await RuntimeEvents(alpha).until(
        lambda: alpha.network.unpinned_offers("quake3") == ((mallory.peer_id, "9.9"),),
        "the liar's 9.9 to reach alpha",
        within=WAIT,
    )
    view = next(g for g in alpha.games() if g.id == "quake3")
    assert (view.downloaded, view.update_available) == (True, False)
    with pytest.raises(InvalidGameState) as caught:
        await alpha.execute(Update(game="quake3"))
    assert str(caught.value) == "Quake3 is up to date"
    assert tree_digest(mine) == before


async def test_two_sybils_outvoting_one_honest_peer_on_a_pinned_game_lose(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Two identities serving the same garbage 1.0 outnumber the honest peer, and lose."""
    honest = make_game(tmp_path / "bravo" / "games", size=2 * MiB)
    garbage_game(tmp_path / "sybil1" / "games")
    garbage_game(tmp_path / "sybil2" / "games")
    organize(tmp_path / "alpha" / "state", pin_of(honest))
    alpha, *sources = await peers(
        start_runtime,
        "alpha",
        "bravo",
        "sybil1",
        "sybil2",
        party_code=CODE,
        install_policy=InstallPolicy.MANUAL,
    )
    await serving(alpha, *sources)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    await events.first(DownloadFinished, within=WAIT)
    assert tree_digest(alpha.game_dir / "quake3") == tree_digest(honest)
    sybils = {sources[1].peer_id, sources[2].peer_id}
    assert {(r.peer_id, r.reason) for r in events.of(SourceRejected)} == {
        (sybil, PINNED_REASON) for sybil in sybils
    }
    assert {c.peer_id for c in events.of(ChunkFinished)} == {sources[0].peer_id}


async def test_pinned_version_from_only_contradicting_sources_fails_plainly(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Without any source of the pinned content, the download fails and writes nothing."""
    honest = make_game(tmp_path / "reference", size=2 * MiB)
    garbage_game(tmp_path / "mallory" / "games")
    organize(tmp_path / "alpha" / "state", pin_of(honest))
    alpha, mallory = await peers(start_runtime, "alpha", "mallory", party_code=CODE)
    await serving(alpha, mallory)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    failed = await events.first(DownloadFailed, within=WAIT)
    assert failed.reason == pinned_failure("Quake3", "1.0", 1)
    assert [(r.peer_id, r.reason) for r in events.of(SourceRejected)] == [
        (mallory.peer_id, PINNED_REASON)
    ]
    assert not (alpha.game_dir / "quake3" / "version.ini").exists()


async def test_unpinned_sources_that_split_evenly_fail_naming_the_peers(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Outside a party, one source against one is no majority: no digest order picks a
    winner, the download fails naming the peer on each side, for the player to choose."""
    make_game(tmp_path / "bravo" / "games", size=2 * MiB)
    garbage_game(tmp_path / "charlie" / "games")
    alpha, bravo, charlie = await peers(start_runtime, "alpha", "bravo", "charlie")
    await serving(alpha, bravo, charlie)
    events = RuntimeEvents(alpha)
    await alpha.execute(Download(game="quake3"))
    failed = await events.first(DownloadFailed, within=WAIT)
    conflict = next(g for g in alpha.games() if g.id == "quake3").conflict
    assert conflict is not None
    assert [side.peers for side in conflict.sides] == [
        (p,) for p in sorted((bravo.peer_id, charlie.peer_id))
    ]
    assert failed.reason == conflict_failure(conflict)
    assert not (alpha.game_dir / "quake3" / "version.ini").exists()


async def test_organizer_pin_mid_party_spreads_peer_to_peer(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A new signing in the organizer's state folder reaches a player through another
    player, who announces it; the file is kept for the next start."""
    organize(tmp_path / "org" / "state")
    org, bravo, charlie = await peers(start_runtime, "org", "bravo", "charlie", party_code=CODE)
    await adopted(charlie, 1)
    charlie_events = RuntimeEvents(charlie)
    signed = organize(tmp_path / "org" / "state", pin_of(make_game(tmp_path / "ref")), serial=2)
    await org.party.check_file()
    await adopted(charlie, 2)
    await adopted(bravo, 2)
    # Published once stored: the event of serial 1 may come after adopted() saw it held.
    adoption = await charlie_events.first(PartyCatalogAdopted, lambda e: e.serial == 2)
    assert (adoption.serial, adoption.pins) == (2, 1)
    assert adoption.source in {org.peer_id, bravo.peer_id}
    assert party_files.load_signed(tmp_path / "charlie" / "state") == signed


async def test_forged_catalogs_are_refused_over_the_wire(
    start_runtime: Start, tmp_path: Path
) -> None:
    """Another party's key, an altered catalog and a replayed older serial are each
    refused with an event; the held catalog stays."""
    first = sign_catalog(PARTY_KEY, PartyCatalog(), 1)
    held = organize(tmp_path / "alpha" / "state", serial=2)
    alpha, mallory = await peers(start_runtime, "alpha", "mallory", party_code=CODE)
    events = RuntimeEvents(alpha)
    other_key = Ed25519PrivateKey.generate()
    stolen_pin = Pin(game_id="quake3", version="1.0", digest="0" * 64)
    forged = SignedCatalog(
        catalog=PartyCatalog(pins=(stolen_pin,)),
        serial=3,
        public_key=held.public_key,
        signature=held.signature,
    )
    link = await mallory.network.link(alpha.peer_id)
    for offer in (sign_catalog(other_key, PartyCatalog(), 9), forged, first):
        answer = await link.request(OfferCatalog(catalog=offer))
        assert answer.serial == 2
    await events.first(PartyCatalogRefused, lambda e: e.reason == "stale")
    other_code = party_code(public_key_bytes(other_key))
    assert [(e.peer_id, e.reason, e.detail) for e in events.of(PartyCatalogRefused)] == [
        (
            mallory.peer_id,
            "wrong-key",
            f"catalog signed by party {other_code}, not by party {CODE}",
        ),
        (
            mallory.peer_id,
            "bad-signature",
            "catalog serial 3: the signature does not verify (altered or forged)",
        ),
        (mallory.peer_id, "stale", "catalog serial 1 is not newer than the held serial 2"),
    ]
    assert alpha.party.catalog == held
    assert events.of(PartyCatalogAdopted) == []


async def test_peer_outside_any_party_ignores_catalogs(
    start_runtime: Start, tmp_path: Path
) -> None:
    """A peer started without a party code adopts nothing and keeps today's behaviour."""
    organize(tmp_path / "org" / "state")
    org, alpha = await peers(start_runtime, "org", "alpha", party_code=None)
    link = await org.network.link(alpha.peer_id)
    answer = await link.request(OfferCatalog(catalog=sign_catalog(PARTY_KEY, PartyCatalog(), 5)))
    assert answer.serial == 0
    assert alpha.party.catalog is None
    assert org.party.catalog is None


async def test_two_parties_on_one_network_never_link(start_runtime: Start, tmp_path: Path) -> None:
    """Alpha and bravo share a party code, charlie has another's and dave none: a connect
    across parties is refused in either direction, by a party's listener (the dialer
    proved nothing for its code) or by a party's dialer (dave's listener proved nothing),
    and no party member records a peer of another party."""
    other_code = party_code(public_key_bytes(Ed25519PrivateKey.generate()))
    alpha, bravo = await peers(start_runtime, "alpha", "bravo", party_code=CODE)
    charlie = await start_runtime("charlie", party_code=other_code)
    dave = await start_runtime("dave")
    assert bravo.peer_id in alpha.network.known_peers()
    for dialer, listener in ((charlie, alpha), (dave, alpha)):
        with pytest.raises(PeerRefused) as caught:
            await dialer.execute(Connect(addr=listener.listen_addr))
        assert str(caught.value) == f"Unauthorized: {NOT_A_MEMBER}"
    for listener, refusal in ((charlie, NOT_A_MEMBER), (dave, LISTENER_NOT_A_MEMBER)):
        with pytest.raises(PeerRefused) as caught:
            await alpha.execute(Connect(addr=listener.listen_addr))
        assert str(caught.value) == f"Unauthorized: {refusal}"
    assert alpha.network.known_peers() == {bravo.peer_id}
    assert charlie.network.known_peers() == frozenset()
