"""The source check of a download: which answered manifests it uses, and what it reports.

The asked sources' answers, in the order they were asked: a source that did not
describe the game is skipped, one that answered another version than the newest
is reported; with none left the download fails, saying so when every source is
still hashing the game. Offers the party catalog does not pin are reported; a
pinned version keeps only the sources whose manifest digest is the pin (none
left: fails). An unpinned version whose sources offer different manifests is a
conflict (``core/conflict``): the download fails with the sides listed until the
player chose one, then keeps only the sources of the chosen digest. The rest go to
:func:`~lanspread.core.manifest.agree_manifests`, whose disagreements are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from lanspread.core.agreement import Agreement, agree_manifests
from lanspread.core.conflict import (
    CHOSEN_AUTHORITY,
    ContentConflict,
    chosen_failure,
    conflict_failure,
    find_conflict,
)
from lanspread.core.engine.messages import ManifestsAnswered, ManifestUnavailable, RejectSource
from lanspread.core.manifest import GameManifest, ManifestError
from lanspread.core.party import check_pin, pinned_failure


@dataclass(frozen=True, slots=True)
class Settled:
    """The outcome: an agreement and its sources, or the failure; the reports either way."""

    rejections: tuple[RejectSource, ...]
    agreement: Agreement | None
    sources: tuple[str, ...] = ()
    """The sources whose manifest was used, sorted."""
    failure: str = ""
    conflict: ContentConflict | None = None
    """The failure is a content conflict the player resolves."""


def settle_manifests(
    game_id: str,
    latest: str | None,
    asked: tuple[str, ...],
    event: ManifestsAnswered,
    name: str | None = None,
) -> Settled:
    """Apply the rules of the module docstring to ``event``'s answers; failures name the
    game ``name`` (its catalog name; the id when not given)."""
    name = name or game_id
    out: list[RejectSource] = []
    manifests: dict[str, GameManifest] = {}
    answers = [event.answers.get(peer, ManifestUnavailable("no answer")) for peer in asked]
    for peer, answer in zip(asked, answers, strict=True):
        if isinstance(answer, ManifestUnavailable):
            continue
        if answer.version != latest:
            out.append(RejectSource(peer, f"offered version {answer.version}, not {latest}"))
        else:
            manifests[peer] = answer
    if not manifests:
        if answers and all(isinstance(a, ManifestUnavailable) and a.not_ready for a in answers):
            reason = f"the peers are still preparing {name} for sharing; try again shortly"
        else:
            reason = f"no peer could describe {name} right now"
        return Settled(tuple(out), None, failure=reason)
    for peer, offered in event.unpinned:
        out.append(RejectSource(peer, f"offers {offered}, which the party catalog does not pin"))
    if event.pinned_digest is not None and latest is not None:
        decision = check_pin(game_id, latest, event.pinned_digest, manifests)
        out.extend(RejectSource(r.source, r.reason) for r in decision.rejected)
        if not decision.usable:
            failure = pinned_failure(name, latest, len(manifests))
            return Settled(tuple(out), None, failure=failure)
        manifests = dict(decision.usable)
    elif event.chosen_digest is not None and latest is not None:
        decision = check_pin(
            game_id, latest, event.chosen_digest, manifests, authority=CHOSEN_AUTHORITY
        )
        out.extend(RejectSource(r.source, r.reason) for r in decision.rejected)
        if not decision.usable:
            failure = chosen_failure(game_id, latest, len(manifests))
            return Settled(tuple(out), None, failure=failure)
        manifests = dict(decision.usable)
    elif latest is not None and (conflict := find_conflict(game_id, latest, manifests)):
        return Settled(tuple(out), None, failure=conflict_failure(conflict), conflict=conflict)
    try:
        agreement = agree_manifests(manifests)
    except ManifestError as exc:
        return Settled(tuple(out), None, failure=str(exc))
    out.extend(RejectSource(d.source, d.detail) for d in agreement.disagreements)
    return Settled(tuple(out), agreement, tuple(sorted(manifests)))
