"""Gates judge the change, not the code around it: findings on changed lines count, findings
that were there before are reported apart and never force a polish pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from council.config import LanguageConfig, parse_config
from council.events import Emitter
from council.pipelines.run import TddFlow
from council.pipelines.tracks import Track
from council.store import Store
from council.toolchains import PythonToolchain
from council.toolchains.gates import Finding, GateResult, rewrite_findings, scope_to_change
from council.workspace import Workspace
from council.workspace.changes import change_scope, parse_changed_lines
from tests.fakes import council_script as cs


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _commit_all(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD").strip()


# --- the change's lines -----------------------------------------------------------------------


def test_changed_lines_from_a_zero_context_diff() -> None:
    diff = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n"
        "@@ -3 +3,2 @@\n-x = 1\n+x = 2\n+y = 3\n"
        "@@ -10,2 +11,0 @@\n-gone = 1\n-gone = 2\n"
        "diff --git a/new.py b/new.py\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,3 @@\n+a\n+b\n+c\n"
        "diff --git a/old.py b/old.py\n--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-z\n"
    )
    assert parse_changed_lines(diff) == {
        "a.py": frozenset({3, 4, 11, 12}),  # a deletion marks the lines on both sides of it
        "new.py": frozenset({1, 2, 3}),
    }


def test_scope_splits_findings_and_a_gate_failing_only_on_old_code_passes() -> None:
    old = Finding("a.py", 1, "error", "F401", "`os` imported but unused")
    new = Finding("a.py", 7, "error", "F841", "Local variable `x` is assigned to but never used")
    block = Finding("b.py", 2, "warning", "format", "would be reformatted", end_line=5)
    result = GateResult("lint", False, [old, new, block])
    scoped = scope_to_change(result, {"a.py": {7}, "b.py": {4}})
    assert scoped.findings == [new, block] and scoped.preexisting == [old]
    assert not scoped.passed
    only_old = scope_to_change(GateResult("lint", False, [old]), {"a.py": {7}})
    assert only_old.passed and only_old.preexisting == [old] and not only_old.findings
    # A finding off the changed lines that the base version did not have is the change's own.
    caused = scope_to_change(GateResult("lint", False, [old]), {"a.py": {7}}, before=[])
    assert not caused.passed and caused.findings == [old]
    broken = scope_to_change(GateResult("lint", False, [], "ruff crashed"), {"a.py": {7}})
    assert not broken.passed  # a tool that broke is not a pass


def test_a_formatter_rewrite_becomes_findings_with_the_lines_it_spans() -> None:
    current = "a = 1\nb=2\nc = 3\nd=[1,\n 2]\ne = 5\n"
    formatted = "a = 1\nb = 2\nc = 3\nd = [1, 2]\ne = 5\n\n"
    blocks = rewrite_findings("x.py", current, formatted, "ruff format")
    assert [(f.line, f.end_line) for f in blocks] == [(2, 2), (4, 5), (6, 7)]
    assert all(f.code == "format" and "ruff format" in f.message for f in blocks)


def test_an_import_left_unused_by_a_deleted_line_counts_though_its_line_did_not_change(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    (repo / "app/__init__.py").write_text("")
    (repo / "app/util.py").write_text(
        "import os\nimport sys\n\n\ndef where():\n    return os.getcwd()\n\n\nLATER = 1\n"
    )
    _git(repo, "init", "-q", "-b", "main")
    base = _commit_all(repo, "init")
    # The change stops using os (line 6) and edits line 9: `import os` (line 1) is now unused
    # because of the change; `import sys` (line 2) was unused before it.
    (repo / "app/util.py").write_text(
        "import os\nimport sys\n\n\ndef where():\n    return '.'\n\n\nLATER = 2\n"
    )
    ws = Workspace(repo=repo, path=repo, branch="main", base_sha=base)
    track = Track("python", "", PythonToolchain(), LanguageConfig())
    (lint, _format, _sast) = track.gates(repo, ["app/util.py"], Emitter(), change_scope(ws))
    assert [(f.line, f.code) for f in lint.findings] == [(1, "F401")]
    assert [(f.line, f.code) for f in lint.preexisting] == [(2, "F401")]
    assert not lint.passed
    assert "format gate off" in _format.output_tail  # no formatter configured in this project


# --- through the pipeline ---------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, env_cache) -> Path:
    """The example project with a lint finding already in app/main.py (an unused import)."""
    repo = cs.make_repo(tmp_path / "profile-service")
    main = repo / "app/main.py"
    main.write_text(main.read_text().replace('"""\n\n', '"""\n\nimport os\n', 1))
    _commit_all(repo, "an old unused import")
    return repo


def _run(repo: Path, server, events: list):
    config = parse_config(cs.council_yaml(server))
    emit = Emitter()
    emit.subscribe(events.append)
    pipeline = TddFlow.start(
        repo=repo, feature=cs.FEATURE, config=config, store=Store.for_repo(repo), emit=emit
    )
    return pipeline.execute()


@pytest.mark.slow
def test_a_preexisting_lint_finding_in_a_touched_file_does_not_trigger_a_polish_pass(
    project, model_server
):
    cs.script_happy_path(model_server)  # Builder edits app/main.py, away from `import os`
    events: list = []
    outcome = _run(project, model_server, events)

    assert outcome.status == "green", outcome.reason
    assert model_server.requests_for("artisan") == []  # no polish pass
    notes = [e.message for e in events if e.kind == "notice" and "pre-existing" in e.message]
    assert len(notes) == 1 and "app/main.py:3 F401" in notes[0]
    body = _git(project, "log", "-1", "--format=%b", outcome.branch)
    assert "lint ok" in body
    review = model_server.requests_for("guardian")[-1]["messages"][-1]["content"]
    assert "`os` imported but unused" not in review


_BUILD_WITH_UNUSED_IMPORT = cs.BUILD_REPLY.replace(
    "from app.dependencies import current_user\n",
    "import json\nfrom app.dependencies import current_user\n",
    1,
)
_POLISH_REPLY = """`json` is imported but never used; removing it.

app/main.py
```python
<<<<<<< SEARCH
import json
from app.dependencies import current_user
=======
from app.dependencies import current_user
>>>>>>> REPLACE
```
"""


@pytest.mark.slow
def test_a_finding_the_change_adds_is_polished_and_the_old_one_is_not_mentioned(
    project, model_server
):
    cs.script_happy_path(model_server, build=_BUILD_WITH_UNUSED_IMPORT)
    model_server.script("guardian", cs.REVIEW_REPLY)  # the review after the polish pass
    model_server.script("artisan", _POLISH_REPLY)
    events: list = []
    outcome = _run(project, model_server, events)

    assert outcome.status == "green", outcome.reason
    (polish,) = model_server.requests_for("artisan")
    prompt = polish["messages"][-1]["content"]
    assert "`json` imported but unused" in prompt and "`os` imported but unused" not in prompt
    main_py = _git(project, "show", f"{outcome.branch}:app/main.py")
    assert "import json" not in main_py and "import os" in main_py  # old code left alone
    assert "lint ok" in _git(project, "log", "-1", "--format=%b", outcome.branch)
