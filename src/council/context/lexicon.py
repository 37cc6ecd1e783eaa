"""Words of code and of bug reports, split the same way so they can meet in one index.

An identifier yields its parts (`getUserProfiles` -> get, user, profile) and, when it has more
than one part, itself (`getuserprofiles`): a report that names `cancel_order` then matches the
file that spells it exactly far better than files that merely say "cancel" and "order".
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

# Words that carry no meaning about *which* code is wanted.
STOPWORDS = frozenset(
    """a an and are as at be by can do does for from has have how i if in into is it its me
    my of on or our should so that the their then there these this to use used using was we
    when where which while will with would you your add adds implement feature please make
    need needs want also new able allow allows so must via not no but get got just""".split()
)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def split_words(text: str) -> list[str]:
    """Lower-case, lightly stemmed words of identifiers and prose: `getUserProfiles` -> get,
    user, profile."""
    words = []
    for piece in _WORD.findall(text):
        word = stem(piece.lower())
        if len(word) >= 2 and not word.isdigit():
            words.append(word)
    return words


@lru_cache(maxsize=262_144)
def identifier_terms(identifier: str) -> tuple[str, ...]:
    """The index terms of one identifier: its words, plus the whole name when compound."""
    parts = split_words(identifier)
    whole = identifier.lower().strip("_")
    if len(parts) > 1 and len(whole) >= 3:
        return (*parts, whole)
    return tuple(parts)


def text_terms(text: str) -> Counter[str]:
    """Term frequencies of a file's text: code, string literals and comments alike."""
    counts: Counter[str] = Counter()
    # Count each distinct identifier once, then split it once: files repeat names a lot.
    for identifier, n in Counter(IDENT.findall(text)).items():
        for term in identifier_terms(identifier):
            counts[term] += n
    return counts


def query_terms(text: str) -> list[str]:
    """The distinct index terms a query asks about, in first-seen order, without stopwords."""
    seen: dict[str, None] = {}
    for identifier in IDENT.findall(text):
        if identifier.lower() in STOPWORDS:
            continue
        for term in identifier_terms(identifier):
            if term not in STOPWORDS and len(term) >= 2:
                seen.setdefault(term, None)
    return list(seen)


def stem(word: str) -> str:
    # Just enough stemming that `profiles` finds `profile` and `entries` finds `entry`.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word
