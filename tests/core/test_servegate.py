"""The serve gate: every refusal, its wire code, and the path syntax as properties."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lanspread.core.bitfield import ChunkBitfield
from lanspread.core.gameroot import RESERVED_NAMES
from lanspread.core.manifest import MIN_CHUNK_SIZE, ChunkDigest, FileManifest, GameManifest
from lanspread.core.partial import ChunkLayout, VerifiedChunks
from lanspread.core.refusal import Refused
from lanspread.core.servegate import (
    MAX_CHUNK_LENGTH,
    MAX_COMPONENT_BYTES,
    MAX_PATH_DEPTH,
    MAX_RELATIVE_PATH_LENGTH,
    NodeKind,
    Refusal,
    RefusalReason,
    ResolvedPathFacts,
    ServeErrorCode,
    check_chunk_range,
    check_game,
    check_game_request,
    check_partial_chunk,
    check_partial_game,
    check_partial_request,
    check_relative_path,
    check_resolved,
    is_reserved_component,
    split_relative_path,
)

CATALOG = frozenset({"quake3", "ut2004"})
ROOT = PurePosixPath("/games/quake3")


def _reason(refusal: Refusal | None) -> RefusalReason | None:
    return None if refusal is None else refusal.reason


# --- check_game ---------------------------------------------------------------


def test_check_game_accepts_a_downloaded_idle_catalog_game() -> None:
    """A catalog game with its sentinel and no operation passes."""
    assert (
        check_game(
            "quake3", catalog_ids=CATALOG, active_operations=frozenset(), sentinel_present=True
        )
        is None
    )


def test_check_game_refuses_an_id_outside_the_catalog() -> None:
    """A well-formed id that the catalog does not list is refused, answered GameNotFound."""
    refusal = check_game(
        "doom", catalog_ids=CATALOG, active_operations=frozenset(), sentinel_present=True
    )
    assert refusal == Refused(RefusalReason.NOT_IN_CATALOG, "'doom' is not a catalog game")
    assert refusal.reason.code is ServeErrorCode.GAME_NOT_FOUND


@pytest.mark.parametrize("game_id", ["", ".", "..", "../quake3", "Quake3", "a/b", "x" * 65])
def test_check_game_refuses_malformed_ids_even_if_listed(game_id: str) -> None:
    """A malformed id is refused even when the caller's id set contains it."""
    refusal = check_game(
        game_id,
        catalog_ids=CATALOG | {game_id},
        active_operations=frozenset(),
        sentinel_present=True,
    )
    assert refusal == Refused(RefusalReason.NOT_IN_CATALOG, f"{game_id!r} is not a catalog game")


def test_check_game_refuses_a_game_with_an_active_operation() -> None:
    """An active operation wins over the sentinel and answers OperationInProgress."""
    refusal = check_game(
        "quake3", catalog_ids=CATALOG, active_operations={"quake3"}, sentinel_present=False
    )
    assert refusal == Refused(RefusalReason.OPERATION_ACTIVE, "quake3 has an active operation")
    assert refusal.reason.code is ServeErrorCode.OPERATION_IN_PROGRESS


def test_check_game_refuses_a_game_without_its_sentinel() -> None:
    """No root version.ini means not downloaded: answered GameNotFound."""
    refusal = check_game(
        "quake3", catalog_ids=CATALOG, active_operations=frozenset(), sentinel_present=False
    )
    assert refusal == Refused(RefusalReason.NOT_DOWNLOADED, "quake3 has no root version.ini")
    assert refusal.reason.code is ServeErrorCode.GAME_NOT_FOUND


def test_check_game_request_needs_no_sentinel_fact() -> None:
    """The disk-free pre-check refuses the same ids and operations and passes the rest."""
    assert check_game_request("quake3", catalog_ids=CATALOG, active_operations=()) is None
    assert _reason(check_game_request("doom", catalog_ids=CATALOG, active_operations=())) is (
        RefusalReason.NOT_IN_CATALOG
    )
    assert _reason(
        check_game_request("ut2004", catalog_ids=CATALOG, active_operations={"ut2004": 1})
    ) is (RefusalReason.OPERATION_ACTIVE)


