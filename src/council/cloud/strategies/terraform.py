"""The Terraform strategy: the intent as generated HCL (azurerm), parsed back with python-hcl2
before anything runs, formatted by `terraform fmt`, then `init` / `apply`; rollback is
`destroy` of the objective's own configuration and state. Runs only where `terraform` or
`tofu` is installed, and only against Azure (the azurerm provider cannot reach the emulator).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - fixed argv, no shell
from pathlib import Path
from typing import Any

from council.cloud.actions import Action, ActionResult, Plan
from council.cloud.failures import CloudFailure
from council.cloud.intent import CloudIntent
from council.cloud.strategies.base import operations
from council.cloud.target import CloudTarget
from council.redact import redact

TIMEOUT_S = 1800.0
AZURERM = "4.14.0"  # the provider version the generated configuration pins


def find_terraform() -> str | None:
    return os.environ.get("COUNCIL_TERRAFORM") or shutil.which("terraform") or shutil.which("tofu")


def _ident(name: str) -> str:
    return "r_" + "".join(c if c.isalnum() else "_" for c in name)


def _q(value: Any) -> str:
    """An HCL string literal: JSON's escapes, plus `${` and `%{` doubled so a name or a file
    called `report-${x}.csv` stays text instead of becoming a template Terraform evaluates."""
    return json.dumps(str(value)).replace("${", "$${").replace("%{", "%%{")


def render_hcl(intent: CloudIntent, target: CloudTarget, base: Path) -> str:
    """main.tf for `intent` (create only)."""
    lines = [
        "terraform {",
        "  required_providers {",
        f'    azurerm = {{ source = "hashicorp/azurerm", version = "{AZURERM}" }}',
        "  }",
        "}",
        "",
        'provider "azurerm" {',
        "  features {}",
        "  storage_use_azuread = true # data plane with Entra ID: no shared keys",
        "}",
    ]
    group_ref = ""
    account_ref = ""
    for op in operations(intent, target, base):
        p = op.params
        if op.kind == "resource_group":
            group_ref = f"azurerm_resource_group.{_ident(op.name)}"
            lines += [
                "",
                f'resource "azurerm_resource_group" "{_ident(op.name)}" {{',
                f"  name     = {_q(op.name)}",
                f"  location = {_q(p['region'])}",
                "}",
            ]
        elif op.kind == "storage_account":
            tier, replication = str(p["sku"]).split("_", 1)
            account_ref = f"azurerm_storage_account.{_ident(op.name)}"
            group = f"{group_ref}.name" if group_ref else _q(p["resource_group"])
            lines += [
                "",
                f'resource "azurerm_storage_account" "{_ident(op.name)}" {{',
                f"  name                            = {_q(op.name)}",
                f"  resource_group_name             = {group}",
                f"  location                        = {_q(p['region'])}",
                f"  account_tier                    = {_q(tier)}",
                f"  account_replication_type        = {_q(replication)}",
                f"  account_kind                    = {_q(p['kind'])}",
                f"  access_tier                     = {_q(p['access_tier'])}",
                "  allow_nested_items_to_be_public = false",
                "  shared_access_key_enabled       = false",
                '  min_tls_version                 = "TLS1_2"',
                "  blob_properties {",
                "    delete_retention_policy {",
                "      days = 7",
                "    }",
                "    container_delete_retention_policy {",
                "      days = 7",
                "    }",
                "  }",
                "}",
            ]
        elif op.kind == "blob_container":
            private = str(p.get("public_access") or "off").lower() in ("off", "none", "private")
            lines += [
                "",
                f'resource "azurerm_storage_container" "{_ident(op.name)}" {{',
                f"  name                  = {_q(op.name)}",
                f"  storage_account_id    = {account_ref}.id"
                if account_ref
                else f"  storage_account_name  = {_q(p['account'])}",
                f"  container_access_type = {_q('private' if private else 'blob')}",
                "}",
            ]
        elif op.kind == "blob_upload":
            container = p.get("container") or ""
            lines += [
                "",
                f'resource "azurerm_storage_blob" "{_ident(container + "_" + op.name)}" {{',
                f"  name                   = {_q(op.name)}",
                f"  storage_account_name   = {_q(p['account'])}",
                f"  storage_container_name = azurerm_storage_container.{_ident(container)}.name",
                '  type                   = "Block"',
                f"  source                 = {_q(p['file'])}",
                "}",
            ]
    return "\n".join(lines) + "\n"


def parse_hcl(text: str) -> dict[str, Any]:
    """python-hcl2's reading of the configuration (infra's parser: quotes removed), so a
    generator bug is caught before anything runs."""
    import tempfile

    from council.infra.terraform_policy import parse_terraform

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "main.tf"
        path.write_text(text, encoding="utf-8")
        try:
            return parse_terraform(path)
        except ValueError as exc:
            message = f"the generated Terraform does not parse: {exc}"
            raise CloudFailure(message, category="invalid") from exc


CHECKOV = ["uv", "tool", "run", "--from", "checkov==3.3.30", "checkov"]


def checkov_findings(text: str) -> list[str] | None:
    """checkov's failed checks on the configuration ("CKV_... on resource"), run as an isolated
    uv tool (its pins conflict with ours); None when uv is not there or checkov cannot run."""
    import tempfile

    if shutil.which(CHECKOV[0]) is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "main.tf").write_text(text, encoding="utf-8")
        argv = [*CHECKOV, "-d", scratch, "--framework", "terraform", "-o", "json", "--compact",
                "--quiet"]  # fmt: skip
        try:
            done = subprocess.run(  # nosec B603 - fixed argv, no shell
                argv, capture_output=True, text=True, timeout=600, check=False
            )
            report = json.loads(done.stdout or "null")
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return None
    report = report[0] if isinstance(report, list) and report else report
    if not isinstance(report, dict) or "results" not in report:
        return None
    failed = report["results"].get("failed_checks") or []
    return [f"{c['check_id']} on {c['resource']}: {c.get('check_name', '')}" for c in failed]


class TerraformStrategy:
    name = "terraform"

    def __init__(self, target: CloudTarget, base: Path, workdir: Path) -> None:
        self.target = target
        self.base = base
        self.workdir = workdir

    def unavailable(self) -> str | None:
        if find_terraform() is None:
            return "neither terraform nor tofu is installed"
        return None

    def unsupported(self, intent: CloudIntent) -> str | None:
        if self.target.local:
            return "Terraform's azurerm provider cannot reach the local emulator"
        if intent.operation != "create":
            return f"the Terraform strategy creates; it does not {intent.operation}"
        return None

    def plan(self, intent: CloudIntent) -> Plan:
        text = render_hcl(intent, self.target, self.base)
        doc = parse_hcl(text)
        resources = [name for block in doc.get("resource", []) for name in block]
        tf = ["terraform", f"-chdir={self.workdir}"]
        main = self.workdir / "main.tf"
        init = [*tf, "init", "-input=false", "-no-color"]
        return Plan(
            self.name,
            [
                Action("write-config", f"write {main}", {"file": str(main), "text": text}),
                Action("fmt", "format the configuration", {"argv": [*tf, "fmt", "-no-color"]}),
                Action("init", "download the azurerm provider", {"argv": init}),
                Action(
                    "apply",
                    f"create {', '.join(resources)}",
                    {"argv": [*tf, "apply", "-auto-approve", "-input=false", "-no-color"]},
                    creates=f"terraform:{self.workdir}",
                    undo={"argv": [*tf, "destroy", "-auto-approve", "-input=false", "-no-color"]},
                ),
            ],
            checks=["terraform state lists every planned resource"],
            notes=[f"configuration and state in {self.workdir}", *self._checkov_notes(text)],
        )  # fmt: skip

    @staticmethod
    def _checkov_notes(text: str) -> list[str]:
        findings = checkov_findings(text)
        if findings is None:
            return ["checkov did not run (uv is not installed)"]
        return [f"checkov: {len(findings)} finding(s)"] + [f"checkov: {f}" for f in findings]

    def _run(self, argv: list[str]) -> str:
        binary = find_terraform()
        if binary is None:
            raise CloudFailure("terraform is not installed", category="unavailable")
        try:
            done = subprocess.run(  # nosec B603 - argv built above, no shell
                [binary, *argv[1:]], capture_output=True, text=True, timeout=TIMEOUT_S,
                check=False, stdin=subprocess.DEVNULL, env={**os.environ, "TF_IN_AUTOMATION": "1"},
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise CloudFailure("terraform timed out", category="transient", transient=True) from exc
        if done.returncode != 0:
            raise CloudFailure(redact((done.stderr or done.stdout).strip()[-3000:]))
        return done.stdout

    def run(self, action: Action, *, resumed: bool = False) -> ActionResult:
        if "file" in action.call:
            path = Path(action.call["file"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(action.call["text"], encoding="utf-8")
            return ActionResult(action.id, False, {"wrote": str(path)})
        # apply is idempotent on its own state: a resumed apply converges, never duplicates.
        return ActionResult(
            action.id, action.creates is not None, self._run(action.call["argv"])[-2000:]
        )

    def validate(self, intent: CloudIntent, plan: Plan) -> list[str]:
        listed = set(self._run(["terraform", f"-chdir={self.workdir}", "state", "list"]).split())
        doc = parse_hcl((self.workdir / "main.tf").read_text(encoding="utf-8"))
        wanted = {
            f"{kind}.{name}"
            for block in doc.get("resource", [])
            for kind, named in block.items()
            for name in named
        }
        return [f"{address} is not in the Terraform state" for address in sorted(wanted - listed)]

    def undo(self, action: Action) -> None:
        if action.undo:
            self._run(action.undo["argv"])
