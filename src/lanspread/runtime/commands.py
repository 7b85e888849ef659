"""Typed commands a :class:`~lanspread.runtime.PeerRuntime` accepts, and the one
table both front ends parse them through.

Each command is a ``msgspec.Struct`` tagged with its name, so ``{"cmd": "connect",
"addr": "10.0.0.2:7878"}`` becomes ``Connect(addr=...)`` with one
``msgspec.convert`` and a precise error for a missing or mistyped field.

:data:`COMMANDS` says which front end offers each command: the peer CLI (JSON
Lines on stdin) and the web API (``POST /api/command``) both parse with
:func:`parse_command`, so they accept the same commands with the same errors
(:class:`~lanspread.errors.InvalidJson`, :class:`~lanspread.errors.InvalidCommand`,
:class:`~lanspread.errors.UnknownCommand`, reported with the codes of
:data:`lanspread.errors.PUBLIC_CODES`). The web API leaves out ``set-game-dir``:
its settings form changes the game directory and keeps the choice
(``POST /api/settings``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any

import msgspec

from lanspread.errors import InvalidCommand, InvalidJson, UnknownCommand

# Paths and addresses typed by a person; far above any real value.
MAX_PATH_LENGTH = 4096
MAX_ADDR_LENGTH = 300

GameIdArg = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
"""A game id as a caller typed it; the runtime checks it against the catalog."""


class Command(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="cmd"):
    """Base of every command."""


class GameCommand(Command, frozen=True):
    """Base of the commands about one game; the reply comes at once, the outcome as events."""

    game: GameIdArg


class Status(Command, frozen=True, tag="status"):
    """This peer's identity, addresses, game directory and counts."""


class ListGames(Command, frozen=True, tag="list-games"):
    """Every catalog game with its local state and what peers offer."""


class ListPeers(Command, frozen=True, tag="list-peers"):
    """The peers currently known, with their addresses and games."""


class Connect(Command, frozen=True, tag="connect"):
    """Dial a peer directly (for networks where multicast is blocked)."""

    addr: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ADDR_LENGTH)]


class SetGameDir(Command, frozen=True, tag="set-game-dir"):
    """Switch to another game directory; refused while operations run."""

    path: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PATH_LENGTH)]


class SetUploadLimit(Command, frozen=True, tag="set-upload-limit"):
    """Change the upload limit and the gaming-now cap (bytes a second, 0: none); kept."""

    upload_limit: Annotated[int, msgspec.Meta(ge=0)] | None = None
    gaming_cap: Annotated[int, msgspec.Meta(ge=0)] | None = None
    """While a game launched here runs, uploads stay under this."""


class Shutdown(Command, frozen=True, tag="shutdown"):
    """Say goodbye to every peer and stop."""


class Download(GameCommand, frozen=True, tag="download"):
    """Download (or resume downloading) a game from the peers that have its newest version."""


class Cancel(GameCommand, frozen=True, tag="cancel"):
    """Stop a running download, or discard a paused one."""


class Update(GameCommand, frozen=True, tag="update"):
    """Fetch the newest version from the peers advertising it, then install it."""


class Install(GameCommand, frozen=True, tag="install"):
    """Extract a downloaded game into ``local/``."""


class Uninstall(GameCommand, frozen=True, tag="uninstall"):
    """Delete ``local/`` only; the downloaded archives stay."""

    keep_saves: bool = False
    """Leave the player's own files (saves, mods, edited configs) in ``local/``."""
    dry_run: bool = False
    """Only report what the uninstall would delete and keep."""


class Verify(GameCommand, frozen=True, tag="verify"):
    """Compare ``local/`` with its install record: changed, missing and added files."""


class Repair(GameCommand, frozen=True, tag="repair"):
    """Re-extract the installed game, keeping the player's files (edited ones as ``.mine``)."""


class Remove(GameCommand, frozen=True, tag="remove"):
    """Delete the files of a downloaded game that is not installed."""


class ChooseContent(GameCommand, frozen=True, tag="choose-content"):
    """Trust one side of a content conflict (a manifest digest), then download it."""

    digest: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class Play(GameCommand, frozen=True, tag="play"):
    """Start the installed game's executable."""

    run_unpinned: bool = False
    """Start it even though the organizer did not pin this version and its program
    changed since the last play (the player answered the question yes)."""