# --- check_relative_path --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "quake3.eti",
        "version.ini",
        "data/maps/q3dm17.eti",
        "local2/x.eti",
        "sub/local/x.eti",
        "sub/.lanspread.json",
        ".hidden.eti",
        "a" * MAX_COMPONENT_BYTES,
        "/".join(["d"] * MAX_PATH_DEPTH),
        "Ünïcödé/gämé.eti",
        "console.eti",
    ],
)
def test_check_relative_path_accepts_payload_paths(path: str) -> None:
    """Plain relative payload paths pass, including nested and reserved names below the root."""
    assert check_relative_path(path) is None


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("", "'' is not a relative path"),
        ("/etc/passwd", "'/etc/passwd' is not a relative path"),
        ("//server/share", "'//server/share' is not a relative path"),
        ("../x.eti", "component '..' is not allowed"),
        ("a/../../x", "component '..' is not allowed"),
        ("./x.eti", "component '.' is not allowed"),
        ("a//b", "component '' is not allowed"),
        ("a/", "component '' is not allowed"),
        ("a\x00b", "component 'a\\x00b' holds '\\x00'"),
        ("a\\..\\b", "component 'a\\\\..\\\\b' holds '\\\\'"),
        ("C:/Windows/x", "component 'C:' holds ':'"),
        ("C:x", "component 'C:x' holds ':'"),
        ("x.eti:stream", "component 'x.eti:stream' holds ':'"),
        ("what?.eti", "component 'what?.eti' holds '?'"),
        ("tab\there", "component 'tab\\there' holds '\\t'"),
        ("local./x", "component 'local.' ends with a dot or space"),
        ("local /x", "component 'local ' ends with a dot or space"),
        ("...", "component '...' ends with a dot or space"),
        ("NUL", "component 'NUL' names a device"),
        ("sub/con.txt", "component 'con.txt' names a device"),
        ("com1.eti", "component 'com1.eti' names a device"),
        ("\ud800.eti", "'\\ud800.eti' is not valid Unicode"),
    ],
)
def test_check_relative_path_refuses_unsafe_syntax(path: str, detail: str) -> None:
    """Every unsafe form is refused as UNSAFE_PATH with a message naming the defect."""
    refusal = check_relative_path(path)
    assert refusal == Refused(RefusalReason.UNSAFE_PATH, detail)
    assert refusal.reason.code is ServeErrorCode.GAME_NOT_FOUND


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_check_relative_path_refuses_every_reserved_name_and_what_is_under_it(name: str) -> None:
    """Each reserved root name is refused alone and as a parent, in any letter case."""
    for path in (name, f"{name}/x.eti", f"{name}/deep/.lanspread_owned", name.upper()):
        refusal = check_relative_path(path)
        assert refusal == Refused(
            RefusalReason.RESERVED_PATH, f"{path!r} is under reserved {path.split('/')[0]!r}"
        )


def test_check_relative_path_bounds_total_length() -> None:
    """A path one character over the limit is refused before anything else is looked at."""
    fits = "/".join(["a" * 100, "b" * 100, "c" * (MAX_RELATIVE_PATH_LENGTH - 202)])
    assert len(fits) == MAX_RELATIVE_PATH_LENGTH
    assert check_relative_path(fits) is None
    path = fits + "d"
    assert check_relative_path(path) == Refused(
        RefusalReason.PATH_TOO_LONG,
        f"path of {MAX_RELATIVE_PATH_LENGTH + 1} characters exceeds {MAX_RELATIVE_PATH_LENGTH}",
    )
    assert _reason(check_relative_path("../" * 100)) is RefusalReason.PATH_TOO_LONG


def test_check_relative_path_counts_component_bytes_not_characters() -> None:
    """A component of 128 two-byte characters is 256 bytes: one over the component limit."""
    assert check_relative_path("é" * 127 + "a") is None
    assert check_relative_path("é" * 128) == Refused(
        RefusalReason.PATH_TOO_LONG, f"a component is longer than {MAX_COMPONENT_BYTES} bytes"
    )


