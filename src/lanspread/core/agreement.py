"""The majority agreement between the manifests of several sources.

Theory of agreement
-------------------
Every source that advertises the latest version sends its manifest, and
:func:`agree_manifests` decides what the download will contain:

1. A manifest that fails validation excludes its source (``INVALID_MANIFEST``).
2. The *header* (game id, version, chunk size) held by **more than half** of the
   valid sources wins; sources with another header are excluded (``HEADER``).
   When no header has a strict majority the agreement fails: *sources disagree*.
3. A path is part of the agreed manifest iff **more than half** of the remaining
   sources hold it. Because two strict majorities always share a source, the
   agreed paths never contain a file/folder or case collision that no single
   valid manifest has. A path held by half or fewer is dropped and each holder
   is reported (``EXTRA``); a source lacking an agreed path is reported
   (``MISSING``).
4. An agreed path's file version (size and chunk digests) must be held by **more
   than half** of the remaining sources; holders of another version are reported
   (``SIZE`` or ``CONTENT``). A tie, or a plurality short of a majority, fails the
   agreement (*sources disagree*, naming the peers of each version): nothing is
   ever decided by the ordering of digests, which anyone can grind.
5. A source is eligible for a path iff it holds exactly the winning version.

Votes are cheap (an identity costs nothing), so no download relies on a majority:
the source check hands this only sources offering one manifest digest, vouched for
by the party catalog's pin (``core/party``) or by the player's choice in a content
conflict (``core/conflict``). These rules remain the last line of defence.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from lanspread.core.manifest import (
    FileManifest,
    GameManifest,
    ManifestError,
    file_digest,
    validate_manifest,
)


class DisagreementKind(enum.Enum):
    INVALID_MANIFEST = "invalid-manifest"
    """The source's manifest broke the manifest rules; it serves nothing."""
    HEADER = "header"
    """Game id, version or chunk size differ from the majority; it serves nothing."""
    MISSING = "missing"
    """The source lacks a file the majority holds."""
    EXTRA = "extra"
    """The source holds a file that half or fewer of the sources hold; it is dropped."""
    SIZE = "size"
    """The source's file has another size than the agreed one."""
    CONTENT = "content"
    """Same size, but some chunk digests differ from the agreed ones."""


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One way a source's manifest differs from the agreed one."""

    source: str
    path: str | None
    """The file concerned; ``None`` when the whole manifest is concerned."""
    kind: DisagreementKind
    detail: str
    """What differed, for the log and the UI."""


@dataclass(frozen=True, slots=True)
class Agreement:
    """The result of :func:`agree_manifests`."""

    manifest: GameManifest
    """The agreed manifest (valid: it passes :func:`validate_manifest`)."""
    eligible: Mapping[str, frozenset[str]]
    """For each agreed path, the sources holding exactly the agreed file (never empty)."""
    disagreements: tuple[Disagreement, ...]
    """Sorted by source, then path."""
    sources: frozenset[str]
    """Sources whose manifest was valid and matched the agreed header."""


def agree_manifests(by_source: Mapping[str, GameManifest]) -> Agreement:
    """The majority manifest of the sources advertising the latest version.

    See the module docstring for the rules. Raises :class:`ValueError` for an empty
    mapping (the caller has no source at all) and :class:`ManifestError` when no
    source sent a valid manifest, or when the majority files together break a
    bound that each source kept (three sources holding two of three large files
    each: every file has a majority, the union is too big).
    """
    if not by_source:
        raise ValueError("agree_manifests needs at least one source")
    disagreements: list[Disagreement] = []
    valid = _valid_manifests(by_source, disagreements)
    if not valid:
        reasons = "; ".join(f"{item.source}: {item.detail}" for item in disagreements)
        raise ManifestError(f"no source sent a valid manifest ({reasons})")
    agreed_sources = _agree_header(valid, disagreements)
    header = valid[min(agreed_sources)]
    files: list[FileManifest] = []
    eligible: dict[str, frozenset[str]] = {}
    files_by_source = {src: valid[src].by_path() for src in sorted(agreed_sources)}
    for path in sorted({path for held in files_by_source.values() for path in held}):
        holders = {src: held.get(path) for src, held in files_by_source.items()}
        winner = _agree_file(path, holders, disagreements)
        if winner is not None:
            files.append(winner)
            eligible[path] = frozenset(src for src, held in holders.items() if held == winner)
    manifest = GameManifest(
        game_id=header.game_id,
        version=header.version,
        chunk_size=header.chunk_size,
        files=tuple(files),
    )
    try:
        validate_manifest(manifest)
    except ManifestError as exc:
        raise ManifestError(f"the sources' majority manifest is unusable: {exc}") from exc
    disagreements.sort(key=lambda item: (item.source, item.path or "", item.kind.value))
    return Agreement(
        manifest=manifest,
        eligible=MappingProxyType(eligible),
        disagreements=tuple(disagreements),
        sources=frozenset(agreed_sources),
    )


