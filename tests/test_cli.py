"""The `council` command line, run for real in a subprocess with a scrubbed environment.

Exit codes (cli.py): 0 green and committed, 1 not green within limits, 2 usage or config error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from council.config import NO_MODEL_MESSAGE, parse_config
from council.events import BaseEvent, event_from_json
from council.pipelines.lifecycle import REPORT_FILE
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[1]

# Anything that could hand the CLI a model provider or a credential.
_SECRET = re.compile(
    r"(^(OPENAI|ANTHROPIC|AZURE|LITELLM|GITHUB|GH|GEMINI|MISTRAL|COHERE|GROQ|HF|HUGGINGFACE)_)"
    r"|(API_KEY|API_BASE|API_VERSION|TOKEN|SECRET|PASSWORD)",
)


def scrubbed_env(cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SECRET.search(k)}
    env["COUNCIL_CACHE_DIR"] = str(cache_dir)
    env["PYTHONPATH"] = str(ROOT)  # tests.fakes is not installed; council.cli is
    env.pop("COLUMNS", None)  # output must be usable at rich's default width for pipes
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The same folder test_tdd_flow's env_cache uses: the project env is built once a session.
    return tmp_path_factory.getbasetemp() / "council-cache"


@pytest.fixture(scope="session")
def council(cache_dir: Path):
    env = scrubbed_env(cache_dir)

    def run(
        *args: str,
        cwd: Path | None = None,
        timeout: float = 600,
        extra_env: dict[str, str] | None = None,
    ) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "council.cli", *args],
            cwd=cwd or ROOT,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def assert_clean_error(result: Result, code: int = 2) -> None:
    assert result.code == code, (result.out, result.err)
    assert "Traceback" not in result.err + result.out
    assert result.err.startswith("error: ")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


# --- configuration and usage errors ---------------------------------------------------------


def test_run_without_any_provider_exits_2_naming_the_variables(council, tmp_path: Path) -> None:
    repo = cs.make_repo(tmp_path / "svc")
    result = council(
        "run", "add a profile endpoint", "--repo", str(repo), extra_env={"COUNCIL_NO_LOCAL": "1"}
    )
    assert_clean_error(result)
    # The whole message, unwrapped, exactly as config.py words it.
    assert f"error: {NO_MODEL_MESSAGE}\n" in result.err
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "LITELLM_PROXY_API_BASE"):
        assert f"export {name}=..." in result.err
    assert _git(repo, "status", "--porcelain") == ""  # nothing written to the checkout
    assert _git(repo, "branch", "--list").split() == ["*", "main"]


def test_run_with_no_key_and_no_local_model_file_says_which_file_goes_where(
    council, tmp_path: Path
) -> None:
    # llama-cpp-python is installed (scripts/test installs the local extra), so with no key the
    # embedded model is chosen; offline, its missing file is the error, before any change.
    repo = cs.make_repo(tmp_path / "svc")
    result = council(
        "run",
        "add a profile endpoint",
        "--repo",
        str(repo),
        extra_env={"COUNCIL_OFFLINE": "1", "COUNCIL_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert_clean_error(result)
    assert "the local model qwen2.5-coder-1.5b is not downloaded" in result.err
    assert f"{tmp_path / 'cache' / 'gguf' / 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'}" in (
        result.err
    )
    assert "council init --provider" in result.err
    assert _git(repo, "status", "--porcelain") == ""
    assert _git(repo, "branch", "--list").split() == ["*", "main"]


def test_models_list_and_pull_offline(council, tmp_path: Path) -> None:
    from tests.fakes.tiny_gguf import write_tiny_model

    model = write_tiny_model(tmp_path / "tiny.gguf")
    listed = council("models", "list", "--all", extra_env={"COUNCIL_LOCAL_MODEL": str(model)})
    assert listed.code == 0, listed.err
    assert "COUNCIL_LOCAL_MODEL" in listed.out and "F32" in listed.out and "llama" in listed.out
    assert "qwen2.5-coder-1.5b (default)" in listed.out
    pulled = council(
        "models", "pull", extra_env={"COUNCIL_OFFLINE": "1", "COUNCIL_CACHE_DIR": str(tmp_path)}
    )
    assert_clean_error(pulled)
    assert "offline" in pulled.err and "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" in pulled.err
    unknown = council("models", "pull", "gpt-5", extra_env={"COUNCIL_OFFLINE": "1"})
    assert_clean_error(unknown)
    assert "unknown local model 'gpt-5'" in unknown.err


def test_init_writes_a_config_that_loads_and_detects_python(
    council, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    project = tmp_path / "svc"
    shutil.copytree(cs.EXAMPLE, project)
    result = council("init", "--provider", "openai", "--repo", str(project))
    assert result.code == 0, result.err
    assert "languages detected: python" in result.out
    assert "set OPENAI_API_KEY before running" in result.out

    written = (project / "council.yaml").read_text()
    config = parse_config(written)
    assert config.language("python").test_dir == "tests"
    assert "python" in config.languages
    assert {m.litellm_params["model"] for m in config.models} == {
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
    }
    assert config.missing_env() == ["OPENAI_API_KEY"]

    again = council("init", "--provider", "anthropic", "--repo", str(project))
    assert_clean_error(again)
    assert "already exists" in again.err and "--force" in again.err
    assert (project / "council.yaml").read_text() == written

    forced = council("init", "--provider", "anthropic", "--repo", str(project), "--force")
    assert forced.code == 0, forced.err
    assert "ANTHROPIC_API_KEY" in (project / "council.yaml").read_text()


def test_init_with_an_unknown_provider_exits_2_and_writes_nothing(council, tmp_path) -> None:
    project = tmp_path / "svc"
    shutil.copytree(cs.EXAMPLE, project)
    result = council("init", "--provider", "nope", "--repo", str(project))
    assert_clean_error(result)
    assert "unknown provider 'nope'" in result.err
    assert "openai, anthropic, azure, ollama, local, litellm-proxy" in result.err
    assert not (project / "council.yaml").exists()


def test_invalid_council_yaml_exits_2_naming_file_line_and_key(council, tmp_path: Path) -> None:
    repo = cs.make_repo(tmp_path / "svc")
    config = repo / "council.yaml"
    config.write_text(
        "models:\n"
        "  - model_name: main\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        "limits:\n"
        "  max_iterations: 3\n"
        "  max_iteratoins: 4\n"
    )
    result = council("run", "add a profile endpoint", "--repo", str(repo))
    assert_clean_error(result)
    assert f"{config}:7: limits.max_iteratoins: unknown key" in result.err

    config.write_text("models:\n  - model_name: [main\n")
    result = council("run", "add a profile endpoint", "--repo", str(repo))
    assert_clean_error(result)
    assert re.search(rf"{re.escape(str(config))}:\d+: invalid YAML", result.err)


def test_schema_prints_json_schema_and_refuses_unknown_names(council) -> None:
    result = council("schema", "plan")
    assert result.code == 0, result.err
    schema = json.loads(result.out)
    assert schema["type"] == "object"
    assert "tasks" in schema["properties"]
    assert "tasks" in schema.get("required", [])

    every = json.loads(council("schema").out)
    assert {"plan", "context", "review"} <= set(every)

    bad = council("schema", "nope")
    assert_clean_error(bad)
    assert "unknown schema 'nope'" in bad.err


def test_run_on_a_subdirectory_exits_2_and_leaves_no_trace(council, tmp_path: Path) -> None:
    repo = cs.make_repo(tmp_path / "svc")
    result = council("run", "add a profile endpoint", "--repo", str(repo / "app"))
    assert_clean_error(result)
    assert f"{repo / 'app'} is inside the git repository {repo} but is not its top level" in (
        result.err
    )
    assert not (repo / "app" / ".council").exists()
    assert _git(repo, "status", "--porcelain") == ""


def test_run_on_a_folder_that_is_not_a_git_repository_exits_2(council, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    shutil.copytree(cs.EXAMPLE, folder)
    result = council("run", "add a profile endpoint", "--repo", str(folder))
    assert_clean_error(result)
    assert f"{folder} is not a git repository" in result.err
    assert "git init" in result.err
    assert not (folder / ".council").exists()

    missing = council("run", "x", "--repo", str(tmp_path / "absent"))
    assert_clean_error(missing)
    assert "is not a directory" in missing.err


def test_run_on_a_repository_without_commits_exits_2_and_leaves_no_trace(
    council, tmp_path: Path
) -> None:
    repo = tmp_path / "fresh"
    shutil.copytree(cs.EXAMPLE, repo)
    _git(repo, "init", "-q", "-b", "main")
    result = council("run", "add a profile endpoint", "--repo", str(repo))
    assert_clean_error(result)
    assert f"{repo} has no commits yet" in result.err
    assert "git commit --allow-empty" in result.err
    assert not (repo / ".council").exists()


def test_show_and_runs_in_a_repo_without_runs(council, tmp_path: Path) -> None:
    repo = cs.make_repo(tmp_path / "svc")
    listed = council("runs", "--repo", str(repo))
    assert listed.code == 0 and "no runs yet" in listed.out
    shown = council("show", "--repo", str(repo))
    assert_clean_error(shown)
    assert "no run in" in shown.err
    assert not (repo / ".council").exists()  # reading history writes nothing


def test_a_command_line_mistake_is_a_usage_error_without_traceback(council) -> None:
    result = council("run")  # the feature argument is missing
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "Missing argument 'feature'" in result.err


# --- full runs against the scripted model server --------------------------------------------


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as s:
        yield s


def repo_with_config(tmp_path: Path, server: ScriptedModelServer, **limits) -> Path:
    repo = cs.make_repo(tmp_path / "profile-service")
    (repo / "council.yaml").write_text(cs.council_yaml(server, **limits))
    # council.yaml is the user's, uncommitted: the run must not need it committed.
    (repo / ".git" / "info" / "exclude").write_text("council.yaml\n")
    return repo


@dataclass
class HappyRun:
    repo: Path
    result: Result
    run_id: str
    branch: str


@pytest.fixture(scope="module")
def happy_run(council, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HappyRun]:
    with ScriptedModelServer() as srv:
        cs.script_happy_path(srv)
        repo = repo_with_config(tmp_path_factory.mktemp("happy"), srv)
        result = council("run", cs.FEATURE, "--repo", str(repo))
        assert srv.pending() == 0
    with Store.for_repo(repo) as store:
        run = store.latest_run()
    assert run is not None
    yield HappyRun(repo, result, run.id, run.branch or "")


@pytest.mark.slow
def test_full_run_through_the_cli_is_green_and_committed(happy_run: HappyRun) -> None:
    r = happy_run.result
    assert r.code == 0, r.out + r.err
    assert "Traceback" not in r.err
    assert f"config: {happy_run.repo / 'council.yaml'}" in r.out
    assert f"run {happy_run.run_id} on branch {happy_run.branch}" in r.out
    assert "tests red-1: 0 passed, 2 failed" in r.out
    assert "GREEN tests green, reviewed and committed" in r.out
    assert f"branch: {happy_run.branch}" in r.out
    log = _git(happy_run.repo, "log", "--format=%s", f"main..{happy_run.branch}").splitlines()
    assert [line.split("(")[0] for line in log] == ["feat", "test"]


@pytest.mark.slow
def test_runs_lists_the_run(council, happy_run: HappyRun) -> None:
    listed = council("runs", "--repo", str(happy_run.repo))
    assert listed.code == 0, listed.err
    assert happy_run.run_id in listed.out
    assert "green" in listed.out

    as_json = json.loads(council("runs", "--repo", str(happy_run.repo), "--json").out)
    assert [(r["id"], r["status"], r["branch"]) for r in as_json] == [
        (happy_run.run_id, "green", happy_run.branch)
    ]


@pytest.mark.slow
def test_show_prints_timeline_model_calls_tokens_cost_and_diffstat(
    council, happy_run: HappyRun
) -> None:
    shown = council("show", happy_run.run_id[:12], "--repo", str(happy_run.repo))
    assert shown.code == 0, shown.err
    out = shown.out
    assert out.startswith(f"run {happy_run.run_id}  green")
    assert f"feature: {cs.FEATURE}" in out
    assert "timeline" in out and "model calls" in out
    for step in ("plan", "context", "baseline", "tests", "iteration-1", "review", "commit"):
        assert re.search(rf"│ {re.escape(step)}\s", out), step
    for persona in ("pacer", "maven", "guardian", "builder"):
        assert re.search(rf"│ {persona}\s+│\s+\d+\s+│", out), persona
    assert "artisan" not in out.split("model calls")[1].split("tokens:")[0]

    with Store.for_repo(happy_run.repo) as store:
        summary = store.summary(happy_run.run_id)
    tokens = re.search(r"tokens: (\d+) in, (\d+) out\s+cost: \$(\d+\.\d{4})", out)
    assert tokens, out
    assert int(tokens[1]) == summary.prompt_tokens > 0
    assert int(tokens[2]) == summary.completion_tokens > 0
    assert float(tokens[3]) == pytest.approx(summary.cost_usd, abs=5e-5)
    assert summary.cost_usd > 0

    assert "diff stat" in out
    assert re.search(r"app/main\.py\s+\|\s+\d+ \+", out)
    assert re.search(r"tests/test_profile\.py\s+\|\s+\d+ \+", out)
    assert re.search(r"\d+ files? changed", out)

    as_json = json.loads(council("show", "--repo", str(happy_run.repo), "--json").out)
    assert as_json["run"]["id"] == happy_run.run_id
    kinds = [e["kind"] for e in as_json["events"]]
    assert kinds.count("model_call") == summary.model_calls == 5


@pytest.mark.slow
def test_run_json_emits_parseable_events_and_a_final_outcome(
    council, server: ScriptedModelServer, tmp_path: Path
) -> None:
    cs.script_happy_path(server)
    repo = repo_with_config(tmp_path, server)
    result = council("run", cs.FEATURE, "--repo", str(repo), "--json")
    assert result.code == 0, result.err[-3000:]

    lines = result.out.splitlines()
    assert lines, result.err
    # Progress of calls in flight is shown, not stored: the facts are the rest.
    events: list[BaseEvent] = [
        e for e in map(event_from_json, lines[:-1]) if e.kind != "model_progress"
    ]
    outcome = json.loads(lines[-1])["outcome"]

    assert outcome["status"] == "green"
    assert outcome["branch"].startswith("council/")
    assert len(outcome["commits"]) == 2
    assert outcome["cost_usd"] > 0

    kinds = [e.kind for e in events]
    assert kinds[0] == "step_started" and kinds[-1] == "run_finished"
    assert kinds.count("model_call") == 5
    assert "command_run" in kinds and "commit_made" in kinds
    # The first line is printed before the repository and configuration are checked, when no
    # run exists yet (so a user sees at once that council runs); every later event is the run's.
    first = events[0]
    assert (first.kind, first.step, first.run_id) == ("step_started", "start", None)
    assert {e.run_id for e in events[1:]} == {outcome["run_id"]}
    finished = events[-1]
    assert finished.status == "green"
    assert finished.total_cost_usd == pytest.approx(outcome["cost_usd"])
    phases = [e.phase for e in events if e.kind == "tests_reported"]
    assert phases[:2] == ["baseline", "red-1"] and "iteration-1" in phases
    # The stream on stdout is the stream in the store.
    with Store.for_repo(repo) as store:
        stored = store.events(outcome["run_id"])
    assert [e.kind for e in stored] == kinds[1:]  # the pre-run first line is not the run's


NON_FIXING_REFINE = """Let me document the route; that should sort it out.

