"""Index one file: its definitions and references from tree-sitter, and its term counts.

Serial on purpose: a cold build of ~1,500 files costs ~12 s of CPU, inside the target, and
worker processes would have to re-import whatever script started council (spawn) or fork a
process that may hold threads.
"""

from __future__ import annotations

import logging

from council.context.cache import FileIndex
from council.context.lexicon import text_terms
from council.context.sources import language_for
from council.context.tags import Tag, extract_index

log = logging.getLogger(__name__)


def index_file(path: str, data: bytes, text: str) -> tuple[FileIndex, bool]:
    """One file's index, and whether tree-sitter failed on it (its terms still count)."""
    language = language_for(path)
    defs: list[Tag] = []
    refs: dict[str, int] = {}
    failed = False
    if language is not None:
        try:
            defs, refs = extract_index(path, data, language)
        except Exception as exc:  # noqa: BLE001 - one odd file must not sink the whole map
            log.warning("could not extract tags from %s: %s", path, exc)
            failed = True
    return FileIndex(defs, refs, dict(text_terms(text))), failed
