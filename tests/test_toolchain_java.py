"""JavaToolchain against real projects: real javac, the JUnit 5 console launcher, real mvn."""

from __future__ import annotations

import os
import shutil
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from council.errors import ToolchainError
from council.events import CommandRun, Notice
from council.toolchains import JavaToolchain, detect_toolchains, toolchain_for
from council.toolchains.java_env import JavaEnv
from council.toolchains.java_errors import classify_compile_error, parse_compile_errors
from council.toolchains.report import TestCase

CALC = """
    package demo;

    public class Calc {
        public int add(int a, int b) {
            return a + b;
        }
    }
"""

JUNIT5_TEST = """
    package demo;

    import org.junit.jupiter.api.Test;
    import static org.junit.jupiter.api.Assertions.assertEquals;

    class CalcTest {
        @Test
        void adds() {
            assertEquals(3, new Calc().add(1, 2));
        }

        @Test
        void addsWrongly() {
            assertEquals(4, new Calc().add(1, 2));
        }

        @Test
        void blowsUp() {
            throw new IllegalStateException("boom");
        }
    }
"""

JUNIT4_TEST = """
    package demo;

    import org.junit.Test;
    import static org.junit.Assert.assertEquals;

    public class LegacyCalcTest {
        @Test
        public void addsTheOldWay() {
            assertEquals(5, new Calc().add(2, 3));
        }

        @Test
        public void failsTheOldWay() {
            assertEquals(6, new Calc().add(2, 3));
        }
    }
"""

GREEN_TEST = """
    package demo;

    import org.junit.jupiter.api.Test;
    import static org.junit.jupiter.api.Assertions.assertEquals;

    class GreenTest {
        @Test
        void adds() {
            assertEquals(2, new Calc().add(1, 1));
        }
    }
"""

MAIN = "src/main/java/demo/Calc.java"
TEST = "src/test/java/demo/CalcTest.java"

POM = """
    <project xmlns="http://maven.apache.org/POM/4.0.0">
      <modelVersion>4.0.0</modelVersion>
      <groupId>demo</groupId>
      <artifactId>demo</artifactId>
      <version>1.0</version>
      <properties>
        <maven.compiler.release>17</maven.compiler.release>
        <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
      </properties>
      <dependencies>
        <dependency>
          <groupId>org.junit.jupiter</groupId>
          <artifactId>junit-jupiter</artifactId>
          <version>5.10.2</version>
          <scope>test</scope>
        </dependency>
      </dependencies>
      <build>
        <plugins>
          <plugin>
            <groupId>org.apache.maven.plugins</groupId>
            <artifactId>maven-resources-plugin</artifactId>
            <version>3.3.1</version>
          </plugin>
          <plugin>
            <groupId>org.apache.maven.plugins</groupId>
            <artifactId>maven-compiler-plugin</artifactId>
            <version>3.13.0</version>
          </plugin>
          <plugin>
            <groupId>org.apache.maven.plugins</groupId>
            <artifactId>maven-surefire-plugin</artifactId>
            <version>3.2.5</version>
          </plugin>
        </plugins>
      </build>
    </project>
"""


def make_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("council-cache")


@pytest.fixture(scope="module")
def toolchain() -> JavaToolchain:
    return JavaToolchain()


def prepared(toolchain: JavaToolchain, root: Path, cache_dir: Path) -> tuple[JavaEnv, list[object]]:
    events: list[object] = []
    env = toolchain.prepare(root, cache_dir=cache_dir, emit=events.append)
    return env, events


def by_id(cases: list[TestCase]) -> dict[str, TestCase]:
    return {case.id: case for case in cases}


# --- detection and naming ------------------------------------------------------------------


