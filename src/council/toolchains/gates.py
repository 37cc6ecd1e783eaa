"""Results of quality gates (lint, format, SAST) in one shape for every language."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Finding:
    """One thing a gate objects to, pointing at a file and line when the tool says."""

    file: str
    line: int
    severity: str  # "error"/"warning" (linters), "low"/"medium"/"high" (SAST)
    code: str
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: [{self.severity}] {self.code} {self.message}".rstrip()


@dataclass
class GateResult:
    """The verdict of one gate run; `output_tail` keeps the tool's own words for a human."""

    name: str
    passed: bool
    findings: list[Finding] = field(default_factory=list)
    output_tail: str = ""

    def summary(self, max_findings: int = 50) -> str:
        head = f"{self.name}: {'passed' if self.passed else 'FAILED'}"
        if self.findings:
            head += f" ({len(self.findings)} findings)"
        lines = [head, *(f"  {f.render()}" for f in self.findings[:max_findings])]
        if len(self.findings) > max_findings:
            lines.append(f"  ... and {len(self.findings) - max_findings} more")
        if not self.passed and not self.findings and self.output_tail:
            lines.append(self.output_tail)
        return "\n".join(lines)
