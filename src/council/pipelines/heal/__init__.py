"""`council heal`: the quality gates made green again, one reviewed fix at a time.

gates.py plans and runs the gates; recoveries.py holds the fixes that need no model;
patching.py the Builder patch and its checks; state.py what carries between iterations;
pipeline.py the loop, as resumable steps. What a heal did is read from its events by
council.heal_report.
"""

from .gates import BUILTIN_GATES, GateSlot, default_gates, plan_gates, trimmed_log
from .patching import precheck
from .pipeline import NO_PROGRESS_LIMIT, HealOutcome, HealPipeline
from .state import HealState, HealStop

__all__ = [
    "BUILTIN_GATES",
    "NO_PROGRESS_LIMIT",
    "GateSlot",
    "HealOutcome",
    "HealPipeline",
    "HealState",
    "HealStop",
    "default_gates",
    "plan_gates",
    "precheck",
    "trimmed_log",
]
