"""Fenced code blocks in model answers: the one reader that every answer parser uses.

Models fence with backticks or tildes, indent fences inside lists, put markdown with fences of
its own inside a block (a README, a docstring), leave the last fence unclosed, and put prose
around all of it. The rules, in one place:
- a fence is a line of at least three backticks or tildes, indented less than four spaces past
  its parent, followed by an info string (`python`, `diff`, `py title="a.py"`, `a.py`);
- a bare run of at least as many of the same characters closes it; an inner fence that opens
  with an info string nests (a bare one closes the innermost);
- in a diff every line carries a prefix, so only a closer at the fence's own indent ends it;
- an unclosed fence runs to the end of the answer.

The edit parser (edits/parse.py) scans with the primitives; the JSON reader, the heal patch
reader and the proposed-command reader take whole `blocks()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")
DIFF_LANGS = frozenset({"diff", "patch", "udiff"})


@dataclass
class Fence:
    indent: int
    marker: str  # the run of backticks or tildes that opened it
    info: str

    @property
    def lang(self) -> str:
        """The info string's first word, lower-cased (`py:a.py` -> `py`, `{.python}` -> python)."""
        first = self.info.split(None, 1)[0] if self.info.strip() else ""
        return re.split(r"[:,{}]", first.strip("{}. "), maxsplit=1)[0].lower()


@dataclass
class Block:
    """One top-level fenced block: its fence, its body (dedented) and its line span."""

    fence: Fence
    body: str
    start: int  # line of the opening fence
    end: int  # line of the closing fence (len(lines) when unclosed)

    @property
    def lang(self) -> str:
        return self.fence.lang

    @property
    def info(self) -> str:
        return self.fence.info


def open_fence(line: str) -> Fence | None:
    m = _FENCE.match(line)
    if not m:
        return None
    indent, marker, info = len(m.group(1)), m.group(2), m.group(3).strip()
    if marker[0] == "`" and "`" in info:
        return None  # inline code such as ```x``` on one line, not a fence
    return Fence(indent, marker, info)


def closes(line: str, fence: Fence) -> bool:
    """A bare run of at least as many fence characters, not indented into the content."""
    m = _FENCE.match(line)
    return bool(
        m
        and not m.group(3).strip()
        and m.group(2)[0] == fence.marker[0]
        and len(m.group(2)) >= len(fence.marker)
        and len(m.group(1)) < fence.indent + 4
    )


def fence_end(lines: list[str], start: int, fence: Fence) -> int:
    """Index of the line closing the fence opened at `start` (len(lines) when unclosed).

    Content may hold fences of its own (markdown in a docstring, a README with examples). An
    inner fence that opens with a language nests; a bare fence closes the innermost one.
    """
    depth = 0
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if closes(line, fence) or (depth and _bare_fence(line)):
            if depth == 0:
                return i
            depth -= 1
            continue
        inner = open_fence(line)
        if inner and inner.info and inner.indent < fence.indent + 4:
            depth += 1
    return len(lines)


def diff_end(lines: list[str], start: int, fence: Fence) -> int:
    """Diff lines carry a prefix character: only a closer at the fence's own indent ends them."""
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if closes(line, fence) and len(line) - len(line.lstrip(" ")) <= fence.indent:
            return i
    return len(lines)


def dedent(body: list[str], width: int) -> list[str]:
    """Lines of a fence indented by `width` spaces, without that indentation."""
    if not width:
        return body
    prefix = " " * width
    return [line[width:] if line.startswith(prefix) else line.lstrip(" ") for line in body]


def blocks(text: str) -> list[Block]:
    """Every top-level fenced block in `text`, in order (nested fences stay in their body)."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = open_fence(lines[i])
        if fence is None:
            i += 1
            continue
        is_diff = fence.lang in DIFF_LANGS or (
            i + 1 < len(lines) and lines[i + 1].startswith(("--- ", "diff --git"))
        )
        end = (diff_end if is_diff else fence_end)(lines, i, fence)
        body = dedent(lines[i + 1 : end], fence.indent)
        found.append(Block(fence, "\n".join(body) + "\n" if body else "", i, end))
        i = end + 1
    return found


def _bare_fence(line: str) -> bool:
    f = open_fence(line)
    return f is not None and not f.info