app/main.py
```python
<<<<<<< SEARCH
@app.get("/api/v1/user/me/profile", response_model=Profile)
=======
# The current user's profile.
@app.get("/api/v1/user/me/profile", response_model=Profile)
>>>>>>> REPLACE
```
"""


@pytest.mark.slow
def test_not_green_within_limits_exits_1_and_keeps_the_work_on_the_branch(
    council, server: ScriptedModelServer, tmp_path: Path
) -> None:
    cs.script_happy_path(server, build=cs.BUILD_WRONG_REPLY)
    server.script("artisan", NON_FIXING_REFINE, NON_FIXING_REFINE)
    repo = repo_with_config(tmp_path, server, max_iterations=2)

    result = council("run", cs.FEATURE, "--repo", str(repo), "--json")
    assert result.code == 1, result.err[-3000:]
    assert "Traceback" not in result.err
    outcome = json.loads(result.out.splitlines()[-1])["outcome"]
    assert outcome["status"] == "failed"
    assert re.search(r"no progress|not green after 2 iterations", outcome["reason"])
    assert server.pending("guardian") == 1  # the review reply was never used
    assert len(server.requests_for("artisan")) == 1

    branch = outcome["branch"]
    log = _git(repo, "log", "--format=%s", f"main..{branch}").splitlines()
    assert log[0].startswith("chore(profile): work in progress, not green")
    assert log[1].startswith("test(profile):")
    report = _git(repo, "show", f"{branch}:{REPORT_FILE}")
    assert outcome["reason"] in report
    assert "## iteration-1: " in report and "## iteration-2: " in report
    assert "test_profile_returns_the_current_user" in report
    main_py = _git(repo, "show", f"{branch}:app/main.py")
    assert '@app.get("/api/v1/user/me/profile", response_model=Profile)' in main_py
    assert "# The current user's profile." in main_py
    # The user's checkout is still on main, untouched.
    assert _git(repo, "status", "--porcelain") == ""
    assert _git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"

    with Store.for_repo(repo) as store:
        run = store.get_run(outcome["run_id"])
    assert run is not None and run.status == "failed"
