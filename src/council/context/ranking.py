"""Rank files for a query by fusing several signals, each a ranked list of files.

Signals: BM25 over file contents (code, strings and comments, identifiers split), words of the
path, the best-matching definition name per file, exact mentions (identifiers a file defines,
paths, quoted strings and error messages), runs of the query's words found verbatim, traceback
frames, and a PageRank over the definition/reference graph personalised toward the matches.
Reciprocal rank fusion combines them: a file's score is the sum over signals of
weight / (K + its rank there), so no single signal's scale (a huge file's summed matches) can
drown the others. Tests and docs then rank below source code with evidence, unless the
query is about them.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import PurePosixPath

import numpy as np

from council.context.bm25 import bm25_scores, term_weights
from council.context.lexicon import STOPWORDS, identifier_terms, split_words, text_terms
from council.context.query import Query, match_path
from council.context.tags import Tag

DAMPING = 0.85
MAX_DEFINERS = 20
RRF_K = 10  # small: the head of each list is what carries information here
WEIGHTS = {
    "content": 1.0,
    "path": 0.5,
    "definition": 0.7,
    "exact": 1.5,
    "quoted": 1.5,
    "phrase": 1.0,
    "traceback": 2.0,
    "graph": 0.3,
}
RARE_NAME_FILES = 3  # a plain word found in at most this many files ...
RARE_NAME_SHARE = 0.01  # ... or this share of them may be a name the report quotes
MAP_FILES = 200  # files whose definitions are scored for the map; no budget shows more
MAX_PHRASE_NGRAMS = 200
MAX_PHRASE_CANDIDATES = 300  # files holding all of a run's words; more means common words
_LOWER_WORD = re.compile(r"[a-z0-9_]+")
# Two words (a message), or an option (`--profile`): a lone quoted word or URL is a value.
_MESSAGE_LIKE = re.compile(r"[A-Za-z]{2,}[^A-Za-z\n]+[A-Za-z]{2,}\b(?<!http)|^--?[A-Za-z]")
_TEST_DIRS = frozenset({"test", "tests", "testing", "_testing", "__tests__", "spec", "specs"})
_TEST_NAME = re.compile(
    r"^(test_.*\.py|.*_tests?\.py|conftest\.py|.*\.(test|spec)\.[cm]?[jt]sx?|.*Tests?\.java)$"
)
_DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".adoc"})
_DOC_DIRS = frozenset({"doc", "docs"})
# Copies of other projects kept in the tree (pip's `_vendor`, setuptools' `_vendor`, C/JS
# `third_party`): a project fixes its own code, not its copy of a dependency.
_VENDOR_DIRS = frozenset(
    {"_vendor", "vendor", "vendored", "_vendored", "third_party", "thirdparty", "third-party"}
)


@dataclass
class Corpus:
    """What ranking may look at: candidate paths and, per path, its definitions, how often it
    references each name, its term counts and its text."""

    paths: Sequence[str]
    tags: Mapping[str, list[Tag]]  # definitions only
    refs: Mapping[str, Mapping[str, int]]
    terms: Mapping[str, Mapping[str, int]]
    texts: Mapping[str, str]


@dataclass
class Ranking:
    """Files most relevant first, with the scores that ordered them."""

    paths: list[str]
    file_scores: dict[str, float]
    def_scores: dict[tuple[str, str], float]  # (path, def name) -> importance
    mentioned: list[str] = field(default_factory=list)  # ranked first, in the order given
    signals: dict[str, list[str]] = field(default_factory=dict)  # signal -> its top files
    term_weights: dict[str, float] = field(default_factory=dict)  # query term -> idf
    query: Query | None = None  # the query as ranked, plain words that are names resolved


def is_test_path(path: str) -> bool:
    """Test code by the usual conventions of pytest, Jest and JUnit."""
    pure = PurePosixPath(path)
    return bool(_TEST_DIRS & set(pure.parts[:-1])) or bool(_TEST_NAME.match(pure.name))


def is_doc_path(path: str) -> bool:
    pure = PurePosixPath(path)
    return pure.suffix.lower() in _DOC_SUFFIXES or bool(_DOC_DIRS & set(pure.parts[:-1]))


def is_vendored_path(path: str) -> bool:
    return bool(_VENDOR_DIRS & {part.lower() for part in PurePosixPath(path).parts[:-1]})


def rank(corpus: Corpus, query: str | Query, mentioned: Sequence[str] = ()) -> Ranking:
    """Order the corpus's paths for `query`; `mentioned` paths come first, in their order."""
    q = query if isinstance(query, Query) else Query.parse(query)
    paths = list(corpus.paths)
    weights = term_weights(q.terms, corpus.terms)
    q = _resolve_names(q, corpus)
    lists: dict[str, dict[str, float]] = {
        "content": bm25_scores(q.terms, corpus.terms),
        "path": _path_scores(paths, q),
        "definition": _definition_scores(paths, corpus.tags, q, weights),
        "exact": _exact_scores(corpus, q),
        "quoted": _quoted_scores(corpus, q),
        "phrase": _phrase_scores(corpus, q),
        "traceback": _traceback_scores(paths, q),
    }
    # The graph spreads the lexical evidence to neighbours (a caller, the module it imports).
    bias = _normalised(lists["content"])
    for name in ("exact", "quoted", "traceback"):
        for p, s in _normalised(lists[name]).items():
            bias[p] = bias.get(p, 0.0) + s
    for p in mentioned:
        bias[p] = bias.get(p, 0.0) + 1.0
    graph = _reference_graph(paths, corpus.tags, corpus.refs, q)
    pagerank = personalised_pagerank(paths, graph, bias)
    lists["graph"] = pagerank

    fused: dict[str, float] = dict.fromkeys(paths, 0.0)
    orders: dict[str, list[str]] = {}
    for name, scores in lists.items():
        order = sorted(
            (p for p, s in scores.items() if s > 0 and p in fused), key=lambda p: (-scores[p], p)
        )
        orders[name] = order[:10]
        for position, p in enumerate(order):
            fused[p] += WEIGHTS[name] / (RRF_K + position + 1)
    # Tests, docs and vendored copies rank below source code with evidence, but above files
    # with none; one the query names (a helper it defines, its path, a frame) is not demoted.
    evidence = {p for name, scores in lists.items() if name != "graph" for p in scores}
    named = set(lists["exact"]) | set(lists["traceback"])
    demoted = {
        p
        for p in paths
        if p not in named
        and (
            (is_test_path(p) and not q.about_tests)
            or (is_doc_path(p) and not q.about_docs)
            or (is_vendored_path(p) and not q.about_vendored)
        )
    }
    mentioned_order = {p: i for i, p in enumerate(dict.fromkeys(mentioned)) if p in fused}
    ordered = sorted(
        paths,
        key=lambda p: (
            mentioned_order.get(p, len(mentioned_order)),
            0 if p in evidence and p not in demoted else 1 if p in evidence else 2,
            -fused[p],
            -pagerank.get(p, 0.0),
            p,
        ),
    )
    def_scores = _def_scores(ordered[:MAP_FILES], corpus.tags, corpus.refs, pagerank, q, weights)
    return Ranking(ordered, fused, def_scores, list(mentioned_order), orders, weights, q)


