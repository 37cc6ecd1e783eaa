"""`council deploy` on a project with domain code but no HTTP service: the service layer is
written through the TDD engine (Guardian's HTTP tests red first, Builder's FastAPI layer makes
them green, the tests frozen, Guardian's review), and the deploy goes on from that run's branch
to a healthy release that answers over HTTP. Models: the scripted server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from council.cli_deploy import local_target
from council.store import Store
from tests.deploy_fixtures import deploy_cli
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer
from tests.test_target_local import _commit, _git

PYPROJECT = """[project]
name = "profile-domain"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["fastapi==0.165.0", "httpx2==2.16.2"]

[project.optional-dependencies]
dev = ["pytest==9.2.0"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""
CORE = '''"""Profiles: the domain code, no web framework."""

PROFILES = {1: {"username": "ada", "full_name": "Ada Lovelace"}}


def get_profile(user_id: int) -> dict[str, str] | None:
    return PROFILES.get(user_id)
'''
CORE_TEST = """from profiles.core import get_profile


def test_get_profile():
    assert get_profile(1)["username"] == "ada"
    assert get_profile(2) is None
"""
PLAN = {
    "summary": "an HTTP service layer over profiles.core",
    "scope": "service",
    "tasks": [
        {
            "id": "T1",
            "language": "python",
            "title": "FastAPI service layer",
            "description": "Expose get_profile over HTTP, with a health check.",
            "acceptance_criteria": [
                "GET /health answers 200 {'status': 'ok'}",
                "GET /profiles/{id} answers the profile, 404 when there is none",
            ],
            "files": ["profiles/service.py"],
        }
    ],
    "test_files": ["tests/test_service.py"],
    "contract": '{"username": str, "full_name": str}',
}
TESTS = '''The service does not exist yet, so these fail.

tests/test_service.py
```python
"""The HTTP service layer over profiles.core."""

from fastapi.testclient import TestClient

from profiles.service import app

client = TestClient(app)


def test_health():
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_a_profile_over_http():
    response = client.get("/profiles/1")
    assert response.status_code == 200
    assert response.json() == {"username": "ada", "full_name": "Ada Lovelace"}


def test_a_missing_profile_is_404():
    assert client.get("/profiles/2").status_code == 404
```
'''
BUILD = '''A thin layer: the routes call the domain function and map "none" to 404.

profiles/service.py
```python
"""HTTP service layer over profiles.core."""

from fastapi import FastAPI, HTTPException

from profiles.core import get_profile

app = FastAPI(title="Profiles")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/profiles/{user_id}")
def read_profile(user_id: int) -> dict[str, str]:
    profile = get_profile(user_id)
    if profile is None:
        raise HTTPException(status_code=404, detail=f"profile {user_id} not found")
    return profile
```
'''
REVIEW = json.dumps(
    {"verdict": "approve", "summary": "Thin layer, tests cover it.", "comments": []}
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, server: ScriptedModelServer) -> Iterator[Path]:
    repo = tmp_path_factory.mktemp("domain") / "profiles-domain"
    (repo / "profiles").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "profiles" / "__init__.py").write_text("")
    (repo / "profiles" / "core.py").write_text(CORE)
    (repo / "tests" / "test_core.py").write_text(CORE_TEST)
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "profiles domain")
    (repo / "council.yaml").write_text(cs.council_yaml(server))
    yield repo
    local_target(repo).stop()


def test_domain_code_gets_a_service_layer_by_tdd_and_is_deployed(
    repo: Path, server: ScriptedModelServer, cache: Path
):
    server.script("pacer", "Here is the plan.\n\n```json\n" + json.dumps(PLAN) + "\n```\n")
    server.script("maven", json.dumps({"files": ["profiles/core.py"], "notes": "pure functions"}))
    server.script("guardian", TESTS, REVIEW)
    server.script("builder", BUILD)
    code, events, err = deploy_cli(repo, cache)
    assert code == 0, err[-3000:]
    notes = [e["message"] for e in events if e.get("kind") == "notice"]
    phases = [n.split(":")[1].strip() for n in notes if n.startswith("service layer: tests ")]
    assert phases == ["tests baseline", "tests red-1", "tests iteration-1", "tests full-suite"]
    assert "service layer: tests red-1: 0 passed, 0 failed, 1 errors" in notes  # no service yet
    assert "service layer: green: tests green, reviewed and committed" in notes
    outcome = events[-1]["outcome"]
    assert outcome["status"] == "green"
    assert httpx.get(outcome["url"] + "/health").json() == {"status": "ok"}
    assert httpx.get(outcome["url"] + "/profiles/1").json()["username"] == "ada"
    assert httpx.get(outcome["url"] + "/profiles/2").status_code == 404

    with Store.for_repo(repo) as store:
        runs = {r.kind: r for r in store.list_runs()}
        service_run = store.completed_steps(outcome["run_id"])["generate_service"]
    assert (runs["run"].status, runs["deploy"].status) == ("green", "green")
    assert service_run["run_id"] == runs["run"].id
    # The deploy branch holds the service layer and its frozen tests; main is untouched.
    branch = outcome["branch"]
    files = _git(repo, "ls-tree", "-r", "--name-only", branch).split()
    assert {"profiles/service.py", "tests/test_service.py", "Dockerfile"} <= set(files)
    assert _git(repo, "ls-tree", "-r", "--name-only", "main").split() == [
        "profiles/__init__.py",
        "profiles/core.py",
        "pyproject.toml",
        "tests/test_core.py",
    ]
