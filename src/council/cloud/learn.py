"""Documentation look-up for cloud failures: the Microsoft Learn search API (public, no key),
answers cached on disk for a week; without network, no documents (and the reason), never
made-up links."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from council.paths import cache_root

SEARCH_URL = "https://learn.microsoft.com/api/search"
TTL_S = 7 * 24 * 3600
TIMEOUT_S = 8.0


@dataclass(frozen=True)
class Doc:
    title: str
    url: str
    summary: str


@dataclass
class Found:
    docs: list[Doc]
    source: str  # "fetched", "cached 2026-11-30", or why nothing could be had


class LearnSearch:
    def __init__(
        self,
        url: str | None = None,
        *,
        cache_dir: Path | None = None,
        ttl_s: float = TTL_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.url = url or os.environ.get("COUNCIL_LEARN_URL") or SEARCH_URL
        self.cache_dir = cache_dir or cache_root() / "learn"
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s

    def search(self, query: str, top: int = 3) -> Found:
        key = hashlib.sha256(f"{self.url}|{query}|{top}".encode()).hexdigest()[:32]
        path = self.cache_dir / f"{key}.json"
        cached = _read(path)
        if cached is not None and time.time() - cached[1] < self.ttl_s:
            return Found(cached[0], f"cached {_day(cached[1])}")
        try:
            docs = self._fetch(query, top)
        except _Unreachable as exc:
            if cached is not None:
                return Found(cached[0], f"cached {_day(cached[1])} (the search is unreachable)")
            return Found([], f"no documentation: {exc}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            doc = {"query": query, "fetched_at": time.time(), "docs": [asdict(d) for d in docs]}
            path.write_text(json.dumps(doc), encoding="utf-8")
        except OSError:
            pass  # a cache that cannot be written costs a search next time
        return Found(docs, "fetched")

    def _fetch(self, query: str, top: int) -> list[Doc]:
        import httpx

        params = {"search": query, "locale": "en-us", "$top": str(top)}
        try:
            response = httpx.get(self.url, params=params, timeout=self.timeout_s)
            response.raise_for_status()
            results = response.json().get("results") or []
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise _Unreachable(f"the Microsoft Learn search at {self.url} failed: {exc}") from exc
        docs = []
        for item in results[:top]:
            if isinstance(item, dict) and str(item.get("url", "")).startswith("https://"):
                docs.append(
                    Doc(str(item.get("title", "")), item["url"], str(item.get("description", "")))
                )
        return docs


class _Unreachable(Exception):
    pass


def _read(path: Path) -> tuple[list[Doc], float] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [Doc(**d) for d in doc["docs"]], float(doc["fetched_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))
