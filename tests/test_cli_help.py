"""What the command line says about itself: help without typer's type artefacts, `runs` at 80
columns, and `council init` writing only the detected languages and naming the key to set."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from council.cli import PROVIDER_NAMES
from council.config import PROVIDERS
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer
from tests.test_cli import ROOT, scrubbed_env

COMMANDS = [
    [],
    ["init"],
    ["run"],
    ["resume"],
    ["heal"],
    ["runs"],
    ["show"],
    ["schema"],
    ["deploy"],
    ["deploy", "litellm-config"],
    ["models"],
    ["models", "pull"],
    ["models", "list"],
]


def _council(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=cwd,
        env=env or scrubbed_env(Path(tempfile.gettempdir()) / "council-help-cache"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "council")
def test_help_has_no_type_artefacts_and_fits_80_columns(command: list[str]) -> None:
    done = _council(*command, "--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "Usage:" in text
    for artefact in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list[", "{", "}"):
        assert artefact not in text, (artefact, text)
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_the_provider_names_in_help_are_the_presets() -> None:
    assert tuple(PROVIDER_NAMES) == tuple(PROVIDERS)


def test_runs_is_readable_at_80_columns(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    with Store.for_repo(repo) as store:
        long = "As a user, I want to view my profile: GET /api/v1/users/me/profile returns " * 2
        first = store.create_run(feature=long, repo=str(repo), config={})
        store.update_run(first, status="green", branch="council/" + "x" * 90, total_cost_usd=0.25)
        second = store.create_run(feature="gates", repo=str(repo), config={}, kind="heal")
        store.update_run(second, status="failed", branch="council/heal-20261129-2213")
    done = _council("runs", "--repo", str(repo))  # a pipe: 80 columns
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, done.stdout
    assert lines[0].split() == ["run", "when", "status", "cost", "feature", "/", "branch"]
    row = next(line for line in lines if line.startswith(first))
    assert "green" in row and "$0.2500" in row and row.endswith("…")
    assert any(line.startswith(second) and "heal: gates" in line for line in lines)
    assert any(line.strip() == "council/heal-20261129-2213" for line in lines)


# --- council init ----------------------------------------------------------------------------


def _init(repo: Path, **env: str):
    return _council("init", "--repo", str(repo), env={**scrubbed_env(repo / ".cache"), **env})


def _languages(repo: Path) -> dict:
    return yaml.safe_load((repo / "council.yaml").read_text())["languages"]


def test_init_on_a_node_project_writes_only_javascript(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "web", "scripts": {"test": "jest"}}')
    (tmp_path / "index.js").write_text("module.exports = 1;\n")
    done = _init(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "languages detected: javascript" in done.stdout
    langs = _languages(tmp_path)
    assert list(langs) == ["javascript"]
    # Only the gates a JavaScript track has, named for the tools they switch (no ruff, no bandit).
    assert langs["javascript"] == {
        "lint": "eslint",
        "format": "prettier --check",
        "typecheck": "tsc --noEmit",
    }
    assert "set OPENAI_API_KEY before running" in done.stdout


def test_init_on_a_java_project_writes_only_java(tmp_path: Path) -> None:
    (tmp_path / "pom.xml").write_text("<project/>\n")
    done = _init(tmp_path, OPENAI_API_KEY="sk-test-not-a-real-key")
    assert done.returncode == 0, done.stderr
    assert _languages(tmp_path) == {"java": {}}  # compile and test: no gate to switch
    assert "before running" not in done.stdout
    assert "read from the environment: OPENAI_API_KEY" in done.stdout


def test_init_on_a_polyglot_repository_writes_each_language_with_its_root(tmp_path: Path) -> None:
    for folder, marker, text in (
        ("src/python", "pyproject.toml", '[project]\nname = "api"\nversion = "0"\n'),
        ("src/nodejs", "package.json", '{"name": "web"}'),
        ("src/java", "pom.xml", "<project/>\n"),
    ):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / marker).write_text(text)
    done = _init(tmp_path)
    assert done.returncode == 0, done.stderr
    langs = _languages(tmp_path)
    assert {name: spec["root"] for name, spec in langs.items()} == {
        "python": "src/python",
        "javascript": "src/nodejs",
        "java": "src/java",
    }
    assert re.search(r"languages detected: (\w+, ){2}\w+", done.stdout)


def test_init_on_a_python_project_writes_no_javascript_gate(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "calc"\nversion = "0"\n')
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = _init(tmp_path)
    assert done.returncode == 0, done.stderr
    assert _languages(tmp_path) == {
        "python": {
            "test": "pytest",
            "lint": "ruff check",
            "format": "ruff format --check",
            "sast": "bandit",
            "test_dir": "tests",
        }
    }
    assert "not a git repository" not in done.stdout


def test_init_in_a_plain_folder_says_a_run_needs_git(tmp_path: Path) -> None:
    folder = tmp_path / "with space"
    folder.mkdir()
    (folder / "app.py").write_text("x = 1\n")
    done = _init(folder)
    assert done.returncode == 0, done.stderr
    assert f"note: {folder} is not a git repository yet" in done.stdout
    assert "git init" in done.stdout


def test_council_help_lists_the_everyday_commands_first_in_whole_sentences() -> None:
    commands = _council("--help").stdout.split("Commands:")[1]
    listed = re.findall(r"^  ([a-z-]+)  ", commands, flags=re.M)
    assert listed[:6] == ["init", "run", "runs", "show", "resume", "heal"]
    assert "..." not in commands  # no sentence cut at 45 characters
    assert "commit on a branch." in commands


def test_init_force_is_a_flag() -> None:
    text = _council("init", "--help").stdout
    assert "--force " in text and "no-force" not in text


def test_each_json_option_says_what_it_prints() -> None:
    assert "JSON lines" in _council("run", "--help").stdout
    assert "one JSON array" in _council("runs", "--help").stdout
    assert "the run and its events as one JSON object" in _council("show", "--help").stdout


def test_the_schema_names_in_help_are_the_schemas() -> None:
    from council.cli import SCHEMA_NAMES
    from council.personas import SCHEMAS

    assert tuple(SCHEMA_NAMES) == tuple(SCHEMAS)


def test_the_command_line_limit_is_the_configs() -> None:
    from council.cli import MAX_ITERATIONS
    from council.config import Limits

    bound = next(m.le for m in Limits.model_fields["max_iterations"].metadata if hasattr(m, "le"))
    assert bound == MAX_ITERATIONS


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--budget", "inf"], "--budget must be a finite amount (USD), got inf"),
        (["--max-iterations", "51"], "--max-iterations must be at most 50, got 51"),
    ],
)
def test_limits_on_the_command_line_obey_the_configs_rules(
    tmp_path: Path, flags: list[str], said: str
) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    done = _council("run", "x", "--repo", str(repo), *flags)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {said}\n"
    assert not (repo / ".council").exists()


def test_runs_in_a_narrow_terminal_stacks_each_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    with Store.for_repo(repo) as store:
        first = store.create_run(feature="add a profile endpoint " * 3, repo=str(repo), config={})
        store.update_run(first, status="interrupted", branch="council/add-a-profile-endpoint")
    env = {**scrubbed_env(tmp_path / "cache"), "COLUMNS": "40"}
    done = _council("runs", "--repo", str(repo), env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 40, done.stdout
    assert lines[0] == f"{first}  interrupted"  # the id is never cut: `council show` takes it
    assert lines[1].startswith("  $0.0000  ") and lines[1].endswith("…")
    assert lines[2] == "  council/add-a-profile-endpoint"


def test_the_run_timeline_shows_a_commits_subject_and_counts_in_words() -> None:
    import io

    from rich.console import Console

    from council.events import CommitMade, ReviewMade
    from council.render import LiveRenderer

    out = io.StringIO()
    render = LiveRenderer(Console(file=out, width=80, highlight=False))
    render(
        CommitMade(
            sha="f949c7360d0000",
            branch="council/x",
            message="feat(profile): add it\n\nTests: 10 passed\nReviewed-by: AI Council",
        )
    )
    render(ReviewMade(verdict="approve", comments=[{"severity": "low", "message": "docs"}]))
    render(ReviewMade(verdict="approve", comments=[]))
    assert out.getvalue().splitlines() == [
        "  ● commit f949c7360d feat(profile): add it",
        "  review: approve, 1 comment",
        "    [low] : docs",
        "  review: approve, 0 comments",
    ]
    from council.render import _describe  # `council show`'s timeline says it the same way

    assert _describe(ReviewMade(verdict="approve", comments=[{}])) == "review approve (1 comment)"


@pytest.mark.parametrize("given", [[], ["--tests", "tests/test_users.py"]], ids=["run", "tests"])
def test_a_run_says_changes_not_committed_are_not_part_of_it(
    tmp_path: Path, model_server: ScriptedModelServer, given: list[str]
) -> None:
    repo = cs.make_repo(tmp_path / "svc")
    (repo / "council.yaml").write_text(cs.council_yaml(model_server))  # untracked: not counted
    with (repo / "app" / "main.py").open("a") as main:
        main.write("# a local edit\n")
    with (repo / "tests" / "test_users.py").open("a") as test:
        test.write("# read from the checkout with --tests\n")
    argv = ["run", "a feature", "--repo", str(repo), "--json", *given]
    run = subprocess.Popen(
        [sys.executable, "-m", "council.cli", *argv],
        cwd=ROOT,
        env=scrubbed_env(tmp_path / "cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:  # said before the run starts: no need to wait for more
        assert run.stdout is not None
        events = (json.loads(line) for line in run.stdout)
        notice = next(e for e in events if e["kind"] in ("notice", "run_claimed"))
    finally:
        run.terminate()
        run.communicate(timeout=60)
    assert notice.get("message") == (
        "1 file changed but not committed: the run works from HEAD without it "
        "(commit first to include it)"
        if given
        else "2 files changed but not committed: the run works from HEAD without them "
        "(commit first to include them)"
    )


def test_models_check_reads_the_repositorys_council_yaml(tmp_path: Path) -> None:
    (tmp_path / "council.yaml").write_text(
        "models:\n  - model_name: m\n"
        "    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/OPENAI_API_KEY}\n"
    )
    env = {**scrubbed_env(tmp_path / "cache"), "COUNCIL_OFFLINE": "1"}
    refused = _council("models", "check", "--repo", str(tmp_path), env=env)
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        f"error: {tmp_path / 'council.yaml'} configures models, but OPENAI_API_KEY is not set\n"
    )
    said = _council(
        "models", "check", env={**env, "OPENAI_API_KEY": "sk-test-not-real"}, cwd=tmp_path
    )
    assert said.returncode == 0, said.stderr
    assert (
        said.stdout
        == f"a model can be had: {tmp_path / 'council.yaml'} configures openai/gpt-4o-mini\n"
    )


def test_a_failed_runs_last_line_points_at_the_reason_instead_of_repeating_it() -> None:
    import io

    from rich.console import Console

    from council.events import RunFinished, StepFinished
    from council.render import LiveRenderer

    out = io.StringIO()
    render = LiveRenderer(Console(file=out, width=200, highlight=False))
    reason = "model call to alias 'maven' failed\nCheck the model configuration."
    render(StepFinished(step="context", status="failed", detail=reason))
    render(RunFinished(status="error", reason=reason, total_cost_usd=0.0006))
    lines = out.getvalue().splitlines()
    assert lines[0] == "  ✗ context failed model call to alias 'maven' failed"
    assert lines[-1] == "ERROR context failed (the reason is above) (cost $0.0006)"
    render(RunFinished(status="failed", reason="tests still red", total_cost_usd=0.0))
    assert out.getvalue().splitlines()[-1] == "FAILED tests still red (cost $0.0000)"


def test_looking_for_runs_where_there_are_none_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "council.yaml").write_text("limits: {max_iterations: lots}\n")  # not read
    shown = _council("show", "--repo", str(tmp_path))
    assert shown.returncode == 2
    assert shown.stderr == f'error: no run in {tmp_path}\n`council run "<feature>"` starts one\n'
    resumed = _council("resume", "--repo", str(tmp_path))
    assert resumed.returncode == 2
    assert resumed.stderr.startswith(f"error: no run to resume in {tmp_path}\n")
    listed = _council("runs", "--repo", str(tmp_path), "--limit", "0")
    assert listed.returncode == 2 and "--limit" in listed.stderr


def test_a_run_without_git_says_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**scrubbed_env(tmp_path / "cache"), "PATH": str(empty)}
    done = _council("run", "x", "--repo", str(tmp_path), env=env)
    assert done.returncode == 2, done.stderr
    assert "error: git is not installed (or not on PATH)\nInstall git" in done.stderr
    assert not (tmp_path / ".council").exists()


def test_the_examples_in_run_help_parse_as_shown() -> None:
    import shlex

    import typer

    from council.cli import RUN_EXAMPLES, app

    run = typer.main.get_command(app).commands["run"]
    examples = [line.strip() for line in RUN_EXAMPLES.splitlines() if "council run" in line]
    assert len(examples) >= 3
    for example in examples:
        argv = shlex.split(example.split(">")[0])[2:]  # after `council run`, before a redirect
        ctx = run.make_context("run", argv)  # parses and checks every option, runs nothing
        assert ctx.params["feature"].strip(), example
    assert "Examples:" in _council("run", "--help").stdout


def test_a_json_run_stopped_by_a_signal_ends_with_run_finished(
    tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    repo = cs.make_repo(tmp_path / "svc")
    (repo / "council.yaml").write_text(cs.council_yaml(model_server))
    run = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "run", "a feature", "--repo", str(repo), "--json"],
        cwd=ROOT,
        env=scrubbed_env(tmp_path / "cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    for line in run.stdout:  # the run's own first step: its signal handling is in place
        event = json.loads(line)
        if event["kind"] == "step_started" and event["run_id"]:
            break
    run.terminate()
    rest, err = run.communicate(timeout=120)
    last = json.loads(rest.splitlines()[-1])
    assert run.returncode == 143, err
    assert last["kind"] == "run_finished" and last["status"] == "interrupted"
    assert f"council resume {last['run_id']}" in last["reason"]
    assert f"interrupted (SIGTERM); `council resume {last['run_id']}`" in err


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ("ollama", "needs Ollama serving at http://127.0.0.1:11434 with the model pulled: "
         "ollama pull qwen2.5-coder:7b"),
        ("local", "the embedded model runs on this machine: `council models check` says"),
    ],
)  # fmt: skip
def test_init_says_what_a_keyless_provider_needs(tmp_path: Path, provider: str, said: str) -> None:
    done = _council(
        "init", "--provider", provider, "--repo", str(tmp_path), env=scrubbed_env(tmp_path / "c")
    )
    assert done.returncode == 0, done.stderr
    assert said in done.stdout
    assert "before running" not in done.stdout


def _command_paths() -> list[list[str]]:
    import typer

    from council.cli import app

    def walk(command, path: list[str]):
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def test_every_commands_help_is_plain_and_fits_80_columns() -> None:
    """All of them, in-process (the subprocess test above covers the first ones as a user
    starts them): a command added later is checked without being listed here."""
    from typer.testing import CliRunner

    from council.cli import app

    paths = _command_paths()
    assert len(paths) > len(COMMANDS)
    for path in paths:
        done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert done.exit_code == 0, (path, done.output)
        for artefact in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list[", "{", "}"):
            assert artefact not in done.output, (path, artefact)
        assert max(len(line) for line in done.output.splitlines()) <= 80, (path, done.output)


def test_a_javascript_project_without_node_is_refused_before_a_branch(tmp_path: Path) -> None:
    repo = tmp_path / "web"
    repo.mkdir()
    (repo / "package.json").write_text('{"name": "web", "scripts": {"test": "node --test"}}')
    (repo / "council.yaml").write_text(
        "models:\n  - model_name: m\n"
        "    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/OPENAI_API_KEY}\n"
    )
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "package.json"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    only_git = tmp_path / "bin"  # a PATH with git and nothing else: no node
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    env = {**scrubbed_env(tmp_path / "cache"), "PATH": str(only_git), "OPENAI_API_KEY": "sk-t"}
    done = _council("run", "add mul", "--repo", str(repo), env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: node 18+ not found (install Node.js 18 or newer)\n")
    assert not (repo / ".council").exists()
