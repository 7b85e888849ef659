"""Party mode's pure rules: the party code, signed catalogs and pinned content."""

from __future__ import annotations

import hashlib
from types import MappingProxyType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from tests.core.test_manifest import entry, make_manifest

from lanspread.core.library import Availability, GameSummary
from lanspread.core.manifest import GameManifest, manifest_digest
from lanspread.core.party import (
    CROCKFORD_ALPHABET,
    MAX_SIGNED_CATALOG_SIZE,
    PARTY_CODE_BITS,
    CatalogRefused,
    PartyCatalog,
    Pin,
    PinRejection,
    Refusal,
    SignedCatalog,
    Verdict,
    check_catalog,
    check_party_catalog,
    check_pin,
    decode_signed_catalog,
    encode_signed_catalog,
    key_matches_code,
    parse_party_code,
    party_code,
    pinned_failure,
    pins_for,
    public_key_bytes,
    restrict_to_pins,
    sign_catalog,
    signing_payload,
    unpinned_offers,
    with_pin,
)
from lanspread.core.peerdb import RemoteGameView
from lanspread.errors import PartyError

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
CODE = party_code(public_key_bytes(KEY))

HONEST = make_manifest(entry("a.eti", 10, salt="honest"))
GARBAGE = make_manifest(entry("a.eti", 10, salt="garbage"))
PIN = Pin(game_id="quake3", version="1.0", digest=manifest_digest(HONEST))
CATALOG = PartyCatalog(pins=(PIN,))


# --- party code -------------------------------------------------------------------------


def test_code_is_the_sha256_prefix_in_crockford_base32() -> None:
    """The code is the first 100 bits of SHA-256 of the raw key, 20 characters in 5 groups."""
    raw = public_key_bytes(KEY)
    prefix = int.from_bytes(hashlib.sha256(raw).digest(), "big") >> (256 - PARTY_CODE_BITS)
    chars = "".join(CROCKFORD_ALPHABET[(prefix >> (5 * (19 - i))) & 31] for i in range(20))
    assert "-".join(chars[i : i + 4] for i in range(0, 20, 4)) == CODE
    assert len(CODE) == 24
    assert key_matches_code(raw, CODE)
    assert not key_matches_code(public_key_bytes(OTHER_KEY), CODE)


def test_typed_code_is_read_leniently() -> None:
    """Case, dashes and spaces do not matter; I and L read as 1 and O as 0."""
    typed = CODE.lower().replace("-", " ")
    assert parse_party_code(typed) == CODE
    assert parse_party_code("OIL0-0000-0000-0000-0000") == "0110-0000-0000-0000-0000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7KQ2-M9XD", "a party code has 20 characters (like 7KQ2-7KQ2-7KQ2-7KQ2-7KQ2), got 8"),
        ("7KQ2-M9XD-7KQ2-M9XD-7KQU", "a party code cannot contain 'U'"),
        ("7KQ2-M9XD-7KQ2-M9XD-7KQ!", "a party code cannot contain '!'"),
    ],
)
def test_malformed_code_is_refused(text: str, message: str) -> None:
    """A code of the wrong length or with a letter outside the alphabet is refused."""
    with pytest.raises(PartyError) as caught:
        parse_party_code(text)
    assert str(caught.value) == message


def test_code_of_a_key_of_the_wrong_size_is_an_error() -> None:
    """Only a raw 32-byte Ed25519 key has a party code."""
    with pytest.raises(PartyError) as caught:
        party_code(b"short")
    assert str(caught.value) == "a party key is 32 bytes, got 5"


@given(st.binary(min_size=32, max_size=32))
def test_every_code_parses_to_itself(raw: bytes) -> None:
    """Any key's code is already canonical."""
    code = party_code(raw)
    assert parse_party_code(code) == code


# --- signing and checking ---------------------------------------------------------------


def test_signed_catalog_is_adopted_and_round_trips() -> None:
    """A catalog signed by the party key is adopted; encoding and decoding keep it."""
    signed = sign_catalog(KEY, CATALOG, 1)
    assert decode_signed_catalog(encode_signed_catalog(signed)) == signed
    assert check_catalog(signed, CODE, None) is Verdict.ADOPT
    newer = sign_catalog(KEY, CATALOG, 2)
    assert check_catalog(newer, CODE, signed) is Verdict.ADOPT


def test_the_held_catalog_is_held() -> None:
    """Receiving the very catalog held already changes nothing and raises nothing."""
    signed = sign_catalog(KEY, CATALOG, 3)
    assert check_catalog(signed, CODE, signed) is Verdict.HELD


def _refusal(signed: SignedCatalog, held: SignedCatalog | None = None) -> CatalogRefused:
    with pytest.raises(CatalogRefused) as caught:
        check_catalog(signed, CODE, held)
    return caught.value


def test_catalog_of_another_key_is_refused() -> None:
    """A validly signed catalog of another party key is refused, naming both codes."""
    refused = _refusal(sign_catalog(OTHER_KEY, CATALOG, 9))
    assert refused.reason is Refusal.WRONG_KEY
    other = party_code(public_key_bytes(OTHER_KEY))
    assert str(refused) == f"catalog signed by party {other}, not by party {CODE}"


