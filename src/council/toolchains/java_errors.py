"""Java compile errors: parse javac and Maven diagnostics, and tell missing code from a broken test.

A test that calls `new ProfileService()` before Builder has written it fails to compile with
"cannot find symbol": in TDD that is a legitimate red (`missing_code`). A test file with a syntax
error, a missing JUnit import or a typo in its own locals is a broken test Guardian must fix
(`broken_test`). An error in main (non-test) code is always the code side's to fix. A package
that is neither the project's nor the JDK's (`com.google.gson`) is a third-party library the
project does not have (`missing_library`): nobody can write it, the user must add it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Literal

from council.toolchains.report import TestCase

CompileErrorKind = Literal["missing_code", "broken_test", "missing_library"]
MAX_COMPILE_ERRORS = 50

# `src/test/java/demo/CalcTest.java:5: error: cannot find symbol` (javac)
_JAVAC_ERROR = re.compile(r"^(?P<file>[^\s:][^:]*\.java):(?P<line>\d+): error: (?P<msg>.*)$")
# `[ERROR] /abs/src/main/java/demo/Calc.java:[2,64] ';' expected` (Maven's compiler plugin)
_MAVEN_ERROR = re.compile(
    r"^\[ERROR\]\s+(?P<file>\S+\.java):\[(?P<line>\d+)(?:,\d+)?\]\s+(?P<msg>.*)$"
)
# Gradle prints javac's own format after `> Task :compileJava`, with absolute paths.
_DETAIL = re.compile(r"^\s+(symbol|location)\s*:\s*(.*)$")
_SYMBOL = re.compile(r"^(class|interface|enum|record|method|variable|static|constructor)\s+(\w+)")

# Parser errors: the test file is not valid Java.
_SYNTAX = re.compile(
    r"expected$|^illegal start of|^not a statement|^unclosed |reached end of file while parsing"
    r"|^illegal character|^orphaned |without 'if'|^invalid method declaration"
    r"|^illegal (?:line end|escape)|^empty character literal|^malformed "
)
# Errors that mean "the code under test does not have this (yet)": the code side must act.
_MISSING = re.compile(
    r"^cannot find symbol|^package \S+ does not exist|cannot be applied to given types"
    r"|^no suitable (?:method|constructor) found|^incompatible types|has private access"
    r"|is not abstract and does not override|^cannot access |is not public in"
    r"|^static import only from classes|does not take parameters|^cannot infer type arguments"
)
# Names that come from the test framework: when one is missing the test forgot an import.
_FRAMEWORK_PACKAGES = ("org.junit", "junit.", "org.hamcrest", "org.assertj", "org.mockito")
_FRAMEWORK_NAMES = re.compile(
    r"^(?:Test|Tests?Factory|ParameterizedTest|RepeatedTest|Disabled|DisplayName|Nested|Tag"
    r"|Timeout|TempDir|BeforeEach|AfterEach|BeforeAll|AfterAll|Before|After|BeforeClass"
    r"|AfterClass|Ignore|Rule|ValueSource|CsvSource|MethodSource|Assertions|Assert|Assumptions"
    r"|assert\w*|fail|assume\w*|is|equalTo|Mockito|mock|when|verify)$"
)


def is_java_test_path(path: str) -> bool:
    """Maven/Gradle test sources (src/test/...) and Surefire's test class naming conventions."""
    posix = PurePosixPath(path.replace("\\", "/"))
    parts = posix.parts
    if not posix.is_absolute() and any(
        parts[i : i + 2] == ("src", "test") for i in range(len(parts) - 1)
    ):
        return True
    name = posix.name
    if not name.endswith(".java"):
        return False
    stem = name[: -len(".java")]
    return stem.endswith(("Test", "Tests", "TestCase")) or stem.startswith("Test")


def parse_compile_errors(output: str, root: Path) -> list[TestCase]:
    """One error `TestCase` per (file, line) diagnostic in javac or Maven output, in order.

    The id is `path:line` (project-relative), the message javac's own, made one line with the
    symbol and location it names; the traceback keeps the full diagnostic (source line, caret).
    """
    cases: list[TestCase] = []
    seen: set[tuple[str, str, str]] = set()
    lines = output.splitlines()
    for index, line in enumerate(lines):
        match = _JAVAC_ERROR.match(line) or _MAVEN_ERROR.match(line.strip())
        if not match:
            continue
        file = _relative(match.group("file"), root)
        number, text = match.group("line"), match.group("msg").strip()
        block = [line.strip()]
        details: dict[str, str] = {}
        for follow in lines[index + 1 : index + 8]:
            if _JAVAC_ERROR.match(follow) or follow.startswith("[") or not follow.strip():
                break
            if re.match(r"^\d+ errors?$", follow.strip()):
                break
            block.append(follow.rstrip())
            detail = _DETAIL.match(follow)
            if detail:
                details[detail.group(1)] = detail.group(2).strip()
        message = text
        if details:
            message += " (" + ", ".join(f"{k}: {v}" for k, v in details.items()) + ")"
        key = (file, number, message)
        if key in seen:
            continue  # Maven prints every compiler error twice (log, then failure summary)
        seen.add(key)
        cases.append(
            TestCase(
                id=f"{file}:{number}",
                outcome="error",
                message=message,
                traceback="\n".join(block),
                file=file,
            )
        )
        if len(cases) >= MAX_COMPILE_ERRORS:
            break
    return cases


