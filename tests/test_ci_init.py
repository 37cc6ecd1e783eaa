"""`council ci init`: the workflow it writes passes actionlint (the real linter, run once on a
tree of clean and mutated copies) and our own check, in both modes; mutations are caught; an
existing file is never replaced without --force."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from council.infra.ci_workflow import WORKFLOW_PATH, WorkflowSpec, check_workflow, render_workflow
from tests.test_cli_errors import council
from tests.test_deploy_scanners import _actionlint

WORKFLOWS = Path(".github") / "workflows"


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} not in the workflow: the mutation no longer applies"
    return text.replace(old, new, 1)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Both modes written by the real command into one repository each."""
    texts = {}
    for mode, extra in (("server", []), ("job", ["--secret", "OPENAI_API_KEY"])):
        root = tmp_path_factory.mktemp(mode)
        done = council("ci", "init", "--mode", mode, *extra, cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "wrote .github/workflows/council.yml" in done.stdout
        texts[mode] = (root / WORKFLOW_PATH).read_text(encoding="utf-8")
    return texts


@pytest.fixture(scope="module")
def linted(written: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """actionlint's findings per file, from ONE run over clean and mutated copies."""
    root = tmp_path_factory.mktemp("lint")
    (root / WORKFLOWS).mkdir(parents=True)
    files = {
        "server.yml": written["server"],
        "job.yml": written["job"],
        # Issue text pasted into the script: a shell injection from anyone who can open an issue.
        "injected.yml": _mutate(
            written["job"],
            'council run --pr -- "$feature"',
            'council run --pr -- "${{ github.event.issue.title }}"',
        ),
        # A broken expression: an input the workflow does not declare.
        "broken.yml": _mutate(written["server"], "inputs.feature }}", "inputs.featur }}"),
    }
    for name, text in files.items():
        (root / WORKFLOWS / name).write_text(text, encoding="utf-8")
    result = _actionlint(root)
    assert "Checking 4 workflow file(s)" in result.stdout, result.stdout + result.stderr
    found = dict.fromkeys(files, "")
    for line in result.stdout.splitlines():
        match = re.match(r"\.github/workflows/([\w.]+):\d+:\d+:? (.*)", line)
        if match:
            found[match[1]] += match[2] + "\n"
    return found


def test_actionlint_passes_both_modes(linted: dict[str, str]):
    assert linted["server.yml"] == "" and linted["job.yml"] == "", linted


def test_actionlint_catches_the_injection_and_the_broken_expression(linted: dict[str, str]):
    assert "potentially untrusted" in linted["injected.yml"], linted["injected.yml"]
    assert "featur" in linted["broken.yml"], linted["broken.yml"]


def test_server_mode_submits_with_the_key_from_a_secret_and_reads_only(written: dict[str, str]):
    doc = yaml.safe_load(written["server"])
    assert doc["permissions"] == {"contents": "read"}
    assert doc[True]["workflow_dispatch"]["inputs"]["feature"]["required"] is True  # `on:`
    assert doc[True]["issues"] == {"types": ["labeled"]}
    step = doc["jobs"]["council"]["steps"][-1]
    assert step["env"]["COUNCIL_API_KEY"] == "${{ secrets.COUNCIL_API_KEY }}"
    assert step["env"]["COUNCIL_SERVER"] == "${{ vars.COUNCIL_SERVER }}"
    assert "council submit" in step["run"] and "--follow" in step["run"]
    assert check_workflow(written["server"]) == []


def test_job_mode_checks_out_installs_and_runs(written: dict[str, str]):
    doc = yaml.safe_load(written["job"])
    assert doc["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = doc["jobs"]["council"]["steps"]
    assert [s["uses"].split("@")[0] for s in steps if "uses" in s] == [
        "actions/checkout",
        "actions/setup-python",
    ]
    assert "pip install ai-council==" in steps[2]["run"]
    assert steps[-1]["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    assert 'council run --pr -- "$feature"' in steps[-1]["run"]
    assert check_workflow(written["job"]) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        # The key pasted into the script instead of passed through env.
        (
            "council submit --repo",
            'COUNCIL_API_KEY="${{ secrets.COUNCIL_API_KEY }}" council submit --repo',
            "expression inside the script",
        ),
        ("actions/setup-python@v5.6.0", "actions/setup-python@main", "not pinned"),
        ("permissions:\n  contents: read\n", "", "no top-level permissions"),
    ],
)
def test_our_check_catches_an_inlined_secret_an_unpinned_action_no_permissions(
    written: dict[str, str], old: str, new: str, problem: str
):
    problems = check_workflow(_mutate(written["server"], old, new))
    assert len(problems) == 1 and problem in problems[0], problems


def test_an_existing_workflow_is_kept_without_force(tmp_path: Path):
    path = tmp_path / WORKFLOW_PATH
    path.parent.mkdir(parents=True)
    path.write_text("name: mine\n", encoding="utf-8")
    refused = council("ci", "init", cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "exists already" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert path.read_text(encoding="utf-8") == "name: mine\n"
    forced = council("ci", "init", "--mode", "job", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "council run --pr" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args",
    [
        ["--mode", "cloud"],
        ["--label", "x' || true || '"],
        ["--mode", "job", "--secret", "lower-case"],
        ["--secret", "OPENAI_API_KEY"],  # server mode: the server holds the keys
    ],
)
def test_bad_options_are_usage_errors_and_write_nothing(tmp_path: Path, args: list[str]):
    done = council("ci", "init", *args, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / ".github").exists()


def test_no_label_means_workflow_dispatch_only():
    doc = yaml.safe_load(render_workflow(WorkflowSpec(label="")))
    assert set(doc[True]) == {"workflow_dispatch"}
    assert "if" not in doc["jobs"]["council"]
