"""Recovery: error signatures, the known-error catalogue, deterministic recoveries, the command
policy and the memory of fixes — the deterministic half of `council heal`.

A lower layer: it builds on sandbox, toolchains and store, and never imports pipelines,
personas, the gateway or the CLI.
"""

from council.recovery.actions import (
    ActionResult,
    PortHolder,
    ProcessRegistry,
    add_npm_dependency,
    add_python_dependency,
    free_port,
    recover,
    retry_longer,
    retry_more_memory,
    who_holds_port,
)
from council.recovery.catalogue import (
    CATALOGUE,
    IMPORT_TO_DISTRIBUTION,
    ROWS,
    Match,
    Recovery,
    Row,
    classify,
    distribution_for,
    flaky_tests,
    is_flaky,
)
from council.recovery.memory import Fix, FixMemory
from council.recovery.policy import DEFAULT_DENY, PolicyDecision, check, check_argv
from council.recovery.signature import ErrorSignature, GateRun, gate_run, signature, signatures

__all__ = [
    "CATALOGUE",
    "DEFAULT_DENY",
    "IMPORT_TO_DISTRIBUTION",
    "ROWS",
    "ActionResult",
    "ErrorSignature",
    "Fix",
    "FixMemory",
    "GateRun",
    "Match",
    "PolicyDecision",
    "PortHolder",
    "ProcessRegistry",
    "Recovery",
    "Row",
    "add_npm_dependency",
    "add_python_dependency",
    "check",
    "check_argv",
    "classify",
    "distribution_for",
    "flaky_tests",
    "free_port",
    "gate_run",
    "is_flaky",
    "recover",
    "retry_longer",
    "retry_more_memory",
    "signature",
    "signatures",
    "who_holds_port",
]
