"""GitHub Actions through the REST API: dispatch a workflow on a branch, find the run it
started, wait for it (poll interval and time limit from deploy.yaml), and read the logs of its
failed jobs. The token is the one `council run --pr` uses (GITHUB_TOKEN or GH_TOKEN); it is sent
only to the API's host (httpx drops it on redirects to the log storage) and never logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from council.targets.base import TargetError

API_VERSION = "2022-11-28"
LOG_CHARS = 20_000  # of each failed job's log, from its end


@dataclass(frozen=True)
class WorkflowRun:
    id: int
    status: str  # queued | in_progress | completed (and GitHub's other waiting states)
    conclusion: str | None  # success | failure | cancelled | timed_out | ... once completed
    head_sha: str
    url: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> WorkflowRun:
        return cls(
            id=int(data["id"]),
            status=str(data.get("status") or ""),
            conclusion=data.get("conclusion"),
            head_sha=str(data.get("head_sha") or ""),
            url=str(data.get("html_url") or ""),
        )


@dataclass
class FailedJob:
    name: str
    steps: list[str] = field(default_factory=list)  # the failed steps' names
    log: str = ""


class GitHubActions:
    def __init__(self, api_url: str, repository: str, token: str, *, timeout_s: float = 30):
        self.repository = repository
        self._client = httpx.Client(
            base_url=f"{api_url.rstrip('/')}/repos/{repository}",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            timeout=timeout_s,
            follow_redirects=True,  # job logs answer 302 to their storage
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            response = self._client.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise TargetError(f"GitHub API {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            code = response.status_code
            raise TargetError(f"GitHub API {path} answered {code}: {_message(response)}")
        return response

    def dispatch(self, workflow: str, ref: str) -> None:
        """Start `workflow` (its file name) on branch `ref`."""
        path = f"/actions/workflows/{workflow}/dispatches"
        try:
            response = self._client.post(path, json={"ref": ref})
        except httpx.HTTPError as exc:
            raise TargetError(f"GitHub API {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 204:
            raise TargetError(
                f"dispatching {workflow} on {ref} answered {response.status_code}: "
                f"{_message(response)}",
                hint="The workflow needs `on: workflow_dispatch` and the token Actions: write.",
            )

    def find_run(self, branch: str, head_sha: str, *, after: float = 0.0) -> WorkflowRun | None:
        """The newest run of `branch` at `head_sha` (created at or after `after`, epoch s)."""
        data = self._get("/actions/runs", branch=branch, head_sha=head_sha, per_page=20).json()
        runs = [r for r in data.get("workflow_runs") or [] if r.get("head_sha") == head_sha]
        runs = [r for r in runs if _epoch(r.get("created_at")) >= after - 5]  # clock skew
        runs.sort(key=lambda r: (_epoch(r.get("created_at")), int(r["id"])), reverse=True)
        return WorkflowRun.from_api(runs[0]) if runs else None

    def run(self, run_id: int) -> WorkflowRun:
        return WorkflowRun.from_api(self._get(f"/actions/runs/{run_id}").json())

    def wait(
        self,
        branch: str,
        head_sha: str,
        *,
        after: float,
        poll_s: float,
        max_wait_s: float,
        seen: Callable[[WorkflowRun], None] = lambda _run: None,
    ) -> WorkflowRun:
        """Poll until the run of `head_sha` completes; `seen` hears every change of state.
        TargetError when no run appears or it does not finish within `max_wait_s`."""
        deadline = time.monotonic() + max_wait_s
        last: WorkflowRun | None = None
        while True:
            current = self.run(last.id) if last else self.find_run(branch, head_sha, after=after)
            state = (current.status, current.conclusion) if current else None
            if current is not None and (last is None or state != (last.status, last.conclusion)):
                seen(current)
            last = current or last
            if last is not None and last.status == "completed":
                return last
            if time.monotonic() + poll_s > deadline:
                what = f"run {last.id} is still {last.status}" if last else "no run started"
                raise TargetError(f"the workflow did not finish in {max_wait_s / 60:g} min: {what}")
            time.sleep(poll_s)

    def failed_jobs(self, run_id: int) -> list[FailedJob]:
        data = self._get(f"/actions/runs/{run_id}/jobs", per_page=50).json()
        out = []
        for job in data.get("jobs") or []:
            if job.get("conclusion") not in ("failure", "timed_out", "cancelled"):
                continue
            failed = [s for s in job.get("steps") or [] if s.get("conclusion") == "failure"]
            steps = [str(s.get("name", "")) for s in failed]
            try:
                log = self._get(f"/actions/jobs/{job['id']}/logs").text[-LOG_CHARS:]
            except TargetError as exc:
                log = f"(log not available: {exc.message})"
            out.append(FailedJob(str(job.get("name", "")), steps, log))
        return out


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message", data))[:200] if isinstance(data, dict) else str(data)[:200]


def _epoch(stamp: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