class Redownload(GameCommand, frozen=True, tag="redownload"):
    """Remove the downloaded files of a game (a damaged copy), then download it again."""


class Stop(GameCommand, frozen=True, tag="stop"):
    """Close a game started with ``play``: asked first, forced after a grace period."""


class ListDownloads(Command, frozen=True, tag="list-downloads"):
    """Running and queued downloads in order, rates, who pulls from us, free space."""


class Pause(GameCommand, frozen=True, tag="pause"):
    """Pause a running or queued download, keeping its files; it waits for ``resume``."""


class Resume(GameCommand, frozen=True, tag="resume"):
    """Resume a paused download (queued behind the running ones when they are many)."""


class PauseAll(Command, frozen=True, tag="pause-all"):
    """Pause every running and queued download."""


class ResumeAll(Command, frozen=True, tag="resume-all"):
    """Resume every paused download."""


class MoveDownload(GameCommand, frozen=True, tag="move-download"):
    """Move a queued download up (``step`` -1) or down (``step`` 1) the queue."""

    step: Annotated[int, msgspec.Meta(ge=-1, le=1)]


class Adopt(GameCommand, frozen=True, tag="adopt"):
    """Make a found folder a local copy if it holds exactly the version peers offer."""


AnyCommand = (
    Status
    | ListGames
    | ListPeers
    | Connect
    | SetGameDir
    | SetUploadLimit
    | Shutdown
    | Download
    | Cancel
    | Update
    | Install
    | Uninstall
    | Verify
    | Repair
    | Remove
    | ChooseContent
    | Play
    | Stop
    | Redownload
    | ListDownloads
    | Pause
    | Resume
    | PauseAll
    | ResumeAll
    | MoveDownload
    | Adopt
)


class Frontend(enum.Enum):
    """A way in for commands."""

    PEER_CLI = "peer-cli"
    WEB = "web"


ALL_FRONTENDS = frozenset(Frontend)
PEER_CLI_ONLY = frozenset({Frontend.PEER_CLI})


def command_name(kind: type[Command]) -> str:
    """The name a command of ``kind`` is sent with (``cmd``)."""
    tag = kind.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of :data:`COMMANDS`."""

    kind: type[AnyCommand]
    frontends: frozenset[Frontend] = ALL_FRONTENDS


def _by_name(*specs: CommandSpec) -> Mapping[str, CommandSpec]:
    return MappingProxyType({command_name(spec.kind): spec for spec in specs})


COMMANDS = _by_name(
    CommandSpec(Status),
    CommandSpec(ListGames),
    CommandSpec(ListPeers),
    CommandSpec(Connect),
    CommandSpec(SetGameDir, PEER_CLI_ONLY),
    CommandSpec(SetUploadLimit),
    CommandSpec(Shutdown),
    CommandSpec(Download),
    CommandSpec(Cancel),
    CommandSpec(Update),
    CommandSpec(Install),
    CommandSpec(Uninstall),
    CommandSpec(Verify),
    CommandSpec(Repair),
    CommandSpec(Remove),
    CommandSpec(ChooseContent),
    CommandSpec(Play),
    CommandSpec(Stop),
    CommandSpec(Redownload),
    CommandSpec(ListDownloads),
    CommandSpec(Pause),
    CommandSpec(Resume),
    CommandSpec(PauseAll),
    CommandSpec(ResumeAll),
    CommandSpec(MoveDownload),
    CommandSpec(Adopt),
)
"""Every command by name, with the front ends that offer it."""


def decode_object(text: bytes) -> dict[str, Any]:
    """The JSON object of a request body or command line."""
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidJson(f"not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidCommand("a command must be a JSON object")
    return raw


def parse_command(raw: Mapping[str, Any], frontend: Frontend) -> AnyCommand:
    """The command ``raw`` names, if ``frontend`` offers it and its fields are right."""
    if "cmd" not in raw:
        raise InvalidCommand("missing field 'cmd'")
    name = raw["cmd"]
    spec = COMMANDS.get(name) if isinstance(name, str) else None
    if spec is None or frontend not in spec.frontends:
        raise UnknownCommand(f"unknown command {name!r}")
    try:
        return msgspec.convert(raw, spec.kind)
    except msgspec.ValidationError as exc:
        raise InvalidCommand(str(exc)) from exc
