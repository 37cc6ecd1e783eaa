"""PythonToolchain against real projects: a uv-built env, sandboxed pytest, ruff and bandit."""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import pytest

from council.errors import ToolchainError
from council.events import CommandRun
from council.toolchains import PythonToolchain, TestReport, classify_collection_error
from council.toolchains.python_env import PythonEnv, discover_dependencies, env_key, python_id

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "profile-service"

APP = {
    "app/__init__.py": "",
    "app/core.py": """
        def add(a, b):
            return a + b
    """,
}


def make_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in {**APP, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("council-cache")


@pytest.fixture(scope="module")
def toolchain() -> PythonToolchain:
    return PythonToolchain()


@pytest.fixture(scope="module")
def env(toolchain: PythonToolchain, cache_dir: Path, tmp_path_factory) -> PythonEnv:
    """One env (pytest only) shared by every project here that declares no dependencies."""
    root = make_project(tmp_path_factory.mktemp("seed"), {})
    return toolchain.prepare(root, cache_dir=cache_dir)


def run(toolchain: PythonToolchain, env: PythonEnv, root: Path, **kw) -> TestReport:
    return toolchain.run_tests(root, env, timeout_s=kw.pop("timeout_s", 60), **kw)


# --- test runs --------------------------------------------------------------------------------


def test_passing_failing_and_erroring_tests(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "tests/test_core.py": """
                import pytest
                from app.core import add

                def test_adds():
                    assert add(2, 3) == 5

                def test_wrong():
                    assert add(2, 2) == 5

                @pytest.fixture
                def db():
                    raise ConnectionError("no database")

                def test_needs_db(db):
                    pass

                @pytest.mark.skip(reason="later")
                def test_later():
                    pass
            """,
        },
    )
    report = run(toolchain, env, root)
    assert (report.passed, report.failed, report.errors, report.skipped) == (1, 1, 1, 1)
    assert report.exit_code == 1 and not report.green and not report.timed_out
    wrong = next(c for c in report.cases if c.id == "tests/test_core.py::test_wrong")
    assert wrong.outcome == "failed" and "assert 4 == 5" in wrong.message
    summary = report.failure_summary()
    assert "FAILED tests/test_core.py::test_wrong" in summary
    assert "ERROR tests/test_core.py::test_needs_db" in summary
    assert "no database" in summary
    # The work tree is left as it was: no bytecode or pytest cache litter.
    assert sorted(p.name for p in root.rglob("*") if "cache" in p.name) == []


def test_green_run_uses_the_work_tree_uninstalled(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "tests/test_core.py": "from app.core import add\n\n\ndef test_adds():\n"
            "    assert add(1, 1) == 2\n"
        },
    )
    first = run(toolchain, env, root)
    assert first.green, first.failure_summary()
    # An edit is picked up by the next run without reinstalling anything.
    (root / "app/core.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    second = run(toolchain, env, root)
    assert not second.green and second.failed == 1


def test_src_layout_is_importable(toolchain, env, tmp_path) -> None:
    root = tmp_path / "proj"
    (root / "src/mypkg").mkdir(parents=True)
    (root / "src/mypkg/__init__.py").write_text("VALUE = 42\n", encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests/test_pkg.py").write_text(
        "from mypkg import VALUE\n\ndef test_value():\n    assert VALUE == 42\n", encoding="utf-8"
    )
    assert run(toolchain, env, root).green


def test_only_the_given_paths_run(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "tests/test_a.py": "def test_a():\n    assert True\n",
            "tests/test_b.py": "def test_b():\n    assert False\n",
        },
    )
    report = run(toolchain, env, root, paths=["tests/test_a.py"])
    assert [c.id for c in report.cases] == ["tests/test_a.py::test_a"] and report.green


def test_syntax_error_in_a_test_is_a_broken_test(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "tests/test_ok.py": "def test_ok():\n    assert True\n",
            "tests/test_broken.py": "def test_broken(:\n    pass\n",
        },
    )
    report = run(toolchain, env, root)
    assert not report.green
    assert report.passed == 1  # the other files still ran
    (error,) = report.collection_errors
    assert error.id == "tests/test_broken.py" and error.file == "tests/test_broken.py"
    assert error.message.startswith("SyntaxError")
    assert classify_collection_error(error) == "broken_test"
    assert "COLLECTION ERROR tests/test_broken.py" in report.failure_summary()


