"""Azure retail prices, from the public Retail Prices API (no key), cached on disk with a date.

The API takes an OData `$filter` (serviceName, armRegionName, productName, skuName, meterName,
type, ...), answers pages of `Items` in the `currencyCode` asked, and links the next page in
`NextPageLink`. Reservation, dev/test and spot/low-priority rows are dropped: a plain request
pays the consumption price. A query answered once is kept (with the date it was fetched) and
reused for a week; when the API cannot be reached an older answer is used and its date stated;
with neither, the price is unknown, never made up.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from council.paths import cache_root

API_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
CACHE_TTL_S = 7 * 24 * 3600
MAX_PAGES = 50  # a narrow filter needs one or two; a runaway paging loop stops here
TIMEOUT_S = 10.0


class PricesUnavailable(Exception):
    """No prices: the API could not be reached (or answered nonsense) and nothing is cached."""


@dataclass(frozen=True)
class PriceRow:
    """One consumption meter's retail price."""

    meter_name: str
    sku_name: str
    product_name: str
    unit_of_measure: str
    retail_price: float
    tier_minimum_units: float
    currency: str
    region: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> PriceRow:
        return cls(
            meter_name=str(item.get("meterName", "")),
            sku_name=str(item.get("skuName", "")),
            product_name=str(item.get("productName", "")),
            unit_of_measure=str(item.get("unitOfMeasure", "")),
            retail_price=float(item["retailPrice"]),
            tier_minimum_units=float(item.get("tierMinimumUnits") or 0.0),
            currency=str(item.get("currencyCode", "")),
            region=str(item.get("armRegionName", "")),
        )


@dataclass(frozen=True)
class PriceList:
    rows: list[PriceRow]
    currency: str
    fetched_at: float  # when the API answered (epoch seconds)
    from_cache: bool
    stale: bool = False  # older than the TTL, used because the API could not be reached

    @property
    def fetched_on(self) -> str:
        return datetime.fromtimestamp(self.fetched_at, tz=UTC).strftime("%Y-%m-%d")


def odata_filter(**equals: str) -> str:
    """`serviceName eq 'Storage' and armRegionName eq 'westeurope'` from keyword arguments
    (single quotes doubled, as OData escapes them)."""
    parts = []
    for key, value in equals.items():
        escaped = str(value).replace("'", "''")
        parts.append(f"{key} eq '{escaped}'")
    return " and ".join(parts)


def is_plain_consumption(item: dict[str, Any]) -> bool:
    """A pay-as-you-go row: not a reservation, dev/test price, spot or low-priority SKU."""
    if item.get("type") not in (None, "Consumption"):
        return False
    names = f"{item.get('skuName', '')} {item.get('meterName', '')}".lower()
    return "spot" not in names and "low priority" not in names


class RetailPrices:
    """Queries the Retail Prices API through httpx, with an on-disk cache of each answer."""

    def __init__(
        self,
        url: str | None = None,
        *,
        currency: str = "USD",
        cache_dir: Path | None = None,
        ttl_s: float = CACHE_TTL_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.url = url or os.environ.get("COUNCIL_PRICES_URL") or API_URL
        self.currency = currency.upper()
        self.cache_dir = cache_dir or cache_root() / "prices"
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s

    def query(self, odata: str) -> PriceList:
        """The consumption rows matching `odata`: fresh cache, else the API, else old cache."""
        path = self._cache_path(odata)
        cached = self._read_cache(path)
        if cached is not None and time.time() - cached.fetched_at < self.ttl_s:
            return cached
        try:
            items = self._fetch(odata)
        except PricesUnavailable as exc:
            if cached is not None:
                return PriceList(cached.rows, cached.currency, cached.fetched_at, True, True)
            raise PricesUnavailable(f"{exc}; no prices are cached for this query") from exc
        now = time.time()
        self._write_cache(path, odata, items, now)
        rows = [PriceRow.from_item(i) for i in items if is_plain_consumption(i)]
        return PriceList(rows, self.currency, now, from_cache=False)

    # -- the API -----------------------------------------------------------------------------
    def _fetch(self, odata: str) -> list[dict[str, Any]]:
        import httpx

        params: dict[str, str] | None = {
            "api-version": API_VERSION,
            "currencyCode": f"'{self.currency}'",
            "$filter": odata,
        }
        url: str | None = self.url
        items: list[dict[str, Any]] = []
        try:
            with httpx.Client(timeout=self.timeout_s, follow_redirects=True) as client:
                for _page in range(MAX_PAGES):
                    if url is None:
                        break
                    response = client.get(url, params=params)
                    response.raise_for_status()
                    page = response.json()
                    if not isinstance(page, dict) or not isinstance(page.get("Items"), list):
                        raise PricesUnavailable(
                            f"the prices API at {self.url} answered something that is not a "
                            "page of prices"
                        )
                    items.extend(i for i in page["Items"] if _has_price(i))
                    # NextPageLink carries the whole query (filter, currency, $skip); it is
                    # followed only to the host that was asked.
                    url, params = _same_host(self.url, page.get("NextPageLink")), None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise PricesUnavailable(
                f"the prices API at {self.url} cannot be reached: {reason}"
            ) from exc
        except ValueError as exc:  # a body that is not JSON
            raise PricesUnavailable(
                f"the prices API at {self.url} answered no JSON: {exc}"
            ) from exc
        return items

    # -- the cache ---------------------------------------------------------------------------
    def _cache_path(self, odata: str) -> Path:
        key = hashlib.sha256(f"{self.url}|{self.currency}|{odata}".encode()).hexdigest()[:32]
        return self.cache_dir / f"{key}.json"

    def _read_cache(self, path: Path) -> PriceList | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            items = [i for i in doc["items"] if _has_price(i)]
            fetched = float(doc["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or damaged: as if nothing were cached
        rows = [PriceRow.from_item(i) for i in items if is_plain_consumption(i)]
        return PriceList(rows, str(doc.get("currency", self.currency)), fetched, from_cache=True)

    def _write_cache(self, path: Path, odata: str, items: list[dict], now: float) -> None:
        doc = {
            "query": odata,
            "currency": self.currency,
            "fetched_at": now,
            "fetched_on": datetime.fromtimestamp(now, tz=UTC).isoformat(),
            "items": items,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass  # a cache that cannot be written costs a fetch next time, nothing more


def _same_host(base: str, link: Any) -> str | None:
    if not isinstance(link, str) or not link:
        return None
    import httpx

    if httpx.URL(link).host != httpx.URL(base).host:
        raise PricesUnavailable(f"the prices API's next page points elsewhere: {link}")
    return link


def _has_price(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    try:
        float(item["retailPrice"])
    except (KeyError, TypeError, ValueError):
        return False
    return True
