"""Localise a query inside a file: score its definitions, then cut excerpts that fit a budget.

A large module is mostly code the change never touches. Giving Builder the two functions that
matter, with their class line and the module's imports, costs a fraction of the whole file and
leaves room for the next candidate file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from council.context.bm25 import K1, B
from council.context.lexicon import IDENT, identifier_terms
from council.context.query import Query, match_path
from council.context.tags import Tag
from council.context.tokens import count_tokens

ELISION = "⋮"
ELISION_COST = 2  # the mark and its line break
MAX_UNITS = 6  # definitions per excerpt
RELATIVE_FLOOR = 0.25  # a definition scoring under this share of the file's best is left out
HEADER_LINES = 30  # the module's imports, when cheap
WINDOW = 12  # lines kept either side of the best line of a definition too large to show


@dataclass
class Unit:
    """A definition and how well its own lines (not those of nested ones) match the query."""

    tag: Tag
    start: int  # first line, decorators and leading comments included
    end: int
    score: float
    best_line: int  # the line that matched best (for trimming a large definition)


@dataclass
class Excerpt:
    """Chosen lines of one file, rendered with `⋮` where code is left out."""

    path: str
    text: str
    ranges: list[tuple[int, int]]  # 1-based, inclusive, sorted, disjoint
    line_count: int
    definitions: list[str] = field(default_factory=list)  # names included, best first

    @property
    def label(self) -> str:
        shown = ", ".join(f"{a}-{b}" for a, b in self.ranges)
        # The header Builder sees: it must not mistake the excerpt for the whole file.
        return (
            f"{self.path} (excerpt: lines {shown} of {self.line_count}; edit it with "
            "SEARCH/REPLACE blocks quoting these lines, never as a whole file)"
        )


def score_units(
    path: str,
    text: str,
    tags: Sequence[Tag],
    q: Query,
    weights: Mapping[str, float],
) -> list[Unit]:
    """Every definition of the file with its score, best first (ties: earlier first)."""
    lines = text.splitlines()
    defs = [t for t in tags if t.kind == "def" and t.end_line >= t.line > 0]
    if not defs or not lines:
        return []
    line_terms = [_query_terms_of(line, weights) for line in lines]
    frame_lines = {f.line for f in q.frames if match_path(f.path, {_name(path): [path]})}
    frame_functions = {f.function for f in q.frames if f.function}
    phrases = [" ".join(p.lower().split()) for p in q.phrases if len(p) >= 4]
    nested = _nested_spans(defs)
    exact = {i.lower() for i in q.identifiers}
    own_lengths = []
    own_counts = []
    for tag in defs:
        counts: dict[str, int] = {}
        length = 0
        for number in _own_lines(tag, nested[id(tag)]):
            hits, words = line_terms[number - 1]
            length += words
            for term in hits:
                counts[term] = counts.get(term, 0) + 1
        own_lengths.append(length)
        own_counts.append(counts)
    average = (sum(own_lengths) / len(own_lengths)) or 1.0
    units = []
    for tag, counts, length in zip(defs, own_counts, own_lengths, strict=True):
        norm = K1 * ((1 - B) + B * length / average)
        score = sum(weights[t] * n / (n + norm) for t, n in counts.items())
        if tag.name.lower() in exact:
            score += 3.0
        if tag.name in frame_functions:
            score += 2.0
        # A definition sharing its lines with a nested one (`class A: x = 1`) owns its first.
        own = list(_own_lines(tag, nested[id(tag)])) or [tag.line]
        if frame_lines & set(own):
            score += 4.0
        if phrases:
            body = " ".join(" ".join(lines[tag.line - 1 : tag.end_line]).lower().split())
            score += 3.0 * sum(1 for p in phrases if p in body)
        # Only a matching definition is ever trimmed around its best line.
        best_line = tag.line
        if score > 0:
            best_line = max(
                own,
                key=lambda n: (
                    n in frame_lines,
                    sum(weights[t] for t in line_terms[n - 1][0]),
                    -n,
                ),
            )
        start = _leading_start(lines, tag.line)
        units.append(Unit(tag, start, tag.end_line, score, best_line))
    units.sort(key=lambda u: (-u.score, u.start))
    return units


def make_excerpt(
    path: str,
    text: str,
    units: Sequence[Unit],
    budget: int,
    parents: Mapping[int, Tag] | None = None,
) -> Excerpt | None:
    """The best-scoring definitions that fit `budget` tokens, each with its enclosing class's
    line, plus the module's imports when they are cheap; None when nothing matched."""
    lines = text.splitlines()
    top = max((u.score for u in units), default=0.0)
    # Weak matches (a shared `return`) would spend the budget the next file could use.
    wanted = [u for u in units if u.score > 0 and u.score >= RELATIVE_FLOOR * top]
    if not wanted or budget <= 0:
        return None
    parents = parents if parents is not None else _parents([u.tag for u in units])
    chosen: set[int] = set()
    names: list[str] = []

    line_cost: dict[int, int] = {}

    def cost_with(extra: set[int]) -> int:
        # Equals count_tokens(_render(...)): each rendered line costs its tokens plus its line
        # break, each `⋮` two; summing cached line costs avoids re-counting the whole text.
        numbers = sorted(chosen | extra)
        total = 0
        previous = 0
        for n in numbers:
            if n > previous + 1:
                total += ELISION_COST
            if n not in line_cost:
                line_cost[n] = count_tokens(lines[n - 1]) + 1
            total += line_cost[n]
            previous = n
        if numbers and previous < len(lines):
            total += ELISION_COST
        return total

    for unit in wanted:
        if len(names) >= MAX_UNITS:
            break
        span = set(range(unit.start, unit.end + 1))
        parent = parents.get(id(unit.tag))
        if parent is not None:
            span.add(parent.line)
        if cost_with(span) <= budget:
            chosen |= span
            names.append(unit.tag.name)
            continue
        if names:
            continue  # a smaller definition further down may still fit
        # The best definition alone is too large: its signature and the window around its
        # best-matching line.
        head = set(range(unit.start, min(unit.tag.line + 2, unit.end) + 1))
        if parent is not None:
            head.add(parent.line)
        for width in (WINDOW, WINDOW // 2, 3, 0):
            low = max(unit.tag.line, unit.best_line - width)
            window = head | set(range(low, min(unit.end, unit.best_line + width) + 1))
            if cost_with(window) <= budget:
                chosen |= window
                names.append(unit.tag.name)
                break
    if not chosen:
        return None
    header = _header_lines(lines, units)
    if header and cost_with(header) <= budget:
        chosen |= header
    ordered = sorted(chosen)
    return Excerpt(path, _render(lines, ordered), _ranges(ordered), len(lines), names)


def _render(lines: Sequence[str], numbers: Sequence[int]) -> str:
    out: list[str] = []
    previous = 0
    for n in numbers:
        if n > previous + 1:
            out.append(ELISION)
        out.append(lines[n - 1])
        previous = n
    if numbers and previous < len(lines):
        out.append(ELISION)
    return "\n".join(out) + "\n" if out else ""


def _ranges(numbers: Sequence[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for n in numbers:
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


def _header_lines(lines: Sequence[str], units: Sequence[Unit]) -> set[int]:
    """The module's leading imports (up to the first definition), at most HEADER_LINES."""
    first = min((u.start for u in units), default=len(lines) + 1)
    end = min(first - 1, HEADER_LINES, len(lines))
    return {n for n in range(1, end + 1) if lines[n - 1].strip()}


def _leading_start(lines: Sequence[str], line: int) -> int:
    """Include decorators, annotations and comments directly above a definition."""
    start = line
    while start > 1:
        above = lines[start - 2].strip()
        if above.startswith(("@", "#", "//", "/*", "*")) and above:
            start -= 1
        else:
            break
    return start


def _nested_spans(defs: Sequence[Tag]) -> dict[int, list[tuple[int, int]]]:
    """For each definition, the spans of definitions directly inside it."""
    nested: dict[int, list[tuple[int, int]]] = {id(t): [] for t in defs}
    parents = _parents(defs)
    for tag in defs:
        parent = parents.get(id(tag))
        if parent is not None:
            nested[id(parent)].append((tag.line, tag.end_line))
    return nested


def _parents(defs: Sequence[Tag]) -> dict[int, Tag]:
    """The innermost definition enclosing each definition (by line spans)."""
    ordered = sorted(defs, key=lambda t: (t.line, -t.end_line))
    parents: dict[int, Tag] = {}
    stack: list[Tag] = []
    for tag in ordered:
        while stack and stack[-1].end_line < tag.line:
            stack.pop()
        if stack and tag.end_line <= stack[-1].end_line and stack[-1] is not tag:
            parents[id(tag)] = stack[-1]
        stack.append(tag)
    return parents


def _own_lines(tag: Tag, inner: Sequence[tuple[int, int]]):
    skipped = set()
    for a, b in inner:
        skipped.update(range(a, b + 1))
    return (n for n in range(tag.line, tag.end_line + 1) if n not in skipped)


def _query_terms_of(line: str, weights: Mapping[str, float]) -> tuple[list[str], int]:
    """The query terms on a line (repeats kept) and how many terms the line has."""
    hits: list[str] = []
    words = 0
    for identifier in IDENT.findall(line):
        for term in identifier_terms(identifier):
            words += 1
            if term in weights:
                hits.append(term)
    return hits, words


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