def test_name_error_in_a_test_module_is_a_broken_test(toolchain, env, tmp_path) -> None:
    root = make_project(tmp_path / "proj", {"tests/test_x.py": "client = make_client()\n"})
    (error,) = run(toolchain, env, root).collection_errors
    assert error.message == "NameError: name 'make_client' is not defined"
    assert classify_collection_error(error) == "broken_test"


@pytest.mark.parametrize(
    ("test_source", "expected_message"),
    [
        (
            "from app.profile import get_profile\n",
            "ModuleNotFoundError: No module named 'app.profile'",
        ),
        (
            "from app.core import profile_of\n",
            "ImportError: cannot import name 'profile_of' from 'app.core'",
        ),
    ],
)
def test_import_of_code_not_written_yet_is_missing_code(
    toolchain, env, tmp_path, test_source, expected_message
) -> None:
    root = make_project(tmp_path / "proj", {"tests/test_profile.py": test_source})
    report = run(toolchain, env, root)
    assert not report.green
    (error,) = report.collection_errors
    assert error.message.startswith(expected_message)
    assert classify_collection_error(error) == "missing_code"


def test_error_raised_inside_the_code_under_test_is_code_side(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "app/broken.py": "SETTINGS = {}\nTIMEOUT = SETTINGS['timeout']\n",
            "tests/test_broken.py": "from app.broken import TIMEOUT\n",
        },
    )
    (error,) = run(toolchain, env, root).collection_errors
    assert error.message == "KeyError: 'timeout'"
    assert classify_collection_error(error) == "missing_code"


def test_broken_conftest_is_reported_not_lost(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "tests/conftest.py": "import pytest\nfixture = undefined\n",
            "tests/test_a.py": "def test_a():\n    assert True\n",
        },
    )
    report = run(toolchain, env, root)
    assert not report.green
    (error,) = report.collection_errors
    assert "NameError" in error.message
    assert classify_collection_error(error) == "broken_test"


def test_hanging_test_times_out_with_a_report(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {"tests/test_hang.py": "import time\n\ndef test_hang():\n    time.sleep(120)\n"},
    )
    started = time.monotonic()
    # faulthandler dumps at 0.8 of the limit counted from the test's start; the limit leaves
    # pytest's own start-up room even on a loaded machine.
    report = run(toolchain, env, root, timeout_s=10)
    assert time.monotonic() - started < 40
    assert report.timed_out and not report.green and report.exit_code is None
    assert "timed out" in report.counts_line()
    assert "killed at its time limit" in report.failure_summary()
    # faulthandler dumped the stack before the kill: the report says where it hung.
    assert "tests/test_hang.py:4 in test_hang" in report.output_tail


def test_no_tests_is_not_green(toolchain, env, tmp_path) -> None:
    root = make_project(tmp_path / "proj", {"tests/test_nothing.py": "VALUE = 1\n"})
    report = run(toolchain, env, root)
    assert report.exit_code == 5 and report.cases == [] and not report.green
    assert "No test ran." in report.failure_summary()


def test_signature_is_stable_across_runs_and_tracks_which_test_fails(
    toolchain, env, tmp_path
) -> None:
    noisy = """
        import time

        def test_ok():
            assert True

        def test_{name}(tmp_path):
            started = time.perf_counter()
            assert 1 == 2, f"{{tmp_path}} {{object()}} took {{time.perf_counter() - started}}s"
    """
    one = make_project(tmp_path / "one", {"tests/test_s.py": noisy.format(name="alpha")})
    two = make_project(tmp_path / "elsewhere/two", {"tests/test_s.py": noisy.format(name="alpha")})
    other = make_project(tmp_path / "three", {"tests/test_s.py": noisy.format(name="beta")})
    first, second, third = (run(toolchain, env, root) for root in (one, two, other))
    assert first.cases[1].message != second.cases[1].message  # the noise is really there
    assert first.signature() == second.signature()
    assert first.signature() != third.signature()


# --- environments -----------------------------------------------------------------------------


def test_env_is_reused_without_calling_uv(toolchain, env, cache_dir, tmp_path) -> None:
    root = make_project(tmp_path / "proj", {})
    events: list = []
    # A toolchain whose uv does not exist can only succeed by reusing the cached env.
    again = PythonToolchain(uv=str(tmp_path / "no-uv-here")).prepare(
        root, cache_dir=cache_dir, emit=events.append
    )
    assert again.path == env.path and again.reused
    assert not any(isinstance(e, CommandRun) for e in events)
    assert (env.path / "council-env.json").is_file()


