"""The TDD flow behind `council run`: plan, context, tests first (red), code to green, review.

Every claim is checked by running the real tests: the tests must fail before code exists, are
frozen once accepted, and the run is green only when the real suite passes. Each step lives in
its own module of this package; this one orders them (see pipelines/lifecycle.py for how a flow
plugs into the run lifecycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.errors import ToolchainError
from council.events import Notice
from council.personas import Plan
from council.pipelines.lifecycle import Stop
from council.pipelines.models import cache_root
from council.pipelines.run.base import RunBase
from council.pipelines.run.context import ContextSteps
from council.pipelines.run.deliver import DeliverSteps
from council.pipelines.run.edits import EditSteps
from council.pipelines.run.gates import GateSteps
from council.pipelines.run.iterate import IterateSteps
from council.pipelines.run.plan import PlanSteps
from council.pipelines.run.request import check_request
from council.pipelines.run.review import ReviewSteps
from council.pipelines.run.tests import TestSteps
from council.pipelines.testruns import TestRuns
from council.toolchains.test_ids import parse_test_spec
from council.workspace import slugify
from council.workspace.tamper import guard_for


class TddFlow(
    PlanSteps,
    ContextSteps,
    TestSteps,
    IterateSteps,
    GateSteps,
    ReviewSteps,
    DeliverSteps,
    EditSteps,
    RunBase,
):
    """One `council run`. Create with `start()` for a new run or `resume()` for a stored one."""

    kind = "run"

    @classmethod
    def check(
        cls, repo: Path, config: CouncilConfig, feature: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        return check_request(repo, config, feature, params)

    def details(self) -> dict[str, Any]:
        return {"pr_url": str(self.steps.done.get("pr", {}).get("url", ""))}

    def flow(self) -> tuple[str, str]:
        self.setup_worktree(slugify(self.feature))
        if self.given_tests:
            # Only the languages the given tests belong to have work to do.
            self.tracks = [t for t in self.tracks if any(t.owns(p) for p in self.given_tests)]
        # The test environments are built before the first model call, so they overlap the
        # model library's loading (the CLI starts it in a thread) instead of following it.
        self._prepare_tracks()
        self.runs = TestRuns(
            self.ws.path,
            timeout_s=self.config.limits.test_timeout_s,
            full_timeout_s=self.config.limits.full_suite_timeout_s,
            emit=self.emit,
            tree_of=self._track_tree,
            test_files=self._test_files_in_tree,
        )
        base_tree = self._head_tree()
        if self.given_tests:
            # Tests-given mode needs no model to go red, and no baseline run of its own: the
            # red run of the given tests is the baseline (no code has changed yet). It comes
            # first, so tests that cannot start the run cost no model call.
            reds = self._each(lambda t: self._tests_step(t, None, None, base_tree))
        plan = Plan.model_validate(self.steps.run("plan", self._plan, persona="pacer"))
        context = self.steps.run("context", lambda: self._context(plan), persona="maven")
        if not self.given_tests:
            self.steps.run("baseline", lambda: self._baseline(context))
            reds = self._each(lambda t: self._tests_step(t, plan, context, base_tree))
        why = (
            "Tests given by the user; frozen from the start."
            if self.given_tests
            else "Tests written first by Guardian; they fail until the feature exists."
        )
        self.steps.run("commit-tests", lambda: self._commit("test", plan, "", why))
        frozen: dict[str, str] = {p: h for red in reds for p, h in red["frozen"].items()}
        guard_for(self.ws.path).freeze(frozen)  # read-only and checked in every test run
        targets = {
            t.root: [parse_test_spec(x) for x in red.get("targets", red["test_files"])]
            for t, red in zip(self.tracks, reds, strict=True)
        }
        lasts = self._each(lambda t: self._iterate(t, plan, context, frozen, targets[t.root]))
        failed = [
            (t, last) for t, last in zip(self.tracks, lasts, strict=True) if not last["green"]
        ]
        if failed:
            reasons = [last["reason"] for _, last in failed]
            if len(self.tracks) > 1:
                reasons = [f"{t.language}: {last['reason']}" for t, last in failed]
            raise Stop("failed", "; ".join(reasons))

        def restore_last() -> None:
            for track, last in zip(self.tracks, lasts, strict=True):
                self._restore_track(track, last["tree"])

        review = self.steps.run(
            "review",
            lambda: self._review_and_polish(plan, context, frozen, targets),
            persona="guardian",
            restore=restore_last,
        )
        self.steps.run("commit", lambda: self._commit_feature(plan, review))
        if self.open_pr:
            self.steps.run("pr", lambda: self._open_pr(plan, review))
        if self.skipped_languages:
            skipped = ", ".join(m.split(":")[0] for m in self.skipped_languages)
            return (
                "green",
                f"tests green, reviewed and committed; skipped (toolchain missing): {skipped}",
            )
        return "green", "tests green, reviewed and committed"

    def _prepare_tracks(self) -> None:
        """Build each language's test environment; a missing toolchain drops only its track."""
        ready, missing = [], []
        for track in self.tracks:
            try:
                track.prepare(self.ws.path, cache_root() / "envs", self.emit)
                ready.append(track)
            except ToolchainError as exc:
                if len(self.tracks) == 1:
                    raise
                what = " ".join(str(exc).split())  # the message and how to install the tool
                missing.append(f"{track.language}: {what}")
                self.emit(
                    Notice(
                        level="error",
                        message=f"{track.language} skipped, its toolchain is missing: {what}",
                    )
                )
        if not ready:
            raise ToolchainError("no language's toolchain is available: " + "; ".join(missing))
        self.tracks = ready
        self.skipped_languages = missing
