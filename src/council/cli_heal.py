"""`council heal`'s output: the table, `--json` and the exit code, read from the heal's events
(council.heal_report), and `council resume` of a heal."""

from __future__ import annotations

import json
from typing import Any

import typer


def finish_heal(outcome: Any, console: Any, as_json: bool) -> None:
    """Print the outcome (a table, or one JSON line after the events) and exit 0 on green."""
    from council.heal_report import HealView, print_heal

    if as_json:
        print(json.dumps({"outcome": outcome.__dict__}, default=str), flush=True)
    else:
        fields = {k: v for k, v in outcome.__dict__.items() if k != "report_path"}
        print_heal(console, HealView(**fields))
        if outcome.report_path:
            console.print(f"report: {outcome.report_path}", markup=False)
    raise typer.Exit(outcome.exit_code)


def resume_heal(record: Any, config: Any, store: Any, emit: Any) -> Any:
    """The pipeline that continues heal `record` from its last finished iteration."""
    from council.pipelines.heal import HealPipeline

    return HealPipeline.resume(run_id=record.id, config=config, store=store, emit=emit)
