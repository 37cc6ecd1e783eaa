"""One test-report shape for every language: cases, counts, green, failure signature, summary.

Every toolchain (pytest, Jest, Surefire, ...) turns its runner's output into a `TestReport`, so the
pipelines decide red/green, detect no-progress and brief the models without knowing the language.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from typing import Literal

from council.events import TestsReported

Outcome = Literal["passed", "failed", "error", "skipped"]

TRACEBACK_LINES = 15


@dataclass
class TestCase:
    """One test (or one file that failed to collect) and what happened to it."""

    __test__ = False  # not a pytest test class, despite the name

    id: str
    outcome: Outcome
    message: str = ""
    traceback: str = ""  # short: the last ~15 lines
    file: str = ""  # test file path relative to the project root, when known
    output: str = ""  # captured stdout/stderr tail of a non-passing test, when the runner kept it


@dataclass
class TestReport:
    """The result of one test run, whatever the language."""

    __test__ = False

    language: str
    cases: list[TestCase]
    exit_code: int | None
    duration_s: float
    timed_out: bool = False
    collection_errors: list[TestCase] = field(default_factory=list)
    output_tail: str = ""
    running: list[str] = field(default_factory=list)  # tests still running when it was killed

    def _count(self, outcome: Outcome) -> int:
        return sum(1 for case in self.cases if case.outcome == outcome)

    @property
    def passed(self) -> int:
        return self._count("passed")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def errors(self) -> int:
        return self._count("error")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def not_passing(self) -> list[TestCase]:
        """Collection errors first, then failed and errored tests, in report order."""
        bad = [case for case in self.cases if case.outcome in ("failed", "error")]
        return [*self.collection_errors, *bad]

    @property
    def green(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and self.passed >= 1
            and self.failed == 0
            and self.errors == 0
            and not self.collection_errors
        )

    def counts_line(self) -> str:
        line = (
            f"{self.passed} passed, {self.failed} failed, {self.errors} errors, "
            f"{self.skipped} skipped"
        )
        if self.collection_errors:
            line += f", {len(self.collection_errors)} collection errors"
        if self.timed_out:
            line += f" (timed out after {self.duration_s:.0f}s)"
        else:
            line += f" (exit {self.exit_code})"
        return line

    def brief_counts(self) -> str:
        """`2 passed, 1 failed, 40 errors (40 did not compile)`: a file that did not compile or
        collect is an error too, or a run with nothing but those would read as clean."""
        broken = len(self.collection_errors)
        line = f"{self.passed} passed, {self.failed} failed, {self.errors + broken} errors"
        if broken:
            line += f" ({broken} did not compile or collect)"
        return line + (", timed out" if self.timed_out else "")

    def signature(self) -> str:
        """A stable hash of what is wrong, for no-progress detection.

        Two runs that fail the same tests for the same reason get the same signature even when
        temp paths, object addresses, timings or counts in the messages differ.
        """
        items = {
            (case.id, case.outcome, normalise_message(first_line(case.message or case.traceback)))
            for case in self.not_passing
        }
        if self.timed_out:
            items.add(("<run>", "timed_out", ""))
        if not items and not self.green:
            # Nothing parsed (crash, no tests, usage error): the exit code and last line are all
            # there is to tell one broken run from another.
            last = first_line("\n".join(reversed(self.output_tail.strip().splitlines())))
            items.add(("<run>", f"exit {self.exit_code}", normalise_message(last)))
        blob = "\n".join("\x1f".join(item) for item in sorted(items))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def failure_summary(self, max_chars: int = 6000) -> str:
        """Compact text for a model: counts, then each failing test's id, message and traceback."""
        parts = [self.counts_line()]
        if self.timed_out:
            parts.append("The test run was killed at its time limit (a test may hang).")
            if self.running:
                parts.append("Still running at the limit: " + ", ".join(self.running[:10]))
        bad = self.not_passing
        if not bad and not self.green:
            if self.exit_code == 5 or (not self.cases and not self.timed_out):
                parts.append("No test ran.")
            if self.output_tail:
                parts.append("Output (tail):\n" + self.output_tail.strip())
            return _clip("\n".join(parts), max_chars)
        used = sum(len(part) + 1 for part in parts)
        budget = max_chars - 120  # room left for the "... and N more" line
        for index, case in enumerate(bad):
            label = "COLLECTION ERROR" if case in self.collection_errors else case.outcome.upper()
            block = [f"{label} {case.id}"]
            if case.message:
                block.append("  " + case.message.strip().replace("\n", "\n  "))
            if case.traceback:
                block.append("  " + case.traceback.strip().replace("\n", "\n  "))
            if case.output:
                block.append("  captured output:\n  " + case.output.strip().replace("\n", "\n  "))
            text = "\n".join(block)
            if index == 0 and used + len(text) + 1 > budget:
                text = _clip(text, max(40, budget - used - 1))  # show at least the first one
            if used + len(text) + 1 > budget:
                rest = len(bad) - index
                tail = f"... and {rest} more not passing: " + ", ".join(c.id for c in bad[index:])
                parts.append(_clip(tail, max(40, max_chars - used - 1)))
                break
            parts.append(text)
            used += len(text) + 1
        return _clip("\n".join(parts), max_chars)

    def event(self, phase: str = "", scope: str = "") -> TestsReported:
        """The `tests_reported` event for this report (the pipeline knows the phase and whether
        the run was a selection of the tests or the full suite)."""
        return TestsReported(
            scope=scope,
            duration_s=round(self.duration_s, 3),
            timed_out=self.timed_out,
            running=list(self.running),
            language=self.language,
            phase=phase,
            passed=self.passed,
            failed=self.failed,
            errors=self.errors + len(self.collection_errors),
            skipped=self.skipped,
            signature=self.signature(),
            failures=[case.id for case in self.not_passing],
        )


_TEMP_DIR = tempfile.gettempdir()

# Order matters: paths before numbers (paths contain digits), addresses before plain numbers.
_NORMALISERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?:/private)?/(?:tmp|var/folders|var/tmp)/\S*?(?=['\"\s:,)]|$)"), "<tmp>"),
    (re.compile(r"[A-Za-z]:\\\S*?\\Temp\\\S*?(?=['\"\s:,)]|$)", re.IGNORECASE), "<tmp>"),
    (re.compile(r"pytest-of-\S+?/pytest-\d+/\S*?(?=['\"\s:,)]|$)"), "<tmp>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|s|sec|seconds|secs)\b"), "<dur>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise_message(text: str) -> str:
    """Strip what changes between identical failures: temp paths, addresses, timings, numbers."""
    # The machine's temp dir may live anywhere (TMPDIR); catch it before the generic patterns.
    text = text.replace(_TEMP_DIR, "/tmp") if len(_TEMP_DIR) > 4 else text
    for pattern, replacement in _NORMALISERS:
        text = pattern.sub(replacement, text)
    return text.strip()


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def short_traceback(text: str, lines: int = TRACEBACK_LINES) -> str:
    """The last `lines` non-empty-trailing lines of a traceback: where the error surfaced."""
    kept = text.rstrip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join(["...", *kept[-lines:]])


def tail_text(text: str, lines: int = 60, max_chars: int = 4000) -> str:
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    return tail[-max_chars:]


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 4)] + " ..."
