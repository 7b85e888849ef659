"""Manifests: chunk tiling, validation, canonical encoding and majority agreement."""

from __future__ import annotations

import blake3
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanspread.core.agreement import (
    Disagreement,
    DisagreementKind,
    agree_manifests,
    restrict_eligibility,
)
from lanspread.core.gameroot import MAX_VERSION_FILE_SIZE, VERSION_FILE
from lanspread.core.manifest import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MAX_CHUNKS_PER_GAME,
    MAX_COMPONENT_BYTES,
    MAX_FILES_PER_GAME,
    MAX_MANIFEST_ENCODED_SIZE,
    MAX_PATH_BYTES,
    MIN_CHUNK_SIZE,
    TARGET_CHUNKS,
    ChunkDigest,
    FileManifest,
    GameManifest,
    ManifestError,
    check_relative_path,
    chunk_size_for,
    chunk_spans,
    decode_manifest,
    encode_manifest,
    file_digest,
    manifest_digest,
    validate_manifest,
)
from lanspread.errors import ProtocolError

CHUNK = MIN_CHUNK_SIZE
MIB = 1024 * 1024
WHERE = "manifest of 'quake3'"


def fake_digest(*parts: object) -> bytes:
    return blake3.blake3(repr(parts).encode()).digest()


def entry(path: str, size: int, salt: str = "", chunk_size: int = CHUNK) -> FileManifest:
    chunks = tuple(
        ChunkDigest(offset, length, fake_digest(path, offset, salt))
        for offset, length in chunk_spans(size, chunk_size)
    )
    return FileManifest(path=path, size=size, chunks=chunks)


def make_manifest(
    *files: FileManifest,
    game_id: str = "quake3",
    version: str | None = "1.0",
    chunk_size: int = CHUNK,
    sentinel: bool = True,
) -> GameManifest:
    listed = list(files)
    if sentinel and all(file.path != VERSION_FILE for file in listed):
        listed.append(entry(VERSION_FILE, 12, chunk_size=chunk_size))
    return GameManifest(
        game_id=game_id,
        version=version,
        chunk_size=chunk_size,
        files=tuple(sorted(listed, key=lambda file: file.path)),
    )


def raw_manifest(*files: FileManifest, chunk_size: int = CHUNK) -> GameManifest:
    """A manifest with exactly ``files`` in the given order (for rule violations)."""
    return GameManifest(game_id="quake3", version="1.0", chunk_size=chunk_size, files=files)


# --- chunk spans --------------------------------------------------------------------


def test_chunk_spans_of_an_empty_file_is_empty() -> None:
    """A zero-length file has no chunks at all."""
    assert chunk_spans(0, CHUNK) == ()


def test_chunk_spans_last_chunk_is_shorter() -> None:
    """Full chunks come first and the remainder makes a shorter last chunk."""
    assert chunk_spans(2 * CHUNK + 5, CHUNK) == ((0, CHUNK), (CHUNK, CHUNK), (2 * CHUNK, 5))


def test_chunk_spans_exact_multiple_and_small_file() -> None:
    """An exact multiple has only full chunks; a small file is one short chunk."""
    assert chunk_spans(2 * CHUNK, CHUNK) == ((0, CHUNK), (CHUNK, CHUNK))
    assert chunk_spans(7, CHUNK) == ((0, 7),)


