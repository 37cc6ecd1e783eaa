"""The server's API against its own published OpenAPI schema (schemathesis): every operation,
with generated valid and invalid requests, answers as the schema says and never with a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fakes import serve as sv

# A schema-valid submission can still name a folder that is no git repository, or an empty
# feature for a run: only the server can tell, and it says so with 400. Cancel and resume
# answer 202 (accepted: a worker carries them out), cancel of a finished run 409.
CONFIG = """
[[operations]]
include-path = "/api/runs"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [200, 201, 202, 400, 401, 403, 404, 409, 429]
"""


def test_every_operation_answers_as_its_schema_says(served, tmp_path):
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    # The CLI: schemathesis' pytest plugin does not work with pytest 9 yet.
    cli = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [
            str(cli),
            "run",
            f"{served.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "10",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    try:
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    finally:
        _settle(served)


def _settle(served) -> None:
    """The session's server holds the other tests' runs, so schemathesis reaches real ids and
    may resume one: cancel what it put back in line, so no run outlives this test."""
    http = served.client()
    for run in http.get("/api/runs", params={"limit": 500}).json():
        if run["job_status"] in ("queued", "running"):
            http.post(f"/api/runs/{run['id']}/cancel")
    sv.wait_until(lambda: http.get("/api/health").json()["running"] == 0, 60)


def test_the_schema_publishes_every_operation(served):
    import httpx

    paths = httpx.get(f"{served.url}/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/cancel",
        "/api/runs/{run_id}/resume",
        "/api/runs/{run_id}/events",
        "/api/health",
    }
    assert (
        "text/event-stream"
        in paths["/api/runs/{run_id}/events"]["get"]["responses"]["200"]["content"]
    )
