"""Index one file: its definitions and references from tree-sitter, and its term counts.

Serial on purpose: a cold build of ~1,500 files costs ~12 s of CPU, inside the target, and
worker processes would have to re-import whatever script started council (spawn) or fork a
process that may hold threads.
"""

from __future__ import annotations

import logging
from collections import Counter

from council.context.cache import FileIndex
from council.context.lexicon import text_terms
from council.context.sources import language_for
from council.context.tags import Tag, extract_tags

log = logging.getLogger(__name__)


def index_file(path: str, data: bytes, text: str) -> tuple[FileIndex, bool]:
    """One file's index, and whether tree-sitter failed on it (its terms still count)."""
    language = language_for(path)
    tags: list[Tag] = []
    failed = False
    if language is not None:
        try:
            tags = extract_tags(path, data, language)
        except Exception as exc:  # noqa: BLE001 - one odd file must not sink the whole map
            log.warning("could not extract tags from %s: %s", path, exc)
            failed = True
    defs = [t for t in tags if t.kind == "def"]
    refs = Counter(t.name for t in tags if t.kind == "ref")
    return FileIndex(defs, dict(refs), dict(text_terms(text))), failed
