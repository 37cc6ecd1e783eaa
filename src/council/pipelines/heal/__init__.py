"""`council heal`: the quality gates made green again, one reviewed fix at a time.

gates.py plans and runs the gates; recoveries.py holds the fixes that need no model;
patching.py the Builder patch and its checks; state.py what carries between iterations;
flow.py the heal as a flow on the run lifecycle (iterations as resumable steps); dry.py the
dry run. What a heal did is read from its events by council.heal_report.
"""

from .dry import dry_run
from .flow import NO_PROGRESS_LIMIT, HealFlow
from .gates import BUILTIN_GATES, GateSlot, default_gates, heal_title, plan_gates, trimmed_log
from .patching import precheck
from .state import HealState

__all__ = [
    "BUILTIN_GATES",
    "NO_PROGRESS_LIMIT",
    "GateSlot",
    "HealFlow",
    "HealState",
    "default_gates",
    "dry_run",
    "heal_title",
    "plan_gates",
    "precheck",
    "trimmed_log",
]