def test_check_relative_path_bounds_depth() -> None:
    """One component more than the depth limit is refused."""
    path = "/".join(["d"] * (MAX_PATH_DEPTH + 1))
    assert check_relative_path(path) == Refused(
        RefusalReason.PATH_TOO_LONG,
        f"path of {MAX_PATH_DEPTH + 1} components exceeds {MAX_PATH_DEPTH}",
    )


def test_split_relative_path_gives_components() -> None:
    """An accepted path splits into its POSIX components."""
    assert split_relative_path("a/b/c.eti") == ("a", "b", "c.eti")


def test_is_reserved_component_folds_case() -> None:
    """Reserved names match case-insensitively, as NTFS resolves them; payload names do not."""
    assert is_reserved_component("LOCAL")
    assert is_reserved_component(".Local.Backup")
    assert not is_reserved_component("version.ini")


_PATHISH = st.lists(
    st.sampled_from(["a", "b", ".", "..", "/", "\\", ":", " ", "\x00", "é", "local", "LOCAL", "C"]),
    max_size=20,
).map("".join)


@given(st.one_of(st.text(max_size=2 * MAX_RELATIVE_PATH_LENGTH), _PATHISH))
@example("../etc/passwd")
@example("local/x")
@example("a/./b")
def test_any_string_is_accepted_or_refused_never_raises(path: str) -> None:
    """Any string either passes or yields a Refusal: the checker never raises."""
    result = check_relative_path(path)
    assert result is None or isinstance(result, Refused)


@given(st.one_of(st.text(max_size=2 * MAX_RELATIVE_PATH_LENGTH), _PATHISH))
def test_accepted_paths_stay_inside_the_payload(path: str) -> None:
    """An accepted path has no '..', is not absolute anywhere and starts with no reserved name."""
    if check_relative_path(path) is not None:
        return
    parts = path.split("/")
    assert ".." not in parts
    assert not PurePosixPath(path).is_absolute()
    windows = PureWindowsPath(path)
    assert not windows.is_absolute()
    assert not windows.drive
    assert not windows.root
    assert parts[0].casefold() not in {name.casefold() for name in RESERVED_NAMES}
    assert ".." not in windows.parts


# --- check_resolved -------------------------------------------------------------

D, F, L, S, M = (
    NodeKind.DIRECTORY,
    NodeKind.REGULAR_FILE,
    NodeKind.SYMLINK,
    NodeKind.SPECIAL,
    NodeKind.MISSING,
)


def _facts(
    components: tuple[NodeKind, ...],
    *,
    depth: int | None = None,
    root: NodeKind = D,
    real: str | None = "/games/quake3/a/b.eti",
    root_real: str | None = "/games/quake3",
) -> ResolvedPathFacts:
    return ResolvedPathFacts(
        root=root,
        components=components,
        depth=len(components) if depth is None else depth,
        root_real_path=None if root_real is None else PurePosixPath(root_real),
        real_path=None if real is None else PurePosixPath(real),
    )


