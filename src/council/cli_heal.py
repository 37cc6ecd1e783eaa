"""`council heal`'s start and output: the table, `--json` and the exit code, read from the
heal's events (council.heal_report). `council resume` of a heal goes through the flow registry
like any run; only its output is printed here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def start_heal(
    repo: Path,
    config: Any,
    store: Any,
    emit: Any,
    *,
    max_iterations: int,
    only_gates: list[str] | None,
) -> Any:
    """A new heal run, checked and recorded, ready to `execute`."""
    from council.pipelines.flows import start_flow
    from council.pipelines.heal import heal_title, plan_gates
    from council.pipelines.tracks import discover_tracks

    groups = plan_gates(discover_tracks(repo, config), list(config.gates), only_gates)
    return start_flow(
        "heal",
        repo=repo,
        feature=heal_title([s for g in groups for s in g]),
        config=config,
        store=store,
        emit=emit,
        max_iterations=max_iterations,
        only_gates=only_gates,
    )


def finish_heal(outcome: Any, console: Any, as_json: bool) -> None:
    """Print a heal's outcome (a lifecycle Outcome, or a dry run's HealView) as a table, or
    as one JSON line after the events, and exit 0 on green."""
    from council.heal_report import HealView, outcome_view, print_heal, view_dict

    view = outcome if isinstance(outcome, HealView) else outcome_view(outcome)
    if as_json:
        doc = view_dict(view) if isinstance(outcome, HealView) else outcome.as_dict()
        print(json.dumps({"outcome": doc}, default=str), flush=True)
    else:
        print_heal(console, view)
        if view.report_path:
            console.print(f"report: {view.report_path}", markup=False)
    raise typer.Exit(view.exit_code)
