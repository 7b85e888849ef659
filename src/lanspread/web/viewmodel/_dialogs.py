"""The dialogs and toasts about the player's files: uninstall, verify, and what was kept."""

from __future__ import annotations

from lanspread.runtime.replies import UninstallPlan, VerifyReply
from lanspread.web.viewmodel._facts import NoticeFacts
from lanspread.web.viewmodel._labels import count_label, format_bytes
from lanspread.web.viewmodel._views import (
    FileListView,
    NoticeView,
    UninstallDialogView,
    VerifyView,
)

# A dialog lists the first few paths and counts the rest: a game with a thousand
# saves must not push the buttons off the screen.
MAX_LISTED_FILES = 5
KEEP_LABEL = "Keep my saves and settings"


def uninstall_text(name: str) -> str:
    return (
        f"Uninstall {name}? The downloaded files stay, "
        "so you can install it again without downloading."
    )


def file_list(paths: tuple[str, ...]) -> FileListView:
    """The first :data:`MAX_LISTED_FILES` paths and "and N more"."""
    shown = paths[:MAX_LISTED_FILES]
    rest = len(paths) - len(shown)
    return FileListView(paths=shown, more_label=f"and {rest:,} more" if rest else None)


def deletes_label(files: int, size: int, players: int = 0, *, kept: bool = False) -> str:
    """ "Deletes 1,234 files, 2.1 GB", and what becomes of the player's ``players`` files."""
    if files == 0:
        return "Deletes nothing: the folder holds only your files"
    label = f"Deletes {count_label(files, 'file', 'files')}, {format_bytes(size)}"
    if players and kept:
        yours = count_label(players, "file", "files")
        return f"{label}; your {yours} {'stays' if players == 1 else 'stay'}"
    if players:
        return f"{label}, yours included"
    return label


def uninstall_dialog(name: str, everything: UninstallPlan) -> UninstallDialogView:
    """The confirmation from the dry run without keep_saves (one scan of the folder:
    keeping deletes the same minus the player's files, which only an install record
    can tell apart, so there are none without one)."""
    players = everything.players_files
    keep_files = everything.delete_files - len(players)
    keep_bytes = everything.delete_bytes - everything.players_bytes
    return UninstallDialogView(
        game=everything.game,
        title=f"Uninstall {name}?",
        text="The downloaded files stay, so you can install it again without downloading.",
        delete_label=deletes_label(everything.delete_files, everything.delete_bytes, len(players)),
        keep_delete_label=deletes_label(keep_files, keep_bytes, len(players), kept=True),
        players_title=(
            f"Your own files here (saves, settings): {len(players):,}" if players else None
        ),
        players=file_list(players),
        keep_label=KEEP_LABEL,
        keep_offered=bool(players),
        keep_default=bool(players),
        confirm_label="Uninstall",
        keep_aria_label=f"{KEEP_LABEL} of {name}",
    )


def verify_view(name: str, reply: VerifyReply, *, repairable: bool) -> VerifyView:
    """The inline result of Verify files; Repair only when something is changed or missing
    and the runtime would accept it (``repairable``: the downloaded files are here)."""
    changed, missing, added = reply.changed, reply.missing, reply.added
    if reply.ok:
        headline = f"All {count_label(reply.shipped_files, 'game file is', 'game files are')}"
        headline += " intact"
    else:
        parts = [f"{len(changed):,} changed"] if changed else []
        parts += [f"{len(missing):,} missing"] if missing else []
        headline = ", ".join(parts)
    damaged = bool(changed or missing)
    can_repair = damaged and repairable
    return VerifyView(
        game=reply.game,
        ok=reply.ok,
        headline=headline,
        tone="ok" if reply.ok else "warn",
        changed_title="Changed" if changed else None,
        changed=file_list(changed),
        missing_title="Missing" if missing else None,
        missing=file_list(missing),
        players_label=(
            f"{count_label(len(added), 'file', 'files')} of your own (saves, settings, mods) "
            "not counted"
            if added
            else None
        ),
        can_repair=can_repair,
        repair_note=(
            "Repair needs the downloaded files, and they are gone: download the game again."
            if damaged and not repairable
            else None
        ),
        repair_label="Repair",
        repair_aria_label=f"Repair {name}",
        repair_title=f"Repair {name}?",
        repair_confirm=(
            "Changed and missing game files are extracted again from the downloaded files. "
            "Your own files stay where they are, and a game file you changed (a config) is "
            f"kept beside the fresh one as {_mine_example(changed)}."
        ),
    )


def unrecorded_verify_view(game_id: str, name: str, *, repairable: bool) -> VerifyView:
    """Verify of a game installed without an install record: nothing to compare with;
    Repair extracts it again and records it, keeping whatever differs as ``.mine``."""
    empty = file_list(())
    return VerifyView(
        game=game_id,
        ok=False,
        headline="lanspread has no record of these files, so it cannot check them",
        tone="warn",
        changed_title=None,
        changed=empty,
        missing_title=None,
        missing=empty,
        players_label=None,
        can_repair=repairable,
        repair_note=(
            None
            if repairable
            else "Repair needs the downloaded files, and they are gone: download the game again."
        ),
        repair_label="Repair",
        repair_aria_label=f"Repair {name}",
        repair_title=f"Repair {name}?",
        repair_confirm=(
            "The game files are extracted again from the downloaded files and recorded, "
            "so Verify can check them next time. Files that are not the game's stay where "
            "they are, and a file that differs from the game's is kept beside the fresh "
            "one as <its name>.mine."
        ),
    )


def notice_view(notice: NoticeFacts, names: dict[str, str]) -> NoticeView:
    """ "Kept your 3 files; your changed q3config.cfg is kept as q3config.cfg.mine"."""
    title = names.get(notice.game_id, notice.game_id)
    if notice.message:
        return NoticeView(
            id=notice.id, title=title, text=notice.message, kind=notice.kind, download=True
        )
    parts = []
    if notice.kept:
        where = " in its folder" if notice.uninstalled else ""
        parts.append(f"Kept your {count_label(len(notice.kept), 'file', 'files')}{where}")
    if len(notice.renamed) == 1:
        path, kept_as = notice.renamed[0]
        parts.append(f"your changed {_base(path)} is kept as {_base(kept_as)}")
    elif notice.renamed:
        first = _base(notice.renamed[0][0])
        more = len(notice.renamed) - 1
        parts.append(
            f"your changed {first} and {count_label(more, 'other file', 'other files')} "
            "are kept beside the new ones as .mine"
        )
    text = "; ".join(parts)
    return NoticeView(
        id=notice.id,
        title=title,
        text=text[:1].upper() + text[1:],
    )


def _mine_example(changed: tuple[str, ...]) -> str:
    """ "config.ini.mine" for the first changed file, or the rule in words."""
    return f"{_base(changed[0])}.mine" if changed else "<its name>.mine"


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]
