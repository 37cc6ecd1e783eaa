"""On-disk cache of extracted tags, keyed by language and the sha256 of a file's bytes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import orjson

from council.context.tags import Tag

# Bump when the queries or the Tag shape change: older entries are then ignored.
CACHE_VERSION = 1
CACHE_FILE = "repomap-tags.json"


def content_key(language: str, data: bytes) -> str:
    """The cache key for one file's content; the path is left out so renames still hit."""
    return f"{language}:{hashlib.sha256(data).hexdigest()}"


class TagCache:
    """Tags per content key; loaded from and saved to one JSON file when a folder is given."""

    def __init__(self, cache_dir: Path | None) -> None:
        self._file = cache_dir / CACHE_FILE if cache_dir is not None else None
        self._entries: dict[str, list[list]] = self._load()
        self._used: set[str] = set()
        self._dirty = False

    def get(self, key: str, path: str) -> list[Tag] | None:
        """The cached tags for `key`, attributed to `path`, or None on a miss."""
        rows = self._entries.get(key)
        if rows is None:
            return None
        self._used.add(key)
        try:
            return [Tag(path, name, kind, line, sig, cat) for name, kind, line, sig, cat in rows]
        except (TypeError, ValueError):
            # A hand-edited or truncated entry: treat as a miss and parse again.
            return None

    def put(self, key: str, tags: list[Tag]) -> None:
        """Remember the tags for `key`."""
        self._entries[key] = [[t.name, t.kind, t.line, t.signature, t.category] for t in tags]
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

    def _load(self) -> dict[str, list[list]]:
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
