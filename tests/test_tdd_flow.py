"""`council run` end to end: real git, real uv, real pytest, real LiteLLM, scripted model server."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from council.config import parse_config
from council.events import Emitter
from council.pipelines.run import TddFlow
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
def project(tmp_path, env_cache) -> Path:
    return cs.make_repo(tmp_path / "profile-service")


def run_council(repo: Path, server, events: list | None = None, **limits):
    config = parse_config(cs.council_yaml(server, **limits))
    store = Store.for_repo(repo)
    emit = Emitter()
    if events is not None:
        emit.subscribe(events.append)
    pipeline = TddFlow.start(repo=repo, feature=cs.FEATURE, config=config, store=store, emit=emit)
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


@pytest.mark.slow
def test_first_code_fails_then_artisan_fixes_it(project, model_server):
    cs.script_happy_path(model_server, build=cs.BUILD_WRONG_REPLY)
    model_server.script("artisan", cs.REFINE_REPLY)
    events: list = []
    outcome, _ = run_council(project, model_server, events)

    assert outcome.status == "green", outcome.reason
    phases = [(e.phase, e.failed) for e in events if e.kind == "tests_reported"]
    # The loop ran the selected tests; the full suite ran once, as the final gate (before test
    # selection it ran at review time too, without an event of its own).
    assert [p for p, _ in phases] == [
        "baseline",
        "red-1",
        "iteration-1",
        "iteration-2",
        "full-suite",
    ]
    assert phases[2][1] == 2 and phases[3][1] == 0
    # Artisan saw the real failing output of iteration 1.
    prompt = model_server.requests_for("artisan")[0]["messages"][-1]["content"]
    assert "test_profile_returns_the_current_user" in prompt and "2 failed" in prompt
    main_py = _git(project, "show", f"{outcome.branch}:app/main.py")
    assert '@app.get("/api/v1/users/me/profile"' in main_py


@pytest.mark.slow
def test_builder_editing_a_frozen_test_is_refused_and_run_ends_honestly(project, model_server):
    cs.script_happy_path(model_server, build=cs.CHEAT_REPLY)
    model_server.script("builder", cs.BUILD_REPLY)  # the answer after being told why
    events: list = []
    outcome, _ = run_council(project, model_server, events)

    assert outcome.status == "green", outcome.reason
    refused = [e for e in events if e.kind == "edit_refused"]
    assert [e.path for e in refused] == ["tests/test_profile.py"]
    assert "frozen" in refused[0].reason
    # The model was told why its edit was refused.
    second = model_server.requests_for("builder")[1]["messages"][-1]["content"]
    assert "tests/test_profile.py" in second and "frozen" in second
    shown = _git(project, "show", f"{outcome.branch}:tests/test_profile.py")
    assert "assert True" not in shown and "linus@example.com" in shown


@pytest.mark.slow
def test_plan_in_broken_json_is_repaired_once(project, model_server):
    broken = cs.PLAN_REPLY.replace('"tasks": [', '"tasks": [[', 1)
    model_server.script("pacer", broken, cs.PLAN_REPLY)
    model_server.script("maven", cs.CONTEXT_REPLY)
    model_server.script("guardian", cs.TESTS_REPLY, cs.REVIEW_REPLY)
    model_server.script("builder", cs.BUILD_REPLY)
    outcome, _ = run_council(project, model_server)

    assert outcome.status == "green", outcome.reason
    pacer = model_server.requests_for("pacer")
    assert len(pacer) == 2
    repair = "\n".join(m["content"] for m in pacer[1]["messages"])
    assert "tasks" in repair  # the re-ask names what was wrong


@pytest.mark.slow
def test_plan_broken_twice_is_a_clear_error(project, model_server):
    model_server.script("pacer", "I think we should add an endpoint.", '{"summary": 1}')
    events: list = []
    outcome, store = run_council(project, model_server, events)

    assert outcome.status == "error"
    assert outcome.exit_code == 1
    assert "Plan" in outcome.reason
    assert store.get_run(outcome.run_id).status == "error"
    assert not model_server.requests_for("guardian")  # nothing ran after the failed plan


@pytest.mark.slow
def test_high_severity_review_goes_back_to_artisan_once(project, model_server):
    high = cs.REVIEW_REPLY.replace('"low"', '"high"').replace('"approve"', '"request_changes"')
    docstring_fix = '''Adding the docstring.

app/main.py
```python
<<<<<<< SEARCH
def get_my_profile(user: Annotated[User, Depends(current_user)]) -> Profile:
=======
def get_my_profile(user: Annotated[User, Depends(current_user)]) -> Profile:
    """The signed-in user's public profile."""
>>>>>>> REPLACE
```
'''
    model_server.script("pacer", cs.PLAN_REPLY)
    model_server.script("maven", cs.CONTEXT_REPLY)
    model_server.script("guardian", cs.TESTS_REPLY, high, cs.REVIEW_REPLY)
    model_server.script("builder", cs.BUILD_REPLY)
    model_server.script("artisan", docstring_fix)
    outcome, _ = run_council(project, model_server)

    assert outcome.status == "green", outcome.reason
    assert len(model_server.requests_for("artisan")) == 1
    findings = model_server.requests_for("artisan")[0]["messages"][-1]["content"]
    assert "docstring" in findings and "[high]" in findings
    main_py = _git(project, "show", f"{outcome.branch}:app/main.py")
    assert "The signed-in user's public profile." in main_py


@pytest.mark.slow
def test_resume_after_a_kill_between_edits_and_test_run_starts_from_clean_files(
    project, model_server
):
    """Killed after Builder's edits were written but before the iteration was saved: the
    resumed iteration starts from the tests commit again, so edits are not applied twice."""
    cs.script_happy_path(model_server)

    def kill_after_first_edit(event):
        if event.kind == "edit_applied" and event.step == "iteration-1":
            raise KeyboardInterrupt  # stands in for SIGKILL at the worst moment

    config = parse_config(cs.council_yaml(model_server))
    store = Store.for_repo(project)
    emit = Emitter()
    emit.subscribe(kill_after_first_edit)
    pipeline = TddFlow.start(
        repo=project, feature=cs.FEATURE, config=config, store=store, emit=emit
    )
    with pytest.raises(KeyboardInterrupt):
        pipeline.execute()
    run_id = pipeline.run_id
    assert store.get_run(run_id).status == "interrupted"
    assert "iteration-1" not in store.completed_steps(run_id)

    model_server.script("builder", cs.BUILD_REPLY)
    model_server.script("guardian", cs.REVIEW_REPLY)
    resumed = TddFlow.resume(run_id=run_id, config=config, store=store, emit=Emitter())
    outcome = resumed.execute()

    assert outcome.status == "green", outcome.reason
    assert len(model_server.requests_for("builder")) == 2  # no re-ask: the edits applied cleanly
    main_py = _git(project, "show", f"{outcome.branch}:app/main.py")
    models_py = _git(project, "show", f"{outcome.branch}:app/models.py")
    assert main_py.count("def get_my_profile") == 1
    assert models_py.count("class Profile") == 1
