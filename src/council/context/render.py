"""Render ranked definitions as an aider-style repo map and cut it to a token budget."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from council.context.tags import Tag
from council.context.tokens import count_tokens

ELISION = "⋮"
GUTTER = "│"


@dataclass(frozen=True)
class MapEntry:
    """One line-worthy item of the map: a definition, or a whole file that defines nothing."""

    path: str
    tag: Tag | None = None


@dataclass(frozen=True)
class FileLayout:
    """What rendering needs to know about a file besides its tags."""

    line_count: int
    indents: Mapping[int, str]  # 1-based line -> its leading whitespace


def render_map(
    entries: Sequence[MapEntry],
    file_order: Mapping[str, int],
    layouts: Mapping[str, FileLayout],
) -> str:
    """Group entries per file (files in `file_order`, defs by line) with `⋮` for skipped code."""
    by_file: dict[str, list[Tag]] = defaultdict(list)
    for entry in entries:
        tags = by_file[entry.path]
        if entry.tag is not None:
            tags.append(entry.tag)
    out: list[str] = []
    for path in sorted(by_file, key=lambda p: (file_order.get(p, len(file_order)), p)):
        tags = sorted(by_file[path], key=lambda t: (t.line, t.name))
        if not tags:
            out.append(path)
            continue
        layout = layouts.get(path, FileLayout(0, {}))
        out.append(f"{path}:")
        shown = 0
        for tag in tags:
            if tag.line > shown + 1:
                out.append(ELISION)
            out.append(f"{GUTTER}{layout.indents.get(tag.line, '')}{tag.signature or tag.name}")
            shown = max(shown, tag.line)
        if layout.line_count > shown:
            out.append(ELISION)
    return "\n".join(out) + "\n" if out else ""


def fit_map(
    entries: Sequence[MapEntry],
    budget: int,
    render: Callable[[Sequence[MapEntry]], str],
) -> str:
    """The render of the longest prefix of priority-ordered `entries` within `budget` tokens."""
    best = ""
    low, high = 1, len(entries)
    # Adding entries only adds lines, so cost grows with the prefix: binary search applies.
    while low <= high:
        middle = (low + high) // 2
        text = render(entries[:middle])
        if count_tokens(text) <= budget:
            best = text
            low = middle + 1
        else:
            high = middle - 1
    return best