def _valid_manifests(
    by_source: Mapping[str, GameManifest], disagreements: list[Disagreement]
) -> dict[str, GameManifest]:
    valid: dict[str, GameManifest] = {}
    for source, manifest in by_source.items():
        try:
            validate_manifest(manifest)
        except ManifestError as exc:
            disagreements.append(
                Disagreement(source, None, DisagreementKind.INVALID_MANIFEST, str(exc))
            )
        else:
            valid[source] = manifest
    return valid


def _header(manifest: GameManifest) -> tuple[str, str, int]:
    return (manifest.game_id, manifest.version or "", manifest.chunk_size)


def _agree_header(valid: Mapping[str, GameManifest], disagreements: list[Disagreement]) -> set[str]:
    """Sources holding the header more than half of them hold; else *sources disagree*."""
    groups: dict[tuple[str, str, int], set[str]] = {}
    for source, manifest in valid.items():
        groups.setdefault(_header(manifest), set()).add(source)
    winner = _strict_majority(groups, len(valid))
    if winner is None:
        raise ManifestError(
            "sources disagree on the version or chunk size: "
            + _describe_groups(
                {f"version {h[1] or None!r} chunk size {h[2]}": g for h, g in groups.items()}
            )
        )
    agreed: set[str] = set()
    for source, manifest in valid.items():
        if _header(manifest) == winner:
            agreed.add(source)
            continue
        disagreements.append(
            Disagreement(
                source,
                None,
                DisagreementKind.HEADER,
                f"game {manifest.game_id!r} version {manifest.version!r} chunk size "
                f"{manifest.chunk_size}, agreed game {winner[0]!r} version "
                f"{winner[1] or None!r} chunk size {winner[2]}",
            )
        )
    return agreed


def _agree_file(
    path: str,
    holders: Mapping[str, FileManifest | None],
    disagreements: list[Disagreement],
) -> FileManifest | None:
    """The agreed version of ``path``, or ``None`` when half or fewer sources hold it.

    Raises :class:`ManifestError` (*sources disagree*) when the holders split so that no
    version is held by more than half of the sources.
    """
    held = {source: file for source, file in holders.items() if file is not None}
    if 2 * len(held) <= len(holders):
        disagreements.extend(
            Disagreement(
                source,
                path,
                DisagreementKind.EXTRA,
                f"held by {len(held)} of {len(holders)} sources; dropped",
            )
            for source in held
        )
        return None
    groups: dict[FileManifest, set[str]] = {}
    for source, version in held.items():
        groups.setdefault(version, set()).add(source)
    winner = _strict_majority(groups, len(holders))
    if winner is None:
        raise ManifestError(
            f"sources disagree on {path!r}: "
            + _describe_groups(
                {
                    f"size {version.size} digest {file_digest(version).hex()[:12]}": members
                    for version, members in groups.items()
                }
            )
            + f"; no version is held by more than half of the {len(holders)} sources"
        )
    for source, file in holders.items():
        if file is None:
            disagreements.append(
                Disagreement(
                    source,
                    path,
                    DisagreementKind.MISSING,
                    f"held by {len(held)} of {len(holders)} sources",
                )
            )
        elif file != winner:
            disagreements.append(_file_difference(source, file, winner))
    return winner


_K = TypeVar("_K")


def _strict_majority(groups: Mapping[_K, set[str]], total: int) -> _K | None:
    """The key whose group holds more than half of ``total`` sources, if any."""
    for key, members in groups.items():
        if 2 * len(members) > total:
            return key
    return None


def _describe_groups(groups: Mapping[str, set[str]]) -> str:
    """``a, b hold <label>; c holds <label>``, largest group first, then by peer."""
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), sorted(item[1])))
    return "; ".join(
        f"{', '.join(sorted(members))} {'hold' if len(members) > 1 else 'holds'} {label}"
        for label, members in ordered
    )


def _file_difference(source: str, file: FileManifest, agreed: FileManifest) -> Disagreement:
    if file.size != agreed.size:
        return Disagreement(
            source,
            file.path,
            DisagreementKind.SIZE,
            f"size {file.size}, agreed {agreed.size}",
        )
    differing = [
        mine.offset
        for mine, theirs in zip(file.chunks, agreed.chunks, strict=True)
        if mine != theirs
    ]
    return Disagreement(
        source,
        file.path,
        DisagreementKind.CONTENT,
        f"{len(differing)} of {len(file.chunks)} chunks differ, first at offset {differing[0]}",
    )


def restrict_eligibility(
    eligible: Mapping[str, Iterable[str]], live_sources: Iterable[str]
) -> dict[str, frozenset[str]]:
    """``eligible`` limited to ``live_sources`` (paths may end up with no source)."""
    live = frozenset(live_sources)
    return {path: frozenset(sources) & live for path, sources in eligible.items()}
