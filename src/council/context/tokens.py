"""Cheap, deterministic token estimate used for every context budget (no tokenizer download)."""

from __future__ import annotations

import re

# A word-piece approximation of BPE tokenizers: words cost one token per four characters, each
# punctuation mark is a token, and line breaks count because real tokenizers charge for them.
_WORDS = re.compile(r"\w+")
_MARKS = re.compile(r"[^\w\s]|\n")


def count_tokens(text: str) -> int:
    """Estimate how many model tokens `text` costs; grows with added content, never network."""
    words = sum((len(word) + 3) // 4 for word in _WORDS.findall(text))
    return words + len(_MARKS.findall(text))
