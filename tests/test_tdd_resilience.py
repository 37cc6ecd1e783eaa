"""`council run` when things go wrong: a killed process, a tight budget, hostile generated code,
a pull request to publish, and tests that prove nothing. End to end on a git copy of
examples/profile-service: real git, real uv, real pytest in the sandbox, real LiteLLM against the
scripted model server, the real CLI in subprocesses where a process boundary matters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from council.config import parse_config
from council.events import Emitter
from council.pipelines.lifecycle import Outcome
from council.pipelines.run import TddFlow
from council.store import Store
from tests.fakes import attacks
from tests.fakes import council_script as cs
from tests.fakes.github_server import FakeGitHub
from tests.fakes.model_server import Reply, ScriptedModelServer

pytestmark = pytest.mark.slow

TEST_SUBJECT = "test(profile): add GET /api/v1/users/me/profile for the current user"
FEAT_SUBJECT = "feat(profile): add GET /api/v1/users/me/profile for the current user"
TESTS_PROMPT = "Write the tests for this feature BEFORE any code exists"  # tests.j2's first line


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, env_cache) -> Path:
    return cs.make_repo(tmp_path / "profile-service")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def branch_subjects(repo: Path, branch: str) -> list[str]:
    return _git(repo, "log", "--format=%s", f"main..{branch}").splitlines()


def council_cli(repo: Path, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """The real `council` command line in its own process (environment inherited)."""
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def config_text(server: ScriptedModelServer, *, prices: dict[str, float] | None = None, **limits):
    """cs.council_yaml, optionally with a different output price per token for some personas."""
    doc = json.loads(cs.council_yaml(server, **limits))
    for model in doc["models"]:
        if prices and model["model_name"] in prices:
            model["model_info"]["output_cost_per_token"] = prices[model["model_name"]]
    return json.dumps(doc)


def run_council(
    repo: Path, text: str, events: list | None = None, *, open_pr: bool = False
) -> tuple[Outcome, Store]:
    store = Store.for_repo(repo)
    emit = Emitter()
    if events is not None:
        emit.subscribe(events.append)
    pipeline = TddFlow.start(
        repo=repo,
        feature=cs.FEATURE,
        config=parse_config(text),
        store=store,
        emit=emit,
        open_pr=open_pr,
    )
    return pipeline.execute(), store


def prompt(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in request.get("messages", []))


def request_counts(server: ScriptedModelServer) -> dict[str, int]:
    return {p: len(server.requests_for(p)) for p in cs.PERSONAS}


def of_kind(events: list, kind: str, step: str | None = None) -> list:
    return [e for e in events if e.kind == kind and (step is None or e.step == step)]


# --- 1. SIGKILL mid-run, then resume -------------------------------------------------------


def test_killed_mid_run_resumes_without_repeating_steps_or_commits(project, model_server):
    """kill -9 while Builder's answer is awaited (tests already committed); `council resume`
    finishes green from the stored steps: no step re-run, no duplicate commit."""
    (project / "council.yaml").write_text(cs.council_yaml(model_server))
    builder_asked = threading.Event()
    release = threading.Event()

    def held_builder(_body: dict[str, Any]) -> Reply:
        builder_asked.set()
        release.wait(120)  # held until the test lets go, long after the client is dead
        return Reply(content=cs.BUILD_REPLY)

    model_server.script("pacer", cs.PLAN_REPLY)
    model_server.script("maven", cs.CONTEXT_REPLY)
    model_server.script("guardian", cs.TESTS_REPLY)
    model_server.script("builder", held_builder)

    log = (project.parent / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "run", cs.FEATURE, "--repo", str(project)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    store = Store.for_repo(project)
    try:
        deadline = time.monotonic() + 300
        run = None
        while time.monotonic() < deadline and proc.poll() is None:
            run = store.latest_run()
            if run and builder_asked.is_set() and "commit-tests" in store.completed_steps(run.id):
                break
            time.sleep(0.1)
        assert proc.poll() is None, (project.parent / "run.log").read_text()
        assert run is not None and builder_asked.is_set(), "the run never reached Builder"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        release.set()
        log.close()

    # What the killed process left behind: a "running" run, steps up to the test commit.
    killed = store.get_run(run.id)
    assert killed.status == "running"
    before = {s.name: s for s in store.steps(run.id)}
    done_before = store.completed_steps(run.id)
    assert list(done_before) == ["setup", "plan", "context", "baseline", "tests", "commit-tests"]
    assert before["iteration-1"].status == "started"
    assert branch_subjects(project, killed.branch) == [TEST_SUBJECT]
    assert request_counts(model_server) == {
        "pacer": 1,
        "maven": 1,
        "guardian": 1,
        "builder": 1,
        "artisan": 0,
    }

    model_server.script("builder", cs.BUILD_REPLY)
    model_server.script("guardian", cs.REVIEW_REPLY)
    resumed = council_cli(project, "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    run = store.get_run(run.id)
    assert run.status == "green", run.reason
    assert model_server.pending() == 0 and all(model_server.pending(p) == 0 for p in cs.PERSONAS)
    # Plan, context and the tests were not asked for again; Builder once more, then the review.
    assert request_counts(model_server) == {
        "pacer": 1,
        "maven": 1,
        "guardian": 2,
        "builder": 2,
        "artisan": 0,
    }
    guardian_prompts = [prompt(r) for r in model_server.requests_for("guardian")]
    assert sum(TESTS_PROMPT in p for p in guardian_prompts) == 1
    # Exactly one test commit and one feat commit on the branch.
    assert branch_subjects(project, run.branch) == [FEAT_SUBJECT, TEST_SUBJECT]
    # The steps finished before the kill kept their stored results and times.
    after = {s.name: s for s in store.steps(run.id)}
    for name, output in done_before.items():
        assert after[name].status == "ok"
        assert after[name].finished_at == before[name].finished_at, name
        assert store.completed_steps(run.id)[name] == output
    assert after["iteration-1"].status == "ok" and after["commit"].status == "ok"

    events = store.events(run.id)
    assert len(of_kind(events, "run_started")) == 1
    assert len(of_kind(events, "tests_reported", step="baseline")) == 1
    assert len(of_kind(events, "tests_reported", step="tests")) == 1
    assert any(
        e.kind == "notice" and e.message.startswith(f"resuming run {run.id} after:") for e in events
    )
    assert [e.status for e in of_kind(events, "run_finished")] == ["green"]

    shown = council_cli(project, "show", run.id)
    assert shown.returncode == 0, shown.stderr
    assert run.id in shown.stdout and "green" in shown.stdout
    as_json = json.loads(council_cli(project, "show", "--json").stdout)
    assert as_json["run"]["id"] == run.id and as_json["run"]["status"] == "green"


# --- 2. budget too small, then resume with a bigger one ------------------------------------


def test_budget_stops_before_the_call_and_resume_with_a_bigger_budget_finishes(
    project, model_server
):
    """Guardian's worst case ($2 for 2000 answer tokens at $0.001) exceeds a $0.50 budget:
    the run stops before that call is sent, keeps its steps, and resumes green with --budget."""
    text = config_text(model_server, prices={"guardian": 1e-3}, budget_usd=0.5)
    (project / "council.yaml").write_text(text)
    cs.script_happy_path(model_server)
    events: list = []

    outcome, store = run_council(project, text, events)

    assert outcome.status == "stopped", outcome.reason
    assert outcome.exit_code == 1
    assert "budget" in outcome.reason and "'guardian'" in outcome.reason
    # The refused call never reached the server; the cheap ones before it did.
    assert model_server.requests_for("guardian") == []
    assert request_counts(model_server)["pacer"] == 1
    assert request_counts(model_server)["maven"] == 1
    run = store.get_run(outcome.run_id)
    assert run.status == "stopped" and "budget" in run.reason
    assert 0 < run.total_cost_usd < 0.5
    done = store.completed_steps(outcome.run_id)
    assert list(done) == ["setup", "plan", "context", "baseline"]
    assert done["plan"]["summary"] == cs.PLAN["summary"]
    assert {s.name: s.status for s in store.steps(outcome.run_id)}["tests"] == "failed"
    assert [e.status for e in of_kind(events, "run_finished")] == ["stopped"]
    assert branch_subjects(project, outcome.branch) == []  # nothing half-done was committed

    resumed = council_cli(project, "resume", outcome.run_id, "--budget", "10")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    run = store.get_run(outcome.run_id)
    assert run.status == "green", run.reason
    assert run.total_cost_usd > 0.0
    assert request_counts(model_server) == {
        "pacer": 1,
        "maven": 1,
        "guardian": 2,
        "builder": 1,
        "artisan": 0,
    }
    assert branch_subjects(project, run.branch) == [FEAT_SUBJECT, TEST_SUBJECT]


# --- 3. hostile generated code -------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on 127.0.0.1 in this process; records what every connection sends."""
    with attacks.listener() as found:
        yield found


