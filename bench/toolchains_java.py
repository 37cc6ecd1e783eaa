"""Benchmark, Java part: bare `javac` + JUnit console launcher next to `JavaToolchain.run_tests`.

Uses the harness in bench/toolchains.py (same `Case`, same measuring, same table); this file only
adds `java_cases()`. Register it there with `LANGUAGES["java"] = java_cases`, or run it alone:

    python bench/toolchains_java.py [--runs 5]

The bare side is what a developer types for a project without a build tool: compile main and
test sources with `javac`, then `java -jar junit-platform-console-standalone.jar`. Council does
the same work (one javac, one launcher JVM) inside the sandbox, plus report parsing.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import toolchains  # noqa: E402  (the shared harness beside this file)

LAUNCHER = "/usr/share/java/junit-platform-console-standalone.jar"
CLASSES = "build/bare-classes"  # under build/, which council's javac mode never reads as source


def _calc_test(index: int) -> str:
    body = "\n".join(
        f"    @Test void case{n}() {{ assertEquals({n + 1}, new Calc().add({n}, 1)); }}"
        for n in range(5)
    )
    return (
        textwrap.dedent(
            f"""
        package demo;

        import org.junit.jupiter.api.Test;
        import static org.junit.jupiter.api.Assertions.assertEquals;

        class Calc{index}Test {{
        """
        ).lstrip()
        + body
        + "\n}\n"
    )


def java_cases() -> list[toolchains.Case]:
    from council.toolchains import JavaToolchain

    files = {
        "src/main/java/demo/Calc.java": (
            "package demo;\n\npublic class Calc {\n"
            "    public int add(int a, int b) { return a + b; }\n}\n"
        ),
        **{f"src/test/java/demo/Calc{i}Test.java": _calc_test(i) for i in range(3)},
    }
    return [
        toolchains.Case("java", "javac + junit5 console launcher", files, _bare(""), JavaToolchain),
        # The same commands with the JVM flags council passes (C1 only for javac, serial GC):
        # what is left of the ratio is the sandbox, the hang watchdog and report parsing.
        toolchains.Case(
            "java",
            "same, council's JVM flags",
            files,
            _bare("-XX:+UseSerialGC", "-J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1"),
            JavaToolchain,
        ),
    ]


def _bare(java_flags: str, javac_flags: str = "") -> list[str]:
    script = (
        f"rm -rf {CLASSES} && "
        f"javac {javac_flags} -d {CLASSES} -cp {LAUNCHER} $(find src -name '*.java') && "
        f"java {java_flags} -jar {LAUNCHER} --disable-banner -cp {CLASSES} "
        f"--scan-classpath {CLASSES} --reports-dir build/bare-reports"
    )
    return ["sh", "-c", script]


def main() -> int:
    toolchains.LANGUAGES.setdefault("java", java_cases)
    if "--language" not in sys.argv:
        sys.argv += ["--language", "java"]
    return toolchains.main()


if __name__ == "__main__":
    sys.exit(main())