def test_altered_catalog_is_refused() -> None:
    """Changing a pin after signing breaks the signature."""
    signed = sign_catalog(KEY, CATALOG, 1)
    forged_pin = Pin(game_id="quake3", version="1.0", digest=manifest_digest(GARBAGE))
    forged = SignedCatalog(
        catalog=PartyCatalog(pins=(forged_pin,)),
        serial=signed.serial,
        public_key=signed.public_key,
        signature=signed.signature,
    )
    refused = _refusal(forged)
    assert refused.reason is Refusal.BAD_SIGNATURE
    assert str(refused) == ("catalog serial 1: the signature does not verify (altered or forged)")


def test_raised_serial_without_signing_is_refused() -> None:
    """The serial is signed too: bumping it to win against a held catalog fails."""
    signed = sign_catalog(KEY, CATALOG, 1)
    bumped = SignedCatalog(
        catalog=signed.catalog,
        serial=99,
        public_key=signed.public_key,
        signature=signed.signature,
    )
    assert _refusal(bumped).reason is Refusal.BAD_SIGNATURE


def test_signature_of_another_key_under_the_party_key_is_refused() -> None:
    """Another key's signature presented with the party's public key does not verify."""
    theirs = sign_catalog(OTHER_KEY, CATALOG, 1)
    forged = SignedCatalog(
        catalog=CATALOG, serial=1, public_key=public_key_bytes(KEY), signature=theirs.signature
    )
    assert _refusal(forged).reason is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize("serial", [1, 5])
def test_replayed_older_or_equal_serial_is_refused(serial: int) -> None:
    """An older signing (or another catalog under the held serial) is refused as stale."""
    held = sign_catalog(KEY, PartyCatalog(), 5)
    refused = _refusal(sign_catalog(KEY, CATALOG, serial), held)
    assert refused.reason is Refusal.STALE
    assert str(refused) == f"catalog serial {serial} is not newer than the held serial 5"


def test_malformed_pins_are_refused_even_when_signed() -> None:
    """Unsorted pins would make the encoding ambiguous; a signed one is still refused."""
    pins = (Pin("quake3", "2.0", PIN.digest), Pin("quake3", "1.0", PIN.digest))
    with pytest.raises(PartyError) as caught:
        sign_catalog(KEY, PartyCatalog(pins=pins), 1)
    assert str(caught.value) == ("pin of quake3 1.0 is out of order or repeated (after quake3 2.0)")
    public = public_key_bytes(KEY)
    unsorted = SignedCatalog(
        catalog=PartyCatalog(pins=pins),
        serial=1,
        public_key=public,
        signature=KEY.sign(signing_payload(PartyCatalog(pins=pins), 1, public)),
    )
    refused = _refusal(unsorted)
    assert refused.reason is Refusal.MALFORMED
    assert str(refused) == (
        "catalog serial 1: pin of quake3 1.0 is out of order or repeated (after quake3 2.0)"
    )


def test_serial_out_of_range_cannot_be_signed() -> None:
    """Serials start at 1."""
    with pytest.raises(PartyError) as caught:
        sign_catalog(KEY, CATALOG, 0)
    assert str(caught.value) == f"a catalog serial is 1 to {2**53}, got 0"


def test_oversized_or_malformed_signed_catalog_is_refused() -> None:
    """Decoding is bounded and fails only with PartyError."""
    with pytest.raises(PartyError) as caught:
        decode_signed_catalog(b"\x00" * (MAX_SIGNED_CATALOG_SIZE + 1))
    assert str(caught.value) == (
        f"signed catalog of {MAX_SIGNED_CATALOG_SIZE + 1} bytes exceeds the limit of "
        f"{MAX_SIGNED_CATALOG_SIZE}"
    )
    with pytest.raises(PartyError, match=r"^malformed signed catalog: "):
        decode_signed_catalog(b"\xc1")


@given(st.binary(max_size=256))
def test_decoding_any_bytes_fails_only_with_party_error(data: bytes) -> None:
    """Any byte sequence decodes or raises PartyError, never anything else."""
    decoded: SignedCatalog | PartyError
    try:
        decoded = decode_signed_catalog(data)
    except PartyError as exc:
        decoded = exc
    assert isinstance(decoded, SignedCatalog | PartyError)


def test_with_pin_adds_and_replaces_in_order() -> None:
    """Pinning keeps pins sorted and replaces the pin of the same game version."""
    catalog = with_pin(PartyCatalog(), Pin("quake3", "2.0", PIN.digest))
    catalog = with_pin(catalog, Pin("doom", "1.9", PIN.digest))
    catalog = with_pin(catalog, PIN)
    replaced = Pin("quake3", "1.0", manifest_digest(GARBAGE))
    catalog = with_pin(catalog, replaced)
    assert [(p.game_id, p.version, p.digest) for p in catalog.pins] == [
        ("doom", "1.9", PIN.digest),
        ("quake3", "1.0", replaced.digest),
        ("quake3", "2.0", PIN.digest),
    ]
    check_party_catalog(catalog)
    assert pins_for(catalog, "quake3") == {"1.0": replaced.digest, "2.0": PIN.digest}
    assert pins_for(None, "quake3") == {}


