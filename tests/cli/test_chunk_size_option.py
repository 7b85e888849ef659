"""peer-cli --chunk-size: unset by default (a game's size sets it), else pinned within bounds."""

from __future__ import annotations

import pytest

from lanspread.cli.app import build_parser
from lanspread.cli.peer_cli import options_from_args
from lanspread.core.manifest import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

PEER_CLI = ["peer-cli", "--name", "a", "--game-dir", "g", "--state-dir", "s"]


def test_chunk_size_is_left_to_the_game_size_unless_pinned() -> None:
    """Without the option the runtime gets ``None``; with it, exactly the size given."""
    parser = build_parser()
    assert options_from_args(parser.parse_args(PEER_CLI)).chunk_size is None
    pinned = parser.parse_args([*PEER_CLI, "--chunk-size", str(16 * MIN_CHUNK_SIZE)])
    assert options_from_args(pinned).chunk_size == 16 * MIN_CHUNK_SIZE


def test_chunk_size_outside_the_manifest_bounds_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A size no manifest may carry is a usage error naming the bounds."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([*PEER_CLI, "--chunk-size", str(MIN_CHUNK_SIZE - 1)])
    expected = f"--chunk-size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"
    assert expected in capsys.readouterr().err