@pytest.mark.parametrize(
    ("size", "chunk_size", "message"),
    [
        (-1, CHUNK, "file size must not be negative, got -1"),
        (10, 0, "chunk size must be positive, got 0"),
    ],
)
def test_chunk_spans_rejects_nonsense(size: int, chunk_size: int, message: str) -> None:
    """Negative sizes and non-positive chunk sizes are caller bugs."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        chunk_spans(size, chunk_size)


@settings(deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 1_000))
def test_chunk_spans_tile_the_file(size: int, chunk_size: int) -> None:
    """Spans are contiguous, start at 0, end at size, and only the last may be short."""
    spans = chunk_spans(size, chunk_size)
    position = 0
    for index, (offset, length) in enumerate(spans):
        assert offset == position
        assert 0 < length <= chunk_size
        if index < len(spans) - 1:
            assert length == chunk_size
        position += length
    assert position == size


def test_chunk_size_bounds_are_ordered_and_hold_the_sentinel() -> None:
    """The default lies within bounds and the sentinel always fits one chunk."""
    assert MIN_CHUNK_SIZE <= DEFAULT_CHUNK_SIZE <= MAX_CHUNK_SIZE
    assert MAX_VERSION_FILE_SIZE <= MIN_CHUNK_SIZE


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (0, MIB),
        (47 * MIB, MIB),
        (128 * MIB - 1, MIB),
        (128 * MIB, 2 * MIB),
        (200 * MIB, 2 * MIB),
        (256 * MIB, 4 * MIB),
        (1024 * MIB, 16 * MIB),
        (100 * 1024 * MIB, 16 * MIB),
    ],
)
def test_chunk_size_for_cuts_a_payload_into_the_target_count(total: int, expected: int) -> None:
    """A 200 MiB game gets 2 MiB chunks (100 of them), a 1 GiB one 16 MiB; never below
    1 MiB, never above the default."""
    assert chunk_size_for(total) == expected


def test_chunk_size_for_never_exceeds_the_largest_given() -> None:
    """A cache pinned small (the demo's 1 MiB) keeps its size for a large game too."""
    assert chunk_size_for(1024 * MIB, MIN_CHUNK_SIZE) == MIN_CHUNK_SIZE
    assert chunk_size_for(1024 * MIB, 4 * MIB) == 4 * MIB


@given(st.integers(min_value=0, max_value=2**42))
def test_chunk_size_for_is_the_largest_power_of_two_meeting_the_target(total: int) -> None:
    """A power of two within bounds; at least TARGET_CHUNKS chunks unless at the minimum,
    and twice the size would either miss the target or pass the default."""
    size = chunk_size_for(total)
    assert MIN_CHUNK_SIZE <= size <= DEFAULT_CHUNK_SIZE
    assert size & (size - 1) == 0
    assert size == MIN_CHUNK_SIZE or total >= size * TARGET_CHUNKS
    assert size == DEFAULT_CHUNK_SIZE or total < 2 * size * TARGET_CHUNKS


@pytest.mark.parametrize(
    ("total", "largest", "message"),
    [
        (-1, DEFAULT_CHUNK_SIZE, "cannot choose a chunk size for -1 bytes"),
        (
            0,
            MIN_CHUNK_SIZE - 1,
            f"the largest chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE},"
            f" got {MIN_CHUNK_SIZE - 1}",
        ),
    ],
)
def test_chunk_size_for_rejects_nonsense(total: int, largest: int, message: str) -> None:
    """A negative size or a largest chunk outside the manifest bounds is a programming error."""
    with pytest.raises(ValueError, match="chunk size") as caught:
        chunk_size_for(total, largest)
    assert str(caught.value) == message


# --- validation ---------------------------------------------------------------------


def test_valid_manifest_passes_and_exposes_its_sentinel() -> None:
    """A well-formed manifest validates; its sentinel and totals are recognisable."""
    manifest = make_manifest(entry("a.eti", 3 * CHUNK + 1), entry("data/b.eti", 0))
    validate_manifest(manifest)
    sentinel = manifest.sentinel
    assert sentinel is not None
    assert sentinel.path == VERSION_FILE
    assert sentinel.is_sentinel
    assert not manifest.files[0].is_sentinel
    assert manifest.total_bytes == 3 * CHUNK + 1 + 12
    assert manifest.chunk_count == 4 + 0 + 1
    assert set(manifest.by_path()) == {"a.eti", "data/b.eti", VERSION_FILE}


def test_unknown_version_is_allowed() -> None:
    """A sentinel that names no version still makes a valid manifest (version None)."""
    validate_manifest(make_manifest(entry("a.eti", 5), version=None))


@pytest.mark.parametrize(
    "path",
    [
        "a.eti",
        "data/local/x.eti",
        "local2/x",
        "a/version.ini",
        "Spiel/Übung.eti",
        "with space/a b.eti",
        "console.eti",
        "x" * MAX_COMPONENT_BYTES,
    ],
)
def test_safe_paths_are_accepted(path: str) -> None:
    """Ordinary names, nested reserved-looking names and non-ASCII names are payload."""
    check_relative_path(path)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "unsafe path '': empty"),
        ("/etc/passwd", "unsafe path '/etc/passwd': absolute"),
        ("a/../b", "unsafe path 'a/../b': component '..'"),
        ("../b", "unsafe path '../b': component '..'"),
        ("./a", "unsafe path './a': component '.'"),
        ("a//b", "unsafe path 'a//b': component ''"),
        ("a/", "unsafe path 'a/': component ''"),
        ("a\\b", "unsafe path 'a\\\\b': forbidden character '\\\\'"),
        ("C:x", "unsafe path 'C:x': forbidden character ':'"),
        ("a.eti:stream", "unsafe path 'a.eti:stream': forbidden character ':'"),
        ("a\x00b", "unsafe path 'a\\x00b': forbidden character '\\x00'"),
        ("a\nb", "unsafe path 'a\\nb': forbidden character '\\n'"),
        ("a\x9bb", "unsafe path 'a\\x9bb': forbidden character '\\x9b'"),
        ("local/game.exe", "unsafe path 'local/game.exe': 'local' is reserved"),
        ("LOCAL/game.exe", "unsafe path 'LOCAL/game.exe': 'LOCAL' is reserved"),
        (".lanspread.json", "unsafe path '.lanspread.json': '.lanspread.json' is reserved"),
        (".version.ini.tmp", "unsafe path '.version.ini.tmp': '.version.ini.tmp' is reserved"),
        (".sync/x", "unsafe path '.sync/x': '.sync' is reserved"),
        ("local./x", "unsafe path 'local./x': 'local.' ends with a dot or space"),
        ("a /b", "unsafe path 'a /b': 'a ' ends with a dot or space"),
        ("con", "unsafe path 'con': 'con' is a Windows device name"),
        ("dir/NUL.txt", "unsafe path 'dir/NUL.txt': 'NUL.txt' is a Windows device name"),
        ("com1.eti", "unsafe path 'com1.eti': 'com1.eti' is a Windows device name"),
        ("a\udcffb", "unsafe path 'a\\udcffb': not valid UTF-8"),
        (
            "y" * (MAX_COMPONENT_BYTES + 1),
            f"unsafe path '{'y' * (MAX_COMPONENT_BYTES + 1)}': a component exceeds "
            f"{MAX_COMPONENT_BYTES} bytes",
        ),
    ],
)
def test_unsafe_paths_are_refused(path: str, message: str) -> None:
    """Traversal, absolute, Windows-special and reserved paths are refused by name."""
    with pytest.raises(ManifestError) as caught:
        check_relative_path(path)
    assert str(caught.value) == message