def test_detects_build_files_and_bare_java_sources(tmp_path: Path) -> None:
    assert JavaToolchain.detect(make_project(tmp_path / "m", {"pom.xml": POM}))
    assert JavaToolchain.detect(make_project(tmp_path / "g", {"build.gradle.kts": "\n"}))
    assert JavaToolchain.detect(make_project(tmp_path / "bare", {"Calc.java": CALC}))
    assert not JavaToolchain.detect(make_project(tmp_path / "py", {"app.py": "x = 1\n"}))
    # Build output is not the project's source.
    assert not JavaToolchain.detect(make_project(tmp_path / "t", {"target/gen/X.java": CALC}))
    assert "java" in detect_toolchains(tmp_path / "m")
    assert isinstance(toolchain_for("java"), JavaToolchain)


def test_is_test_file_follows_maven_layout_and_surefire_names(toolchain: JavaToolchain) -> None:
    for path in (
        "src/test/java/demo/Helper.java",
        "src/test/resources/fixture.json",
        "CalcTest.java",
        "pkg/CalcTests.java",
        "TestCalc.java",
        "CalcTestCase.java",
    ):
        assert toolchain.is_test_file(path), path
    for path in ("src/main/java/demo/Calc.java", "Testing.md", "Contest.java"):
        assert not toolchain.is_test_file(path), path


# --- javac + console launcher ----------------------------------------------------------------


