"""Pull one JSON value out of a real model's reply: prose around it, code fences, trailing commas.

Models asked for "only JSON" still wrap it in ```json fences, add a sentence before or after, or
leave a trailing comma. `extract_json` tries the cheap readings first and repairs only what is
safe to repair (trailing commas, smart quotes around keys); anything else is left to the caller's
validation and repair re-ask.
"""

from __future__ import annotations

import json
from typing import Any

from council.fences import blocks

_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"'})


class JSONExtractionError(ValueError):
    """No JSON value could be read from the text."""


def extract_json(text: str) -> Any:
    """Return the first JSON object or array found in `text` (or the whole text if it is JSON)."""
    if text is None or not text.strip():
        raise JSONExtractionError("the answer is empty")
    for candidate in _candidates(text):
        value = _loads_lenient(candidate)
        if value is not _MISSING:
            return value
    raise JSONExtractionError("no JSON object or array found in the answer")


_MISSING = object()


def _candidates(text: str) -> list[str]:
    """Pieces of text that may hold the JSON, most likely first."""
    found: list[str] = [text.strip()]
    fenced = [(block.lang, block.body) for block in blocks(text)]
    # A block labelled json wins over an unlabelled one (which may be example code).
    found += [body for lang, body in fenced if lang in ("json", "json5", "jsonc")]
    found += [body for lang, body in fenced if lang not in ("json", "json5", "jsonc")]
    for source in [*found[1:], text]:
        found += _balanced_spans(source)
    return found


def _loads_lenient(candidate: str) -> Any:
    candidate = candidate.strip()
    if not candidate or candidate[0] not in "[{":
        return _MISSING
    for attempt in (candidate, _strip_trailing_commas(candidate.translate(_SMART_QUOTES))):
        try:
            value = json.loads(attempt)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict | list):
            return value
    return _MISSING


def _balanced_spans(text: str) -> list[str]:
    """Every top-level {...} or [...] span in `text`, honouring strings and escapes."""
    spans: list[str] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            end = _matching_end(text, i)
            if end is not None:
                spans.append(text[i : end + 1])
                i = end + 1
                continue
        i += 1
    return spans


def _matching_end(text: str, start: int) -> int | None:
    stack: list[str] = []
    in_string = False
    escaped = False
    pairs = {"{": "}", "[": "]"}
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i
    return None


def _strip_trailing_commas(text: str) -> str:
    """Drop commas that directly precede a closing bracket, outside strings."""
    out: list[str] = []
    in_string = False
    escaped = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == ",":
            j = i + 1
            while j < len(text) and text[j].isspace():
                j += 1
            if j >= len(text) or text[j] not in "}]":
                out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)
