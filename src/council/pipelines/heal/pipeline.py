"""`council heal`: run the quality gates of every language track, fix a failure, commit, repeat.

Per failure: the remembered fix for its signature first (no model call), then the known-error
catalogue's deterministic recovery where one is safe (declare a missing dependency, free a port
council started, retry with a longer time or memory limit, run the formatter), a re-run to tell
a flaky test from a broken one, and only then a Builder patch (patching.py). Work happens on
`council/heal-<timestamp>` next to a backup branch.

Each iteration is a step (`iteration-1`, ...) whose stored output is the heal's state: a heal
killed half-way is continued by `council resume <id>` from its last finished iteration, in the
same worktree, with the worktree put back to that iteration's commit. Everything the heal finds
and does is an event; the outcome, the report file and the CLI table are read from them
(council.heal_report).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.errors import BudgetExceeded, CouncilError, ModelError, UsageError
from council.events import (
    BaseEvent,
    Emitter,
    HealStarted,
    IterationFinished,
    MemoryHit,
    Notice,
    RecoveryTried,
    RunFinished,
    RunStarted,
)
from council.heal_report import HealView, heal_view, write_report
from council.personas import Prompts
from council.pipelines.engine import StepRunner
from council.pipelines.models import make_gateway
from council.pipelines.tracks import discover_tracks
from council.recovery import FixMemory, ProcessRegistry, Recovery, classify, gate_run, recover
from council.store import Store
from council.workspace import create_worktree, open_worktree
from council.workspace.git import git
from council.workspace.git import out as git_out
from council.workspace.tamper import guard_for

from . import patching, recoveries
from .gates import Failure, GateRunner, plan_gates, trimmed_log
from .state import HealContext, HealState, HealStop

NO_PROGRESS_LIMIT = 3  # iterations in a row with the same failing signatures and no new gate


@dataclass
class HealOutcome:
    """How a heal ended; everything but the report path is read from its events."""

    status: str  # green | failed | stopped | error | interrupted | dry-run
    reason: str
    branch: str = ""
    backup_branch: str = ""
    commits: list[str] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    report_path: str = ""
    cost_usd: float = 0.0
    run_id: str = ""
    flaky: list[str] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, view: HealView, report_path: str = "") -> HealOutcome:
        return cls(
            status=view.status,
            reason=view.reason,
            branch=view.branch,
            backup_branch=view.backup_branch,
            commits=view.commits,
            iterations=view.iterations,
            report_path=report_path,
            cost_usd=view.cost_usd,
            run_id=view.run_id,
            flaky=view.flaky,
            tracks=view.tracks,
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "green" else 1


class HealPipeline:
    def __init__(
        self,
        *,
        repo: Path,
        config: CouncilConfig,
        store: Store | None,
        emit: Emitter,
        max_iterations: int = 10,
        dry_run: bool = False,
        only_gates: list[str] | None = None,
        run_id: str = "",
    ) -> None:
        if store is None and not dry_run:
            raise UsageError("a heal records its steps: it needs the repository's store")
        self.repo = repo
        self.config = config
        self.store = store
        self.emit = emit
        self.max_iterations = max_iterations
        self.dry_run = dry_run
        tracks = discover_tracks(repo, config)
        self.groups = plan_gates(tracks, list(config.gates), only_gates)
        spent = 0.0
        if run_id and store is not None:
            record = store.get_run(run_id)
            spent = record.total_cost_usd if record else 0.0
        self.ctx = HealContext(
            repo=repo,
            config=config,
            emit=emit,
            gateway=make_gateway(config, emit, spent_usd=spent),
            tracks=tracks,
            memory=FixMemory(store) if store is not None else None,
            registry=ProcessRegistry.for_repo(repo),
            prompts=Prompts(repo),  # the repository's .council/prompts/ over the package's
            state=self._first_state(),
            workdir=repo,
        )
        self.gates = GateRunner(self.ctx, self.groups)
        self.events: list[BaseEvent] = []  # a dry run's events (it has no store run)
        self.run_id = run_id
        if not dry_run and not run_id:
            assert store is not None
            self.run_id = store.create_run(
                feature=self._title(),
                repo=str(repo),
                config={
                    **config.snapshot(),
                    "max_iterations": max_iterations,
                    "only_gates": only_gates,
                },
                kind="heal",
            )
        if self.run_id:
            assert store is not None
            emit.run_id = self.run_id
            emit.subscribe(store.record_event)
            self.steps = StepRunner(store, self.run_id, emit)
        else:
            emit.subscribe(self.events.append)

    @classmethod
    def resume(
        cls, *, run_id: str, config: CouncilConfig, store: Store, emit: Emitter
    ) -> HealPipeline:
        """The heal `run_id` again, from its last finished iteration."""
        run = store.get_run(run_id)
        if run is None or run.kind != "heal":
            raise UsageError(f"no heal '{run_id}' in this repository (see `council runs`)")
        if run.status == "green":
            raise UsageError(f"heal {run.id} already finished green; nothing to resume")
        saved = run.config or {}
        return cls(
            repo=Path(run.repo),
            config=config,
            store=store,
            emit=emit,
            max_iterations=int(saved.get("max_iterations") or 10),
            only_gates=saved.get("only_gates"),
            run_id=run.id,
        )

    def _first_state(self) -> HealState:
        test_limit = float(self.config.limits.test_timeout_s)
        slots = [s for g in self.groups for s in g]
        return HealState(
            timeouts={
                s.label: min(s.gate.timeout_s, test_limit if s.gate.name == "test" else 1e9)
                for s in slots
            },
            memory_mb={s.label: self.config.sandbox.memory_mb for s in slots},
        )

    def _title(self) -> str:
        return "heal: " + ", ".join(s.label for s in self.gates.slots)

    # --- the run -----------------------------------------------------------------------------

    def execute(self) -> HealOutcome:
        if self.dry_run:
            return self._execute_dry()
        assert self.store is not None
        self.store.claim_run(self.run_id)  # this process's pid: `runs` can tell if it dies
        try:
            status, reason = self._loop()
        except HealStop as stop:
            status, reason = stop.status, stop.reason
        except BudgetExceeded as exc:
            status, reason = "stopped", f"budget: {exc}"
        except (ModelError, CouncilError) as exc:
            status, reason = "error", str(exc)
        except KeyboardInterrupt:
            self._finish("interrupted", self._go_on())
            raise
        except BaseException as exc:
            # A bug of ours: the run record must not stay "running".
            self._finish("error", f"internal error: {exc!r}")
            raise
        self._finish(status, reason)
        view = heal_view(self.store.events(self.run_id))
        path = self.repo / ".council" / "reports" / f"heal-{self.run_id}.json"
        return HealOutcome.of(view, str(write_report(path, view)))

    def _go_on(self) -> str:
        return f"interrupted; `council resume {self.run_id}` continues from the last iteration"

    def _finish(self, status: str, reason: str) -> None:
        self.emit.step = None
        cost = self.ctx.gateway.spent_usd
        self.emit(RunFinished(status=status, reason=reason, total_cost_usd=cost))

    def _setup(self) -> dict[str, Any]:
        """The heal's branch and worktree (a backup branch keeps where it started)."""

        def create() -> dict[str, Any]:
            base = git_out(self.repo, "rev-parse", "HEAD")
            stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
            ws = create_worktree(self.repo, f"heal-{stamp}")
            backup = f"{ws.branch}-backup"
            git_out(self.repo, "branch", backup, base)
            return {"branch": ws.branch, "backup_branch": backup, "head": base}

        fresh = not self.steps.is_done("setup")
        out = self.steps.run("setup", create, detail="worktree and backup branch")
        ws = self.ctx.ws = open_worktree(self.repo, out["branch"])
        self.ctx.workdir = ws.path
        if fresh:
            self.emit(
                RunStarted(
                    feature=self._title(),
                    repo=str(self.repo),
                    branch=ws.branch,
                    worktree=str(ws.path),
                )
            )
            self._heal_started(out["backup_branch"])
        else:
            done = [n for n in self.steps.done if n != "setup"]
            after = f"after {done[-1]}" if done else "from its first iteration"
            self.emit(Notice(message=f"resuming heal {self.run_id} {after}"))
        return out

    def _heal_started(self, backup: str) -> None:
        self.emit(
            HealStarted(
                gates=[s.describe() for s in self.gates.slots],
                backup_branch=backup,
                max_iterations=self.max_iterations,
                dry_run=self.dry_run,
            )
        )

    def _loop(self) -> tuple[str, str]:
        setup = self._setup()
        head = setup["head"]
        guard_for(self.ctx.workdir).freeze(self.ctx.frozen())  # read-only in test runs
        for i in range(1, self.max_iterations + 1):
            name = f"iteration-{i}"
            out = self.steps.run(
                name,
                lambda i=i: self._iteration(i),
                detail=f"iteration {i}: run the gates",
                restore=self._restore_to(head),
            )
            self.ctx.state = HealState.from_dict(out["state"])
            head = self.ctx.state.head or head
            if out["green"]:
                state = self.ctx.state
                flaky = f"; flaky: {', '.join(state.flaky)}" if state.flaky else ""
                return "green", f"all gates pass after {len(state.commits)} fix(es){flaky}"
        return "failed", f"not green after {self.max_iterations} iterations"

    def _restore_to(self, head: str) -> Callable[[], None]:
        """Put the worktree back as the last finished iteration left it (an iteration killed
        half-way may have edited files or committed): its fixes are made again, once."""

        def restore() -> None:
            assert self.ctx.ws is not None
            where = self.ctx.ws.path
            git(where, "reset", "--hard", "--quiet", head)
            git(where, "clean", "-fdq")  # ignored files (envs, caches, logs) stay
            for track in self.ctx.tracks:
                track.env = None

        return restore

    def _iteration(self, i: int) -> dict[str, Any]:
        ctx, state = self.ctx, self.ctx.state
        ctx.iteration = i
        spent = ctx.gateway.spent_usd
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
            raise HealStop(
                "failed",
                f"no progress in {NO_PROGRESS_LIMIT} iterations (same failures, no new gate "
                f"passing): {'; '.join(f.sig.render() for f in failures)}",
            )
        try:
            result = self._fix(first)
        except (HealStop, BudgetExceeded, ModelError, CouncilError) as exc:
            why = exc.reason if isinstance(exc, HealStop) else str(exc)
            cost = round(ctx.gateway.spent_usd - spent, 6)
            ctx.emit(IterationFinished(**facts, result=f"gave up: {why}", cost_usd=cost))
            raise
        cost = round(ctx.gateway.spent_usd - spent, 6)
        ctx.emit(IterationFinished(**facts, result=result, cost_usd=cost))
        return self._done(False, f"{first.slot.label}: {result}")

    def _done(self, green: bool, detail: str) -> dict[str, Any]:
        """An iteration's stored output: what `council resume` starts the next one from."""
        assert self.ctx.ws is not None
        self.ctx.state.head = git_out(self.ctx.ws.path, "rev-parse", "HEAD")
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
            raise HealStop(
                "failed",
                f"{slot.label}: {match.row.description} ({match.evidence}): "
                f"needs a person, not a patch.{hint}",
            )
        if recoveries.rerun(ctx, self.gates, failure, match):
            return "flaky: passed on a re-run of the same code; nothing edited"
        return patching.model_patch(ctx, failure, match)

    # --- dry run -----------------------------------------------------------------------------

    def _execute_dry(self) -> HealOutcome:
        """Classify the first failure and say what would be done, on a scratch copy."""
        with tempfile.TemporaryDirectory(prefix="council-heal-dry-") as scratch:
            self.ctx.workdir = Path(scratch) / "repo"
            shutil.copytree(
                self.repo,
                self.ctx.workdir,
                ignore=shutil.ignore_patterns(".git", ".council", ".venv", "__pycache__"),
            )
            self._heal_started("")
            status, reason = self._dry()
        return HealOutcome.of(heal_view(self.events, status=status, reason=reason))

    def _dry(self) -> tuple[str, str]:
        ctx = self.ctx
        ctx.iteration = 1
        _passed, failures = self.gates.run_all()
        if not failures:
            self.emit(IterationFinished(iteration=1, gates=self.gates.results, result="green"))
            return "green", "all gates pass (dry run: nothing changed)"
        first = failures[0]
        root = ctx.root(first.slot.track)
        remembered = ctx.memory.lookup(first.sig) if ctx.memory else None
        matches = classify(first.subject, root=root)
        recoveries.classified(ctx, first, matches, "memory" if remembered else "")
        if remembered is not None:
            label, sig = first.slot.label, first.sig.hash
            self.emit(MemoryHit(iteration=1, gate=label, signature=sig, fix=remembered.kind))
        elif matches and matches[0].row.safe_without_model:
            result = recover(
                matches[0],
                root,
                dry_run=True,
                gate=first.slot.label,
                timeout_s=ctx.state.timeouts[first.slot.label],
                memory_mb=ctx.state.memory_mb[first.slot.label],
                registry=ctx.registry,
                output=gate_run(first.subject).output,
            )
            recoveries.tried(ctx, first.slot.label, result.to_dict(), "planned", applied=False)
        else:
            record = {"kind": Recovery.MODEL_PATCH.value, "dry_run": True}
            self.emit(
                RecoveryTried(
                    iteration=1,
                    gate=first.slot.label,
                    recovery=Recovery.MODEL_PATCH.value,
                    result="planned",
                    record=record,
                )
            )
        self.emit(
            IterationFinished(
                iteration=1,
                gate=first.slot.label,
                gates=self.gates.results,
                failures=[f.to_dict() for f in failures],
                result="planned",
            )
        )
        return "dry-run", f"{first.slot.label} fails: {first.sig.render()}"
