"""The tests steps: the baseline, then tests first (Guardian's, or the given ones) that must
fail before any code exists; accepted tests are frozen."""

from __future__ import annotations

from council.edits import EditPolicy
from council.events import Notice
from council.personas import Plan
from council.pipelines.engine import StepOutput
from council.pipelines.lifecycle import Stop
from council.pipelines.run.base import RunBase, all_counts, counts
from council.pipelines.testruns import Selection
from council.pipelines.tracks import Track
from council.toolchains import TestReport
from council.toolchains.test_ids import TestTarget
from council.workspace import file_sha256, slugify


class TestSteps(RunBase):
    def _baseline(self, context: StepOutput) -> StepOutput:
        """The existing tests that reach the files in context, before any change, so
        pre-existing failures are not ours (the whole suite with `limits.full_suite: always`)."""
        always = self.config.limits.full_suite == "always"
        code = [p for p in context.get("files", []) if (self.ws.path / p).is_file()]
        selection = Selection(changed=tuple(code), full=always)
        results = [
            (t, r)
            for t, r in self._each(lambda t: (t, self.runs.run(t, selection, "baseline")))
            if r is not None
        ]
        for track, report in results:
            if report.not_passing or report.timed_out:
                self.emit(
                    Notice(
                        level="warning",
                        message=f"the existing {track.language} tests already fail before any "
                        f"change ({counts(report)}); the run can only end green if they pass too",
                    )
                )
        if not results:
            return {"passed": 0, "green": True, "detail": "no existing test reaches that code"}
        return {
            "passed": sum(r.passed for _, r in results),
            "green": all(r.green for _, r in results),
            "detail": all_counts(results),
        }

    def _tests_step(
        self, track: Track, plan: Plan | None, context: StepOutput | None, base: str
    ) -> StepOutput:
        if self.given_tests:
            fn, persona = (lambda: self._take_given_tests(track)), None
        else:
            fn, persona = (lambda: self._write_tests(track, plan, context)), "guardian"
        return self.steps.run(
            f"tests{track.suffix}",
            fn,
            persona=persona,
            restore=lambda: self._restore_track(track, base),
        )

    def _take_given_tests(self, track: Track) -> StepOutput:
        """Tests-given mode: bring the user's tests into the worktree; they must fail first."""
        given = [p for p in self.given_tests if track.owns(p)]
        for rel in given:
            source, target = self.repo / rel, self.ws.path / rel
            data = source.read_bytes()  # the user's checkout is only read
            if not target.is_file() or target.read_bytes() != data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        targets = [t for t in self.given_targets if track.owns(t.path)]
        report = self._run_selected(track, targets, "red-1")
        # pytest says "not found: <id>" for a node id that names no test.
        unknown_id = "not found:" in report.output_tail
        unmatched = [
            str(t)
            for t in targets
            if t.narrowed
            and not any(c.id.startswith(track.local(t.path) + "::") for c in report.cases)
            and (unknown_id or not (report.collection_errors or report.timed_out))
        ]
        if unmatched:
            raise Stop("failed", f"--tests {', '.join(unmatched)}: no such test in that file")
        problem = self._red_problem(track, report)
        if problem:
            if "PASS before" in problem:
                problem = "the given tests already pass before any code is written: nothing to do"
            raise Stop("failed", f"the given tests cannot start the run: {problem}")
        frozen = {
            p: file_sha256(self.ws.path / p)
            for p in sorted({*self._test_files_in_tree(track), *given})
        }
        return {
            "test_files": given,
            "targets": [str(t) for t in targets],
            "frozen": frozen,
            "signature": report.signature(),
            "detail": f"red: {counts(report)}",
        }

    def _write_tests(self, track: Track, plan: Plan, context: StepOutput) -> StepOutput:
        test_files = [p for p in plan.test_files if track.owns(p)]
        if not test_files and track.language == "python":
            scope = slugify(plan.scope or "feature").replace("-", "_")
            test_files = [f"{track.test_dir}/test_{scope}.py"]
        before = self._snapshot(self._test_files_in_tree(track))
        policy = EditPolicy(max_file_bytes=self.config.limits.max_file_bytes)
        feedback = ""
        for attempt in range(1, self.config.limits.max_test_attempts + 1):
            written = self._edit_round(
                "guardian",
                "tests",
                policy,
                only_tests=track,
                scope_note=self._scope_note(track),
                feature=self.feature,
                plan=self._plan_text(plan),
                notes=context.get("notes", ""),
                repo_map=context["repo_map"],
                files={**self._read(context["files"]), **self._excerpts(context)},
                framework=track.framework,
                test_files=test_files or [f"{track.test_dir}/ ({track.test_naming})"],
                test_dir=track.test_dir,
                feedback=feedback,
            )
            written = [p for p in written if track.is_test_file(p)]
            if not written:
                feedback = self.prompts.text("feedback_no_tests")
                continue
            report = self._run_selected(track, [TestTarget(p) for p in written], f"red-{attempt}")
            feedback = self._red_problem(track, report)
            if not feedback:
                frozen = {p: file_sha256(self.ws.path / p) for p in self._test_files_in_tree(track)}
                return {
                    "test_files": written,
                    "frozen": frozen,
                    "signature": report.signature(),
                    "detail": f"red: {counts(report)}",
                }
            self.emit(
                Notice(level="warning", message=f"tests rejected: {feedback.splitlines()[0]}")
            )
            # Start the next attempt from the original tests, not from the rejected ones.
            self._restore(before, written)
        raise Stop(
            "failed",
            f"Guardian did not produce valid failing {'' if track.solo else track.language + ' '}"
            "tests in "
            f"{self.config.limits.max_test_attempts} attempts: {feedback.splitlines()[0]}",
        )

    def _red_problem(self, track: Track, report: TestReport) -> str:
        """Why a red report is not an acceptable TDD start, or '' when it is."""
        broken = [c for c in report.collection_errors if track.classify(c) == "broken_test"]
        if broken:
            return self.prompts.text("feedback_red", problem="broken", broken=broken)
        # A library the project lacks: no code the council writes makes these tests compile.
        needs = [c for c in report.collection_errors if track.classify(c) == "missing_library"]
        if needs:
            return self.prompts.text("feedback_red", problem="missing_library", needs=needs)
        if report.timed_out:
            return self.prompts.text("feedback_red", problem="hung")
        missing_code = bool(report.collection_errors)
        if report.green or (report.failed + report.errors == 0 and not missing_code):
            if report.passed == 0:
                return self.prompts.text(
                    "feedback_red",
                    problem="none_collected",
                    framework=track.framework,
                    naming=track.test_naming,
                )
            return self.prompts.text("feedback_red", problem="pass_early")
        return ""
