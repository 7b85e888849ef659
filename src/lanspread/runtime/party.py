"""The party this peer joined: its code, the signed catalog held, and adoption.

Theory of operation
-------------------
A peer started with a party code holds at most one signed catalog, the newest the
party key signed that it has seen. Catalogs arrive from three places, and every
one goes through the same check (``core.party.check_catalog``):

* the state folder at start (``party/catalog.signed``, kept from the last run);
* the same file when it changes on disk: the organizer ran ``lanspread catalog
  sign`` while the app runs (:meth:`PartyService.watch` polls its size and mtime);
* a peer's :class:`~lanspread.net.wire.OfferCatalog` over TLS.

An adopted catalog is stored, announced (``PartyCatalogAdopted``) and handed to the
listeners (the network offers it to every peer). A refused one is logged with its
reason and announced (``CatalogRefused``); nothing else changes. A peer in no
party ignores offers: it answers them and adopts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from lanspread.core.party import (
    CatalogRefused,
    SignedCatalog,
    Verdict,
    check_catalog,
    pins_for,
)
from lanspread.errors import LanspreadError, PartyError, StorageError
from lanspread.runtime.events import Event, PartyCatalogAdopted, PartyCatalogRefused
from lanspread.storage import party_files

log = logging.getLogger(__name__)

# How often the signed catalog file is checked for a new signing by the organizer:
# a stat every few seconds costs nothing, and a pin reaches the party in seconds.
CATALOG_POLL_INTERVAL = 3.0

LOCAL_SOURCE = "local"
"""The ``source`` of a catalog read from this peer's own state folder."""


class PartyService:
    def __init__(self, code: str | None, state_dir: Path, publish: Callable[[Event], None]) -> None:
        self._code = code
        self._state_dir = state_dir
        self._publish = publish
        self._held: SignedCatalog | None = None
        self._stamp: tuple[int, int] | None = None
        self._listeners: list[Callable[[SignedCatalog], None]] = []
        self._writing = asyncio.Lock()

    @property
    def code(self) -> str | None:
        return self._code

    @property
    def catalog(self) -> SignedCatalog | None:
        """The adopted signed catalog, if any."""
        return self._held

    def pins(self, game_id: str) -> Mapping[str, str]:
        """``version -> manifest digest`` pinned for ``game_id`` (empty: not pinned)."""
        return pins_for(None if self._held is None else self._held.catalog, game_id)

    def add_adopted_listener(self, listener: Callable[[SignedCatalog], None]) -> None:
        self._listeners.append(listener)

    # -- arrivals ------------------------------------------------------------

    async def load(self) -> None:
        """Adopt the catalog stored in the state folder, if valid for this party."""
        if self._code is None:
            return
        try:
            self._stamp = await asyncio.to_thread(party_files.signed_stamp, self._state_dir)
            stored = await asyncio.to_thread(party_files.load_signed, self._state_dir)
        except (PartyError, StorageError) as exc:
            log.warning("ignoring the stored party catalog: %s", exc)
            return
        if stored is not None:
            await self.offer(stored, LOCAL_SOURCE)

    async def offer(self, signed: SignedCatalog, source: str) -> bool:
        """Check ``signed`` (from a peer id, or :data:`LOCAL_SOURCE`); True when adopted."""
        if self._code is None:
            return False
        try:
            verdict = check_catalog(signed, self._code, self._held)
        except CatalogRefused as exc:
            log.warning("refused a party catalog from %s: %s", source, exc)
            self._publish(
                PartyCatalogRefused(peer_id=source, reason=exc.reason.value, detail=str(exc))
            )
            return False
        if verdict is Verdict.HELD:
            return False
        self._held = signed  # before any await: a concurrent offer compares with it
        log.info(
            "adopted party catalog serial %d (%d pins) from %s",
            signed.serial,
            len(signed.catalog.pins),
            source,
        )
        if source != LOCAL_SOURCE:
            await self._store()
        self._publish(
            PartyCatalogAdopted(serial=signed.serial, pins=len(signed.catalog.pins), source=source)
        )
        for listener in self._listeners:
            listener(signed)
        return True

    async def _store(self) -> None:
        """Write the held catalog (the newest, whichever offer runs this) for the next start."""
        async with self._writing:
            held = self._held
            if held is None:
                return
            try:
                await asyncio.to_thread(party_files.save_signed, self._state_dir, held)
                self._stamp = await asyncio.to_thread(party_files.signed_stamp, self._state_dir)
            except LanspreadError as exc:
                log.warning("cannot keep the party catalog for the next start: %s", exc)

    async def watch(self) -> None:
        """The ``party`` service: adopt a catalog the organizer signs while we run."""
        while True:
            await asyncio.sleep(CATALOG_POLL_INTERVAL)
            await self.check_file()

    async def check_file(self) -> None:
        """Re-read the signed catalog file when its size or mtime changed."""
        if self._code is None:
            return
        try:
            stamp = await asyncio.to_thread(party_files.signed_stamp, self._state_dir)
            if stamp is None or stamp == self._stamp:
                return
            self._stamp = stamp
            stored = await asyncio.to_thread(party_files.load_signed, self._state_dir)
        except (PartyError, StorageError) as exc:
            log.warning("cannot read the party catalog file: %s", exc)
            return
        if stored is not None:
            await self.offer(stored, LOCAL_SOURCE)
