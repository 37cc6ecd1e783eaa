"""A strategy's plan as data: the actions it will take (commands or tool calls, exactly as they
will run), what each creates, and how to undo it; the results an executed action reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Action:
    """One step of a plan.

    `call` is what runs, in the strategy's terms: an argv list (Azure CLI, Terraform), a client
    method and its arguments (SDK) or an MCP tool and its arguments. `creates` names the
    resource the action makes (kind/name), so a rollback removes only what this objective made;
    `undo` is the call that removes it.
    """

    id: str  # unique in the plan, stable across runs: "create-container:reports"
    description: str
    call: dict[str, Any]
    creates: str | None = None  # "blob_container:reports"
    undo: dict[str, Any] | None = None
    reuse_existing: bool = False  # an existing resource is used, never created nor removed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        return cls(**data)


@dataclass
class Plan:
    strategy: str
    actions: list[Action]
    checks: list[str] = field(default_factory=list)  # what validation will confirm
    notes: list[str] = field(default_factory=list)  # assumptions, emulator stand-ins

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "actions": [a.as_dict() for a in self.actions],
            "checks": self.checks,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            data["strategy"],
            [Action.from_dict(a) for a in data["actions"]],
            list(data.get("checks", [])),
            list(data.get("notes", [])),
        )


@dataclass
class ActionResult:
    """What one executed action did: whether it created its resource (False when it existed
    already and was reused), and the parsed output."""

    action_id: str
    created: bool
    output: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def render_call(call: dict[str, Any]) -> str:
    """A call as a person reads it: the command line, or `tool(arguments)`."""
    if "argv" in call:
        import shlex

        return shlex.join(str(a) for a in call["argv"])
    if "tool" in call:
        import json

        return f"{call['tool']}({json.dumps(call.get('arguments', {}), sort_keys=True)})"
    if "method" in call:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(call.get("args", {}).items()))
        return f"{call['method']}({args})"
    if "file" in call:
        return f"write {call['file']}"
    return repr(call)