def test_overlong_path_is_refused() -> None:
    """A path over MAX_PATH_BYTES (counted in UTF-8 bytes) is refused."""
    path = "/".join(["ü" * 100] * 6)  # 200 bytes a component, 1205 bytes in all
    with pytest.raises(ManifestError) as caught:
        check_relative_path(path)
    assert str(caught.value) == (
        f"unsafe path {path[:64]!r}...: 1205 bytes exceeds {MAX_PATH_BYTES}"
    )


def test_manifest_error_is_a_protocol_error() -> None:
    """A bad manifest from a peer is a remote protocol violation."""
    assert issubclass(ManifestError, ProtocolError)


def assert_invalid(manifest: GameManifest, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        validate_manifest(manifest)
    assert str(caught.value) == message


def test_invalid_game_id_is_refused() -> None:
    """The game id must be catalog-shaped."""
    manifest = make_manifest(game_id="../etc")
    assert_invalid(manifest, "manifest of '../etc': invalid game id")


def test_overlong_version_is_refused() -> None:
    """A version longer than a sentinel may declare is refused."""
    assert_invalid(make_manifest(version="v" * 65), f"{WHERE}: version must be 1 to 64 characters")


@pytest.mark.parametrize("chunk_size", [MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1])
def test_chunk_size_out_of_range_is_refused(chunk_size: int) -> None:
    """Chunk sizes outside [MIN_CHUNK_SIZE, MAX_CHUNK_SIZE] are refused."""
    manifest = make_manifest(chunk_size=chunk_size)
    assert_invalid(
        manifest,
        f"{WHERE}: chunk size {chunk_size} is outside [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]",
    )


def test_too_many_files_is_refused() -> None:
    """More than MAX_FILES_PER_GAME files are refused before any path is examined."""
    files = tuple(entry(f"f{index:05}", 0) for index in range(MAX_FILES_PER_GAME + 1))
    assert_invalid(
        raw_manifest(*files),
        f"{WHERE}: {MAX_FILES_PER_GAME + 1} files exceed the limit of {MAX_FILES_PER_GAME}",
    )


def test_too_many_chunks_is_refused() -> None:
    """More than MAX_CHUNKS_PER_GAME chunks in all are refused."""
    big = entry("big.eti", MAX_CHUNKS_PER_GAME * CHUNK)
    manifest = make_manifest(big)
    assert_invalid(
        manifest,
        f"{WHERE}: {MAX_CHUNKS_PER_GAME + 1} chunks exceed the limit of {MAX_CHUNKS_PER_GAME}",
    )
    validate_manifest(make_manifest(entry("big.eti", (MAX_CHUNKS_PER_GAME - 1) * CHUNK)))


def test_repeated_path_is_refused() -> None:
    """The same path twice is refused and named."""
    manifest = raw_manifest(entry("a.eti", 1), entry("a.eti", 1), entry(VERSION_FILE, 1))
    assert_invalid(manifest, f"{WHERE}: path repeats: 'a.eti'")


def test_unsorted_files_are_refused() -> None:
    """Files must be sorted by path so the encoding is canonical."""
    manifest = raw_manifest(entry("b.eti", 1), entry("a.eti", 1), entry(VERSION_FILE, 1))
    assert_invalid(manifest, f"{WHERE}: 'a.eti' is listed after 'b.eti'")


def test_unsafe_path_inside_a_manifest_is_refused() -> None:
    """Path safety is part of manifest validation."""
    manifest = make_manifest(entry("../evil.eti", 1))
    assert_invalid(manifest, "unsafe path '../evil.eti': component '..'")


def test_paths_differing_only_by_case_are_refused() -> None:
    """Two paths that would be one file on Windows are refused."""
    manifest = make_manifest(entry("A.eti", 1), entry("a.eti", 1))
    assert_invalid(manifest, f"{WHERE}: 'a.eti' and 'A.eti' differ only by case")


def test_sentinel_case_variant_collides_with_the_sentinel() -> None:
    """``VERSION.INI`` next to ``version.ini`` would overwrite the sentinel on Windows."""
    manifest = make_manifest(entry("VERSION.INI", 1))
    assert_invalid(manifest, f"{WHERE}: 'version.ini' and 'VERSION.INI' differ only by case")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (("a", "a/b.eti"), "'a' is a file but 'a/b.eti' needs it as a folder"),
        (("Data", "data/b.eti"), "'Data' is a file but 'data/b.eti' needs it as a folder"),
        (("x/y", "x/y/z/w"), "'x/y' is a file but 'x/y/z/w' needs it as a folder"),
    ],
)
def test_file_and_folder_with_one_name_are_refused(files: tuple[str, ...], message: str) -> None:
    """A path cannot be both a file and a folder (case-insensitively)."""
    manifest = make_manifest(*(entry(path, 1) for path in files))
    assert_invalid(manifest, f"{WHERE}: {message}")


