"""The Java toolchain: detect a project, compile it, run its JUnit tests, report like the rest.

Tests run through `council.sandbox.run` (no network, bounded time, cwd = the project root). A
Maven or Gradle project runs `mvn test` / `gradle test` when that tool works offline here (see
`java_env`); otherwise council compiles main and test sources with `javac` into a scratch folder
outside the work tree and runs the JUnit 5 console launcher, whose JUnit XML is parsed into the
language-neutral `TestReport`. Compile errors come back per file and line as collection errors;
`classify_compile_error` tells the pipeline whether a test file's error is a legitimate TDD red.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from council.events import EventSink, Notice, null_sink
from council.sandbox import CommandResult, Limits, run
from council.toolchains.affected import affected_java_tests
from council.toolchains.gates import GateResult
from council.toolchains.java_env import (
    DEFAULT_JAVA_LIB,
    JavaEnv,
    build_output_dirs,
    build_tool_env,
    cannot_start,
    fallback_notice,
    first_offline_line,
    is_offline_failure,
    junit_jars,
    prepare_java_env,
    project_jars,
    remove_new_build_output,
    start_failure,
)
from council.toolchains.java_errors import (
    CompileErrorKind,
    classify_compile_error,
    is_java_test_path,
    mark_missing_libraries,
    parse_compile_errors,
)
from council.toolchains.junit import JUnitError, parse_junit
from council.toolchains.report import TestCase, TestReport, short_traceback, tail_text

# Folders that never hold the project's own sources (build output, caches, council's state).
SKIP_DIRS = {
    ".git", ".council", ".gradle", ".idea", ".mvn", "target", "build", "out", "bin",
    "node_modules", ".venv", "venv",
}  # fmt: skip
# Surefire's default includes, as the console launcher's class-name filter.
TEST_CLASS_PATTERN = r"^(Test.*|.+[.$]Test.*|.*Tests?|.*TestCase)$"
MAX_COMPILE_PASSES = 5  # each pass sets aside the test files that did not compile
HANG_FRACTION = 0.8  # a Jupiter test still running at this share of the budget is a hang
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_DUMP_FRAME = re.compile(r"^\s+at (\S+\(.*\))\s*$", re.MULTILINE)
_JDK_FRAMES = ("java.", "javax.", "jdk.", "sun.", "com.sun.")
# Before the sandbox's deadline, a thread dump (SIGQUIT) tells where a hung JVM is stuck; the
# JVM prints it to stdout itself, so it survives the kill that follows.
_DUMP_BEFORE_KILL = """
import os, signal, subprocess, sys, threading
proc = subprocess.Popen(sys.argv[2:])
timer = threading.Timer(float(sys.argv[1]), lambda: proc.send_signal(signal.SIGQUIT))
timer.daemon = True
timer.start()
sys.exit(proc.wait())
"""
_FRAMEWORK_FRAMES = (
    "org.junit.", "junit.framework.", "java.base/jdk.internal.", "java.base/java.lang.reflect.",
    "java.base/java.util.", "jdk.internal.", "sun.reflect.", "org.apache.maven.surefire.",
    "org.gradle.", "worker.org.gradle.",
)  # fmt: skip
_LAUNCHER_NOISE = re.compile(r"^(?:unique-id|display-name): .*$\n?", re.MULTILINE)


@dataclass
class JavaSources:
    """The project's .java files (project-relative POSIX paths), split into main and test."""

    main: list[str]
    tests: list[str]


