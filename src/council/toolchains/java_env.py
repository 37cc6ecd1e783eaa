"""Resolve what a Java project's tests need: the JDK, the JUnit jars, and which build tool runs.

Policy: a Maven or Gradle project runs through its own build tool when that tool is installed AND
works offline here (probed once, verdict cached by the build files); otherwise, and for projects
with no build tool at all, council compiles with `javac` and runs the JUnit 5 console launcher
from Debian's `junit5` package (JUnit 4 tests through its vintage engine), with a Notice saying
why the build tool was not used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from council.errors import ToolchainError
from council.events import EventSink, Notice, null_sink
from council.sandbox import CommandResult, Limits, run
from council.toolchains.java_errors import parse_compile_errors

ENV_FORMAT = 2  # bump when the cached verdict's shape changes
PROBE_TIMEOUT_S = 300.0
DEFAULT_JAVA_LIB = Path("/usr/share/java")  # where Debian's Java packages put their jars
LAUNCHER_JAR = "junit-platform-console-standalone.jar"
# Debian's standalone launcher lists the Jupiter and vintage engines in its manifest Class-Path;
# tests also compile against JUnit 4 and Hamcrest when they are installed.
JUNIT4_JARS = ("junit4.jar", "hamcrest.jar")
JUNIT5_HINT = "install Debian's junit5 package (apt-get install junit5)"
JAVAC_MISSING = "javac not found (install a JDK 17+, e.g. apt-get install default-jdk)"
# A build tool that cannot reach or find its plugins/dependencies says one of these.
_OFFLINE_FAILURE = re.compile(
    r"in offline mode|could not be resolved|Could not resolve|Could not transfer"
    r"|Could not GET|Could not download|No cached version|Unknown host|Could not find artifact"
    r"|Non-resolvable|UnknownHostException|Plugin .* could not be found",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class JavaEnv:
    """Everything a test run needs, resolved once per project (and cached)."""

    javac: str
    java: str
    build_tool: str  # "javac" (council compiles + console launcher), "maven" or "gradle"
    launcher: str = ""  # the JUnit console launcher jar ("" when the build tool runs tests)
    classpath: tuple[str, ...] = ()  # JUnit 4 / Hamcrest jars and the project's lib/*.jar
    build_command: tuple[str, ...] = ()  # mvn / gradle argv prefix, offline
    tool_home: str = ""  # Maven local repository or Gradle user home the build tool reads
    fallback_reason: str = ""  # why a build-tool project runs with javac instead
    jdk_home: str = ""
    key: str = ""
    readable: tuple[str, ...] = field(default=())  # paths the sandbox must keep visible


def find_jdk_tool(name: str) -> str | None:
    """`name` from $JAVA_HOME/bin when set, else from PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def build_tool_of(root: Path) -> str:
    """ "maven", "gradle" or "" for a project with no build file."""
    if (root / "pom.xml").is_file():
        return "maven"
    if any((root / name).is_file() for name in ("build.gradle", "build.gradle.kts")):
        return "gradle"
    return ""


def junit_jars(java_lib: Path) -> tuple[str, tuple[str, ...]]:
    """The console launcher and the extra compile/run jars; ToolchainError when junit5 is absent."""
    launcher = java_lib / LAUNCHER_JAR
    if not launcher.is_file():
        raise ToolchainError(
            f"the JUnit 5 console launcher ({launcher}) was not found; it is needed to run "
            "Java tests without a build tool",
            hint=f"Fix: {JUNIT5_HINT}.",
        )
    extra = tuple(str(java_lib / name) for name in JUNIT4_JARS if (java_lib / name).is_file())
    return str(launcher), extra


def project_jars(root: Path) -> tuple[str, ...]:
    """Jars the project ships itself (lib/*.jar, libs/*.jar), sorted for a stable classpath."""
    jars: list[str] = []
    for folder in ("lib", "libs"):
        jars += sorted(str(p) for p in (root / folder).glob("*.jar") if p.is_file())
    return tuple(jars)


