"""Turn a Jest / Vitest / `node --test` run (JUnit XML plus exit code and output) into a TestReport.

Ids are `file::describe > test`, like pytest's `file::Class::test`. A test file that failed to
load (jest-junit's "Test suite failed to run", Vitest's file-named case, council's node reporter)
becomes a collection error for `node_errors.classify_collection_error`. Stack frames inside
node_modules and node's internals are dropped and project paths made relative before parsing, so
the short traceback kept for the models shows the project's own frames.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from council.sandbox import CommandResult
from council.toolchains.junit import JUnitError, parse_junit
from council.toolchains.node_tools import SUITE_FAILED
from council.toolchains.report import TestCase, TestReport, short_traceback, tail_text

_NOISE_FRAME = re.compile(
    r"^\s*(?:at |❯ ).*(?:node_modules[/\\]|node:internal|node:async_hooks|\(<anonymous>\)"
    r"|new Promise \(<anonymous>\))"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Jest's explanation of transforms printed above every parse error; the details follow it.
_JEST_BOILERPLATE = re.compile(r"Jest encountered an unexpected token.*?Details:\s*\n", re.DOTALL)
_KEY_LINE = re.compile(
    r"(Cannot find (?:module|package)|Failed to (?:load|resolve|parse)|SyntaxError|\bTS\d{4,5}\b"
    r"|[A-Z]\w*Error\b|Could not locate module|does not provide an export)"
)
_NO_TESTS = re.compile(r"No tests found|No test files found")


def clean_output(text: str, root: Path) -> str:
    """Drop colour codes and framework/internal stack frames; make project paths relative."""
    text = _ANSI.sub("", text)
    for prefix in {str(root.resolve()), str(root)}:
        text = text.replace(prefix + "/", "")
    return "\n".join(line for line in text.splitlines() if not _NOISE_FRAME.match(line))


def report_from_run(
    result: CommandResult,
    junit: Path,
    root: Path,
    *,
    runner: str,
    selected: Sequence[str] = (),
) -> TestReport:
    """A TestReport from the runner's JUnit XML, or from exit code and output when there is none
    (a config error, a crash, or a run killed at its time limit: then Jest's verbose lines give
    the tests that finished, and the `selected` files that never finished were running)."""
    cases: list[TestCase] = []
    collection: list[TestCase] = []
    running: list[str] = []
    if junit.is_file():
        try:
            cases, collection = _parse(junit, root)
        except JUnitError:
            cases = []  # a run killed mid-write: fall back to the output below
    output = clean_output(result.output, root)
    if result.timed_out and not cases and runner == "jest":
        cases, done = jest_verbose_cases(output)
        running = [p for p in selected if p not in done]
        if cases or running:
            finished = f"{len(cases)} tests in {len(done)} files finished before the time limit"
            still = f"; still running: {', '.join(running)}" if running else ""
            output = f"{output}\n{finished}{still}"
    if (
        not cases
        and not collection
        and not result.timed_out
        and result.exit_code not in (0, None)
        and not _NO_TESTS.search(output)
    ):
        # The runner stopped before running any file (bad config, missing preset, crash):
        # surface it like a collection error so it can be classified and shown.
        collection.append(_startup_error(output, runner))
    return TestReport(
        language="javascript",
        cases=cases,
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        timed_out=result.timed_out,
        collection_errors=collection,
        output_tail=tail_text(output, lines=60),
        running=running,
    )


_JEST_FILE = re.compile(r"^(PASS|FAIL)\s+(\S+)")
_JEST_CASE = re.compile(r"^(\s+)([✓✕○√×✎])\s+(.*?)(?:\s+\(\d+(?:\.\d+)?\s*m?s\))?\s*$")


def jest_verbose_cases(output: str) -> tuple[list[TestCase], set[str]]:
    """Tests of the files Jest finished, from its verbose per-file listing (`PASS file`, then
    `describe` headers and `✓`/`✕`/`○` lines by indentation): what a killed run still tells."""
    cases: list[TestCase] = []
    files: set[str] = set()
    file, stack = "", []  # stack: (indent, describe name)
    for line in output.splitlines():
        if match := _JEST_FILE.match(line):
            file, stack = match.group(2), []
            files.add(file)
            continue
        if not file or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0 or line.strip().startswith("●"):
            file = ""  # the listing ended (failure details or the summary follow)
            continue
        stack = [(i, n) for i, n in stack if i < indent]
        if match := _JEST_CASE.match(line):
            mark, name = match.group(2), match.group(3)
            outcome = "passed" if mark in "✓√" else "skipped" if mark in "○✎" else "failed"
            full = " > ".join([*(n for _, n in stack), name])
            cases.append(TestCase(id=f"{file}::{full}", outcome=outcome, file=file))
        else:
            stack.append((indent, line.strip()))
    return cases, files


def _parse(junit: Path, root: Path) -> tuple[list[TestCase], list[TestCase]]:
    try:
        tree = ET.parse(junit)
    except (ET.ParseError, OSError) as exc:
        raise JUnitError(f"not a readable JUnit XML report: {exc}") from exc
    suite_errors: list[str | None] = []  # per case: the full error text of a load failure
    for element in tree.getroot().iter():
        if element.tag.rsplit("}", 1)[-1] != "testcase":
            continue
        classname = element.get("classname") or ""
        name = element.get("name") or ""
        # Vitest reports a file that failed to load as a case named after the file itself.
        is_suite_error = classname == SUITE_FAILED or (bool(name) and classname == name)
        if classname == SUITE_FAILED:
            element.set("classname", name)
            element.set("file", element.get("file") or name)
        texts = []
        for child in element:
            if child.text:
                child.text = clean_output(child.text, root)
                texts.append(child.text)
            if child.get("message"):
                child.set("message", clean_output(child.get("message", ""), root))
        suite_errors.append(
            texts[0] if is_suite_error and texts else "" if is_suite_error else None
        )
    parsed = parse_junit(ET.tostring(tree.getroot()), root=root)
    cases: list[TestCase] = []
    collection: dict[str, TestCase] = {}
    for case, suite_error in zip(parsed, suite_errors, strict=True):
        file = case.file or case.id.split("::", 1)[0]
        if suite_error is not None:
            # jest-junit writes the same failure twice (<error> then <failure>): keep the first.
            if file not in collection:
                collection[file] = _suite_error(case, file, suite_error)
            continue
        name = case.id.split("::", 1)[1] if "::" in case.id else case.id
        case.id = f"{file}::{name.strip().removeprefix('>').strip()}" if file else case.id
        case.file = file
        cases.append(case)
    return cases, list(collection.values())


def _suite_error(case: TestCase, file: str, full_text: str) -> TestCase:
    text = _JEST_BOILERPLATE.sub("", full_text or case.traceback or case.message)
    text = text.replace("● Test suite failed to run", "").strip()
    return TestCase(
        id=file,
        outcome="error",
        message=_key_line(text) or case.message,
        traceback=short_traceback(text),
        file=file,
        output=case.output,
    )


def _key_line(text: str) -> str:
    for line in text.splitlines():
        if _KEY_LINE.search(line):
            return line.strip()
    return ""


def _startup_error(output: str, runner: str) -> TestCase:
    message = _key_line(output) or next(
        (line.strip() for line in reversed(output.splitlines()) if line.strip()),
        f"{runner} failed",
    )
    return TestCase(
        id=f"<{runner}>", outcome="error", message=message, traceback=short_traceback(output)
    )
