"""`council heal` as a flow on the run lifecycle: its iterations are resumable steps.

Per failure: the remembered fix for its signature first (no model call), then the known-error
catalogue's deterministic recovery where one is safe (declare a missing dependency, free a port
council started, retry with a longer time or memory limit, run the formatter), a re-run to tell
a flaky test from a broken one, and only then a Builder patch (patching.py). Work happens on
`council/heal-<timestamp>` next to a backup branch of the starting point.

Steps: `setup` (branch, worktree, backup branch; a set-up cut short by a kill is removed and
made again, setup.py), then `iteration-1`, `iteration-2`, ... Each
iteration's stored output is the heal's state (state.py), so `council resume <id>` continues
from the last finished iteration, with the worktree put back to the commit it ended on: an
iteration cut short is run again from there and commits nothing twice. Everything the heal
finds and does is an event; the outcome's details and the report file are read from them
(council.heal_report).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.errors import BudgetExceeded, CouncilError, ModelError, UsageError
from council.events import HealStarted, IterationFinished
from council.heal_report import heal_view, view_dict, write_report
from council.pipelines.lifecycle import Flow, Stop
from council.pipelines.tracks import discover_tracks
from council.recovery import FixMemory, ProcessRegistry, Recovery, classify, gate_run
from council.store import RunRecord, Store
from council.workspace import Workspace
from council.workspace.git import git
from council.workspace.git import out as git_out
from council.workspace.tamper import guard_for

from . import patching, recoveries
from .gates import Failure, GateRunner, first_state, plan_gates, trimmed_log
from .setup import new_slug, tidy_before_setup
from .state import HealContext, HealState

NO_PROGRESS_LIMIT = 3  # iterations in a row with the same failing signatures and no new gate
DEFAULT_ITERATIONS = 10


class HealFlow(Flow):
    kind = "heal"
    # A heal that stops short leaves its branch as it was: the fixes made so far, each in its
    # own commit, and its report in `.council/reports/` (from the events).
    failure_commit = False

    @classmethod
    def check(
        cls, repo: Path, config: CouncilConfig, feature: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Gates that exist and a sane iteration limit, before any row or branch is made."""
        only = params.get("only_gates") or None
        plan_gates(discover_tracks(repo, config), list(config.gates), only)
        most = int(params.get("max_iterations") or DEFAULT_ITERATIONS)
        if most < 1:
            raise UsageError(f"--max-iterations must be at least 1, got {most}")
        # The branch's name is fixed now: a heal killed in its set-up knows what it left.
        return {"max_iterations": most, "only_gates": only, "slug": new_slug()}

    def __init__(self, *, run: RunRecord, config: CouncilConfig, store: Store, emit) -> None:
        super().__init__(run=run, config=config, store=store, emit=emit)
        self.max_iterations = int(self.params.get("max_iterations") or DEFAULT_ITERATIONS)
        tracks = discover_tracks(self.repo, config)
        self.groups = plan_gates(tracks, list(config.gates), self.params.get("only_gates"))
        self.ctx = HealContext(
            repo=self.repo,
            config=config,
            emit=emit,
            tracks=tracks,
            memory=FixMemory(store),
            registry=ProcessRegistry.for_repo(self.repo),
            prompts=self.prompts,
            ask=self.call,
            save=self.commit,
            state=first_state(config, self.groups),
            workdir=self.repo,
        )
        self.gates = GateRunner(self.ctx, self.groups)

    # --- the lifecycle's hooks ---------------------------------------------------------------

    def flow(self) -> tuple[str, str]:
        fresh = not self.steps.is_done("setup")
        slug = self.params.get("slug") or new_slug()  # runs recorded before slugs were stored
        if fresh:
            tidy_before_setup(self, slug)  # what a heal killed in its set-up left (setup.py)
        setup = self.setup_worktree(slug, extra=self._backup)
        assert self.ws is not None
        self.ctx.workdir = self.ws.path
        if fresh:
            self.emit(
                HealStarted(
                    gates=[s.describe() for s in self.gates.slots],
                    backup_branch=setup["backup_branch"],
                    max_iterations=self.max_iterations,
                )
            )
        guard_for(self.ctx.workdir).freeze(self.ctx.frozen())  # read-only in test runs
        head = setup["base_sha"]
        for i in range(1, self.max_iterations + 1):
            out = self.steps.run(
                f"iteration-{i}",
                lambda i=i: self._iteration(i),
                detail=f"iteration {i}: run the gates",
                restore=self._restore_to(head),
            )
            self.ctx.state = self._restored(out["state"])
            self.commits = list(self.ctx.state.commits)  # those of earlier processes too
            head = self.ctx.state.head or head
            if out["green"]:
                state = self.ctx.state
                flaky = f"; flaky: {', '.join(state.flaky)}" if state.flaky else ""
                return "green", f"all gates pass after {len(state.commits)} fix(es){flaky}"
        return "failed", f"not green after {self.max_iterations} iterations"

    def details(self) -> dict[str, Any]:
        """The heal as its events tell it (iterations, tracks, flaky tests, backup branch),
        and the report file written from the same view."""
        view = heal_view(self.store.events(self.run_id))
        path = self.repo / ".council" / "reports" / f"heal-{self.run_id}.json"
        view.report_path = str(write_report(path, view))
        keep = ("backup_branch", "iterations", "tracks", "flaky", "gates", "report_path")
        return {k: v for k, v in view_dict(view).items() if k in keep}

    # --- steps -------------------------------------------------------------------------------

    def _backup(self, ws: Workspace) -> dict[str, Any]:
        backup = f"{ws.branch}-backup"
        git_out(self.repo, "branch", backup, ws.base_sha)
        return {"backup_branch": backup}

    def _restored(self, saved: dict[str, Any]) -> HealState:
        """The state an iteration stored, with the limits of gates it did not know (the
        configuration may have gained a gate since)."""
        state = HealState.from_dict(saved)
        start = first_state(self.config, self.groups)
        state.timeouts = {**start.timeouts, **state.timeouts}
        state.memory_mb = {**start.memory_mb, **state.memory_mb}
        return state

    def _restore_to(self, head: str) -> Callable[[], None]:
        """Put the worktree back as the last finished iteration left it (an iteration killed
        half-way may have edited files or committed): its fixes are made again, once."""

        def restore() -> None:
            git(self.ctx.workdir, "reset", "--hard", "--quiet", head)
            git(self.ctx.workdir, "clean", "-fdq")  # ignored files (envs, caches, logs) stay
            for track in self.ctx.tracks:
                track.env = None

        return restore

    def _iteration(self, i: int) -> dict[str, Any]:
        ctx, state = self.ctx, self.ctx.state
        ctx.iteration = i
        spent = self.gateway.spent_usd
        passed, failures = self.gates.run_all()
        ctx.settle_pending({(f.slot.label, f.sig.hash) for f in failures})
        if not failures:
            ctx.emit(IterationFinished(iteration=i, gates=self.gates.results, result="green"))
            return self._done(True, "all gates pass")
        hashes = sorted({f.sig.hash for f in failures})
        same = state.last is not None and hashes == state.last[0] and passed <= state.last[1]
        state.stale = state.stale + 1 if same else 0
        state.last = (hashes, passed)
        first = failures[0]
        facts: dict[str, Any] = {
            "iteration": i,
            "gate": first.slot.label,
            "gates": self.gates.results,
            "failures": [f.to_dict() for f in failures],
            "log": trimmed_log(gate_run(first.subject).output, 20),
        }
        if state.stale >= NO_PROGRESS_LIMIT - 1:
            ctx.emit(IterationFinished(**facts, result="no progress"))
            raise Stop(
                "failed",
                f"no progress in {NO_PROGRESS_LIMIT} iterations (same failures, no new gate "
                f"passing): {'; '.join(f.sig.render() for f in failures)}",
            )
        try:
            result = self._fix(first)
        except (Stop, BudgetExceeded, ModelError, CouncilError) as exc:
            why = exc.reason if isinstance(exc, Stop) else str(exc)
            cost = round(self.gateway.spent_usd - spent, 6)
            ctx.emit(IterationFinished(**facts, result=f"gave up: {why}", cost_usd=cost))
            raise
        cost = round(self.gateway.spent_usd - spent, 6)
        ctx.emit(IterationFinished(**facts, result=result, cost_usd=cost))
        return self._done(False, f"{first.slot.label}: {result}")

    def _done(self, green: bool, detail: str) -> dict[str, Any]:
        """An iteration's stored output: what `council resume` starts the next one from."""
        self.ctx.state.head = git_out(self.ctx.workdir, "rev-parse", "HEAD")
        return {"green": green, "detail": detail, "state": self.ctx.state.to_dict()}

    def _fix(self, failure: Failure) -> str:
        ctx, slot = self.ctx, failure.slot
        done = recoveries.remembered(ctx, failure)
        if done is not None:
            return done
        matches = classify(failure.subject, root=ctx.root(slot.track))
        match = matches[0] if matches else None
        recoveries.classified(ctx, failure, matches)
        if match is not None and match.row.safe_without_model:
            done = recoveries.deterministic(ctx, failure, match)
            if done is not None:
                return done
        if match is not None and match.recovery is Recovery.REPORT:
            hint = f" {match.row.hint}" if match.row.hint else ""
            record = {"kind": Recovery.REPORT.value, "evidence": match.evidence}
            recoveries.tried(ctx, slot.label, record, "needs a person", applied=False)
            raise Stop(
                "failed",
                f"{slot.label}: {match.row.description} ({match.evidence}): "
                f"needs a person, not a patch.{hint}",
            )
        if recoveries.rerun(ctx, self.gates, failure, match):
            return "flaky: passed on a re-run of the same code; nothing edited"
        return patching.model_patch(ctx, failure, match)
