"""heal_report: a heal's view folded from its events (no heal runs here: the events are built as
a heal emits them, and stored and read back through the real store)."""

from __future__ import annotations

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
