"""The deploy flow's `build_container` step: the service's deployment artefacts (Dockerfile, CI
workflow, Bicep or Terraform) generated from the package templates where the project has none,
and every one checked offline: the workflow parses as a workflow, the Dockerfile keeps the
image's promises, the IaC parses and passes its policy (infra/service_policy.py,
infra/terraform_policy.py). hadolint, actionlint and checkov run on the same templates in the
test suite (isolated tools); here the run checks what can be checked without a network.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from council.errors import ConfigError
from council.infra.service_artefacts import ServiceSpec, render_artefacts, write_artefacts

WORKFLOW = ".github/workflows/deploy.yml"
_PINNED_FROM = re.compile(r"^FROM\s+\S+:(?!latest\b)[\w.-]+(?:@sha256:\w+)?(\s|$)", re.I)


def generate(project: Path, spec: ServiceSpec) -> tuple[list[str], list[str], dict[str, str]]:
    """(written, kept, every artefact's text as it now is in `project`)."""
    files = render_artefacts(spec)
    written = write_artefacts(project, files)
    kept = [rel for rel in files if rel not in written]
    current = {rel: (project / rel).read_text(encoding="utf-8", errors="replace") for rel in files}
    return written, kept, current


def check(project: Path, spec: ServiceSpec, files: dict[str, str]) -> dict[str, list[str]]:
    """check name -> violations (plain sentences); a check that cannot run says why in its
    list's only entry, prefixed 'not checked:'."""
    out: dict[str, list[str]] = {}
    if "Dockerfile" in files:
        out["dockerfile"] = dockerfile_violations(files["Dockerfile"])
    if WORKFLOW in files:
        out["workflow"] = workflow_violations(files[WORKFLOW])
    if spec.iac == "bicep" and "infra/main.bicep" in files:
        out["bicep"] = _policy("bicep", project, spec)
    if spec.iac == "terraform" and "infra/main.tf" in files:
        out["terraform"] = _policy("terraform", project, spec)
    return out


def dockerfile_violations(text: str) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    out = []
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    if not froms:
        out.append("Dockerfile: no FROM")
    out += [
        f"Dockerfile: base image not pinned: {ln}" for ln in froms if not _PINNED_FROM.match(ln)
    ]
    users = [ln.split(None, 1)[1] for ln in lines if ln.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        out.append("Dockerfile: the image runs as root (no non-root USER last)")
    if not any(ln.upper().startswith("HEALTHCHECK ") for ln in lines):
        out.append("Dockerfile: no HEALTHCHECK")
    return out


def workflow_violations(text: str) -> list[str]:
    try:
        workflow = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"{WORKFLOW}: not YAML: {str(exc).splitlines()[0]}"]
    if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
        return [f"{WORKFLOW}: no jobs"]
    out = []
    if "secrets." in text:
        out.append(f"{WORKFLOW}: reads a repository secret (sign in with OIDC instead)")
    if workflow.get("permissions") in ("write-all", None):
        out.append(f"{WORKFLOW}: no least-privilege top-level permissions")
    jobs = workflow["jobs"]
    for name, job in jobs.items():
        needs = job.get("needs") if isinstance(job, dict) else None
        for need in [needs] if isinstance(needs, str) else needs or []:
            if need not in jobs:
                out.append(f"{WORKFLOW}: job {name} needs {need!r}, which does not exist")
    return out


def _policy(kind: str, project: Path, spec: ServiceSpec) -> list[str]:
    try:
        if kind == "bicep":
            from council.infra.service_policy import service_bicep_violations

            return service_bicep_violations(
                project / "infra" / "main.bicep", health_path=spec.health_path
            )
        from council.infra.terraform_policy import service_terraform_violations

        return service_terraform_violations(project / "infra", health_path=spec.health_path)
    except ConfigError as exc:  # the parser is the `deploy` extra
        return [f"not checked: {exc.message}"]
    except ValueError as exc:
        return [str(exc)]


def findings(checks: dict[str, list[str]]) -> list[str]:
    """The violations that count (a check that could not run is a notice, not a finding)."""
    return [v for found in checks.values() for v in found if not v.startswith("not checked:")]