class JavaToolchain:
    """JUnit 5 (and JUnit 4 through vintage) for Maven, Gradle and build-tool-free projects."""

    language = "java"

    def __init__(
        self,
        *,
        java_lib: Path = DEFAULT_JAVA_LIB,
        maven_repo: Path | None = None,
        gradle_home: Path | None = None,
        use_build_tool: bool = True,
        limits: Limits | None = None,
        network: bool = False,
    ) -> None:
        self.java_lib = java_lib  # where Debian's junit5 / junit4 jars live
        self.maven_repo = maven_repo  # default: ~/.m2/repository
        self.gradle_home = gradle_home  # default: $GRADLE_USER_HOME or ~/.gradle
        self.use_build_tool = use_build_tool
        self.limits = limits
        self.network = network

    @staticmethod
    def detect(root: Path) -> bool:
        markers = ("pom.xml", "build.gradle", "build.gradle.kts")
        if any((root / name).is_file() for name in markers):
            return True
        return next(_java_files(root), None) is not None

    def is_test_file(self, path: str) -> bool:
        return is_java_test_path(path)

    def affected_tests(self, root: Path, changed: Sequence[str]) -> list[str]:
        """Test files that name a changed class, directly or through other classes."""
        sources = java_sources(root)
        return affected_java_tests(root, changed, sources.main, sources.tests)

    @staticmethod
    def classify_collection_error(case: TestCase) -> CompileErrorKind:
        """The pipeline's question for each collection error: see `classify_compile_error`."""
        return classify_compile_error(case)

    def prepare(self, root: Path, *, cache_dir: Path, emit: EventSink = null_sink) -> JavaEnv:
        """JDK, build-tool verdict (probed offline once, cached) and test classpath; raises
        ToolchainError naming what to install when javac or the JUnit jars are missing."""
        return prepare_java_env(
            root,
            cache_dir=cache_dir,
            java_lib=self.java_lib,
            maven_repo=self.maven_repo,
            gradle_home=self.gradle_home,
            use_build_tool=self.use_build_tool,
            limits=self.limits,
            emit=emit,
        )

    def run_tests(
        self,
        root: Path,
        env: JavaEnv,
        *,
        paths: Sequence[str] = (),
        timeout_s: float = 300,
        emit: EventSink = null_sink,
    ) -> TestReport:
        """Compile and run the tests in the sandbox; a hang comes back as a timed-out report."""
        root = root.resolve()
        if env.build_tool in ("maven", "gradle"):
            report = self._run_build_tool(root, env, paths, timeout_s, emit)
            if report is not None:
                return report
            # The build tool could not resolve something offline after all: run without it.
            launcher, extra = junit_jars(self.java_lib)
            env = JavaEnv(
                javac=env.javac,
                java=env.java,
                build_tool="javac",
                launcher=launcher,
                classpath=(*extra, *project_jars(root)),
                jdk_home=env.jdk_home,
                key=env.key,
                readable=(env.jdk_home, str(self.java_lib)),
            )
        return self._run_with_launcher(root, env, paths, timeout_s, emit)

    def lint(
        self, root: Path, env: JavaEnv | None = None, *, paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:  # fmt: skip
        return GateResult("lint", True, [], "no Java linter is configured")

    def format_check(
        self, root: Path, env: JavaEnv | None = None, *, paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:  # fmt: skip
        return GateResult("format", True, [], "no Java formatter is configured")

    def sast(
        self, root: Path, env: JavaEnv | None = None, *, paths: Sequence[str] = (),
        emit: EventSink = null_sink,
    ) -> GateResult:  # fmt: skip
        return GateResult("sast", True, [], "no Java security scanner is configured")

    # --- javac + JUnit console launcher ------------------------------------------------------

    def _run_with_launcher(
        self,
        root: Path,
        env: JavaEnv,
        paths: Sequence[str],
        timeout_s: float,
        emit: EventSink,
    ) -> TestReport:
        start = time.monotonic()
        deadline = start + timeout_s
        sources = java_sources(root)
        selected = _select(sources.tests, paths) if paths else None
        scratch = Path(tempfile.mkdtemp(prefix="council-java-"))
        try:
            compiled = self._compile(root, env, sources, scratch, deadline, emit)
            if compiled.result is not None and compiled.result.timed_out:
                return _report(compiled.result, [], compiled.errors, start, timed_out=True)
            wanted = set(selected) if selected is not None else None
            errors = [
                e for e in compiled.errors
                if wanted is None or not is_java_test_path(e.file) or e.file in wanted
            ]  # fmt: skip
            if compiled.classes is None:
                return _report(compiled.result, [], errors, start)
            runnable = [t for t in (selected or []) if t not in compiled.excluded]
            if selected is not None and not runnable:
                return _report(compiled.result, [], errors, start, note=_nothing_selected(paths))
            result, cases, hung = self._launch(
                root, env, compiled.classes, runnable, sources, scratch, deadline, selected, emit
            )
            frames = hung_frames(result.output) if result.timed_out else []
            where = "\n  ".join(frames)
            prefix = f"Still running at the time limit:\n  {where}" if frames else ""
            return _report(
                result,
                cases,
                errors,
                start,
                timed_out=result.timed_out or bool(hung),
                prefix=prefix,
                running=hung,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _compile(
        self,
        root: Path,
        env: JavaEnv,
        sources: JavaSources,
        scratch: Path,
        deadline: float,
        emit: EventSink,
    ) -> _Compiled:
        """javac over main + test sources; test files that fail are set aside and the rest
        recompiled, so one broken test file does not hide every other test's result."""
        excluded: set[str] = set()
        errors: list[TestCase] = []
        result: CommandResult | None = None
        classpath = [env.launcher, *env.classpath]
        for attempt in range(MAX_COMPILE_PASSES):
            out = scratch / f"classes-{attempt}"
            out.mkdir()
            files = [*sources.main, *(t for t in sources.tests if t not in excluded)]
            if not files:
                return _Compiled(out, errors, excluded, result)
            argfile = scratch / f"sources-{attempt}.txt"
            argfile.write_text("".join(_argfile_line(f) for f in files), encoding="utf-8")
            argv = [env.javac, "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1"]
            argv += ["-d", str(out), "-encoding", "UTF-8", "-g", "-implicit:none", "-nowarn"]
            argv += ["-Xmaxerrs", "500", "-cp", os.pathsep.join(classpath), f"@{argfile}"]
            result = self._sandboxed(argv, root, env, scratch, deadline, emit)
            if result.timed_out:
                return _Compiled(None, errors, excluded, result)
            if result.exit_code == 0:
                return _Compiled(out, errors, excluded, result)
            found = parse_compile_errors(result.output, root)
            mark_missing_libraries(found, root, own_packages(root, sources))
            errors += found
            if not found:
                errors.append(_unparsed_compile_failure(result))
                return _Compiled(None, errors, excluded, result)
            broken_tests = {e.file for e in found if e.file in sources.tests}
            if len(broken_tests) < len({e.file for e in found}) or not broken_tests - excluded:
                return _Compiled(None, errors, excluded, result)  # main code does not compile
            excluded |= broken_tests
        return _Compiled(None, errors, excluded, result)

    def _launch(
        self,
        root: Path,
        env: JavaEnv,
        classes: Path,
        runnable: list[str],
        sources: JavaSources,
        scratch: Path,
        deadline: float,
        selected: list[str] | None,
        emit: EventSink,
    ) -> tuple[CommandResult, list[TestCase], list[str]]:
        reports = scratch / "reports"
        remaining = max(1.0, deadline - time.monotonic())
        # Leave room for the JVM's start and for writing the reports after the interrupt.
        hang_s = max(1, int(min(remaining * HANG_FRACTION, remaining - 5)))
        runtime = [str(classes), *_resource_dirs(root), *env.classpath]
        argv = [env.java, "-XX:+UseSerialGC", "-jar", env.launcher, "--disable-banner"]
        argv += ["--disable-ansi-colors", "--details=tree", f"--reports-dir={reports}"]
        argv += ["-cp", os.pathsep.join(runtime)]
        # A Jupiter test still running near the deadline is interrupted and reported by name
        # (with its stack), so a hang says where it is instead of just killing the whole run.
        argv += [f"--config=junit.jupiter.execution.timeout.default={hang_s} s"]
        if selected is None:
            argv += [f"--include-classname={TEST_CLASS_PATTERN}", f"--scan-classpath={classes}"]
        else:
            for path in runnable:
                name = class_name(root, path)
                if (classes / (name.replace(".", "/") + ".class")).is_file():
                    argv.append(f"--select-class={name}")
        dump_after = max(0.2, remaining - min(2.0, remaining * 0.1))
        wrapped = [sys.executable, "-I", "-c", _DUMP_BEFORE_KILL, f"{dump_after:.1f}", *argv]
        result = self._sandboxed(wrapped, root, env, scratch, deadline, emit)
        result.argv = argv  # the wrapper is plumbing; the command is the launcher
        cases = _read_reports(reports, root, _class_files(root, sources.tests))
        hang = re.compile(rf"timed out after {hang_s} seconds?\b")
        # The tests JUnit interrupted at its per-test limit: the ones running when time ran out.
        hung = [c.id for c in cases if c.outcome in ("failed", "error") and hang.search(c.message)]
        return result, cases, hung

    def _sandboxed(
        self,
        argv: list[str],
        root: Path,
        env: JavaEnv,
        scratch: Path,
        deadline: float,
        emit: EventSink,
    ) -> CommandResult:
        return run(
            argv,
            root,
            timeout_s=max(0.5, deadline - time.monotonic()),
            limits=self.limits,
            network=self.network,
            writable=[scratch],
            readable=[Path(p) for p in env.readable if p],
            env=build_tool_env(env.jdk_home),
            emit=emit,
        )

    # --- Maven / Gradle ----------------------------------------------------------------------

    def _run_build_tool(
        self,
        root: Path,
        env: JavaEnv,
        paths: Sequence[str],
        timeout_s: float,
        emit: EventSink,
    ) -> TestReport | None:
        """`mvn test` / `gradle test` offline; None when the tool cannot resolve its plugins or
        dependencies (the caller then runs the launcher instead)."""
        start = time.monotonic()
        maven = env.build_tool == "maven"
        reports = root / ("target/surefire-reports" if maven else "build/test-results/test")
        selected = _select(java_sources(root).tests, paths) if paths else None
        argv = [*env.build_command, "test"]
        names = [PurePosixPath(p).stem for p in selected or []]
        if maven:
            argv += ["-Dsurefire.failIfNoSpecifiedTests=false", "-DfailIfNoTests=false"]
            if names:
                argv.append("-Dtest=" + ",".join(names))
        else:
            for name in names:
                argv += ["--tests", name]
        existed = build_output_dirs(root)
        if reports.is_dir():
            for stale in reports.glob("TEST-*.xml"):
                stale.unlink()  # an earlier run's verdicts must not be read as this run's
        home = Path(env.tool_home) if env.tool_home else None
        try:
            result = run(
                argv,
                root,
                timeout_s=timeout_s,
                limits=self.limits,
                network=self.network,
                # Gradle locks files in its user home; Maven only reads its local repository.
                writable=[home] if home is not None and not maven else [],
                readable=[Path(p) for p in (env.jdk_home, env.tool_home) if p],
                env=build_tool_env(env.jdk_home, "" if maven else env.tool_home),
                emit=emit,
            )
            sources = java_sources(root)
            cases = _read_reports(reports, root, _class_files(root, sources.tests))
        finally:
            remove_new_build_output(root, existed)
        errors = [] if cases else parse_compile_errors(result.output, root)
        mark_missing_libraries(errors, root, own_packages(root, sources))
        if not cases and not errors and cannot_start(result, root):
            # It resolved nothing offline, or never started (a wrapper that lost its exec bit
            # or its Gradle since the probe): no build tool, so javac runs the tests.
            tool = "maven" if maven else "gradle"
            if is_offline_failure(result.output):
                reason = f"offline build failed: {first_offline_line(result.output)}"
            else:
                reason = f"{Path(argv[0]).name} could not start: {start_failure(result)}"
            emit(Notice(level="warning", message=fallback_notice(tool, reason)))
            return None
        return _report(result, cases, errors, start)


@dataclass
class _Compiled:
    classes: Path | None  # None when nothing can run (main code failed, or timed out)
    errors: list[TestCase]
    excluded: set[str]  # test files set aside because they did not compile
    result: CommandResult | None


def java_sources(root: Path) -> JavaSources:
    main: list[str] = []
    tests: list[str] = []
    for path in _java_files(root):
        rel = path.relative_to(root).as_posix()
        if path.name == "module-info.java":
            continue  # tests run on the class path, where a module descriptor does not compile
        (tests if is_java_test_path(rel) else main).append(rel)
    return JavaSources(sorted(main), sorted(tests))


def own_packages(root: Path, sources: JavaSources) -> set[str]:
    """The packages the project's own .java files declare."""
    names = (class_name(root, rel) for rel in [*sources.main, *sources.tests])
    return {name.rpartition(".")[0] for name in names if "." in name}


def class_name(root: Path, rel: str) -> str:
    """The fully qualified name of the top-level class in a .java file (package + file name)."""
    try:
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    package = _PACKAGE.search(_COMMENTS.sub("", text))
    stem = PurePosixPath(rel).stem
    return f"{package.group(1)}.{stem}" if package else stem


def _java_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if name.endswith(".java"):
                yield Path(dirpath) / name


def _select(tests: list[str], paths: Sequence[str]) -> list[str]:
    """Test files named by `paths` (files, or folders holding them)."""
    chosen: list[str] = []
    for raw in paths:
        path = PurePosixPath(raw.replace("\\", "/")).as_posix().removeprefix("./").rstrip("/")
        for test in tests:
            if (test == path or test.startswith(path + "/") or path == ".") and test not in chosen:
                chosen.append(test)
    return chosen


def _class_files(root: Path, tests: list[str]) -> dict[str, str]:
    return {class_name(root, rel): rel for rel in tests}


def _read_reports(reports: Path, root: Path, files: dict[str, str]) -> list[TestCase]:
    cases: list[TestCase] = []
    if not reports.is_dir():
        return cases
    for xml in sorted(reports.glob("TEST-*.xml")):
        try:
            parsed = parse_junit(xml)
            texts = _failure_texts(xml)
        except (JUnitError, ET.ParseError):
            continue  # a run killed mid-write
        for case, text in zip(parsed, texts, strict=False):
            if text and case.outcome in ("failed", "error"):
                # Java puts the failing frame at the top of a trace; the generic last-lines
                # cut keeps only the runner's frames.
                case.traceback = java_traceback(text)
            cases.append(_with_java_id(case, files))
    return cases


def _failure_texts(xml: Path) -> list[str]:
    """The full failure/error text of each <testcase>, in document order ("" when it passed)."""
    texts = []
    for element in ET.parse(xml).getroot().iter():
        if element.tag.rsplit("}", 1)[-1] != "testcase":
            continue
        text = ""
        for child in element:
            if child.tag.rsplit("}", 1)[-1] in ("failure", "error"):
                text = (child.text or "").strip()
                break
        texts.append(text)
    return texts


def java_traceback(text: str, max_lines: int = 20) -> str:
    """A Java stack trace without the test framework's and reflection's frames: the exception,
    the project's own frames (where it failed), and any `Caused by:` / `Suppressed:` headers."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("at ") and stripped[3:].startswith(_FRAMEWORK_FRAMES):
            continue
        if stripped.startswith("...") and stripped.endswith("more"):
            continue
        kept.append(line.rstrip())
    if len(kept) > max_lines:
        kept = [*kept[:max_lines], "\t..."]
    return "\n".join(kept)


def hung_frames(output: str) -> list[str]:
    """The project's own frames from the JVM's thread dump (SIGQUIT): where the run was stuck."""
    dump = output.rsplit("Full thread dump", 1)
    if len(dump) < 2:
        return []
    frames = []
    for match in _DUMP_FRAME.finditer(dump[1]):
        frame = match.group(1)
        if not frame.startswith(_FRAMEWORK_FRAMES + _JDK_FRAMES):
            frames.append(frame)
    return list(dict.fromkeys(frames))[:10]


def _with_java_id(case: TestCase, files: dict[str, str]) -> TestCase:
    """`src/test/java/demo/CalcTest.java::adds` (nested: `...CalcTest.java::Inner::adds`), the
    same for the console launcher and Surefire; `demo.CalcTest::adds` when the file is unknown."""
    classname, _, name = case.id.partition("::")
    name = name.removesuffix("()")
    top, *nested = classname.split("$")
    file = files.get(top, "")
    if file:
        case.id = "::".join([file, *nested, name] if name else [file, *nested])
        case.file = file
    else:
        case.id = f"{classname}::{name}" if name else classname
    case.output = _LAUNCHER_NOISE.sub("", case.output).strip()
    return case


def _resource_dirs(root: Path) -> list[str]:
    return [
        str(root / folder)
        for folder in ("src/main/resources", "src/test/resources")
        if (root / folder).is_dir()
    ]


def _argfile_line(path: str) -> str:
    # javac @argfiles: quote every path (spaces), escaping backslashes and quotes inside.
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"\n'


def _unparsed_compile_failure(result: CommandResult) -> TestCase:
    text = result.output.strip() or f"javac exited with {result.exit_code}"
    return TestCase(
        id="<javac>",
        outcome="error",
        message=text.splitlines()[0],
        traceback=short_traceback(text),
    )


def _nothing_selected(paths: Sequence[str]) -> str:
    return "no runnable Java test file among: " + ", ".join(paths)


def _report(
    result: CommandResult | None,
    cases: list[TestCase],
    compile_errors: list[TestCase],
    start: float,
    *,
    timed_out: bool = False,
    note: str = "",
    prefix: str = "",
    running: list[str] | None = None,
) -> TestReport:
    output = result.output if result is not None else ""
    exit_code = result.exit_code if result is not None else None
    if note:
        output = f"{output}\n{note}".strip()
        exit_code = exit_code or 4  # like pytest's usage error: nothing to run
    if not cases and not compile_errors and not timed_out and exit_code not in (0, None):
        compile_errors = [_startup_error(output, exit_code)]
    return TestReport(
        language="java",
        cases=cases,
        exit_code=None if timed_out and result is not None and result.timed_out else exit_code,
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        collection_errors=compile_errors,
        output_tail=f"{prefix}\n\n{tail_text(output, lines=60)}" if prefix else tail_text(output),
        running=list(running or []),
    )


def _startup_error(output: str, exit_code: int) -> TestCase:
    """The runner stopped before any test (a bad option, a JVM that did not start)."""
    text = output.strip() or f"exit {exit_code}"
    lines = [line for line in text.splitlines() if line.strip()]
    message = next((line for line in lines if "rror" in line or "xception" in line), lines[-1])
    return TestCase(
        id="<java>", outcome="error", message=message.strip(), traceback=tail_text(text)
    )