def prepare_java_env(
    root: Path,
    *,
    cache_dir: Path,
    java_lib: Path = DEFAULT_JAVA_LIB,
    maven_repo: Path | None = None,
    gradle_home: Path | None = None,
    use_build_tool: bool = True,
    limits: Limits | None = None,
    emit: EventSink = null_sink,
) -> JavaEnv:
    """Resolve the JDK, the build tool verdict and the test classpath for the project at `root`."""
    root = root.resolve()
    javac = find_jdk_tool("javac")
    if javac is None:
        raise ToolchainError(JAVAC_MISSING)
    java = find_jdk_tool("java")
    if java is None:
        raise ToolchainError("java not found (install a JDK 17+, e.g. apt-get install default-jdk)")
    jdk_home = str(Path(os.path.realpath(javac)).parent.parent)
    tool = build_tool_of(root) if use_build_tool else ""
    command, home, missing = _build_command(root, tool, maven_repo, gradle_home)
    key = _env_key(root, javac, tool, command, home, java_lib)
    verdict = _cached_verdict(cache_dir, key)
    if tool and verdict is None:
        verdict = _probe(root, tool, command, home, jdk_home, limits, emit, missing)
        _store_verdict(cache_dir, key, verdict)
    verdict = verdict or {}
    build_tool, reason = verdict.get("build_tool", "javac"), verdict.get("reason", "")
    if tool and build_tool == "javac":
        emit(Notice(level="warning", message=fallback_notice(tool, reason)))
    if build_tool != "javac":
        return JavaEnv(
            javac=javac,
            java=java,
            build_tool=build_tool,
            build_command=command,
            tool_home=home,
            jdk_home=jdk_home,
            key=key,
            readable=(jdk_home,),
        )
    launcher, extra = junit_jars(java_lib)
    return JavaEnv(
        javac=javac,
        java=java,
        build_tool="javac",
        launcher=launcher,
        classpath=(*extra, *project_jars(root)),
        fallback_reason=reason,
        jdk_home=jdk_home,
        key=key,
        readable=(jdk_home, str(java_lib)),
    )


def fallback_notice(tool: str, reason: str) -> str:
    name = {"maven": "Maven (mvn)", "gradle": "Gradle"}.get(tool, tool)
    return (
        f"{name} cannot run this project's tests here ({reason}); compiling with javac and "
        "running the JUnit 5 console launcher instead (dependencies other than JUnit must be "
        "jars in lib/)"
    )


def _build_command(
    root: Path, tool: str, maven_repo: Path | None, gradle_home: Path | None
) -> tuple[tuple[str, ...], str, str]:
    """The build tool's argv prefix and home, or () and why there is no usable build tool."""
    if tool == "maven":
        mvn = shutil.which("mvn")
        if mvn is None:
            return (), "", "mvn is not installed"
        repo = maven_repo or Path.home() / ".m2" / "repository"
        # The sandbox gives HOME a private tmp, so the local repository is named explicitly.
        argv = (mvn, "-o", "-B", "-q", "-Dstyle.color=never", f"-Dmaven.repo.local={repo}")
        return argv, str(repo), ""
    if tool == "gradle":
        home = gradle_home or Path(os.environ.get("GRADLE_USER_HOME", Path.home() / ".gradle"))
        wrapper = root / "gradlew"
        installed = shutil.which("gradle")
        if wrapper.is_file() and os.access(wrapper, os.X_OK):
            gradle = "./gradlew"
        elif installed is not None:
            gradle = installed
        else:
            why = "./gradlew is not executable" if wrapper.is_file() else "./gradlew is absent"
            return (), str(home), f"{why} and gradle is not installed"
        if not home.is_dir():
            # A fresh machine: the wrapper would have to download Gradle into a home that does
            # not exist, and Gradle cannot resolve anything offline from an empty one.
            return (), str(home), f"no Gradle user home at {home} (nothing cached offline)"
        return (gradle, "--offline", "--no-daemon", "-q"), str(home), ""
    return (), "", ""


