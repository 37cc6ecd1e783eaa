"""What a heal did, read from its events: the CLI table, `--json`, the report file, `show`.

A heal records its facts only as events (HealStarted, FailureClassified, MemoryHit,
RecoveryTried, FlakyDetected, Patch*, IterationFinished, CommitMade, RunFinished; see
council.events). `heal_view` folds them into one HealView; every way of showing a heal starts
from it, so the table, the JSON, the report file and `council show` cannot disagree.

An iteration killed half-way and run again on `council resume` starts a new attempt of the
same step: the events of the abandoned attempt (its classification, its commit that the resume
took back) are left out of the view.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from council.events import (
    BaseEvent,
    CommitMade,
    FailureClassified,
    FlakyDetected,
    HealStarted,
    IterationFinished,
    MemoryHit,
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

ITERATION_STEP = re.compile(r"iteration-(\d+)$")


@dataclass
class HealView:
    status: str = ""
    reason: str = ""
    run_id: str = ""
    branch: str = ""
    backup_branch: str = ""
    commits: list[str] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    cost_usd: float = 0.0
    report_path: str = ""

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "green" else 1


def outcome_view(outcome: Any) -> HealView:
    """A heal's lifecycle outcome (common fields, and its details from heal_view) as a view."""
    details = {k: v for k, v in outcome.details.items() if k in HealView.__dataclass_fields__}
    return HealView(
        status=outcome.status,
        reason=outcome.reason,
        run_id=outcome.run_id,
        branch=outcome.branch,
        commits=list(outcome.commits),
        cost_usd=outcome.cost_usd,
        **details,
    )


def current_events(events: list[BaseEvent]) -> list[BaseEvent]:
    """The events without those of abandoned attempts: an iteration step that started again
    (on resume) keeps only what its last attempt did."""
    last_start: dict[str, int] = {}
    for i, e in enumerate(events):
        if isinstance(e, StepStarted) and e.step and ITERATION_STEP.match(e.step):
            last_start[e.step] = i
    return [
        e
        for i, e in enumerate(events)
        if not (e.step in last_start and i < last_start[e.step])  # type: ignore[index]
    ]


def heal_view(events: list[BaseEvent], *, status: str = "", reason: str = "") -> HealView:
    """Fold a heal's events into its view; `status`/`reason` stand in when the events hold no
    RunFinished (a dry run, or a heal still running)."""
    view = HealView(status=status, reason=reason)
    entries: dict[int, dict[str, Any]] = {}
    results: dict[str, str] = {}
    for e in current_events(events):
        view.run_id = view.run_id or (e.run_id or "")
        if isinstance(e, HealStarted):
            view.gates, view.backup_branch = list(e.gates), e.backup_branch
        elif isinstance(e, RunStarted):
            view.branch = e.branch
        elif isinstance(e, CommitMade):
            view.commits.append(e.sha)
        elif isinstance(e, FlakyDetected):
            view.flaky.extend(t for t in e.tests if t not in view.flaky)
        elif isinstance(e, RunFinished):
            view.status, view.reason, view.cost_usd = e.status, e.reason, e.total_cost_usd
        elif isinstance(e, IterationFinished):
            results = dict(e.gates)
            _fold(entries.setdefault(e.iteration, {"iteration": e.iteration}), e)
        elif hasattr(e, "iteration"):
            _fold(entries.setdefault(e.iteration, {"iteration": e.iteration}), e)
    view.iterations = [entries[n] for n in sorted(entries)]
    view.tracks = _tracks(view.gates, results)
    return view