def test_chunks_must_tile_at_the_manifest_chunk_size() -> None:
    """Chunks cut at another chunk size do not tile the file at the manifest's."""
    wrong = entry("a.eti", 4 * CHUNK, chunk_size=2 * CHUNK)
    assert_invalid(
        make_manifest(wrong),
        f"{WHERE}: chunks of 'a.eti' do not tile {4 * CHUNK} bytes at chunk size {CHUNK} "
        f"(expected 4 chunks, got 2; chunk 0 is (0, {2 * CHUNK}), expected (0, {CHUNK}))",
    )


def test_missing_last_chunk_is_refused() -> None:
    """A file whose chunks stop short of its size is refused."""
    good = entry("a.eti", 2 * CHUNK + 3)
    cut = FileManifest(path="a.eti", size=good.size, chunks=good.chunks[:2])
    assert_invalid(
        make_manifest(cut),
        f"{WHERE}: chunks of 'a.eti' do not tile {2 * CHUNK + 3} bytes at chunk size {CHUNK} "
        "(expected 3 chunks, got 2)",
    )


def test_gap_between_chunks_is_refused() -> None:
    """A chunk at the wrong offset is named with the offending index."""
    good = entry("a.eti", 2 * CHUNK)
    shifted = ChunkDigest(CHUNK + 1, CHUNK - 1, good.chunks[1].blake3)
    bad = FileManifest(path="a.eti", size=good.size, chunks=(good.chunks[0], shifted))
    assert_invalid(
        make_manifest(bad),
        f"{WHERE}: chunks of 'a.eti' do not tile {2 * CHUNK} bytes at chunk size {CHUNK} "
        f"(expected 2 chunks, got 2; chunk 1 is ({CHUNK + 1}, {CHUNK - 1}), "
        f"expected ({CHUNK}, {CHUNK}))",
    )


def test_empty_file_with_a_chunk_is_refused() -> None:
    """An empty file has no chunks; one listed anyway is refused."""
    bad = FileManifest(path="e", size=0, chunks=(ChunkDigest(0, 1, fake_digest("e")),))
    assert_invalid(
        make_manifest(bad),
        f"{WHERE}: chunks of 'e' do not tile 0 bytes at chunk size {CHUNK} "
        "(expected 0 chunks, got 1)",
    )