def test_env_key_follows_dependencies_not_other_config(tmp_path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """
            [project]
            name = "My_Proj"
            dependencies = ["fastapi==0.165.0"]
            [project.optional-dependencies]
            dev = ["my-proj[test]", "ruff"]
            test = ["pytest==9.2.0"]
            docs = ["sphinx"]
            [dependency-groups]
            test = ["coverage", {include-group = "lint"}]
            lint = ["mypy"]
            [tool.ruff]
            line-length = 100
            """
        ),
        encoding="utf-8",
    )
    (root / "requirements-dev.txt").write_text("-r requirements-base.txt\n", encoding="utf-8")
    (root / "requirements-base.txt").write_text("httpx==0.28.1\n", encoding="utf-8")
    (root / "requirements-docs.txt").write_text("sphinx\n", encoding="utf-8")
    deps = discover_dependencies(root)
    assert sorted(deps.requirements) == sorted(
        ["fastapi==0.165.0", "pytest==9.2.0", "ruff", "coverage", "mypy"]
    )
    assert [p.name for p in deps.files] == ["requirements-base.txt", "requirements-dev.txt"]
    key = env_key(deps, python_id(None))

    pyproject.write_text(pyproject.read_text().replace("100", "120"), encoding="utf-8")
    assert env_key(discover_dependencies(root), python_id(None)) == key  # tool config only
    (root / "requirements-base.txt").write_text("httpx==0.28.0\n", encoding="utf-8")
    assert env_key(discover_dependencies(root), python_id(None)) != key  # an included file
    assert env_key(deps, python_id("3.12")) != key  # another interpreter


def test_failed_install_raises_with_uv_output_and_leaves_no_env(tmp_path) -> None:
    root = make_project(tmp_path / "proj", {"requirements.txt": "this is not a requirement!!\n"})
    cache = tmp_path / "cache"
    with pytest.raises(ToolchainError) as excinfo:
        PythonToolchain().prepare(root, cache_dir=cache)
    assert "uv failed to install deps" in excinfo.value.message
    assert "this is not a requirement" in excinfo.value.message  # uv's own words
    assert list((cache / "envs").iterdir()) == []  # no half-built env, no build folder


def test_missing_uv_is_a_clear_error(tmp_path, monkeypatch) -> None:
    root = make_project(tmp_path / "proj", {"requirements.txt": "six\n"})
    monkeypatch.setattr("council.toolchains.tools.find_tool", lambda _name: None)
    with pytest.raises(ToolchainError, match="`uv` is needed") as excinfo:
        PythonToolchain().prepare(root, cache_dir=tmp_path / "cache")
    assert "pip install uv" in str(excinfo.value)


# --- gates ------------------------------------------------------------------------------------


def test_lint_reports_findings_with_locations(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj", {"app/util.py": "import os\n\n\ndef f():\n    return 1\n"}
    )
    result = toolchain.lint(root, env)
    assert not result.passed
    (finding,) = result.findings
    assert (finding.file, finding.line, finding.code, finding.severity) == (
        "app/util.py",
        1,
        "F401",
        "error",
    )
    assert "os" in finding.message
    assert toolchain.lint(root, env, paths=["app/core.py"]).passed
    assert toolchain.lint(root, env, paths=["README.md"]).passed  # nothing Python to lint


def test_format_check_names_the_files_and_lines(toolchain, env, tmp_path) -> None:
    ugly = "x = {  'a':1 }\n\n\ndef f():\n    return 1\n\n\ny = [1,\n  2]\n"
    root = make_project(
        tmp_path / "proj",
        {"app/ugly.py": ugly, "pyproject.toml": "[tool.ruff.format]\nquote-style = 'single'\n"},
    )
    result = toolchain.format_check(root, env)
    assert not result.passed
    # One finding per block the formatter would rewrite, with the lines it spans.
    assert [(f.file, f.line, f.end_line, f.code) for f in result.findings] == [
        ("app/ugly.py", 1, 1, "format"),
        ("app/ugly.py", 8, 9, "format"),
    ]
    assert toolchain.format_check(root, env, paths=["app/core.py"]).passed
    (root / "app/bad.py").write_text("def f(:\n", encoding="utf-8")
    broken = toolchain.format_check(root, env, paths=["app/bad.py"])
    assert not broken.passed
    assert [(f.file, f.severity) for f in broken.findings] == [("app/bad.py", "error")]


