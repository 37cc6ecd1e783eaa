"""Find where a model's SEARCH lines sit in a file, tolerating the drift models introduce.

Tiers, tried in order, each only when the previous found nothing: exact lines; lines equal
ignoring trailing whitespace; lines equal up to one uniform leading-indent difference (the
replacement is re-indented the same way); the same three ignoring blank lines. A tier that finds
the text more than once stops the search: guessing which place the model meant is how silent
mis-edits happen.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass
class Match:
    start: int  # first line replaced
    end: int  # one past the last line replaced
    replacement: list[str]
    tier: str


@dataclass
class Ambiguous:
    starts: list[int]  # 0-based first lines of every place the text matched
    length: int
    tier: str


Window = Callable[[list[str], list[str]], str | None]


def _exact(window: list[str], search: list[str]) -> str | None:
    return "" if window == search else None


def _rstripped(window: list[str], search: list[str]) -> str | None:
    same = all(f.rstrip() == s.rstrip() for f, s in zip(window, search, strict=True))
    return "" if same else None


def _indent_prefix(window: list[str], search: list[str]) -> str | None:
    """The whitespace the file has in front of every search line, if it is the same for all."""
    prefix: str | None = None
    for f, s in zip(window, search, strict=True):
        fs, ss = f.rstrip(), s.rstrip()
        if not ss:
            if fs:
                return None
            continue
        if not fs.endswith(ss):
            return None
        p = fs[: len(fs) - len(ss)]
        if p.strip() or (prefix is not None and p != prefix):
            return None
        prefix = p
    return prefix if prefix is not None else ""


def _leading(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _dedent(lines: list[str], width: int) -> list[str]:
    return [line[width:] if line.strip() else "" for line in lines]


def _scan(lines: list[str], search: list[str], same: Window) -> list[tuple[int, str]]:
    k = len(search)
    found = []
    for i in range(len(lines) - k + 1):
        prefix = same(lines[i : i + k], search)
        if prefix is not None:
            found.append((i, prefix))
    return found


def _find_dense(
    lines: list[str], search: list[str], replace: list[str]
) -> Match | Ambiguous | None:
    common = min((_leading(x) for x in search + replace if x.strip()), default=0)
    tiers: list[tuple[str, Window, list[str], list[str]]] = [
        ("exact", _exact, search, replace),
        ("trailing whitespace", _rstripped, search, replace),
        ("indentation", _indent_prefix, _dedent(search, common), _dedent(replace, common)),
    ]
    for name, same, s, r in tiers:
        found = _scan(lines, s, same)
        if len(found) > 1:
            return Ambiguous([i for i, _ in found], len(s), name)
        if found:
            start, prefix = found[0]
            new = [prefix + x if x.strip() else x for x in r] if prefix else list(r)
            return Match(start, start + len(s), new, name)
    return None


def find(lines: list[str], search: list[str], replace: list[str]) -> Match | Ambiguous | None:
    """Locate `search` in `lines`; None when no tier finds it. `search` must not be empty."""
    result = _find_dense(lines, search, replace)
    if result is not None:
        return result
    # Models often drop or add blank lines; match the non-blank lines and map back.
    dense_search = [x for x in search if x.strip()]
    if not dense_search or len(dense_search) == len(search) and all(x.strip() for x in lines):
        return None
    index = [i for i, x in enumerate(lines) if x.strip()]
    dense_lines = [lines[i] for i in index]
    result = _find_dense(dense_lines, dense_search, replace)
    if isinstance(result, Ambiguous):
        starts = [index[i] for i in result.starts]
        return Ambiguous(starts, len(search), result.tier + ", ignoring blank lines")
    if isinstance(result, Match):
        start, end = index[result.start], index[result.end - 1] + 1
        return Match(start, end, result.replacement, result.tier + ", ignoring blank lines")
    return None


_TOKEN = re.compile(r"\w+|[^\w\s]")
_FUZZY_BUDGET = 400_000  # line pairs compared by token overlap before we rely on exact votes


def _tokens(line: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(line))


def _voted_starts(lines: list[str], search: list[str], k: int) -> Counter[int]:
    """Window starts suggested by search lines found verbatim (ignoring indentation)."""
    where: dict[str, list[int]] = defaultdict(list)
    for i, line in enumerate(lines):
        if line.strip():
            where[line.strip()].append(i)
    votes: Counter[int] = Counter()
    for j, line in enumerate(search[:k]):
        for p in where.get(line.strip(), ()):
            if 0 <= p - j <= len(lines) - k:
                votes[p - j] += 1
    return votes


def _fuzzy_starts(lines: list[str], search: list[str], k: int) -> list[int]:
    """Window starts whose lines share the most tokens with the aligned search lines."""
    file_tokens = [_tokens(x) for x in lines]
    search_tokens = [_tokens(x) for x in search[:k]]
    scores = []
    for i in range(len(lines) - k + 1):
        score = 0.0
        for j, want in enumerate(search_tokens):
            have = file_tokens[i + j]
            if want or have:
                score += len(want & have) / len(want | have)
        scores.append((score, i))
    return [i for _, i in heapq.nlargest(5, scores)]


def closest(lines: list[str], search: list[str], context: int = 2) -> str:
    """The window of real lines most similar to `search`, with a few lines of context.

    Comparing every window character by character is quadratic and takes seconds on a large
    file, so cheap line-level signals pick a few candidate windows and difflib ranks those.
    """
    if not lines or not search:
        return ""
    k = min(len(search), len(lines))
    votes = _voted_starts(lines, search, k)
    candidates = {i for i, _ in votes.most_common(10)}
    if not candidates or (len(lines) - k + 1) * k <= _FUZZY_BUDGET:
        candidates.update(_fuzzy_starts(lines, search, k))
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2("\n".join(search))  # seq2 is the cached side: set it once
    best_ratio, best_start = -1.0, 0
    for i in sorted(candidates):
        matcher.set_seq1("\n".join(lines[i : i + k]))
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best_ratio, best_start = ratio, i
    lo, hi = max(0, best_start - context), min(len(lines), best_start + k + context)
    return "\n".join(lines[lo:hi])