def test_check_resolved_accepts_real_directories_down_to_a_regular_file() -> None:
    """Directories then a regular file, really inside the root, are served."""
    assert check_resolved(_facts((D, F))) is None
    assert check_resolved(_facts((F,), real="/games/quake3/b.eti")) is None


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (_facts((D, F), root=L), Refused(RefusalReason.SYMLINK, "the game root is a symlink")),
        (
            _facts((D, F), root=M),
            Refused(RefusalReason.NOT_DOWNLOADED, "the game root is missing"),
        ),
        (
            _facts((D, F), root=F),
            Refused(RefusalReason.NOT_DOWNLOADED, "the game root is regular-file"),
        ),
        (
            _facts((D, F), root=S),
            Refused(RefusalReason.NOT_DOWNLOADED, "the game root is special"),
        ),
        (_facts(()), Refused(RefusalReason.UNSAFE_PATH, "the path names the game root itself")),
        (_facts((L,)), Refused(RefusalReason.SYMLINK, "component 1 is a symlink")),
        (_facts((D, L)), Refused(RefusalReason.SYMLINK, "component 2 is a symlink")),
        (
            _facts((S,)),
            Refused(RefusalReason.SPECIAL_FILE, "component 1 is a device, FIFO or socket"),
        ),
        (
            _facts((D, S)),
            Refused(RefusalReason.SPECIAL_FILE, "component 2 is a device, FIFO or socket"),
        ),
        (_facts((M,)), Refused(RefusalReason.FILE_NOT_FOUND, "component 1 does not exist")),
        (
            _facts((D,), depth=2),
            Refused(RefusalReason.FILE_NOT_FOUND, "component 2 does not exist"),
        ),
        (
            _facts((F,), depth=2),
            Refused(RefusalReason.FILE_NOT_FOUND, "component 1 is a file, not a directory"),
        ),
        (_facts((D,)), Refused(RefusalReason.NOT_A_REGULAR_FILE, "component 1 is a directory")),
        (
            _facts((D, F), real="/etc/passwd"),
            Refused(
                RefusalReason.OUTSIDE_ROOT, "/etc/passwd is not inside the game root /games/quake3"
            ),
        ),
        (
            _facts((D, F), real="/games/quake3-other/a"),
            Refused(
                RefusalReason.OUTSIDE_ROOT,
                "/games/quake3-other/a is not inside the game root /games/quake3",
            ),
        ),
        (
            _facts((D, F), real="/games/quake3"),
            Refused(
                RefusalReason.OUTSIDE_ROOT,
                "/games/quake3 is not inside the game root /games/quake3",
            ),
        ),
        (
            _facts((D, F), real=None),
            Refused(RefusalReason.OUTSIDE_ROOT, "None is not inside the game root /games/quake3"),
        ),
        (
            _facts((D, F), root_real=None),
            Refused(
                RefusalReason.OUTSIDE_ROOT, "/games/quake3/a/b.eti is not inside the game root None"
            ),
        ),
        (
            _facts((D, F), real="/games/quake3/Local/game.exe"),
            Refused(
                RefusalReason.RESERVED_PATH,
                "/games/quake3/Local/game.exe resolves under reserved 'Local'",
            ),
        ),
    ],
)
def test_check_resolved_refuses_every_unsafe_fact(
    facts: ResolvedPathFacts, expected: Refusal
) -> None:
    """Each filesystem fact that could expose a file outside the payload has its refusal."""
    assert check_resolved(facts) == expected
    assert expected.reason.code is ServeErrorCode.GAME_NOT_FOUND


def test_check_resolved_refuses_a_reserved_real_path_under_windows_rules() -> None:
    """A Windows real path whose first component is reserved (an alias resolved) is refused."""
    facts = ResolvedPathFacts(
        root=D,
        components=(D, F),
        depth=2,
        root_real_path=PureWindowsPath("C:/Games/quake3"),
        real_path=PureWindowsPath("C:/Games/quake3/.local.backup/x.eti"),
    )
    refusal = check_resolved(facts)
    assert _reason(refusal) is RefusalReason.RESERVED_PATH


# --- check_chunk_range ----------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "length", "size"),
    [(0, 10, 10), (5, 5, 10), (0, 0, 0), (10, 0, 10), (0, MAX_CHUNK_LENGTH, MAX_CHUNK_LENGTH)],
)
def test_check_chunk_range_accepts_chunks_inside_the_file(
    offset: int, length: int, size: int
) -> None:
    """A chunk that ends at or before the end of the file, within the maximum, is served."""
    assert check_chunk_range(offset, length, size) is None


@pytest.mark.parametrize(
    ("offset", "length", "size"),
    [(0, 11, 10), (10, 1, 10), (11, 0, 10), (-1, 1, 10), (0, -1, 10), (2**63, 1, 10)],
)
def test_check_chunk_range_refuses_chunks_outside_the_file(
    offset: int, length: int, size: int
) -> None:
    """Negative values and chunks past the end are refused as BadRequest."""
    refusal = check_chunk_range(offset, length, size)
    assert refusal == Refused(
        RefusalReason.CHUNK_OUT_OF_RANGE,
        f"chunk at {offset} of {length} bytes is outside a file of {size} bytes",
    )
    assert refusal.reason.code is ServeErrorCode.BAD_REQUEST


