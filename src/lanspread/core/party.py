"""Party mode: the organizer's signed catalog pins content (design decision 11).

Theory of operation
-------------------
Identities cost nothing, so a vote among peers proves nothing: two throwaway peer
ids outvote one honest player, and the newest version one peer announces is just
a claim. At a party, one person is trusted for content: the **organizer**, who
holds an Ed25519 **party key**.

* **Party code.** Players join with a short code derived from the party key's raw
  public key (:func:`party_code`): the first :data:`PARTY_CODE_BITS` bits of its
  SHA-256 in Crockford base32, grouped by four (``7KQ2-M9XD-...``). A peer
  accepts only catalogs whose public key hashes to its code.
* **Pins.** The organizer hashes a reference copy of a game with the ordinary
  manifest builder and records ``(game, version) -> manifest digest``
  (:class:`Pin`) in the :class:`PartyCatalog`.
* **Signed catalog.** :class:`SignedCatalog` carries the catalog, a serial number,
  the party public key and an Ed25519 signature over :func:`signing_payload` (a
  context string, then the canonical MessagePack of serial, key and catalog; pins
  are strictly sorted, so equal catalogs give equal bytes). :func:`check_catalog`
  decides whether a peer adopts one: the key must match the code, the signature
  must verify, and the serial must be higher than the one held. A newer catalog
  spreads peer to peer, so the organizer can pin a game mid-party.
* **Content.** For a pinned version, a source is usable iff its manifest digest
  equals the pin, whatever the number of sources offering something else
  (:func:`check_pin`). A game with pins offers only pinned versions for download
  (:func:`restrict_to_pins`). An unpinned version whose sources differ is a
  conflict the player resolves (``core/conflict``), never a majority vote.

Everything here is pure: no files, no sockets, no clock. Signing and verifying
are computations on bytes handed in.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lanspread.core.catalog import is_valid_game_id
from lanspread.core.codec import decode_bounded
from lanspread.core.gameroot import version_sort_key
from lanspread.core.library import GameId, Version
from lanspread.core.manifest import GameManifest, manifest_digest
from lanspread.core.peerdb import RemoteGameView
from lanspread.errors import PartyError

# Forgery bound. Anyone can make Ed25519 keys for free; a forger needs one whose
# SHA-256 starts with the same 100 bits as the party's, a second preimage on a
# truncated hash: about 2**100 key generations and hashes (the birthday bound does
# not help, the target is fixed). At 10**12 attempts a second, far beyond any
# GPU farm a party guest has, that is 1.3 * 10**18 s, about 4 * 10**10 years. 80
# bits would still take ~38,000 years at that rate; 100 bits keeps the margin
# against faster hardware and costs only four more characters to type (20 in all).
PARTY_CODE_BITS: Final = 100
_CODE_CHARS: Final = PARTY_CODE_BITS // 5
# Groups of four characters read and type without losing one's place.
_CODE_GROUP: Final = 4
CROCKFORD_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Crockford's decoding: case-insensitive, I and L read as 1, O as 0.
_DECODE_ALIASES: Final = {"I": "1", "L": "1", "O": "0"}

PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
DIGEST_HEX_LENGTH: Final = 64
"""Hex characters of a manifest digest (BLAKE3, 32 bytes)."""
# A party catalog is a handful of pins per game of a LAN-party catalog (which is
# bounded by MAX_CATALOG_GAMES); 20,000 pins covers two versions of ten thousand
# games and bounds what a stranger's catalog can make us hold.
MAX_PINS: Final = 20_000
# One pin encodes to at most 392 bytes (a 64-byte id, a version of 64 four-byte
# UTF-8 characters, a 64-hex digest and their headers): 20,000 pins are under
# 7.9 MB, and the signature, key and serial add under 200 bytes. The bound fits a
# wire frame (MAX_FRAME_SIZE, over 16 MiB); tests/net/test_wire.py encodes it.
MAX_SIGNED_CATALOG_SIZE: Final = 8 * 1024 * 1024
# Serials count signings; 2**53 keeps them exact in every JSON reader too.
MAX_SERIAL: Final = 2**53

_SIGNING_CONTEXT: Final = b"lanspread party catalog\x00"

DigestHex = Annotated[
    str,
    msgspec.Meta(pattern=rf"^[0-9a-f]{{{DIGEST_HEX_LENGTH}}}$"),
]
Serial = Annotated[int, msgspec.Meta(ge=1, le=MAX_SERIAL)]


class Pin(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """One pinned version: the manifest digest its content must have."""

    game_id: GameId
    version: Version
    digest: DigestHex
    """Hex BLAKE3 of the canonical manifest (``core.manifest.manifest_digest``)."""


class PartyCatalog(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The organizer's pins, strictly sorted by game id, then version."""

    pins: Annotated[tuple[Pin, ...], msgspec.Meta(max_length=MAX_PINS)] = ()


