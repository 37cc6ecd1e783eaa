"""The azure target of the deploy flow: Azure Container Apps through the generated IaC.

- `--dry-run`: the generated files, the exact commands that would run (argv lists: `az
  deployment group what-if` then `create` for Bicep, `terraform init / plan` then `apply` for
  Terraform) and what the resources cost money for. Nothing is run, nothing reaches Azure.
- route `az` (deploy.yaml `azure.route: az`): this machine runs the preview, then the
  deployment, with the Azure CLI (signed in already: checked before the run starts), reads the
  app's URL from the deployment's output and probes its health; an unhealthy app's logs come
  from `az containerapp logs show` and are diagnosed (known failures, then DevOps).
- route `github` (the default): pipelines/deploy/github_route.py.

Commands are argv lists run without a shell; placeholders (`<resource-group>`) stand for names
deploy.yaml does not give, and a real run refuses to start while any is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

from council.deploy_config import DeployConfig
from council.errors import UsageError
from council.events import CommandRun, DeployLogs, Notice
from council.infra.service_artefacts import ServiceSpec, service_spec
from council.pipelines.deploy import fix
from council.pipelines.deploy.facts import health_checked, known_diagnosis, model_diagnosis
from council.pipelines.deploy.known import classify_failure
from council.pipelines.engine import StepOutput
from council.pipelines.lifecycle import Stop
from council.redact import redact
from council.targets.health import probe

if TYPE_CHECKING:
    from council.pipelines.deploy.flow import DeployFlow

AZ_TIMEOUT_S = 1800  # a first Container Apps environment takes minutes
LOG_TAIL = 100


def placeholders(deploy: DeployConfig) -> dict[str, str]:
    az = deploy.azure
    return {
        "resource_group": az.resource_group or "<resource-group>",
        "registry": az.registry or "<registry>",
        "key_vault": az.key_vault or "<key-vault>",
    }


def missing_names(deploy: DeployConfig, spec: ServiceSpec) -> list[str]:
    az = deploy.azure
    names = {"azure.resource_group": az.resource_group, "azure.registry": az.registry}
    if spec.iac == "terraform":
        names["azure.key_vault"] = az.key_vault
    return [key for key, value in names.items() if not value]


def commands(
    spec: ServiceSpec, deploy: DeployConfig, env: str, image: str
) -> dict[str, list[list[str]]]:
    """{"preview": [...], "apply": [...]}: the argv lists of each phase, run in the project's
    folder. The apply phase's last command prints the app's URL."""
    names = placeholders(deploy)
    rg = names["resource_group"]
    if spec.iac == "bicep":
        params = [f"environment={env}", f"registryName={names['registry']}", f"image={image}"]
        group = ["az", "deployment", "group"]
        where = ["--resource-group", rg, "--name", f"{spec.name}-{env}"]
        source = ["--template-file", "infra/main.bicep", "--parameters", *params]
        return {
            "preview": [[*group, "what-if", *where, *source, "--no-pretty-print"]],
            "apply": [
                [
                    *group,
                    "create",
                    *where,
                    *source,
                    "--query",
                    "properties.outputs.url.value",
                    "--output",
                    "tsv",
                ],
            ],
        }
    tf = ["terraform", "-chdir=infra"]
    variables = {
        "environment": env,
        "resource_group_name": rg,
        "registry_name": names["registry"],
        "key_vault_name": names["key_vault"],
        "image": image,
    }
    if spec.database:
        variables.update(
            app_subnet_id="<app-subnet-id>",
            postgres_subnet_id="<postgres-subnet-id>",
            postgres_private_dns_zone_id="<postgres-private-dns-zone-id>",
        )
    var_args = [arg for k, v in variables.items() for arg in ("-var", f"{k}={v}")]
    return {
        "preview": [
            [*tf, "init", "-input=false"],
            [*tf, "plan", "-input=false", f"-out=tfplan-{env}", *var_args],
        ],
        "apply": [
            [*tf, "apply", "-input=false", f"tfplan-{env}"],
            [*tf, "output", "-raw", "url"],
        ],
    }


def cost_drivers(spec: ServiceSpec) -> list[str]:
    """What the generated resources are billed for (the quantities that move the bill)."""
    out = [
        "Container Apps (Consumption): vCPU-seconds and GiB-seconds beyond the monthly free "
        "grant; minReplicas 1 keeps one replica (0.5 vCPU, 1 GiB) billed around the clock "
        "(set minReplicas 0 to scale to zero when idle), plus requests beyond 2 million a month",
        "Log Analytics (PerGB2018): every GB the app and environment log, beyond the free "
        "5 GB a month; 30 days of retention are included",
        "Container Registry (existing, not created here): its SKU's daily rate and storage",
        "Outbound data transfer beyond the free allowance",
    ]
    if spec.iac == "terraform":
        out.append("Key Vault (existing): per 10,000 secret reads (the app reads at start-up)")
    if spec.database:
        out.append(
            "PostgreSQL Flexible Server: the SKU's hours (B_Standard_B1ms by default, billed "
            "even when idle), 32 GiB of storage, and geo-redundant backup storage"
        )
    return out


def azure_route(flow: DeployFlow) -> tuple[str, str]:
    spec = service_spec(flow.project, flow.deploy)
    env = flow.params.get("env") or "dev"
    image = f"{spec.name}:{_head(flow)[:12]}"
    plan = commands(spec, flow.deploy, env, image)
    if flow.params.get("dry_run"):
        out = flow.steps.run("plan", lambda: _dry_run(flow, spec, plan), detail="dry run")
        return "green", f"dry run: nothing deployed; {len(out['apply'])} command(s) would apply"
    if flow.deploy.azure.route == "github":
        from council.pipelines.deploy.github_route import github_route

        return github_route(flow, spec)
    if flow.deploy.skips("provision"):  # it runs already: health-check it where it is
        url = flow.deploy.azure.url or ""
    else:
        url = flow.steps.run("provision", lambda: _run_az(flow, plan), detail="az deployment")[
            "url"
        ]
    health = flow.steps.run("check_health", lambda: probe_url(flow, url), detail=url)
    if health["healthy"]:
        return "green", f"{spec.name} is healthy at {url}"
    flow.steps.run("analyze_errors", lambda: _diagnose(flow, spec, env, health), persona="devops")
    raise Stop("failed", f"{spec.name} is not healthy at {url}: {health['error']}")


def _head(flow: DeployFlow) -> str:
    from council.workspace.git import out as git_out

    assert flow.ws is not None
    return git_out(flow.ws.path, "rev-parse", "HEAD")


def _dry_run(flow: DeployFlow, spec: ServiceSpec, plan: dict[str, list[list[str]]]) -> StepOutput:
    built = flow.steps.done.get("build_container", {})
    files = [*built.get("written", []), *built.get("kept", [])]
    drivers = cost_drivers(spec)
    missing = missing_names(flow.deploy, spec)
    lines = [f"files ({flow.project}): {', '.join(files)}"]
    lines += [
        f"would run: {' '.join(argv)}" for phase in ("preview", "apply") for argv in plan[phase]
    ]
    lines += [f"cost driver: {d}" for d in drivers]
    if missing:
        lines.append(f"placeholders stand for deploy.yaml keys not set: {', '.join(missing)}")
    for line in lines:
        flow.emit(Notice(message=line))
    return {
        **plan,
        "files": files,
        "cost_drivers": drivers,
        "missing": missing,
        "detail": f"{len(plan['preview'])} preview and {len(plan['apply'])} apply command(s)",
    }


def require_az() -> str:
    """The signed-in Azure CLI's path; UsageError (exit 2) saying what to do otherwise."""
    az = shutil.which("az")
    if az is None:
        raise UsageError(
            "the azure route needs the Azure CLI (az), which is not installed",
            hint="Install it (scripts/setup --cloud), use `--dry-run`, or set azure.route: github.",
        )
    done = subprocess.run(
        [az, "account", "show", "--output", "json"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise UsageError(
            "the Azure CLI is not signed in: `az account show` failed: "
            + (done.stderr.strip().splitlines() or ["no output"])[-1],
            hint="Run `az login` (or set up a service principal / managed identity) and retry.",
        )
    return az


def _run(flow: DeployFlow, argv: list[str]) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    done = subprocess.run(  # nosec B603 - an argv list, never a shell
        argv, cwd=flow.project, capture_output=True, text=True, timeout=AZ_TIMEOUT_S
    )
    output = redact((done.stdout + done.stderr).strip())
    flow.emit(
        CommandRun(
            argv=argv,
            cwd=str(flow.project),
            exit_code=done.returncode,
            duration_s=round(time.monotonic() - started, 3),
            output_tail="\n".join(output.splitlines()[-40:]),
        )
    )
    return done


def _run_az(flow: DeployFlow, plan: dict[str, list[list[str]]]) -> StepOutput:
    spec = service_spec(flow.project, flow.deploy)
    missing = missing_names(flow.deploy, spec)
    if missing:
        raise Stop("failed", f"deploy.yaml does not name {', '.join(missing)}")
    last = None
    for argv in [*plan["preview"], *plan["apply"]]:
        last = _run(flow, argv)
        if last.returncode != 0:
            log = redact(last.stdout + last.stderr)
            flow.emit(DeployLogs(source=argv[0], excerpt="\n".join(log.splitlines()[-30:])))
            raise Stop("failed", f"`{' '.join(argv[:4])}` failed: {_last_line(log)}")
    url = (last.stdout.strip().splitlines() or [""])[-1] if last else ""
    return {"url": flow.deploy.azure.url or url, "detail": url}


def probe_url(flow: DeployFlow, url: str) -> StepOutput:
    report = probe(
        url.rstrip("/") + flow.deploy.health_path, timeout_s=flow.deploy.health_timeout_seconds
    )
    flow.emit(health_checked(report))
    return {"healthy": report.healthy, "error": report.error, "status_code": report.status_code}


def _diagnose(flow: DeployFlow, spec: ServiceSpec, env: str, health: dict[str, Any]) -> StepOutput:
    names = placeholders(flow.deploy)
    argv = [
        "az",
        "containerapp",
        "logs",
        "show",
        "--name",
        f"ca-{spec.name}-{env}",
        "--resource-group",
        names["resource_group"],
        "--tail",
        str(LOG_TAIL),
        "--format",
        "text",
    ]
    done = _run(flow, argv)
    log = redact(done.stdout + done.stderr)
    flow.emit(DeployLogs(source="az containerapp logs", excerpt="\n".join(log.splitlines()[-30:])))
    from council.targets.base import HealthReport

    report = HealthReport(False, "", 0, 0.0, health.get("status_code"), health.get("error", ""))
    known = classify_failure(report, log, project=flow.project)
    if known is not None:
        flow.emit(known_diagnosis(known))
        return {"known": known.as_dict(), "detail": known.cause}
    facts = {
        "service": spec.name,
        "target": "azure",
        "stage": "health",
        "command": " ".join(argv),
        "log": log,
        "files": {},
        "previous": [],
    }
    diagnosis = fix.diagnose(flow, facts)
    flow.emit(model_diagnosis(diagnosis))
    return {"diagnosis": diagnosis.model_dump(), "detail": diagnosis.cause}


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"
