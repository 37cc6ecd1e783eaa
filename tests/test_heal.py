"""`council heal` end to end: real git, real uv, real pytest, scripted model server.

The seeded projects come from tests/fakes/heal_corpus.py (shared with bench/heal_corpus.py);
test_heal_corpus.py runs one test per corpus case, this file the heal's own guarantees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from council.config import parse_config
from council.errors import ConfigError
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes import heal_corpus as hc
from tests.test_tdd_flow import checkout_fingerprint

BROKEN = hc.BROKEN
pytestmark = pytest.mark.usefixtures("env_cache")  # one uv env cache for the session


def seeded(tmp_path: Path, code: str, **options) -> hc.Seeded:
    return hc.Seeded(
        hc.make_project(tmp_path / "p", code), only_gates=["install", "test"], **options
    )


def patch(*lines: str) -> str:
    """A Builder answer holding one unified diff of calc.py."""
    body = "\n".join(lines)
    return f"Here is the fix.\n\n```diff\n--- a/calc.py\n+++ b/calc.py\n{body}\n```\n"


@pytest.mark.slow
def test_missing_dependency_healed_without_a_model(tmp_path, model_server):
    case = hc.missing_dependency(tmp_path / "p", model_server)
    outcome = hc.heal(case, model_server)
    assert outcome.status == "green", outcome.reason
    assert model_server.requests == []
    assert "PyYAML" in hc.git(case.repo, "show", f"{outcome.branch}:pyproject.toml")
    assert outcome.backup_branch in hc.git(case.repo, "branch")
    assert Path(outcome.report_path).is_file()
    body = hc.git(case.repo, "log", "-1", "--format=%B", outcome.branch)
    assert "add_python_dependency" in body


@pytest.mark.slow
def test_failing_assertion_patched_reviewed_committed_and_remembered(tmp_path, model_server):
    case = hc.failing_assertion(tmp_path / "p", model_server)
    outcome = hc.heal(case, model_server)
    assert outcome.status == "green", outcome.reason
    assert len(outcome.commits) == 1
    assert "a + b" in hc.git(case.repo, "show", f"{outcome.branch}:calc.py")
    assert "model_patch" in hc.git(case.repo, "log", "-1", "--format=%B", outcome.branch)
    assert outcome.iterations[0]["rerun"] == "failed again: not flaky"
    calls = len(model_server.requests)
    # The same failure again: the remembered patch, no model call.
    second = hc.heal(case, model_server)
    assert second.status == "green", second.reason
    assert len(model_server.requests) == calls
    assert second.iterations[0]["recovery"]["kind"] == "memory"


@pytest.mark.slow
def test_hostile_patch_is_rejected_and_never_applied(tmp_path, model_server):
    case = hc.hostile_patch(tmp_path / "p", model_server)
    outcome = hc.heal(case, model_server)
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert outcome.commits == []
    assert model_server.requests_for("guardian") == []  # the pre-check refused it first
    assert hc.git(case.repo, "show", f"{outcome.branch}:tests/test_calc.py") == hc.TEST
    work = case.repo / ".council" / "worktrees"
    for calc in work.rglob("calc.py"):
        assert "os.system" not in calc.read_text()


@pytest.mark.slow
def test_patch_git_refuses_is_reported_and_the_next_one_applies(tmp_path, model_server):
    case = seeded(tmp_path, BROKEN)
    stale = patch("@@ -1,2 +1,2 @@", " def add(a, b):", "-    return a * b", "+    return a + b")
    model_server.script("builder", stale, hc.FIX_DIFF)
    model_server.script("guardian", hc.APPROVE, hc.APPROVE)
    outcome = hc.heal(case, model_server)
    assert outcome.status == "green", outcome.reason
    first, second = outcome.iterations[0]["recovery"]["attempts"]
    assert first["reasons"][0].startswith("git apply --check: error: patch failed: calc.py:1")
    assert "return a * b" in first["diff"]  # the refused patch is kept in the report
    assert second["applied_with"] == "git apply"
    retry = model_server.requests_for("builder")[1]["messages"][-1]["content"]
    assert "patch failed: calc.py:1" in retry  # the Builder was told why
    assert len(outcome.commits) == 1


@pytest.mark.slow
def test_no_progress_stops_after_three_iterations_with_the_same_failures(tmp_path, model_server):
    case = seeded(tmp_path, BROKEN)
    model_server.script(
        "builder",
        patch("@@ -1,2 +1,3 @@", "+# attempt 1", " def add(a, b):", "     return a - b"),
        patch("@@ -1,3 +1,4 @@", " # attempt 1", "+# attempt 2", " def add(a, b):"),
    )
    model_server.script("guardian", hc.APPROVE, hc.APPROVE)
    outcome = hc.heal(case, model_server, max_iterations=6)
    assert outcome.status == "failed"
    assert outcome.reason.startswith("no progress in 3 iterations")
    assert [it["result"] for it in outcome.iterations][-1] == "no progress"
    assert len(outcome.iterations) == 3
    hashes = {tuple(f["hash"] for f in it["failures"]) for it in outcome.iterations}
    assert len(hashes) == 1
    assert len(outcome.commits) == 2 and model_server.pending("builder") == 0


@pytest.mark.slow
def test_every_language_track_is_healed_and_reported(tmp_path, model_server):
    case = hc.polyglot(tmp_path / "repo", model_server)
    outcome = hc.heal(case, model_server)
    assert outcome.status == "green", outcome.reason
    assert outcome.iterations[0]["gate"] == "javascript:test"
    tracks = {t["language"]: t for t in outcome.tracks}
    assert tracks["python"]["gates"] == {"install": "passed", "lint": "passed", "test": "passed"}
    assert tracks["javascript"]["gates"] == {
        "install": "passed",
        "lint": "passed",
        "typecheck": "passed",
        "test": "passed",
    }
    assert all(t["status"] == "green" for t in outcome.tracks)
    math = hc.git(case.repo, "show", f"{outcome.branch}:src/nodejs/src/math.js")
    assert "a + b" in math


@pytest.mark.slow
def test_heal_runs_are_in_the_run_history(tmp_path, model_server):
    from typer.testing import CliRunner

    from council.cli import app

    case = hc.missing_dependency(tmp_path / "p", model_server)
    outcome = hc.heal(case, model_server)
    assert outcome.status == "green" and outcome.run_id
    with Store.for_repo(case.repo) as store:
        record = store.get_run(outcome.run_id)
        assert record is not None
        assert (record.kind, record.status, record.branch) == ("heal", "green", outcome.branch)
        events = store.events(record.id)
        kinds = [e.kind for e in events]
    # The process claims the run, then the setup step (worktree, backup branch) comes first,
    # as in `council run`.
    assert kinds[:2] == ["run_claimed", "step_started"] and kinds[-1] == "run_finished"
    assert events[1].step == "setup" and events[0].pid == os.getpid()
    assert (
        kinds.index("run_started") < kinds.index("heal_started") < kinds.index("iteration_finished")
    )
    assert "command_run" in kinds
    listed = CliRunner().invoke(app, ["runs", "--repo", str(case.repo), "--json"])
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.output)
    assert (run["id"], run["kind"], run["feature"]) == (
        outcome.run_id,
        "heal",
        "heal: install, test",
    )
    shown = CliRunner().invoke(app, ["show", outcome.run_id, "--repo", str(case.repo), "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["run"]["status"] == "green"


@pytest.mark.slow
def test_dry_run_changes_nothing(tmp_path, model_server):
    case = hc.missing_dependency(tmp_path / "p", model_server)
    before = checkout_fingerprint(case.repo)
    branches = hc.git(case.repo, "branch")
    outcome = hc.heal(case, model_server, dry_run=True, store=False)
    assert outcome.status == "dry-run"
    assert outcome.iterations[0]["recovery"]["action"] == "add_python_dependency"
    assert checkout_fingerprint(case.repo) == before
    assert hc.git(case.repo, "branch") == branches
    assert not (case.repo / ".council").exists()
    assert model_server.requests == []


@pytest.mark.slow
def test_cli_heal_dry_run(tmp_path, model_server):
    from typer.testing import CliRunner

    from council.cli import app

    repo = hc.make_project(tmp_path / "p", "import yaml\n\n\n" + hc.GOOD)
    cfg = tmp_path / "council.yaml"
    cfg.write_text(cs.council_yaml(model_server))
    before = checkout_fingerprint(repo)
    args = ["heal", "--repo", str(repo), "--config", str(cfg), "--dry-run", "--gates"]
    result = CliRunner().invoke(app, [*args, "install,test"])
    assert result.exit_code == 1, result.output
    assert "PyYAML" in result.output, result.output
    assert checkout_fingerprint(repo) == before
    bad = CliRunner().invoke(app, [*args, "nope"])
    assert type(bad.exception).__name__ == "UsageError"  # main() maps it to exit code 2


def test_policy_deny_entries_are_validated_with_their_line():
    good = parse_config("policy:\n  deny:\n    - terraform destroy\n")
    assert good.policy.deny == ["terraform destroy"]
    with pytest.raises(ConfigError) as bad:
        parse_config('policy:\n  deny:\n    - terraform destroy\n    - "echo \'x"\n')
    assert "council.yaml:4: policy.deny.1: cannot parse" in str(bad.value)
    with pytest.raises(ConfigError, match="council.yaml:2: policy.allow"):
        parse_config("policy:\n  allow: [ls]\n")