def test_junit5_passing_failing_and_erroring_tests(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    root = make_project(tmp_path / "p", {MAIN: CALC, TEST: JUNIT5_TEST})
    env, events = prepared(toolchain, root, cache_dir)
    assert env.build_tool == "javac"
    assert not [e for e in events if isinstance(e, Notice)]  # no build tool: nothing to explain

    seen: list[object] = []
    report = toolchain.run_tests(root, env, emit=seen.append)

    assert report.language == "java"
    assert (report.passed, report.failed, report.errors) == (1, 1, 1)
    assert report.exit_code == 1 and not report.green and not report.timed_out
    cases = by_id(report.cases)
    assert set(cases) == {f"{TEST}::adds", f"{TEST}::addsWrongly", f"{TEST}::blowsUp"}
    wrong = cases[f"{TEST}::addsWrongly"]
    assert wrong.outcome == "failed" and wrong.file == TEST
    assert "expected: <4> but was: <3>" in wrong.message
    assert "CalcTest.java:14" in wrong.traceback
    boom = cases[f"{TEST}::blowsUp"]
    assert boom.outcome == "error" and boom.message == "boom"
    assert "IllegalStateException" in boom.traceback
    # Compiled classes went to a scratch folder, not into the work tree.
    assert sorted(p.name for p in root.iterdir()) == ["src"]
    runs = [e for e in seen if isinstance(e, CommandRun)]
    assert Path(runs[0].argv[0]).name == "javac"
    assert env.java in runs[1].argv and env.launcher in runs[1].argv
    assert "FAILED" in report.failure_summary() or "addsWrongly" in report.failure_summary()


def test_junit4_tests_run_through_the_vintage_engine(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    legacy = "src/test/java/demo/LegacyCalcTest.java"
    root = make_project(tmp_path / "p", {MAIN: CALC, legacy: JUNIT4_TEST})
    env, _ = prepared(toolchain, root, cache_dir)

    report = toolchain.run_tests(root, env)

    cases = by_id(report.cases)
    assert cases[f"{legacy}::addsTheOldWay"].outcome == "passed"
    failing = cases[f"{legacy}::failsTheOldWay"]
    assert failing.outcome == "failed" and "expected:<6> but was:<5>" in failing.message
    assert report.counts_line().startswith("1 passed, 1 failed")


def test_green_project_and_paths_select_test_files(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    green = "src/test/java/demo/GreenTest.java"
    root = make_project(tmp_path / "p", {MAIN: CALC, TEST: JUNIT5_TEST, green: GREEN_TEST})
    env, _ = prepared(toolchain, root, cache_dir)

    only_green = toolchain.run_tests(root, env, paths=[green])
    assert only_green.green and [c.id for c in only_green.cases] == [f"{green}::adds"]

    folder = toolchain.run_tests(root, env, paths=["src/test/java/demo/"])
    assert (folder.passed, folder.failed, folder.errors) == (2, 1, 1)

    nothing = toolchain.run_tests(root, env, paths=["src/test/java/other/NoSuchTest.java"])
    assert not nothing.green and not nothing.cases
    assert "no runnable Java test file" in nothing.failure_summary()


def test_main_compile_error_is_reported_per_file_and_line(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    broken = CALC.replace("return a + b;", "return a + b").replace(
        "public class Calc {", "public class Calc {\n        private Strin name;"
    )
    root = make_project(tmp_path / "p", {MAIN: broken, TEST: JUNIT5_TEST})
    env, _ = prepared(toolchain, root, cache_dir)

    report = toolchain.run_tests(root, env)

    assert not report.cases and not report.green and report.exit_code == 1
    errors = by_id(report.collection_errors)
    # javac stops at the syntax error before it resolves types: line 6, the missing ';'.
    assert list(errors) == [f"{MAIN}:6"]
    error = errors[f"{MAIN}:6"]
    assert error.outcome == "error" and error.file == MAIN and "';' expected" in error.message
    assert "return a + b" in error.traceback  # javac's source line and caret
    assert classify_compile_error(error) == "missing_code"  # the code side must fix it
    assert f"COLLECTION ERROR {MAIN}:6" in report.failure_summary()

    # Once it parses, the unresolved type is reported at its own line.
    make_project(root, {MAIN: broken.replace("return a + b", "return a + b;")})
    report = toolchain.run_tests(root, env)
    (error,) = report.collection_errors
    assert error.id == f"{MAIN}:4" and error.message.startswith("cannot find symbol")
    assert "symbol: class Strin" in error.message
    assert toolchain.classify_collection_error(error) == "missing_code"


def test_missing_class_is_missing_code_and_a_syntax_error_is_a_broken_test(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    feature = "src/test/java/demo/ProfileTest.java"
    typo = "src/test/java/demo/TypoTest.java"
    root = make_project(
        tmp_path / "p",
        {
            MAIN: CALC,
            "src/test/java/demo/GreenTest.java": GREEN_TEST,
            feature: """
                package demo;

                import org.junit.jupiter.api.Test;
                import static org.junit.jupiter.api.Assertions.assertEquals;

                class ProfileTest {
                    @Test
                    void showsName() {
                        assertEquals("Ada", new ProfileService().name(1));
                        assertEquals(2, new Calc().multiply(1, 2));
                    }
                }
            """,
            typo: """
                package demo;

                import org.junit.jupiter.api.Test;

                class TypoTest {
                    @Test
                    void oops() {
                        int x = 1
                    }
                }
            """,
        },
    )
    env, _ = prepared(toolchain, root, cache_dir)

    report = toolchain.run_tests(root, env)

    kinds = {c.id: toolchain.classify_collection_error(c) for c in report.collection_errors}
    assert kinds == {
        f"{typo}:8": "broken_test",
        f"{feature}:9": "missing_code",
        f"{feature}:10": "missing_code",
    }
    # The test files that compile still run: one broken file does not hide the others.
    assert [c.id for c in report.cases] == ["src/test/java/demo/GreenTest.java::adds"]
    assert report.passed == 1 and not report.green

    # A forgotten JUnit import and an undefined local are the test's own fault.
    make_project(
        root,
        {
            typo: """
                package demo;

                class TypoTest {
                    @Test
                    void oops() {
                        int x = y + 1;
                    }
                }
            """
        },
    )
    report = toolchain.run_tests(root, env, paths=[typo])
    messages = {c.id: (c.message, classify_compile_error(c)) for c in report.collection_errors}
    assert set(messages) == {f"{typo}:4", f"{typo}:6"}
    assert all(kind == "broken_test" for _, kind in messages.values()), messages


def test_parse_compile_errors_reads_maven_output_once_per_error(tmp_path: Path) -> None:
    output = (
        f"[ERROR] {tmp_path}/src/test/java/demo/CalcTest.java:[5,48] cannot find symbol\n"
        "  symbol:   method multiply(int,int)\n"
        "  location: class demo.Calc\n"
        f"[ERROR] {tmp_path}/src/test/java/demo/CalcTest.java:[5,48] cannot find symbol\n"
        "  symbol:   method multiply(int,int)\n"
        "  location: class demo.Calc\n"
        "[ERROR] -> [Help 1]\n"
    )
    (case,) = parse_compile_errors(output, tmp_path)
    assert case.id == "src/test/java/demo/CalcTest.java:5"
    assert case.message == (
        "cannot find symbol (symbol: method multiply(int,int), location: class demo.Calc)"
    )
    assert classify_compile_error(case) == "missing_code"


def test_a_missing_class_used_as_a_qualifier_is_missing_code(tmp_path: Path) -> None:
    """javac says "variable ProfileView" for `ProfileView.of(user)` when the class is absent."""
    output = (
        f"{tmp_path}/src/test/java/demo/ProfileViewTest.java:14: error: cannot find symbol\n"
        "        Map<String, String> view = ProfileView.of(user).asMap();\n"
        "                                   ^\n"
        "  symbol:   variable ProfileView\n"
        "  location: class ProfileViewTest\n"
        f"{tmp_path}/src/test/java/demo/ProfileViewTest.java:15: error: cannot find symbol\n"
        "        assertEquals(1, count);\n"
        "                        ^\n"
        "  symbol:   variable count\n"
        "  location: class ProfileViewTest\n"
    )
    missing_class, undefined_local = parse_compile_errors(output, tmp_path)
    assert classify_compile_error(missing_class) == "missing_code"
    assert classify_compile_error(undefined_local) == "broken_test"


def _java_processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and b"java" in cmdline:
            found.append(int(entry.name))
    return found


def test_busy_hang_times_out_the_whole_run_and_leaves_no_jvm(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    marker = f"Hang{uuid.uuid4().hex[:8]}Test"
    hang = f"src/test/java/demo/{marker}.java"
    body = f"""
        package demo;

        import org.junit.jupiter.api.Test;

        class {marker} {{
            @Test
            void spins() {{
                long n = 0;
                while (n >= 0) {{ n = (n + 1) % 1000; }}  // never ends, ignores interrupts
            }}
        }}
    """
    root = make_project(tmp_path / "p", {MAIN: CALC, hang: body})
    env, _ = prepared(toolchain, root, cache_dir)

    started = time.monotonic()
    report = toolchain.run_tests(root, env, timeout_s=15)
    elapsed = time.monotonic() - started

    assert report.timed_out and not report.green and report.exit_code is None
    assert elapsed < 15 + 10  # the deadline, plus the sandbox's TERM grace and JVM teardown
    assert "timed out" in report.counts_line()
    # A thread dump taken just before the kill says where the test was stuck.
    assert report.output_tail.startswith("Still running at the time limit:\n")
    assert f"demo.{marker}.spins({marker}.java:9)" in report.output_tail
    time.sleep(0.5)
    assert _java_processes_with(marker) == []


def test_sleeping_hang_is_named_in_a_timed_out_report(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    hang = "src/test/java/demo/SleepyTest.java"
    body = """
        package demo;

        import org.junit.jupiter.api.Test;

        class SleepyTest {
            @Test
            void waitsForever() throws Exception {
                Thread.sleep(600_000);
            }
        }
    """
    root = make_project(tmp_path / "p", {MAIN: CALC, hang: body, TEST: JUNIT5_TEST})
    env, _ = prepared(toolchain, root, cache_dir)

    report = toolchain.run_tests(root, env, timeout_s=20)

    assert report.timed_out and not report.green
    hung = by_id(report.cases)[f"{hang}::waitsForever"]
    assert hung.outcome == "error" and "timed out after" in hung.message
    assert "SleepyTest.java:8" in hung.traceback  # where it was stuck
    assert report.passed == 1  # the other tests still ran and reported
    assert report.running == [f"{hang}::waitsForever"]


def test_missing_javac_is_a_clear_toolchain_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    root = make_project(tmp_path / "p", {MAIN: CALC})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(shutil.which("java") or "/usr/bin/java")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    with pytest.raises(ToolchainError) as info:
        JavaToolchain().prepare(root, cache_dir=cache_dir)
    assert (
        str(info.value) == "javac not found (install a JDK 17+, e.g. apt-get install default-jdk)"
    )


def test_missing_junit_jars_name_the_debian_package(tmp_path: Path, cache_dir: Path) -> None:
    root = make_project(tmp_path / "p", {MAIN: CALC, TEST: JUNIT5_TEST})
    empty = tmp_path / "no-jars"
    empty.mkdir()

    with pytest.raises(ToolchainError) as info:
        JavaToolchain(java_lib=empty).prepare(root, cache_dir=cache_dir)
    assert "junit-platform-console-standalone.jar" in str(info.value)
    assert "apt-get install junit5" in str(info.value)


def test_gates_pass_and_say_none_is_configured(tmp_path: Path, toolchain: JavaToolchain) -> None:
    root = make_project(tmp_path / "p", {MAIN: CALC})
    for gate in (toolchain.lint(root), toolchain.format_check(root), toolchain.sast(root)):
        assert gate.passed and not gate.findings
        assert "no Java" in gate.output_tail and "configured" in gate.output_tail


def test_project_jars_in_lib_are_on_the_classpath(
    tmp_path: Path, toolchain: JavaToolchain, cache_dir: Path
) -> None:
    # Build a real jar with the JDK's own tools, then use it from a project.
    helper = make_project(
        tmp_path / "helper",
        {
            "greet/Greeter.java": "package greet;\npublic class Greeter { "
            'public static String hi() { return "hi"; } }\n'
        },  # fmt: skip
    )
    jar = shutil.which("jar")
    javac = shutil.which("javac")
    assert jar and javac
    os.system(f"cd {helper} && {javac} -d out greet/Greeter.java && {jar} cf greet.jar -C out .")
    root = make_project(
        tmp_path / "p",
        {
            MAIN: CALC,
            "src/test/java/demo/GreetTest.java": """
                package demo;

                import org.junit.jupiter.api.Test;
                import static org.junit.jupiter.api.Assertions.assertEquals;

                class GreetTest {
                    @Test
                    void greets() {
                        assertEquals("hi", greet.Greeter.hi());
                    }
                }
            """,
        },
    )
    (root / "lib").mkdir()
    shutil.copy(helper / "greet.jar", root / "lib" / "greet.jar")
    env, _ = prepared(toolchain, root, cache_dir)

    report = toolchain.run_tests(root, env)

    assert report.green, report.failure_summary()


# --- Maven ------------------------------------------------------------------------------------


def test_maven_project_without_its_plugins_offline_falls_back_to_javac_with_a_notice(
    tmp_path: Path, cache_dir: Path
) -> None:
    root = make_project(tmp_path / "p", {"pom.xml": POM, MAIN: CALC, TEST: JUNIT5_TEST})
    empty_repo = tmp_path / "m2"
    empty_repo.mkdir()
    toolchain = JavaToolchain(maven_repo=empty_repo)

    env, events = prepared(toolchain, root, cache_dir)

    assert env.build_tool == "javac"
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and notices[0].level == "warning"
    assert "Maven (mvn) cannot run this project's tests here" in notices[0].message
    assert "offline" in notices[0].message
    probes = [e for e in events if isinstance(e, CommandRun)]
    assert probes and probes[0].argv[:2] == [shutil.which("mvn"), "-o"]
    report = toolchain.run_tests(root, env)
    assert (report.passed, report.failed, report.errors) == (1, 1, 1)
    assert not (root / "target").exists()  # the probe's build output did not stay behind

    # The verdict is cached by the build files: the next prepare does not probe again.
    again, events = prepared(toolchain, root, cache_dir)
    assert again.build_tool == "javac" and not [e for e in events if isinstance(e, CommandRun)]


def test_maven_project_gives_the_same_report_whichever_way_it_runs(
    tmp_path: Path, cache_dir: Path
) -> None:
    """With the machine's own local repository Maven may or may not work offline; either way
    the policy picks a runner that reports the same tests under the same ids."""
    root = make_project(tmp_path / "p", {"pom.xml": POM, MAIN: CALC, TEST: JUNIT5_TEST})
    toolchain = JavaToolchain()

    env, events = prepared(toolchain, root, cache_dir)
    seen: list[object] = []
    report = toolchain.run_tests(root, env, emit=seen.append)

    notices = [e for e in events if isinstance(e, Notice)]
    commands = [
        "java" if env.java in e.argv else Path(e.argv[0]).name
        for e in seen
        if isinstance(e, CommandRun)
    ]
    if env.build_tool == "maven":
        assert not notices and commands == ["mvn"]
    else:
        assert env.build_tool == "javac" and len(notices) == 1 and commands == ["javac", "java"]
    assert {c.id: c.outcome for c in report.cases} == {
        f"{TEST}::adds": "passed",
        f"{TEST}::addsWrongly": "failed",
        f"{TEST}::blowsUp": "error",
    }
    assert not (root / "target").exists()

    # A compile error comes back per file and line from either runner.
    make_project(root, {MAIN: CALC.replace("return a + b;", "return a + b")})
    report = toolchain.run_tests(root, env)
    assert [c.id for c in report.collection_errors] == [f"{MAIN}:5"]
    assert "';' expected" in report.collection_errors[0].message


# --- Gradle wrapper that cannot start ------------------------------------------------------

# What `gradle wrapper` writes, cut to its last line: start the wrapper jar with java. A
# checkout that lost gradle-wrapper.jar (or never ran `gradle wrapper`) fails right there.
GRADLEW = """#!/bin/sh
APP_HOME=$(cd "$(dirname "$0")" && pwd -P)
exec java -classpath "$APP_HOME/gradle/wrapper/gradle-wrapper.jar" \\
    org.gradle.wrapper.GradleWrapperMain "$@"
"""
BUILD_GRADLE = """
    plugins { id 'java' }
    repositories { mavenCentral() }
    dependencies { testImplementation 'org.junit.jupiter:junit-jupiter:5.10.2' }
    test { useJUnitPlatform() }
"""


def gradle_project(tmp_path: Path, *, executable: bool) -> tuple[Path, Path]:
    """A Gradle project with its wrapper script, and an (empty) Gradle user home."""
    root = make_project(
        tmp_path / "p",
        {"build.gradle": BUILD_GRADLE, "gradlew": GRADLEW, MAIN: CALC, TEST: JUNIT5_TEST},
    )
    os.chmod(root / "gradlew", 0o755 if executable else 0o644)
    home = tmp_path / "gradle-home"
    home.mkdir()
    return root, home


def test_a_gradle_wrapper_that_cannot_start_means_no_gradle(
    tmp_path: Path, cache_dir: Path
) -> None:
    root, home = gradle_project(tmp_path, executable=True)
    toolchain = JavaToolchain(gradle_home=home)

    env, events = prepared(toolchain, root, cache_dir)

    assert env.build_tool == "javac"
    probes = [e for e in events if isinstance(e, CommandRun)]
    assert [p.argv[0] for p in probes] == ["./gradlew"]
    (notice,) = [e for e in events if isinstance(e, Notice)]
    assert "Gradle cannot run this project's tests here (gradlew could not start" in notice.message
    assert "GradleWrapperMain" in notice.message
    report = toolchain.run_tests(root, env)
    assert (report.passed, report.failed, report.errors) == (1, 1, 1)
    # The cached verdict carries its reason; the next prepare reads it instead of probing.
    verdict = (cache_dir / "java" / f"{env.key}.json").read_text()
    assert "could not start" in verdict
    again, events = prepared(toolchain, root, cache_dir)
    assert again.build_tool == "javac" and not [e for e in events if isinstance(e, CommandRun)]
    assert "could not start" in next(e for e in events if isinstance(e, Notice)).message


def test_no_exec_bit_or_no_gradle_home_falls_back_without_a_probe(
    tmp_path: Path, cache_dir: Path
) -> None:
    assert shutil.which("gradle") is None  # else an installed gradle stands in for the wrapper
    root, home = gradle_project(tmp_path, executable=False)
    env, events = prepared(JavaToolchain(gradle_home=home), root, cache_dir)
    assert env.build_tool == "javac" and not [e for e in events if isinstance(e, CommandRun)]
    assert "./gradlew is not executable" in next(e for e in events if isinstance(e, Notice)).message

    # Giving it the exec bit changes what the verdict depends on: probed again.
    os.chmod(root / "gradlew", 0o755)
    again, events = prepared(JavaToolchain(gradle_home=home), root, cache_dir)
    assert again.key != env.key and [e for e in events if isinstance(e, CommandRun)]

    # A fresh machine: no Gradle user home at all.
    fresh = tmp_path / "no-such-home"
    env, events = prepared(JavaToolchain(gradle_home=fresh), root, cache_dir)
    assert env.build_tool == "javac"
    (notice,) = [e for e in events if isinstance(e, Notice)]
    assert f"no Gradle user home at {fresh}" in notice.message


def test_a_cached_verdict_without_its_reason_is_probed_again(
    tmp_path: Path, cache_dir: Path
) -> None:
    root, home = gradle_project(tmp_path, executable=True)
    toolchain = JavaToolchain(gradle_home=home)
    env, _ = prepared(toolchain, root, cache_dir)
    # What older versions cached after a wrapper failed to start: "gradle", no reason.
    (cache_dir / "java" / f"{env.key}.json").write_text('{"build_tool": "gradle", "reason": ""}')

    again, events = prepared(toolchain, root, cache_dir)

    assert again.build_tool == "javac" and [e for e in events if isinstance(e, CommandRun)]


# --- a red start: missing feature code or a missing library ----------------------------------


def test_an_absent_library_is_told_apart_from_missing_feature_code(
    tmp_path: Path, cache_dir: Path, toolchain: JavaToolchain
) -> None:
    root = make_project(
        tmp_path / "p",
        {
            "pom.xml": POM,
            "src/main/java/com/example/users/User.java": "package com.example.users;\n"
            "public class User {}\n",
            "src/test/java/com/example/profile/ProfileTest.java": """
                package com.example.profile;

                import com.example.profile.view.ProfileView;
                import com.fasterxml.jackson.databind.ObjectMapper;
                import org.joda.time.LocalDate;
                import org.junit.jupiter.api.Test;

                class ProfileTest {
                    @Test
                    void renders() throws Exception {
                        new ObjectMapper().writeValueAsString(ProfileView.of(LocalDate.now()));
                    }
                }
            """,
        },
    )
    env, _ = prepared(JavaToolchain(use_build_tool=False), root, cache_dir)

    report = toolchain.run_tests(root, env)

    kinds = {
        c.message.split(" (")[0]: toolchain.classify_collection_error(c)
        for c in report.collection_errors
        if c.message.startswith("package ")
    }
    assert kinds == {
        "package com.example.profile.view does not exist": "missing_code",
        "package com.fasterxml.jackson.databind does not exist": "missing_library",
        "package org.joda.time does not exist": "missing_library",
    }
    jackson = next(c for c in report.collection_errors if "jackson" in c.message)
    assert "add a <dependency> for com.fasterxml.jackson.databind to pom.xml" in jackson.message
    # The summary counts what did not compile: never "0 passed, 0 failed, 0 errors".
    broken = len(report.collection_errors)
    assert broken >= 3
    assert report.brief_counts() == (
        f"0 passed, 0 failed, {broken} errors ({broken} did not compile or collect)"
    )