def test_generated_code_cannot_reach_the_network_or_write_outside_the_worktree(
    project, model_server, listener, tmp_path
):
    """Builder's module, at import, writes outside the work tree (one file that exists, one
    that does not) and connects to a server this test runs. Nothing leaves the sandbox; the
    crash the blocked connection causes is reported; Artisan removes the import; green."""
    port, received = listener
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_text("original\n")
    planted = outside / "planted.txt"

    model_server.script("pacer", cs.PLAN_REPLY)
    model_server.script("maven", cs.CONTEXT_REPLY)
    model_server.script("guardian", cs.TESTS_REPLY, cs.REVIEW_REPLY)
    model_server.script("builder", cs.hostile_build_reply(precious, planted, port))
    model_server.script("artisan", cs.DROP_TELEMETRY_REPLY)
    events: list = []

    outcome, _store = run_council(project, cs.council_yaml(model_server), events)

    # The outside world is unchanged.
    assert received == []
    assert precious.read_text() == "original\n"
    assert not planted.exists()
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    # The hostile code did run, inside the sandbox, and every attempt was refused.
    evidence = (Path(outcome.worktree) / "app" / "telemetry.log").read_text().splitlines()
    assert evidence[0].startswith("overwrite: blocked: ")
    assert evidence[1].startswith("create: blocked: ")
    assert evidence[2:] == ["connect: trying"]  # the connection raised; "sent" never came

    # The crash was reported: the test command failed, the tests report says why.
    runs = of_kind(events, "command_run", step="iteration-1")
    pytest_runs = [r for r in runs if "pytest" in r.argv]
    assert len(pytest_runs) == 1 and pytest_runs[0].exit_code not in (0, None)
    assert "telemetry" in pytest_runs[0].output_tail
    reported = of_kind(events, "tests_reported", step="iteration-1")
    assert len(reported) == 1 and reported[0].passed == 0 and reported[0].errors >= 1
    artisan_prompt = prompt(model_server.requests_for("artisan")[0])
    assert "create_connection" in artisan_prompt or "unreachable" in artisan_prompt.lower()

    assert outcome.status == "green", outcome.reason
    green = of_kind(events, "tests_reported", step="iteration-2")
    assert green and green[0].failed == 0 and green[0].passed > 0


