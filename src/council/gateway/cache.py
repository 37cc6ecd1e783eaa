"""On-disk cache of successful model answers, keyed by what determines the answer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def cache_key(
    models: list[str],
    messages: list[dict[str, Any]],
    temperature: float | None,
    max_tokens: int | None,
    schema: str | None,
) -> str:
    """Stable hash of the request; the alias name is left out so renaming an alias keeps hits."""
    payload = {
        "models": sorted(models),
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "schema": schema,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ExchangeCache:
    """diskcache-backed store of answer records (plain dicts), safe across processes."""

    def __init__(self, directory: Path) -> None:
        import diskcache  # only when a cache is configured

        directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(directory))

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._cache.get(key)
        return value if isinstance(value, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        self._cache.set(key, record)

    def close(self) -> None:
        self._cache.close()
