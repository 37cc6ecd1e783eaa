"""Names for branches, worktrees and commits: slugs and conventional commit messages."""

from __future__ import annotations

import re
import unicodedata

CONVENTIONAL_TYPES = (
    "feat", "fix", "test", "refactor", "docs", "chore", "perf", "style", "build", "ci", "revert",
)  # fmt: skip


def slugify(text: str, max_len: int = 40) -> str:
    """A lowercase ascii slug safe in a branch name and a directory name ("change" if empty)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_len:
        cut = slug[:max_len]
        # Prefer to cut at a word boundary when that keeps most of the text.
        if "-" in cut and cut.rfind("-") >= max_len // 2:
            cut = cut[: cut.rfind("-")]
        slug = cut.strip("-")
    return slug or "change"


def conventional_message(
    type: str, scope: str | None, subject: str, body: str | None = None
) -> str:
    """`type(scope): subject` + blank line + body; subject one line, no final period, <= 72."""
    kind = type.strip().lower()
    if kind not in CONVENTIONAL_TYPES:
        raise ValueError(
            f"unknown commit type {type!r}; use one of {', '.join(CONVENTIONAL_TYPES)}"
        )
    first = " ".join(subject.strip().splitlines()[0].split()) if subject.strip() else "update"
    first = first.rstrip(".")
    head = f"{kind}({scope.strip()}): " if scope and scope.strip() else f"{kind}: "
    limit = 72 - len(head)
    if len(first) > limit:
        first = first[: limit - 3].rstrip() + "..."
    message = head + first
    if body and body.strip():
        message += "\n\n" + body.strip()
    return message + "\n"
