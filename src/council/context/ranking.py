"""Rank files and definitions by relevance to a query plus a personalised PageRank over refs."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath

from council.context.tags import Tag

# Words that carry no meaning about *which* code is wanted.
STOPWORDS = frozenset(
    """a an and are as at be by can do does for from has have how i if in into is it its me
    my of on or our should so that the their then there these this to use used using was we
    when where which while will with would you your add adds implement feature please make
    need needs want also new able allow allows so must via""".split()
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

DAMPING = 0.85
MAX_DEFINERS = 20
QUERY_PATH_BOOST = 5.0  # a file whose path or name appears in the query text


def split_words(text: str) -> list[str]:
    """Lower-case, lightly stemmed words of identifiers and prose: `getUserProfiles` -> get,
    user, profile."""
    words = []
    for piece in _WORD.findall(text):
        word = _stem(piece.lower())
        if len(word) >= 2 and not word.isdigit():
            words.append(word)
    return words


@dataclass
class QueryTerms:
    """What a query asks about: whole identifiers and the words inside them."""

    identifiers: set[str] = field(default_factory=set)  # lower-cased, as written
    words: set[str] = field(default_factory=set)  # stemmed, stopwords removed

    @classmethod
    def parse(cls, query: str) -> QueryTerms:
        identifiers = {m.lower() for m in _IDENT.findall(query) if len(m) >= 3}
        words = {w for w in split_words(query) if w not in STOPWORDS and len(w) >= 3}
        return cls(identifiers - STOPWORDS, words)


@dataclass
class Ranking:
    """Files most relevant first, with the scores that ordered them."""

    paths: list[str]
    file_scores: dict[str, float]
    def_scores: dict[tuple[str, str], float]  # (path, def name) -> importance
    mentioned: list[str] = field(default_factory=list)  # ranked first, in the order given


def rank(
    paths: Sequence[str],
    tags_by_path: Mapping[str, list[Tag]],
    query: str,
    mentioned: Sequence[str] = (),
) -> Ranking:
    """Order `paths` by query relevance, then by graph rank personalised toward the query."""
    terms = QueryTerms.parse(query)
    relevance = _relevance(paths, tags_by_path, terms, query)
    # Named files pull the graph toward their neighbours at least as hard as the best match.
    bias = dict(relevance)
    for path in mentioned:
        if path in bias:
            bias[path] += max(max(relevance.values(), default=0.0), 1.0)
    graph = _reference_graph(paths, tags_by_path, terms)
    pagerank = personalised_pagerank(paths, graph, bias)

    top_relevance = max(relevance.values(), default=0.0) or 1.0
    top_rank = max(pagerank.values(), default=0.0) or 1.0
    # Query relevance dominates; the graph orders files the query says nothing about and
    # breaks ties between equally relevant ones.
    scores = {p: 2.0 * relevance[p] / top_relevance + pagerank[p] / top_rank for p in paths}
    mentioned_order = {p: i for i, p in enumerate(dict.fromkeys(mentioned)) if p in scores}
    ordered = sorted(
        paths,
        key=lambda p: (
            mentioned_order.get(p, len(mentioned_order)),
            -scores[p],
            p,
        ),
    )
    def_scores = _def_scores(tags_by_path, pagerank, terms)
    return Ranking(ordered, scores, def_scores, list(mentioned_order))


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
    bias = [max(personalisation.get(n, 0.0), 0.0) for n in nodes]
    total_bias = sum(bias)
    if total_bias > 0:
        # Keep a little uniform teleport so files the query never reaches still get an order.
        teleport = [0.7 * b / total_bias + 0.3 / size for b in bias]
    else:
        teleport = [1.0 / size] * size
    # Adjacency as index lists with normalised weights: the inner loop is plain arithmetic.
    adjacency: list[tuple[int, list[tuple[int, float]]]] = []
    for src, dsts in edges.items():
        total = sum(w for d, w in dsts.items() if d in index and w > 0)
        if src in index and total > 0:
            outs = [(index[d], w / total) for d, w in dsts.items() if d in index and w > 0]
            adjacency.append((index[src], outs))
    has_out = [False] * size
    for src, _outs in adjacency:
        has_out[src] = True
    rank_of = list(teleport)
    for _ in range(max_iterations):
        dangling = sum(r for r, out in zip(rank_of, has_out, strict=True) if not out)
        spread = 1 - damping + damping * dangling
        nxt = [spread * t for t in teleport]
        for src, outs in adjacency:
            share = damping * rank_of[src]
            for dst, weight in outs:
                nxt[dst] += share * weight
        delta = sum(abs(a - b) for a, b in zip(nxt, rank_of, strict=True))
        rank_of = nxt
        if delta < tolerance:
            break
    return {n: rank_of[i] for n, i in index.items()}


def _relevance(
    paths: Sequence[str],
    tags_by_path: Mapping[str, list[Tag]],
    terms: QueryTerms,
    query: str,
) -> dict[str, float]:
    """How much each file's definitions, path and references match the query words."""
    def_words = {p: {t.name: _name_words(t.name) for t in _defs(tags_by_path, p)} for p in paths}
    path_words = {p: set(split_words(p)) for p in paths}
    # Inverse document frequency: a word found in every file says little about any of them.
    doc_freq: Counter[str] = Counter()
    for p in paths:
        doc_freq.update(set().union(path_words[p], *def_words[p].values()) & terms.words)
    idf = {w: math.log(1 + len(paths) / doc_freq[w]) for w in doc_freq}
    query_lower = query.lower()
    relevance: dict[str, float] = {}
    for p in paths:
        score = 0.0
        for name, words in def_words[p].items():
            matched = words & terms.words
            if matched:
                # A name made only of query words (`profile`) beats one that merely contains
                # one (`profile_cache_eviction_policy`).
                score += sum(idf[w] for w in matched) * len(matched) / len(words)
            if name.lower() in terms.identifiers:
                score += 2.0
        score += sum(idf[w] for w in path_words[p] & terms.words)
        ref_names = {t.name for t in tags_by_path.get(p, ()) if t.kind == "ref"}
        score += 0.1 * sum(1 for n in ref_names if _name_words(n) & terms.words)
        name = PurePosixPath(p).name.lower()
        if p.lower() in query_lower or (len(name) >= 4 and "." in name and name in query_lower):
            score += QUERY_PATH_BOOST
        relevance[p] = score
    return relevance


