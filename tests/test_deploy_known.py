"""Deployment failures recognised without a model (pipelines/deploy/known.py), and the offline
checks of the artefacts a deploy keeps or writes (pipelines/deploy/artefacts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from council.infra.service_artefacts import render_artefacts, service_spec
from council.pipelines.deploy.artefacts import dockerfile_violations, workflow_violations
from council.pipelines.deploy.known import classify_failure, longer_timeout
from council.targets.base import HealthReport

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "profile-service"
EXITED = HealthReport(False, "http://127.0.0.1:1/health", 3, 0.4, error="exited", exit_code=1)


@pytest.mark.parametrize(
    ("log", "report", "known", "recovery"),
    [
        ("ModuleNotFoundError: No module named 'yaml'", EXITED, "missing_dependency",
         "add_dependency"),
        ("ModuleNotFoundError: No module named 'app.settings'", EXITED, "import_error", ""),
        ("ERROR:    [Errno 98] Address already in use", EXITED, "port_in_use", "retry"),
        ("KeyError: 'PROFILE_DB_URL'", EXITED, "missing_env", ""),
        ('  File "x.py", line 3\nSyntaxError: invalid syntax', EXITED, "syntax_error", ""),
        ('ERROR:    Error loading ASGI app. Attribute "api" not found in module "app.main".',
         EXITED, "import_error", ""),
        ("ERROR: Please run 'az login' to setup account.", EXITED, "auth_failed", ""),
        ("/bin/sh: 1: az: command not found", EXITED, "az_missing", ""),
        ("INFO: Waiting for application startup.",
         HealthReport(False, "u", 9, 60, error="not healthy after 60s: ConnectError"),
         "startup_timeout", "longer_health_timeout"),
    ],
)  # fmt: skip
def test_known_failures(log: str, report: HealthReport, known: str, recovery: str):
    found = classify_failure(report, log, project=EXAMPLE)
    assert found is not None and (found.id, found.recovery) == (known, recovery)
    assert found.evidence and found.evidence[0] in log + report.error


def test_a_service_listening_on_another_port_than_it_was_given():
    log = "INFO:     Uvicorn running on http://127.0.0.1:8765 (Press CTRL+C to quit)"
    waiting = HealthReport(False, "u", 9, 5, error="not healthy after 5s: ConnectError")
    found = classify_failure(waiting, log, project=EXAMPLE, port=40001)
    assert found is not None and (found.id, found.recovery) == ("wrong_port", "")
    assert found.cause.startswith("the service listens on port 8765, not on 40001")
    same = classify_failure(waiting, log.replace("8765", "40001"), project=EXAMPLE, port=40001)
    assert same is not None and same.id == "startup_timeout"


def test_what_only_a_model_can_read_is_left_to_it():
    answered_500 = HealthReport(False, "u", 9, 5, status_code=500, error="HTTP 500: boom")
    assert classify_failure(answered_500, "RuntimeError: db down", project=EXAMPLE) is None
    assert classify_failure(EXITED, "Traceback ... ValueError: bad", project=EXAMPLE) is None
    found = classify_failure(EXITED, "ModuleNotFoundError: No module named 'yaml'", project=EXAMPLE)
    assert found is not None and found.payload == {"module": "yaml", "distribution": "PyYAML"}
    assert (longer_timeout(60), longer_timeout(500)) == (120, 600)


def test_offline_checks_pass_the_templates_and_catch_what_hadolint_and_actionlint_would():
    files = render_artefacts(service_spec(EXAMPLE))
    assert dockerfile_violations(files["Dockerfile"]) == []
    assert workflow_violations(files[".github/workflows/deploy.yml"]) == []
    bad = "FROM python:latest\nRUN pip install x\nUSER root\n"
    assert dockerfile_violations(bad) == [
        "Dockerfile: base image not pinned: FROM python:latest",
        "Dockerfile: the image runs as root (no non-root USER last)",
        "Dockerfile: no HEALTHCHECK",
    ]
    workflow = files[".github/workflows/deploy.yml"].replace("needs: test", "needs: tests")
    workflow = workflow.replace("permissions:\n  contents: read\n", "permissions: write-all\n", 1)
    assert workflow_violations(workflow) == [
        ".github/workflows/deploy.yml: no least-privilege top-level permissions",
        ".github/workflows/deploy.yml: job deploy needs 'tests', which does not exist",
    ]
    assert workflow_violations("jobs: [")[0].startswith(".github/workflows/deploy.yml: not YAML")
