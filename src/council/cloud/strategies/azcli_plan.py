"""The Azure CLI strategy's plan: each resource operation as the exact `az` argv that will run,
with the argv that undoes it (nothing is run here).

Every option that takes a value is one word, `--flag=value` (`opt`): a value comes from the
user's words, the model's reading of them or a file name (a blob named `-report.csv`), and as
a word of its own a value starting with '-' is read by az's parser as an option (or, `--help`,
`--debug`, `--subscription=...`, changes what runs). Glued to its flag, it is only ever that
flag's value.
"""

from __future__ import annotations

from pathlib import Path

from council.cloud.actions import Action, Plan
from council.cloud.intent import CloudIntent
from council.cloud.strategies.base import Operation, operations
from council.cloud.target import CloudTarget

OUT = ["--output=json"]


def opt(flag: str, value: object) -> str:
    """One argv word: `--flag=value`, so the value can never be taken for an option."""
    return f"{flag}={value}"


def flag_value(argv: list[str], flag: str) -> str:
    """The value of `--flag=value` in argv ("" when absent)."""
    prefix = f"{flag}="
    return next((a[len(prefix) :] for a in argv if a.startswith(prefix)), "")


def auth_flags(target: CloudTarget, account: str) -> list[str]:
    if target.local:
        return []  # the connection string is in az's environment
    return [opt("--account-name", account), "--auth-mode=login"]


def az(words: str, *args: str) -> dict[str, list[str]]:
    """A call: `az` + the command's words + its arguments, as argv (never a shell line)."""
    return {"argv": ["az", *words.split(), *args]}


def az_plan(intent: CloudIntent, target: CloudTarget, base: Path) -> Plan:
    """The az commands that carry out `intent` on `target`, in order, with their undos."""
    plan = Plan("azure-cli", [])
    for op in operations(intent, target, base):
        if op.kind == "resource_group":
            _group(plan, op, target)
        elif op.kind == "storage_account":
            _account(plan, op, target)
        elif op.kind == "blob_container":
            _container(plan, op, auth_flags(target, op.params.get("account") or ""))
        elif op.kind == "blob_upload" and op.verb == "create":
            _upload(plan, op, auth_flags(target, op.params.get("account") or ""))
    return plan


def _group(plan: Plan, op: Operation, target: CloudTarget) -> None:
    if target.local:
        plan.notes.append(f"resource group {op.name}: the emulator has none; nothing to do")
        return
    remove = az("group delete", opt("--name", op.name), "--yes")
    if op.verb == "create":
        region = op.params["region"]
        call = az("group create", opt("--name", op.name), opt("--location", region), *OUT)
        call["exists"] = az("group exists", opt("--name", op.name))["argv"]
        plan.actions.append(
            Action(
                f"create-group:{op.name}",
                f"create resource group {op.name} in {region} (reused if it exists)",
                call,
                creates=f"resource_group:{op.name}",
                undo=remove,
                reuse_existing=True,
            )
        )
    elif op.verb == "delete":
        what = f"delete resource group {op.name} and everything in it"
        plan.actions.append(Action(f"delete-group:{op.name}", what, remove))


def _account(plan: Plan, op: Operation, target: CloudTarget) -> None:
    p = op.params
    if target.local:
        if op.verb == "create":
            plan.notes.append(
                f"storage account {op.name}: the emulator's account stands for it "
                "(checked, not created)"
            )
            check = az("storage container list", "--num-results=1", *OUT)
            what = "check that the emulator's account answers"
            plan.actions.append(
                Action(f"check-account:{op.name}", what, check, reuse_existing=True)
            )
        return
    name, group = opt("--name", op.name), opt("--resource-group", p["resource_group"])
    remove = az("storage account delete", name, group, "--yes")
    if op.verb == "create":
        create = az(
            "storage account create", name, group, opt("--location", p["region"]),
            opt("--sku", p["sku"]), opt("--kind", p["kind"]),
            opt("--access-tier", p["access_tier"]), "--allow-blob-public-access=false",
            "--min-tls-version=TLS1_2", *OUT,
        )  # fmt: skip
        what = f"create storage account {op.name} ({p['sku']}, {p['access_tier']}) in {p['region']}"
        plan.actions.append(
            Action(
                f"create-account:{op.name}",
                what,
                create,
                creates=f"storage_account:{op.name}",
                undo=remove,
            )  # fmt: skip
        )
        plan.checks.append(f"storage account {op.name} exists")
    elif op.verb == "delete":
        what = f"delete storage account {op.name} and its data"
        plan.actions.append(Action(f"delete-account:{op.name}", what, remove))


def _container(plan: Plan, op: Operation, auth: list[str]) -> None:
    name = opt("--name", op.name)
    remove = az("storage container delete", name, *auth, *OUT)
    if op.verb == "create":
        private = str(op.params.get("public_access") or "off").lower() in (
            "off", "none", "private", "false",
        )  # fmt: skip
        access = "off" if private else "blob"
        create = az(
            "storage container create", name, opt("--public-access", access), "--fail-on-exist",
            *auth, *OUT,
        )  # fmt: skip
        plan.actions.append(
            Action(
                f"create-container:{op.name}",
                f"create container {op.name} (public access {access})",
                create,
                creates=f"blob_container:{op.name}",
                undo=remove,
            )  # fmt: skip
        )
        plan.checks.append(f"container {op.name} exists, public access {access}")
    elif op.verb == "delete":
        what = f"delete container {op.name} and its blobs"
        plan.actions.append(Action(f"delete-container:{op.name}", what, remove))
    else:
        listing = az("storage blob list", opt("--container-name", op.name), *auth, *OUT)
        what = f"list the blobs in {op.name}"
        plan.actions.append(Action(f"list-container:{op.name}", what, listing))


def _upload(plan: Plan, op: Operation, auth: list[str]) -> None:
    container, p = op.params.get("container") or "", op.params
    names = [opt("--container-name", container), opt("--name", op.name)]
    upload = az(
        "storage blob upload", *names, opt("--file", p["file"]), "--no-progress", *auth, *OUT
    )
    upload["size"] = p["size"]
    plan.actions.append(
        Action(
            f"upload:{container}/{op.name}",
            f"upload {p['file']} as {container}/{op.name}",
            upload,
            creates=f"blob:{container}/{op.name}",
            undo=az("storage blob delete", *names, *auth, *OUT),
        )  # fmt: skip
    )
    plan.checks.append(f"blob {container}/{op.name} exists with {p['size']} bytes")
