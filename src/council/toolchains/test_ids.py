"""Test ids as a person writes them on `--tests`, for every language, and matching them to results.

Accepted forms (the path is a test file; everything after it picks tests inside it):
- `tests/test_x.py::test_name`, `tests/test_x.py::TestClass::test_name` (pytest node ids)
- `tests/test_x.py -k "leap and not century"` (pytest keyword expressions)
- `src/sum.test.js -t "adds numbers"` or `src/sum.test.js::adds numbers` (Jest/Vitest names)
- `CalcTest#adds`, `demo.CalcTest#adds` or `src/test/java/demo/CalcTest.java#adds` (JUnit)
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_JAVA_REF = re.compile(r"^(?P<cls>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)#(?P<method>[\w$]+)$")


class TestIdError(ValueError):
    """A `--tests` value that is not a path, a test id or a path with -k / -t."""


@dataclass(frozen=True)
class TestTarget:
    """A test file, optionally narrowed to named tests (`name`) or a pytest `-k` expression."""

    __test__ = False  # not a pytest test class, despite the name

    path: str
    name: str = ""
    keyword: str = ""

    @property
    def narrowed(self) -> bool:
        return bool(self.name or self.keyword)

    def with_path(self, path: str) -> TestTarget:
        return TestTarget(path, self.name, self.keyword)

    def __str__(self) -> str:
        if self.keyword:
            return f"{self.path} -k {shlex.quote(self.keyword)}"
        return f"{self.path}::{self.name}" if self.name else self.path

    def runner_arg(self, language: str) -> str:
        """What the language's runner is given: pytest takes node ids; the others take the file
        (their results are narrowed to the named tests afterwards)."""
        if language == "python" and self.name:
            return f"{self.path}::{self.name}"
        return self.path

    def matches(self, case_id: str) -> bool:
        """Whether a result's id (`file::rest`) is one of the tests this target names."""
        file, _, rest = case_id.partition("::")
        if file != self.path:
            return False
        if not self.narrowed:
            return True
        if self.keyword:
            return keyword_matches(self.keyword, [*file.rsplit("/", 1)[-1:], *rest.split("::")])
        return name_matches(self.name, rest)


def parse_test_spec(spec: str) -> TestTarget:
    """One `--tests` value, its path not yet checked against the repository."""
    if "::" in spec and not re.search(r"\s-[kt]\s|\s--testNamePattern\s", spec):
        # A test id: everything after the first `::` is the name (it may hold spaces, as Jest
        # names and pytest parameters do).
        path, _, name = spec.strip().partition("::")
        if not path or not name.strip():
            raise TestIdError(f"--tests {spec}: a test id is path::name")
        return TestTarget(path.strip(), name.strip())
    try:
        words = shlex.split(spec)
    except ValueError as exc:
        raise TestIdError(f"--tests {spec}: {exc}") from None
    if not words:
        raise TestIdError("--tests needs a test file or test id")
    location, options = words[0], words[1:]
    keyword = name = ""
    while options:
        flag = options.pop(0)
        if flag in ("-k", "-t", "--testNamePattern") and options:
            value = options.pop(0)
            keyword, name = (value, name) if flag == "-k" else (keyword, value)
        else:
            raise TestIdError(
                f"--tests {spec}: unexpected '{flag}' (after the path only -k EXPRESSION for "
                "pytest or -t NAME for Jest/Vitest may follow)"
            )
    if "::" in location:
        location, _, inner = location.partition("::")
        if name:
            raise TestIdError(f"--tests {spec}: give the test name once (path::name or -t name)")
        name = inner
    elif "#" in location:
        java = _JAVA_REF.match(location.rsplit("/", 1)[-1].removesuffix(".java"))
        head, _, method = location.rpartition("#")
        if java is None and not head.endswith(".java"):
            raise TestIdError(f"--tests {spec}: a JUnit id is Class#method or path.java#method")
        location, name = head, method
    if not location:
        raise TestIdError(f"--tests {spec}: no test file before the test name")
    if keyword and name:
        raise TestIdError(f"--tests {spec}: use either a test name or -k, not both")
    if keyword:
        _compile_keyword(keyword, spec)
    return TestTarget(location, name.strip(), keyword.strip())


def name_matches(name: str, rest: str) -> bool:
    """A test name against the part of a result id after the file: pytest `Class::test[param]`,
    Jest `describe > test`, JUnit `method` or `Nested::method(int)`."""
    if rest == name:
        return True
    for sep in ("::", " > "):
        if rest.startswith(name + sep) or rest.endswith(sep + name):
            return True
    # Parametrised or overloaded cases: test[1], method(int), Nested::method()[2].
    last = rest.split("::")[-1].split(" > ")[-1]
    return any(c.startswith((name + "[", name + "(")) for c in (rest, last))


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def _compile_keyword(expression: str, spec: str = "") -> list[str]:
    tokens = _TOKEN.findall(expression)
    depth, expect_operand = 0, True
    for token in tokens:
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0 or expect_operand:
                raise TestIdError(f"--tests {spec}: unbalanced parentheses in -k '{expression}'")
        elif token in ("and", "or"):
            if expect_operand:
                raise TestIdError(f"--tests {spec}: '{token}' needs a word before it in -k")
            expect_operand = True
        elif token == "not":
            continue
        else:
            expect_operand = False
    if depth or expect_operand:
        raise TestIdError(f"--tests {spec}: incomplete -k expression '{expression}'")
    return tokens


def keyword_matches(expression: str, names: list[str]) -> bool:
    """pytest's -k rules: words match case-insensitively as substrings of the test's name, its
    class names or its file name; combined with and / or / not and parentheses."""
    haystack = [n.lower() for n in names if n]
    tokens = _compile_keyword(expression)
    position = 0

    def peek() -> str:
        return tokens[position] if position < len(tokens) else ""

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def disjunction() -> bool:
        value = conjunction()
        while peek() == "or":
            take()
            value = conjunction() or value
        return value

    def conjunction() -> bool:
        value = negation()
        while peek() == "and":
            take()
            value = negation() and value
        return value

    def negation() -> bool:
        if peek() == "not":
            take()
            return not negation()
        if peek() == "(":
            take()
            value = disjunction()
            take()  # ")"
            return value
        word = take().lower()
        return any(word in name for name in haystack)

    return disjunction()