# --- pinned content ---------------------------------------------------------------------


def test_pinned_content_wins_against_any_number_of_others() -> None:
    """One honest source against two Sybils with other content: only the honest is usable."""
    decision = check_pin(
        "quake3", "1.0", PIN.digest, {"honest": HONEST, "sybil1": GARBAGE, "sybil2": GARBAGE}
    )
    assert dict(decision.usable) == {"honest": HONEST}
    reason = "its quake3 1.0 differs from the content the party catalog pins"
    assert decision.rejected == (
        PinRejection("sybil1", reason),
        PinRejection("sybil2", reason),
    )


def test_only_contradicting_sources_leave_nothing_usable() -> None:
    """When every source contradicts the pin, nothing is usable and the message is plain."""
    decision = check_pin("quake3", "1.0", PIN.digest, {"liar": GARBAGE})
    assert dict(decision.usable) == {}
    assert [item.source for item in decision.rejected] == ["liar"]
    assert pinned_failure("quake3", "1.0", 1) == (
        "none of the 1 peers offering quake3 1.0 has the content the party catalog pins; "
        "not downloading"
    )


def test_manifest_of_another_version_is_rejected() -> None:
    """A manifest naming another game or version than the pinned one is never used."""
    other: GameManifest = make_manifest(entry("a.eti", 10, salt="honest"), version="9.9")
    decision = check_pin("quake3", "1.0", PIN.digest, {"liar": other, "honest": HONEST})
    assert dict(decision.usable) == {"honest": HONEST}
    assert decision.rejected == (
        PinRejection("liar", "offered quake3 9.9, not the pinned quake3 1.0"),
    )


def test_all_matching_sources_are_usable() -> None:
    """Every source with the pinned manifest is usable; none is rejected."""
    decision = check_pin("quake3", "1.0", PIN.digest, {"a": HONEST, "b": HONEST})
    assert set(decision.usable) == {"a", "b"}
    assert decision.rejected == ()


def _summary(version: str, availability: Availability = Availability.READY) -> GameSummary:
    return GameSummary(
        id="quake3", availability=availability, version=version, installed=False, size_bytes=1
    )


def _view(**versions: str) -> RemoteGameView:
    peers = {peer: _summary(version) for peer, version in sorted(versions.items())}
    latest = max(versions.values())
    return RemoteGameView(
        game_id="quake3",
        peers=MappingProxyType(peers),
        ready_peers=tuple(peers),
        latest_version=latest,
        sources_at_latest=tuple(p for p, v in sorted(versions.items()) if v == latest),
    )


def test_unpinned_newer_version_is_no_update() -> None:
    """A peer announcing 9.9 of a pinned game is neither the latest nor a source."""
    view = _view(honest="1.0", liar="9.9")
    pinned = {"1.0": PIN.digest}
    restricted = restrict_to_pins(view, pinned)
    assert restricted.latest_version == "1.0"
    assert restricted.sources_at_latest == ("honest",)
    assert unpinned_offers(view, pinned) == (("liar", "9.9"),)


def test_newest_pinned_version_is_the_latest() -> None:
    """With two pinned versions offered, the newer one is the latest."""
    view = _view(a="1.0", b="2.0", c="2.0")
    restricted = restrict_to_pins(view, {"1.0": PIN.digest, "2.0": PIN.digest})
    assert restricted.latest_version == "2.0"
    assert restricted.sources_at_latest == ("b", "c")


def test_no_pinned_version_offered_leaves_no_source() -> None:
    """Only unpinned versions on offer: nothing to download."""
    restricted = restrict_to_pins(_view(liar="9.9"), {"1.0": PIN.digest})
    assert restricted.latest_version is None
    assert restricted.sources_at_latest == ()


def test_unpinned_game_view_is_unchanged() -> None:
    """Without pins for the game the majority view stays as it was."""
    view = _view(a="1.0", b="9.9")
    assert restrict_to_pins(view, {}) is view
    assert unpinned_offers(view, {}) == ()


_OFFERS = st.dictionaries(
    st.sampled_from(["p", "q", "r", "s", "t"]),
    st.sampled_from(
        [
            HONEST,
            GARBAGE,
            make_manifest(entry("a.eti", 10, salt="honest"), version="9.9"),
            make_manifest(entry("a.eti", 10, salt="honest"), game_id="doom"),
        ]
    ),
    min_size=1,
)


@given(_OFFERS)
def test_usable_sources_are_exactly_the_pinned_manifest(offered: dict[str, GameManifest]) -> None:
    """Whatever the mix and count of offers: usable iff the manifest is the pinned one;
    every other source is rejected exactly once, in source order."""
    decision = check_pin("quake3", "1.0", PIN.digest, offered)
    assert dict(decision.usable) == {s: m for s, m in offered.items() if m == HONEST}
    rejected = [item.source for item in decision.rejected]
    assert rejected == sorted(s for s, m in offered.items() if m != HONEST)
