"""The MCP strategy: the intent carried out through an MCP server's tools, found by discovery.

A tool is chosen for an operation by the words of its name (`storage_container_create`,
`azmcp-storage-blob-upload`, ...) and given the arguments its input schema names (account,
container, blob, public access, content). An operation with no tool, or a tool that needs an
argument council cannot fill, makes the strategy unsupported for the intent, before anything
runs. The server is started read-only (its `read_only_args`) when the objective writes nothing.
"""

from __future__ import annotations

import base64
import importlib.util
import re
from pathlib import Path
from typing import Any

from council.cloud.actions import Action, ActionResult, Plan
from council.cloud.failures import CloudFailure
from council.cloud.intent import CloudIntent
from council.cloud.mcp_client import McpClient, McpError, McpServer, ToolInfo
from council.cloud.strategies.base import Operation, operations
from council.cloud.target import CloudTarget

# operation -> the words a tool's name must hold
WORDS = {
    ("create", "blob_container"): ("container", "create"),
    ("delete", "blob_container"): ("container", "delete"),
    ("list", "blob_container"): ("blob", "list"),
    ("create", "blob_upload"): ("blob", "upload"),
    ("undo", "blob_upload"): ("blob", "delete"),
    ("undo", "blob_container"): ("container", "delete"),
}
ALIASES = {
    "account": ("account", "account_name", "storage_account", "accountName"),
    "container": ("container", "container_name", "containerName"),
    "blob": ("blob", "blob_name", "blobName"),
    "public_access": ("public_access", "publicAccess"),
    "content": ("content_base64", "contentBase64", "content", "data"),
}


def find_tool(tools: list[ToolInfo], words: tuple[str, ...]) -> ToolInfo | None:
    for tool in tools:
        parts = set(re.split(r"[_\-.\s/]+", tool.name.lower()))
        if all(word in parts for word in words):
            return tool
    return None


def fill(tool: ToolInfo, values: dict[str, Any]) -> dict[str, Any]:
    """The tool's arguments from `values`, by the names its schema uses; a required argument
    council has no value for is an McpError."""
    args: dict[str, Any] = {}
    for key, value in values.items():
        for alias in ALIASES.get(key, (key,)):
            if alias in tool.properties:
                args[alias] = value
                break
    missing = [name for name in tool.required if name not in args]
    if missing:
        raise McpError(f"tool {tool.name} needs {', '.join(missing)}, which council cannot fill")
    return args