def personalised_pagerank(
    nodes: Sequence[str],
    edges: Mapping[str, Mapping[str, float]],
    personalisation: Mapping[str, float],
    *,
    damping: float = DAMPING,
    tolerance: float = 1e-8,
    max_iterations: int = 100,
) -> dict[str, float]:
    """PageRank by power iteration; teleports (and dangling nodes) follow `personalisation`.

    `edges[src][dst]` is a weight; weights leaving a node are normalised to sum to one.
    """
    if not nodes:
        return {}
    index = {n: i for i, n in enumerate(nodes)}
    size = len(nodes)
    bias = np.array([max(personalisation.get(n, 0.0), 0.0) for n in nodes], dtype=float)
    total_bias = bias.sum()
    if total_bias > 0:
        # Keep a little uniform teleport so files the query never reaches still get an order.
        teleport = 0.7 * bias / total_bias + 0.3 / size
    else:
        teleport = np.full(size, 1.0 / size)
    sources: list[int] = []
    targets: list[int] = []
    shares: list[float] = []
    for src, dsts in edges.items():
        outs = [(index[d], w) for d, w in dsts.items() if d in index and w > 0]
        total = sum(w for _d, w in outs)
        if src in index and total > 0:
            for dst, weight in outs:
                sources.append(index[src])
                targets.append(dst)
                shares.append(weight / total)
    src_of = np.array(sources, dtype=np.int64)
    dst_of = np.array(targets, dtype=np.int64)
    share_of = np.array(shares, dtype=float)
    dangling_mask = np.ones(size, dtype=bool)
    dangling_mask[src_of] = False
    rank_of = teleport.copy()
    for _ in range(max_iterations):
        spread = 1 - damping + damping * rank_of[dangling_mask].sum()
        flow = np.bincount(dst_of, weights=rank_of[src_of] * share_of, minlength=size)
        nxt = spread * teleport + damping * flow
        delta = np.abs(nxt - rank_of).sum()
        rank_of = nxt
        if delta < tolerance:
            break
    return {n: float(rank_of[i]) for n, i in index.items()}


