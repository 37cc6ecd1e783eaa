"""A client of the server's API for `council submit`: submit, and follow a run's events.

Following survives a dropped connection: it reconnects with Last-Event-ID, so each event is
shown once, in order. The key comes from $COUNCIL_API_KEY.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx

from council.errors import UsageError

RECONNECTS = 20


class Client:
    def __init__(self, base_url: str, key: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        key = key or os.environ.get("COUNCIL_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise UsageError(
                f"no council server answers at {self.base_url}: {exc}",
                hint="start one with `council serve`, or give --server URL",
            ) from None
        if response.status_code >= 400:
            raise UsageError(f"the server refused: {response.status_code}: {_detail(response)}")
        return response

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/api/runs", json=body).json()

    def run(self, run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/runs/{run_id}").json()

    def events(self, run_id: str, after: int = 0) -> Iterator[tuple[int | None, str, dict]]:
        """(seq, kind, data) of the run's events to its end (seq None for `end`), reconnecting
        after a dropped connection from the last event seen."""
        last, failures = after, 0
        while True:
            try:
                with self._http.stream(
                    "GET",
                    f"/api/runs/{run_id}/events",
                    headers={"Last-Event-ID": str(last)},
                    timeout=httpx.Timeout(30.0, read=None),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise UsageError(
                            f"the server refused: {response.status_code}: {_detail(response)}"
                        )
                    for seq, kind, data in parse_sse(response.iter_lines()):
                        if seq is not None:
                            last = seq
                        failures = 0
                        yield seq, kind, data
                        if kind == "end":
                            return
            except httpx.TransportError:
                failures += 1
                if failures > RECONNECTS:
                    raise UsageError(f"lost the server at {self.base_url}") from None
                time.sleep(min(5.0, 0.2 * failures))

    def follow(self, run_id: str, *, as_json: bool = False) -> str:
        """Print the run's events as they come; its final status."""
        from council.events import event_from_json

        sink = None
        if not as_json:
            from rich.console import Console

            from council.render import LiveRenderer

            sink = LiveRenderer(Console(highlight=False, soft_wrap=True))
        status = "unknown"
        for _seq, kind, data in self.events(run_id):
            if kind == "end":
                status = str(data.get("status"))
                break
            if as_json:
                print(json.dumps(data), flush=True)
            else:
                try:
                    sink(event_from_json(data))
                except ValueError:
                    print(f"{kind}: {data}")  # an event kind newer than this client
        if not as_json:
            print(f"run {run_id}: {status}")
        return status


def _detail(response: httpx.Response) -> str:
    """The reason of a refusal; a validation error (422) as `field: message` per field."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text.strip()[:500]
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if not isinstance(error, dict):
                continue
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg")))
        return "; ".join(parts) or str(detail)
    return str(detail)


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[int | None, str, dict]]:
    """Server-Sent Events from text lines: (id, event, JSON data) per event."""
    seq: int | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield seq, kind, json.loads("\n".join(data))
            seq, kind, data = None, "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id" and value.isdigit():
                seq = int(value)
            elif field == "event":
                kind = value
            elif field == "data":
                data.append(value)
