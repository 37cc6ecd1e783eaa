"""Turn a model's answer into FileEdits: whole files, SEARCH/REPLACE blocks and unified diffs.

Models wrap edits in prose, put several files in one answer, label fences with the wrong
language, and name the file in a heading, in bold, in the fence info string or in a comment on
the first line. The scanner walks the answer once, in order, so edits come back in the order the
model wrote them (which is the order they are applied).
"""

from __future__ import annotations

import re

from council.edits.model import FileEdit
from council.edits.paths import (
    lang_fits,
    parse_info,
    path_from_comment,
    path_from_label,
    path_from_prose,
)
from council.edits.udiff import is_header, looks_like_diff, parse_diff
from council.fences import DIFF_LANGS, Fence, closes, dedent, diff_end, fence_end, open_fence

# ORIGINAL/UPDATED is the older aider spelling some models still produce.
SEARCH = re.compile(r"^(\s*)<{5,9} ?(?:SEARCH|ORIGINAL)\s*$")
DIVIDER = re.compile(r"^\s*={5,9}\s*$")
REPLACE = re.compile(r"^\s*>{5,9} ?(?:REPLACE|UPDATED)\s*$")
# A sentence that mentions a file before showing how to use it is not labelling the file.
_USAGE = re.compile(
    r"\b(?:for example|example|usage|how to|you can|run|running|execute|output|terminal|"
    r"command|invoke|try it)s?\b",
    re.IGNORECASE,
)


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _search_replace_path(lines: list[str], marker: int, wrapper_at: int | None) -> str | None:
    """The path named just above a SEARCH marker: label, prose, or the fence info string.

    The look-back may pass the fence that wraps the block, but no other fence: beyond that lies
    an earlier block's content, whose lines are not labels.
    """
    seen = 0
    for j in range(marker - 1, -1, -1):
        line = lines[j]
        if REPLACE.match(line) or DIVIDER.match(line) or SEARCH.match(line):
            return None
        if not line.strip():
            continue
        fence = open_fence(line)
        if fence:
            if j != wrapper_at:
                return None
            path = parse_info(fence.info)[1]
            if path:
                return path
            continue
        path = path_from_label(line) or path_from_prose(line)
        if path:
            return path
        seen += 1
        if seen >= 3:
            return None
    return None


def _search_replace_ahead(lines: list[str], start: int) -> bool:
    for i in range(start, min(start + 3, len(lines))):
        if SEARCH.match(lines[i]):
            return True
        if open_fence(lines[i]):
            return False
    return False


def _parse_block(lines: list[str], i: int, path: str | None) -> tuple[FileEdit | None, int]:
    """Parse one SEARCH/REPLACE block whose marker is at `i`; malformed blocks yield None."""
    m = SEARCH.match(lines[i])
    assert m is not None
    indent = m.group(1)
    parts: list[list[str]] = [[], []]
    part = 0
    j = i + 1
    while j < len(lines):
        line = lines[j]
        if SEARCH.match(line):
            return None, j  # a new block started before this one ended
        if DIVIDER.match(line) and part == 0:
            part = 1
        elif REPLACE.match(line) and part == 1:
            break
        else:
            parts[part].append(line)
        j += 1
    else:
        return None, j
    search, replace = parts
    if indent and all(x.startswith(indent) for x in search + replace if x.strip()):
        search = [x[len(indent) :] for x in search]
        replace = [x[len(indent) :] for x in replace]
    if path is None:
        return None, j + 1
    edit = FileEdit(path=path, kind="search_replace", search=_text(search), replace=_text(replace))
    return edit, j + 1


def _label_before(lines: list[str], fence_line: int) -> tuple[str | None, bool]:
    """(path, from_label) from the lines just above a fence: a label line, else quoted in prose."""
    seen = 0
    for j in range(fence_line - 1, max(-1, fence_line - 6), -1):
        line = lines[j]
        if not line.strip():
            continue
        if open_fence(line) or REPLACE.match(line):
            break
        path = path_from_label(line)
        if path:
            return path, True
        if seen == 0 and not _USAGE.search(line):
            path = path_from_prose(line)
            if path:
                return path, False
        seen += 1
        if seen >= 2:
            break
    return None, False


def _whole_file(lines: list[str], start: int, end: int, fence: Fence) -> FileEdit | None:
    body = dedent(lines[start + 1 : end], fence.indent)
    lang, path = parse_info(fence.info)
    if not path:
        label, from_label = _label_before(lines, start)
        if label and (from_label or lang_fits(lang, label)):
            path = label
    if not path and body:
        path = path_from_comment(body[0])
        if path:
            body = body[1:]  # the comment only labelled the block
    if not path:
        return None
    return FileEdit(path=path, kind="whole", content=_text(body))


def parse_edits(text: str) -> list[FileEdit]:
    """Every edit in a model's answer, in the order written; [] when the answer holds none."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    edits: list[FileEdit] = []
    last_path: str | None = None  # SEARCH/REPLACE blocks may omit the path after the first
    wrapper: Fence | None = None  # the fence around SEARCH/REPLACE blocks, if any
    wrapper_at: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if SEARCH.match(line):
            path = _search_replace_path(lines, i, wrapper_at if wrapper else None) or last_path
            edit, i = _parse_block(lines, i, path)
            if edit:
                edits.append(edit)
                last_path = edit.path
            continue
        fence = open_fence(line)
        if fence is None:
            if is_header(lines, i):
                found, i = parse_diff(lines, i)
                edits.extend(found)
                continue
            i += 1
            continue
        if wrapper is not None and closes(line, wrapper):
            wrapper = None
            i += 1
            continue
        if _search_replace_ahead(lines, i + 1):
            wrapper, wrapper_at = fence, i
            i += 1
            continue
        lang, info_path = parse_info(fence.info)
        if lang in DIFF_LANGS or looks_like_diff(lines, i + 1):
            fallback = info_path or _label_before(lines, i)[0]
            end = diff_end(lines, i, fence)
            body = dedent(lines[i + 1 : end], fence.indent)
            edits.extend(parse_diff(body, 0, fenced=True, fallback_path=fallback)[0])
            i = end + 1
            continue
        end = fence_end(lines, i, fence)
        edit = _whole_file(lines, i, end, fence)
        if edit:
            edits.append(edit)
        i = end + 1
    return edits