def _resolve_names(q: Query, corpus: Corpus) -> Query:
    """Plain words of the query that are rare names in this code base (`idiff`) count as
    identifiers; common words (`output`, `option`) that some file also defines do not."""
    limit = max(RARE_NAME_FILES, RARE_NAME_SHARE * len(corpus.paths))
    rare = set()
    for word in q.names:
        term = word.lower()
        freq = sum(1 for counts in corpus.terms.values() if term in counts)
        if 0 < freq <= limit:
            rare.add(word)
    return replace(q, identifiers=q.identifiers | rare) if rare else q


def _normalised(scores: Mapping[str, float]) -> dict[str, float]:
    top = max(scores.values(), default=0.0)
    return {p: s / top for p, s in scores.items()} if top > 0 else {}


def _path_scores(paths: Sequence[str], q: Query) -> dict[str, float]:
    """BM25 over the words of each path: `frame.py` for a report about DataFrame."""
    docs = {p: text_terms(p) for p in paths}
    # Words in most paths (the package's own name) say nothing about which file is meant.
    common = {t for t in q.terms if sum(1 for d in docs.values() if t in d) > len(docs) / 4}
    return bm25_scores([t for t in q.terms if t not in common], docs)


def _definition_scores(
    paths: Sequence[str], tags: Mapping[str, list[Tag]], q: Query, weights: Mapping[str, float]
) -> dict[str, float]:
    """Per file, its best-matching definition name, plus a little for the runner-up: a file
    with a thousand `test_...` functions scores like one with a single good match."""
    terms = set(q.terms)
    exact = {i.lower() for i in q.identifiers}
    scores: dict[str, float] = {}
    for p in paths:
        best = second = 0.0
        for tag in tags.get(p, ()):
            if tag.kind != "def":
                continue
            score = _name_match(tag.name, terms, exact, weights)
            if score > best:
                best, second = score, best
            elif score > second:
                second = score
        if best > 0:
            scores[p] = best + 0.25 * second
    return scores


def _name_match(name: str, terms: set[str], exact: set[str], weights: Mapping[str, float]) -> float:
    words = _name_words(name)
    matched = words & terms
    score = 0.0
    if matched:
        # A name made only of query words (`profile`) beats one that merely contains one
        # (`profile_cache_eviction_policy`).
        score = sum(weights.get(w, 0.0) for w in matched) * len(matched) / len(words)
    if name.lower() in exact:
        score += 2.0 + sum(weights.get(w, 0.0) for w in words)
    return score