class SignedCatalog(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A party catalog as it travels and is stored: signed by the party key."""

    catalog: PartyCatalog
    serial: Serial
    """Higher is newer; a peer adopts only a catalog newer than the one it holds."""
    public_key: Annotated[
        bytes, msgspec.Meta(min_length=PUBLIC_KEY_SIZE, max_length=PUBLIC_KEY_SIZE)
    ]
    """The party's raw Ed25519 public key; its SHA-256 prefix is the party code."""
    signature: Annotated[bytes, msgspec.Meta(min_length=SIGNATURE_SIZE, max_length=SIGNATURE_SIZE)]
    """Ed25519 over :func:`signing_payload`."""


# --- party code -------------------------------------------------------------------------


def party_code(public_key: bytes) -> str:
    """The code players type: SHA-256 prefix of the raw public key, Crockford base32."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise PartyError(f"a party key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    digest = int.from_bytes(hashlib.sha256(public_key).digest(), "big")
    prefix = digest >> (256 - PARTY_CODE_BITS)
    chars = [
        CROCKFORD_ALPHABET[(prefix >> (5 * (_CODE_CHARS - 1 - i))) & 31] for i in range(_CODE_CHARS)
    ]
    return _group("".join(chars))


def _group(chars: str) -> str:
    return "-".join(chars[i : i + _CODE_GROUP] for i in range(0, len(chars), _CODE_GROUP))


def parse_party_code(text: str) -> str:
    """The canonical form of a typed code; :class:`PartyError` when it is not one.

    Case, spaces and dashes do not matter; I and L read as 1, O as 0 (Crockford).
    """
    chars = "".join(_DECODE_ALIASES.get(char, char) for char in text.upper() if char not in "- \t")
    if len(chars) != _CODE_CHARS:
        raise PartyError(
            f"a party code has {_CODE_CHARS} characters (like {_group('7KQ2' * 5)}), "
            f"got {len(chars)}"
        )
    for char in chars:
        if char not in CROCKFORD_ALPHABET:
            raise PartyError(f"a party code cannot contain {char!r}")
    return _group(chars)


def key_matches_code(public_key: bytes, code: str) -> bool:
    """True when ``public_key`` is the key the (canonical) ``code`` names."""
    return len(public_key) == PUBLIC_KEY_SIZE and party_code(public_key) == code


# --- the catalog --------------------------------------------------------------------------


def check_party_catalog(catalog: PartyCatalog) -> None:
    """Raise :class:`PartyError` unless the pins are valid and strictly sorted."""
    previous: tuple[str, str] | None = None
    for pin in catalog.pins:
        if not is_valid_game_id(pin.game_id):
            raise PartyError(f"pin of {pin.game_id!r}: invalid game id")
        key = (pin.game_id, pin.version)
        if previous is not None and key <= previous:
            raise PartyError(
                f"pin of {pin.game_id} {pin.version} is out of order or repeated "
                f"(after {previous[0]} {previous[1]})"
            )
        previous = key


def with_pin(catalog: PartyCatalog, pin: Pin) -> PartyCatalog:
    """``catalog`` with ``pin`` added, or replacing the pin of the same game version."""
    others = [p for p in catalog.pins if (p.game_id, p.version) != (pin.game_id, pin.version)]
    return PartyCatalog(pins=tuple(sorted([*others, pin], key=lambda p: (p.game_id, p.version))))


def pins_for(catalog: PartyCatalog | None, game_id: str) -> Mapping[str, str]:
    """``version -> digest`` of the pins of ``game_id`` (empty without a catalog)."""
    if catalog is None:
        return {}
    return {pin.version: pin.digest for pin in catalog.pins if pin.game_id == game_id}


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(SignedCatalog)


def signing_payload(catalog: PartyCatalog, serial: int, public_key: bytes) -> bytes:
    """The bytes the party key signs: context, then canonical (serial, key, catalog)."""
    return _SIGNING_CONTEXT + _ENCODER.encode((serial, public_key, catalog))


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_catalog(key: Ed25519PrivateKey, catalog: PartyCatalog, serial: int) -> SignedCatalog:
    """Sign ``catalog`` as number ``serial`` with the party key."""
    check_party_catalog(catalog)
    if not 1 <= serial <= MAX_SERIAL:
        raise PartyError(f"a catalog serial is 1 to {MAX_SERIAL}, got {serial}")
    public_key = public_key_bytes(key)
    signature = key.sign(signing_payload(catalog, serial, public_key))
    return SignedCatalog(catalog=catalog, serial=serial, public_key=public_key, signature=signature)


def encode_signed_catalog(signed: SignedCatalog) -> bytes:
    return _ENCODER.encode(signed)


def decode_signed_catalog(data: bytes | bytearray | memoryview) -> SignedCatalog:
    """Decode (shapes and bounds only); :class:`PartyError` for anything malformed."""
    return decode_bounded(
        _DECODER, data, limit=MAX_SIGNED_CATALOG_SIZE, what="signed catalog", error=PartyError
    )


class Refusal(enum.Enum):
    """Why a signed catalog was not adopted."""

    WRONG_KEY = "wrong-key"
    """Signed by a key that is not this party's."""
    BAD_SIGNATURE = "bad-signature"
    """The signature does not verify: the catalog was altered or forged."""
    MALFORMED = "malformed"
    """The pins break the catalog rules (order, ids)."""
    STALE = "stale"
    """Not newer than the catalog held: a replay of an older signing."""


class CatalogRefused(PartyError):
    """A signed catalog was refused; ``reason`` says which rule it broke."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Verdict(enum.Enum):
    ADOPT = "adopt"
    """Valid and newer: adopt it, store it, pass it on."""
    HELD = "held"
    """Exactly the catalog held already: nothing to do."""


def check_catalog(signed: SignedCatalog, code: str, held: SignedCatalog | None) -> Verdict:
    """Whether a peer of party ``code`` holding ``held`` adopts ``signed``.

    Raises :class:`CatalogRefused` for a wrong key, a bad signature, malformed pins or
    a serial that is not higher than the held one (a different catalog under the
    held serial is refused as well: a serial names one signing).
    """
    if held is not None and signed == held:
        return Verdict.HELD
    if not key_matches_code(signed.public_key, code):
        raise CatalogRefused(
            Refusal.WRONG_KEY,
            f"catalog signed by party {party_code(signed.public_key)}, not by party {code}",
        )
    try:
        Ed25519PublicKey.from_public_bytes(signed.public_key).verify(
            signed.signature,
            signing_payload(signed.catalog, signed.serial, signed.public_key),
        )
    except InvalidSignature:
        raise CatalogRefused(
            Refusal.BAD_SIGNATURE,
            f"catalog serial {signed.serial}: the signature does not verify (altered or forged)",
        ) from None
    try:
        check_party_catalog(signed.catalog)
    except PartyError as exc:
        raise CatalogRefused(Refusal.MALFORMED, f"catalog serial {signed.serial}: {exc}") from exc
    if held is not None and signed.serial <= held.serial:
        raise CatalogRefused(
            Refusal.STALE,
            f"catalog serial {signed.serial} is not newer than the held serial {held.serial}",
        )
    return Verdict.ADOPT


# --- content decisions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinRejection:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class PinDecision:
    """The result of :func:`check_pin`."""

    usable: Mapping[str, GameManifest]
    """The sources whose manifest is exactly the pinned one, with that manifest."""
    rejected: tuple[PinRejection, ...]
    """Every other source and why, sorted by source."""


def check_pin(
    game_id: str,
    version: str,
    pinned_digest: str,
    offered: Mapping[str, GameManifest],
    *,
    authority: str = "the party catalog pins",
) -> PinDecision:
    """Split the offered manifests of a pinned version into usable and rejected.

    A source is usable iff its manifest's digest equals the pin: how many sources
    offer another manifest never matters. The caller fails the download when
    ``usable`` is empty (see :func:`pinned_failure`). ``authority`` says who vouches
    for the digest (the party catalog, or the player's choice in a conflict).
    """
    usable: dict[str, GameManifest] = {}
    rejected: list[PinRejection] = []
    for source in sorted(offered):
        manifest = offered[source]
        if manifest.game_id != game_id or manifest.version != version:
            rejected.append(
                PinRejection(
                    source,
                    f"offered {manifest.game_id} {manifest.version}, not the pinned "
                    f"{game_id} {version}",
                )
            )
        elif manifest_digest(manifest) != pinned_digest:
            rejected.append(
                PinRejection(
                    source,
                    f"its {game_id} {version} differs from the content {authority}",
                )
            )
        else:
            usable[source] = manifest
    return PinDecision(usable=usable, rejected=tuple(rejected))


def pinned_failure(game_id: str, version: str, offered: int) -> str:
    """What the player reads when no source has the pinned content."""
    return (
        f"none of the {offered} peers offering {game_id} {version} has the content the "
        "party catalog pins; not downloading"
    )


def restrict_to_pins(view: RemoteGameView, pinned: Mapping[str, str]) -> RemoteGameView:
    """The view of a game as a party member sees it: only pinned versions count.

    Without pins the view is unchanged. With pins, the latest version is the newest
    pinned version a ready peer offers; a newer unpinned one (anyone can announce
    "9.9") is no update and no source.
    """
    if not pinned:
        return view
    ready = {peer: view.peers[peer] for peer in view.ready_peers}
    offered = {summary.version for summary in ready.values() if summary.version in pinned}
    latest = max(
        offered, key=lambda version: (version_sort_key(version), version or ""), default=None
    )
    return RemoteGameView(
        game_id=view.game_id,
        peers=view.peers,
        ready_peers=view.ready_peers,
        latest_version=latest,
        sources_at_latest=tuple(
            peer
            for peer, summary in ready.items()
            if latest is not None and summary.version == latest
        ),
    )


def unpinned_offers(view: RemoteGameView, pinned: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``(peer, version)`` of ready peers offering a version of a pinned game that no
    pin names, sorted by peer: reported, never used."""
    if not pinned:
        return ()
    return tuple(
        (peer, view.peers[peer].version or "?")
        for peer in view.ready_peers
        if view.peers[peer].version not in pinned
    )