def test_format_gate_is_off_for_a_project_without_a_formatter(toolchain, env, tmp_path) -> None:
    files = {"app/ugly.py": "x = {  'a':1 }\n", "pyproject.toml": "[tool.ruff]\nline-length = 90\n"}
    root = make_project(tmp_path / "proj", files)
    off = toolchain.format_check(root, env)
    assert off.passed and not off.findings and "format gate off" in off.output_tail
    # The project says how it formats (a pre-commit hook): the gate is on.
    hook = "repos:\n- repo: https://github.com/astral-sh/ruff-pre-commit\n  hooks:\n"
    (root / ".pre-commit-config.yaml").write_text(hook + "  - id: ruff-format\n")
    assert not toolchain.format_check(root, env).passed


def test_sast_finds_shell_injection(toolchain, env, tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "app/run.py": """
                import subprocess


                def run(command):
                    return subprocess.call(command, shell=True)
            """,
            "tests/test_run.py": "def test_x():\n    assert True\n",
        },
    )
    result = toolchain.sast(root, env)
    assert not result.passed
    (finding,) = result.findings  # the test file's assert (B101, low) is not reported
    assert (finding.file, finding.line, finding.code, finding.severity) == (
        "app/run.py",
        5,
        "B602",
        "high",
    )
    assert "shell=True" in finding.message
    assert toolchain.sast(root, env, paths=["app/core.py"]).passed


# --- detection ----------------------------------------------------------------------------------


def test_detect_and_test_files(tmp_path) -> None:
    assert not PythonToolchain.detect(tmp_path)
    (tmp_path / "node_modules/pkg").mkdir(parents=True)
    (tmp_path / "node_modules/pkg/x.py").write_text("", encoding="utf-8")
    assert not PythonToolchain.detect(tmp_path)  # vendored folders do not count
    (tmp_path / "requirements.txt").write_text("", encoding="utf-8")
    assert PythonToolchain.detect(tmp_path)

    tc = PythonToolchain()
    for path in ("tests/test_a.py", "test_b.py", "pkg/b_test.py", "tests/conftest.py"):
        assert tc.is_test_file(path), path
    for path in ("app/main.py", "app/testing.py", "contest.py"):
        assert not tc.is_test_file(path), path


# --- the example project ----------------------------------------------------------------------


@pytest.mark.slow
def test_profile_service_example_is_green(tmp_path) -> None:
    root = tmp_path / "profile-service"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".*cache"))
    toolchain = PythonToolchain()
    env = toolchain.prepare(root, cache_dir=tmp_path / "cache")
    assert {"fastapi==0.165.0", "pytest==9.2.0"} <= set(env.requirements)
    report = toolchain.run_tests(root, env, timeout_s=120)
    assert report.green, report.failure_summary()
    assert report.passed >= 5
    assert toolchain.lint(root, env).passed
    assert toolchain.format_check(root, env).passed
    assert toolchain.sast(root, env).passed
    # The feature council adds first does not exist yet.
    assert "/me/profile" not in (root / "app/main.py").read_text(encoding="utf-8")


def test_gate_commands_from_council_yaml_pass_their_arguments_through(tmp_path):
    from council.toolchains import PythonToolchain

    chain = PythonToolchain.from_commands(
        {"test": 'pytest -x -m "not slow"', "lint": "ruff check --select E", "format": ""}
    )
    assert chain.extra_args == {"test": ["-x", "-m", "not slow"], "lint": ["--select", "E"]}


def test_a_gate_command_naming_another_tool_is_a_config_error():
    from council.errors import ConfigError
    from council.toolchains import PythonToolchain

    with pytest.raises(ConfigError) as err:
        PythonToolchain.from_commands({"lint": "flake8 ."})
    assert "languages.python.lint" in str(err.value) and "ruff check" in str(err.value)
    assert err.value.exit_code == 2


def test_test_command_arguments_reach_pytest(env, tmp_path) -> None:
    from council.toolchains import PythonToolchain

    root = make_project(
        tmp_path,
        {
            "tests/test_two.py": "def test_one():\n    pass\n\n\ndef test_two():\n    assert 0\n",
        },
    )
    chain = PythonToolchain.from_commands({"test": "pytest -k test_one"})
    report = chain.run_tests(root, env, timeout_s=120)
    assert [c.id for c in report.cases] == ["tests/test_two.py::test_one"]
    assert report.green
