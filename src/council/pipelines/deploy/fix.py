"""A failed deployment fixed by the council: DevOps reads the logs and names the cause and the
smallest fix (DeploymentDiagnosis), Builder writes it as a unified diff, Guardian reviews the
diff (heal's review checklist), and only an approved diff that `git apply --check` accepts is
applied. Test files and CI workflows are out of a deploy fix's reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from council.edits import EditPolicy
from council.personas.schemas import DeploymentDiagnosis, Review
from council.recovery.patch import apply_patch, diff_text

MAX_FILES = 4
MAX_FILE_CHARS = 12_000
# What a deploy fix may never change: the tests that prove the service, the CI that ships it.
FORBIDDEN = ("tests/**", "test/**", "**/test_*.py", "**/*_test.py", ".github/**", "conftest.py")
_TRACE_PATH = re.compile(r'File "([^"]+\.py)"')


class Asks(Protocol):
    """What the fix needs from the run lifecycle: the persona prompt and call helpers."""

    def prompt(self, persona: str, template: str, facts: dict[str, Any]) -> Any: ...

    def call(self, persona: str, messages: Any, schema: type | None = None) -> Any: ...


@dataclass
class PatchOutcome:
    applied: bool
    files: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    verdict: str = ""


def relevant_files(log: str, *, source: Path, top: Path, project: Path, app: str) -> dict[str, str]:
    """Files a diagnosis reads, by path relative to the worktree's top: those in the log's
    traceback that belong to the release (mapped back from its exported copy), then the app."""
    wanted: list[Path] = []
    for raw in _TRACE_PATH.findall(log):
        path = Path(raw)
        try:
            wanted.append(project / path.relative_to(source))
        except ValueError:
            continue  # a library's file, not the project's
    module = app.split(":")[0].replace(".", "/")
    wanted += [project / "src" / f"{module}.py", project / f"{module}.py"]
    out: dict[str, str] = {}
    for path in dict.fromkeys(wanted):
        if path.is_file() and len(out) < MAX_FILES:
            out[str(path.relative_to(top))] = path.read_text(encoding="utf-8")[:MAX_FILE_CHARS]
    return out


def diagnose(asker: Asks, facts: dict[str, Any]) -> DeploymentDiagnosis:
    messages = asker.prompt("devops", "deploy_diagnosis", facts)
    return asker.call("devops", messages, DeploymentDiagnosis)


def patch(
    asker: Asks, top: Path, diagnosis: DeploymentDiagnosis, facts: dict[str, Any]
) -> PatchOutcome:
    """Builder's diff for the diagnosis, reviewed by Guardian, applied at `top` when approved."""
    patch_facts = {
        "gate": "deploy: the service did not become healthy",
        "signature": f"{diagnosis.stage}/{diagnosis.category}: {diagnosis.cause}",
        "classification": f"DevOps: {diagnosis.cause} Fix: {diagnosis.fix}",
        "log": facts["log"],
        "files": facts["files"],
        "feedback": "",
    }
    answer = asker.call("builder", asker.prompt("builder", "heal_patch", patch_facts))
    diff = diff_text(answer)
    if not diff:
        return PatchOutcome(False, reasons=["no unified diff in Builder's answer"])
    asked = asker.prompt("guardian", "heal_review", {**patch_facts, "diff": diff})
    review: Review = asker.call("guardian", asked, Review)
    if review.verdict != "approve" or review.high:
        reasons = [f"[{c.severity}] {c.file} {c.message}".strip() for c in review.comments]
        return PatchOutcome(False, reasons=reasons or [review.summary], verdict=review.verdict)
    result = apply_patch(top, diff, EditPolicy(forbidden_globs=FORBIDDEN))
    return PatchOutcome(result.applied, result.files, result.reasons, review.verdict)