def _fold(entry: dict[str, Any], e: BaseEvent) -> None:  # noqa: C901 - one branch per kind
    """One event into its iteration's entry (the shape the report file has always had)."""
    if isinstance(e, FailureClassified):
        entry["gate"] = e.gate
        if e.catalogue or e.source != "memory":
            entry["classification"] = list(e.catalogue)
    elif isinstance(e, MemoryHit):
        entry["recovery"] = {"kind": "memory", "fix": e.fix}
    elif isinstance(e, RecoveryTried):
        if e.recovery == "rerun" and not e.applied:
            entry["rerun"] = e.result
            return
        entry["recovery"] = dict(e.record)
        if "hang" in e.record:
            entry["hang"] = e.record["hang"]
            entry["recovery"].pop("hang")
    elif isinstance(e, PatchProposed):
        record = entry.get("recovery")
        if not record or record.get("kind") != "model_patch":
            record = entry["recovery"] = {"kind": "model_patch", "attempts": []}
        record["attempts"].append(
            {"verdict": "precheck", "diff": e.diff, "commands": e.commands, "reasons": []}
        )
    elif isinstance(e, PatchReviewed):
        _attempt(entry)["verdict"] = e.verdict
    elif isinstance(e, PatchRefused):
        _attempt(entry)["reasons"] = list(e.reasons)
        if e.forbidden is not None:
            entry["recovery"]["forbidden"] = dict(e.forbidden)
    elif isinstance(e, PatchApplied):
        _attempt(entry).update(applied_with=e.method, reasons=[])
        if e.commands:
            entry["recovery"]["commands"] = list(e.commands)
    elif isinstance(e, IterationFinished):
        if e.gate:
            entry["gate"] = e.gate
        entry["failures"] = list(e.failures)
        if e.log:
            entry["log"] = e.log
        entry["result"] = e.result
        if e.cost_usd or e.failures:
            entry["cost_usd"] = e.cost_usd


def _attempt(entry: dict[str, Any]) -> dict[str, Any]:
    return entry["recovery"]["attempts"][-1]


def _tracks(gates: list[dict[str, Any]], results: dict[str, str]) -> list[dict[str, Any]]:
    """Per gate group (a language track, or the repository's own gates): each gate's last
    result and whether the group is green."""
    groups: dict[int, dict[str, Any]] = {}
    for gate in gates:
        group = groups.setdefault(
            gate.get("group", 0),
            {"language": gate.get("language", ""), "root": gate.get("root", ""), "gates": {}},
        )
        group["gates"][gate["name"]] = results.get(gate["label"], "not run")
    for group in groups.values():
        passed = all(v == "passed" for v in group["gates"].values())
        group["status"] = "green" if passed else "failed"
    return [groups[k] for k in sorted(groups)]


# --- outputs ---------------------------------------------------------------------------------


def report_doc(view: HealView) -> dict[str, Any]:
    """The report file's (and `--json` outcome's) content."""
    return {
        "run_id": view.run_id,
        "status": view.status,
        "reason": view.reason,
        "branch": view.branch,
        "backup_branch": view.backup_branch,
        "commits": view.commits,
        "gates": view.gates,
        "tracks": view.tracks,
        "flaky": view.flaky,
        "iterations": view.iterations,
        "cost_usd": view.cost_usd,
    }


def write_report(path: Path, view: HealView) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report_doc(view), indent=2, default=str), encoding="utf-8")
    return path


def view_dict(view: HealView) -> dict[str, Any]:
    return asdict(view)


def _recovery_text(record: dict[str, Any]) -> str:
    return str(record.get("description") or record.get("kind") or record.get("action") or "")


def heal_table(view: HealView, title: str = ""):  # -> rich.table.Table (rich loads lazily)
    from rich.table import Table

    table = Table(title=title or f"council heal: {view.status}")
    for col in ("#", "gate", "failure", "classification", "recovery", "result", "cost"):
        table.add_column(col)
    for it in view.iterations:
        failure = "; ".join(f"{f['error_type']} [{f['hash']}]" for f in it.get("failures", []))
        table.add_row(
            str(it.get("iteration", "")),
            it.get("gate", ""),
            failure,
            ", ".join(it.get("classification", [])),
            _recovery_text(it.get("recovery") or {}),
            str(it.get("result", "")),
            f"${it.get('cost_usd', 0):.4f}",
        )
    return table


def patch_lines(view: HealView) -> list[str]:
    """One line per patch attempt: iteration, verdict, applied or why refused."""
    lines = []
    for it in view.iterations:
        attempts = (it.get("recovery") or {}).get("attempts") or []
        for n, tried in enumerate(attempts, 1):
            files = sorted(set(re.findall(r"^\+\+\+ b/(\S+)", tried.get("diff", ""), re.M)))
            what = ", ".join(files) or ", ".join(tried.get("commands", [])) or "no diff"
            if tried.get("applied_with"):
                end = f"applied ({tried['applied_with']})"
            else:
                end = "refused: " + (tried.get("reasons") or ["?"])[0]
            lines.append(
                f"patch {it['iteration']}.{n}: {what}; review {tried.get('verdict')}; {end}"
            )
    return lines