def _reference_graph(
    paths: Sequence[str], tags_by_path: Mapping[str, list[Tag]], terms: QueryTerms
) -> dict[str, dict[str, float]]:
    """Edges referencing file -> defining file, weighted per shared name as aider does."""
    definers: dict[str, set[str]] = defaultdict(set)
    references: dict[str, Counter[str]] = defaultdict(Counter)
    for p in paths:
        for tag in tags_by_path.get(p, ()):
            if tag.kind == "def":
                definers[tag.name].add(p)
            else:
                references[tag.name][p] += 1
    edges: dict[str, dict[str, float]] = defaultdict(dict)
    for name, where_defined in definers.items():
        users = references.get(name)
        # A name defined in many files (`__init__`, `get`) says nothing about which one a
        # reference means, and would cost users x definers edges.
        if not users or len(where_defined) > MAX_DEFINERS:
            continue
        weight = _name_weight(name, terms) / len(where_defined)
        for user, count in users.items():
            for definer in where_defined:
                if definer == user:
                    continue
                # sqrt: calling a helper twenty times is not twenty times the dependency.
                edges[user][definer] = edges[user].get(definer, 0.0) + weight * math.sqrt(count)
    return dict(edges)


def _def_scores(
    tags_by_path: Mapping[str, list[Tag]],
    pagerank: Mapping[str, float],
    terms: QueryTerms,
) -> dict[tuple[str, str], float]:
    """Importance of each definition: rank flowing in from files that reference its name
    (shared among the files defining that name), plus query matches."""
    users: dict[str, set[str]] = defaultdict(set)
    definers: Counter[str] = Counter()
    for path, tags in tags_by_path.items():
        for tag in tags:
            if tag.kind == "ref":
                users[tag.name].add(path)
        definers.update({t.name for t in tags if t.kind == "def"})
    inflow_of = {name: sum(pagerank.get(u, 0.0) for u in paths) for name, paths in users.items()}
    scores: dict[tuple[str, str], float] = {}
    for path, tags in tags_by_path.items():
        for tag in tags:
            if tag.kind != "def":
                continue
            inflow = inflow_of.get(tag.name, 0.0)
            if path in users.get(tag.name, ()):
                inflow -= pagerank.get(path, 0.0)
            inflow /= definers[tag.name]
            match = len(_name_words(tag.name) & terms.words) + (
                2 if tag.name.lower() in terms.identifiers else 0
            )
            key = (path, tag.name)
            scores[key] = max(scores.get(key, 0.0), match + inflow * 10 + _weight_hint(tag))
    return scores


def _weight_hint(tag: Tag) -> float:
    # Types and top-level functions outline a file better than private helpers.
    base = 0.02 if tag.category in {"class", "interface", "type", "enum"} else 0.01
    return base / 10 if tag.name.startswith("_") else base


def _name_weight(name: str, terms: QueryTerms) -> float:
    weight = 1.0
    if name.lower() in terms.identifiers or _name_words(name) & terms.words:
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


def _defs(tags_by_path: Mapping[str, list[Tag]], path: str) -> Iterable[Tag]:
    return (t for t in tags_by_path.get(path, ()) if t.kind == "def")


def _stem(word: str) -> str:
    # Just enough stemming that `profiles` finds `profile` and `entries` finds `entry`.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word
