"""The Azure CLI strategy: `az` commands built as argv (never a shell), JSON output parsed.

`az` (PyPI's azure-cli, hundreds of MB with pins of its own) is an isolated tool: found as
$COUNCIL_AZ, on PATH, or in uv's tool folder (`uv tool install azure-cli`; scripts/setup
--cloud does it). On the emulator the connection string goes to `az` in its environment
(AZURE_STORAGE_CONNECTION_STRING), never on the command line; on Azure it signs in with the
user's `az login` (`--auth-mode login`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - fixed argv, no shell
import time
from pathlib import Path
from typing import Any

from council.cloud.actions import Action, ActionResult, Plan
from council.cloud.failures import CloudFailure
from council.cloud.intent import CloudIntent
from council.cloud.strategies.azcli_plan import OUT, auth_flags, az_plan, flag_value, opt
from council.cloud.target import CloudTarget
from council.events import CommandRun, EventSink, null_sink
from council.redact import redact

TIMEOUT_S = 300.0


def find_az() -> str | None:
    explicit = os.environ.get("COUNCIL_AZ")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    found = shutil.which("az")
    if found:
        return found
    # uv's tool folder: $UV_TOOL_BIN_DIR, else $XDG_BIN_HOME, else ~/.local/bin
    bin_dir = os.environ.get("UV_TOOL_BIN_DIR") or os.environ.get("XDG_BIN_HOME")
    tool_bin = Path(bin_dir or Path.home() / ".local" / "bin") / "az"
    return str(tool_bin) if tool_bin.is_file() else None


class AzCliStrategy:
    name = "azure-cli"

    def __init__(
        self,
        target: CloudTarget,
        base: Path,
        emit: EventSink = null_sink,
        state_dir: Path | None = None,
    ) -> None:
        self.target = target
        self.base = base
        self.emit = emit
        self.state_dir = state_dir  # local target: az's own config folder, not the user's

    def unavailable(self) -> str | None:
        if find_az() is None:
            return (
                "the Azure CLI (az) is not installed: `uv tool install azure-cli` "
                "(or scripts/setup --cloud), or set COUNCIL_AZ"
            )
        return None

    def unsupported(self, intent: CloudIntent) -> str | None:
        return None

    def plan(self, intent: CloudIntent) -> Plan:
        return az_plan(intent, self.target, self.base)

    def _auth(self, account: str) -> list[str]:
        return auth_flags(self.target, account)

    # -- run ---------------------------------------------------------------------------------
    def az(self, argv: list[str]) -> Any:
        """Run one az command (argv[0] is "az"); its JSON output, or CloudFailure."""
        binary = find_az()
        if binary is None:
            raise CloudFailure("the Azure CLI (az) is not installed", category="unavailable")
        env = {
            **os.environ,
            "AZURE_CORE_COLLECT_TELEMETRY": "no",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "yes",
            "AZURE_CORE_NO_COLOR": "yes",
            "AZURE_CORE_SURVEY_MESSAGE": "no",
        }
        if self.target.local:
            env["AZURE_STORAGE_CONNECTION_STRING"] = self.target.connection_string
            if self.state_dir is not None:
                env["AZURE_CONFIG_DIR"] = str(self.state_dir)  # not the user's az profile
        started = time.monotonic()
        try:
            done = subprocess.run(  # nosec B603 - argv built above, no shell
                [binary, *argv[1:]], capture_output=True, text=True, env=env, timeout=TIMEOUT_S,
                check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            self._report(argv, None, time.monotonic() - started, "", timed_out=True)
            raise CloudFailure(
                f"`az {argv[1]} ...` timed out after {TIMEOUT_S:.0f}s",
                category="transient",
                transient=True,
            ) from exc
        self._report(argv, done.returncode, time.monotonic() - started, done.stderr or done.stdout)
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip() or f"az exited {done.returncode}"
            raise CloudFailure(redact(message))
        text = done.stdout.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # `az group exists` prints a bare true/false

    def _report(
        self,
        argv: list[str],
        code: int | None,
        seconds: float,
        output: str,
        timed_out: bool = False,
    ) -> None:
        self.emit(
            CommandRun(
                argv=[redact(a) for a in argv], exit_code=code, duration_s=round(seconds, 3),
                timed_out=timed_out, output_tail=redact(output[-2000:]),
            )
        )  # fmt: skip

    def run(self, action: Action, *, resumed: bool = False) -> ActionResult:
        check = action.call.get("exists")
        if check is not None and self.az(check) in (True, "true"):
            return ActionResult(action.id, False, {"existed": True})
        try:
            output = self.az(action.call["argv"])
        except CloudFailure as failure:
            if resumed and action.creates and failure.category == "name_taken":
                return ActionResult(action.id, True, {"existed_after_restart": True})
            raise CloudFailure(f"{action.description}: {failure.message}") from failure
        return ActionResult(action.id, action.creates is not None, output)

    def validate(self, intent: CloudIntent, plan: Plan) -> list[str]:
        problems: list[str] = []
        listed: dict[str, dict[str, int]] = {}
        for action in plan.actions:
            argv = action.call.get("argv", [])
            auth = self._auth(flag_value(argv, "--account-name"))
            if argv[:4] == ["az", "storage", "container", "create"]:
                name = flag_value(argv, "--name")
                shown = self.az(
                    ["az", "storage", "container", "show", opt("--name", name), *auth, *OUT]
                )
                public = (shown or {}).get("properties", {}).get("publicAccess")
                wanted = flag_value(argv, "--public-access")
                if (public or "off") != wanted:
                    problems.append(f"container {name} has public access {public!r}, not {wanted}")
            elif argv[:4] == ["az", "storage", "blob", "upload"]:
                container, blob = flag_value(argv, "--container-name"), flag_value(argv, "--name")
                if container not in listed:
                    where = opt("--container-name", container)
                    rows = self.az(["az", "storage", "blob", "list", where, *auth, *OUT]) or []
                    listed[container] = {
                        r["name"]: r.get("properties", {}).get("contentLength") for r in rows
                    }
                size = listed[container].get(blob)
                if size is None:
                    problems.append(f"blob {container}/{blob} is not there")
                elif size != action.call.get("size"):
                    problems.append(
                        f"blob {container}/{blob} has {size} bytes, not {action.call.get('size')}"
                    )
            elif argv[:4] == ["az", "storage", "account", "create"]:
                name = opt("--name", flag_value(argv, "--name"))
                group = opt("--resource-group", flag_value(argv, "--resource-group"))
                self.az(["az", "storage", "account", "show", name, group, *OUT])
        return problems

    def undo(self, action: Action) -> None:
        if not action.undo:
            return
        try:
            self.az(action.undo["argv"])
        except CloudFailure as failure:
            if failure.category != "not_found":
                raise