def test_check_chunk_range_bounds_the_length() -> None:
    """A chunk one byte over the maximum is refused even inside a larger file."""
    refusal = check_chunk_range(0, 1025, 10_000, max_length=1024)
    assert refusal == Refused(RefusalReason.CHUNK_TOO_LARGE, "chunk of 1025 bytes exceeds 1024")
    assert refusal.reason.code is ServeErrorCode.BAD_REQUEST
    assert _reason(check_chunk_range(0, MAX_CHUNK_LENGTH + 1, 2**40)) is (
        RefusalReason.CHUNK_TOO_LARGE
    )


@given(
    offset=st.integers(min_value=-(2**64), max_value=2**64),
    length=st.integers(min_value=-(2**64), max_value=2**64),
    size=st.integers(min_value=0, max_value=2**64),
)
def test_accepted_chunks_always_lie_inside_the_file(offset: int, length: int, size: int) -> None:
    """Whatever the numbers, an accepted chunk is non-negative, bounded and inside the file."""
    if check_chunk_range(offset, length, size) is None:
        assert 0 <= offset <= offset + length <= size
        assert length <= MAX_CHUNK_LENGTH


# --- partial copies ---------------------------------------------------------------------------

CS = MIN_CHUNK_SIZE
DIGEST = "d" * 64


def _file(path: str, size: int) -> FileManifest:
    spans = range(0, size, CS)
    return FileManifest(
        path, size, tuple(ChunkDigest(o, min(CS, size - o), bytes(32)) for o in spans)
    )


# a.eti: chunks 0-2 (the last 10 bytes long); sub/b.eti: chunk 3; version.ini: chunk 4.
PARTIAL_MANIFEST = GameManifest(
    "quake3",
    "2.0",
    CS,
    (_file("a.eti", 2 * CS + 10), _file("sub/b.eti", 100), _file("version.ini", 3)),
)


def _verified(held: list[int], count: int = 5, digest: str = DIGEST) -> VerifiedChunks:
    return VerifiedChunks(
        manifest_digest=digest,
        version="2.0",
        layout=ChunkLayout(PARTIAL_MANIFEST),
        durable=ChunkBitfield.from_indexes(count, held),
    )


def test_a_partial_copy_is_served_only_at_the_ticket_manifest() -> None:
    """A catalog game the provider vouches for at exactly the ticket's digest passes."""
    assert check_partial_game("quake3", DIGEST, _verified([0]), catalog_ids=CATALOG) is None


@pytest.mark.parametrize(
    ("game_id", "verified", "reason", "detail"),
    [
        ("cs16", _verified([0]), RefusalReason.NOT_IN_CATALOG, "'cs16' is not a catalog game"),
        ("quake3", None, RefusalReason.NO_PARTIAL, "no download of quake3 runs here"),
        (
            "quake3",
            _verified([0], digest="e" * 64),
            RefusalReason.MANIFEST_MISMATCH,
            f"quake3 is downloading manifest {'e' * 64}, not {DIGEST}",
        ),
        (
            "quake3",
            _verified([0], count=6),
            RefusalReason.NO_PARTIAL,
            "quake3: the durable set covers 6 chunks, the manifest has 5",
        ),
    ],
    ids=["not-in-catalog", "no-download", "other-manifest", "bitfield-of-another-manifest"],
)
def test_a_partial_game_is_refused_unless_vouched_for_at_that_manifest(
    game_id: str, verified: VerifiedChunks | None, reason: RefusalReason, detail: str
) -> None:
    """Gone (cancel, discard, failure), another manifest or a bad provider answer: refused."""
    refusal = check_partial_game(game_id, DIGEST, verified, catalog_ids=CATALOG)
    assert refusal == Refused(reason, detail)
    assert refusal.reason.code is ServeErrorCode.GAME_NOT_FOUND


@pytest.mark.parametrize(
    ("path", "offset", "length"),
    [("a.eti", 0, CS), ("a.eti", CS, CS + 10), ("a.eti", 5, 10), ("sub/b.eti", 0, 100)],
)
def test_ranges_inside_durable_chunks_pass(path: str, offset: int, length: int) -> None:
    """Whole chunks, spans of held chunks and ranges inside one held chunk are served."""
    assert check_partial_chunk(_verified([0, 1, 2, 3]), path, offset, length) is None