def test_short_digest_is_refused() -> None:
    """Every chunk digest is a 32-byte BLAKE3 digest."""
    bad = FileManifest(path="a.eti", size=5, chunks=(ChunkDigest(0, 5, b"\x00" * 31),))
    assert_invalid(
        make_manifest(bad),
        f"{WHERE}: chunk of 'a.eti' at offset 0 has a 31-byte digest, expected 32",
    )


def test_negative_size_is_refused() -> None:
    """A negative file size is refused (constructed values bypass decode bounds)."""
    bad = FileManifest(path="a.eti", size=-1, chunks=())
    assert_invalid(make_manifest(bad), f"{WHERE}: 'a.eti' has size -1 out of bounds")


def test_missing_sentinel_is_refused() -> None:
    """A manifest without the root version.ini describes no downloaded game."""
    assert_invalid(
        make_manifest(entry("a.eti", 1), sentinel=False), f"{WHERE}: no root version.ini"
    )


def test_oversized_sentinel_is_refused() -> None:
    """The sentinel is buffered in memory, so its size is bounded."""
    big = entry(VERSION_FILE, MAX_VERSION_FILE_SIZE + 1)
    assert_invalid(
        make_manifest(big),
        f"{WHERE}: version.ini of {MAX_VERSION_FILE_SIZE + 1} bytes exceeds "
        f"{MAX_VERSION_FILE_SIZE}",
    )
    validate_manifest(make_manifest(entry(VERSION_FILE, MAX_VERSION_FILE_SIZE)))


def test_nested_version_ini_is_not_the_sentinel() -> None:
    """Only the root version.ini counts as the sentinel."""
    manifest = make_manifest(entry("sub/version.ini", 3), sentinel=False)
    assert manifest.sentinel is None
    assert_invalid(manifest, f"{WHERE}: no root version.ini")


# --- encoding and digests -------------------------------------------------------------


def test_encoding_round_trips() -> None:
    """decode(encode(m)) == m, and the encoding is canonical (stable bytes)."""
    manifest = make_manifest(entry("a.eti", 2 * CHUNK + 1), entry("b/c", 0))
    data = encode_manifest(manifest)
    assert decode_manifest(data) == manifest
    assert encode_manifest(decode_manifest(data)) == data


def test_decode_refuses_malformed_bytes() -> None:
    """Garbage is a ManifestError, never a raw msgspec error."""
    with pytest.raises(ManifestError, match=r"^malformed manifest: "):
        decode_manifest(b"\xc1garbage")


def test_decode_enforces_field_bounds() -> None:
    """A digest of the wrong length is refused by the decoder itself."""
    manifest = make_manifest(entry("a.eti", 5))
    raw = msgspec.to_builtins(manifest, builtin_types=(bytes,))
    raw["files"][0]["chunks"][0][2] = b"\x00" * 31
    with pytest.raises(ManifestError) as caught:
        decode_manifest(msgspec.msgpack.encode(raw))
    assert str(caught.value) == (
        "malformed manifest: Expected `bytes` of length >= 32 - at `$.files[0].chunks[0][2]`"
    )


def test_decode_refuses_unknown_fields() -> None:
    """Unknown fields are a protocol violation, not silently ignored."""
    raw = msgspec.to_builtins(make_manifest(), builtin_types=(bytes,))
    raw["extra"] = 1
    with pytest.raises(ManifestError) as caught:
        decode_manifest(msgspec.msgpack.encode(raw))
    assert str(caught.value) == "malformed manifest: Object contains unknown field `extra`"


def test_decode_validates_rules() -> None:
    """A well-shaped but rule-breaking manifest is refused after decoding."""
    data = encode_manifest(make_manifest(entry("local/x", 1)))
    with pytest.raises(ManifestError) as caught:
        decode_manifest(data)
    assert str(caught.value) == "unsafe path 'local/x': 'local' is reserved"


def test_decode_refuses_oversized_input() -> None:
    """Input larger than MAX_MANIFEST_ENCODED_SIZE is refused before decoding."""
    with pytest.raises(ManifestError) as caught:
        decode_manifest(bytes(MAX_MANIFEST_ENCODED_SIZE + 1))
    assert str(caught.value) == (
        f"manifest of {MAX_MANIFEST_ENCODED_SIZE + 1} bytes exceeds the limit of "
        f"{MAX_MANIFEST_ENCODED_SIZE}"
    )


