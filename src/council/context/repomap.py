"""Build Maven's context: a ranked repo map plus the full text of the most relevant files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from council.context.cache import TagCache, content_key
from council.context.ranking import Ranking, rank
from council.context.render import FileLayout, MapEntry, fit_map, render_map
from council.context.sources import (
    language_for,
    list_candidate_files,
    normalize_rel_path,
    read_text_file,
)
from council.context.tags import Tag, extract_tags
from council.context.tokens import count_tokens

log = logging.getLogger(__name__)

# Within a file, each further definition is worth a bit less, so the map shows the heads of
# several relevant files before the tail of one big file.
WITHIN_FILE_DECAY = 0.25
MAX_FULL_FILE_CANDIDATES = 20


@dataclass
class ContextStats:
    """What a build did: how many files it saw, parsed, took from the cache or failed on."""

    files_seen: int = 0
    parsed_files: int = 0
    cache_hits: int = 0
    parse_failures: int = 0


@dataclass
class RepoContext:
    """Context for a model: the map, chosen files' text, and the full ranking."""

    repo_map: str  # the rendered map, within map_tokens
    files: dict[str, str]  # path -> full text of the most relevant files, within file_tokens
    ranked_paths: list[str]  # all candidate files, most relevant first
    map_tokens: int  # tokens the map uses
    file_tokens: int  # tokens the files use
    stats: ContextStats = field(default_factory=ContextStats)


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
    layouts: dict[str, FileLayout] = {}
    cache = TagCache(cache_dir)
    for path in paths:
        data = read_text_file(root, path)
        if data is None:
            continue
        stats.files_seen += 1
        text = data.decode("utf-8", errors="replace")
        texts[path] = text
        tags = _tags_for(path, data, cache, stats)
        tags_by_path[path] = tags
        layouts[path] = _layout(text, tags)
    cache.save()

    candidates = [p for p in paths if p in texts]
    ranking = rank(candidates, tags_by_path, query, [p for p in mentioned if p in texts])
    files, used_file_tokens = _pick_files(ranking.paths, texts, file_tokens)
    repo_map = _fit_repo_map(ranking, tags_by_path, layouts, set(files), map_tokens)
    return RepoContext(
        repo_map=repo_map,
        files=files,
        ranked_paths=ranking.paths,
        map_tokens=count_tokens(repo_map),
        file_tokens=used_file_tokens,
        stats=stats,
    )


def _existing_mentions(root: Path, mentioned_paths: Sequence[str]) -> list[str]:
    found: list[str] = []
    for raw in mentioned_paths:
        rel = normalize_rel_path(root, raw)
        if rel and rel not in found and (root / rel).is_file():
            found.append(rel)
    return found


def _tags_for(path: str, data: bytes, cache: TagCache, stats: ContextStats) -> list[Tag]:
    language = language_for(path)
    if language is None:
        return []
    key = content_key(language, data)
    cached = cache.get(key, path)
    if cached is not None:
        stats.cache_hits += 1
        return cached
    stats.parsed_files += 1
    try:
        tags = extract_tags(path, data, language)
    except Exception as exc:  # noqa: BLE001 - one odd file must not sink the whole map
        log.warning("could not extract tags from %s: %s", path, exc)
        stats.parse_failures += 1
        tags = []
    cache.put(key, tags)
    return tags


def _layout(text: str, tags: list[Tag]) -> FileLayout:
    lines = text.splitlines()
    indents = {}
    for tag in tags:
        if tag.kind == "def" and 0 < tag.line <= len(lines):
            line = lines[tag.line - 1]
            indents[tag.line] = line[: len(line) - len(line.lstrip())]
    return FileLayout(line_count=len(lines), indents=indents)


def _pick_files(
    ranked: Sequence[str], texts: dict[str, str], budget: int
) -> tuple[dict[str, str], int]:
    """Whole files in rank order while they fit; one that does not is skipped, not cut."""
    chosen: dict[str, str] = {}
    used = 0
    # Past the head of the ranking, a file that happens to be small is not worth its tokens.
    for path in ranked[:MAX_FULL_FILE_CANDIDATES]:
        cost = count_tokens(texts[path])
        if used + cost <= budget and texts[path].strip():
            chosen[path] = texts[path]
            used += cost
    return chosen, used


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
    for path in ranking.paths:
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
