"""Commands a model proposes while healing (shell lines in its ```bash blocks).

Every one is checked by the command policy (built-in rules, seed 004's list and council.yaml's
`policy.deny`) before anything runs: one forbidden command stops the heal. The allowed ones run
only once the patch around them passed review, each in the sandbox (the worktree writable, no
network unless `sandbox.network`, a time limit), and every run is kept for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.events import EventSink, null_sink
from council.fences import blocks
from council.recovery.policy import PolicyDecision, check
from council.sandbox import Limits, run

SHELL_LANGS = frozenset({"bash", "sh", "shell", "console", "zsh"})
COMMAND_TIMEOUT_S = 120.0


def proposed_commands(answer: str) -> list[str]:
    """Shell lines a model put in ```bash / ```sh blocks (comments and blank lines dropped)."""
    out: list[str] = []
    for block in blocks(answer):
        if block.lang not in SHELL_LANGS:
            continue
        for line in block.body.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                out.append(stripped.removeprefix("$ "))
    return out


@dataclass(frozen=True)
class Forbidden:
    command: str
    decision: PolicyDecision

    def render(self) -> str:
        return f"{self.command} ({self.decision.rule}: {self.decision.reason})"


def first_forbidden(commands: Sequence[str], deny: Sequence[str] = ()) -> Forbidden | None:
    """The first command the policy refuses, or None when every one may run."""
    for command in commands:
        decision = check(command, deny)
        if not decision.allowed:
            return Forbidden(command, decision)
    return None


def run_allowed(
    commands: Sequence[str],
    cwd: Path,
    *,
    deny: Sequence[str] = (),
    timeout_s: float = COMMAND_TIMEOUT_S,
    limits: Limits | None = None,
    network: bool = False,
    emit: EventSink = null_sink,
) -> list[dict[str, Any]]:
    """Run each command (checked again right here) with bash in the sandbox; stop at the first
    that fails. Returns one record per command run."""
    records: list[dict[str, Any]] = []
    for command in commands:
        decision = check(command, deny)
        if not decision.allowed:  # the caller checks first; this keeps the function safe alone
            records.append({"command": command, "ran": False, "refused": decision.rule})
            break
        result = run(
            ["bash", "-c", command],
            cwd,
            timeout_s=timeout_s,
            limits=limits,
            network=network,
            emit=emit,
        )
        records.append(
            {
                "command": command,
                "ran": True,
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "duration_s": round(result.duration_s, 3),
                "output_tail": result.tail(10),
            }
        )
        if not result.ok:
            break
    return records
