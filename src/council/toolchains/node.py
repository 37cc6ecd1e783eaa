"""The JavaScript/TypeScript toolchain: detect a Node project, install it, run its tests and gates.

Tests run with whichever runner the project uses (Jest, Vitest or `node --test`, read from
package.json), in the sandbox (no network, bounded time), each with a JUnit XML reporter whose
report becomes the language-neutral `TestReport`. Gates use the project's own tools from its
node_modules: `tsc --noEmit` (typecheck, when there is a tsconfig.json), ESLint (lint) and
Prettier (format) when the project has them; a project without one passes that gate with a note.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from council.errors import ToolchainError
from council.events import EventSink, null_sink
from council.sandbox import CommandResult, Limits, run
from council.toolchains.affected import affected_js_tests
from council.toolchains.gates import Finding, GateResult, rewrite_findings
from council.toolchains.node_env import (
    NodeEnv,
    find_node,
    find_npm,
    prepare_env,
    read_package_json,
)
from council.toolchains.node_errors import JS_SUFFIXES, classify_collection_error, is_test_path
from council.toolchains.node_report import clean_output, report_from_run
from council.toolchains.node_tools import JEST_JUNIT, ensure_npm_tool, node_test_reporter
from council.toolchains.python_errors import CollectionErrorKind
from council.toolchains.report import TestCase, TestReport, tail_text

GATE_TIMEOUT_S = 300.0
RUNNERS = ("jest", "vitest", "node")
_ESLINT_CONFIGS = (
    "eslint.config.js", "eslint.config.mjs", "eslint.config.cjs", "eslint.config.ts",
    "eslint.config.mts", "eslint.config.cts", ".eslintrc", ".eslintrc.js", ".eslintrc.cjs",
    ".eslintrc.json", ".eslintrc.yml", ".eslintrc.yaml",
)  # fmt: skip
_PRETTIER_CONFIGS = (
    ".prettierrc", ".prettierrc.json", ".prettierrc.yml", ".prettierrc.yaml", ".prettierrc.json5",
    ".prettierrc.js", ".prettierrc.cjs", ".prettierrc.mjs", ".prettierrc.toml",
    "prettier.config.js", "prettier.config.cjs", "prettier.config.mjs",
)  # fmt: skip
_TSC_LINE = re.compile(r"^(.+?)\((\d+),(\d+)\): (error|warning) (TS\d+): (.*)$")
_TSC_GLOBAL = re.compile(r"^(error|warning) (TS\d+): (.*)$")
_PRETTIER_WARN = re.compile(r"^\[warn\] (.+)$")
_PRETTIER_ERROR = re.compile(r"^\[error\] ([^:]+): (.*)$")
_SCRIPT_RUNNERS = [
    ("vitest", re.compile(r"\bvitest\b")),
    ("jest", re.compile(r"\bjest\b|react-scripts test|craco test")),
    ("node", re.compile(r"\bnode\b.*--test\b")),
]


class NodeToolchain:
    """Jest / Vitest / node --test, tsc, ESLint and Prettier for a package.json project."""

    language = "javascript"

    def __init__(
        self,
        *,
        node: str | None = None,
        npm: str | None = None,
        install_timeout_s: float = 900,
        limits: Limits | None = None,
        network: bool = False,
        allow_install_scripts: bool = False,
    ) -> None:
        self.node = node  # default: `node` on PATH
        self.npm = npm  # default: the npm beside that node
        self.install_timeout_s = install_timeout_s
        self.limits = limits
        self.network = network  # test runs get no network unless council.yaml allows it
        # Lifecycle scripts of packages run unsandboxed with the network during install: off
        # unless a project really needs them (see node_env).
        self.allow_install_scripts = allow_install_scripts

    @staticmethod
    def detect(root: Path) -> bool:
        return (root / "package.json").is_file()

    def is_test_file(self, path: str) -> bool:
        return is_test_path(path)

    def affected_tests(self, root: Path, changed: Sequence[str]) -> list[str] | None:
        """None for Jest and Vitest (their related mode finds the tests a change reaches, see
        `run_tests(related=...)`); for `node --test`, by the project's relative imports."""
        if detect_runner(root, read_package_json(root)) != "node":
            return None
        return affected_js_tests(root, changed, _js_files(root), is_test_path)

    def classify_collection_error(self, case: TestCase) -> CollectionErrorKind:
        return classify_collection_error(case)

    def prepare(self, root: Path, *, cache_dir: Path, emit: EventSink = null_sink) -> NodeEnv:
        """The project's node_modules (installed once per dependency set, then linked), and
        council's jest-junit when the project runs Jest without one. npm needs the registry, so
        it runs outside the sandbox; failures are ToolchainErrors with npm's own words."""
        env = prepare_env(
            root,
            cache_dir=cache_dir,
            node=self.node,
            npm=self.npm,
            allow_scripts=self.allow_install_scripts,
            install_timeout_s=self.install_timeout_s,
            emit=emit,
        )
        runner = detect_runner(root, read_package_json(root))
        if runner == "jest" and not (env.node_modules / "jest-junit").is_dir():
            name, version = JEST_JUNIT
            ensure_npm_tool(env.tools_dir, find_npm(env.node, self.npm), name, version, emit=emit)
        return env

    def run_tests(
        self,
        root: Path,
        env: NodeEnv,
        *,
        paths: Sequence[str] = (),
        related: Sequence[str] = (),
        timeout_s: float = 300,
        emit: EventSink = null_sink,
    ) -> TestReport:
        """Run the project's test runner in the sandbox and report; a hang comes back as a
        timed-out report (the whole process tree is killed). `related`: source files whose
        tests run too (Jest --findRelatedTests, vitest related)."""
        root = root.resolve()
        runner = detect_runner(root, read_package_json(root))
        scratch = Path(tempfile.mkdtemp(prefix="council-node-"))
        try:
            junit = scratch / "junit.xml"
            argv, extra = self._test_command(runner, root, env, junit, paths, related)
            writable = [scratch]
            if runner == "jest" and (cache := env.run_cache(root, "jest")) is not None:
                # Jest's transform cache (ts-jest, babel) would otherwise start cold in the
                # sandbox's private /tmp on every run; it is kept per work tree.
                argv.insert(2, f"--cacheDirectory={cache}")
                writable.append(cache)
            result = run(
                argv,
                root,
                timeout_s=timeout_s,
                limits=self.limits,
                network=self.network,
                writable=writable,
                readable=[env.path, env.tools_dir],
                env={**self._env(env), **extra},
                emit=emit,
            )
            return report_from_run(result, junit, root, runner=runner, selected=paths)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def typecheck(
        self,
        root: Path,
        env: NodeEnv,
        *,
        paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:
        """`tsc --noEmit` over the whole project (a change breaks types elsewhere too) when it
        has a tsconfig.json; one finding per diagnostic with file, line and TS code."""
        root = root.resolve()
        if not (root / "tsconfig.json").is_file():
            return GateResult("typecheck", True, [], "no tsconfig.json in this project")
        if paths and _js_targets(paths) is None:
            return GateResult("typecheck", True, [], "no TypeScript/JavaScript files changed")
        tsc = _package_bin(env, "typescript", "tsc")
        if tsc is None:
            return GateResult("typecheck", True, [], "typescript is not installed in this project")
        argv = [str(env.node), str(tsc), "--noEmit", "--pretty", "false", "-p", "tsconfig.json"]
        result = self._gate_run(argv, root, env, emit)
        findings: list[Finding] = []
        for line in clean_output(result.stdout, root).splitlines():
            if match := _TSC_LINE.match(line):
                file, row, _col, severity, code, message = match.groups()
                findings.append(Finding(_rel(file, root), int(row), severity, code, message))
            elif match := _TSC_GLOBAL.match(line):
                findings.append(Finding("", 0, match.group(1), match.group(2), match.group(3)))
        passed = result.exit_code == 0 and not result.timed_out
        if not passed and not findings:
            return GateResult("typecheck", False, [], _tail(result, root))
        return GateResult("typecheck", passed, findings, f"tsc: {len(findings)} findings")

    def lint(
        self,
        root: Path,
        env: NodeEnv,
        *,
        paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:
        """ESLint with the project's own config (JSON formatter); errors fail the gate,
        warnings are reported without failing it, as ESLint itself decides."""
        root = root.resolve()
        if not _has_config(root, _ESLINT_CONFIGS, "eslintConfig"):
            return GateResult("lint", True, [], "no eslint in this project")
        eslint = _package_bin(env, "eslint", "eslint")
        if eslint is None:
            return GateResult(
                "lint", True, [], "no eslint in this project (configured, not installed)"
            )
        targets = _js_targets(paths)
        if targets is None:
            return GateResult("lint", True, [], "no JavaScript/TypeScript files to lint")
        argv = [str(env.node), str(eslint), "--format", "json"]
        if _major(env, "eslint") >= 9:
            argv.append("--no-warn-ignored")  # an explicit path the config ignores is fine
        result = self._gate_run([*argv, *targets], root, env, emit)
        try:
            items = json.loads(result.stdout or "[]")
        except json.JSONDecodeError:
            items = None
        if result.exit_code not in (0, 1) or not isinstance(items, list):
            return GateResult("lint", False, [], _tail(result, root))
        findings = [
            Finding(
                file=_rel(str(item.get("filePath", "")), root),
                line=int(message.get("line") or 0),
                severity="error" if message.get("severity") == 2 else "warning",
                code=str(
                    message.get("ruleId") or ("syntax-error" if message.get("fatal") else "eslint")
                ),
                message=str(message.get("message", "")),
            )
            for item in items
            for message in item.get("messages", [])
        ]
        tail = tail_text(f"{result.stderr.strip()}\neslint: {len(findings)} findings".strip())
        return GateResult("lint", result.exit_code == 0, findings, tail)

    def format_check(
        self,
        root: Path,
        env: NodeEnv,
        *,
        paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:
        """`prettier --check`: one finding per file that would be reformatted."""
        root = root.resolve()
        package = read_package_json(root)
        declared = "prettier" in _dependencies(package)
        if not (declared or _has_config(root, _PRETTIER_CONFIGS, "prettier")):
            return GateResult("format", True, [], "no prettier in this project")
        prettier = _package_bin(env, "prettier", "prettier")
        if prettier is None:
            return GateResult(
                "format", True, [], "no prettier in this project (configured, not installed)"
            )
        targets = list(paths) or ["."]
        argv = [str(env.node), str(prettier), "--check", "--ignore-unknown", "--no-color", *targets]
        result = self._gate_run(argv, root, env, emit)
        findings: list[Finding] = []
        for line in clean_output(result.output, root).splitlines():
            if match := _PRETTIER_ERROR.match(line):
                findings.append(
                    Finding(_rel(match.group(1), root), 0, "error", "syntax-error", match.group(2))
                )
            elif (match := _PRETTIER_WARN.match(line)) and not match.group(1).startswith(
                "Code style issues"
            ):
                findings.append(
                    Finding(
                        _rel(match.group(1), root),
                        0,
                        "warning",
                        "format",
                        "would be reformatted (run `prettier --write`)",
                    )
                )
        passed = result.exit_code == 0 and not result.timed_out
        if not passed and not findings:
            return GateResult("format", False, [], _tail(result, root))
        findings = [
            block
            for finding in findings
            for block in self._prettier_blocks(finding, root, env, prettier, emit)
        ]
        return GateResult("format", passed, findings, f"prettier: {len(findings)} findings")

    def _prettier_blocks(
        self, finding: Finding, root: Path, env: NodeEnv, prettier: Path, emit: EventSink
    ) -> list[Finding]:
        """A file-level "would be reformatted" as one finding per block prettier rewrites,
        with its lines (so the gate can tell a change's formatting from older code's)."""
        if finding.code != "format" or finding.line:
            return [finding]
        argv = [str(env.node), str(prettier), "--no-color", finding.file]
        shown = self._gate_run(argv, root, env, emit)
        try:
            current = (root / finding.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return [finding]
        if shown.exit_code != 0 or shown.timed_out:
            return [finding]
        blocks = rewrite_findings(finding.file, current, shown.stdout, "prettier --write")
        return blocks or [finding]

    def sast(
        self,
        root: Path,
        env: NodeEnv | None = None,
        *,
        paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:
        """No JavaScript SAST tool is run: the gate passes and says so."""
        return GateResult(
            "sast",
            True,
            [],
            "no SAST tool for JavaScript/TypeScript: not scanned (security rules run in the "
            "lint gate when the project's ESLint config enables them)",
        )

    def _test_command(
        self,
        runner: str,
        root: Path,
        env: NodeEnv,
        junit: Path,
        paths: Sequence[str],
        related: Sequence[str] = (),
    ) -> tuple[list[str], dict[str, str]]:
        node = str(env.node)
        if runner == "jest":
            jest = _package_bin(env, "jest", "jest")
            if jest is None:
                raise ToolchainError(
                    f"{root}: the tests use Jest but jest is not installed in the project",
                    hint="Add jest to devDependencies in package.json.",
                )
            reporter = env.node_modules / "jest-junit"
            if not reporter.is_dir():
                reporter = (
                    env.tools_dir
                    / f"{JEST_JUNIT[0]}@{JEST_JUNIT[1]}"
                    / "node_modules"
                    / JEST_JUNIT[0]
                )
            # --verbose: each file's tests are listed as it finishes, which is all a run
            # killed at its time limit leaves (jest-junit writes at the end).
            argv = [node, str(jest), "--ci", "--watchman=false", "--verbose"]
            argv.append("--reporters=default")
            # --forceExit: a test that leaves a server or timer open would otherwise turn a
            # finished, reported run into a time-out.
            argv += [f"--reporters={reporter}", "--forceExit"]
            if related:
                # Test files given here count as related to themselves: they run as well.
                argv += ["--findRelatedTests", *related, *paths]
            elif paths:
                argv += ["--runTestsByPath", *paths]
            return argv, {
                "JEST_JUNIT_OUTPUT_FILE": str(junit),
                "JEST_JUNIT_ADD_FILE_ATTRIBUTE": "true",
                "JEST_JUNIT_REPORT_TEST_SUITE_ERRORS": "true",
                "JEST_JUNIT_CLASSNAME": "{filepath}",
                "JEST_JUNIT_TITLE": "{classname} > {title}",
                "JEST_JUNIT_ANCESTOR_SEPARATOR": " > ",
                "JEST_JUNIT_SUITE_NAME": "{filepath}",
            }
        if runner == "vitest":
            vitest = _package_bin(env, "vitest", "vitest")
            if vitest is None:
                raise ToolchainError(
                    f"{root}: the tests use Vitest but vitest is not installed in the project",
                    hint="Add vitest to devDependencies in package.json.",
                )
            mode = ["related", "--run"] if related else ["run"]
            argv = [node, str(vitest), *mode, "--reporter=default", "--reporter=junit"]
            return [*argv, f"--outputFile.junit={junit}", *related, *paths], {}
        reporter = node_test_reporter(env.tools_dir)
        argv = [node, "--test", "--test-reporter=spec", "--test-reporter-destination=stdout"]
        argv += [f"--test-reporter={reporter}", f"--test-reporter-destination={junit}"]
        return [*argv, *paths], {}

    def _env(self, env: NodeEnv) -> dict[str, str]:
        path = [str(env.node.parent), str(env.node_modules / ".bin"), os.environ.get("PATH", "")]
        return {
            "PATH": os.pathsep.join(p for p in path if p),
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "CI": "true",
            "NODE_OPTIONS": "",  # the caller's options are not the project's
        }

    def _gate_run(
        self, argv: list[str], root: Path, env: NodeEnv, emit: EventSink
    ) -> CommandResult:
        return run(
            argv,
            root,
            timeout_s=GATE_TIMEOUT_S,
            limits=self.limits,
            network=False,
            readable=[env.path],
            env=self._env(env),
            emit=emit,
        )


def _js_files(root: Path) -> list[str]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("node_modules", "dist", "build", "coverage")
                   and not d.startswith(".")]  # fmt: skip
        for name in names:
            if PurePosixPath(name).suffix in JS_SUFFIXES:
                out.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(out)


def detect_runner(root: Path, package: Mapping[str, Any]) -> str:
    """ "jest", "vitest" or "node": what `npm test` runs, else the runner the project depends on
    or configures, else node's built-in runner."""
    scripts = package.get("scripts")
    script = str(scripts.get("test", "")) if isinstance(scripts, dict) else ""
    for runner, pattern in _SCRIPT_RUNNERS:
        if pattern.search(script):
            return runner
    deps = _dependencies(package)
    if (
        "vitest" in deps
        or any(root.glob("vitest.config.*"))
        or any(root.glob("vitest.workspace.*"))
    ):
        return "vitest"
    if {"jest", "ts-jest", "babel-jest", "react-scripts"} & deps.keys() or "jest" in package:
        return "jest"
    if any(root.glob("jest.config.*")):
        return "jest"
    return "node"


def _dependencies(package: Mapping[str, Any]) -> dict[str, str]:
    deps: dict[str, str] = {}
    for field in ("dependencies", "devDependencies", "optionalDependencies"):
        value = package.get(field)
        if isinstance(value, dict):
            deps.update({str(k): str(v) for k, v in value.items()})
    return deps


def _package_bin(env: NodeEnv, package: str, command: str) -> Path | None:
    """The JS file behind `command` of an installed package (run with node, not through the
    .bin shim, so no shell and no npx are involved)."""
    folder = env.node_modules / package
    try:
        meta = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    bins = meta.get("bin")
    target = bins if isinstance(bins, str) else (bins or {}).get(command)
    if not target or not (folder / target).is_file():
        return None
    return folder / target


def _major(env: NodeEnv, package: str) -> int:
    try:
        meta = json.loads((env.node_modules / package / "package.json").read_text("utf-8"))
        return int(str(meta.get("version", "0")).split(".")[0])
    except (OSError, ValueError, json.JSONDecodeError):
        return 0


def _has_config(root: Path, names: Sequence[str], package_key: str) -> bool:
    if any((root / name).is_file() for name in names):
        return True
    try:
        return package_key in read_package_json(root)
    except ToolchainError:
        return False


def _js_targets(paths: Sequence[str]) -> list[str] | None:
    """Explicit JS/TS paths, `["."]` for the whole project, or None when none of `paths` is
    JavaScript/TypeScript (a gate on a change to README.md passes without running)."""
    if not paths:
        return ["."]
    targets = [p for p in paths if PurePosixPath(p).suffix in JS_SUFFIXES]
    return targets or None


def _rel(path: str, root: Path) -> str:
    if not path:
        return ""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(root).as_posix()
        except ValueError:
            return candidate.as_posix()
    return PurePosixPath(path.replace("\\", "/")).as_posix().removeprefix("./")


def _tail(result: CommandResult, root: Path) -> str:
    text = clean_output(result.output, root)
    if result.timed_out:
        text += f"\n(killed after {result.duration_s:.0f}s)"
    return tail_text(text, lines=40)


__all__ = ["NodeEnv", "NodeToolchain", "detect_runner", "find_node"]