def test_worst_case_manifest_fits_the_encoded_bound() -> None:
    """A manifest at every limit (files, chunks, path bytes, offsets) encodes within bound."""
    component = "d" * 200
    prefix = "/".join([component] * 4)  # 803 bytes with separators
    files: list[FileManifest] = []
    for index in range(MAX_FILES_PER_GAME - 2):
        name = f"{index:05}".ljust(MAX_PATH_BYTES - len(prefix) - 1, "x")
        files.append(entry(f"{prefix}/{name}", 1, chunk_size=MAX_CHUNK_SIZE))
    big_chunks = MAX_CHUNKS_PER_GAME - len(files) - 1
    files.append(entry("big.eti", big_chunks * MAX_CHUNK_SIZE, chunk_size=MAX_CHUNK_SIZE))
    files.append(entry(VERSION_FILE, MAX_VERSION_FILE_SIZE, chunk_size=MAX_CHUNK_SIZE))
    manifest = GameManifest(
        game_id="g" * 64,
        version="v" * 64,
        chunk_size=MAX_CHUNK_SIZE,
        files=tuple(sorted(files, key=lambda file: file.path)),
    )
    assert len(files[0].path.encode()) == MAX_PATH_BYTES
    validate_manifest(manifest)
    assert manifest.chunk_count == MAX_CHUNKS_PER_GAME
    assert len(encode_manifest(manifest)) <= MAX_MANIFEST_ENCODED_SIZE


def test_manifest_digest_is_stable_and_sensitive() -> None:
    """Equal manifests share a digest; one changed chunk digest changes it."""
    first = make_manifest(entry("a.eti", 2 * CHUNK))
    same = make_manifest(entry("a.eti", 2 * CHUNK))
    other = make_manifest(entry("a.eti", 2 * CHUNK, salt="changed"))
    assert manifest_digest(first) == manifest_digest(same)
    assert manifest_digest(first) != manifest_digest(other)
    assert len(manifest_digest(first)) == 64
    assert file_digest(first.files[0]) != file_digest(other.files[0])


# --- agreement --------------------------------------------------------------------------


def test_single_source_is_the_agreement() -> None:
    """With one source its manifest is agreed and it is eligible for everything."""
    manifest = make_manifest(entry("a.eti", CHUNK + 1))
    agreement = agree_manifests({"alpha": manifest})
    assert agreement.manifest == manifest
    assert dict(agreement.eligible) == {
        "a.eti": frozenset({"alpha"}),
        VERSION_FILE: frozenset({"alpha"}),
    }
    assert agreement.disagreements == ()
    assert agreement.sources == frozenset({"alpha"})


def test_majority_content_wins_and_the_odd_source_is_reported() -> None:
    """Two sources outvote a third whose chunk differs; it loses only that file."""
    good = make_manifest(entry("a.eti", 2 * CHUNK), entry("b.eti", 5))
    odd_a = FileManifest(
        path="a.eti",
        size=2 * CHUNK,
        chunks=(good.files[0].chunks[0], ChunkDigest(CHUNK, CHUNK, fake_digest("bad"))),
    )
    odd = make_manifest(odd_a, entry("b.eti", 5))
    agreement = agree_manifests({"alpha": good, "beta": good, "gamma": odd})
    assert agreement.manifest == good
    assert agreement.eligible["a.eti"] == frozenset({"alpha", "beta"})
    assert agreement.eligible["b.eti"] == frozenset({"alpha", "beta", "gamma"})
    assert agreement.disagreements == (
        Disagreement(
            "gamma",
            "a.eti",
            DisagreementKind.CONTENT,
            f"1 of 2 chunks differ, first at offset {CHUNK}",
        ),
    )


def test_size_difference_is_reported() -> None:
    """A source holding the file at another size is ineligible for it."""
    good = make_manifest(entry("a.eti", 10))
    odd = make_manifest(entry("a.eti", 11))
    agreement = agree_manifests({"alpha": good, "beta": good, "gamma": odd})
    assert agreement.eligible["a.eti"] == frozenset({"alpha", "beta"})
    assert agreement.disagreements == (
        Disagreement("gamma", "a.eti", DisagreementKind.SIZE, "size 11, agreed 10"),
    )


def test_tie_between_versions_fails_naming_the_peers() -> None:
    """One source against one: no digest ordering decides; the agreement fails."""
    left = entry("a.eti", 10, salt="left")
    right = entry("a.eti", 10, salt="right")
    for names in (("alpha", "beta"), ("beta", "alpha")):
        with pytest.raises(ManifestError) as caught:
            agree_manifests({names[0]: make_manifest(left), names[1]: make_manifest(right)})
        first, second = sorted(((names[0], left), (names[1], right)), key=lambda item: item[0])
        assert str(caught.value) == (
            f"sources disagree on 'a.eti': {first[0]} holds size 10 digest "
            f"{file_digest(first[1]).hex()[:12]}; {second[0]} holds size 10 digest "
            f"{file_digest(second[1]).hex()[:12]}; no version is held by more than half "
            "of the 2 sources"
        )