class McpStrategy:
    name = "mcp"

    def __init__(self, target: CloudTarget, base: Path, server: McpServer | None) -> None:
        self.target = target
        self.base = base
        self.server = server
        self._client: McpClient | None = None

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("mcp") is None:
            return 'the MCP strategy needs the mcp package (pip install "ai-council[cloud]")'
        if self.server is None:
            return "no MCP server is configured (--mcp-command or --mcp-url)"
        return None

    def client(self, read_only: bool) -> McpClient:
        if self._client is None:
            assert self.server is not None  # unavailable() said so before
            self._client = McpClient(self.server, read_only=read_only)
            self._client.connect()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def unsupported(self, intent: CloudIntent) -> str | None:
        try:
            self.plan(intent)
        except McpError as exc:
            self.close()
            return str(exc)
        return None

    def plan(self, intent: CloudIntent) -> Plan:
        writes = intent.operation in ("create", "delete")
        tools = self.client(read_only=not writes).tools()
        plan = Plan(self.name, [], notes=[f"MCP server: {self.server.describe()}"])
        if not writes:
            plan.notes.append("the server was started read-only")
        for op in operations(intent, self.target, self.base):
            self._add(plan, op, tools)
        return plan

    def _add(self, plan: Plan, op: Operation, tools: list[ToolInfo]) -> None:
        if op.kind in ("resource_group", "storage_account"):
            plan.notes.append(f"{op.kind} {op.name}: expected to exist (not an MCP tool here)")
            return
        words = WORDS.get((op.verb, op.kind))
        tool = find_tool(tools, words) if words else None
        if tool is None:
            what = f"{op.verb} {op.kind.replace('_', ' ')}"
            raise McpError(f"the MCP server has no tool to {what}")
        account = op.params.get("account") or ""
        if op.kind == "blob_container":
            values = {"account": account, "container": op.name}
            if op.verb == "create":
                values["public_access"] = op.params.get("public_access") or "off"
            undo = find_tool(tools, WORDS[("undo", "blob_container")])
            plan.actions.append(
                Action(
                    f"{op.verb}-container:{op.name}",
                    f"{op.verb} container {op.name} with {tool.name}",
                    {"tool": tool.name, "arguments": fill(tool, values)},
                    creates=f"blob_container:{op.name}" if op.verb == "create" else None,
                    undo={
                        "tool": undo.name,
                        "arguments": fill(undo, {"account": account, "container": op.name}),
                    }
                    if undo and op.verb == "create"
                    else None,
                )
            )
            return
        container = op.params.get("container") or ""
        values = {"account": account, "container": container, "blob": op.name}
        args = fill(tool, {**values, "content": {"$file": op.params["file"]}})
        undo = find_tool(tools, WORDS[("undo", "blob_upload")])
        plan.actions.append(
            Action(
                f"upload:{container}/{op.name}",
                f"upload {op.params['file']} as {container}/{op.name} with {tool.name}",
                {"tool": tool.name, "arguments": args, "size": op.params["size"]},
                creates=f"blob:{container}/{op.name}",
                undo={"tool": undo.name, "arguments": fill(undo, values)} if undo else None,
            )
        )
        plan.checks.append(f"blob {container}/{op.name} exists with {op.params['size']} bytes")

    # -- run ---------------------------------------------------------------------------------
    def _call(self, call: dict[str, Any]) -> Any:
        args = {k: _expand(v) for k, v in call.get("arguments", {}).items()}
        try:
            return self.client(read_only=False).call(call["tool"], args)
        except McpError as exc:
            raise CloudFailure(str(exc)) from exc

    def run(self, action: Action, *, resumed: bool = False) -> ActionResult:
        try:
            output = self._call(action.call)
        except CloudFailure as failure:
            if resumed and action.creates and failure.category == "name_taken":
                return ActionResult(action.id, True, {"existed_after_restart": True})
            raise
        return ActionResult(action.id, action.creates is not None, output)

    def validate(self, intent: CloudIntent, plan: Plan) -> list[str]:
        tools = self.client(read_only=False).tools()
        lister = find_tool(tools, WORDS[("list", "blob_container")])
        problems: list[str] = []
        seen: dict[str, dict[str, int]] = {}
        for action in plan.actions:
            if not action.id.startswith("upload:"):
                continue
            container, blob = action.id.removeprefix("upload:").split("/", 1)
            if lister is None:
                return ["the MCP server has no tool to list blobs: nothing can be validated"]
            if container not in seen:
                listed = self._call(
                    {
                        "tool": lister.name,
                        "arguments": fill(lister, {"account": "", "container": container}),
                    }
                )
                rows = listed.get("blobs", []) if isinstance(listed, dict) else listed or []
                seen[container] = {r["name"]: r.get("size") for r in rows}
            size = seen[container].get(blob)
            if size is None:
                problems.append(f"blob {container}/{blob} is not there")
            elif size != action.call.get("size"):
                problems.append(
                    f"blob {container}/{blob} has {size} bytes, not {action.call['size']}"
                )
        return problems

    def undo(self, action: Action) -> None:
        if action.undo:
            try:
                self._call(action.undo)
            except CloudFailure as failure:
                if failure.category != "not_found":
                    raise


def _expand(value: Any) -> Any:
    """`{"$file": path}` in a planned argument: the file's bytes, base64 (read at run time, so
    the plan shows which file, not its contents)."""
    if isinstance(value, dict) and set(value) == {"$file"}:
        return base64.b64encode(Path(value["$file"]).read_bytes()).decode("ascii")
    return value
