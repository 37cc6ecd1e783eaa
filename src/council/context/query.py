"""What a query (a feature request or a bug report) says about where the code is.

Besides its words: identifiers it names (`cancel_order`, `DataFrame.pivot`), paths and module
names, quoted strings and error messages (which live verbatim in the code that raises them),
and the frames of a pasted traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from council.context.lexicon import IDENT, STOPWORDS, query_terms

# "quoted", 'quoted' (not an apostrophe inside a word), `code`, “typographic”.
_QUOTED = re.compile(
    r"\"([^\"\n]{3,300})\"|(?<![\w])'([^'\n]{3,300})'(?![\w])|`([^`\n]{2,300})`|“([^”\n]{3,300})”"
)
# The last line of a Python traceback or a log line: `ValueError: message`, `InvalidURL: ...`.
_ERROR_LINE = re.compile(
    r"\b([A-Z][A-Za-z0-9]*(?:Error|Exception|Warning|Exit)|[A-Z][a-z]+[A-Z]\w*):\s*(\S[^\n]{2,300})"
)
# An error message quotes values (`'http://'`, 3) the code fills in: its literal pieces lie
# between them and between clauses.
_MESSAGE_BREAK = re.compile(r"'[^']*'|\"[^\"]*\"|\b\d[\w.]*|[,;:.!?()]\s|\s[-–—]\s")
_ERROR_NAME = re.compile(r"(Error|Exception|Warning)$")
# Every pattern that can run along a long token starts only where such a token starts (the
# look-behinds): otherwise a pasted blob of 100 kB would cost quadratic time.
# Code-like tokens: `snake_case`, `camelCase`/`PascalCase`, `name(`, `.attr`, `x2`.
_CODE_TOKEN = re.compile(r"_|[a-z][A-Z]|[A-Z]{2,}[a-z]|[A-Za-z][0-9]")
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_PY_FRAME = re.compile(r'File "([^"\n]+)", line (\d+)(?:, in ([A-Za-z_<][\w<>.]*))?')
# `path/to/mod.py:123` (pytest, linters, JS stacks) and Java's `at pkg.Cls.m(Cls.java:12)`.
_PATH_LINE = re.compile(r"(?<![\w./\\-])([\w./\\-]+\.(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|java)):(\d+)")
_JAVA_FRAME = re.compile(r"at ([\w$.]+)\.([\w$<>]+)\(([\w$]+\.java):(\d+)\)")
_PATHLIKE = re.compile(
    r"(?<![\w./\\-])[\w.-]*[/\\][\w./\\-]+|\b[\w-]+\.(?:py|pyi|js|jsx|ts|tsx|java|md|rst)\b"
)
_DOTTED = re.compile(r"(?<![\w.])[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+\b")
_TEST_WORDS = frozenset(
    "test tests testing pytest unittest fixture fixtures conftest spec specs jest junit".split()
)
_DOC_WORDS = frozenset("doc docs documentation readme docstring docstrings changelog".split())
_VENDOR_WORDS = frozenset("vendor vendored vendoring bundled".split())


MAX_TERMS = 400


@dataclass(frozen=True)
class Frame:
    """One traceback frame: the path as printed, a line, and the function when given."""

    path: str
    line: int
    function: str = ""


@dataclass
class Query:
    """A parsed query; every field may be empty."""

    text: str
    terms: list[str] = field(default_factory=list)  # index terms, stopwords removed
    identifiers: set[str] = field(default_factory=set)  # code-like names, as written
    names: set[str] = field(default_factory=set)  # plain words that may be names (`idiff`)
    phrases: list[str] = field(default_factory=list)  # quoted text and error messages
    paths: list[str] = field(default_factory=list)  # path-like tokens and dotted modules
    frames: list[Frame] = field(default_factory=list)  # innermost (most relevant) last
    about_tests: bool = False
    about_docs: bool = False
    about_vendored: bool = False

    @classmethod
    def parse(cls, text: str) -> Query:
        phrases = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
        for m in _ERROR_LINE.finditer(text):
            message = m.group(2).strip()
            phrases.append(message)
            phrases += [piece.strip() for piece in _MESSAGE_BREAK.split(message)]
        code_like = {m for m in IDENT.findall(text) if _CODE_TOKEN.search(m.strip("_"))}
        code_like.update(_CALLED.findall(text))
        for quoted in _BACKTICKED.findall(text):
            code_like.update(IDENT.findall(quoted))
        for dotted in _DOTTED.findall(text):
            code_like.update(dotted.split("."))
        identifiers = {
            m
            for m in code_like
            if len(m) >= 3 and m.lower() not in STOPWORDS and not _ERROR_NAME.search(m)
        }
        names = [
            m
            for m in dict.fromkeys(IDENT.findall(text))
            if len(m) >= 4 and m.lower() not in STOPWORDS and m not in identifiers
        ]
        paths = [p.replace("\\", "/") for p in _PATHLIKE.findall(text)]
        paths += [d.replace(".", "/") for d in _DOTTED.findall(text)]
        lowered = {w.lower() for w in IDENT.findall(text)}
        return cls(
            text=text,
            # A pasted log can hold thousands of words; each costs a pass over the index.
            terms=query_terms(text)[:MAX_TERMS],
            identifiers=identifiers,
            names=set(names[:MAX_TERMS]),
            phrases=list(dict.fromkeys(p.strip() for p in phrases if len(p.strip()) >= 3)),
            paths=list(dict.fromkeys(paths)),
            frames=parse_frames(text),
            about_tests=bool(lowered & _TEST_WORDS),
            about_docs=bool(lowered & _DOC_WORDS),
            about_vendored=bool(lowered & _VENDOR_WORDS),
        )


def parse_frames(text: str) -> list[Frame]:
    """Traceback frames in the order printed (Python prints the innermost call last)."""
    frames: list[tuple[int, Frame]] = []
    taken: set[int] = set()
    for m in _PY_FRAME.finditer(text):
        frames.append((m.start(), Frame(m.group(1), int(m.group(2)), m.group(3) or "")))
        taken.update(range(m.start(), m.end()))
    for m in _JAVA_FRAME.finditer(text):
        # Java prints the innermost call first: give it the latest position.
        package = m.group(1).rsplit(".", 1)[0].replace(".", "/")
        frame = Frame(f"{package}/{m.group(3)}", int(m.group(4)), m.group(2))
        frames.append((len(text) * 2 - m.start(), frame))
        taken.update(range(m.start(), m.end()))
    for m in _PATH_LINE.finditer(text):
        if m.start() not in taken:
            frames.append((m.start(), Frame(m.group(1).replace("\\", "/"), int(m.group(2)))))
    return [f for _pos, f in sorted(frames, key=lambda item: item[0])]


def match_path(printed: str, candidates_by_name: dict[str, list[str]]) -> str | None:
    """The candidate a printed path (absolute, site-packages, another checkout) means: the
    one sharing the longest run of trailing path parts, at least the file name."""
    parts = PurePosixPath(printed.replace("\\", "/")).parts
    if not parts:
        return None
    best, best_len = None, 0
    for candidate in candidates_by_name.get(parts[-1], ()):
        cparts = PurePosixPath(candidate).parts
        common = 0
        while common < min(len(parts), len(cparts)) and parts[-1 - common] == cparts[-1 - common]:
            common += 1
        # One shared part (`functools.py`) is a coincidence unless the candidate is all of it.
        if common < 2 and common < len(cparts) and len(parts) > 1:
            continue
        if common > best_len or (common == best_len and best is not None and candidate < best):
            best, best_len = candidate, common
    return best
