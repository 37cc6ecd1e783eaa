"""The Azure CLI strategy's plan: each resource operation as the exact `az` argv that will run,
with the argv that undoes it (nothing is run here)."""

from __future__ import annotations

from pathlib import Path

from council.cloud.actions import Action, Plan
from council.cloud.intent import CloudIntent
from council.cloud.strategies.base import Operation, operations
from council.cloud.target import CloudTarget


def auth_flags(target: CloudTarget, account: str) -> list[str]:
    if target.local:
        return []  # the connection string is in az's environment
    return ["--account-name", account, "--auth-mode", "login"]


def az_plan(intent: CloudIntent, target: CloudTarget, base: Path) -> Plan:
    """The az commands that carry out `intent` on `target`, in order, with their undos."""
    plan = Plan("azure-cli", [])
    for op in operations(intent, target, base):
        _add(plan, op, target)
    return plan


def _add(plan: Plan, op: Operation, target: CloudTarget) -> None:
    p, out = op.params, ["--output", "json"]
    auth = auth_flags(target, op.params.get("account") or "")
    if op.kind == "resource_group":
        if target.local:
            plan.notes.append(f"resource group {op.name}: the emulator has none; nothing to do")
            return
        if op.verb == "create":
            plan.actions.append(
                Action(
                    f"create-group:{op.name}",
                    f"create resource group {op.name} in {p['region']} (reused if it exists)",
                    {
                        "argv": [
                            "az",
                            "group",
                            "create",
                            "--name",
                            op.name,
                            "--location",
                            p["region"],
                            *out,
                        ],
                        "exists": ["az", "group", "exists", "--name", op.name],
                    },
                    creates=f"resource_group:{op.name}",
                    undo={"argv": ["az", "group", "delete", "--name", op.name, "--yes"]},
                    reuse_existing=True,
                )
            )
        elif op.verb == "delete":
            plan.actions.append(
                Action(
                    f"delete-group:{op.name}",
                    f"delete resource group {op.name} and everything in it",
                    {"argv": ["az", "group", "delete", "--name", op.name, "--yes"]},
                )
            )
        return
    if op.kind == "storage_account":
        if target.local:
            if op.verb == "create":
                plan.notes.append(
                    f"storage account {op.name}: the emulator's account stands for it "
                    "(checked, not created)"
                )
                plan.actions.append(
                    Action(
                        f"check-account:{op.name}",
                        "check that the emulator's account answers",
                        {
                            "argv": [
                                "az",
                                "storage",
                                "container",
                                "list",
                                "--num-results",
                                "1",
                                *out,
                            ]
                        },
                        reuse_existing=True,
                    )
                )
            return
        group = ["--resource-group", p["resource_group"]]
        if op.verb == "create":
            argv = [
                "az", "storage", "account", "create", "--name", op.name, *group,
                "--location", p["region"], "--sku", p["sku"], "--kind", p["kind"],
                "--access-tier", p["access_tier"], "--allow-blob-public-access", "false",
                "--min-tls-version", "TLS1_2", *out,
            ]  # fmt: skip
            plan.actions.append(
                Action(
                    f"create-account:{op.name}",
                    f"create storage account {op.name} ({p['sku']}, {p['access_tier']}) "
                    f"in {p['region']}",
                    {"argv": argv},
                    creates=f"storage_account:{op.name}",
                    undo={
                        "argv": [
                            "az",
                            "storage",
                            "account",
                            "delete",
                            "--name",
                            op.name,
                            *group,
                            "--yes",
                        ]
                    },
                )
            )
            plan.checks.append(f"storage account {op.name} exists")
        elif op.verb == "delete":
            plan.actions.append(
                Action(
                    f"delete-account:{op.name}",
                    f"delete storage account {op.name} and its data",
                    {
                        "argv": [
                            "az",
                            "storage",
                            "account",
                            "delete",
                            "--name",
                            op.name,
                            *group,
                            "--yes",
                        ]
                    },
                )
            )
        return
    if op.kind == "blob_container":
        if op.verb == "create":
            private = str(p.get("public_access") or "off").lower() in (
                "off",
                "none",
                "private",
                "false",
            )
            access = "off" if private else "blob"
            plan.actions.append(
                Action(
                    f"create-container:{op.name}",
                    f"create container {op.name} (public access {access})",
                    {
                        "argv": [
                            "az",
                            "storage",
                            "container",
                            "create",
                            "--name",
                            op.name,
                            "--public-access",
                            access,
                            "--fail-on-exist",
                            *auth,
                            *out,
                        ]
                    },
                    creates=f"blob_container:{op.name}",
                    undo={
                        "argv": [
                            "az",
                            "storage",
                            "container",
                            "delete",
                            "--name",
                            op.name,
                            *auth,
                            *out,
                        ]
                    },
                )
            )
            plan.checks.append(f"container {op.name} exists, public access {access}")
        elif op.verb == "delete":
            plan.actions.append(
                Action(
                    f"delete-container:{op.name}",
                    f"delete container {op.name} and its blobs",
                    {
                        "argv": [
                            "az",
                            "storage",
                            "container",
                            "delete",
                            "--name",
                            op.name,
                            *auth,
                            *out,
                        ]
                    },
                )
            )
        else:
            plan.actions.append(
                Action(
                    f"list-container:{op.name}",
                    f"list the blobs in {op.name}",
                    {
                        "argv": [
                            "az",
                            "storage",
                            "blob",
                            "list",
                            "--container-name",
                            op.name,
                            *auth,
                            *out,
                        ]
                    },
                )
            )
        return
    if op.kind == "blob_upload" and op.verb == "create":
        container = p.get("container") or ""
        plan.actions.append(
            Action(
                f"upload:{container}/{op.name}",
                f"upload {p['file']} as {container}/{op.name}",
                {
                    "argv": [
                        "az",
                        "storage",
                        "blob",
                        "upload",
                        "--container-name",
                        container,
                        "--name",
                        op.name,
                        "--file",
                        p["file"],
                        "--no-progress",
                        *auth,
                        *out,
                    ],
                    "size": p["size"],
                },
                creates=f"blob:{container}/{op.name}",
                undo={
                    "argv": [
                        "az",
                        "storage",
                        "blob",
                        "delete",
                        "--container-name",
                        container,
                        "--name",
                        op.name,
                        *auth,
                        *out,
                    ]
                },
            )
        )
        plan.checks.append(f"blob {container}/{op.name} exists with {p['size']} bytes")
