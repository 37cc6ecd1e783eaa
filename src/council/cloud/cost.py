"""Cost estimates of an intent from real retail prices, with a breakdown and the assumptions.

Today doit creates resource groups, storage accounts, blob containers and uploads. A resource
group and a container cost nothing by themselves; a storage account costs what it stores and
the operations on it: the estimate prices the data the objective uploads (a month of it) and
the write operations it makes, at the account's SKU and access tier in its region. Anything
that cannot be priced makes the whole estimate unknown: a partial figure would read as a total.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from council.cloud.intent import CloudIntent, parameter
from council.cloud.money import amount
from council.cloud.prices import PriceList, PricesUnavailable, RetailPrices, odata_filter

HOURS_PER_MONTH = 730  # Azure's own figure for monthly prices
GB = 1024**3


@dataclass
class CostLine:
    resource: str
    meter: str
    quantity: float
    unit: str
    unit_price: float
    monthly: float


@dataclass
class CostEstimate:
    """Monthly and hourly cost, or None for both when a price could not be had."""

    monthly: float | None
    currency: str = "USD"
    lines: list[CostLine] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    source: str = ""  # where the prices came from, with their date
    unknown_reason: str = ""

    @property
    def known(self) -> bool:
        return self.monthly is not None

    @property
    def hourly(self) -> float | None:
        return None if self.monthly is None else self.monthly / HOURS_PER_MONTH

    def describe(self) -> str:
        if self.monthly is None:
            return f"cost unknown: {self.unknown_reason}"
        return (
            f"{self.currency} {amount(self.monthly)}/month ({amount(self.hourly or 0)}/hour), "
            f"prices {self.source}"
        )

    def as_dict(self) -> dict:
        return {
            "monthly": self.monthly,
            "hourly": self.hourly,
            "currency": self.currency,
            "lines": [line.__dict__ for line in self.lines],
            "assumptions": self.assumptions,
            "source": self.source,
            "unknown_reason": self.unknown_reason,
        }


def upload_files(patterns: list[str] | str, base: Path) -> list[Path]:
    """The files an upload names (paths or globs, relative to `base`), sorted, no folders."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found: set[Path] = set()
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        found.update(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
    return sorted(found)


def _redundancy(sku: str) -> str:
    # Standard_LRS -> LRS, Standard_RAGRS -> RA-GRS (the meters' spelling)
    tail = sku.split("_", 1)[-1].upper()
    return {"RAGRS": "RA-GRS", "RAGZRS": "RA-GZRS"}.get(tail, tail)


def _tier_price(rows, quantity: float):
    """The row whose tier covers `quantity` (tiers start at tierMinimumUnits)."""
    rows = sorted(rows, key=lambda r: r.tier_minimum_units)
    chosen = None
    for row in rows:
        if row.tier_minimum_units <= quantity:
            chosen = row
    return chosen


def _per_unit(row) -> float:
    """Price of one unit: '10K' meters are priced per ten thousand operations."""
    unit = row.unit_of_measure.replace(" ", "").upper()
    if unit.startswith("10K"):
        return row.retail_price / 10_000
    if unit.startswith("1M"):
        return row.retail_price / 1_000_000
    return row.retail_price


def estimate(intent: CloudIntent, prices: RetailPrices, base: Path) -> CostEstimate:
    """Price what `intent` creates; unknown (with the reason) when prices cannot be had."""
    result = CostEstimate(monthly=0.0, currency=prices.currency)
    if intent.operation != "create":
        result.assumptions.append(f"{intent.operation} creates nothing that is billed")
        result.source = "none needed"
        return result
    files = [
        f
        for upload in intent.of_type("blob_upload")
        for f in upload_files(parameter(intent, upload, "files") or [], base)
    ]
    stored_gb = sum(f.stat().st_size for f in files) / GB
    writes = len(files) + len(intent.of_type("blob_container"))
    sources: list[PriceList] = []
    for account in intent.of_type("storage_account"):
        name = parameter(intent, account, "name")
        region = parameter(intent, account, "region")
        tier = str(parameter(intent, account, "access_tier")).capitalize()
        redundancy = _redundancy(str(parameter(intent, account, "sku")))
        sku_name = f"{tier} {redundancy}"
        query = odata_filter(
            serviceName="Storage",
            armRegionName=region,
            productName="General Block Blob v2",
            skuName=sku_name,
        )
        try:
            listing = prices.query(query)
        except PricesUnavailable as exc:
            return CostEstimate(None, prices.currency, unknown_reason=str(exc))
        sources.append(listing)
        stored = [r for r in listing.rows if r.meter_name.endswith("Data Stored")]
        written = [r for r in listing.rows if r.meter_name.endswith("Write Operations")]
        stored_row, write_row = _tier_price(stored, stored_gb), _tier_price(written, writes)
        if stored_row is None or write_row is None:
            missing = "data stored" if stored_row is None else "write operations"
            return CostEstimate(
                None,
                prices.currency,
                unknown_reason=f"no {sku_name} {missing} price for {region} in the price list",
            )
        for row, quantity, unit in ((stored_row, stored_gb, "GB"), (write_row, writes, "ops")):
            each = _per_unit(row)
            result.lines.append(
                CostLine(name, row.meter_name, quantity, unit, each, quantity * each)
            )
        result.assumptions += [
            f"{name}: StorageV2, {sku_name} in {region}",
            f"{name}: stores the uploaded files ({len(files)} files, {_size(stored_gb * GB)}) "
            f"for a month; {writes} write operations (one per blob and container), "
            "no reads, no egress",
        ]
    for kind in ("resource_group", "blob_container"):
        for resource in intent.of_type(kind):
            result.assumptions.append(
                f"{resource.type} {resource.name}: no charge of its own (its data and "
                "operations are billed on the storage account)"
            )
    result.monthly = sum(line.monthly for line in result.lines)
    if sources:
        oldest = min(sources, key=lambda s: s.fetched_at)
        how = "cached" if oldest.from_cache else "fetched"
        stale = ", older than a week: the API could not be reached" if oldest.stale else ""
        result.source = f"Azure Retail Prices API, {how} {oldest.fetched_on}{stale}"
        result.currency = oldest.currency
    else:
        result.source = "none needed"
    return result


def _size(size: float) -> str:
    """Bytes as a person reads them: 38 bytes, 4.2 MB, 1.5 GB."""
    for unit, scale in (("GB", GB), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} bytes"
