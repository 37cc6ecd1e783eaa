"""Results of quality gates (lint, format, SAST) in one shape for every language, and their
split into findings on a change and findings that were there before it."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace


@dataclass
class Finding:
    """One thing a gate objects to, pointing at a file and line when the tool says."""

    file: str
    line: int
    severity: str  # "error"/"warning" (linters), "low"/"medium"/"high" (SAST)
    code: str
    message: str
    end_line: int = 0  # last line of a range (a block a formatter would rewrite); 0: `line` only

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: [{self.severity}] {self.code} {self.message}".rstrip()

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a finding across edits that move it to another line."""
        return (self.file, self.code, self.message)


@dataclass
class GateResult:
    """The verdict of one gate run; `output_tail` keeps the tool's own words for a human.

    With a change scope applied (`scope_to_change`), `findings` and `passed` are about the
    change only, and `preexisting` holds what the tool found that was there before."""

    name: str
    passed: bool
    findings: list[Finding] = field(default_factory=list)
    output_tail: str = ""
    preexisting: list[Finding] = field(default_factory=list)

    def summary(self, max_findings: int = 50) -> str:
        head = f"{self.name}: {'passed' if self.passed else 'FAILED'}"
        if self.findings:
            head += f" ({len(self.findings)} findings)"
        if self.preexisting:
            head += f" ({len(self.preexisting)} pre-existing, not on the change)"
        lines = [head, *(f"  {f.render()}" for f in self.findings[:max_findings])]
        if len(self.findings) > max_findings:
            lines.append(f"  ... and {len(self.findings) - max_findings} more")
        if not self.passed and not self.findings and self.output_tail:
            lines.append(self.output_tail)
        return "\n".join(lines)


def on_changed_lines(finding: Finding, changed: Mapping[str, Collection[int]]) -> bool:
    """Whether a finding points into the change. A file-level finding (no line) is on the
    change when its file changed at all."""
    lines = changed.get(finding.file)
    if lines is None:
        return False
    if finding.line <= 0:
        return bool(lines)
    last = max(finding.line, finding.end_line)
    return any(n in lines for n in range(finding.line, last + 1))


def scope_to_change(
    result: GateResult,
    changed: Mapping[str, Collection[int]],
    before: Sequence[Finding] | None = None,
) -> GateResult:
    """Split `result` into findings on the change and pre-existing ones.

    A finding on a changed line is the change's. One elsewhere is pre-existing when the same
    finding (file, code, message) was reported on the base version of the files (`before`);
    without `before`, when it is off the changed lines. So an import left unused by a deleted
    line counts, though its own line did not change. A gate that failed with findings passes
    when none of them is the change's; a gate that failed without any (the tool broke) stays
    failed.
    """
    baseline = Counter(f.key for f in before) if before is not None else None
    mine: list[Finding] = []
    old: list[Finding] = []
    for finding in result.findings:
        if on_changed_lines(finding, changed):
            mine.append(finding)
        elif baseline is None or baseline[finding.key] > 0:
            if baseline is not None:
                baseline[finding.key] -= 1
            old.append(finding)
        else:
            mine.append(finding)
    passed = result.passed or (bool(result.findings) and not mine)
    return replace(result, passed=passed, findings=mine, preexisting=[*result.preexisting, *old])


def preexisting_note(result: GateResult, shown: int = 5) -> str:
    """One line saying what a gate found that was there before the change (not counted)."""
    found = result.preexisting
    where = ", ".join(f"{f.file}:{f.line} {f.code}" if f.line else f.file for f in found[:shown])
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    return (
        f"{result.name}: {len(found)} pre-existing finding(s) not on the change, not counted: "
        f"{where}{more}"
    )


def rewrite_findings(file: str, current: str, formatted: str, tool: str) -> list[Finding]:
    """One format finding per block of `current` that a formatter rewrites into `formatted`,
    spanning the block's lines (lines only inserted mark the two lines around them)."""
    message = f"would be reformatted (run `{tool}`)"
    old, new = current.splitlines(), formatted.splitlines()
    findings = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        first, last = (i1 + 1, i2) if i2 > i1 else (max(i1, 1), i1 + 1)
        findings.append(Finding(file, first, "warning", "format", message, last))
    return findings
