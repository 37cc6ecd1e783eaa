"""A fake Hugging Face hub on 127.0.0.1: `resolve` URLs that redirect to a CDN path, as the real
hub does, with the LFS checksum and size on the redirect (`X-Linked-Etag`, `X-Linked-Size`) and
HTTP Range support on the file itself.

    with FakeHub({"Qwen/X-GGUF/resolve/main/x.gguf": data}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)

`cut_after` makes the next GET stop after that many bytes (a dropped connection), `bad_etag`
announces a wrong checksum; every request is recorded with its Range header.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class HubRequest:
    method: str
    path: str
    range: str | None


@dataclass
class FakeHub:
    files: dict[str, bytes]
    cut_after: int | None = None
    bad_etag: bool = False
    requests: list[HubRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _record(self) -> str:
                hub.requests.append(HubRequest(self.command, self.path, self.headers.get("Range")))
                return self.path.lstrip("/")

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                path = self._record()
                if path.startswith("cdn/"):
                    self._file(path.removeprefix("cdn/"), body=False)
                    return
                data = hub.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                digest = hashlib.sha256(data).hexdigest()
                if hub.bad_etag:
                    digest = "0" * 64
                self.send_response(302)
                self.send_header("Location", f"/cdn/{path}")
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                path = self._record()
                if not path.startswith("cdn/"):
                    if path in hub.files:
                        self.send_response(302)
                        self.send_header("Location", f"/cdn/{path}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    return
                self._file(path.removeprefix("cdn/"), body=True)

            def _file(self, path: str, *, body: bool) -> None:
                data = hub.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                wanted = self.headers.get("Range")
                if wanted and wanted.startswith("bytes="):
                    start = int(wanted.removeprefix("bytes=").split("-")[0] or 0)
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                chunk = data[start:]
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if not body:
                    return
                if hub.cut_after is not None:
                    cut, hub.cut_after = hub.cut_after, None
                    self.wfile.write(chunk[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
