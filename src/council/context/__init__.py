"""Maven's context: a tree-sitter repo map, ranked by the query, packed into token budgets."""

from council.context.repomap import ContextStats, RepoContext, build_context
from council.context.tags import Tag, extract_tags
from council.context.tokens import count_tokens

__all__ = [
    "ContextStats",
    "RepoContext",
    "Tag",
    "build_context",
    "count_tokens",
    "extract_tags",
]