def _exact_scores(corpus: Corpus, q: Query) -> dict[str, float]:
    """Identifiers a file defines and its path, as named in the query; a mention shared by
    many files counts for less in each."""
    scores: dict[str, float] = defaultdict(float)
    if q.identifiers:
        definers: dict[str, set[str]] = defaultdict(set)
        for p in corpus.paths:
            for tag in corpus.tags.get(p, ()):
                if tag.kind == "def" and tag.name in q.identifiers:
                    definers[tag.name].add(p)
        for where in definers.values():
            if len(where) <= MAX_DEFINERS:
                for p in where:
                    scores[p] += 1.0 / len(where)
    for mention in q.paths:
        mention = mention.strip("./").lower()
        if len(mention) < 3:
            continue
        hits = [p for p in corpus.paths if _path_matches(p.lower(), mention)]
        for p in hits[:MAX_DEFINERS]:
            scores[p] += 2.0 / len(hits)
    return dict(scores)


def _quoted_scores(corpus: Corpus, q: Query) -> dict[str, float]:
    """Files holding a quoted string or error message of the query verbatim. A lone word in
    quotes is a value more often than a message; identifiers have their own signal."""
    scores: dict[str, float] = defaultdict(float)
    lowered = _LowerTexts(corpus.texts)
    for phrase in q.phrases:
        needle = phrase.lower()
        needed = [t for t in text_terms(phrase) if t not in STOPWORDS]
        if len(needle) < 4 or not needed or not _MESSAGE_LIKE.search(phrase):
            continue
        hits = [
            p
            for p in corpus.paths
            if all(t in corpus.terms.get(p, {}) for t in needed) and needle in lowered[p]
        ]
        for p in hits[:MAX_DEFINERS]:
            scores[p] += 2.0 / len(hits)
    return dict(scores)


def _path_matches(path: str, mention: str) -> bool:
    if path == mention or path.endswith("/" + mention):
        return True
    stem = path.rsplit(".", 1)[0]
    # A dotted module (`pandas.core.frame`) became `pandas/core/frame`; it may also name a
    # package (`pkg/sub` -> `pkg/sub/__init__.py`).
    return "/" in mention and (
        stem == mention
        or stem.endswith("/" + mention)
        or stem.endswith("/" + mention + "/__init__")
        or stem == mention + "/__init__"
    )


class _LowerTexts(dict):
    """Lower-cased file texts, made on first use: most files are never searched."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        super().__init__()
        self._texts = texts

    def __missing__(self, path: str) -> str:
        value = self._texts.get(path, "").lower()
        self[path] = value
        return value


def _phrase_scores(corpus: Corpus, q: Query) -> dict[str, float]:
    """Runs of three query words found verbatim in a file: reports quote messages and output
    without quote marks. Rare runs count more; runs in most files say nothing."""
    words = _LOWER_WORD.findall(q.text.lower())
    grams: dict[str, list[str]] = {}
    for i in range(len(words) - 2):
        run = words[i : i + 3]
        content = [w for w in run if w not in STOPWORDS and len(w) >= 2 and not w.isdigit()]
        if not content or sum(map(len, run)) < 10:
            continue
        needed = [t for w in content for t in identifier_terms(w)[:1]]
        grams.setdefault(" ".join(run), needed)
        if len(grams) >= MAX_PHRASE_NGRAMS:
            break
    lowered = _LowerTexts(corpus.texts)
    scores: dict[str, float] = defaultdict(float)
    count = len(corpus.paths) or 1
    for gram, needed in grams.items():
        maybe = [p for p in corpus.paths if all(t in corpus.terms.get(p, {}) for t in needed)]
        if len(maybe) > MAX_PHRASE_CANDIDATES:
            continue
        hits = [p for p in maybe if gram in lowered[p]]
        if hits:
            weight = math.log(1 + count / len(hits))
            for p in hits:
                scores[p] += weight
    return dict(scores)


def _traceback_scores(paths: Sequence[str], q: Query) -> dict[str, float]:
    """Files of a pasted traceback's frames, the innermost frame first."""
    if not q.frames:
        return {}
    by_name: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        by_name[PurePosixPath(p).name].append(p)
    scores: dict[str, float] = {}
    frames = list(reversed(q.frames))
    for depth, frame in enumerate(frames):
        path = match_path(frame.path, by_name)
        if path is not None and path not in scores:
            scores[path] = 1.0 / (1 + depth)
    return scores


