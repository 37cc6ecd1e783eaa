"""Parse unified diffs as models write them: fenced or bare, with or without @@ line numbers."""

from __future__ import annotations

import re

from council.edits.model import FileEdit, Hunk
from council.edits.paths import clean_path

_HUNK = re.compile(r"^@@+\s*(?:-(\d+)(?:,\d+)?)?")
_META = (
    "diff --git ",
    "index ",
    "new file mode",
    "deleted file mode",
    "old mode",
    "new mode",
    "similarity index",
    "rename from",
    "rename to",
    "Index: ",
    "=====",
)
_STAMP = re.compile(r"\s+\d{4}-\d\d-\d\d[ T].*$")
DEV_NULL = "/dev/null"


def is_header(lines: list[str], i: int) -> bool:
    """A `--- old` line directly followed by `+++ new` starts one file's diff."""
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def looks_like_diff(lines: list[str], start: int) -> bool:
    """Whether the block starting at `start` opens like a diff (first non-blank lines)."""
    for i in range(start, min(start + 3, len(lines))):
        line = lines[i]
        if not line.strip():
            continue
        return line.startswith(("diff --git ", "@@")) or is_header(lines, i)
    return False


def _header_path(raw: str) -> str:
    raw = raw.split("\t", 1)[0].strip()
    raw = _STAMP.sub("", raw)
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1]
    return raw


def _file_edit(old: str, new: str) -> FileEdit:
    # git prefixes: strip a/ and b/ only when the pair shows they are prefixes, not folders.
    old_git = old.startswith("a/") and (new.startswith("b/") or new == DEV_NULL)
    new_git = new.startswith("b/") and (old.startswith("a/") or old == DEV_NULL)
    old = old[2:] if old_git else old
    new = new[2:] if new_git else new
    if old == DEV_NULL:
        return FileEdit(path=clean_path(new), kind="udiff", hunks=[], is_new_file=True)
    if new == DEV_NULL:
        return FileEdit(path=clean_path(old), kind="udiff", hunks=[], is_delete=True)
    return FileEdit(path=clean_path(new), kind="udiff", hunks=[])


def _finish(edits: list[FileEdit]) -> list[FileEdit]:
    kept = []
    for edit in edits:
        hunks = []
        for hunk in edit.hunks or []:
            # A blank line before the closing fence is not a context line the file has.
            while hunk.lines and hunk.lines[-1] == " ":
                hunk.lines.pop()
            if hunk.changes:
                hunks.append(hunk)
        edit.hunks = hunks
        if hunks or edit.is_new_file or edit.is_delete:
            kept.append(edit)
    return kept


def parse_diff(
    lines: list[str],
    start: int,
    *,
    fenced: bool = False,
    fallback_path: str | None = None,
) -> tuple[list[FileEdit], int]:
    """Parse diff lines from `start`; returns the file edits and the index after the diff.

    `fenced` means `lines` is the body of a diff fence: all of it is diff, and stray lines inside
    a hunk count as context. Otherwise the diff ends at the first line that is not diff.
    """
    edits: list[FileEdit] = []
    current: FileEdit | None = None
    hunk: Hunk | None = None
    i = start
    while i < len(lines):
        line = lines[i]
        if is_header(lines, i):
            current = _file_edit(_header_path(line[4:]), _header_path(lines[i + 1][4:]))
            edits.append(current)
            hunk = None
            i += 2
            continue
        if line.startswith(_META) and hunk is None:
            i += 1
            continue
        m = _HUNK.match(line)
        if m:
            if current is None and fallback_path:
                current = FileEdit(path=fallback_path, kind="udiff", hunks=[])
                edits.append(current)
            hunk = None
            if current is not None:
                hunk = Hunk(old_start=int(m.group(1)) if m.group(1) else None)
                assert current.hunks is not None
                current.hunks.append(hunk)
            i += 1
            continue
        if hunk is not None:
            if line[:1] in (" ", "-", "+"):
                hunk.lines.append(line)
            elif line.startswith("\\"):
                pass  # "\ No newline at end of file"
            elif line == "":
                if not fenced and not _continues(lines, i + 1):
                    break
                hunk.lines.append(" ")  # editors and models strip the space of blank context
            elif fenced:
                hunk.lines.append(" " + line)  # a context line that lost its leading space
            else:
                break
        elif not fenced and line.strip() and not line.startswith(_META):
            break
        i += 1
    return _finish(edits), i


def _continues(lines: list[str], i: int) -> bool:
    while i < len(lines) and lines[i] == "":
        i += 1
    return i < len(lines) and lines[i][:1] in (" ", "-", "+", "@")