def test_plurality_short_of_a_majority_fails() -> None:
    """Two of five sources agree, three hold three other versions: two is no majority."""
    versions = [entry("a.eti", 10, salt=salt) for salt in ("p", "p", "q", "r", "s")]
    names = ["alpha", "beta", "gamma", "delta", "epsilon"]
    with pytest.raises(ManifestError, match=r"^sources disagree on 'a.eti': alpha, beta hold "):
        agree_manifests(
            {name: make_manifest(file) for name, file in zip(names, versions, strict=True)}
        )


def test_strict_majority_of_versions_wins_over_a_minority() -> None:
    """Three of five hold one version, two hold two others: the three are used."""
    files = [entry("a.eti", 10, salt=salt) for salt in ("p", "p", "p", "q", "r")]
    names = ["alpha", "beta", "gamma", "delta", "epsilon"]
    agreement = agree_manifests(
        {name: make_manifest(file) for name, file in zip(names, files, strict=True)}
    )
    assert agreement.eligible["a.eti"] == frozenset({"alpha", "beta", "gamma"})
    assert [(item.source, item.kind) for item in agreement.disagreements] == [
        ("delta", DisagreementKind.CONTENT),
        ("epsilon", DisagreementKind.CONTENT),
    ]


def test_file_held_by_a_majority_is_kept_and_the_lacking_source_reported() -> None:
    """Two of three hold a file: it is downloaded, the third is not eligible for it."""
    full = make_manifest(entry("a.eti", 5), entry("patch.eti", 7))
    partial = make_manifest(entry("a.eti", 5))
    agreement = agree_manifests({"alpha": full, "beta": full, "gamma": partial})
    assert agreement.manifest == full
    assert agreement.eligible["patch.eti"] == frozenset({"alpha", "beta"})
    assert agreement.disagreements == (
        Disagreement("gamma", "patch.eti", DisagreementKind.MISSING, "held by 2 of 3 sources"),
    )


@pytest.mark.parametrize("holders", [1, 2])
def test_file_held_by_half_or_fewer_is_dropped(holders: int) -> None:
    """A file held by half the sources or fewer is not downloaded; its holders are reported."""
    with_extra = make_manifest(entry("a.eti", 5), entry("extra.eti", 9))
    without = make_manifest(entry("a.eti", 5))
    names = ["alpha", "beta", "gamma", "delta"]
    by_source = {
        name: (with_extra if index < holders else without) for index, name in enumerate(names)
    }
    agreement = agree_manifests(by_source)
    assert agreement.manifest == without
    assert "extra.eti" not in agreement.eligible
    assert agreement.disagreements == tuple(
        Disagreement(
            name, "extra.eti", DisagreementKind.EXTRA, f"held by {holders} of 4 sources; dropped"
        )
        for name in sorted(names[:holders])
    )


def test_file_folder_conflict_across_sources_never_reaches_the_agreement() -> None:
    """Sources disagreeing on whether ``a`` is a file or a folder yield a valid agreement."""
    as_file = make_manifest(entry("a", 1))
    as_folder = make_manifest(entry("a/b", 1))
    agreement = agree_manifests({"alpha": as_file, "beta": as_folder})
    validate_manifest(agreement.manifest)
    assert [file.path for file in agreement.manifest.files] == [VERSION_FILE]


def test_header_majority_excludes_other_versions() -> None:
    """A source whose version differs from the majority's serves nothing."""
    current = make_manifest(entry("a.eti", 5))
    stale = make_manifest(entry("a.eti", 5), version="0.9")
    agreement = agree_manifests({"alpha": current, "beta": current, "gamma": stale})
    assert agreement.sources == frozenset({"alpha", "beta"})
    assert all("gamma" not in sources for sources in agreement.eligible.values())
    assert agreement.disagreements == (
        Disagreement(
            "gamma",
            None,
            DisagreementKind.HEADER,
            f"game 'quake3' version '0.9' chunk size {CHUNK}, agreed game 'quake3' version "
            f"'1.0' chunk size {CHUNK}",
        ),
    )


