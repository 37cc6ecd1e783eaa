"""The service's deployment artefacts, rendered from the package templates for
examples/profile-service and checked by the real tools (the isolated hadolint, actionlint and
checkov of test_deploy_scanners, pycep-parser, python-hcl2): the generated files pass, a
mutated copy of each fails. checkov has no check for the IaC's main resource types (Container
Apps, Log Analytics, identities), so infra/service_policy.py (Bicep) and
infra/terraform_policy.py (Terraform) check their promises and are mutation-tested."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from council.deploy_config import parse_deploy_config
from council.errors import ConfigError
from council.infra.bicep_policy import BicepFile
from council.infra.service_artefacts import (
    render_artefacts,
    service_spec,
    write_artefacts,
)
from council.infra.service_policy import service_bicep_violations
from council.infra.terraform_policy import TerraformModule, service_terraform_violations
from tests.test_deploy_scanners import BOTH_TREES, CHECKOV, _actionlint, _hadolint, findings_in

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "profile-service"
WORKFLOW = ".github/workflows/deploy.yml"
BICEP = "infra/main.bicep"
TERRAFORM = ("infra/main.tf", "infra/variables.tf")


def _mutate(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}: the mutation no longer applies"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """real/ holds the artefacts as generated for the example, mutated/ a broken copy."""
    root = tmp_path_factory.mktemp("artefacts")
    shutil.copytree(EXAMPLE, root / "real", ignore=shutil.ignore_patterns("__pycache__"))
    written = write_artefacts(root / "real", render_artefacts(service_spec(root / "real")))
    assert sorted(written) == [WORKFLOW, "Dockerfile", BICEP]
    # The Terraform alternative, for a project with a database (the widest variant).
    spec = service_spec(root / "real", parse_deploy_config("iac: terraform\n"))
    tf = render_artefacts(dataclasses.replace(spec, database=True))
    assert write_artefacts(root / "real", tf) == list(TERRAFORM)
    shutil.copytree(root / "real", root / "mutated")
    # An unpinned dependency and an unpinned apt install in the image.
    _mutate(root / "mutated" / "Dockerfile", "fastapi==0.165.0", "fastapi")
    _mutate(
        root / "mutated" / "Dockerfile",
        "RUN python -m venv /opt/venv\n",
        "RUN apt-get update && apt-get install -y curl\nRUN python -m venv /opt/venv\n",
    )
    # ... running as root, without a health check.
    _mutate(root / "mutated" / "Dockerfile", "USER 10001:10001\n", "")
    _mutate(root / "mutated" / "Dockerfile", "HEALTHCHECK --interval", "# HEALTHCHECK --interval")
    _mutate(root / "mutated" / "Dockerfile", '    CMD ["python", "-c"', '#    CMD ["python", "-c"')
    # The deploy job waiting on a job that does not exist, with every permission.
    _mutate(root / "mutated" / WORKFLOW, "needs: test\n", "needs: tests\n")
    _mutate(
        root / "mutated" / WORKFLOW, "permissions:\n  contents: read\n", "permissions: write-all\n"
    )
    # Plain HTTP, no readiness probe, the environment's logs going nowhere.
    bicep = root / "mutated" / BICEP
    _mutate(bicep, "allowInsecure: false", "allowInsecure: true")
    _mutate(bicep, "type: 'Readiness'", "type: 'Startup'")
    _mutate(bicep, "scope: managedEnvironment", "scope: workspace")
    # Terraform: plain HTTP, a secret value in the file, password sign-in to the database, a
    # database without geo-redundant backup and with its checkov skip removed, no tags.
    tf = root / "mutated" / "infra" / "main.tf"
    _mutate(tf, "allow_insecure_connections = false", "allow_insecure_connections = true")
    _mutate(
        tf,
        "      key_vault_secret_id = ",
        '      value = "s3cr3t-value"\n      key_vault_secret_id = ',
    )
    _mutate(tf, "password_auth_enabled         = false", "password_auth_enabled         = true")
    _mutate(tf, "geo_redundant_backup_enabled  = true", "geo_redundant_backup_enabled  = false")
    _mutate(tf, "  # checkov:skip=CKV2_AZURE_57:", "  # no skip:")
    _mutate(tf, "  tags                = local.tags\n}\n\nresource \"azurerm_role_assignment\"",
            "}\n\nresource \"azurerm_role_assignment\"")  # fmt: skip
    return root


@pytest.fixture(scope="module")
def checkov_results(generated: Path) -> dict[str, dict[str, set[str]]]:
    """checkov over both trees: outcome -> tree -> {check_id@file}, for failed, passed and
    skipped checks (skips as check_id@file:reason); parsing errors fail the fixture."""
    result = subprocess.run(
        [*CHECKOV, "-d", str(generated), "--framework", "bicep", "terraform", "dockerfile",
         "github_actions", "--skip-download", "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: a check failed
    reports = json.loads(result.stdout)
    out: dict[str, dict[str, set[str]]] = {
        kind: {"real": set(), "mutated": set()} for kind in ("failed", "passed", "skipped")
    }
    scanned = set()
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["check_type"]
        scanned.add(report["check_type"])
        for kind in out:
            for check in report["results"].get(f"{kind}_checks", []):
                tree, _, rel = check["file_path"].strip("/").partition("/")
                reason = check["check_result"].get("suppress_comment") or ""
                suffix = f":{reason}" if reason else ""
                out[kind][tree].add(f"{check['check_id']}@{rel}{suffix}")
    # (checkov runs no Bicep check on these resource types, so it reports no bicep section.)
    assert {"terraform", "dockerfile", "github_actions"} <= scanned
    return out


@pytest.fixture(scope="module")
def checkov_failed(checkov_results: dict[str, dict[str, set[str]]]) -> dict[str, set[str]]:
    return checkov_results["failed"]


def test_spec_of_the_example():
    spec = service_spec(EXAMPLE)
    assert (spec.name, spec.app, spec.sources, spec.pythonpath) == (
        "profile-service",
        "app.main:app",
        ("app",),
        "/app",
    )
    # The project does not declare a server: the one the local target uses is added, pinned.
    assert spec.requirements == ("fastapi==0.165.0", "httpx2==2.16.2", "uvicorn==0.54.0")
    assert spec.test_requirements[-1] == "pytest==9.2.0"


def test_dockerfile_is_multi_stage_pinned_non_root_with_a_healthcheck(generated: Path):
    text = (generated / "real" / "Dockerfile").read_text(encoding="utf-8")
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == [
        "FROM python:3.11.14-slim-bookworm AS build",
        "FROM python:3.11.14-slim-bookworm AS runtime",
    ]
    assert "USER 10001:10001" in text and "http://127.0.0.1:8000/health" in text
    assert 'CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]' in text
    assert "COPY --chown=root:root app /app/app" in text


def test_hadolint_passes_the_generated_dockerfile(generated: Path):
    assert _hadolint(generated / "real" / "Dockerfile") == (0, [])


def test_hadolint_fails_the_mutated_dockerfile(generated: Path):
    code, findings = _hadolint(generated / "mutated" / "Dockerfile")
    assert code != 0
    assert {"DL3013", "DL3008"} <= {f["code"] for f in findings}


def test_workflow_uses_oidc_and_no_secret(generated: Path):
    text = (generated / "real" / WORKFLOW).read_text(encoding="utf-8")
    assert "secrets." not in text
    workflow = yaml.safe_load(text)
    deploy = workflow["jobs"]["deploy"]
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    assert workflow["permissions"] == {"contents": "read"}
    steps = {step["name"]: step for step in deploy["steps"]}
    login = steps["Sign in to Azure (OIDC)"]
    assert login["uses"].startswith("azure/login@v2")
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert "az acr login" in steps["Build and push the image"]["run"]
    assert "az containerapp update" in steps["Deploy to Container Apps"]["run"]
    assert '"https://$fqdn/health"' in steps["Smoke test"]["run"]


def test_actionlint_passes_the_generated_workflow_and_fails_the_mutated_one(generated: Path):
    both = _actionlint(generated, BOTH_TREES)  # one run: its start-up is the cost
    assert "Checking 2 workflow file(s)" in both.stdout, both.stdout + both.stderr
    assert findings_in(both, "real") == [], both.stdout
    mutated = findings_in(both, "mutated")
    assert both.returncode != 0 and any('"tests"' in line for line in mutated), both.stdout


def test_src_layout_deploy_yaml_settings_and_the_users_files_kept(tmp_path: Path):
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "web.py").write_text("api = FastAPI()\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "My_Shop"\ndependencies = ["uvicorn==0.54.0", "starlette==0.50.0"]\n'
    )
    config = parse_deploy_config("health_path: /healthz\n")
    spec = service_spec(tmp_path, config)
    assert (spec.name, spec.app, spec.sources, spec.pythonpath) == (
        "my-shop",
        "shop.web:api",
        ("src",),
        "/app/src",
    )
    assert spec.requirements == ("uvicorn==0.54.0", "starlette==0.50.0")  # its own server
    files = render_artefacts(spec)
    assert "http://127.0.0.1:8000/healthz" in files["Dockerfile"]
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert "path: '/healthz'" in files[BICEP]
    assert write_artefacts(tmp_path, files) == [WORKFLOW, BICEP]
    assert (tmp_path / "Dockerfile").read_text() == "FROM scratch\n"


def test_bicep_parses_with_the_promised_resources(generated: Path):
    f = BicepFile.load(generated / "real" / BICEP)
    assert {(r.type, r.existing) for r in f.resources} == {
        ("Microsoft.ContainerRegistry/registries", True),
        ("Microsoft.OperationalInsights/workspaces", False),
        ("Microsoft.ManagedIdentity/userAssignedIdentities", False),
        ("Microsoft.Authorization/roleAssignments", False),
        ("Microsoft.App/managedEnvironments", False),
        ("Microsoft.Insights/diagnosticSettings", False),
        ("Microsoft.App/containerApps", False),
    }
    assert set(f.params) == {
        "environment", "location", "registryName", "image", "minReplicas", "maxReplicas"
    }  # fmt: skip


def test_bicep_policy_passes_the_generated_file_and_catches_the_mutations(generated: Path):
    assert service_bicep_violations(generated / "real" / BICEP) == []
    found = "\n".join(service_bicep_violations(generated / "mutated" / BICEP))
    assert "container app 'app' ingress allows plain HTTP" in found
    assert "has no Readiness probe on /health" in found
    assert "environment 'managedEnvironment' sends no logs to Log Analytics" in found
    assert "Liveness" not in found


def test_checkov_passes_the_generated_files(checkov_failed: dict[str, set[str]]):
    assert checkov_failed["real"] == set()


def test_checkov_catches_the_mutations(checkov_failed: dict[str, set[str]]):
    assert {
        "CKV_DOCKER_3@Dockerfile",  # no non-root user
        "CKV_DOCKER_2@Dockerfile",  # no HEALTHCHECK
        f"CKV2_GHA_1@{WORKFLOW}",  # write-all permissions
    } <= checkov_failed["mutated"]


def test_terraform_parses_with_the_promised_resources(generated: Path):
    module = TerraformModule.load(generated / "real" / "infra")
    assert {r.address for r in module.resources} == {
        "azurerm_log_analytics_workspace.logs",
        "azurerm_user_assigned_identity.app",
        "azurerm_role_assignment.acr_pull",
        "azurerm_role_assignment.key_vault_secrets",
        "azurerm_container_app_environment.app",
        "azurerm_postgresql_flexible_server.db",
        "azurerm_postgresql_flexible_server_active_directory_administrator.app",
        "azurerm_postgresql_flexible_server_database.app",
        "azurerm_container_app.app",
    }
    assert {"key_vault_name", "key_vault_secrets", "image", "postgres_subnet_id"} <= set(
        module.variables
    )
    # Without a database dependency the example gets no database and no network inputs.
    plain = render_artefacts(service_spec(EXAMPLE, parse_deploy_config("iac: terraform\n")))
    assert set(plain) == {"Dockerfile", WORKFLOW, *TERRAFORM}
    assert "postgresql" not in plain["infra/main.tf"]
    assert "postgres_subnet_id" not in plain["infra/variables.tf"]


def test_a_database_dependency_brings_the_postgres_server(tmp_path: Path):
    shutil.copytree(EXAMPLE, tmp_path / "svc", ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = tmp_path / "svc" / "pyproject.toml"
    _mutate(pyproject, '"fastapi==0.165.0",', '"fastapi==0.165.0", "SQLAlchemy==2.0.44",')
    spec = service_spec(tmp_path / "svc", parse_deploy_config("iac: terraform\n"))
    assert spec.database
    assert (
        'resource "azurerm_postgresql_flexible_server" "db"'
        in render_artefacts(spec)["infra/main.tf"]
    )


def test_unparsable_terraform_is_a_clear_error(tmp_path: Path):
    (tmp_path / "main.tf").write_text('resource "azurerm_container_app" "app" {\n  name = \n')
    with pytest.raises(ValueError, match="main.tf: does not parse"):
        TerraformModule.load(tmp_path)
    with pytest.raises(ValueError, match="no .tf file"):
        TerraformModule.load(tmp_path / "nothing")


def test_terraform_policy_passes_the_generated_files_and_catches_the_mutations(generated: Path):
    assert service_terraform_violations(generated / "real" / "infra") == []
    found = "\n".join(service_terraform_violations(generated / "mutated" / "infra"))
    assert "azurerm_container_app.app ingress allows plain HTTP" in found
    assert "secret '${secret.value}' that is not a Key Vault reference" in found
    assert "azurerm_postgresql_flexible_server.db allows password sign-in" in found
    assert "azurerm_user_assigned_identity.app lacks tags Environment, Owner" in found
    assert "Readiness" not in found


def test_checkov_runs_terraform_checks_and_every_skip_has_a_reason(
    checkov_results: dict[str, dict[str, set[str]]],
):
    passed = {c.split("@")[0] for c in checkov_results["passed"]["real"] if "main.tf" in c}
    assert "CKV_AZURE_136" in passed  # the database's geo-redundant backups
    skipped = [c for c in checkov_results["skipped"]["real"] if "main.tf" in c]
    assert [s.split("@")[0] for s in skipped] == ["CKV2_AZURE_57"]
    for skip in skipped:
        assert len(skip.partition(":")[2].strip()) >= 20, skip
    failed = checkov_results["failed"]["mutated"]
    assert {"CKV_AZURE_136@infra/main.tf", "CKV2_AZURE_57@infra/main.tf"} <= failed


def test_unknown_iac_is_refused():
    spec = dataclasses.replace(service_spec(EXAMPLE), iac="pulumi")
    with pytest.raises(ConfigError, match="iac: pulumi is not generated"):
        render_artefacts(spec)