def _probe(
    root: Path,
    tool: str,
    command: tuple[str, ...],
    home: str,
    jdk_home: str,
    limits: Limits | None,
    emit: EventSink,
    missing: str = "",
) -> dict[str, str]:
    """Does the build tool compile the project and resolve its test runner offline?

    Only two outcomes keep the tool: it compiled the tests, or it failed on the project's own
    compile errors (the tool itself works). Anything else (it did not start, it could not
    resolve offline, it timed out) means no build tool here, and the verdict says why.
    """
    if not command:
        return {"build_tool": "javac", "reason": missing or f"{tool} is not installed"}
    if tool == "maven":
        # The test phase with tests skipped resolves every plugin up to Surefire and compiles.
        argv = [*command, "test", "-DskipTests"]
    else:
        argv = [*command, "testClasses"]
    scratch = Path(tempfile.mkdtemp(prefix="council-java-probe-"))
    had_output = build_output_dirs(root)
    try:
        result = run(
            argv,
            root,
            timeout_s=PROBE_TIMEOUT_S,
            limits=limits,
            network=False,
            writable=[scratch, *([Path(home)] if tool == "gradle" and home else [])],
            readable=[Path(p) for p in (jdk_home, home) if p],
            env=build_tool_env(jdk_home, home if tool == "gradle" else ""),
            emit=emit,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        remove_new_build_output(root, had_output)
    name = Path(command[0]).name
    if result.ok:
        return {"build_tool": tool, "reason": f"{name} compiled the tests offline"}
    offline = _OFFLINE_FAILURE.search(result.output)
    if result.timed_out or offline:
        why = "timed out" if result.timed_out else first_offline_line(result.output)
        return {"build_tool": "javac", "reason": f"offline build failed: {why}"}
    if parse_compile_errors(result.output, root):
        # It failed for the project's own reasons (a compile error): the tool itself works.
        return {"build_tool": tool, "reason": f"{name} works; the project's code did not compile"}
    return {"build_tool": "javac", "reason": f"{name} could not start: {start_failure(result)}"}


def start_failure(result: CommandResult) -> str:
    """The line that says why a build tool did not get as far as compiling anything."""
    lines = [ln.strip() for ln in result.output.splitlines() if ln.strip()]
    for line in lines:
        if re.search(r"rror|xception|denied|not found|cannot|could not|fail", line, re.I):
            return re.sub(r"^\[ERROR\]\s*", "", line)[:300]
    return (lines[-1] if lines else f"exit {result.exit_code}")[:300]


def cannot_start(result: CommandResult, root: Path) -> bool:
    """A failed build-tool run that produced no compile error of the project's: the tool broke."""
    return not result.ok and not result.timed_out and not parse_compile_errors(result.output, root)


def first_offline_line(output: str) -> str:
    for line in output.splitlines():
        if _OFFLINE_FAILURE.search(line):
            text = re.sub(r"^\[ERROR\]\s*", "", line.strip())
            return text[:300]
    return "unknown error"


def is_offline_failure(output: str) -> bool:
    return _OFFLINE_FAILURE.search(output) is not None


def build_tool_env(jdk_home: str, gradle_home: str = "") -> dict[str, str]:
    env = {"JAVA_HOME": jdk_home}
    if gradle_home:
        env["GRADLE_USER_HOME"] = gradle_home
    return env


_BUILD_OUTPUT = ("target", "build", ".gradle")


def build_output_dirs(root: Path) -> set[str]:
    """Build output folders that exist before a run (those are the project's, left alone)."""
    return {name for name in _BUILD_OUTPUT if (root / name).exists()}


def remove_new_build_output(root: Path, existed: set[str]) -> None:
    """Delete build output folders a run created, so they never show up in the work tree's diff."""
    for name in _BUILD_OUTPUT:
        if name not in existed and (root / name).is_dir():
            shutil.rmtree(root / name, ignore_errors=True)


def _env_key(
    root: Path,
    javac: str,
    tool: str,
    command: tuple[str, ...],
    home: str,
    java_lib: Path,
) -> str:
    """Everything the verdict depends on: the JDK, the tool and how it starts (wrapper files and
    its exec bit), its home (whether it exists and which Gradle versions it holds), the build
    files. Change any of them and the tool is probed again."""
    jdk = os.path.realpath(javac)
    digest = hashlib.sha256(f"{ENV_FORMAT}\0{jdk}\0{tool}\0{command}\0{home}".encode())
    digest.update(str(java_lib).encode())
    for name in _VERDICT_FILES:
        path = root / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
            digest.update(b"x" if os.access(path, os.X_OK) else b"-")
    if home:
        dists = Path(home) / "wrapper" / "dists"
        listing = sorted(p.name for p in dists.iterdir()) if dists.is_dir() else []
        digest.update(f"\0{Path(home).is_dir()}\0{listing}".encode())
    return digest.hexdigest()[:16]


_VERDICT_FILES = (
    "pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts",
    "gradle.properties", "gradlew", "gradle/wrapper/gradle-wrapper.properties",
    "gradle/wrapper/gradle-wrapper.jar", ".mvn/maven.config",
    ".mvn/wrapper/maven-wrapper.properties",
)  # fmt: skip


def _cached_verdict(cache_dir: Path, key: str) -> dict[str, str] | None:
    path = cache_dir / "java" / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    # A verdict without its reason (an older format, a hand edit) is probed again.
    valid = isinstance(data, dict) and "build_tool" in data and data.get("reason")
    return data if valid else None


def _store_verdict(cache_dir: Path, key: str, verdict: dict[str, str]) -> None:
    if not verdict.get("reason"):
        return  # never cache a verdict nobody can explain
    folder = cache_dir / "java"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(verdict), encoding="utf-8")
    os.replace(tmp, folder / f"{key}.json")  # atomic: concurrent runs never read half a file
