"""The plan step: Pacer turns the feature into tasks per language and test files."""

from __future__ import annotations

from council.personas import Plan
from council.pipelines.engine import StepOutput
from council.pipelines.run.base import RunBase


class PlanSteps(RunBase):
    def _plan(self) -> StepOutput:
        ctx = self._map(self.feature, [])
        plan: Plan = self.ask(
            "pacer",
            "plan",
            Plan,
            feature=self.feature,
            projects=self._projects(),
            repo_map=ctx.repo_map,
        )
        return plan.model_dump()

    def _projects(self) -> list[dict[str, str]]:
        return [
            {
                "language": t.language,
                "root": t.root or ".",
                "framework": t.framework,
                "naming": t.test_naming,
                "test_dir": t.test_dir,
            }
            for t in self.tracks
        ]

    @staticmethod
    def _plan_text(plan: Plan) -> str:
        lines = [plan.summary]
        for t in plan.tasks:
            lines.append(f"- {t.id} [{t.language}] {t.title}: {t.description}".rstrip(": "))
            lines.extend(f"    * {c}" for c in t.acceptance_criteria)
        if plan.contract:
            lines.append(f"Contract: {plan.contract}")
        return "\n".join(lines)
