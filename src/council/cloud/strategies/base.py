"""The interface every strategy implements, and the strategy-neutral expansion of an intent
into ordered resource operations (each strategy turns those into its own calls)."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from council.cloud.actions import Action, ActionResult, Plan
from council.cloud.cost import upload_files
from council.cloud.intent import CloudIntent, parameter
from council.cloud.target import CloudTarget

# Creation order; removal goes the other way.
ORDER = ("resource_group", "storage_account", "blob_container", "blob_upload")


@dataclass
class Operation:
    """One resource operation, strategy-neutral: create container 'reports' in account X."""

    verb: str  # create | delete | list | show
    kind: str  # a RESOURCE_TYPES key; blob_upload is one blob
    name: str
    params: dict[str, Any] = field(default_factory=dict)


class Strategy(Protocol):
    name: str

    def unavailable(self) -> str | None:
        """Why this strategy cannot run on this machine; None when it can."""

    def unsupported(self, intent: CloudIntent) -> str | None:
        """Why this strategy cannot carry out `intent` on its target; None when it can."""

    def plan(self, intent: CloudIntent) -> Plan:
        """The exact calls, in order, with what each creates and how to undo it."""

    def run(self, action: Action, *, resumed: bool = False) -> ActionResult:
        """Carry out one action. `resumed`: it started before and may have half-run, so a
        resource it creates that exists now was made by this objective."""

    def validate(self, intent: CloudIntent, plan: Plan) -> list[str]:
        """What is not as asked after the plan ran (empty: all there)."""

    def undo(self, action: Action) -> None:
        """Remove what `action` created."""


def _static_dir(pattern: str, base: Path) -> Path:
    """The folder before the first wildcard: blobs are named relative to it."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = Path(*fixed) if fixed else Path(".")
    return root if root.is_absolute() else base / root


def operations(intent: CloudIntent, target: CloudTarget, base: Path) -> list[Operation]:
    """The intent as ordered operations; uploads expanded to one per file."""
    ops: list[Operation] = []
    for kind in ORDER:
        for resource in intent.of_type(kind):
            params = {
                key: parameter(intent, resource, key)
                for key in (
                    "region",
                    "resource_group",
                    "sku",
                    "kind",
                    "access_tier",
                    "public_access",
                    "account",
                    "container",
                )
            }
            params["account"] = params["account"] or _account(intent)
            if kind == "blob_upload":
                patterns = parameter(intent, resource, "files") or []
                if isinstance(patterns, str):
                    patterns = [patterns]
                for pattern in patterns:
                    root = _static_dir(pattern, base)
                    for path in upload_files([pattern], base):
                        name = (
                            path.relative_to(root).as_posix()
                            if path.is_relative_to(root)
                            else path.name
                        )
                        ops.append(
                            Operation(
                                intent.operation,
                                kind,
                                name,
                                {**params, "file": str(path), "size": path.stat().st_size},
                            )
                        )
                continue
            ops.append(
                Operation(intent.operation, kind, parameter(intent, resource, "name"), params)
            )
    if intent.operation == "delete":
        ops.reverse()
    return ops


def _account(intent: CloudIntent) -> str:
    accounts = intent.of_type("storage_account")
    return parameter(intent, accounts[0], "name") if accounts else ""
