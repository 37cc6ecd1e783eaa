"""`council deploy --target azure`: the dry run (files, the exact argv that would run, cost
drivers), the `az` route against a fake `az` on PATH that answers from a recorded transcript
(a fixture), and the GitHub route against a fake GitHub Actions API whose first workflow run
fails (the service imports a package nobody declared) and whose second, after the fix, passes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from council.deploy_config import parse_deploy_config
from council.infra.service_artefacts import service_spec
from council.pipelines.deploy.azure import commands, cost_drivers
from council.store import Store
from tests.deploy_fixtures import deploy_cli
from tests.fakes import council_script as cs
from tests.fakes.github_actions_server import FakeGitHubActions
from tests.fakes.model_server import ScriptedModelServer
from tests.test_target_local import _commit, _git

AZURE_YAML = (
    "target: azure\nhealth_timeout_seconds: 5\n"
    "azure:\n  route: {route}\n  resource_group: rg-demo\n  registry: acrdemo1\n  url: {url}\n"
    "deployment:\n  max_retries: 1\n  retry_delay_seconds: 0\n"
    "  github: {{repository: octo/svc, poll_interval_seconds: 0.05, max_wait_minutes: 1}}\n"
)
# A fake `az`: records its argv, answers from the transcript in $FAKE_AZ_TRANSCRIPT.
FAKE_AZ = """#!{python}
import json, os, sys
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
for entry in json.load(open(os.environ["FAKE_AZ_TRANSCRIPT"])):
    if sys.argv[1:1 + len(entry["args"])] == entry["args"]:
        sys.stdout.write(entry.get("stdout", ""))
        sys.stderr.write(entry.get("stderr", ""))
        sys.exit(entry.get("exit", 0))
