"""The service's deployment artefacts, rendered from the package templates for
examples/profile-service and checked by the real tools (the isolated hadolint, actionlint and
checkov of test_deploy_scanners, pycep-parser): the generated files pass, a mutated copy of
each fails. checkov has no check for the Bicep's resource types (Container Apps, Log Analytics,
identities), so infra/service_policy.py checks the Bicep's promises and is mutation-tested."""

from __future__ import annotations

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
from tests.test_deploy_scanners import CHECKOV, _actionlint, _hadolint

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "profile-service"
WORKFLOW = ".github/workflows/deploy.yml"
BICEP = "infra/main.bicep"


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
    return root


@pytest.fixture(scope="module")
def checkov_failed(generated: Path) -> dict[str, set[str]]:
    """checkov over both trees: tree -> {check_id@file}; parsing errors fail the fixture."""
    result = subprocess.run(
        [*CHECKOV, "-d", str(generated), "--framework", "bicep", "dockerfile", "github_actions",
         "--skip-download", "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: a check failed
    reports = json.loads(result.stdout)
    failed: dict[str, set[str]] = {"real": set(), "mutated": set()}
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["check_type"]
        for check in report["results"].get("failed_checks", []):
            tree, _, rel = check["file_path"].strip("/").partition("/")
            failed[tree].add(f"{check['check_id']}@{rel}")
    return failed


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
    real, mutated = (_actionlint(generated / tree) for tree in ("real", "mutated"))
    assert (real.returncode, "Checking 1 workflow file(s)" in real.stdout) == (0, True), (
        real.stdout + real.stderr
    )
    assert mutated.returncode != 0 and '"tests"' in mutated.stdout, mutated.stdout


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


def test_terraform_is_refused_until_it_exists():
    spec = service_spec(EXAMPLE, parse_deploy_config("iac: terraform\n"))
    with pytest.raises(ConfigError, match="iac: terraform is not generated yet"):
        render_artefacts(spec)
