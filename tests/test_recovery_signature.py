"""Error signatures: one failure gets one signature across runs, folders and machines."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from council.recovery.signature import (
    ErrorSignature,
    GateRun,
    gate_run,
    normalise,
    signature,
    signatures,
    stable_path,
)
from council.sandbox import run
from council.toolchains.gates import Finding, GateResult
from council.toolchains.report import TestCase, TestReport

# A failure whose message carries everything that differs between two runs: an object address,
# a timestamp, a duration, the pid, the temp folder the project lives in.
FAILING = """
import os, time
from datetime import datetime

def load(path):
    started = time.monotonic()
    raise ValueError(
        f"cannot parse {path}: {object()} at {datetime.now().isoformat()} "
        f"after {time.monotonic() - started + 1.5:.3f}s in pid {os.getpid()}"
    )

load(os.path.join(os.getcwd(), "data", "input.csv"))
"""


def _project(base: Path, padding: int, body: str = FAILING) -> Path:
    base.mkdir(parents=True)
    # Blank lines and comments shift every line number of the traceback.
    (base / "app.py").write_text("# pad\n" * padding + textwrap.dedent(body))
    return base


def _run(project: Path) -> GateRun:
    result = run([sys.executable, "app.py"], project, timeout_s=30)
    assert result.exit_code == 1, result.output
    return gate_run(result, gate="test")


def test_same_failure_in_two_runs_gets_the_same_signature(tmp_path: Path) -> None:
    first = _project(tmp_path / "run-1" / "worktree-a1b2c3", padding=0)
    second = _project(tmp_path / "elsewhere" / "r-20260101-ffee00", padding=7)
    out1, out2 = _run(first), _run(second)
    assert out1.output != out2.output  # the raw outputs really differ

    sig1 = signature(out1, root=first)
    sig2 = signature(out2, root=second)
    assert sig1 == sig2
    assert sig1.hash == sig2.hash
    assert sig1.error_type == "ValueError"
    assert sig1.file == "app.py"
    assert sig1.tool == "python"  # the program; python3.11 and python3 are the same tool
    assert "<addr>" in sig1.message and "<time>" in sig1.message and "input.csv" in sig1.message


def test_same_failure_without_a_root_still_matches(tmp_path: Path) -> None:
    first = _project(tmp_path / "a", padding=1)
    second = _project(tmp_path / "bb" / "cc", padding=3)
    assert signature(_run(first)).hash == signature(_run(second)).hash


def test_a_different_error_gets_a_different_signature(tmp_path: Path) -> None:
    broken = _project(tmp_path / "a", padding=0)
    other = _project(tmp_path / "b", padding=0, body=FAILING.replace("ValueError", "KeyError"))
    typo = _project(tmp_path / "c", padding=0, body=FAILING.replace("cannot parse", "no rows in"))
    sigs = {signature(_run(p), root=p).hash for p in (broken, other, typo)}
    assert len(sigs) == 3


def test_same_message_in_another_file_is_another_failure(tmp_path: Path) -> None:
    one = _project(tmp_path / "a", padding=0)
    two = tmp_path / "b"
    two.mkdir()
    (two / "main.py").write_text(textwrap.dedent(FAILING))
    (two / "app.py").write_text("import runpy\nrunpy.run_path('main.py')\n")
    assert signature(_run(one), root=one).file == "app.py"
    assert signature(_run(two), root=two).file == "main.py"
    assert signature(_run(one), root=one).hash != signature(_run(two), root=two).hash


def test_normalise_replaces_what_varies_and_keeps_what_names_the_error() -> None:
    text = (
        "2026-03-01T10:11:12.345Z worker pid 31337 took 12.5s at 0x7f3a2b1c "
        "in /tmp/pytest-of-ci/pytest-9/test_x0/app.py commit 3fa9c0e1b2d4e5 "
        "F401 py311 utf8 expected 3."
    )
    out = normalise(text)
    assert out == (
        "<time> worker pid <n> took <dur> at <addr> in <tmp> commit <hex> F401 py311 utf8 "
        "expected <n>."
    )


def test_normalise_strips_the_home_folder_and_other_absolute_paths() -> None:
    home = str(Path.home())
    assert normalise(f"open {home}/proj/data.csv") == "open ~/proj/data.csv"
    assert normalise("open /srv/alice/proj/data.csv") == "open <path>/data.csv"
    assert normalise("open /srv/bob/other/data.csv") == "open <path>/data.csv"


def test_stable_path_is_relative_to_root_or_short() -> None:
    assert stable_path("/w/r-1/app/x.py", "/w/r-1") == "app/x.py"
    assert stable_path("/usr/lib/python3/site-packages/yaml/x.py") == "site-packages/yaml/x.py"
    assert stable_path("/home/a/proj/app/x.py") == "app/x.py"
    assert stable_path("./app/x.py") == "app/x.py"
    assert stable_path("/tmp/abc123/app.py") == "<tmp>/app.py"


def test_lint_gate_signature_follows_its_findings() -> None:
    gate = GateResult(
        "lint",
        False,
        [
            Finding("app/a.py", 3, "error", "F401", "`os` imported but unused"),
            Finding("app/b.py", 9, "error", "E501", "Line too long (120 > 100)"),
        ],
    )
    moved = GateResult(
        "lint",
        False,
        [
            Finding("app/a.py", 30, "error", "F401", "`os` imported but unused"),
            Finding("app/b.py", 1, "error", "E501", "Line too long (133 > 100)"),
        ],
    )
    found = signatures(gate)
    assert [(s.error_type, s.file) for s in found] == [("F401", "app/a.py"), ("E501", "app/b.py")]
    assert signature(gate).hash == signature(moved).hash  # same findings, other lines
    one_fixed = GateResult("lint", False, gate.findings[1:])
    assert signature(one_fixed).hash != signature(gate).hash  # progress shows


def test_test_report_signature_uses_the_failing_tests() -> None:
    def report(tmp: str, line: int) -> TestReport:
        case = TestCase(
            "tests/test_a.py::test_sum",
            "failed",
            message=f"AssertionError: assert {line} == 3",
            traceback=f"{tmp}/tests/test_a.py:{line}: AssertionError",
            file="tests/test_a.py",
        )
        return TestReport("python", [case], exit_code=1, duration_s=0.4 + line)

    a, b = report("/tmp/w1", 12), report("/tmp/w2", 40)
    assert signature(a).hash == signature(b).hash
    assert signature(a).error_type == "AssertionError"
    assert signature(a).file == "tests/test_a.py"
    assert signature(a).tool == "pytest"


def test_timeout_and_signal_signatures() -> None:
    timed = GateRun("test", None, "still running at line 12", timed_out=True)
    other = GateRun("test", None, "still running at line 99 elsewhere", timed_out=True)
    killed = GateRun("build", None, "compiling 1234 files", signal=9)
    assert (
        signature(timed) == signature(other) == ErrorSignature("test", "timeout", "", "timed out")
    )
    assert signature(killed).error_type == "signal 9"
    assert signature(GateRun("build", 2, "make: *** [all] Error 2")).error_type == "exit 2"


def test_node_error_keeps_its_code_and_first_line() -> None:
    out = (
        "node:internal/modules/esm/resolve:838\n  throw new ERR_MODULE_NOT_FOUND(...);\n\n"
        "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'express' imported from "
        "/tmp/w/app.js\n    at packageResolve (node:internal/modules/esm/resolve:838:9)\n"
    )
    sig = signature(out, gate="test")
    assert sig.error_type == "Error[ERR_MODULE_NOT_FOUND]"
    assert "'express'" in sig.message


def test_recovery_is_a_lower_layer() -> None:
    code = (
        "import sys, council.recovery\n"
        "high = ('council.pipelines', 'council.personas', 'council.gateway', 'council.cli')\n"
        "print(sorted(m for m in sys.modules if m.startswith(high)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
