"""`council heal`'s output: the table, `--json` and the exit code, read from the heal's events
(council.heal_report); `council resume` reaches a heal through pipelines/flows.py."""

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
