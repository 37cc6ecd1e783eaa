"""Parse JUnit XML (pytest, Maven Surefire, jest-junit, ...) into `TestCase`s.

Variants handled: a `<testsuites>` or a bare `<testsuite>` root, nested suites, `<failure>` vs
`<error>` vs `<skipped>` children, message in an attribute or only in the text, per-test
`<system-out>`/`<system-err>`, and a `file` attribute that only some writers add.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

from council.toolchains.report import Outcome, TestCase, first_line, short_traceback, tail_text

MESSAGE_CHARS = 1000
OUTPUT_LINES = 20

# Surefire's rerun records (flakyFailure, rerunFailure, ...) describe attempts, not the verdict.
_VERDICTS: list[tuple[str, Outcome]] = [("failure", "failed"), ("error", "error")]


class JUnitError(ValueError):
    """The XML is not a JUnit report (truncated by a killed run, or not XML at all)."""


def parse_junit(source: str | bytes | Path, *, root: Path | None = None) -> list[TestCase]:
    """Every `<testcase>` in document order. `root` lets file paths be made project-relative."""
    try:
        if isinstance(source, Path):
            tree_root = ET.parse(source).getroot()
        else:
            tree_root = ET.fromstring(source)
    except (ET.ParseError, OSError) as exc:
        raise JUnitError(f"not a readable JUnit XML report: {exc}") from exc
    if _local(tree_root.tag) not in ("testsuites", "testsuite", "testcase"):
        raise JUnitError(f"not a JUnit XML report: root element <{tree_root.tag}>")
    return [
        _case(element, root) for element in tree_root.iter() if _local(element.tag) == "testcase"
    ]


def _case(element: ET.Element, root: Path | None) -> TestCase:
    classname = (element.get("classname") or "").strip()
    name = (element.get("name") or "").strip()
    file = _relative(element.get("file") or "", root)
    if not file and root is not None:
        # pytest names a module that failed to collect in `name`, with an empty classname.
        file = _file_from_classname(classname or name, root)
    outcome, result = _outcome(element)
    message = ""
    traceback = ""
    output = ""
    if result is not None:
        text = (result.text or "").strip()
        message = (result.get("message") or "").strip() or first_line(text)
        message = message[:MESSAGE_CHARS]
        if outcome != "skipped":
            traceback = short_traceback(text)
    if outcome in ("failed", "error"):
        output = _captured_output(element)
    return TestCase(
        id=_case_id(classname, name, file),
        outcome=outcome,
        message=message,
        traceback=traceback,
        file=file,
        output=output,
    )


def _outcome(element: ET.Element) -> tuple[Outcome, ET.Element | None]:
    children = {_local(child.tag): child for child in reversed(list(element))}
    for tag, outcome in _VERDICTS:
        if tag in children:
            return outcome, children[tag]
    if "skipped" in children:
        return "skipped", children["skipped"]
    return "passed", None


def _captured_output(element: ET.Element) -> str:
    chunks = [
        (child.text or "").strip()
        for child in element
        if _local(child.tag) in ("system-out", "system-err") and (child.text or "").strip()
    ]
    return tail_text("\n".join(chunks), lines=OUTPUT_LINES, max_chars=2000) if chunks else ""


def _case_id(classname: str, name: str, file: str) -> str:
    """pytest node ids where the file is known (`tests/test_x.py::TestK::test_y`), else
    `classname::name` (Surefire, Jest)."""
    if file.endswith(".py"):
        module = file[: -len(".py")].replace("/", ".")
        if not classname:
            # pytest writes collection errors and module-level skips with an empty classname.
            return file if not name or name == module else f"{file}::{name}"
        if classname == module or classname.startswith(module + "."):
            classes = [part for part in classname[len(module) :].split(".") if part]
            return "::".join([file, *classes, name])
    if not classname or classname == name:
        return name or classname
    if not name:
        return classname
    return f"{classname}::{name}"


def _relative(path: str, root: Path | None) -> str:
    if not path:
        return ""
    posix = PurePosixPath(path.replace("\\", "/"))
    if root is not None and posix.is_absolute():
        try:
            return posix.relative_to(PurePosixPath(root.resolve().as_posix())).as_posix()
        except ValueError:
            return posix.as_posix()
    return posix.as_posix().removeprefix("./")


def _file_from_classname(classname: str, root: Path) -> str:
    """Find the test module a dotted pytest classname (xunit2: no file attribute) came from."""
    parts = [part for part in classname.split(".") if part]
    for end in range(len(parts), 0, -1):
        candidate = "/".join(parts[:end]) + ".py"
        if (root / candidate).is_file():
            return candidate
    return ""


def _local(tag: str) -> str:
    """Tag name without an XML namespace (some writers add one)."""
    return tag.rsplit("}", 1)[-1]