sys.stderr.write("ERROR: unexpected command\\n")
sys.exit(2)
"""


def _repo(root: Path, server: ScriptedModelServer, deploy_yaml: str) -> Path:
    repo = cs.make_repo(root / "svc")
    (repo / "deploy.yaml").write_text(deploy_yaml, encoding="utf-8")
    _commit(repo, "deploy to azure")
    (repo / "council.yaml").write_text(cs.council_yaml(server), encoding="utf-8")
    return repo


def test_dry_run_shows_files_commands_and_cost_drivers(tmp_path, server, cache):
    repo = _repo(tmp_path, server, AZURE_YAML.format(route="az", url="https://x.example"))
    # No council.yaml: the default is the embedded model, whose file this cache does not hold.
    # A dry run asks no persona anything, so it must not need one.
    (repo / "council.yaml").unlink()
    head = _git(repo, "rev-parse", "HEAD")
    code, events, err = deploy_cli(repo, cache, "--target", "azure", "--env", "dev", "--dry-run")
    assert code == 0, err[-2000:]
    outcome = events[-1]["outcome"]
    assert outcome["status"] == "green" and outcome["reason"].startswith("dry run: nothing")
    notes = [e["message"] for e in events if e.get("kind") == "notice"]
    assert any(n.startswith("files (") and "infra/main.bicep" in n for n in notes)
    sha = _git(repo, "rev-parse", f"{outcome['branch']}")[:12]
    assert (
        "would run: az deployment group what-if --resource-group rg-demo --name "
        "profile-service-dev --template-file infra/main.bicep --parameters environment=dev "
        f"registryName=acrdemo1 image=profile-service:{sha} --no-pretty-print"
    ) in notes
    assert any(n.startswith("cost driver: Container Apps (Consumption)") for n in notes)
    with Store.for_repo(repo) as store:
        plan = store.completed_steps(outcome["run_id"])["plan"]
    assert plan["apply"][0][:4] == ["az", "deployment", "group", "create"]
    assert plan["missing"] == []
    assert _git(repo, "rev-parse", "HEAD") == head  # the user's branch is untouched


def test_terraform_commands_and_placeholders():
    config = parse_deploy_config("iac: terraform\nazure: {resource_group: rg-demo}\n")
    spec = service_spec(Path(__file__).parents[1] / "examples" / "profile-service", config)
    plan = commands(spec, config, "prod", "svc:abc")
    assert plan["preview"][0] == ["terraform", "-chdir=infra", "init", "-input=false"]
    plan_argv = plan["preview"][1]
    assert plan_argv[:5] == [
        "terraform",
        "-chdir=infra",
        "plan",
        "-input=false",
        "-out=tfplan-prod",
    ]
    assert "resource_group_name=rg-demo" in plan_argv and "registry_name=<registry>" in plan_argv
    assert plan["apply"][-1] == ["terraform", "-chdir=infra", "output", "-raw", "url"]
    assert any("Key Vault" in d for d in cost_drivers(spec))


@pytest.fixture
def fake_az(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable), encoding="utf-8")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AZ_LOG": str(tmp_path / "az.log"),
        "FAKE_AZ_TRANSCRIPT": str(tmp_path / "transcript.json"),
    }


def test_az_route_refuses_without_the_cli_or_a_sign_in(tmp_path, server, cache, fake_az):
    repo = _repo(tmp_path, server, AZURE_YAML.format(route="az", url="https://x.example"))
    no_az = {"PATH": "/usr/bin:/bin"}
    code, _, err = deploy_cli(repo, cache, "--target", "azure", env=no_az)
    assert code == 2 and "needs the Azure CLI (az), which is not installed" in err
    Path(fake_az["FAKE_AZ_TRANSCRIPT"]).write_text(
        json.dumps(
            [
                {
                    "args": ["account", "show"],
                    "exit": 1,
                    "stderr": "ERROR: Please run 'az login' to setup account.\n",
                },
            ]
        )
    )
    code, _, err = deploy_cli(repo, cache, "--target", "azure", env=fake_az)
    assert code == 2, err
    assert "not signed in" in err and "Please run 'az login'" in err and "Traceback" not in err
    with Store.for_repo(repo) as store:
        assert store.list_runs() == []  # refused before any run was recorded


def test_az_route_runs_what_if_then_create_and_checks_health(tmp_path, server, cache, fake_az):
    with FakeGitHubActions("octo/svc", tmp_path, lambda sha: ("success", "")) as app:
        repo = _repo(tmp_path, server, AZURE_YAML.format(route="az", url=f"{app.url}/app"))
        Path(fake_az["FAKE_AZ_TRANSCRIPT"]).write_text(
            json.dumps(
                [
                    {"args": ["account", "show"], "stdout": '{"name": "dev-subscription"}'},
                    {
                        "args": ["deployment", "group", "what-if"],
                        "stdout": "Resource changes: 6 to create.",
                    },
                    {
                        "args": ["deployment", "group", "create"],
                        "stdout": "https://ca-demo.example\n",
                    },
                ]
            )
        )
        code, events, err = deploy_cli(repo, cache, "--target", "azure", env=fake_az)
    assert code == 0, err[-2000:]
    ran = [json.loads(line) for line in Path(fake_az["FAKE_AZ_LOG"]).read_text().splitlines()]
    assert [argv[:3] for argv in ran] == [
        ["account", "show", "--output"],
        ["deployment", "group", "what-if"],
        ["deployment", "group", "create"],
    ]
    health = [e for e in events if e.get("kind") == "health_checked"]
    assert health and health[-1]["healthy"] and health[-1]["url"] == f"{app.url}/app/health"
    assert events[-1]["outcome"]["status"] == "green"


def test_az_route_with_skip_provision_checks_the_running_app_and_warns_of_idle_keys(
    tmp_path, server, cache, fake_az
):
    with FakeGitHubActions("octo/svc", tmp_path, lambda sha: ("success", "")) as app:
        text = AZURE_YAML.format(route="az", url=f"{app.url}/app")
        repo = _repo(tmp_path, server, text + "  skip_provision: true\n  rerun_tests: false\n")
        Path(fake_az["FAKE_AZ_TRANSCRIPT"]).write_text(
            json.dumps([{"args": ["account", "show"], "stdout": '{"name": "dev"}'}])
        )
        code, events, err = deploy_cli(repo, cache, "--target", "azure", env=fake_az)
    assert code == 0, err[-2000:]
    ran = [json.loads(line) for line in Path(fake_az["FAKE_AZ_LOG"]).read_text().splitlines()]
    assert [argv[:2] for argv in ran] == [["account", "show"]]  # no what-if, no create
    health = [e for e in events if e.get("kind") == "health_checked"]
    assert health[-1]["healthy"] and health[-1]["url"] == f"{app.url}/app/health"
    warnings = [
        e["message"] for e in events if e.get("kind") == "notice" and e["level"] == "warning"
    ]
    assert "deploy.yaml: deployment.rerun_tests: no effect in this version" in warnings
    # Without azure.url there is nothing to check: refused before anything is recorded.
    (repo / "deploy.yaml").write_text(
        text.replace(f"  url: {app.url}/app\n", "") + "  skip_provision: true\n"
    )
    _commit(repo, "no url")
    code, _, err = deploy_cli(repo, cache, "--target", "azure", env=fake_az)
    assert code == 2 and "azure.url must say where the app already runs" in err


def test_github_route_fixes_a_failing_workflow_and_waits_for_the_next(tmp_path, server, cache):
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)

    def judge(sha: str) -> tuple[str, str]:
        # The workflow's test job imports the app; it fails until PyYAML is declared.
        if "pyyaml" in fake.file_at(sha, "pyproject.toml").lower():
            return "success", ""
        return "failure", (
            "2026-11-30T01:00:00Z ==================== ERRORS ====================\n"
            "2026-11-30T01:00:00Z E   ModuleNotFoundError: No module named 'yaml'\n"
            "2026-11-30T01:00:01Z ##[error]Process completed with exit code 2.\n"
        )

    with FakeGitHubActions("octo/svc", bare, judge) as fake:
        repo = _repo(tmp_path, server, AZURE_YAML.format(route="github", url=f"{fake.url}/app"))
        main = repo / "app" / "main.py"
        main.write_text("import yaml  # settings file\n" + main.read_text(), encoding="utf-8")
        _commit(repo, "read settings from YAML")
        _git(repo, "remote", "add", "origin", str(bare))
        env = {"GITHUB_TOKEN": fake.token, "GITHUB_API_URL": fake.url}
        code, events, err = deploy_cli(repo, cache, env=env)
    assert code == 0, err[-3000:]
    polled = [
        (e["workflow_run"], e["status"], e["conclusion"])
        for e in events
        if e.get("kind") == "workflow_polled"
    ]
    assert polled == [
        (1001, "queued", None),
        (1001, "in_progress", None),
        (1001, "completed", "failure"),
        (1002, "queued", None),
        (1002, "in_progress", None),
        (1002, "completed", "success"),
    ]
    logs = next(e for e in events if e.get("kind") == "deploy_logs")
    assert "No module named 'yaml'" in logs["excerpt"]
    diagnosed = next(e for e in events if e.get("kind") == "deploy_diagnosed")
    assert (diagnosed["source"], diagnosed["category"]) == ("known", "dependency")
    recovery = next(e for e in events if e.get("kind") == "deploy_recovery")
    assert (recovery["action"], recovery["applied"]) == ("add_dependency", True)
    outcome = events[-1]["outcome"]
    assert outcome["status"] == "green" and "healthy at" in outcome["reason"]
    # Both pushes reached the remote; the fix is the branch's last commit there.
    pushed = fake.file_at(f"refs/heads/{outcome['branch']}", "pyproject.toml")
    assert "PyYAML" in pushed
    assert ("GET", "/app/health") in fake.requests
    # No model was needed: a known failure with a deterministic fix.
    assert not server.requests


def test_github_route_refuses_without_a_token(tmp_path, server, cache):
    repo = _repo(tmp_path, server, AZURE_YAML.format(route="github", url="https://x.example"))
    code, _, err = deploy_cli(repo, cache)
    assert code == 2 and "no GitHub token" in err and "Traceback" not in err
