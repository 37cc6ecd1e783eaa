"""`council run` end to end: real git, real uv, real pytest, real LiteLLM, scripted model server."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from council.config import parse_config
from council.events import Emitter
from council.pipelines.tdd import TddPipeline
from council.store import Store
from tests.fakes import council_script as cs


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def checkout_fingerprint(repo: Path) -> dict[str, str]:
    """Every byte a user could see in their checkout: files, index, HEAD, status, stash."""
    fp = {}
    for f in sorted(repo.rglob("*")):
        rel = f.relative_to(repo).as_posix()
        if f.is_file() and not rel.startswith((".git/", ".council/")):
            fp[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    fp[".git/index"] = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    fp["HEAD"] = _git(repo, "rev-parse", "HEAD")
    fp["branch"] = _git(repo, "symbolic-ref", "HEAD")
    fp["status"] = _git(repo, "status", "--porcelain")
    fp["stash"] = _git(repo, "stash", "list")
    return fp


@pytest.fixture
def env_cache(tmp_path_factory, monkeypatch) -> Path:
    # Test environments are cached across tests (as across runs): built once per session.
    root = tmp_path_factory.getbasetemp() / "council-cache"
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(root))
    return root


@pytest.fixture
def project(tmp_path, env_cache) -> Path:
    return cs.make_repo(tmp_path / "profile-service")


def run_council(repo: Path, server, events: list | None = None, **limits):
    config = parse_config(cs.council_yaml(server, **limits))
    store = Store.for_repo(repo)
    emit = Emitter()
    if events is not None:
        emit.subscribe(events.append)
    pipeline = TddPipeline.start(
        repo=repo, feature=cs.FEATURE, config=config, store=store, emit=emit
    )
    return pipeline.execute(), store


@pytest.mark.slow
def test_happy_path_red_then_green_committed_checkout_untouched(project, model_server):
    cs.script_happy_path(model_server)
    # A user's uncommitted work must survive untouched.
    (project / "NOTES.txt").write_text("my local notes\n")
    before = checkout_fingerprint(project)

    events: list = []
    outcome, store = run_council(project, model_server, events)

    assert outcome.status == "green", outcome.reason
    assert outcome.exit_code == 0
    assert checkout_fingerprint(project) == before
    assert model_server.pending() == 0

    tests = [e for e in events if e.kind == "tests_reported"]
    assert tests[1].phase == "red-1" and tests[1].passed == 0 and tests[1].failed == 2
    assert tests[0].phase == "baseline" and tests[0].failed == 0
    existing = tests[0].passed
    assert tests[-1].passed == existing + 2 and tests[-1].failed == 0

    log = _git(project, "log", "--format=%s", f"main..{outcome.branch}").splitlines()
    assert log == [
        "feat(profile): add GET /api/v1/users/me/profile for the current user",
        "test(profile): add GET /api/v1/users/me/profile for the current user",
    ]
    body = _git(project, "log", "-1", "--format=%b", outcome.branch)
    assert "Review (approve)" in body and f"{existing + 2} passed" in body
    shown = _git(project, "show", f"{outcome.branch}:tests/test_profile.py")
    assert "test_profile_needs_a_known_user" in shown

    run = store.get_run(outcome.run_id)
    assert run.status == "green"
    summary = store.summary(outcome.run_id)
    assert summary.model_calls == 5
    assert summary.cost_usd > 0
