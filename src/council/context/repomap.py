"""Build Maven's context: a ranked repo map plus the most relevant code, whole files when they
are small and excerpts of their relevant definitions when they are not."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from council.context.cache import IndexCache, content_key
from council.context.excerpts import Excerpt, Unit, make_excerpt, score_units
from council.context.indexer import index_file
from council.context.query import Query
from council.context.ranking import MAP_FILES, Corpus, Ranking, rank
from council.context.render import FileLayout, MapEntry, fit_map, render_map
from council.context.sources import (
    language_for,
    list_candidate_files,
    normalize_rel_path,
    read_text_file,
)
from council.context.tags import Tag
from council.context.tokens import count_tokens

log = logging.getLogger(__name__)

# Within a file, each further definition is worth a bit less, so the map shows the heads of
# several relevant files before the tail of one big file.
WITHIN_FILE_DECAY = 0.25
MAX_FULL_FILE_CANDIDATES = 20
LOCALISED_FILES = 10  # top files whose definitions are scored by their bodies
MIN_EXCERPT_TOKENS = 60  # below this, what is left of the budget carries nothing useful
FIRST_SHARE = 0.5  # a file takes at most this share of what is left of the budget ...
MIN_SHARE_TOKENS = 800  # ... or this much, whichever is larger


@dataclass
class ContextStats:
    """What a build did: how many files it saw, parsed, took from the cache or failed on."""

    files_seen: int = 0
    parsed_files: int = 0  # files whose tags were extracted in this build
    indexed_files: int = 0  # files tokenised in this build (cache misses)
    cache_hits: int = 0
    parse_failures: int = 0
    reindexed: list[str] = field(default_factory=list)  # paths indexed in this build


@dataclass
class RepoContext:
    """Context for a model: the map, chosen files' text, and the full ranking."""

    repo_map: str  # the rendered map, within map_tokens
    files: dict[str, str]  # path -> whole text or excerpt of the most relevant files
    ranked_paths: list[str]  # all candidate files, most relevant first
    map_tokens: int  # tokens the map uses
    file_tokens: int  # tokens the files use (whole and excerpts), within file_tokens
    stats: ContextStats = field(default_factory=ContextStats)
    excerpts: dict[str, Excerpt] = field(default_factory=dict)  # the `files` cut to excerpts
    definitions: dict[str, list[str]] = field(default_factory=dict)  # top files' best defs

    def candidate_list(self, limit: int = LOCALISED_FILES) -> str:
        """The head of the ranking as a numbered list with each file's best definitions: what
        Maven chooses from (and what the run falls back to when it chooses nothing)."""
        lines = ["Candidate files, most relevant first (with their best-matching definitions):"]
        for i, path in enumerate(self.ranked_paths[:limit], start=1):
            names = self.definitions.get(path, [])
            lines.append(f"{i}. {path}" + (f": {', '.join(names)}" if names else ""))
        return "\n".join(lines) + "\n" if self.ranked_paths else ""


def build_context(
    root: Path,
    query: str,
    *,
    mentioned_paths: Sequence[str] = (),
    map_tokens: int = 4000,
    file_tokens: int = 8000,
    cache_dir: Path | None = None,
    exclude: Sequence[str] = (),
) -> RepoContext:
    """Rank the repository's files for `query` (feature + plan text) and pack the budgets.

    Files chosen for `files` are left out of the map: their full text already says more.
    `mentioned_paths` (relative to root, or absolute inside it) are ranked first and offered to
    `files` first, even when git ignores them.
    """
    root = Path(root)
    stats = ContextStats()
    paths = list_candidate_files(root, exclude)
    mentioned = _existing_mentions(root, mentioned_paths)
    listed = set(paths)
    paths.extend(p for p in mentioned if p not in listed)

    texts: dict[str, str] = {}
    tags_by_path: dict[str, list[Tag]] = {}
    refs_by_path: dict[str, dict[str, int]] = {}
    terms_by_path: dict[str, dict[str, int]] = {}
    cache = IndexCache(cache_dir)
    misses: list[tuple[str, str, bytes]] = []
    for path in paths:
        data = read_text_file(root, path)
        if data is None:
            continue
        stats.files_seen += 1
        texts[path] = data.decode("utf-8", errors="replace")
        key = content_key(language_for(path) or "text", data)
        index = cache.get(key, path)
        if index is None:
            misses.append((path, key, data))
            continue
        stats.cache_hits += 1
        tags_by_path[path], refs_by_path[path], terms_by_path[path] = (
            index.defs,
            index.refs,
            index.terms,
        )
    # Only files whose content is new to the cache are parsed and tokenised.
    for path, key, data in misses:
        index, failed = index_file(path, data, texts[path])
        stats.indexed_files += 1
        stats.reindexed.append(path)
        stats.parsed_files += language_for(path) is not None
        stats.parse_failures += failed
        cache.put(key, index)
        tags_by_path[path], refs_by_path[path], terms_by_path[path] = (
            index.defs,
            index.refs,
            index.terms,
        )
    cache.save()

    candidates = [p for p in paths if p in texts]
    q = Query.parse(query)
    corpus = Corpus(candidates, tags_by_path, refs_by_path, terms_by_path, texts)
    ranking = rank(corpus, q, [p for p in mentioned if p in texts])
    units = {
        p: score_units(
            p, texts[p], tags_by_path.get(p, []), ranking.query or q, ranking.term_weights
        )
        for p in ranking.paths[:LOCALISED_FILES]
    }
    _promote_localised(ranking, units)
    files, excerpts, used_file_tokens = _pack_files(ranking.paths, texts, units, file_tokens)
    layouts = {p: _layout(texts[p], tags_by_path.get(p, [])) for p in ranking.paths[:MAP_FILES]}
    repo_map = _fit_repo_map(ranking, tags_by_path, layouts, set(files) - set(excerpts), map_tokens)
    return RepoContext(
        repo_map=repo_map,
        files=files,
        ranked_paths=ranking.paths,
        map_tokens=count_tokens(repo_map),
        file_tokens=used_file_tokens,
        stats=stats,
        excerpts=excerpts,
        definitions={p: [u.tag.name for u in us if u.score > 0][:5] for p, us in units.items()},
    )


