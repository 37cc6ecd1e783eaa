"""A fake GitHub REST API on 127.0.0.1: the pull-request endpoints council uses, for real.

Implements `POST /repos/{owner}/{repo}/pulls` and `GET /repos/{owner}/{repo}/pulls?head=&base=
&state=` with GitHub's status codes and error shapes: 401 for a missing or wrong token, 403 for a
read-only token, 404 for an unknown repository, 422 for a missing field, an unknown head branch
(when the repository is backed by a bare git repo) or an already-open PR. Every request is
recorded (method, path, query, headers, JSON body), unknown paths included, so tests can also
see what git sends over smart HTTP.

    with FakeGitHub(token="t0k", repos={"octo/demo": bare_repo_path}) as gh:
        create_pull_request(..., api_url=gh.url)
        assert gh.requests[-1].headers["Authorization"] == "Bearer t0k"
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakePull:
    number: int
    owner: str
    repo: str
    head: str  # "owner:branch"
    base: str
    title: str
    body: str
    state: str = "open"

    def as_json(self, api: str) -> dict[str, Any]:
        ref = self.head.split(":", 1)[1]
        html = f"https://github.test/{self.owner}/{self.repo}/pull/{self.number}"
        return {
            "number": self.number,
            "state": self.state,
            "title": self.title,
            "body": self.body,
            "html_url": html,
            "url": f"{api}/repos/{self.owner}/{self.repo}/pulls/{self.number}",
            "head": {"ref": ref, "label": self.head},
            "base": {"ref": self.base},
        }


@dataclass
class FakeGitHub:
    """Run with `with FakeGitHub(...) as gh:`; `gh.url` is the API base to pass as api_url."""

    token: str = "test-token"
    # "owner/repo" -> bare git repository that holds its branches (None: accept any head).
    repos: dict[str, Path | None] = field(default_factory=lambda: {"octo/demo": None})
    read_only_tokens: tuple[str, ...] = ()
    requests: list[RecordedRequest] = field(default_factory=list)
    pulls: list[FakePull] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- request handling -------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(
                RecordedRequest(method, parts.path, query, dict(handler.headers.items()), body)
            )
            status, payload = self._route(method, parts.path, query, handler, body)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], handler: Any, body: Any
    ) -> tuple[int, Any]:
        segments = path.strip("/").split("/")
        if len(segments) != 4 or segments[0] != "repos" or segments[3] != "pulls":
            return 404, {"message": "Not Found"}
        auth = handler.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").removeprefix("token ").strip()
        if token != self.token and token not in self.read_only_tokens:
            return 401, {"message": "Bad credentials", "status": "401"}
        owner, repo = segments[1], segments[2]
        if f"{owner}/{repo}" not in self.repos:
            return 404, {"message": "Not Found", "status": "404"}
        if method == "GET":
            return 200, self._list(owner, repo, query)
        if token in self.read_only_tokens:
            return 403, {"message": "Resource not accessible by personal access token"}
        return self._create(owner, repo, body if isinstance(body, dict) else {})

    def _list(self, owner: str, repo: str, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        found = [
            p
            for p in self.pulls
            if (p.owner, p.repo) == (owner, repo)
            and (state == "all" or p.state == state)
            and ("head" not in query or p.head == query["head"])
            and ("base" not in query or p.base == query["base"])
        ]
        return [p.as_json(self.url) for p in found]

    def _create(self, owner: str, repo: str, body: dict[str, Any]) -> tuple[int, Any]:
        missing = [f for f in ("title", "head", "base") if not body.get(f)]
        if missing:
            return 422, {
                "message": "Validation Failed",
                "errors": [
                    {"resource": "PullRequest", "field": f, "code": "missing_field"}
                    for f in missing
                ],
            }
        head = body["head"] if ":" in body["head"] else f"{owner}:{body['head']}"
        branch = head.split(":", 1)[1]
        if not self._branch_exists(owner, repo, branch):
            return 422, {
                "message": "Validation Failed",
                "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
            }
        for pull in self.pulls:
            if (pull.owner, pull.repo, pull.head, pull.base, pull.state) == (
                owner,
                repo,
                head,
                body["base"],
                "open",
            ):
                return 422, {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {head}.",
                        }
                    ],
                }
        number = len(self.pulls) + 1
        pull = FakePull(
            number, owner, repo, head, body["base"], body["title"], body.get("body", "")
        )
        self.pulls.append(pull)
        return 201, pull.as_json(self.url)

    def _branch_exists(self, owner: str, repo: str, branch: str) -> bool:
        bare = self.repos.get(f"{owner}/{repo}")
        if bare is None:
            return True
        done = subprocess.run(
            [
                "git",
                "--git-dir",
                str(bare),
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/heads/{branch}",
            ],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def api_requests(self) -> list[RecordedRequest]:
        """Requests to the REST API (not git's smart-HTTP traffic)."""
        return [r for r in self.requests if r.path.startswith("/repos/")]