def print_heal(console: Any, view: HealView, *, footer: bool = True) -> None:
    """The heal table, each track's gates, flaky tests, patches, and (footer) the outcome."""
    console.print(heal_table(view))
    for track in view.tracks:
        gates = ", ".join(f"{g} {r}" for g, r in track["gates"].items())
        name = f"{track['language'] or 'repository'} ({track['root'] or '.'})"
        console.print(f"{name}: {track['status']}: {gates}", markup=False)
    if view.flaky:
        console.print(f"flaky (passed on a re-run, not edited): {', '.join(view.flaky)}")
    for line in patch_lines(view):
        console.print(line, markup=False)
    if not footer:
        return
    console.print(f"{view.status}: {view.reason}", markup=False)
    if view.run_id:
        console.print(f"run: {view.run_id} (`council show {view.run_id}`)", markup=False)
    if view.branch:
        console.print(f"branch: [cyan]{view.branch}[/]  backup: {view.backup_branch}")


# --- `council show` of any stored heal --------------------------------------------------------

TYPED_KINDS = frozenset({"heal_started", "iteration_finished", "failure_classified"})
LEGACY_STEP = re.compile(r"heal-(\d+)$")  # an iteration's step name before heal steps resumed
BEFORE_TYPED = "recorded before heal events were typed (council 0.1.0 before 2026-11-30)"


def print_stored_heal(console: Any, run: Any, events: list[BaseEvent]) -> None:
    """What `council show` prints for a heal: its view from the typed events; for a heal
    recorded before those existed, its report file or its steps' one-line results; never an
    empty table without a word on why."""
    # A heal on the run lifecycle stores its params apart (and typed events from its set-up on).
    if "params" in (run.config or {}) or any(e.kind in TYPED_KINDS for e in events):
        view = heal_view(events)
        if view.iterations:
            print_heal(console, view, footer=False)
        else:
            why = "interrupted in its set-up" if run.status == "interrupted" else run.status
            console.print(f"heal: no iteration ran ({why})", markup=False)
        return
    legacy = legacy_view(run, events)
    if legacy is None:
        console.print(f"heal: {BEFORE_TYPED}; no details stored", markup=False)
        return
    view, source = legacy
    console.print(f"heal: {BEFORE_TYPED}; shown from {source}", markup=False)
    print_heal(console, view, footer=False)


def legacy_view(run: Any, events: list[BaseEvent]) -> tuple[HealView, str] | None:
    """An old heal's view: the report file its run row names (the same shape as today's), or
    else one row per iteration step from its StepFinished lines."""
    path = Path(str((run.state or {}).get("report") or ""))
    reports = Path(run.repo) / ".council" / "reports"
    if path.name and path.resolve().is_relative_to(reports.resolve()) and path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("iterations"), list):
            fields = {k: doc[k] for k in HealView.__dataclass_fields__ if k in doc}
            return HealView(**fields), f"its report file {path.name}"
    rows = []
    for e in events:
        match = LEGACY_STEP.match(e.step or "")
        if isinstance(e, StepFinished) and match:
            gate, _, result = e.detail.partition(": ") if ": " in e.detail else ("", "", e.detail)
            rows.append({"iteration": int(match.group(1)), "gate": gate, "result": result})
    if not rows:
        return None
    return HealView(status=run.status, reason=run.reason, iterations=rows), "its steps"


def describe(e: BaseEvent) -> str:
    """One line for a heal event (the live output and `show`'s timeline); "" for others."""
    if isinstance(e, FailureClassified):
        known = ", ".join(e.catalogue) or (
            "a remembered fix" if e.source == "memory" else "not in the catalogue"
        )
        sig = e.signature
        return (
            f"{e.gate}: {sig.get('error_type', '')} [{sig.get('hash', '')}] ({known}; {e.source})"
        )
    if isinstance(e, MemoryHit):
        return f"remembered fix {e.fix} for [{e.signature}]: " + (
            "applied" if e.applied else "did not apply"
        )
    if isinstance(e, RecoveryTried):
        return f"recovery {e.recovery}: {e.action or e.result}".rstrip(": ")
    if isinstance(e, FlakyDetected):
        again = " again" if e.again else ""
        return f"flaky{again}: {', '.join(e.tests)} (not edited)"
    if isinstance(e, PatchProposed):
        return f"patch proposed by {e.persona}: {', '.join(e.files) or 'no files'} ({e.size} lines)"
    if isinstance(e, PatchReviewed):
        return f"patch review {e.verdict}" + (f": {e.findings[0]}" if e.findings else "")
    if isinstance(e, PatchApplied):
        return f"patch applied ({e.method})"
    if isinstance(e, PatchRefused):
        return "patch refused: " + (e.reasons[0] if e.reasons else "")
    return ""