def test_header_tie_fails_naming_the_peers() -> None:
    """One chunk size against another: no header ordering decides; the agreement fails."""
    small = make_manifest(entry("a.eti", 5))
    large = make_manifest(entry("a.eti", 5), chunk_size=2 * CHUNK)
    with pytest.raises(ManifestError) as caught:
        agree_manifests({"alpha": large, "beta": small})
    assert str(caught.value) == (
        f"sources disagree on the version or chunk size: alpha holds version '1.0' chunk "
        f"size {2 * CHUNK}; beta holds version '1.0' chunk size {CHUNK}"
    )


def test_invalid_manifest_excludes_its_source() -> None:
    """A source with a rule-breaking manifest is reported and ignored."""
    good = make_manifest(entry("a.eti", 5))
    bad = make_manifest(entry("local/x", 5))
    agreement = agree_manifests({"alpha": good, "beta": bad})
    assert agreement.manifest == good
    assert agreement.sources == frozenset({"alpha"})
    assert agreement.disagreements == (
        Disagreement(
            "beta",
            None,
            DisagreementKind.INVALID_MANIFEST,
            "unsafe path 'local/x': 'local' is reserved",
        ),
    )


def test_no_valid_manifest_is_an_error() -> None:
    """When every source's manifest is invalid there is nothing to agree on."""
    bad = make_manifest(entry("a.eti", 1), sentinel=False)
    with pytest.raises(ManifestError) as caught:
        agree_manifests({"alpha": bad})
    assert str(caught.value) == (
        f"no source sent a valid manifest (alpha: {WHERE}: no root version.ini)"
    )


def test_majority_union_beyond_the_bounds_is_an_error() -> None:
    """Each source within bounds, every file held by two of three, union too large."""
    third = MAX_CHUNKS_PER_GAME // 2 - 1
    x, y, z = (entry(name, third * CHUNK) for name in ("x.eti", "y.eti", "z.eti"))
    by_source = {
        "alpha": make_manifest(x, y),
        "beta": make_manifest(y, z),
        "gamma": make_manifest(x, z),
    }
    for manifest in by_source.values():
        validate_manifest(manifest)
    with pytest.raises(ManifestError) as caught:
        agree_manifests(by_source)
    assert str(caught.value) == (
        f"the sources' majority manifest is unusable: {WHERE}: {3 * third + 1} chunks "
        f"exceed the limit of {MAX_CHUNKS_PER_GAME}"
    )


def test_no_source_is_a_caller_error() -> None:
    """Agreeing on nothing is a caller bug, not a peer's fault."""
    with pytest.raises(ValueError, match=r"^agree_manifests needs at least one source$"):
        agree_manifests({})


def test_restrict_eligibility_keeps_only_live_sources() -> None:
    """Dropping a source empties paths only it could serve."""
    eligible = {"a": frozenset({"x", "y"}), "b": frozenset({"x"})}
    assert restrict_eligibility(eligible, {"y"}) == {"a": frozenset({"y"}), "b": frozenset()}


# A small pool of file versions so that sources often agree and sometimes differ.
_variants = st.sampled_from(
    [
        entry("a.eti", 5),
        entry("a.eti", 5, "x"),
        entry("a.eti", 6),
        entry("b/c", CHUNK + 1),
        entry("b/c", CHUNK + 1, "y"),
        entry("b", 3),
        entry("d", 0),
    ]
)


@st.composite
def source_manifests(draw: st.DrawFn) -> GameManifest:
    chosen = draw(st.lists(_variants, max_size=4))
    by_path: dict[str, FileManifest] = {}
    for file in chosen:
        by_path.setdefault(file.path, file)
    if "b" in by_path and "b/c" in by_path:
        del by_path["b"]
    return make_manifest(*by_path.values())


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from("pqrst"), source_manifests(), min_size=1))
def test_agreement_properties(by_source: dict[str, GameManifest]) -> None:
    """The agreed manifest is valid; eligible sources hold exactly the agreed file;
    every other source's difference is reported; files kept are held, at exactly the
    agreed version, by a strict majority; without such a majority it fails as a
    disagreement, never by digest order."""
    failure = ""
    try:
        agreement = agree_manifests(by_source)
    except ManifestError as exc:
        failure = str(exc)
    if failure:
        assert failure.startswith("sources disagree on ")
        return
    validate_manifest(agreement.manifest)
    reported = {(item.source, item.path) for item in agreement.disagreements}
    for file in agreement.manifest.files:
        holders = [src for src in by_source if file.path in by_source[src].by_path()]
        assert 2 * len(holders) > len(by_source)
        eligible = agreement.eligible[file.path]
        assert eligible
        for source in by_source:
            if source in eligible:
                assert by_source[source].by_path()[file.path] == file
            else:
                assert (source, file.path) in reported
        assert 2 * len(eligible) > len(agreement.sources)
