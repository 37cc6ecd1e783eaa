"""What the dashboard shows, read from the store: a run's timeline, tests, review, heal work,
diff, and cost totals per persona, model and day. Plain data; templates only lay it out."""

from __future__ import annotations

import subprocess  # nosec B404 - git diff with a fixed argv
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from council.render import HEAL_KINDS  # the heal events `council show` renders too
from council.store import Store, schema

DIFF_LIMIT = 200_000  # characters of a diff shown on a page


@dataclass
class StepRow:
    name: str
    status: str
    persona: str = ""
    models: list[str] = field(default_factory=list)
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    duration_s: float | None = None


@dataclass
class RunPage:
    steps: list[StepRow]
    tests: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    heal: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    last_seq: int
    diff: str


def run_page(store: Store, run_id: str, repo: str, branch: str | None) -> RunPage:
    events = store.events(run_id)
    rows: dict[str, StepRow] = {}
    for step in store.steps(run_id):
        end = step.finished_at if step.finished_at is not None else time.time()
        rows[step.name] = StepRow(
            name=step.name, status=step.status, duration_s=max(0.0, end - step.started_at)
        )
    for event in events:
        if event.kind == "step_started" and event.step in rows and event.persona:
            rows[event.step].persona = event.persona
    for ex in store.exchanges(run_id):
        row = rows.get(ex.step or "")
        if row is None:
            continue
        row.persona = row.persona or (ex.persona or "")
        if ex.model not in row.models:
            row.models.append(ex.model)
        row.calls += 1
        row.tokens += ex.prompt_tokens + ex.completion_tokens
        row.cost_usd += ex.cost_usd
        row.latency_ms += ex.latency_ms
    dumped = [e.model_dump(mode="json") for e in events]
    return RunPage(
        steps=list(rows.values()),
        tests=[e for e in dumped if e["kind"] == "tests_reported"],
        reviews=[e for e in dumped if e["kind"] == "review_made"],
        heal=[e for e in dumped if e["kind"] in HEAL_KINDS],
        notices=[e for e in dumped if e["kind"] == "notice" and e["level"] != "info"],
        last_seq=len(events),
        diff=branch_diff(Path(repo), branch),
    )


def branch_diff(repo: Path, branch: str | None) -> str:
    """The run's change: its branch against where it left the repository's HEAD."""
    if not branch or not (repo / ".git").exists():
        return ""

    def git(*args: str) -> str:
        return subprocess.run(  # nosec B603 B607 - fixed git argv
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        ).stdout

    base = git("merge-base", "HEAD", branch).strip()
    if not base:
        return ""
    text = git("diff", base, branch)
    return text if len(text) <= DIFF_LIMIT else text[:DIFF_LIMIT] + "\n... (cut)\n"


@dataclass
class CostTotals:
    persona: dict[str, float]
    model: dict[str, float]
    day: dict[str, float]


def cost_totals(store: Store, visible_runs: set[str]) -> CostTotals:
    """Model cost of the given runs per persona, model and day (UTC)."""
    ex = schema.exchanges
    totals: dict[str, dict[str, float]] = {k: defaultdict(float) for k in ("p", "m", "d")}
    query = select(ex.c.run_id, ex.c.persona, ex.c.model, ex.c.ts, ex.c.cost_usd)
    with store.read_connection() as conn:
        for row in conn.execute(query):
            if row.run_id not in visible_runs:
                continue
            totals["p"][row.persona or "-"] += row.cost_usd
            totals["m"][row.model] += row.cost_usd
            totals["d"][time.strftime("%Y-%m-%d", time.gmtime(row.ts))] += row.cost_usd
    return CostTotals(
        persona=dict(sorted(totals["p"].items(), key=lambda kv: -kv[1])),
        model=dict(sorted(totals["m"].items(), key=lambda kv: -kv[1])),
        day=dict(sorted(totals["d"].items())),
    )
