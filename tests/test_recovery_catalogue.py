"""The known-error catalogue on real failures: real interpreters, sockets, limits and timeouts."""

from __future__ import annotations

import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.recovery.catalogue import (
    CATALOGUE,
    ROWS,
    Recovery,
    classify,
    distribution_for,
    flaky_tests,
    is_flaky,
    module_origin,
    npm_package_name,
)
from council.recovery.signature import GateRun
from council.sandbox import Limits, run
from council.toolchains.gates import Finding, GateResult
from council.toolchains.report import TestCase, TestReport


def _py(tmp_path: Path, code: str, **kwargs: object):
    (tmp_path / "main.py").write_text(textwrap.dedent(code))
    return run([sys.executable, "main.py"], tmp_path, timeout_s=30, **kwargs)  # type: ignore[arg-type]


def _top(subject: object, **kwargs: object):
    found = classify(subject, **kwargs)  # type: ignore[arg-type]
    assert found, f"nothing classified {subject!r}"
    return found[0]


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


# -- rows on real failures -------------------------------------------------------------------


def test_catalogue_rows_are_data_with_a_recovery_each() -> None:
    assert len({row.id for row in CATALOGUE}) == len(CATALOGUE)
    for row_id in (
        "missing_python_module", "missing_npm_module", "python_syntax_error", "js_syntax_error",
        "failing_assertion", "port_in_use", "timeout", "killed_for_memory",
        "authentication_failed", "missing_tool", "bad_dockerfile_instruction", "flaky_test",
        "network_error", "quota_exceeded", "permission_denied", "invalid_configuration",
    ):  # fmt: skip
        assert row_id in ROWS
    assert ROWS["missing_python_module"].safe_without_model
    assert not ROWS["failing_assertion"].safe_without_model
    assert ROWS["network_error"].retriable and not ROWS["authentication_failed"].retriable


def test_missing_python_module_from_a_real_import(tmp_path: Path) -> None:
    result = _py(tmp_path, "import cv2\n")
    match = _top(result, root=tmp_path)
    assert match.id == "missing_python_module"
    assert match.recovery is Recovery.ADD_PYTHON_DEPENDENCY
    assert match.facts["module"] == "cv2"
    assert match.facts["distribution"] == "opencv-python"


