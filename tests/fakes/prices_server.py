"""A local stand-in for the Azure Retail Prices API (https://prices.azure.com/api/retail/prices),
answering in its page format: `BillingCurrency`, `CustomerEntityId`, `CustomerEntityType`,
`Items`, `NextPageLink` (an absolute URL carrying the filter and `$skip`), `Count`.

It understands the API's query: `api-version`, `currencyCode='EUR'` and an OData `$filter` of
`field eq 'value'` clauses joined by `and`. Pages are small (PAGE_SIZE) so paging is exercised.
The rows are shaped like the real ones (field names, units, tiers, a reservation row, spot
rows); the prices are fixture values, not today's.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

PAGE_SIZE = 2
EUR_PER_USD = 0.92


def _row(meter: str, sku: str, price: float, unit: str, tier: float = 0.0, **extra: Any) -> dict:
    row = {
        "currencyCode": "USD",
        "tierMinimumUnits": tier,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": "westeurope",
        "location": "EU West",
        "effectiveStartDate": "2024-02-01T00:00:00Z",
        "meterId": f"m-{abs(hash((meter, sku, tier))) % 10**8:08d}",
        "meterName": meter,
        "productId": "DZH318Z0BNVX",
        "skuId": "DZH318Z0BNVX/002T",
        "productName": "General Block Blob v2",
        "skuName": sku,
        "serviceName": "Storage",
        "serviceId": "DZH317F1HKN0",
        "serviceFamily": "Storage",
        "unitOfMeasure": unit,
        "type": "Consumption",
        "isPrimaryMeterRegion": True,
        "armSkuName": "",
    }
    row.update(extra)
    return row


ROWS: list[dict[str, Any]] = [
    _row("Hot LRS Data Stored", "Hot LRS", 0.0196, "1 GB/Month"),
    _row("Hot LRS Data Stored", "Hot LRS", 0.0189, "1 GB/Month", tier=51200.0),
    _row("Hot LRS Data Stored", "Hot LRS", 0.0181, "1 GB/Month", tier=512000.0),
    _row("Hot LRS Write Operations", "Hot LRS", 0.0594, "10K"),
    _row("Hot Read Operations", "Hot LRS", 0.0047, "10K"),
    # A reservation of the same SKU: much cheaper per unit, never what a plain account pays.
    _row(
        "Hot LRS Data Stored",
        "Hot LRS",
        1.5,
        "100 TB/Month",
        type="Reservation",
        reservationTerm="1 Year",
    ),
    _row("Cool LRS Data Stored", "Cool LRS", 0.0108, "1 GB/Month"),
    _row("Cool LRS Write Operations", "Cool LRS", 0.1083, "10K"),
    _row("Hot GRS Data Stored", "Hot GRS", 0.0414, "1 GB/Month"),
    _row("Hot GRS Write Operations", "Hot GRS", 0.1188, "10K"),
    _row("Hot LRS Data Stored", "Hot LRS", 0.0184, "1 GB/Month", armRegionName="eastus"),
    _row("Hot LRS Write Operations", "Hot LRS", 0.055, "10K", armRegionName="eastus"),
    # Spot and dev/test rows of a VM size, to show they are filtered out.
    _row(
        "D2s v5 Spot",
        "D2s v5 Spot",
        0.0192,
        "1 Hour",
        productName="Virtual Machines Dsv5 Series",
        serviceName="Virtual Machines",
    ),
    _row(
        "D2s v5",
        "D2s v5",
        0.096,
        "1 Hour",
        productName="Virtual Machines Dsv5 Series",
        serviceName="Virtual Machines",
    ),
    _row(
        "D2s v5",
        "D2s v5",
        0.05,
        "1 Hour",
        productName="Virtual Machines Dsv5 Series",
        serviceName="Virtual Machines",
        type="DevTestConsumption",
    ),
]

_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def parse_filter(text: str) -> dict[str, str]:
    """`a eq 'x' and b eq 'y'` -> {"a": "x", "b": "y"}; anything else is a 400, as the API."""
    found: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if text else []:
        match = _CLAUSE.match(clause)
        if not match:
            raise ValueError(f"Invalid OData parameters supplied: {clause!r}")
        found[match.group(1)] = match.group(2).replace("''", "'")
    return found


class PricesServer:
    """Serves ROWS (or `rows`) on 127.0.0.1; `down()` makes every request fail with HTTP 503."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = list(ROWS if rows is None else rows)
        self.requests: list[str] = []
        self.failing = False
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/api/retail/prices"

    def __enter__(self) -> PricesServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._thread.join(timeout=5)
        self._httpd.server_close()

    def page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        wanted = parse_filter(query.get("$filter", [""])[0])
        currency = query.get("currencyCode", ["'USD'"])[0].strip("'").upper()
        skip = int(query.get("$skip", ["0"])[0])
        rows = [r for r in self.rows if all(str(r.get(k)) == v for k, v in wanted.items())]
        items = []
        for row in rows[skip : skip + PAGE_SIZE]:
            item = dict(row)
            if currency == "EUR":
                for key in ("retailPrice", "unitPrice"):
                    item[key] = round(item[key] * EUR_PER_USD, 6)
            item["currencyCode"] = currency
            items.append(item)
        following = None
        if skip + PAGE_SIZE < len(rows):
            params = {key: values[0] for key, values in query.items() if key != "$skip"}
            params["$skip"] = str(skip + PAGE_SIZE)
            following = f"{self.url}?{urlencode(params)}"
        return {
            "BillingCurrency": currency,
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": items,
            "NextPageLink": following,
            "Count": len(items),
        }


def _handler(server: PricesServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            server.requests.append(self.path)
            parts = urlsplit(self.path)
            if parts.path != "/api/retail/prices":
                return self._send(404, {"Error": {"Message": "not found"}})
            if server.failing:
                return self._send(503, {"Error": {"Message": "Service Unavailable"}})
            try:
                body = server.page(parse_qs(parts.query))
            except ValueError as exc:
                return self._send(400, {"Error": {"Code": "BadRequest", "Message": str(exc)}})
            self._send(200, body)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
