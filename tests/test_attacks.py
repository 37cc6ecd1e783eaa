"""Generated code attacks the run from inside the test run, through the real pipeline (real git,
real uv env, real pytest in the real sandbox, scripted model), in each sandbox backend: it cannot
make the frozen tests pass by changing them, cannot kill council, and cannot exhaust processes
or memory unnoticed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.config import parse_config
from council.events import Emitter, ReviewMade
from council.pipelines.lifecycle import Outcome
from council.pipelines.run import TddFlow
from council.sandbox import capabilities, cgroups, probe, runner
from council.sandbox.capabilities import BACKEND_ENV
from council.store import Store
from tests.fakes import attacks
from tests.fakes import council_script as cs
from tests.fakes import fullstack_script as fs

pytestmark = pytest.mark.slow

ISOLATING = [b for b in ("bwrap", "unshare") if probe(b).backend == b]
PASSING_TEST = "def test_ok():\n    pass\n"


@pytest.fixture
def project(tmp_path, env_cache) -> Path:
    return cs.make_repo(tmp_path / "profile-service")


def force_backend(monkeypatch: pytest.MonkeyPatch, backend: str) -> Iterator[str]:
    monkeypatch.setenv(BACKEND_ENV, backend)
    capabilities.cache_clear()
    assert capabilities().backend == backend
    yield backend
    monkeypatch.undo()
    capabilities.cache_clear()


@pytest.fixture(params=ISOLATING)
def backend(request, monkeypatch) -> Iterator[str]:
    yield from force_backend(monkeypatch, request.param)


@pytest.fixture(params=[*ISOLATING, "none"])
def any_backend(request, monkeypatch) -> Iterator[str]:
    yield from force_backend(monkeypatch, request.param)


def run_council(
    repo: Path, build: str, events: list, *, on_review=None, memory_mb: int = 0, **limits
) -> tuple[Outcome, Store]:
    doc = json.loads(cs.council_yaml(_server, **{"max_iterations": 1, **limits}))
    if memory_mb:
        doc["sandbox"] = {"memory_mb": memory_mb}
    server_text = json.dumps(doc)
    store = Store.for_repo(repo)
    emit = Emitter()
    emit.subscribe(events.append)
    if on_review is not None:
        emit.subscribe(lambda e: on_review() if isinstance(e, ReviewMade) else None)
    _server.script("pacer", cs.PLAN_REPLY)
    _server.script("maven", cs.CONTEXT_REPLY)
    _server.script("guardian", cs.TESTS_REPLY, cs.REVIEW_REPLY)
    _server.script("builder", build)
    pipeline = TddFlow.start(
        repo=repo, feature=cs.FEATURE, config=parse_config(server_text), store=store, emit=emit
    )
    return pipeline.execute(), store


_server = None


@pytest.fixture(autouse=True)
def _use_server(model_server):
    global _server
    _server = model_server
    yield
    _server = None


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def subjects(repo: Path, branch: str) -> list[str]:
    return git(repo, "log", "--format=%s", f"main..{branch}").splitlines()


def notices(events: list) -> list[str]:
    return [e.message for e in events if e.kind == "notice"]


def attack_log(outcome: Outcome) -> list[str]:
    path = Path(outcome.worktree) / attacks.LOG
    return path.read_text().splitlines() if path.exists() else []


def test_code_under_test_cannot_change_the_frozen_tests(project, any_backend):
    """It plants a conftest.py that passes every test, rewrites one frozen test, deletes
    another, repoints .git. Isolated: the frozen files and .git are read-only; everything that
    did land is reverted, reported, and the run is not green. Without isolation every change
    lands, and the check after the run still reverts and reports all of them."""
    events: list = []
    outcome, store = run_council(project, attacks.build_reply("tamper"), events)

    assert outcome.status == "failed", outcome.reason
    log = attack_log(outcome)
    if any_backend == "none":
        assert log == ["conftest: done", "rewrite: done", "delete: done", "git: done"]
    else:
        assert log[0] == "conftest: done"
        assert log[1:] == [
            "rewrite: blocked: Read-only file system",
            "delete: blocked: Device or resource busy",
            "git: blocked: Read-only file system",
        ]
    said = [n for n in notices(events) if "while the tests ran" in n]
    assert said and said[0].startswith("the code under test ") and "added conftest.py" in said[0]
    if any_backend == "none":
        assert "modified tests/test_profile.py" in said[0]
        assert "deleted tests/test_users.py" in said[0]
    steps = store.completed_steps(outcome.run_id)
    assert "added conftest.py" in steps["iteration-1"]["failures"]
    assert steps["iteration-1"]["green"] is False
    # Reverted: the worktree and every commit hold the frozen tests, and no conftest.py.
    worktree = Path(outcome.worktree)
    assert not (worktree / "conftest.py").exists()
    assert (worktree / "tests" / "test_users.py").is_file()
    assert "/me/profile" in (worktree / "tests" / "test_profile.py").read_text()
    assert (worktree / ".git").read_text().startswith("gitdir: ") and "nowhere" not in (
        worktree / ".git"
    ).read_text()
    assert not any(s.startswith("feat") for s in subjects(project, outcome.branch))
    committed = git(project, "ls-tree", "-r", "--name-only", outcome.branch).splitlines()
    assert "conftest.py" not in committed and "tests/test_users.py" in committed


def test_a_frozen_test_changed_before_the_commit_stops_the_run(project, backend):
    """Whatever changes a frozen test after the last run (here: right after the review), the
    commit step checks the hashes: the run stops, exit 1, work in progress committed, no feat."""
    events: list = []
    worktree: list[Path] = []

    def tamper() -> None:
        path = Path(next(e.worktree for e in events if e.kind == "run_started"))
        worktree.append(path)
        (path / "tests" / "test_profile.py").write_text(PASSING_TEST)

    outcome, _ = run_council(project, cs.BUILD_REPLY, events, on_review=tamper)

    assert worktree, "the review was never reached"
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "frozen test files changed before the commit: tests/test_profile.py" in outcome.reason
    assert [s.split(":")[0] for s in subjects(project, outcome.branch)] == [
        "chore(profile)",
        "test(profile)",
    ]


def test_a_renamed_and_replaced_tests_folder_is_put_back(project):
    """The read-only test files move with a renamed folder; a new tests/ with a passing test
    takes its place. After the run: reported, the original folder back, no copy left."""
    events: list = []
    outcome, store = run_council(project, attacks.build_reply("rename_tests"), events)

    assert attack_log(outcome)[:3] == ["rename tests: done", "new tests: done", "new test: done"]
    assert outcome.status != "green"
    failures = store.completed_steps(outcome.run_id)["iteration-1"]["failures"]
    assert "modified tests/test_profile.py" in failures
    worktree = Path(outcome.worktree)
    assert "/me/profile" in (worktree / "tests" / "test_profile.py").read_text()
    assert not (worktree / "tests_moved").exists()


def test_builder_cannot_write_the_test_harness(project):
    """The code side's edits never reach a test file or what runs before the tests: a new
    conftest.py or a sitecustomize.py that passes every test is refused, the run stays red."""
    events: list = []
    # The first answer and both re-asks cheat the same way.
    _server.script("builder", attacks.HARNESS_EDITS_REPLY, attacks.HARNESS_EDITS_REPLY)
    outcome, store = run_council(project, attacks.HARNESS_EDITS_REPLY, events)

    refused = {e.path for e in events if e.kind == "edit_refused"}
    assert refused == {"conftest.py", "sitecustomize.py", "tests/helpers/conftest.py"}
    assert outcome.status != "green"
    assert not any(s.startswith("feat") for s in subjects(project, outcome.branch))
    worktree = Path(outcome.worktree)
    assert not (worktree / "conftest.py").exists() and not (worktree / "sitecustomize.py").exists()
    assert "2 failed" in store.completed_steps(outcome.run_id)["iteration-1"]["failures"]


@pytest.mark.parametrize(
    ("build", "said"),
    [
        # Code the tests import patches pytest so every test reports "passed": the canary
        # check that always fails comes out passed too.
        (attacks.FORGING_BUILD_REPLY, "the test results were rewritten inside the test run"),
        # Builder's pytest.ini deselects the failing new tests: they ran at the red start and
        # have no result now; each is an error.
        (attacks.DESELECTING_BUILD_REPLY, "did not run, though it ran in an earlier run"),
    ],
    ids=["results-forged-in-process", "new-tests-deselected"],
)
def test_wrong_code_that_fakes_a_pass_never_goes_green(project, build, said):
    events: list = []
    outcome, store = run_council(project, build, events)

    assert outcome.status != "green"
    assert not any(s.startswith("feat") for s in subjects(project, outcome.branch))
    failures = store.completed_steps(outcome.run_id)["iteration-1"]["failures"]
    assert said in failures
    if build == attacks.DESELECTING_BUILD_REPLY:
        assert "0 failed, 2 errors" in failures
        assert "tests/test_profile.py::test_profile_returns_the_current_user" in failures


def test_code_that_kills_its_parent_and_hunts_council_does_not_stop_the_run(project, backend):
    marker = f"council-stand-in-{uuid.uuid4().hex}"
    stand_in = subprocess.Popen([sys.executable, "-c", "import time\ntime.sleep(300)", marker])
    try:
        events: list = []
        outcome, store = run_council(project, attacks.build_reply("kill_parent", marker), events)
        assert stand_in.poll() is None, "a process outside the sandbox was killed"
    finally:
        stand_in.kill()
        stand_in.wait()
    # The kill went to the sandbox's own pid 1, which ignores it; council finished the run.
    # Sent to pid 1 (our init, which the kernel shields), once per test run; nothing else seen.
    assert set(attack_log(outcome)) == {"kill 1: done"}
    assert outcome.status == "green", outcome.reason
    record = store.get_run(outcome.run_id)
    assert record is not None and record.status == "green"


def test_a_fork_bomb_is_stopped_at_the_process_limit_and_reported(project, backend):
    if cgroups.support().pids is None:  # then the notice says what holds instead
        assert "process limit" in (runner.limits_notice(cgroups.support()) or "")
        return
    events: list = []
    outcome, store = run_council(project, attacks.build_reply("fork_bomb"), events)

    worktree = Path(outcome.worktree).resolve()
    strays = attacks.left_running(worktree)
    for pid in strays:
        os.kill(pid, signal.SIGKILL)
    assert strays == []
    assert outcome.status == "failed"
    failures = store.completed_steps(outcome.run_id)["iteration-1"]["failures"]
    assert "process limit of 256 reached" in failures


def test_a_memory_hog_that_catches_memory_error_is_reported(project, backend):
    if cgroups.support().memory is None:  # then the notice says what holds instead
        assert "MemoryError" in (runner.limits_notice(cgroups.support()) or "")
        return
    events: list = []
    outcome, store = run_council(project, attacks.build_reply("memory_hog"), events, memory_mb=384)

    assert outcome.status == "failed"
    failures = store.completed_steps(outcome.run_id)["iteration-1"]["failures"]
    assert "memory limit of 384 MB reached" in failures
    assert "MemoryError caught" not in attack_log(outcome)  # killed before it could hide it


@pytest.fixture
def fullstack_py_js(tmp_path, env_cache) -> Path:
    """examples/profile-fullstack without its Java part: a Python and a JavaScript track."""
    repo = tmp_path / "profile-fullstack"
    skip = shutil.ignore_patterns("node_modules", "__pycache__", "java")
    shutil.copytree(fs.EXAMPLE, repo, ignore=skip)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return repo


def test_code_under_test_cannot_change_another_tracks_tests(fullstack_py_js, any_backend):
    """The Python track's code rewrites a frozen test of the JavaScript track. Isolated, that
    folder is read-only during the Python run; without isolation the change lands, and the
    check after the run reverts and reports it."""
    _server.script("pacer", json.dumps(fs.PLAN))
    _server.script("maven", fs.CONTEXT)
    _server.script("guardian", *([fs.guardian] * 3))
    _server.script("builder", *([attacks.cross_track_builder] * 2))
    events: list = []
    emit = Emitter()
    emit.subscribe(events.append)
    config = parse_config(cs.council_yaml(_server, max_iterations=1, test_timeout_s=300))
    store = Store.for_repo(fullstack_py_js)
    outcome = TddFlow.start(
        repo=fullstack_py_js, feature=fs.FEATURE, config=config, store=store, emit=emit
    ).execute()

    worktree = Path(outcome.worktree)
    log_file = worktree / "src" / "python" / attacks.LOG
    assert log_file.exists(), (outcome.status, outcome.reason, notices(events))
    log = log_file.read_text().splitlines()
    target = worktree / attacks.CROSS_TRACK_TARGET
    original = (fs.EXAMPLE / "src" / "nodejs" / "tests" / "UserBadge.test.jsx").read_text()
    assert target.read_text() == original
    committed = git(fullstack_py_js, "show", f"{outcome.branch}:{attacks.CROSS_TRACK_TARGET}")
    assert committed == original
    if any_backend == "none":
        assert log == ["other track: done"]
        said = [n for n in notices(events) if "while the tests ran" in n]
        assert said and f"modified {attacks.CROSS_TRACK_TARGET}" in said[0]
        assert outcome.status == "failed"
        assert not any(s.startswith("feat") for s in subjects(fullstack_py_js, outcome.branch))
    else:
        assert set(log) == {"other track: blocked: Read-only file system"}  # every run
        assert outcome.status == "green", outcome.reason  # refused: nothing changed
