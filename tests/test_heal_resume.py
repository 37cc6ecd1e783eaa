"""A heal as events and steps: killed half-way and resumed; shown from its stored events.

Real git, uv, pytest and sandbox; the `council heal` that is killed is a real process, killed
with SIGKILL while one of its gates runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from council.cli import app
from council.heal_report import heal_view, report_doc
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes import heal_corpus as hc

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("env_cache")]

# A gate that hangs the first time it runs in a worktree (it leaves a log file, ignored by git,
# so a reset of the worktree keeps it) and passes after: the heal is killed while it hangs.
HANG_ONCE = """import pathlib, time

marker = pathlib.Path("gate-ran.log")
if not marker.exists():
    marker.write_text("hanging")
    time.sleep(600)
print("slow gate ok")
"""
HEAL_KINDS = {"heal_started", "failure_classified", "recovery_tried", "iteration_finished"}


def _config(tmp_path: Path, server) -> Path:
    doc = json.loads(cs.council_yaml(server, test_timeout_s=120))
    doc["gates"] = [
        {"name": "install"},
        {"name": "test"},
        {"name": "slow", "command": f"{hc.PYTHON} slow_gate.py", "timeout_s": 900},
    ]
    path = tmp_path / "council.yaml"
    path.write_text(json.dumps(doc))
    return path


def _wait_for(path_glob: str, root: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(root.glob(path_glob))
        if found:
            return found[0]
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"council heal ended ({proc.returncode}) first:\n{out[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{path_glob} never appeared")


def test_a_heal_killed_mid_iteration_resumes_from_its_last_finished_iteration(
    tmp_path, model_server
):
    ignore = "gate-ran.log\n__pycache__/\n"
    repo = hc.make_project(
        tmp_path / "p",
        "import yaml\n\n\n" + hc.GOOD,
        extra={"slow_gate.py": HANG_ONCE, ".gitignore": ignore},
    )
    cfg = _config(tmp_path, model_server)
    heal = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "heal", "--repo", str(repo), "--config", str(cfg)]
        + ["--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the kill takes its gate too
    )
    try:
        # Iteration 1 declares PyYAML and commits; iteration 2's slow gate hangs: kill there.
        _wait_for(".council/worktrees/*/gate-ran.log", repo, heal)
    finally:
        os.killpg(heal.pid, signal.SIGKILL)
        first_out = heal.communicate(timeout=60)[0]
    assert heal.returncode == -signal.SIGKILL
    lines = [json.loads(x) for x in first_out.splitlines() if x.startswith("{")]
    assert HEAL_KINDS <= {x.get("kind") for x in lines}  # --json carries the typed events
    with Store.for_repo(repo) as store:
        run = store.latest_run()
        assert run is not None and run.kind == "heal"
        steps = {s.name: s.status for s in store.steps(run.id)}
        assert steps["iteration-1"] == "ok" and steps["iteration-2"] != "ok"
        branch = run.branch
    fixes_before = hc.git(repo, "log", "--format=%s", f"main..{branch}").splitlines()
    assert len(fixes_before) == 1 and fixes_before[0].startswith("fix(heal): test:")

    resumed = CliRunner().invoke(
        app, ["resume", run.id, "--repo", str(repo), "--config", str(cfg), "--json"]
    )
    assert resumed.exit_code == 0, resumed.output
    outcome = json.loads(resumed.output.strip().splitlines()[-1])["outcome"]
    assert outcome["status"] == "green", outcome["reason"]
    assert outcome["run_id"] == run.id and outcome["branch"] == branch
    # Same branch, one fix commit: iteration 1 was not redone, nothing committed twice.
    assert hc.git(repo, "log", "--format=%s", f"main..{branch}").splitlines() == fixes_before
    assert "PyYAML" in hc.git(repo, "show", f"{branch}:pyproject.toml")
    with Store.for_repo(repo) as store:
        events = store.events(run.id)
        starts = [e.step for e in events if e.kind == "step_started"]
        assert starts.count("iteration-1") == 1 and starts.count("iteration-2") == 2
        assert [e.kind for e in events].count("run_started") == 1
        doc = report_doc(heal_view(events))
    assert [it["result"] for it in outcome["iterations"]][-1] == "green"
    report = json.loads(Path(outcome["report_path"]).read_text())
    assert report == json.loads(json.dumps(doc, default=str))  # the file is the events' view
    assert report["iterations"][0]["recovery"]["action"] == "add_python_dependency"
    assert report["tracks"][0]["gates"] == {"install": "passed", "test": "passed", "slow": "passed"}

    shown = CliRunner().invoke(app, ["show", run.id, "--repo", str(repo)])
    assert shown.exit_code == 0, shown.output
    assert "missing_python_module" in shown.output  # its classification
    assert "add_python_dependency" in shown.output or "PyYAML" in shown.output  # recovery


def test_show_of_a_heal_prints_classification_recovery_and_patches(tmp_path, model_server):
    case = hc.failing_assertion(tmp_path / "p", model_server)
    outcome = hc.heal(case, model_server)
    assert outcome.status == "green", outcome.reason
    runner = CliRunner()
    shown = runner.invoke(
        app, ["show", outcome.run_id, "--repo", str(case.repo)], env={"COLUMNS": "200"}
    )
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "failing_assertion" in text  # classification, from FailureClassified
    assert "recovery rerun" in text  # the re-run that proved it no flake
    assert "patch 1.1: calc.py; review approve; applied (git apply)" in text
    as_json = runner.invoke(app, ["show", outcome.run_id, "--repo", str(case.repo), "--json"])
    kinds = [e["kind"] for e in json.loads(as_json.output)["events"]]
    for kind in ("failure_classified", "patch_proposed", "patch_reviewed", "patch_applied"):
        assert kind in kinds
    assert kinds.index("patch_proposed") < kinds.index("patch_reviewed")
    assert kinds.index("patch_reviewed") < kinds.index("patch_applied")