# Where a missing library's note begins in an error message (see mark_missing_libraries).
LIBRARY_NOTE = "a library this project does not have"
# Packages that are always someone else's, whatever the project's own packages look like.
_LIBRARY_PREFIXES = (
    "com.google.", "com.fasterxml.", "org.apache.", "org.slf4j", "org.springframework.",
    "io.netty.", "okhttp3", "com.squareup.", "lombok", "org.json", "org.yaml.", "io.micronaut.",
    "jakarta.", "javax.", "org.hibernate.", "com.zaxxer.", "io.vertx.", "reactor.", "kotlin.",
    "org.assertj.", "org.mockito", "org.testcontainers.", "com.h2database", "org.h2.",
)  # fmt: skip


def mark_missing_libraries(
    cases: list[TestCase], root: Path, own_packages: set[str]
) -> list[TestCase]:
    """Note on each `package X does not exist` whose X is a third-party library the project
    lacks: which package, and where to add it (lib/*.jar, a pom.xml or Gradle dependency)."""
    for case in cases:
        package = re.match(r"^package (\S+) does not exist", case.message)
        if package is None or LIBRARY_NOTE in case.message:
            continue
        name = package.group(1)
        if name.startswith(("org.junit", "junit.", "org.hamcrest")):
            continue  # council provides the test framework: a wrong import, not a library
        if not _is_library(name, own_packages):
            continue
        case.message += f" ({LIBRARY_NOTE}: add {where_to_add(root, name)})"
    return cases


def where_to_add(root: Path, package: str) -> str:
    """Where this project takes its libraries from, for the package a test needs."""
    jar = f"the jar that provides {package} to lib/ (lib/*.jar is on the test classpath)"
    if (root / "pom.xml").is_file():
        return f"a <dependency> for {package} to pom.xml, or {jar}"
    if any((root / n).is_file() for n in ("build.gradle", "build.gradle.kts")):
        return f"a testImplementation dependency for {package} to build.gradle, or {jar}"
    return jar


def _is_library(package: str, own_packages: set[str]) -> bool:
    if package.startswith(_LIBRARY_PREFIXES) or package + "." in _LIBRARY_PREFIXES:
        return not any(p == package or p.startswith(package + ".") for p in own_packages)
    if not own_packages:
        return False  # nothing to compare with: the feature may be adding the first package
    parts = package.split(".")
    for own in own_packages:
        mine = own.split(".")
        if len(os.path.commonprefix([parts, mine])) >= min(2, len(mine)):
            return False  # com.example.profile beside com.example.users: the feature's own
    return True


def classify_compile_error(case: TestCase) -> CompileErrorKind:
    """`missing_code` when the code side must act (main code broken, or a test uses something the
    feature will add), `broken_test` when the test file itself is wrong, `missing_library` when
    it needs a third-party library the project does not have."""
    if LIBRARY_NOTE in case.message:
        return "missing_library"
    if not is_java_test_path(case.file):
        return "missing_code"  # an error in main code: Builder / Artisan fix it
    text = case.message.split(" (symbol:", 1)[0].split(" (location:", 1)[0]
    if _SYNTAX.search(text):
        return "broken_test"
    package = re.match(r"^package (\S+) does not exist", text)
    if package:
        name = package.group(1)
        return "broken_test" if name.startswith(_FRAMEWORK_PACKAGES) else "missing_code"
    if text.startswith("cannot find symbol"):
        return _classify_missing_symbol(case)
    if _MISSING.search(text):
        own = _test_class_name(case.file)
        # "method add in class CalcTest cannot be applied": the test's own helper is wrong.
        if own and re.search(rf"\b(?:class|in) {re.escape(own)}\b", text):
            return "broken_test"
        return "missing_code"
    return "broken_test"  # unreported exception, missing return, duplicate variable, ...


def _classify_missing_symbol(case: TestCase) -> CompileErrorKind:
    symbol = _detail(case.message, "symbol")
    location = _detail(case.message, "location")
    kind_name = _SYMBOL.match(symbol)
    if kind_name is None:
        return "missing_code"
    kind, name = kind_name.groups()
    if _FRAMEWORK_NAMES.match(name):
        return "broken_test"  # `@Test` or `assertEquals` without its import
    if kind in ("class", "interface", "enum", "record", "static"):
        return "missing_code"  # a type (or static member) the feature will add
    if kind == "variable" and name[:1].isupper():
        # `ProfileView.of(user)` with no ProfileView yet: javac cannot tell a missing class
        # from a variable there, but a capitalised name is a type by Java's conventions.
        return "missing_code"
    own = _test_class_name(case.file)
    if own and re.match(rf"^class (?:\S+\.)?{re.escape(own)}\b", location):
        return "broken_test"  # an undefined local or helper in the test class itself
    return "missing_code"  # a method or field the code under test does not have yet


def _detail(message: str, key: str) -> str:
    match = re.search(rf"\b{key}: ([^,)]*(?:\([^)]*\))?[^,)]*)", message)
    return match.group(1).strip() if match else ""


def _test_class_name(file: str) -> str:
    name = PurePosixPath(file).name
    return name[: -len(".java")] if name.endswith(".java") else ""


def _relative(path: str, root: Path) -> str:
    posix = PurePosixPath(path.replace("\\", "/"))
    if posix.is_absolute():
        for base in {root.as_posix(), root.resolve().as_posix()}:
            try:
                return posix.relative_to(base).as_posix()
            except ValueError:
                continue
        return posix.as_posix()
    return posix.as_posix().removeprefix("./")
