"""A fake GitHub Actions REST API on 127.0.0.1 (a test fixture), shaped like the real one:

- `POST /repos/{owner}/{repo}/actions/workflows/{file}/dispatches` {"ref"} -> 204, and a run of
  the branch's head commit (read from the bare repository pushes go to) is queued;
- `GET /repos/{owner}/{repo}/actions/runs?branch=&head_sha=` -> {"total_count", "workflow_runs"};
- `GET .../actions/runs/{id}` -> the run, which moves queued -> in_progress -> completed over
  successive reads; its conclusion is `judge(sha)`'s, decided from the pushed commit's files;
- `GET .../actions/runs/{id}/jobs` -> {"jobs": [...]} with the failed step;
- `GET .../actions/jobs/{id}/logs` -> 302 to the log's storage URL (another path here), as
  GitHub does; the storage answers the plain-text log without needing the token;
- `GET /app/health` -> 200: the deployed app's health endpoint.

A missing or wrong token is 401 with GitHub's error shape.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# sha -> ("success" | "failure", the failed job's log)
Judge = Callable[[str], tuple[str, str]]


@dataclass
class FakeRun:
    id: int
    branch: str
    head_sha: str
    created_at: float
    reads: int = 0
    conclusion: str | None = None
    log: str = ""

    @property
    def status(self) -> str:
        return ("queued", "in_progress")[min(self.reads, 1)] if self.reads < 2 else "completed"


@dataclass
class FakeGitHubActions:
    repository: str
    bare: Path
    judge: Judge
    token: str = "ghs-test-token"
    runs: list[FakeRun] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> FakeGitHubActions:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- HTTP -----------------------------------------------------------------------------

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any = None, **headers: str):
        data = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key.replace("_", "-"), value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        self.requests.append((method, url.path))
        if url.path == "/app/health":
            return self._send(h, 200, {"status": "ok"})
        if url.path.startswith("/log-storage/"):
            run = self._run(int(url.path.rsplit("/", 1)[1]) // 10)
            return self._send(h, 200, run.log.encode(), Content_Type="text/plain")
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(
                h,
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        prefix = f"/repos/{self.repository}/actions"
        if not url.path.startswith(prefix):
            return self._send(h, 404, {"message": "Not Found"})
        path = url.path[len(prefix) :]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            if method == "POST" and re.fullmatch(r"/workflows/[\w.-]+/dispatches", path):
                length = int(h.headers.get("Content-Length") or 0)
                ref = json.loads(h.rfile.read(length) or b"{}").get("ref", "")
                return self._dispatch(h, ref)
            if path == "/runs":
                runs = [
                    r
                    for r in self.runs
                    if r.branch == query.get("branch", r.branch)
                    and r.head_sha == query.get("head_sha", r.head_sha)
                ]
                body = {"total_count": len(runs), "workflow_runs": [self._json(r) for r in runs]}
                return self._send(h, 200, body)
            if match := re.fullmatch(r"/runs/(\d+)", path):
                run = self._run(int(match[1]))
                run.reads += 1
                if run.status == "completed" and run.conclusion is None:
                    run.conclusion, run.log = self.judge(run.head_sha)
                return self._send(h, 200, self._json(run))
            if match := re.fullmatch(r"/runs/(\d+)/jobs", path):
                return self._send(h, 200, self._jobs(self._run(int(match[1]))))
            if match := re.fullmatch(r"/jobs/(\d+)/logs", path):
                return self._send(h, 302, None, Location=f"{self.url}/log-storage/{match[1]}")
        return self._send(h, 404, {"message": "Not Found"})

    def _dispatch(self, h: BaseHTTPRequestHandler, ref: str) -> None:
        sha = subprocess.run(
            ["git", "--git-dir", str(self.bare), "rev-parse", "--verify", f"refs/heads/{ref}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if not sha:
            return self._send(h, 422, {"message": f"No ref found for: {ref}"})
        self.runs.append(FakeRun(len(self.runs) + 1001, ref, sha, time.time()))
        return self._send(h, 204)

    def _run(self, run_id: int) -> FakeRun:
        return next(r for r in self.runs if r.id == run_id)

    def _json(self, run: FakeRun) -> dict[str, Any]:
        created = datetime.fromtimestamp(run.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "id": run.id,
            "name": "Deploy",
            "head_branch": run.branch,
            "head_sha": run.head_sha,
            "event": "workflow_dispatch",
            "status": run.status,
            "conclusion": run.conclusion,
            "created_at": created,
            "html_url": f"https://github.com/{self.repository}/actions/runs/{run.id}",
            "path": ".github/workflows/deploy.yml",
        }

    def _jobs(self, run: FakeRun) -> dict[str, Any]:
        failed = run.conclusion == "failure"
        steps = [
            {"name": "Check out", "status": "completed", "conclusion": "success", "number": 1},
            {
                "name": "Run the tests",
                "status": "completed",
                "conclusion": "failure" if failed else "success",
                "number": 4,
            },
        ]
        job = {
            "id": run.id * 10,
            "name": "Test",
            "status": "completed",
            "conclusion": run.conclusion,
            "steps": steps,
        }
        return {"total_count": 1, "jobs": [job]}

    def file_at(self, sha: str, path: str) -> str:
        """A file of a pushed commit, as the workflow's checkout would see it."""
        return subprocess.run(
            ["git", "--git-dir", str(self.bare), "show", f"{sha}:{path}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
