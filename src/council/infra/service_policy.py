"""Checks of the generated service Bicep (templates/service/main.bicep.j2), read from the file
as pycep-parser parses it.

checkov 3.3.30 has no Bicep/ARM check for Container Apps, their environments, Log Analytics
workspaces or user-assigned identities (it scans the file and runs none), so these promises are
checked here:
- the app pulls its image with its user-assigned managed identity (no registry password);
- ingress refuses plain HTTP; liveness and readiness probes call the health path;
- the environment's logs go to the Log Analytics workspace through a diagnostic setting;
- every taggable resource carries the required tags; no secret literal is in the file.
"""

from __future__ import annotations

from pathlib import Path

from council.infra.bicep_policy import (
    BicepFile,
    _get,
    _refers_to,
    secret_text_violations,
    tag_violations,
)

APP = "Microsoft.App/containerApps"
ENVIRONMENT = "Microsoft.App/managedEnvironments"
WORKSPACE = "Microsoft.OperationalInsights/workspaces"
DIAGNOSTICS = "Microsoft.Insights/diagnosticSettings"


def service_bicep_violations(path: Path, *, health_path: str = "/health") -> list[str]:
    f = BicepFile.load(path)
    out = tag_violations(path)
    out += secret_text_violations(path, path.read_text(encoding="utf-8"))
    apps = [r for r in f.resources if r.type == APP]
    if not apps:
        out.append(f"{path.name}: no container app")
    for app in apps:
        where = f"{path.name}: container app '{app.symbol}'"
        if "UserAssigned" not in str(_get(app.body, "identity", "type") or ""):
            out.append(f"{where} has no user-assigned identity")
        config = _get(app.body, "properties", "configuration") or {}
        for registry in config.get("registries") or []:
            if "passwordSecretRef" in registry or "username" in registry:
                out.append(f"{where} pulls its image with a registry password")
            elif not registry.get("identity"):
                out.append(f"{where} pulls its image without the managed identity")
        if _get(config, "ingress", "allowInsecure") is not False:
            out.append(f"{where} ingress allows plain HTTP (allowInsecure is not false)")
        containers = _get(app.body, "properties", "template", "containers") or []
        probes = {
            probe.get("type")
            for container in containers
            for probe in container.get("probes") or []
            if _get(probe, "httpGet", "path") == health_path
        }
        for kind in ("Liveness", "Readiness"):
            if kind not in probes:
                out.append(f"{where} has no {kind} probe on {health_path}")
    workspaces = [r.symbol for r in f.resources if r.type == WORKSPACE]
    for env in (r for r in f.resources if r.type == ENVIRONMENT):
        logged = any(
            r.type == DIAGNOSTICS
            and r.body.get("scope") == env.symbol
            and any(
                _refers_to(_get(r.body, "properties", "workspaceId"), w, "id") for w in workspaces
            )
            for r in f.resources
        )
        if not logged:
            out.append(f"{path.name}: environment '{env.symbol}' sends no logs to Log Analytics")
    return out
