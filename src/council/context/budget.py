"""Prompt budgets: fit the files and tests of a prompt into a token budget, with excerpts.

A file that fits its share goes in whole. A longer one is cut to excerpts: its head (imports,
setup) and the blocks that define or mention the names that matter (the tests to pass, the
functions in a failure), each with a marker saying which lines were left out, so the model
knows the file goes on and where. Counting uses the cheap estimate of `tokens.count_tokens`;
the pipeline checks the rendered prompt against the model's context window as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from council.context.tokens import count_tokens

MIN_FILE_TOKENS = 200  # below this an excerpt says too little to be worth sending
HEAD_SHARE = 0.2  # of a file's budget, for its first lines (imports, fixtures, setup)
_DECORATOR = re.compile(r"^\s*@")


def fit_files(
    files: Mapping[str, str], budget: int, keep: Mapping[str, Iterable[str]] | None = None
) -> dict[str, str]:
    """`files` within `budget` tokens in all: small files whole, the budget left shared by the
    large ones (each cut to excerpts around its `keep` names). Order is kept; a file that
    cannot get even MIN_FILE_TOKENS is left out with a one-line note instead."""
    sizes = {path: count_tokens(text) for path, text in files.items()}
    if sum(sizes.values()) <= budget:
        return dict(files)
    # Water-filling: give each file up to an equal share of what is left, smallest first.
    shares: dict[str, int] = {}
    left, pending = budget, sorted(files, key=lambda p: sizes[p])
    while pending:
        share = left // len(pending)
        path = pending.pop(0)
        shares[path] = min(sizes[path], share)
        left -= shares[path]
    out: dict[str, str] = {}
    for path, text in files.items():
        if shares[path] >= sizes[path]:
            out[path] = text
        elif shares[path] >= MIN_FILE_TOKENS:
            out[path] = excerpt(text, shares[path], (keep or {}).get(path, ()))
        else:
            lines = text.count("\n") + 1
            out[path] = f"... ({lines} lines left out: over the prompt's token budget) ..."
    return out


def excerpt(text: str, budget: int, keep: Iterable[str] = ()) -> str:
    """`text` cut to about `budget` tokens: the head, then the blocks around `keep` names."""
    if count_tokens(text) <= budget:
        return text
    lines = text.splitlines()
    chosen: set[int] = set()
    used = 0

    def take(span: range) -> bool:
        nonlocal used
        new = [i for i in span if i not in chosen]
        cost = sum(count_tokens(lines[i]) + 1 for i in new)
        if used + cost > budget:
            return False
        chosen.update(new)
        used += cost
        return True

    head_budget = int(budget * HEAD_SHARE)
    head_end = 0
    while head_end < len(lines) and used + count_tokens(lines[head_end]) + 1 <= head_budget:
        used += count_tokens(lines[head_end]) + 1
        chosen.add(head_end)
        head_end += 1
    for name in dict.fromkeys(n for n in keep if n):
        for start in _mentions(lines, name):
            if not take(_block(lines, start)):
                # The whole block is too long: at least its first lines.
                take(range(start, min(len(lines), start + 15)))
    # Fill what is left with the lines after the head, in order.
    i = head_end
    while i < len(lines) and take(range(i, i + 1)):
        i += 1
    return _render(lines, sorted(chosen))


def _mentions(lines: list[str], name: str) -> list[int]:
    """Lines that define `name` first (def/class/function/test(...)), then other mentions."""
    word = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")
    defining = re.compile(
        rf"^\s*(?:async\s+)?(?:def|class|function)\s+{re.escape(name)}\b"
        rf"|^\s*(?:it|test|describe)\s*\(\s*['\"`]{re.escape(name)}"
        rf"|^\s*(?:public|private|protected|static|void|\s)*[\w<>\[\]]+\s+{re.escape(name)}\s*\("
    )
    defs = [i for i, line in enumerate(lines) if defining.search(line)]
    others = [i for i, line in enumerate(lines) if i not in defs and word.search(line)]
    return [*defs, *others[:3]]


def _block(lines: list[str], start: int) -> range:
    """The block a line opens: up to the next line indented no deeper (closing brace included),
    with the decorators or annotations right above it."""
    while start > 0 and _DECORATOR.match(lines[start - 1]):
        start -= 1
    first = start
    while first < len(lines) - 1 and _DECORATOR.match(lines[first]):
        first += 1
    indent = _indent(lines[first])
    end = first + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and _indent(line) <= indent:
            if line.strip()[0] in ")}]":
                end += 1  # the closing bracket of a brace language belongs to the block
            break
        end += 1
    return range(start, end)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _render(lines: list[str], chosen: list[int]) -> str:
    out: list[str] = []
    previous = -1
    for i in chosen:
        if i != previous + 1:
            out.append(f"... (lines {previous + 2}-{i} left out) ...")
        out.append(lines[i])
        previous = i
    if previous < len(lines) - 1:
        out.append(f"... (lines {previous + 2}-{len(lines)} left out) ...")
    return "\n".join(out)


class PromptTooLarge(ValueError):
    """Even cut to the bone, the prompt does not fit the model's context window."""


SHRINK_STEP = 0.75  # each pass that still does not fit gives the shrinkable facts this much
MIN_SHRINKABLE_TOKENS = 300  # a fact smaller than this is sent as it is


def fit_prompt(
    render: Callable[[dict[str, Any]], list[dict[str, str]]],
    facts: Mapping[str, Any],
    limit: int,
    count: Callable[[list[dict[str, str]]], int],
    keep: Mapping[str, Iterable[str]] | Iterable[str] = (),
) -> list[dict[str, str]]:
    """Messages from `render(facts)` whose size, by `count`, is at most `limit` tokens.

    The large facts (dicts of files, long texts such as a repo map, a diff or failures) share
    what the fixed part of the prompt leaves, in proportion to their size; files are cut to
    excerpts around the `keep` names (per path, or the same names for every file). Passes
    that still do not fit shrink the shares; PromptTooLarge when nothing is left to cut.
    """
    messages = render(dict(facts))
    if count(messages) <= limit:
        return messages
    sizes = {k: _size(v) for k, v in facts.items()}
    large = {k: n for k, n in sizes.items() if n >= MIN_SHRINKABLE_TOKENS}
    if not large:
        raise PromptTooLarge(f"prompt of {count(messages)} tokens, limit {limit}")
    base = count(render({**facts, **{k: _empty(facts[k]) for k in large}}))
    available = limit - base
    total = sum(large.values())
    while available >= MIN_SHRINKABLE_TOKENS:
        shaped = dict(facts)
        for key, size in large.items():
            share = max(1, int(available * size / total))
            shaped[key] = _shrunk(facts[key], share, keep)
        messages = render(shaped)
        size = count(messages)
        if size <= limit:
            return messages
        available = int(available * min(SHRINK_STEP, limit / size))
    raise PromptTooLarge(
        f"the fixed part of the prompt takes {base} tokens of a limit of {limit}: nothing left "
        "for the files and tests"
    )


def _size(value: Any) -> int:
    if isinstance(value, str):
        return count_tokens(value)
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return sum(count_tokens(v) for v in value.values())
    return 0


def _empty(value: Any) -> Any:
    return "" if isinstance(value, str) else {}


def _shrunk(value: Any, budget: int, keep: Mapping[str, Iterable[str]] | Iterable[str]) -> Any:
    if isinstance(value, str):
        return excerpt(value, budget, keep if not isinstance(keep, Mapping) else ())
    per_path = keep if isinstance(keep, Mapping) else {path: keep for path in value}
    return fit_files(value, budget, per_path)
