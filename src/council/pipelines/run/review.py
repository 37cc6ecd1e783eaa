"""The review step: Guardian reviews the green diff; one Artisan polish on high findings,
kept only when the tests stay green."""

from __future__ import annotations

from council.edits import EditPolicy
from council.events import Notice, ReviewMade
from council.personas import Plan, Review
from council.pipelines.engine import StepOutput
from council.pipelines.run.base import RunBase, all_counts
from council.toolchains.test_ids import TestTarget
from council.workspace import diff


class ReviewSteps(RunBase):
    def _review_and_polish(
        self,
        plan: Plan,
        context: StepOutput,
        frozen: dict[str, str],
        targets: dict[str, list[TestTarget]],
    ) -> StepOutput:
        code = self._changed_code(frozen)
        findings, must_fix, gates = self._gate_findings(code)
        results = self._final_gate(targets, frozen, "full-suite")
        self._require_green(results)
        counts = all_counts(results)
        review = self._review(counts, findings)
        polished = False
        if review.high or must_fix:
            polished = self._polish(plan, context, frozen, review, findings, targets)
            if polished:
                findings, _, gates = self._gate_findings(code)
                counts = all_counts(self._final_gate(targets, frozen, "full-suite"))
                review = self._review(counts, findings)
        return {
            "review": review.model_dump(),
            "gates": gates,
            "findings": findings,
            "polished": polished,
            "counts": counts,
            "detail": f"verdict {review.verdict}, {len(review.comments)} "
            + ("comment" if len(review.comments) == 1 else "comments"),
        }

    def _review(self, counts: str, findings: str) -> Review:
        review: Review = self.ask(
            "guardian",
            "review",
            Review,
            feature=self.feature,
            counts=counts,
            findings=findings,
            diff=diff(self.ws)[:60_000],
        )
        self.emit(
            ReviewMade(verdict=review.verdict, comments=[c.model_dump() for c in review.comments])
        )
        return review

    def _polish(
        self,
        plan: Plan,
        context: StepOutput,
        frozen: dict[str, str],
        review: Review,
        findings: str,
        targets: dict[str, list[TestTarget]],
    ) -> bool:
        """One Artisan pass on high findings; kept only if the tests stay green."""
        code = self._changed_code(frozen)
        snapshot = self._snapshot(code)
        issues = "\n".join(
            f"- [{c.severity}] {c.file}:{c.line or ''} {c.message}"
            for c in review.comments
            if c.severity in ("high", "medium")
        )
        policy = EditPolicy(
            frozen=frozen,
            max_file_bytes=self.config.limits.max_file_bytes,
            is_test_file=self._is_test_path,
        )
        touched = self._edit_round(
            "artisan",
            "refine",
            policy,
            scope_note="",
            feature=self.feature,
            iteration=0,
            counts="",
            failures="",
            findings="\n".join(x for x in (issues, findings) if x),
            files={p: t for p, t in self._read(code).items()},
            tests=self._read([t.path for ts in targets.values() for t in ts]),
        )
        results = self._final_gate(targets, frozen, "polish")
        if all(r.green or not self._new_failures(t, r) for t, r in results):
            return bool(touched)
        self.emit(Notice(level="warning", message="refinement broke the tests; reverted it"))
        self._restore(snapshot, touched)
        return False