def _reference_graph(
    paths: Sequence[str],
    tags_by_path: Mapping[str, list[Tag]],
    refs_by_path: Mapping[str, Mapping[str, int]],
    q: Query,
) -> dict[str, dict[str, float]]:
    """Edges referencing file -> defining file, weighted per shared name as aider does."""
    terms, exact = set(q.terms), {i.lower() for i in q.identifiers}
    definers: dict[str, set[str]] = defaultdict(set)
    for p in paths:
        for tag in tags_by_path.get(p, ()):
            definers[tag.name].add(p)
    # A name defined in many files (`__init__`, `get`) says nothing about which one a
    # reference means, and would cost users x definers edges.
    useful = {n: where for n, where in definers.items() if len(where) <= MAX_DEFINERS}
    weight_of = {n: _name_weight(n, terms, exact) / len(where) for n, where in useful.items()}
    edges: dict[str, dict[str, float]] = {}
    useful_names = useful.keys()
    for user in paths:
        refs = refs_by_path.get(user, {})
        out: dict[str, float] = {}
        for name in useful_names & refs.keys():
            # sqrt: calling a helper twenty times is not twenty times the dependency.
            weight = weight_of[name] * math.sqrt(refs[name])
            for definer in useful[name]:
                if definer != user:
                    out[definer] = out.get(definer, 0.0) + weight
        if out:
            edges[user] = out
    return edges


def _def_scores(
    paths: Sequence[str],
    tags_by_path: Mapping[str, list[Tag]],
    refs_by_path: Mapping[str, Mapping[str, int]],
    pagerank: Mapping[str, float],
    q: Query,
    weights: Mapping[str, float],
) -> dict[tuple[str, str], float]:
    """Importance of each definition in `paths`: rank flowing in from files that reference
    its name (shared among the files defining that name), plus query matches."""
    terms, exact = set(q.terms), {i.lower() for i in q.identifiers}
    names = {t.name for p in paths for t in tags_by_path.get(p, ())}
    inflow_of: dict[str, float] = defaultdict(float)
    definers: Counter[str] = Counter()
    for path, refs in refs_by_path.items():
        rank_here = pagerank.get(path, 0.0)
        for name in names.intersection(refs):
            inflow_of[name] += rank_here
    for tags in tags_by_path.values():
        definers.update({t.name for t in tags} & names)
    scores: dict[tuple[str, str], float] = {}
    for path in paths:
        refs = refs_by_path.get(path, {})
        for tag in tags_by_path.get(path, ()):
            inflow = inflow_of.get(tag.name, 0.0)
            if tag.name in refs:
                inflow -= pagerank.get(path, 0.0)
            inflow /= definers[tag.name]
            match = _name_match(tag.name, terms, exact, weights)
            key = (path, tag.name)
            scores[key] = max(scores.get(key, 0.0), match + inflow * 10 + _weight_hint(tag))
    return scores


def _weight_hint(tag: Tag) -> float:
    # Types and top-level functions outline a file better than private helpers.
    base = 0.02 if tag.category in {"class", "interface", "type", "enum"} else 0.01
    return base / 10 if tag.name.startswith("_") else base


def _name_weight(name: str, terms: set[str], exact: set[str]) -> float:
    weight = 1.0
    if name.lower() in exact or _name_words(name) & terms:
        weight *= 10
    if name.startswith("_"):
        weight *= 0.1
    # Long compound names (`load_user_profile`) are specific; short ones (`get`) collide.
    if len(name) >= 8 and ("_" in name or any(c.isupper() for c in name[1:])):
        weight *= 10
    return weight


@lru_cache(maxsize=65536)
def _name_words(name: str) -> frozenset[str]:
    return frozenset(split_words(name))
