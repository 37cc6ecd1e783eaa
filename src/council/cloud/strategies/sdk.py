"""The Python SDK strategy: azure-storage-blob (and azure-identity on Azure) for the data plane:
containers and blobs. On the emulator a storage account is checked, not created; on Azure this
strategy needs the account to exist (creating one is the management plane: the CLI's job)."""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Any

from council.cloud.actions import Action, ActionResult, Plan
from council.cloud.failures import CloudFailure
from council.cloud.intent import CloudIntent
from council.cloud.strategies.base import Operation, operations
from council.cloud.target import EMULATOR_ACCOUNT, CloudTarget

TIMEOUT_S = 30


class SdkStrategy:
    name = "sdk"

    def __init__(self, target: CloudTarget, base: Path) -> None:
        self.target = target
        self.base = base
        self.account = ""  # the intent's storage account (Azure: the account URL's name)

    def unavailable(self) -> str | None:
        needed = ["azure.storage.blob"] + ([] if self.target.local else ["azure.identity"])
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:
            return (
                f"the Python SDK strategy needs {', '.join(missing)} "
                '(pip install "ai-council[cloud]")'
            )
        return None

    def unsupported(self, intent: CloudIntent) -> str | None:
        if self.target.local:
            return None
        management = [
            r.type for r in intent.resources if r.type in ("resource_group", "storage_account")
        ]
        if intent.operation in ("create", "delete") and management:
            return (
                f"the SDK strategy works on containers and blobs; {', '.join(management)} "
                "is the management plane (azure-mgmt-*, not installed): the CLI does it"
            )
        return None

    # -- plan --------------------------------------------------------------------------------
    def plan(self, intent: CloudIntent) -> Plan:
        plan = Plan(self.name, [])
        accounts = intent.of_type("storage_account")
        self.account = accounts[0].name if accounts else ""
        for op in operations(intent, self.target, self.base):
            self._add(plan, op)
        return plan

    def _add(self, plan: Plan, op: Operation) -> None:
        acct = op.params.get("account") or ""
        if op.kind == "resource_group":
            plan.notes.append(f"resource group {op.name}: the emulator has none; nothing to do")
            return
        if op.kind == "storage_account":
            if op.verb == "create":
                plan.notes.append(
                    f"storage account {op.name}: the emulator's account {EMULATOR_ACCOUNT} "
                    "stands for it (checked, not created)"
                )
                plan.actions.append(
                    Action(
                        f"check-account:{op.name}",
                        f"check that the emulator's account answers (for {op.name})",
                        {"method": "get_account_information", "args": {}},
                        reuse_existing=True,
                    )
                )
            return
        if op.kind == "blob_container":
            verbs = {
                "create": ("create_container", "delete_container"),
                "delete": ("delete_container", None),
                "list": ("list_blobs", None),
                "show": ("get_container_properties", None),
            }
            method, undo = verbs[op.verb]
            args = {"container": op.name}
            if op.verb == "create":
                private = str(op.params.get("public_access") or "off").lower() in (
                    "off",
                    "none",
                    "private",
                    "false",
                )
                args["public_access"] = None if private else "blob"
                plan.checks.append(f"container {op.name} exists" + (", private" if private else ""))
            plan.actions.append(
                Action(
                    f"{op.verb}-container:{op.name}",
                    f"{op.verb} container {op.name} in {acct or EMULATOR_ACCOUNT}",
                    {"method": method, "args": args},
                    creates=f"blob_container:{op.name}" if op.verb == "create" else None,
                    undo={"method": undo, "args": {"container": op.name}} if undo else None,
                )
            )
            return
        if op.kind == "blob_upload" and op.verb == "create":
            container = op.params.get("container") or ""
            args = {
                "container": container,
                "blob": op.name,
                "file": op.params["file"],
                "size": op.params["size"],
            }
            plan.checks.append(f"blob {container}/{op.name} exists with {op.params['size']} bytes")
            plan.actions.append(
                Action(
                    f"upload:{container}/{op.name}",
                    f"upload {op.params['file']} as {container}/{op.name}",
                    {"method": "upload_blob", "args": args},
                    creates=f"blob:{container}/{op.name}",
                    undo={
                        "method": "delete_blob",
                        "args": {"container": container, "blob": op.name},
                    },
                )
            )

    # -- run ---------------------------------------------------------------------------------
    @cached_property
    def _service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        options = {"connection_timeout": TIMEOUT_S, "read_timeout": TIMEOUT_S, "retry_total": 0}
        if self.target.local:
            return BlobServiceClient.from_connection_string(
                self.target.connection_string, **options
            )
        from azure.identity import DefaultAzureCredential

        url = self.target.account_url(self.account)
        return BlobServiceClient(url, credential=DefaultAzureCredential(), **options)

    def run(self, action: Action, *, resumed: bool = False) -> ActionResult:
        from azure.core.exceptions import AzureError, ResourceExistsError

        method, args = action.call["method"], dict(action.call.get("args", {}))
        try:
            output = self._call(method, args)
        except ResourceExistsError as exc:
            if resumed and action.creates:
                # It started before and the kill came after Azure made it: it is ours.
                return ActionResult(action.id, True, {"existed_after_restart": True})
            raise CloudFailure(
                f"{action.description}: {_first_line(exc)}", category="name_taken"
            ) from exc
        except AzureError as exc:
            raise CloudFailure(f"{action.description}: {_first_line(exc)}") from exc
        except OSError as exc:
            raise CloudFailure(
                f"{action.description}: {exc}", category="unknown", transient=False
            ) from exc
        return ActionResult(action.id, action.creates is not None, output)

    def _call(self, method: str, args: dict[str, Any]) -> Any:
        service = self._service
        if method == "get_account_information":
            info = service.get_account_information()
            return {"sku_name": info.get("sku_name"), "account_kind": info.get("account_kind")}
        container = service.get_container_client(args.pop("container"))
        if method == "create_container":
            container.create_container(public_access=args.get("public_access"))
            return {"created": container.container_name}
        if method == "delete_container":
            container.delete_container()
            return {"deleted": container.container_name}
        if method == "get_container_properties":
            props = container.get_container_properties()
            return {"name": props.name, "public_access": props.public_access}
        if method == "list_blobs":
            return [{"name": b.name, "size": b.size} for b in container.list_blobs()]
        if method == "upload_blob":
            with open(args["file"], "rb") as data:
                container.upload_blob(args["blob"], data, overwrite=False)
            return {"blob": args["blob"], "size": args.get("size")}
        if method == "delete_blob":
            container.delete_blob(args["blob"])
            return {"deleted": args["blob"]}
        raise CloudFailure(f"the SDK strategy has no call {method!r}", category="invalid")

    # -- validate and undo -------------------------------------------------------------------
    def validate(self, intent: CloudIntent, plan: Plan) -> list[str]:
        from azure.core.exceptions import AzureError

        problems: list[str] = []
        listed: dict[str, dict[str, int]] = {}
        try:
            for action in plan.actions:
                method, args = action.call["method"], action.call.get("args", {})
                if method == "create_container":
                    props = self._call("get_container_properties", dict(args))
                    if props["public_access"] != args.get("public_access"):
                        access = props["public_access"]
                        problems.append(f"container {args['container']} is public ({access})")
                elif method == "upload_blob":
                    if args["container"] not in listed:  # one listing per container
                        rows = self._call("list_blobs", {"container": args["container"]})
                        listed[args["container"]] = {b["name"]: b["size"] for b in rows}
                    size = listed[args["container"]].get(args["blob"])
                    if size is None:
                        problems.append(f"blob {args['container']}/{args['blob']} is not there")
                    elif size != args["size"]:
                        where = f"{args['container']}/{args['blob']}"
                        problems.append(f"blob {where} has {size} bytes, not {args['size']}")
        except AzureError as exc:
            problems.append(f"validation could not read the account: {_first_line(exc)}")
        return problems

    def undo(self, action: Action) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        if not action.undo:
            return
        try:
            self._call(action.undo["method"], dict(action.undo.get("args", {})))
        except ResourceNotFoundError:
            pass  # already gone: what rollback wants


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