def _processes_matching(marker: str, worktree: Path) -> list[int]:
    """Host pids whose command line holds `marker` or whose cwd is inside `worktree`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker in cmdline or cwd == worktree or worktree in cwd.parents:
            found.append(int(entry.name))
    return found


def test_code_that_hangs_is_killed_at_the_time_limit_with_nothing_left_running(
    project, model_server
):
    """Builder's handler starts a detached helper (new session) and spins forever: the test run
    is killed at limits.test_timeout_s, reported as timed out, and no process outlives it."""
    marker = f"council-hostile-{uuid.uuid4().hex}"
    cs.script_happy_path(model_server, build=cs.spinning_build_reply(marker))
    events: list = []
    result: dict[str, Any] = {}

    def go() -> None:
        result["outcome"], _ = run_council(
            project,
            # The limit must let the red run (tests fail at once) finish on a loaded machine.
            cs.council_yaml(model_server, test_timeout_s=12, max_iterations=1),
            events,
        )

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(300)
    assert not worker.is_alive(), "the run hung"
    outcome: Outcome = result["outcome"]
    worktree = Path(outcome.worktree).resolve()
    strays = _processes_matching(marker, worktree)
    for pid in strays:  # clean up before failing, so a broken sandbox leaves no spinner behind
        os.kill(pid, signal.SIGKILL)
    assert strays == [], "processes outlived the test run"

    # The hostile code did run: its helper was started before the spin.
    assert (worktree / "app" / "spin.started").read_text().strip().isdigit()
    assert outcome.status == "failed"
    assert "timed out" in outcome.reason
    hung = of_kind(events, "command_run", step="iteration-1")
    assert any(r.timed_out and r.exit_code is None for r in hung)
    assert any(r.duration_s < 60 for r in hung if r.timed_out)
    reported = of_kind(events, "tests_reported", step="iteration-1")
    assert len(reported) == 1 and reported[0].passed == 0
    # What Artisan would be told (the hang location is only there when faulthandler's dump,
    # 80% of the limit into the hanging test, beat the kill: not asserted).
    summary = Store.for_repo(project).completed_steps(outcome.run_id)["iteration-1"]
    assert "killed at its time limit" in summary["failures"]
    assert model_server.requests_for("artisan") == []  # one iteration allowed: stopped there


# --- 4. --pr -------------------------------------------------------------------------------


def test_pr_pushes_the_branch_and_opens_a_pull_request_with_the_review(
    project, model_server, tmp_path, monkeypatch
):
    """origin reads as https://github.test/octo/demo.git (so owner/repo parse) while pushes go
    to a local bare repository; the PR goes to FakeGitHub through GITHUB_API_URL."""
    token = "ghp_" + "R" * 36
    bare = tmp_path / "origin.git"
    _git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(bare))
    remote = "https://github.test/octo/demo.git"
    _git(project, "remote", "add", "origin", remote)
    _git(project, "config", f"url.{bare}.pushInsteadOf", remote)
    _git(project, "push", "--quiet", "origin", "main")
    cs.script_happy_path(model_server)
    events: list = []

    with FakeGitHub(token=token, repos={"octo/demo": bare}) as gh:
        monkeypatch.setenv("GITHUB_TOKEN", token)
        monkeypatch.setenv("GITHUB_API_URL", gh.url)
        outcome, store = run_council(project, cs.council_yaml(model_server), events, open_pr=True)
        api = gh.api_requests()

    assert outcome.status == "green", outcome.reason
    assert outcome.branch.startswith("council/")
    head = _git(Path(outcome.worktree), "rev-parse", "HEAD")
    assert _git(bare, "rev-parse", f"refs/heads/{outcome.branch}") == head
    assert [(r.method, r.path) for r in api] == [("POST", "/repos/octo/demo/pulls")]
    assert api[0].headers["Authorization"] == f"Bearer {token}"
    assert len(gh.pulls) == 1
    pull = gh.pulls[0]
    assert pull.head == f"octo:{outcome.branch}" and pull.base == "main"
    review = json.loads(cs.REVIEW_REPLY)
    assert f"Review (approve): {review['summary']}" in pull.body
    assert review["comments"][0]["message"] in pull.body
    assert "Reviewed-by: AI Council (Guardian)" in pull.body
    assert pull.title == FEAT_SUBJECT
    assert outcome.details["pr_url"] == "https://github.test/octo/demo/pull/1"
    assert store.completed_steps(outcome.run_id)["pr"]["url"] == outcome.details["pr_url"]
    # The token reached git and the API, never the event stream.
    assert token not in json.dumps([e.model_dump(mode="json") for e in events])


# --- 5. and 6. tests that prove nothing are rejected ---------------------------------------


def test_broken_tests_are_rejected_then_good_ones_accepted(project, model_server):
    """A syntax error in Guardian's first tests is not a valid red: rejected with a notice
    saying why, fed back to Guardian, and the second attempt is the one committed."""
    model_server.script("pacer", cs.PLAN_REPLY)
    model_server.script("maven", cs.CONTEXT_REPLY)
    model_server.script("guardian", cs.BROKEN_TESTS_REPLY, cs.TESTS_REPLY, cs.REVIEW_REPLY)
    model_server.script("builder", cs.BUILD_REPLY)
    events: list = []

    outcome, store = run_council(project, cs.council_yaml(model_server), events)

    assert outcome.status == "green", outcome.reason
    reported = {e.phase: e for e in of_kind(events, "tests_reported", step="tests")}
    assert list(reported) == ["red-1", "red-2"]
    assert reported["red-1"].passed == reported["red-1"].failed == 0
    assert reported["red-1"].errors >= 1
    assert reported["red-2"].failed == 2 and reported["red-2"].errors == 0
    rejected = [e.message for e in of_kind(events, "notice", step="tests")]
    assert len(rejected) == 1
    assert rejected[0].startswith("tests rejected: Your tests are broken themselves")
    # Guardian was told what was wrong, including the error itself.
    second = prompt(model_server.requests_for("guardian")[1])
    assert "broken themselves" in second and "SyntaxError" in second
    # Only the accepted attempt counts as the red start and is what gets committed.
    tests_step = store.completed_steps(outcome.run_id)["tests"]
    assert tests_step["signature"] == reported["red-2"].signature
    assert tests_step["detail"] == "red: 0 passed, 2 failed, 0 errors"
    committed = _git(project, "show", f"{outcome.branch}~1:tests/test_profile.py")
    assert "def test_profile_needs_a_known_user(client):" in committed
    assert "def test_profile(client)\n" not in committed
    assert branch_subjects(project, outcome.branch) == [FEAT_SUBJECT, TEST_SUBJECT]


def test_tests_that_pass_before_any_code_are_rejected_and_the_run_stops(project, model_server):
    """Tests that only check /health pass on the unchanged code: rejected with the "pass
    before any code" reason; with max_test_attempts=1 the run stops failed, Builder unasked."""
    model_server.script("pacer", cs.PLAN_REPLY)
    model_server.script("maven", cs.CONTEXT_REPLY)
    model_server.script("guardian", cs.HEALTH_ONLY_TESTS_REPLY)
    events: list = []

    outcome, store = run_council(
        project, cs.council_yaml(model_server, max_test_attempts=1), events
    )

    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert outcome.reason.startswith(
        "Guardian did not produce valid failing tests in 1 attempts: "
        "Your tests PASS before any code for the feature exists"
    )
    red = of_kind(events, "tests_reported", step="tests")
    assert [(e.phase, e.passed, e.failed) for e in red] == [("red-1", 1, 0)]
    notices = [e.message for e in of_kind(events, "notice", step="tests")]
    assert notices == [
        "tests rejected: Your tests PASS before any code for the feature exists, so they "
        "prove nothing. Test the new behaviour the feature adds."
    ]
    assert model_server.requests_for("builder") == []
    run = store.get_run(outcome.run_id)
    assert run.status == "failed" and run.reason == outcome.reason
    assert "tests" not in store.completed_steps(outcome.run_id)
    # The rejected tests are not left behind; the branch holds only the failure report.
    assert branch_subjects(project, outcome.branch) == [
        "chore(profile): work in progress, not green (see .council-report.md)"
    ]
    files = _git(project, "ls-tree", "-r", "--name-only", outcome.branch).splitlines()
    assert "tests/test_profile.py" not in files
    report = _git(project, "show", f"{outcome.branch}:.council-report.md")
    assert outcome.reason in report