def _existing_mentions(root: Path, mentioned_paths: Sequence[str]) -> list[str]:
    found: list[str] = []
    for raw in mentioned_paths:
        rel = normalize_rel_path(root, raw)
        if rel and rel not in found and (root / rel).is_file():
            found.append(rel)
    return found


def _layout(text: str, tags: list[Tag]) -> FileLayout:
    lines = text.splitlines()
    indents = {}
    for tag in tags:
        if tag.kind == "def" and 0 < tag.line <= len(lines):
            line = lines[tag.line - 1]
            indents[tag.line] = line[: len(line) - len(line.lstrip())]
    return FileLayout(line_count=len(lines), indents=indents)


def _promote_localised(ranking: Ranking, units: dict[str, list[Unit]]) -> None:
    """In the top files, the definitions whose bodies match the query lead the map."""
    for path, scored in units.items():
        for unit in scored:
            if unit.score > 0:
                key = (path, unit.tag.name)
                ranking.def_scores[key] = ranking.def_scores.get(key, 0.0) + 100 + unit.score


def _pack_files(
    ranked: Sequence[str], texts: dict[str, str], units: dict[str, list[Unit]], budget: int
) -> tuple[dict[str, str], dict[str, Excerpt], int]:
    """Files in rank order: whole when small enough, else excerpts of their best definitions.

    Each file may take at most half of what is left (or MIN_SHARE_TOKENS), so one large
    module cannot fill the budget and the next candidates still get their turn.
    """
    chosen: dict[str, str] = {}
    excerpts: dict[str, Excerpt] = {}
    used = 0
    for path in ranked[:MAX_FULL_FILE_CANDIDATES]:
        remaining = budget - used
        if remaining < MIN_EXCERPT_TOKENS:
            break
        text = texts[path]
        if not text.strip():
            continue
        share = min(remaining, max(int(remaining * FIRST_SHARE), MIN_SHARE_TOKENS))
        # A word costs a token per four characters at least: a file far too large for its
        # share is known without counting it.
        visible = len(text) - text.count(" ") - text.count("\n")
        cost = count_tokens(text) if visible <= 4 * share else share + 1
        if cost <= share:
            chosen[path] = text
            used += cost
            continue
        excerpt = make_excerpt(path, text, units.get(path, []), share)
        if excerpt is not None:
            chosen[path] = excerpt.text
            excerpts[path] = excerpt
            used += count_tokens(excerpt.text)
    return chosen, excerpts, used


def _fit_repo_map(
    ranking: Ranking,
    tags_by_path: dict[str, list[Tag]],
    layouts: dict[str, FileLayout],
    skip: set[str],
    budget: int,
) -> str:
    order = {p: i for i, p in enumerate(ranking.paths)}
    top_score = max(ranking.file_scores.values(), default=0.0) + 1.0
    prioritised: list[tuple[float, int, int, MapEntry]] = []
    # Past the head of the ranking no budget has room; scoring the rest would only cost time.
    for path in ranking.paths[:MAP_FILES]:
        if path in skip:
            continue
        # Ranking order already puts mentioned files first; mirror that in the priorities.
        file_score = ranking.file_scores[path]
        if path in ranking.mentioned:
            file_score = top_score
        defs = _unique_defs(tags_by_path.get(path, []))
        defs.sort(key=lambda t: (-ranking.def_scores.get((path, t.name), 0.0), t.line))
        if not defs:
            prioritised.append((file_score, order[path], 0, MapEntry(path)))
        for i, tag in enumerate(defs):
            weight = file_score / (1 + WITHIN_FILE_DECAY * i)
            prioritised.append((weight, order[path], i, MapEntry(path, tag)))
    prioritised.sort(key=lambda item: (-item[0], item[1], item[2]))
    entries = [item[3] for item in prioritised]
    return fit_map(entries, budget, lambda chosen: render_map(chosen, order, layouts))


def _unique_defs(tags: list[Tag]) -> list[Tag]:
    seen: set[tuple[str, int]] = set()
    unique = []
    for tag in tags:
        if tag.kind == "def" and (tag.name, tag.line) not in seen:
            seen.add((tag.name, tag.line))
            unique.append(tag)
    return unique
