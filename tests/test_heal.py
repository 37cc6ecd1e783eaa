"""`council heal` end to end: real git, real uv, real pytest, scripted model server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from council.config import parse_config
from council.events import Emitter
from council.pipelines.heal import HealPipeline
from council.store import Store
from tests.fakes import council_script as cs
from tests.test_tdd_flow import checkout_fingerprint

PYPROJECT = """[project]
name = "calc"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = [
]

[project.optional-dependencies]
dev = [
    "pytest==9.2.0",
]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""

TEST = """from calc import add


def test_add():
    assert add(2, 3) == 5
"""

FIX_DIFF = """The bug is in add.

```diff
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
```
"""

HOSTILE_DIFF = """```diff
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,4 @@
+import os
 def add(a, b):
-    return a - b
+    os.system(input())
+    return a + b
--- a/tests/test_calc.py
+++ b/tests/test_calc.py
@@ -1,5 +1,1 @@
 from calc import add
-
-
-def test_add():
-    assert add(2, 3) == 5
```
"""

APPROVE = json.dumps({"verdict": "approve", "summary": "fixes the operator", "comments": []})


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def make_project(dest: Path, code: str) -> Path:
    (dest / "tests").mkdir(parents=True)
    (dest / "pyproject.toml").write_text(PYPROJECT)
    (dest / "calc.py").write_text(code)
    (dest / "tests" / "test_calc.py").write_text(TEST)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return dest


@pytest.fixture
def env_cache(tmp_path_factory, monkeypatch) -> Path:
    root = tmp_path_factory.getbasetemp() / "council-cache"
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(root))
    return root


def heal(repo: Path, server, *, dry_run: bool = False, store: bool = True):
    config = parse_config(cs.council_yaml(server, **{"test_timeout_s": 120}))
    pipeline = HealPipeline(
        repo=repo,
        config=config,
        store=Store.for_repo(repo) if store else None,
        emit=Emitter(),
        max_iterations=4,
        dry_run=dry_run,
        only_gates=["install", "test"],
    )
    return pipeline.execute()


@pytest.mark.slow
def test_missing_dependency_healed_without_a_model(tmp_path, env_cache, model_server):
    repo = make_project(tmp_path / "p", "import yaml\n\n\ndef add(a, b):\n    return a + b\n")
    outcome = heal(repo, model_server)
    assert outcome.status == "green", outcome.reason
    assert model_server.requests == []
    assert "PyYAML" in _git(repo, "show", f"{outcome.branch}:pyproject.toml")
    assert outcome.backup_branch in _git(repo, "branch")
    assert Path(outcome.report_path).is_file()
    body = _git(repo, "log", "-1", "--format=%B", outcome.branch)
    assert "add_python_dependency" in body


@pytest.mark.slow
def test_failing_assertion_patched_reviewed_committed_and_remembered(
    tmp_path, env_cache, model_server
):
    repo = make_project(tmp_path / "p", "def add(a, b):\n    return a - b\n")
    model_server.script("builder", FIX_DIFF)
    model_server.script("guardian", APPROVE)
    outcome = heal(repo, model_server)
    assert outcome.status == "green", outcome.reason
    assert len(outcome.commits) == 1
    assert "a + b" in _git(repo, "show", f"{outcome.branch}:calc.py")
    assert "model_patch" in _git(repo, "log", "-1", "--format=%B", outcome.branch)
    calls = len(model_server.requests)
    # The same failure again: the remembered patch, no model call.
    second = heal(repo, model_server)
    assert second.status == "green", second.reason
    assert len(model_server.requests) == calls
    assert second.iterations[0]["recovery"]["kind"] == "memory"


@pytest.mark.slow
def test_hostile_patch_is_rejected_and_never_applied(tmp_path, env_cache, model_server):
    repo = make_project(tmp_path / "p", "def add(a, b):\n    return a - b\n")
    model_server.script("builder", HOSTILE_DIFF, HOSTILE_DIFF)
    outcome = heal(repo, model_server)
    assert outcome.status != "green"
    assert outcome.exit_code == 1
    assert outcome.commits == []
    assert model_server.requests_for("guardian") == []  # the pre-check refused it first
    assert _git(repo, "show", f"{outcome.branch}:tests/test_calc.py") == TEST
    work = repo / ".council" / "worktrees"
    for calc in work.rglob("calc.py"):
        assert "os.system" not in calc.read_text()


@pytest.mark.slow
def test_dry_run_changes_nothing(tmp_path, env_cache, model_server):
    repo = make_project(tmp_path / "p", "import yaml\n\n\ndef add(a, b):\n    return a + b\n")
    before = checkout_fingerprint(repo)
    branches = _git(repo, "branch")
    outcome = heal(repo, model_server, dry_run=True, store=False)
    assert outcome.status == "dry-run"
    assert outcome.iterations[0]["recovery"]["action"] == "add_python_dependency"
    assert checkout_fingerprint(repo) == before
    assert _git(repo, "branch") == branches
    assert not (repo / ".council").exists()
    assert model_server.requests == []


@pytest.mark.slow
def test_cli_heal_dry_run(tmp_path, env_cache, model_server):
    from typer.testing import CliRunner

    from council.cli import app

    repo = make_project(tmp_path / "p", "import yaml\n\n\ndef add(a, b):\n    return a + b\n")
    cfg = tmp_path / "council.yaml"
    cfg.write_text(cs.council_yaml(model_server))
    before = checkout_fingerprint(repo)
    args = [
        "heal",
        "--repo",
        str(repo),
        "--config",
        str(cfg),
        "--dry-run",
        "--gates",
        "install,test",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "PyYAML" in result.output, result.output
    assert checkout_fingerprint(repo) == before
    bad = CliRunner().invoke(app, [*args[:5], "--gates", "nope"])
    assert type(bad.exception).__name__ == "UsageError"  # main() maps it to exit code 2