def test_missing_module_of_the_project_itself_is_missing_code(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    result = _py(tmp_path, "import app.profile\n")
    match = _top(result, root=tmp_path)
    assert match.id == "missing_project_module"
    assert match.recovery is Recovery.MODEL_PATCH
    assert match.facts["origin"] == "project"


@pytest.mark.parametrize(
    ("module", "distribution"),
    [
        ("yaml", "PyYAML"), ("cv2", "opencv-python"), ("PIL", "Pillow"),
        ("PIL.Image", "Pillow"), ("sklearn.linear_model", "scikit-learn"),
        ("bs4", "beautifulsoup4"), ("dateutil.parser", "python-dateutil"), ("jwt", "PyJWT"),
        ("dotenv", "python-dotenv"), ("magic", "python-magic"), ("Crypto.Cipher", "pycryptodome"),
        ("google.protobuf", "protobuf"), ("google.protobuf.message", "protobuf"),
        ("attr", "attrs"), ("requests", "requests"), ("some_unknown_pkg.sub", "some_unknown_pkg"),
    ],
)  # fmt: skip
def test_import_name_to_distribution(module: str, distribution: str) -> None:
    assert distribution_for(module) == distribution


def test_module_origin(tmp_path: Path) -> None:
    (tmp_path / "src" / "mypkg").mkdir(parents=True)
    (tmp_path / "tool.py").write_text("")
    assert module_origin("yaml", tmp_path) == "dependency"
    assert module_origin("json.decoder", tmp_path) == "stdlib"
    assert module_origin("mypkg.core", tmp_path) == "project"
    assert module_origin("tool", tmp_path) == "project"
    assert module_origin("tests.helpers", tmp_path) == "project"
    assert module_origin("bad-name", tmp_path) == "invalid"


def test_missing_npm_module_from_a_real_require(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text("require('left-pad/lib/x');\n")
    result = run(["node", "index.js"], tmp_path, timeout_s=30)
    match = _top(result)
    assert match.id == "missing_npm_module"
    assert match.facts["package"] == "left-pad"


def test_missing_relative_js_file_is_not_a_package(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text("require('./util');\n")
    result = run(["node", "index.js"], tmp_path, timeout_s=30)
    assert result.exit_code == 1
    assert all(m.id != "missing_npm_module" for m in classify(result))


def test_missing_esm_package_with_scope(tmp_path: Path) -> None:
    (tmp_path / "index.mjs").write_text("import x from '@acme/widgets/deep';\n")
    result = run(["node", "index.mjs"], tmp_path, timeout_s=30)
    match = _top(result)
    assert match.id == "missing_npm_module"
    assert match.facts["package"] == "@acme/widgets"


@pytest.mark.parametrize(
    ("spec", "package"),
    [("lodash", "lodash"), ("lodash/fp", "lodash"), ("@a/b/c", "@a/b"), ("./x", None),
     ("../x", None), ("/abs/x.js", None), ("fs", None), ("node:fs", None), ("Bad Name", None)],
)  # fmt: skip
def test_npm_package_name(spec: str, package: str | None) -> None:
    assert npm_package_name(spec) == package


def test_python_syntax_error(tmp_path: Path) -> None:
    result = _py(tmp_path, "def broken(:\n    pass\n")
    match = _top(result)
    assert match.id == "python_syntax_error"
    assert match.facts["file"].endswith("main.py") and match.facts["line"] == "1"


def test_syntax_error_seen_by_the_linter(tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text("def add(a, b)\n    return a + b\n")
    from council.toolchains import PythonToolchain

    lint = PythonToolchain.from_commands({}).lint(tmp_path, None, paths=["calc.py"])
    match = _top(lint)
    assert match.id == "python_syntax_error"
    assert (match.facts["file"], match.facts["line"]) == ("calc.py", "1")


def test_js_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "bad.js").write_text("const x = ;\n")
    result = run(["node", "bad.js"], tmp_path, timeout_s=30)
    ids = [m.id for m in classify(result)]
    assert ids[0] == "js_syntax_error"
    assert "python_syntax_error" not in ids


def test_failing_assertion(tmp_path: Path) -> None:
    result = _py(tmp_path, "def total(): return 2\nassert total() == 3, 'total is wrong'\n")
    match = _top(result)
    assert match.id == "failing_assertion"
    assert match.recovery is Recovery.MODEL_PATCH


def test_port_in_use_from_a_real_bind(tmp_path: Path, listener: int) -> None:
    code = f"""
        import socket
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", {listener}))
        except OSError as exc:
            raise SystemExit(f"error while attempting to bind on address ('127.0.0.1', {listener}): {{exc.strerror.lower()}}")
    """  # noqa: E501
    result = run(
        [sys.executable, "-c", textwrap.dedent(code)], tmp_path, timeout_s=30, network=True
    )
    match = _top(result)
    assert match.id == "port_in_use"
    assert match.facts["port"] == str(listener)


def test_port_in_use_from_a_real_node_server(tmp_path: Path, listener: int) -> None:
    (tmp_path / "s.js").write_text(
        f"require('http').createServer().listen({listener}, '127.0.0.1');\n"
    )
    result = run(["node", "s.js"], tmp_path, timeout_s=30, network=True)
    match = _top(result)
    assert match.id == "port_in_use"
    assert match.facts["port"] == str(listener)


def test_timeout_from_the_timed_out_flag(tmp_path: Path) -> None:
    result = run(["sleep", "30"], tmp_path, timeout_s=0.5)
    assert result.timed_out
    match = _top(result)
    assert match.id == "timeout" and match.confidence == 1.0
    assert all(m.id != "killed_for_memory" for m in classify(result))


def test_memory_error_under_a_real_limit(tmp_path: Path) -> None:
    result = _py(tmp_path, "x = bytearray(512 * 1024 * 1024)\n", limits=Limits(memory_mb=128))
    match = _top(result)
    assert match.id == "killed_for_memory"
    assert match.recovery is Recovery.RETRY_MORE_MEMORY


def test_sigkill_is_a_memory_hint_not_a_certainty(tmp_path: Path) -> None:
    result = run(["bash", "-c", "kill -9 $$"], tmp_path, timeout_s=30)
    assert result.signal == 9 or result.exit_code == 137
    match = _top(result)
    assert match.id == "killed_for_memory"
    assert match.confidence < 0.7
    exited = classify(GateRun("build", 137, "Killed\n"))
    assert exited[0].id == "killed_for_memory" and exited[0].confidence > 0.9


def test_missing_tool_from_a_real_shell(tmp_path: Path) -> None:
    result = run(["bash", "-c", "terraformx init"], tmp_path, timeout_s=30)
    assert result.exit_code == 127
    match = _top(result)
    assert match.id == "missing_tool"
    assert match.facts["tool"] == "terraformx"
    assert match.recovery is Recovery.REPORT


def test_missing_tool_from_the_sandbox_and_from_subprocess(tmp_path: Path) -> None:
    missing = run(["no-such-linter", "."], tmp_path, timeout_s=30)
    assert _top(missing).facts["tool"] == "no-such-linter"
    result = _py(tmp_path, "import subprocess\nsubprocess.run(['eslintx', '.'])\n")
    match = _top(result)
    assert match.id == "missing_tool" and match.facts["tool"] == "eslintx"


def test_a_missing_data_file_is_not_a_missing_tool(tmp_path: Path) -> None:
    result = _py(tmp_path, "open('data.csv')\n")
    assert all(m.id != "missing_tool" for m in classify(result))


@pytest.mark.parametrize(
    "text",
    [
        "fatal: Authentication failed for 'https://github.com/acme/app.git/'",
        "git@github.com: Permission denied (publickey).\nfatal: Could not read from remote",
        "HTTP 401 Unauthorized",
        "ERROR: AADSTS700016: Application not found in the directory",
        "Error: status code 403 from registry",
    ],
)
def test_authentication_failures(text: str) -> None:
    match = _top(GateRun("deploy", 1, text))
    assert match.id == "authentication_failed"
    assert match.row.hint


def test_ssh_key_refusal_is_auth_not_file_permissions() -> None:
    ids = [m.id for m in classify("git@github.com: Permission denied (publickey).")]
    assert "permission_denied" not in ids


def test_bad_dockerfile_instruction() -> None:
    text = "ERROR: failed to solve: dockerfile parse error on line 3: unknown instruction: RUNN\n"
    match = _top(GateRun("build", 1, text))
    assert match.id == "bad_dockerfile_instruction"
    assert match.facts["instruction"] == "RUNN" and match.facts["line"] == "3"


def test_seed_001_failure_types() -> None:
    assert _top("curl: (6) Could not resolve host: example.com").id == "network_error"
    assert _top("429 Too Many Requests").id == "quota_exceeded"
    assert _top("(ServiceUnavailable) try again later").id == "transient_service_error"
    perm = _top("PermissionError: [Errno 13] Permission denied: '/etc/app.conf'")
    assert perm.id == "permission_denied" and perm.facts["path"] == "/etc/app.conf"
    assert _top("ERROR: Invalid VM size 'Standard_X99'").id == "invalid_configuration"


def test_lint_and_format_gates() -> None:
    lint = GateResult("lint", False, [Finding("app.py", 1, "error", "F401", "unused")])
    assert _top(lint).id == "lint_findings"
    fmt = GateResult(
        "format", False, output_tail="Would reformat: app.py\n1 file would be reformatted"
    )
    assert _top(fmt).recovery is Recovery.RUN_FORMATTER


def test_a_passing_run_classifies_as_nothing(tmp_path: Path) -> None:
    result = _py(tmp_path, "print('Address already in use is just text here')\n")
    assert result.ok
    assert classify(result) == []
    assert classify(GateResult("lint", True)) == []


def test_unknown_failure_has_no_match() -> None:
    assert classify(GateRun("build", 2, "something odd happened")) == []


# -- flaky -----------------------------------------------------------------------------------


def _report(outcomes: dict[str, str], exit_code: int) -> TestReport:
    cases = [TestCase(id, outcome) for id, outcome in outcomes.items()]  # type: ignore[arg-type]
    return TestReport("python", cases, exit_code=exit_code, duration_s=1.0)


def test_flaky_is_decided_by_a_rerun_not_a_pattern() -> None:
    red = _report({"t::a": "passed", "t::b": "failed"}, 1)
    green = _report({"t::a": "passed", "t::b": "passed"}, 0)
    still_red = _report({"t::a": "passed", "t::b": "failed"}, 1)
    assert is_flaky(red, green)
    assert flaky_tests(red, green) == ["t::b"]
    assert not is_flaky(red, still_red)
    assert not is_flaky(green, green)
    partly = _report({"t::a": "failed", "t::b": "passed"}, 1)  # b flipped, a broke
    assert is_flaky(red, partly) and flaky_tests(red, partly) == ["t::b"]
    assert all(m.id != "flaky_test" for m in classify(red))


def test_flaky_from_real_reruns(tmp_path: Path) -> None:
    # Fails on the first run only: a marker file remembers it ran before.
    code = """
        import os, sys
        if not os.path.exists("ran-before"):
            open("ran-before", "w").close()
            sys.exit("AssertionError: timing-dependent check failed")
    """
    first = _py(tmp_path, code)
    second = run([sys.executable, "main.py"], tmp_path, timeout_s=30)
    assert not first.ok and second.ok
    assert is_flaky(first, second)
    assert not is_flaky(second, second)
    assert is_flaky(GateResult("test", False), GateResult("test", True))


# -- classified at once, never re-run first: compile errors, circular imports, bad pins -------


def test_javac_error_from_a_real_compile(tmp_path: Path) -> None:
    (tmp_path / "Calc.java").write_text("class Calc { int add() { return 1 } }\n")
    result = run(["javac", "-d", str(tmp_path / "out"), "Calc.java"], tmp_path, timeout_s=60)
    match = _top(result)
    assert match.id == "java_compile_error" and match.recovery is Recovery.MODEL_PATCH
    assert (match.facts["file"], match.facts["line"]) == ("Calc.java", "1")
    assert not match.row.retriable


def test_circular_import_from_a_real_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from b import g\n\n\ndef f():\n    return 1\n")
    (tmp_path / "b.py").write_text("from a import f\n\n\ndef g():\n    return f()\n")
    result = _py(tmp_path, "import a\n")
    ids = [m.id for m in classify(result, root=tmp_path)]
    assert ids[0] == "circular_import"
    assert "missing_python_module" not in ids and "failing_assertion" not in ids


@pytest.mark.parametrize(
    ("output", "row"),
    [
        # tsc --noEmit, both of its formats
        ("src/a.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.",
         "typescript_compile_error"),
        ("src/a.ts:3:7 - error TS2339: Property 'x' does not exist on type 'Y'.",
         "typescript_compile_error"),
        # uv, pip and npm on a pin no release satisfies
        ("  × No solution found when resolving dependencies:\n  ╰─▶ Because there is no version "
         "of pyyaml==99.0 and you require pyyaml==99.0, we can conclude that your requirements "
         "are unsatisfiable.", "unsatisfiable_pin"),
        ("ERROR: Could not find a version that satisfies the requirement PyYAML==99.0",
         "unsatisfiable_pin"),
        ("npm error code ETARGET\nnpm error notarget No matching version found for "
         "left-pad@^99.0.0.", "unsatisfiable_pin"),
    ],
)  # fmt: skip
def test_compile_and_resolution_failures_have_rows(output: str, row: str) -> None:
    match = classify(GateRun("gate", 1, output))[0]
    assert match.id == row
    assert match.recovery is Recovery.MODEL_PATCH and not match.row.retriable
