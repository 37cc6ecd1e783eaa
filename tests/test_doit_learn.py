"""Documentation look-up for cloud failures: the Microsoft Learn search API's answer format,
served on 127.0.0.1; cached with a date; nothing (and why) without network."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from council.cloud.learn import LearnSearch


class _Search(BaseHTTPRequestHandler):
    asked: list[dict] = []

    def log_message(self, *_args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        query = parse_qs(urlsplit(self.path).query)
        _Search.asked.append(query)
        body = {
            "results": [
                {
                    "title": "Resolve errors for storage account names",
                    "url": "https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-storage-account-name",
                    "description": "StorageAccountAlreadyTaken: names are globally unique.",
                },
                {"title": "not a doc", "url": "javascript:alert(1)", "description": ""},
            ],
            "count": 2,
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_search_parses_caches_and_says_when_it_cannot(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Search)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/search"
        search = LearnSearch(url, cache_dir=tmp_path)
        found = search.search("StorageAccountAlreadyTaken")
        assert found.source == "fetched"
        assert [d.title for d in found.docs] == ["Resolve errors for storage account names"]
        assert _Search.asked[0]["search"] == ["StorageAccountAlreadyTaken"]
        again = search.search("StorageAccountAlreadyTaken")
        assert again.source.startswith("cached ") and len(_Search.asked) == 1
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/api/search"
    nothing = LearnSearch(closed, cache_dir=tmp_path / "empty", timeout_s=2).search("x")
    assert nothing.docs == [] and nothing.source.startswith("no documentation: ")
