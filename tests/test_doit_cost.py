"""Cost estimates from the Azure Retail Prices API's page format (a local server shaped like it),
with paging, currency, filters, the on-disk cache and its date, and "unknown" instead of a guess."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from council.cloud.cost import estimate
from council.cloud.intent import CloudIntent, CloudResource
from council.cloud.prices import PricesUnavailable, RetailPrices, odata_filter
from tests.fakes.prices_server import PricesServer

HOT_LRS = odata_filter(
    serviceName="Storage",
    armRegionName="westeurope",
    productName="General Block Blob v2",
    skuName="Hot LRS",
)


@pytest.fixture
def prices_server():
    with PricesServer() as server:
        yield server


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/retail/prices"


def test_pages_are_followed_and_reservations_dropped(prices_server, tmp_path: Path) -> None:
    listing = RetailPrices(prices_server.url, cache_dir=tmp_path).query(HOT_LRS)
    # Six rows match, two per page: three requests, following NextPageLink.
    assert len(prices_server.requests) == 3
    assert "%24skip=2" in prices_server.requests[1] or "$skip=2" in prices_server.requests[1]
    meters = sorted((r.meter_name, r.tier_minimum_units) for r in listing.rows)
    assert meters == [
        ("Hot LRS Data Stored", 0.0),
        ("Hot LRS Data Stored", 51200.0),
        ("Hot LRS Data Stored", 512000.0),
        ("Hot LRS Write Operations", 0.0),
        ("Hot Read Operations", 0.0),
    ]
    assert all(r.region == "westeurope" and r.currency == "USD" for r in listing.rows)
    assert not listing.from_cache


def test_spot_and_dev_test_rows_are_not_prices(prices_server, tmp_path: Path) -> None:
    vm = odata_filter(serviceName="Virtual Machines", armRegionName="westeurope")
    listing = RetailPrices(prices_server.url, cache_dir=tmp_path).query(vm)
    assert [(r.meter_name, r.retail_price) for r in listing.rows] == [("D2s v5", 0.096)]


def test_the_currency_asked_is_the_currency_answered(prices_server, tmp_path: Path) -> None:
    listing = RetailPrices(prices_server.url, currency="eur", cache_dir=tmp_path).query(HOT_LRS)
    assert listing.currency == "EUR"
    assert {r.currency for r in listing.rows} == {"EUR"}
    assert "currencyCode=%27EUR%27" in prices_server.requests[0]


def test_answers_are_cached_with_their_date_and_reused(prices_server, tmp_path: Path) -> None:
    prices = RetailPrices(prices_server.url, cache_dir=tmp_path)
    first = prices.query(HOT_LRS)
    asked = len(prices_server.requests)
    second = prices.query(HOT_LRS)
    assert len(prices_server.requests) == asked  # no second fetch
    assert second.from_cache and second.rows == first.rows
    (cached,) = tmp_path.glob("*.json")
    doc = json.loads(cached.read_text())
    assert doc["query"] == HOT_LRS and doc["fetched_on"].startswith(first.fetched_on)


def test_an_old_cache_is_used_when_the_api_is_down_and_says_so(
    prices_server, tmp_path: Path
) -> None:
    RetailPrices(prices_server.url, cache_dir=tmp_path).query(HOT_LRS)
    prices_server.failing = True
    stale = RetailPrices(prices_server.url, cache_dir=tmp_path, ttl_s=0).query(HOT_LRS)
    assert stale.from_cache and stale.stale and stale.rows


def test_no_network_and_no_cache_is_unavailable_not_invented(tmp_path: Path) -> None:
    with pytest.raises(PricesUnavailable, match="cannot be reached.*no prices are cached"):
        RetailPrices(_closed_port_url(), cache_dir=tmp_path, timeout_s=2).query(HOT_LRS)


def _storage_intent(sku: str = "Standard_LRS") -> CloudIntent:
    return CloudIntent(
        operation="create",
        summary="storage account with a private container, upload the reports",
        region="westeurope",
        resource_group="rg1",
        confidence=0.95,
        resources=[
            CloudResource(type="storage_account", name="reportsacct", parameters={"sku": sku}),
            CloudResource(type="blob_container", name="reports"),
            CloudResource(
                type="blob_upload", parameters={"container": "reports", "files": ["out/*.csv"]}
            ),
        ],
    )


def _reports(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_bytes(b"x" * 1000)
    (out / "b.csv").write_bytes(b"y" * 3000)
    (out / "notes.txt").write_text("not uploaded")
    return tmp_path


def test_estimate_prices_storage_and_writes_with_its_assumptions(
    prices_server, tmp_path: Path
) -> None:
    base = _reports(tmp_path)
    prices = RetailPrices(prices_server.url, cache_dir=tmp_path / "cache")
    cost = estimate(_storage_intent(), prices, base)
    gb = 4000 / 1024**3
    writes = 3  # two blobs and one container
    assert cost.known
    assert cost.monthly == pytest.approx(gb * 0.0196 + writes * 0.0594 / 10_000)
    assert cost.hourly == pytest.approx(cost.monthly / 730)
    assert [line.meter for line in cost.lines] == [
        "Hot LRS Data Stored",
        "Hot LRS Write Operations",
    ]
    assert any("2 files" in a and "no egress" in a for a in cost.assumptions)
    # A fraction of a cent keeps its digits (it is not "0.0000"), the data its size in bytes.
    assert any("(2 files, 3.9 KB)" in a for a in cost.assumptions), cost.assumptions
    assert cost.describe().startswith(f"USD {cost.monthly:.4g}/month ({cost.hourly:.4g}/hour)")
    assert "Azure Retail Prices API, fetched" in cost.source
    grs = estimate(_storage_intent("Standard_GRS"), prices, base)
    assert grs.monthly == pytest.approx(gb * 0.0414 + writes * 0.1188 / 10_000)


def test_estimate_without_prices_says_cost_unknown(tmp_path: Path) -> None:
    prices = RetailPrices(_closed_port_url(), cache_dir=tmp_path / "cache", timeout_s=2)
    cost = estimate(_storage_intent(), prices, _reports(tmp_path))
    assert not cost.known and cost.monthly is None and cost.hourly is None
    assert cost.describe().startswith("cost unknown: the prices API at")


def test_a_region_without_the_meter_is_unknown(prices_server, tmp_path: Path) -> None:
    intent = _storage_intent()
    intent.region = "norwayeast"
    cost = estimate(intent, RetailPrices(prices_server.url, cache_dir=tmp_path), tmp_path)
    assert not cost.known
    assert "no Hot LRS data stored price for norwayeast" in cost.unknown_reason
