"""Delivery: the tests commit, the feature commit (over the frozen tests only), the pull
request, and the report of a run that stopped short."""

from __future__ import annotations

from council.personas import Plan, Review
from council.pipelines.engine import StepOutput
from council.pipelines.lifecycle import Stop
from council.pipelines.run.base import RunBase
from council.workspace import conventional_message
from council.workspace.tamper import guard_for


class DeliverSteps(RunBase):
    def _commit(self, kind: str, plan: Plan, prefix: str, body: str = "") -> StepOutput:
        message = conventional_message(kind, plan.scope or None, f"{prefix}{plan.summary}", body)
        sha = self.commit(message)
        return {"sha": sha, "detail": sha[:10] if sha else "nothing to commit"}

    def _commit_feature(self, plan: Plan, review_out: StepOutput) -> StepOutput:
        changed = guard_for(self.ws.path).verify()
        if changed:  # never a feat: commit over tests that are not the frozen ones
            raise Stop(
                "failed", f"frozen test files changed before the commit: {', '.join(changed)}"
            )
        return self._commit("feat", plan, "", self._review_text(review_out))

    @staticmethod
    def _review_text(review_out: StepOutput) -> str:
        review = Review.model_validate(review_out["review"])
        lines = [f"Tests: {review_out['counts']}", f"Review ({review.verdict}): {review.summary}"]
        lines += [
            f"- [{c.severity}] {c.file}{':' + str(c.line) if c.line else ''} {c.message}"
            for c in review.comments
        ]
        gates = ", ".join(
            f"{g['gate']} {'ok' if g['passed'] else str(g['findings']) + ' findings'}"
            for g in review_out.get("gates", [])
        )
        if gates:
            lines.append(f"Gates: {gates}")
        lines.append("Reviewed-by: AI Council (Guardian)")
        return "\n".join(lines)

    def _open_pr(self, plan: Plan, review_out: StepOutput) -> StepOutput:
        from council.workspace.github import open_pull_request

        pr = open_pull_request(
            self.ws,
            title=conventional_message("feat", plan.scope or None, plan.summary).strip(),
            body=self._review_text(review_out),
            base=self.steps.done["setup"]["base_branch"],
            emit=self.emit,
        )
        return {"url": pr.url, "number": pr.number, "detail": pr.url}

    def failure_report(self, reason: str) -> list[str]:
        lines: list[str] = []
        for name, out in self.steps.done.items():
            if name.startswith("iteration-"):
                failures = out.get("failures", "")
                lines += [f"## {name}: {out.get('counts', '')}", "", "```", failures, "```", ""]
        return lines

    def failure_scope(self) -> str | None:
        plan = self.steps.done.get("plan")
        return Plan.model_validate(plan).scope if plan else None
