"""`council deploy --target local` end to end, for real: the example with a start-up crash (it
reads an environment variable nobody set) is released, found unhealthy, its log read, DevOps
diagnoses it, Builder's fix (reviewed by Guardian) is committed on the deploy branch, and the
next release is healthy and answers; then a release whose health endpoint fails is rolled back
with the healthy one still answering. Models: the scripted server; everything else is real
(git, the env cache, uvicorn under its keeper, HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from council.cli import app
from council.cli_deploy import local_target
from council.store import Store
from tests.deploy_fixtures import deploy_cli
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer
from tests.test_cli import scrubbed_env
from tests.test_target_local import _commit, _git

CRASH = '\nimport os\nDB_URL = os.environ["PROFILE_DB_URL"]  # where the profiles are kept\n'
DEPLOY_YAML = (
    "health_timeout_seconds: 40\ndeployment:\n  max_retries: 2\n  retry_delay_seconds: 0\n"
)

DIAGNOSIS = """The service exits while it starts: app/main.py reads a variable that is not set.

```json
{"stage": "health", "category": "configuration",
 "cause": "app/main.py reads PROFILE_DB_URL at import and the variable is not set",
 "evidence": ["KeyError: 'PROFILE_DB_URL'"],
 "fix": "read PROFILE_DB_URL with a local default so the service starts without it",
 "files": ["app/main.py"], "commands": [], "retry": false}
```
"""
PATCH = """Read the variable with a default:

```diff
--- a/app/main.py
+++ b/app/main.py
@@ -26,2 +26,2 @@
 import os
-DB_URL = os.environ["PROFILE_DB_URL"]  # where the profiles are kept
+DB_URL = os.environ.get("PROFILE_DB_URL", "sqlite:///profiles.db")  # where profiles are kept
```
"""
APPROVE = json.dumps(
    {
        "verdict": "approve",
        "summary": "Starts without the variable; no test touched.",
        "comments": [],
    }
)
HEALTH_500 = '\n\n@app.get("/ready")\ndef ready() -> None:\n    raise RuntimeError("db down")\n'


def _config(server: ScriptedModelServer) -> str:
    doc = json.loads(cs.council_yaml(server))
    doc["models"].append({**doc["models"][0], "model_name": "devops"})
    doc["models"][-1]["litellm_params"] = {
        **doc["models"][0]["litellm_params"],
        "model": "openai/devops",
    }
    doc["personas"]["devops"] = {"model": "devops", "temperature": 0.0, "max_tokens": 2000}
    return json.dumps(doc)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, server: ScriptedModelServer) -> Iterator[Path]:
    repo = cs.make_repo(tmp_path_factory.mktemp("deploy-flow") / "svc")
    main = repo / "app" / "main.py"
    main.write_text(main.read_text(encoding="utf-8") + CRASH, encoding="utf-8")
    (repo / "deploy.yaml").write_text(DEPLOY_YAML, encoding="utf-8")
    _commit(repo, "profiles need a database")
    (repo / "council.yaml").write_text(_config(server), encoding="utf-8")
    yield repo
    local_target(repo).stop()


@pytest.fixture(scope="module")
def healed(repo: Path, cache: Path, server: ScriptedModelServer) -> dict:
    server.script("devops", DIAGNOSIS)
    server.script("builder", PATCH)
    server.script("guardian", APPROVE)
    head = _git(repo, "rev-parse", "HEAD")
    code, events, err = deploy_cli(repo, cache)
    assert code == 0, err[-3000:]
    return {"events": events, "head": head, "outcome": events[-1]["outcome"]}


def test_a_crash_on_start_is_diagnosed_fixed_and_deployed_healthy(repo: Path, healed: dict):
    kinds = [e.get("kind") for e in healed["events"]]
    health = [e for e in healed["events"] if e.get("kind") == "health_checked"]
    assert [h["healthy"] for h in health] == [False, True]
    assert "exited with code" in health[0]["error"]
    known, diagnosed = [e for e in healed["events"] if e.get("kind") == "deploy_diagnosed"]
    assert (known["source"], known["category"]) == ("known", "configuration")  # named first
    assert known["cause"].endswith("environment variable PROFILE_DB_URL, which is not set")
    assert (diagnosed["source"], diagnosed["category"]) == ("model", "configuration")
    assert "PROFILE_DB_URL" in diagnosed["cause"]
    recovery = next(e for e in healed["events"] if e.get("kind") == "deploy_recovery")
    assert (recovery["action"], recovery["applied"]) == ("model_patch", True)
    logs = next(e for e in healed["events"] if e.get("kind") == "deploy_logs")
    assert "KeyError: 'PROFILE_DB_URL'" in logs["excerpt"]
    assert (
        kinds.index("deploy_logs")
        < kinds.index("deploy_diagnosed")
        < kinds.index("deploy_recovery")
    )
    outcome = healed["outcome"]
    assert (outcome["status"], outcome["kind"], outcome["target"]) == ("green", "deploy", "local")

    # The service answers on its health and feature endpoints.
    url = outcome["url"]
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    assert httpx.get(url + "/api/v1/users/1").json()["username"] == "ada"

    # The fix and the generated artefacts are commits on the deploy branch; the user's
    # checkout and branch are as they were.
    assert _git(repo, "rev-parse", "HEAD") == healed["head"]
    assert 'os.environ["PROFILE_DB_URL"]' in (repo / "app" / "main.py").read_text()
    assert _git(repo, "status", "--porcelain") == "?? council.yaml"
    log = _git(repo, "log", "--format=%s", f"main..{outcome['branch']}").splitlines()
    assert log[0].startswith("fix(deploy): make the service start")
    assert log[1] == "chore(deploy): deployment artefacts"
    fixed = _git(repo, "show", f"{outcome['branch']}:app/main.py")
    assert 'os.environ.get("PROFILE_DB_URL", "sqlite:///profiles.db")' in fixed
    generated = _git(repo, "show", "--name-only", "--format=", f"{outcome['branch']}~1")
    assert set(generated.split()) == {
        "Dockerfile",
        ".github/workflows/deploy.yml",
        "infra/main.bicep",
    }

    # Every fact is in the store: the run is a deploy, its steps and events are there.
    with Store.for_repo(repo) as store:
        run = store.get_run(outcome["run_id"])
        assert (run.kind, run.status) == ("deploy", "green")
        stored = {e.kind for e in store.events(run.id)}
    assert {"service_started", "health_checked", "deploy_diagnosed", "rolled_back"} <= stored


def test_show_renders_the_deploy(repo: Path, cache: Path, healed: dict):
    shown = subprocess.run(
        [sys.executable, "-m", "council.cli", "show", healed["outcome"]["run_id"]],
        cwd=repo,
        env=scrubbed_env(cache),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "diagnosis (known, configuration)" in shown.stdout
    assert "diagnosis (model, configuration)" in shown.stdout
    assert "healthy: http://127.0.0.1:" in shown.stdout


def test_a_release_failing_health_is_rolled_back_and_the_old_one_keeps_serving(
    repo: Path, cache: Path, healed: dict, server: ScriptedModelServer
):
    good = healed["outcome"]["url"]
    # A new version: the crash fixed by hand, but its health endpoint fails, and no retries.
    main = repo / "app" / "main.py"
    text = main.read_text().replace('os.environ["PROFILE_DB_URL"]', 'os.environ.get("X", "")')
    main.write_text(text + HEALTH_500)
    (repo / "deploy.yaml").write_text(
        "health_path: /ready\nhealth_timeout_seconds: 5\n"
        "deployment:\n  max_retries: 0\n  ai_analyze_errors: false\n"
    )
    _commit(repo, "a readiness endpoint")
    code, events, err = deploy_cli(repo, cache)
    assert code == 1, err[-2000:]
    outcome = events[-1]["outcome"]
    assert outcome["status"] == "failed"
    health = [e for e in events if e.get("kind") == "health_checked"]
    assert [h["healthy"] for h in health] == [False]
    assert "HTTP 500" in health[0]["error"]
    rolled = [e for e in events if e.get("kind") == "rolled_back"]
    assert rolled and rolled[-1]["url"] == good
    assert "still serves" in outcome["reason"]
    # The old release still answers; the bad one is gone.
    assert httpx.get(good + "/health").json() == {"status": "ok"}
    status = local_target(repo).status()
    assert [i.url for i in status.live] == [good] and len(status.running) == 1
    # ai_analyze_errors: false: DevOps was asked once in this module (the first deploy).
    assert sum(r.get("model") == "devops" for r in server.requests) == 1


def test_deploys_do_not_pile_up_branches_and_worktrees(
    repo: Path, cache: Path, healed: dict, server: ScriptedModelServer
):
    """Each deploy tidies what the earlier ones left: the branch of the release that serves
    is kept (rollback), the others and every earlier worktree are removed; a superseded
    deploy cannot be resumed on a branch that is gone, and says so."""
    good = healed["outcome"]
    (repo / "deploy.yaml").write_text(
        "health_path: /ready\nhealth_timeout_seconds: 3\n"
        "deployment:\n  max_retries: 0\n  ai_analyze_errors: false\n"
    )
    main = repo / "app" / "main.py"
    if "/ready" not in main.read_text():  # run alone: the failing readiness release
        text = main.read_text().replace('os.environ["PROFILE_DB_URL"]', 'os.environ.get("X", "")')
        main.write_text(text + HEALTH_500)
    _commit(repo, "deploy settings for the pile-up check")

    def failed_deploys() -> list[str]:
        with Store.for_repo(repo) as store:
            runs = store.list_runs(limit=50)
        return [r.id for r in runs if r.kind == "deploy" and r.status == "failed"]

    # At least two failed deploys after the healthy one (the rollback test made one).
    outcomes = []
    while len(failed_deploys()) < 2 or not outcomes:
        code, events, err = deploy_cli(repo, cache)
        assert code == 1, err[-2000:]
        outcomes.append(events[-1]["outcome"])
    branches = _git(repo, "branch", "--list", "council/deploy-*", "--format=%(refname:short)")
    # The serving release's deploy and the newest one; none of the failed ones before it.
    assert sorted(branches.split()) == sorted([good["branch"], outcomes[-1]["branch"]])
    worktrees = [
        line.split(" ", 1)[1]
        for line in _git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
    assert sorted(Path(w).resolve() for w in worktrees) == sorted(
        [repo.resolve(), Path(outcomes[-1]["worktree"]).resolve()]
    )
    # What serves still serves, and rollback finds it.
    assert httpx.get(good["url"] + "/health").json() == {"status": "ok"}
    assert local_target(repo).rollback().url == good["url"]
    # A superseded deploy says why it cannot go on.
    superseded = failed_deploys()[1]
    resumed = CliRunner().invoke(app, ["resume", superseded, "--repo", str(repo), "--json"])
    last = json.loads(resumed.output.strip().splitlines()[-1])["outcome"]
    assert last["status"] == "failed" and "superseded" in last["reason"], resumed.output[-2000:]
