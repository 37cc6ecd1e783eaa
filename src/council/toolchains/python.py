"""The Python toolchain: detect a project, build its test env, run pytest, lint, format, SAST.

Tests run through `council.sandbox.run` (no network, bounded time) against the work tree's code
(first on PYTHONPATH, and installed editable in the tree's env layer when the project can be
built), and come back as the language-neutral `TestReport`. Ruff, bandit and black are the
project's own pinned versions when its dependencies install them, else council's own ruff and
bandit; the format gate runs only for a project that uses a formatter.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from council.errors import ConfigError
from council.events import EventSink, null_sink
from council.sandbox import CommandResult, Limits, run
from council.toolchains.gates import Finding, GateResult
from council.toolchains.junit import JUnitError, parse_junit
from council.toolchains.python_canary import forged_results
from council.toolchains.python_env import PythonEnv, prepare_env, pythonpath_for
from council.toolchains.python_errors import exception_line, is_test_path
from council.toolchains.python_gates import (
    NO_FORMATTER,
    find_in_env,
    format_findings,
    project_tool,
    python_formatter,
)
from council.toolchains.python_gates import rel_path as _rel
from council.toolchains.python_imports import affected_python_tests
from council.toolchains.report import (
    TestCase,
    TestReport,
    first_line,
    short_traceback,
    tail_text,
)

# Folders that are never the project's own code (envs, caches, build output, council's state).
SKIP_DIRS = {
    ".git", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__", ".council",
    "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache", "site-packages",
}  # fmt: skip
_SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
_BLACK_ERROR = re.compile(r"^error: cannot format (.+?): (.*)$")
_COLLECTION_FAILURE = "collection failure"  # pytest's message for a module that failed to import
PROGRESS_PLUGIN = "council_progress.py"  # pytest_progress.py, as the test run imports it
GATE_TIMEOUT_S = 300.0
# The tool each gate drives; council.yaml's command for the gate must start with it.
_GATE_TOOLS = {
    "test": ["pytest"],
    "lint": ["ruff", "check"],
    "format": ["ruff", "format", "--check"],
    "sast": ["bandit"],
}


class PythonToolchain:
    """pytest + ruff + bandit for a Python project, with a uv-built, cached test env."""

    language = "python"

    def __init__(
        self,
        *,
        python: str | None = None,
        uv: str | None = None,
        install_timeout_s: float = 900,
        limits: Limits | None = None,
        sast_min_severity: str = "medium",
        extra_args: Mapping[str, Sequence[str]] | None = None,
        network: bool = False,
    ) -> None:
        self.python = python  # interpreter for project envs; default: the one running council
        self.uv = uv
        self.install_timeout_s = install_timeout_s
        self.limits = limits
        self.sast_min_severity = sast_min_severity
        # The user's own arguments per gate ("test", "lint", "format", "sast"), from council.yaml.
        self.extra_args = {k: list(v) for k, v in (extra_args or {}).items()}
        self.network = network  # test runs get no network unless council.yaml allows it

    @classmethod
    def from_commands(cls, commands: Mapping[str, str], **options: Any) -> PythonToolchain:
        """A toolchain from council.yaml's gate commands (`test: pytest -x -m "not slow"`).

        Each command must name the tool council drives for that gate (their reports are parsed,
        so another tool cannot stand in silently); what follows the tool is passed through.
        """
        extra: dict[str, list[str]] = {}
        for gate, text in commands.items():
            if not text or not text.strip():
                continue
            words = shlex.split(text)
            tool = _GATE_TOOLS[gate]
            if words[: len(tool)] != tool:
                raise ConfigError(
                    f"languages.python.{gate}: '{text}' is not supported; the Python {gate} "
                    f"gate runs `{' '.join(tool)}` (extra arguments after it are passed through), "
                    "or set it to an empty string to switch the gate off"
                )
            extra[gate] = words[len(tool) :]
        return cls(extra_args=extra, **options)

    @staticmethod
    def detect(root: Path) -> bool:
        markers = ("pyproject.toml", "setup.py", "setup.cfg")
        if any((root / name).is_file() for name in markers):
            return True
        if any(root.glob("requirements*.txt")):
            return True
        return next(_python_files(root), None) is not None

    def is_test_file(self, path: str) -> bool:
        return is_test_path(path)

    def affected_tests(self, root: Path, changed: Sequence[str]) -> list[str]:
        """Test files that import (transitively) any of the `changed` project-relative files."""
        return affected_python_tests(
            root,
            changed,
            is_test=is_test_path,
            import_roots=pythonpath_for(root),
            skip_dirs=SKIP_DIRS,
        )

    def prepare(self, root: Path, *, cache_dir: Path, emit: EventSink = null_sink) -> PythonEnv:
        """The project's test env (cached by its dependency declarations). Needs the package
        index, so it runs outside the sandbox; raises ToolchainError with uv's own words."""
        return prepare_env(
            root,
            cache_dir=cache_dir,
            python=self.python,
            uv=self.uv,
            install_timeout_s=self.install_timeout_s,
            emit=emit,
        )

    def run_tests(
        self,
        root: Path,
        env: PythonEnv,
        *,
        paths: Sequence[str] = (),
        timeout_s: float = 300,
        emit: EventSink = null_sink,
    ) -> TestReport:
        """Run pytest in the sandbox and report; a hang comes back as a timed-out report."""
        root = root.resolve()
        scratch = Path(tempfile.mkdtemp(prefix="council-pytest-"))
        try:
            junit = scratch / "junit.xml"
            progress = scratch / "progress.jsonl"
            plugins = scratch / "plugins"
            plugins.mkdir()
            plugin = Path(__file__).with_name("pytest_progress.py")
            shutil.copyfile(plugin, plugins / PROGRESS_PLUGIN)
            argv = [str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            argv += ["-p", PROGRESS_PLUGIN.removesuffix(".py")]
            argv += [f"--junitxml={junit}", "--color=no", "--continue-on-collection-errors"]
            argv += ["-o", "junit_family=xunit1", "-o", "junit_logging=all"]
            argv += ["-o", "junit_log_passing_tests=false"]
            # A test still running near the deadline dumps its stack, so the report says where.
            argv += ["-o", f"faulthandler_timeout={max(1, int(timeout_s * 0.8))}"]
            argv += self.extra_args.get("test", [])
            argv += list(paths)
            result = run(
                argv,
                root,
                timeout_s=timeout_s,
                limits=self.limits,
                network=self.network,
                writable=[scratch],
                readable=list(env.paths),
                env=self._test_env(root, env, plugins, progress),
                emit=emit,
            )
            return report_from_run(result, junit, root, progress=progress)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def lint(
        self,
        root: Path,
        env: PythonEnv | None = None,
        *,
        paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:
        """`ruff check` with the project's own ruff settings; JSON findings."""
        targets = _python_targets(paths)
        if targets is None:
            return GateResult("lint", True, [], "no Python files to lint")
        ruff = project_tool(env, "ruff", "lint Python code")
        argv = [ruff, "check", "--no-cache", "--no-fix", "--output-format", "json"]
        argv += ["--force-exclude", "--extend-exclude", ".council"]
        argv += [*self.extra_args.get("lint", []), *targets]
        result = self._gate_run(argv, root, emit, env)
        try:
            items = json.loads(result.stdout or "[]")
        except json.JSONDecodeError:
            items = None
        if result.exit_code not in (0, 1) or not isinstance(items, list):
            return GateResult("lint", False, [], _tail(result))
        findings = [_ruff_finding(item, root) for item in items]
        summary = _json_gate_tail(result, f"ruff: {len(findings)} findings")
        return GateResult("lint", result.exit_code == 0 and not findings, findings, summary)

    def format_check(
        self,
        root: Path,
        env: PythonEnv | None = None,
        *,
        paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:
        """`ruff format --check` (or the project's own black) when the project uses that
        formatter: one finding per block that would be rewritten, with its lines."""
        formatter = python_formatter(root)
        if formatter is None:
            return GateResult("format", True, [], NO_FORMATTER)
        targets = _python_targets(paths)
        if targets is None:
            return GateResult("format", True, [], "no Python files to check")
        black = find_in_env(env, "black") if formatter == "black" else None
        if black is not None:
            return self._black_check(root, env, black, targets, emit)
        ruff = project_tool(env, "ruff", "check Python formatting")
        argv = [ruff, "format", "--check", "--no-cache", "--force-exclude", "--output-format"]
        argv += ["json", "--extend-exclude", ".council"]
        argv += [*self.extra_args.get("format", []), *targets]
        result = self._gate_run(argv, root, emit, env)
        findings: list[Finding] = []
        unformatted: list[str] = []
        try:
            items = json.loads(result.stdout or "[]")
        except json.JSONDecodeError:
            items = []
        for item in items if isinstance(items, list) else []:
            finding = _ruff_finding(item, root)
            if finding.code == "unformatted":
                unformatted.append(finding.file)
            else:
                findings.append(finding)
        if unformatted:
            diff_argv = [ruff, "format", "--diff", "--no-cache", "--force-exclude"]
            diff_argv += ["--extend-exclude", ".council", *self.extra_args.get("format", [])]
            shown = self._gate_run([*diff_argv, *unformatted], root, emit, env)
            findings += format_findings(shown.stdout, root, unformatted, "ruff format")
        passed = result.exit_code == 0 and not result.timed_out
        tail = _json_gate_tail(result, f"ruff format: {len(findings)} findings")
        return GateResult("format", passed, findings, tail)

    def _black_check(
        self, root: Path, env: PythonEnv | None, black: str, targets: list[str], emit: EventSink
    ) -> GateResult:
        """The project's own black (from its env): `--check --diff` names the blocks."""
        argv = [black, "--check", "--diff", "--quiet", "--no-color", *targets]
        result = self._gate_run(argv, root, emit, env)
        findings = format_findings(result.stdout, root, [], "black")
        for line in result.stderr.splitlines():
            if match := _BLACK_ERROR.match(line.strip()):
                file, message = _rel(match.group(1), root), match.group(2)
                findings.append(Finding(file, 0, "error", "syntax-error", message))
        passed = result.exit_code == 0 and not result.timed_out
        if not passed and not findings:
            return GateResult("format", False, [], _tail(result))
        return GateResult("format", passed, findings, f"black: {len(findings)} findings")

    def sast(
        self,
        root: Path,
        env: PythonEnv | None = None,
        *,
        paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:
        """bandit over the project's code; findings below `sast_min_severity` are dropped, and
        so are `assert` warnings (B101) in test files, where asserts are the point."""
        targets = _python_targets(paths)
        if targets is None:
            return GateResult("sast", True, [], "no Python files to scan")
        bandit = project_tool(env, "bandit", "scan Python code for security issues")
        argv = [bandit, "-f", "json", "-q", "-r", "-x", ",".join(sorted(SKIP_DIRS))]
        argv += [*self.extra_args.get("sast", []), *targets]
        result = self._gate_run(argv, root, emit, env)
        data = _json_object(result.stdout)
        if data is None or result.exit_code not in (0, 1):
            return GateResult("sast", False, [], _tail(result))
        threshold = _SEVERITY_RANK.get(self.sast_min_severity.lower(), 2)
        findings: list[Finding] = []
        for item in data.get("results", []):
            file = _rel(str(item.get("filename", "")), root)
            severity = str(item.get("issue_severity", "")).lower()
            if _SEVERITY_RANK.get(severity, 3) < threshold:
                continue
            if item.get("test_id") == "B101" and is_test_path(file):
                continue
            message = str(item.get("issue_text", "")).strip()
            confidence = str(item.get("issue_confidence", "")).lower()
            if confidence:
                message += f" (confidence: {confidence})"
            findings.append(
                Finding(file, int(item.get("line_number") or 0), severity, item["test_id"], message)
            )
        for error in data.get("errors", []):
            file = _rel(str(error.get("filename", "")), root)
            reason = str(error.get("reason", "could not be scanned"))
            findings.append(Finding(file, 0, "error", "scan-error", reason))
        summary = _json_gate_tail(
            result, f"bandit: {len(findings)} findings at or above {self.sast_min_severity}"
        )
        return GateResult("sast", not findings, findings, summary)

    def _test_env(
        self, root: Path, env: PythonEnv, plugins: Path, progress: Path
    ) -> dict[str, str]:
        return {
            "PYTHONPATH": os.pathsep.join(str(p) for p in [*pythonpath_for(root), plugins]),
            "COUNCIL_PROGRESS_FILE": str(progress),
            "VIRTUAL_ENV": str(env.runtime),
            "PATH": os.pathsep.join([*map(str, env.bin_dirs), os.environ.get("PATH", os.defpath)]),
            # No __pycache__ litter in the work tree (it would show in diffs).
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTEST_ADDOPTS": "",  # the caller's options are not the project's
        }

    def _gate_run(
        self, argv: list[str], root: Path, emit: EventSink, env: PythonEnv | None = None
    ) -> CommandResult:
        return run(
            argv,
            root.resolve(),
            timeout_s=GATE_TIMEOUT_S,
            limits=self.limits,
            network=False,
            readable=env.paths if env is not None else (),
            emit=emit,
        )


def report_from_run(
    result: CommandResult, junit: Path, root: Path, *, progress: Path | None = None
) -> TestReport:
    """A TestReport from pytest's JUnit XML; from the progress plugin's lines when a killed run
    left none (partial results, and the tests still running); else from exit code and output."""
    cases: list[TestCase] = []
    running: list[str] = []
    if junit.is_file():
        try:
            cases = parse_junit(junit, root=root)
        except JUnitError:
            cases = []  # a run killed mid-write: fall back to the progress lines below
    if not cases and progress is not None and progress.is_file():
        cases, running = progress_cases(progress, result.duration_s)
    collection = [c for c in cases if c.message == _COLLECTION_FAILURE]
    cases = [c for c in cases if c.message != _COLLECTION_FAILURE]
    for case in collection:
        case.message = exception_line(case.traceback) or case.message
    output_tail = tail_text(result.output, lines=60)
    if result.timed_out:
        hung = _hang_frames(result.output, root)
        if hung:
            output_tail = "Still running at the time limit:\n" + hung + "\n\n" + output_tail
        if running:
            names = ", ".join(running)
            output_tail = f"Tests running at the time limit: {names}\n{output_tail}"
    forged = forged_results(result, progress)
    if forged is not None:
        collection.append(forged)
    if not cases and not collection and not result.timed_out and result.exit_code not in (0, 5):
        # pytest stopped before collecting (a broken conftest.py, a bad option, a crash):
        # surface it like a collection error so it can be classified and shown.
        collection.append(_startup_error(result.output))
    return TestReport(
        language="python",
        cases=cases,
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        timed_out=result.timed_out,
        collection_errors=collection,
        output_tail=output_tail,
        running=running,
    )


def progress_cases(progress: Path, duration_s: float) -> tuple[list[TestCase], list[str]]:
    """Cases from the progress plugin's lines: each finished test's outcome, and each test that
    started but never finished (it was running when the run was killed) as an error."""
    outcomes: dict[str, TestCase] = {}
    started: list[str] = []
    finished: set[str] = set()
    for line in progress.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line may be cut by the kill
        if not isinstance(record, dict):
            continue
        if "start" in record:
            started.append(str(record["start"]))
            continue
        if "canary" in record:
            continue  # not a test (see _forged_results)
        node, when, outcome = str(record.get("id", "")), record.get("when"), record.get("outcome")
        text = str(record.get("text", ""))
        file = node.split("::", 1)[0]
        if when == "collect":
            trace = short_traceback(text)
            outcomes[node] = TestCase(node, "error", _COLLECTION_FAILURE, trace, file)
            continue
        if when == "teardown":
            finished.add(node)
        if outcome == "passed":
            if when == "call" and node not in outcomes:
                outcomes[node] = TestCase(node, "passed", file=file)
            continue
        if node in outcomes and outcomes[node].outcome in ("failed", "error"):
            continue  # the first failure (setup or call) is the verdict
        verdict = "skipped" if outcome == "skipped" else "failed" if when == "call" else "error"
        message = exception_line(text) or first_line(text)
        outcomes[node] = TestCase(node, verdict, message, short_traceback(text), file)
    running = [n for n in dict.fromkeys(started) if n not in finished]
    for node in running:
        message = f"still running when the run was killed at its time limit ({duration_s:.0f}s)"
        outcomes[node] = TestCase(node, "error", message, "", node.split("::", 1)[0])
    return list(outcomes.values()), running


_FAULTHANDLER_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+) in (\S+)')


def _hang_frames(output: str, root: Path) -> str:
    """The project's own frames from faulthandler's last timeout dump (most recent call first):
    the dump is long and framework-heavy, and a plain tail cuts off the line that matters."""
    dump = output.rsplit("Timeout (", 1)
    if len(dump) < 2:
        return ""
    frames = []
    for line in dump[1].splitlines():
        match = _FAULTHANDLER_FRAME.match(line)
        if match and "site-packages" not in match.group(1):
            path = Path(match.group(1))
            if path.is_absolute() and path.resolve().is_relative_to(root):
                frames.append(
                    f"  {_rel(match.group(1), root)}:{match.group(2)} in {match.group(3)}"
                )
    return "\n".join(dict.fromkeys(frames[:10]))


def _startup_error(output: str) -> TestCase:
    file = ""
    for line in output.splitlines():
        if "while loading conftest '" in line:
            file = line.split("'")[1]
            break
    message = exception_line(output) or (output.strip().splitlines() or ["pytest failed"])[-1]
    return TestCase(
        id=file or "<pytest>",
        outcome="error",
        message=message,
        traceback=short_traceback(output),
        file=file,
    )


def _python_targets(paths: Sequence[str]) -> list[str] | None:
    """Explicit .py/.pyi paths, `["."]` for the whole project, or None if none of `paths` is
    Python (so a gate on a change to README.md passes without running)."""
    if not paths:
        return ["."]
    targets = [p for p in paths if PurePosixPath(p).suffix in (".py", ".pyi")]
    return targets or None


def _python_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath) / name


def _ruff_finding(item: dict[str, object], root: Path) -> Finding:
    location = item.get("location") or {}
    row = location.get("row", 0) if isinstance(location, dict) else 0
    code = item.get("code")
    # Syntax errors (no code, or invalid-syntax); pyflakes (F) findings are real bugs; the rest
    # is style.
    is_bug = not code or code == "invalid-syntax" or str(code).startswith(("F", "E9"))
    severity = "error" if is_bug else "warning"
    return Finding(
        file=_rel(str(item.get("filename", "")), root),
        line=int(row or 0),
        severity=severity,
        code=str(code or "syntax-error"),
        message=str(item.get("message", "")),
    )


def _json_object(text: str) -> dict | None:
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(text[start:])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _json_gate_tail(result: CommandResult, summary: str) -> str:
    """The tool's stderr (warnings) and a one-line summary: its JSON stdout is in `findings`."""
    return tail_text(f"{result.stderr.strip()}\n{summary}".strip(), lines=40)


def _tail(result: CommandResult) -> str:
    text = result.output
    if result.timed_out:
        text += f"\n(killed after {result.duration_s:.0f}s)"
    return tail_text(text, lines=40)
