"""heal_report: a heal's view folded from its events (no heal runs here: the events are built as
a heal emits them, and stored and read back through the real store)."""

from __future__ import annotations

import json
import subprocess

from rich.console import Console

from council.events import (
    CommitMade,
    FailureClassified,
    FlakyDetected,
    HealStarted,
    IterationFinished,
    PatchApplied,
    PatchProposed,
    PatchRefused,
    PatchReviewed,
    RecoveryTried,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from council.heal_report import describe, heal_view, patch_lines, print_heal, report_doc
from council.store import Store

SIG = {"tool": "pytest", "error_type": "exit 1", "file": "t.py", "message": "boom", "hash": "ab12"}
GATES = [
    {"label": "install", "group": 0, "language": "python", "root": "", "name": "install"},
    {"label": "test", "group": 0, "language": "python", "root": "", "name": "test"},
]


def _iteration_one(sha: str) -> list:
    step = "iteration-1"
    return [
        StepStarted(step=step),
        FailureClassified(
            step=step, iteration=1, gate="test", signature=SIG, catalogue=["failing_assertion"]
        ),
        RecoveryTried(
            step=step, iteration=1, gate="test", recovery="rerun", result="failed again: not flaky"
        ),
        PatchProposed(step=step, iteration=1, files=["calc.py"], size=2, diff="+++ b/calc.py\n"),
        PatchReviewed(step=step, iteration=1, persona="", verdict="precheck", findings=["no"]),
        PatchRefused(step=step, iteration=1, reasons=["calc.py: adds eval("]),
        PatchProposed(step=step, iteration=1, attempt=2, files=["calc.py"], diff="+++ b/calc.py"),
        PatchReviewed(step=step, iteration=1, attempt=2, verdict="approve"),
        PatchApplied(step=step, iteration=1, attempt=2, method="git apply", files=["calc.py"]),
        CommitMade(step=step, sha=sha, branch="council/heal-x", message="fix(heal): test"),
    ]


def test_an_iteration_run_again_after_a_kill_counts_once(tmp_path):
    run = "r-1"
    events = [
        RunStarted(feature="heal: install, test", repo="/r", branch="council/heal-x", worktree="w"),
        HealStarted(gates=GATES, backup_branch="council/heal-x-backup"),
        *_iteration_one("dead0001"),  # killed after its commit, before the step finished
        *_iteration_one("live0002"),  # run again on resume, from the reset worktree
        IterationFinished(
            step="iteration-1",
            iteration=1,
            gate="test",
            gates={"install": "passed", "test": "failed"},
            failures=[{**SIG, "gate": "test", "track": "python"}],
            result="patch applied (git apply)",
            cost_usd=0.01,
        ),
        StepStarted(step="iteration-2"),
        FlakyDetected(step="iteration-2", iteration=2, gate="test", tests=["t::a"], again=True),
        IterationFinished(
            step="iteration-2",
            iteration=2,
            gates={"install": "passed", "test": "passed"},
            result="green",
        ),
        RunFinished(status="green", reason="all gates pass after 1 fix(es)", total_cost_usd=0.01),
    ]
    with Store(f"sqlite:///{tmp_path / 'c.db'}") as store:
        run = store.create_run(feature="heal: install, test", repo="/r", config={}, kind="heal")
        for e in events:
            e.run_id = run
            store.record_event(e)
        view = heal_view(store.events(run))
    assert view.commits == ["live0002"]  # the killed attempt's commit was taken back
    assert (view.status, view.branch, view.backup_branch) == (
        "green",
        "council/heal-x",
        "council/heal-x-backup",
    )
    first, second = view.iterations
    assert first["classification"] == ["failing_assertion"]
    assert first["rerun"] == "failed again: not flaky"
    assert [a["verdict"] for a in first["recovery"]["attempts"]] == ["precheck", "approve"]
    assert first["recovery"]["attempts"][0]["reasons"] == ["calc.py: adds eval("]
    assert first["recovery"]["attempts"][1]["applied_with"] == "git apply"
    assert second == {"iteration": 2, "failures": [], "result": "green"}
    assert view.flaky == ["t::a"]
    assert view.tracks == [
        {
            "language": "python",
            "root": "",
            "gates": {"install": "passed", "test": "passed"},
            "status": "green",
        }
    ]
    assert report_doc(view)["iterations"] == view.iterations
    assert patch_lines(view) == [
        "patch 1.1: calc.py; review precheck; refused: calc.py: adds eval(",
        "patch 1.2: calc.py; review approve; applied (git apply)",
    ]
    console = Console(width=160, record=True)
    print_heal(console, view)
    text = console.export_text()
    assert "failing_assertion" in text and "model_patch" in text and "flaky" in text


def test_every_heal_event_has_a_line_of_its_own():
    for event in _iteration_one("abc"):
        if event.kind not in ("step_started", "commit_made"):
            assert describe(event), event.kind


def _old_heal(repo, store: Store, *, steps: bool, report: dict | None) -> str:
    """A heal row as the pre-lifecycle HealPipeline wrote it: the iteration limit beside the
    config snapshot (no params), untyped step events named heal-N, the report file's path."""
    run_id = store.create_run(
        feature="heal: install, test", repo=str(repo), config={"max_iterations": 4}, kind="heal"
    )
    emit = [
        RunStarted(
            run_id=run_id, feature="heal", repo=str(repo), branch="council/heal-x", worktree=""
        )
    ]
    if steps:
        emit += [
            StepStarted(run_id=run_id, step="heal-1", detail="iteration 1: run the gates"),
            StepFinished(
                run_id=run_id, step="heal-1", status="ok", detail="test: model patch applied"
            ),
            StepStarted(run_id=run_id, step="heal-2", detail="iteration 2: run the gates"),
            StepFinished(run_id=run_id, step="heal-2", status="ok", detail="all gates pass"),
        ]
    for event in [*emit, RunFinished(run_id=run_id, status="green", reason="all gates pass")]:
        store.record_event(event)
    if report is not None:
        path = repo / ".council" / "reports" / "heal-20261129-101010.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(report))
        store.update_run(run_id, state={"report": str(path), "commits": ["c0ffee"]})
    return run_id


def test_show_of_a_heal_recorded_before_typed_events_is_never_an_empty_table(tmp_path):
    from typer.testing import CliRunner

    from council.cli import app

    repo = tmp_path / "r"
    (repo / ".council").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    old_report = {
        "run_id": "x",
        "status": "green",
        "iterations": [
            {"iteration": 1, "gate": "test", "classification": ["failing_assertion"],
             "recovery": {"kind": "model_patch"}, "result": "model patch applied"},
        ],
        "tracks": [], "flaky": [], "gates": [], "cost_usd": 0.0,
    }  # fmt: skip
    with Store.for_repo(repo) as store:
        with_report = _old_heal(repo, store, steps=True, report=old_report)
        with_steps = _old_heal(repo, store, steps=True, report=None)
        bare = _old_heal(repo, store, steps=False, report=None)

    def show(run_id: str) -> str:
        done = CliRunner().invoke(
            app, ["show", run_id, "--repo", str(repo)], env={"COLUMNS": "200"}
        )
        assert done.exit_code == 0, done.output
        return done.output

    text = show(with_report)
    assert "recorded before heal events were typed" in text
    assert "report file heal-20261129-101010.json" in text
    assert "failing_assertion" in text and "model patch applied" in text
    text = show(with_steps)
    assert "shown from its steps" in text
    assert "model patch applied" in text and "all gates pass" in text
    text = show(bare)
    assert "recorded before heal events were typed" in text and "no details stored" in text
    assert "council heal:" not in text  # no table at all: there is nothing to put in one