@pytest.mark.parametrize(
    ("held", "path", "offset", "length", "reason", "detail"),
    [
        (
            [0],
            "a.eti",
            CS,
            CS,
            RefusalReason.CHUNK_NOT_VERIFIED,
            f"'a.eti' at {CS} of {CS} bytes touches chunks 1-1, not all verified and durable",
        ),
        (
            [0],
            "a.eti",
            CS - 1,
            2,
            RefusalReason.CHUNK_NOT_VERIFIED,
            f"'a.eti' at {CS - 1} of 2 bytes touches chunks 0-1, not all verified and durable",
        ),
        (
            [0, 1, 2, 3, 4],
            "version.ini",
            0,
            3,
            RefusalReason.CHUNK_NOT_VERIFIED,
            "the version.ini of a partial copy is never served",
        ),
        (
            [0, 1, 2, 3],
            "extra.eti",
            0,
            1,
            RefusalReason.NOT_IN_MANIFEST,
            "'extra.eti' is not a file of the manifest",
        ),
        (
            [0, 1, 2, 3],
            "local/saves.dat",
            0,
            1,
            RefusalReason.RESERVED_PATH,
            "'local/saves.dat' is under reserved 'local'",
        ),
        (
            [0, 1, 2, 3],
            "a.eti",
            2 * CS,
            11,
            RefusalReason.CHUNK_OUT_OF_RANGE,
            f"chunk at {2 * CS} of 11 bytes is outside 'a.eti' of {2 * CS + 10} bytes",
        ),
        (
            [0, 1, 2, 3],
            "a.eti",
            0,
            0,
            RefusalReason.CHUNK_OUT_OF_RANGE,
            f"chunk at 0 of 0 bytes is outside 'a.eti' of {2 * CS + 10} bytes",
        ),
        (
            [0, 1, 2, 3],
            "a.eti",
            0,
            MAX_CHUNK_LENGTH + 1,
            RefusalReason.CHUNK_TOO_LARGE,
            f"chunk of {MAX_CHUNK_LENGTH + 1} bytes exceeds {MAX_CHUNK_LENGTH}",
        ),
    ],
    ids=[
        "unverified",
        "spans-verified-and-not",
        "sentinel",
        "not-in-manifest",
        "reserved",
        "past-the-end",
        "empty",
        "too-large",
    ],
)
def test_anything_outside_durable_chunks_is_refused(
    held: list[int], path: str, offset: int, length: int, reason: RefusalReason, detail: str
) -> None:
    """Never an unverified byte, a sentinel, an unlisted file or a range past the file."""
    assert check_partial_chunk(_verified(held), path, offset, length) == Refused(reason, detail)


def test_a_missing_chunk_answers_its_own_code() -> None:
    """A chunk not held (yet) is CHUNK_NOT_AVAILABLE: the peer stays a source for the rest."""
    refusal = check_partial_chunk(_verified([]), "a.eti", 0, CS)
    assert refusal is not None
    assert refusal.reason.code is ServeErrorCode.CHUNK_NOT_AVAILABLE


@dataclass(frozen=True)
class _Request:
    path: str
    offset: int
    length: int


def test_a_request_is_judged_on_the_game_then_the_chunk() -> None:
    """check_partial_request runs the game rule first, then the chunk rule."""
    request = _Request("a.eti", 0, CS)
    assert (
        check_partial_request("quake3", DIGEST, _verified([0]), request, catalog_ids=CATALOG)
        is None
    )
    game_refused = check_partial_request("quake3", DIGEST, None, request, catalog_ids=CATALOG)
    assert _reason(game_refused) is RefusalReason.NO_PARTIAL
    chunk_refused = check_partial_request(
        "quake3", DIGEST, _verified([1]), request, catalog_ids=CATALOG
    )
    assert _reason(chunk_refused) is RefusalReason.CHUNK_NOT_VERIFIED
