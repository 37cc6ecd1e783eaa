"""On-disk cache of what indexing a file yields (tags and term counts), keyed by language and
the sha256 of its bytes: an unchanged file is never parsed or tokenised again."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from council.context.tags import Tag

# Bump when the queries, the Tag shape or the tokenizer change: older entries are then ignored.
CACHE_VERSION = 3
CACHE_FILE = "repomap-index.json"


def content_key(language: str, data: bytes) -> str:
    """The cache key for one file's content; the path is left out so renames still hit."""
    return f"{language}:{hashlib.sha256(data).hexdigest()}"


@dataclass
class FileIndex:
    """One file's share of the index: its definitions, how often it references each name, and
    the term counts of its text. Reference lines are not kept: ranking only counts them."""

    defs: list[Tag]
    refs: dict[str, int]
    terms: dict[str, int]


class IndexCache:
    """A FileIndex per content key; loaded from and saved to one JSON file given a folder."""

    def __init__(self, cache_dir: Path | None) -> None:
        self._file = cache_dir / CACHE_FILE if cache_dir is not None else None
        self._entries: dict[str, list] = self._load()
        self._used: set[str] = set()
        self._dirty = False

    def get(self, key: str, path: str) -> FileIndex | None:
        """The cached index for `key`, its tags attributed to `path`, or None on a miss."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            rows, refs, terms = entry
            defs = [Tag(path, name, "def", *rest) for name, *rest in rows]
            if not isinstance(refs, dict) or not isinstance(terms, dict):
                return None
        except (TypeError, ValueError):
            # A hand-edited or truncated entry: treat as a miss and index again.
            return None
        self._used.add(key)
        return FileIndex(defs, refs, terms)

    def put(self, key: str, index: FileIndex) -> None:
        """Remember the index for `key`."""
        rows = [[t.name, t.line, t.signature, t.category, t.end_line] for t in index.defs]
        self._entries[key] = [rows, index.refs, index.terms]
        self._used.add(key)
        self._dirty = True

    def save(self) -> None:
        """Write entries used in this build (older ones are dropped so the file stays small)."""
        if self._file is None:
            return
        if not self._dirty and set(self._entries) == self._used:
            return
        kept = {k: v for k, v in self._entries.items() if k in self._used}
        payload = {"version": CACHE_VERSION, "entries": kept}
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash or a parallel build never leaves half a file.
            fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".repomap-", suffix=".tmp")
        except OSError:
            # The cache only saves time; failing to write it must not fail the build.
            return
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(payload))
            os.replace(tmp, self._file)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            return
        self._entries = kept
        self._dirty = False

    def _load(self) -> dict[str, list]:
        if self._file is None or not self._file.is_file():
            return {}
        try:
            payload = orjson.loads(self._file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        if not isinstance(payload, dict) or payload.get("version") != CACHE_VERSION:
            return {}
        entries = payload.get("entries")
        return entries if isinstance(entries, dict) else {}
