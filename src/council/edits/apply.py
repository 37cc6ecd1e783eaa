"""Apply parsed edits under a root folder: validate every path, compose in memory, then write.

Nothing is written for an edit the policy refuses or that does not apply. Files are replaced
atomically (temp file in the same folder, then os.replace), keep their line endings, BOM and
mode, and several edits to one file compose in the order given.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from council.edits.match import Ambiguous, Match, closest, find
from council.edits.model import ApplyResult, EditPolicy, Failure, FileEdit, Hunk, Refusal
from council.edits.validate import normalize, refusal_reason, symlink_reason

_BOM = "\ufeff"
# Lazy placeholders models put in "whole" files; writing them would delete the elided code.
_ELISION = re.compile(
    r"^\s*(?:#|//|/\*|<!--|--|\*)\s*(?:"
    r"(?:\.\.\.|…)"
    r"|.*\b(?:rest|remainder) of (?:the )?(?:file|code|class|module|function|methods?|tests?)\b"
    r"|.*\b(?:remains?|stays?|is|are|left) (?:the same|unchanged|as is|as before)\b"
    r")",
    re.IGNORECASE,
)


@dataclass
class _File:
    """The in-memory state of one target file while edits compose."""

    exists: bool
    text: str | None = None  # normalised to \n; None when the file does not exist (or is deleted)
    original: str | None = None
    crlf: bool = False
    bom: bool = False
    mode: int | None = None
    edits: list[FileEdit] = field(default_factory=list)


def _split(text: str) -> tuple[list[str], bool]:
    lines = text.split("\n")
    if lines[-1] == "":
        return lines[:-1], True
    return lines, False


def _join(lines: list[str], trailing: bool) -> str:
    return "\n".join(lines) + ("\n" if trailing and lines else "")


def _load(root: Path, norm: str) -> _File | str:
    target = root / norm
    if not target.exists():
        return _File(exists=False)
    if not target.is_file():
        return f"`{norm}` exists and is not a regular file"
    raw = target.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"`{norm}` is not a UTF-8 text file; it cannot be edited as text"
    bom = text.startswith(_BOM)
    text = text.removeprefix(_BOM)
    crlf = "\r\n" in text
    text = text.replace("\r\n", "\n")
    return _File(True, text, text, crlf, bom, target.stat().st_mode & 0o7777)


class _NotApplied(Exception):
    def __init__(
        self, reason: str, closest: str = "", search: str = "", *, ambiguous: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason, self.closest, self.search = reason, closest, search
        self.ambiguous = ambiguous


def _locate(
    lines: list[str], search: list[str], replace: list[str], path: str, what: str
) -> list[str]:
    return _replace_at(lines, _match(lines, search, replace, path, what))


def _replace_at(lines: list[str], found: Match) -> list[str]:
    return lines[: found.start] + found.replacement + lines[found.end :]


def _match(lines: list[str], search: list[str], replace: list[str], path: str, what: str) -> Match:
    """Where `search` sits in `lines`; _NotApplied (with the closest text) when nowhere or twice."""
    found = find(lines, search, replace)
    if isinstance(found, Match):
        return found
    text = _join(search, True)
    if isinstance(found, Ambiguous):
        where = ", ".join(str(s + 1) for s in found.starts)
        snippets = "\n...\n".join("\n".join(lines[s : s + found.length]) for s in found.starts[:3])
        raise _NotApplied(
            f"{what} matches {len(found.starts)} places in `{path}` (lines {where}); "
            "add surrounding lines so that it matches exactly one place",
            snippets,
            text,
            ambiguous=True,
        )
    raise _NotApplied(f"{what} does not match any lines in `{path}`", closest(lines, search), text)


def _lf(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n")


def _search_replace(state: _File, edit: FileEdit, path: str) -> str:
    search, _ = _split(_lf(edit.search))
    replace, _ = _split(_lf(edit.replace))
    if not search:
        if not state.text:
            return _join(replace, True)
        sep = "" if state.text.endswith("\n") else "\n"
        return state.text + sep + _join(replace, True)  # empty SEARCH appends
    if state.text is None:
        raise _NotApplied(
            f"`{path}` does not exist; to create it, use an empty SEARCH section",
            search=_join(search, True),
        )
    lines, trailing = _split(state.text)
    found = _match(lines, search, replace, path, "The SEARCH text")
    if found.end == len(lines):
        # The edit rewrites the file's last line: its end is the answer's text, not the file's
        # (a REPLACE section's lines end with a newline even where the old last line had none).
        replaced = _lf(edit.replace)
        trailing = replaced.endswith("\n") or not replaced
    return _join(_replace_at(lines, found), trailing)


def _apply_hunk(lines: list[str], hunk: Hunk, path: str, label: str) -> list[str]:
    before, after = hunk.before, hunk.after
    if not before:
        return lines + after  # no context at all: models mean "add at the end"
    try:
        return _locate(lines, before, after, path, label)
    except _NotApplied as first:
        if first.ambiguous:
            raise
        # Models invent or misremember edge context lines: retry with less of it, the least
        # trimming first, and only accept a place the shorter text still pins down uniquely.
        body = hunk.lines
        lead = next((k for k, x in enumerate(body) if x[:1] != " "), len(body))
        trail = next((k for k, x in enumerate(reversed(body)) if x[:1] != " "), len(body))
        cuts = [(a, b) for a in range(min(lead, 3) + 1) for b in range(min(trail, 3) + 1) if a or b]
        for a, b in sorted(cuts, key=sum):
            trimmed = Hunk(body[a : len(body) - b])
            if not any(x.strip() for x in trimmed.before):
                continue
            found = find(lines, trimmed.before, trimmed.after)
            if isinstance(found, Match):
                return _replace_at(lines, found)
        raise


def _udiff(state: _File, edit: FileEdit, path: str) -> str | None:
    hunks = [Hunk([x.removesuffix("\r") for x in h.lines], h.old_start) for h in edit.hunks or []]
    if edit.is_delete:
        if state.text is None:
            raise _NotApplied(f"`{path}` cannot be deleted: it does not exist")
        return None
    if state.text is None or edit.is_new_file:
        new = _join([x for h in hunks for x in h.after], True)
        if state.text is None and all(not h.before for h in hunks):
            return new
        if state.text is None:
            raise _NotApplied(
                f"`{path}` does not exist; a diff that creates it must start from /dev/null",
                search=_join(hunks[0].before, True),
            )
        if state.text.strip() and state.text != new:
            raise _NotApplied(
                f"`{path}` already exists; send a diff against its current content instead "
                "of one from /dev/null",
                closest="\n".join(state.text.split("\n")[:20]),
            )
        return new
    lines, trailing = _split(state.text)
    failures: list[_NotApplied] = []
    for n, hunk in enumerate(hunks, 1):
        label = f"Hunk {n} of {len(hunks)}" if len(hunks) > 1 else "The hunk"
        try:
            lines = _apply_hunk(lines, hunk, path, label)
        except _NotApplied as exc:
            failures.append(exc)
    if failures:
        if len(failures) == 1:
            raise failures[0]
        raise _NotApplied(
            "; ".join(f.reason for f in failures),
            "\n...\n".join(f.closest for f in failures if f.closest),
            "\n".join(f.search for f in failures),
        )
    return _join(lines, trailing)


def _whole(state: _File, edit: FileEdit, path: str) -> str:
    content = _lf(edit.content)
    if state.text is not None:
        known = set(state.text.split("\n"))
        for line in content.split("\n"):
            if _ELISION.match(line) and line not in known:
                raise _NotApplied(
                    f"the new content of `{path}` elides code (`{line.strip()}`); send the "
                    "complete file, or SEARCH/REPLACE blocks for just the lines that change",
                )
    return content


def _new_text(state: _File, edit: FileEdit, path: str) -> str | None:
    if edit.kind == "whole":
        return _whole(state, edit, path)
    if edit.kind == "search_replace":
        return _search_replace(state, edit, path)
    return _udiff(state, edit, path)


def _encode(state: _File, text: str) -> bytes:
    if state.crlf:
        text = text.replace("\n", "\r\n")
    return ((_BOM if state.bom else "") + text).encode("utf-8")


def _write(root: Path, norm: str, state: _File) -> None:
    reason = symlink_reason(root, norm)  # again: an earlier write must not have opened a way out
    if reason:
        raise OSError(reason)
    target = root / norm
    if state.text is None:
        target.unlink()
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_encode(state, state.text))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, state.mode if state.mode is not None else 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def apply_edits(root: Path, edits: Sequence[FileEdit], policy: EditPolicy) -> ApplyResult:
    """Validate every edit, compose the allowed ones per file, and write the results."""
    root = Path(root)
    result = ApplyResult()
    files: dict[str, _File] = {}
    for edit in edits:
        reason = refusal_reason(root, edit.path, policy)
        if reason:
            result.refused.append(Refusal(edit.path, reason))
            continue
        norm = normalize(edit.path)
        state = files.get(norm)
        if state is None:
            loaded = _load(root, norm)
            if isinstance(loaded, str):
                result.failed.append(Failure(edit, loaded))
                continue
            state = files[norm] = loaded
        try:
            text = _new_text(state, edit, norm)
        except _NotApplied as exc:
            result.failed.append(Failure(edit, exc.reason, exc.closest, exc.search))
            continue
        size = len(_encode(state, text)) if text is not None else 0
        if size > policy.max_file_bytes:
            result.refused.append(
                Refusal(
                    edit.path,
                    f"`{norm}` would be {size} bytes, over the limit of "
                    f"{policy.max_file_bytes} bytes (`limits.max_file_kb` in council.yaml)",
                )
            )
            continue
        state.text = text
        state.edits.append(edit)
    for norm, state in files.items():
        if not state.edits:
            continue
        try:
            if state.text != state.original or state.exists != (state.text is not None):
                _write(root, norm, state)
        except OSError as exc:
            for edit in state.edits:
                result.failed.append(Failure(edit, f"`{norm}` could not be written: {exc}"))
            continue
        result.applied.append(norm)
    return result
