"""One run lifecycle for every flow: start, resume, stop, finish, outcome, budget, persona calls.

How to add a flow
=================

A flow (`run`, `heal`, `deploy`, `doit`, ...) is a subclass of `Flow` that contributes only its
steps; everything else is here, written once:

1. Pick a `kind` (a short word stored in the run row; add it to `store.schema.RUN_KINDS`) and
   register the class in `pipelines/flows.py` (`FLOWS`, by import path: the CLI stays fast).
2. `check(repo, config, feature, params)` (classmethod) validates what the user gave before any
   row, branch or worktree exists; raise `UsageError` (exit 2). It returns the params to store
   in the run row: they must be JSON and enough to rebuild the flow, because `resume` and the
   server's workers build it from the row alone (`self.feature`, `self.params`).
3. `flow()` runs the steps and returns `(status, reason)` ("green", why). Each unit of work is
   `self.steps.run(name, fn, persona=..., restore=...)`: its output (a JSON dict) is stored when
   it finishes, and on resume a finished step returns its stored output instead of running
   again. These are the flow's resume points: a killed run continues after its last finished
   step, so make a step as large as what may be redone, and put into its output everything the
   later steps need (never keep it only in `self`). A loop is a step per iteration
   (`iteration-1`, `iteration-2`, ...) whose output says where the next one starts; a step that
   changes the worktree gives `restore=` a function that puts the tree back as the last
   finished step left it, since a killed step runs again from there.
   `self.setup_worktree(slug)` is the usual first step (the branch and worktree; it emits
   RunStarted, or the "resuming" notice).
4. To end early within limits (no progress, iterations used up, nothing to do), raise
   `Stop(status, reason)`; never write the run row, never build an outcome, never catch
   BudgetExceeded / ModelError / KeyboardInterrupt: `execute` maps each to a closed run
   (stopped / error / interrupted with how to resume) and the store keeps the row.
5. Models: `self.ask(persona, template, Schema, **facts)` renders the persona's template (the
   repository's `.council/prompts/` first), fits it to the model's limit and calls it;
   `self.prompt(...)` and `self.call(...)` are the two halves, for a conversation. The budget is
   the gateway's (`BudgetExceeded` stops the run, resumable); the run's cost is kept by the
   store from the ModelCall events.
6. Optional hooks: `failure_report(reason)` (markdown lines the report file left on the branch
   says, after run, feature and reason, when the run stops short with `Stop`) with
   `failure_scope()` (its commit's scope), or `failure_commit = False` for no report and no
   work-in-progress commit at all (heal: its branch holds only fixes); and `details()`
   (flow-specific facts of the outcome, e.g. a pull request's URL).
7. Starting and resuming need nothing more: `flows.start_flow(kind, ...)` and
   `flows.resume_run(run_id, ...)` (the CLI's `council resume`, the server's workers) build the
   flow from its registered class and the stored row.

Events are the only record: steps emit typed events (`self.emit(...)`), the store persists them
and projects the runs/steps rows from them; the CLI, `--json`, `show` and the server render them.
"""

from __future__ import annotations

import abc
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from council.config import CouncilConfig
from council.context.budget import PromptTooLarge, fit_prompt
from council.errors import BudgetExceeded, CouncilError, ModelError, UsageError
from council.events import Emitter, Notice, RunClaimed, RunFinished, RunStarted
from council.gateway import Gateway
from council.personas import Prompts
from council.pipelines.engine import StepOutput, StepRunner
from council.pipelines.models import ask_persona, make_gateway
from council.store import RunRecord, Store
from council.telemetry import attach_tracing
from council.workspace import (
    Workspace,
    commit_all,
    conventional_message,
    create_worktree,
    open_worktree,
)
from council.workspace.git import out as git_out

REPORT_FILE = ".council-report.md"
PROMPT_MARGIN = 0.1  # of a model's context window: token counts are estimates


class Stop(Exception):
    """Ends a run early within limits (no progress, iterations used up, tests never red)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Outcome:
    """How a run ended; `details` holds what only its flow knows (a pull request's URL, ...)."""

    run_id: str
    kind: str
    status: str  # green | failed | error | stopped
    reason: str = ""
    branch: str = ""
    worktree: str = ""
    commits: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "green" else 1

    def as_dict(self) -> dict[str, Any]:
        """The outcome as `--json` prints it: the common fields and the flow's details."""
        out = asdict(self)
        details = out.pop("details")
        return {**out, **details}


class Flow(abc.ABC):
    """The lifecycle of one run of a flow; subclasses supply `kind`, `check` and `flow`."""

    kind: ClassVar[str] = ""
    # Hook (heal): a flow whose branch holds only finished work, one commit per fix, sets this
    # False; a Stop then leaves the branch as it is, without the work-in-progress report commit.
    failure_commit: ClassVar[bool] = True

    def __init__(self, *, run: RunRecord, config: CouncilConfig, store: Store, emit: Emitter):
        self.repo = Path(run.repo)
        self.config = config
        self.store = store
        self.emit = emit
        self.run_id = run.id
        self.feature = run.feature
        self.params: dict[str, Any] = params_of(run)
        self.prompts = Prompts(self.repo)  # the repository's .council/prompts/ over the package's
        emit.run_id = run.id
        emit.subscribe(store.record_event)  # the store persists the one event stream
        attach_tracing(emit, self.kind)  # OpenTelemetry spans, when OTEL_* env vars ask
        self.steps = StepRunner(store, run.id, emit)
        # The gateway (and with it the check that the models can be had) is made at first use:
        # a flow may end without asking anyone (a healthy deploy, a dry run). The commands that
        # will ask check the models before anything is written (cli, queue).
        self._gateway: Gateway | None = None
        self._gateway_lock = threading.Lock()  # parallel tracks may be first at once
        self._spent_before = run.total_cost_usd
        self.ws: Workspace | None = None
        self.commits: list[str] = []

    @property
    def gateway(self) -> Gateway:
        with self._gateway_lock:
            if self._gateway is None:
                self._gateway = make_gateway(self.config, self.emit, spent_usd=self._spent_before)
            return self._gateway

    @property
    def spent_usd(self) -> float:
        """What the run's model calls cost so far (its earlier processes' included)."""
        return self._gateway.spent_usd if self._gateway is not None else self._spent_before

    # --- what a flow supplies ---------------------------------------------------------------

    @classmethod
    def check(
        cls, repo: Path, config: CouncilConfig, feature: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Validate the request before anything is written; return the params to store."""
        return params

    @abc.abstractmethod
    def flow(self) -> tuple[str, str]:
        """The flow's steps run in order; returns (status, reason) for the outcome."""

    def failure_report(self, reason: str) -> list[str]:
        """Markdown lines after the header of the report left on the branch when the run
        stops short (run, feature, reason)."""
        return []

    def failure_scope(self) -> str | None:
        return None

    def details(self) -> dict[str, Any]:
        return {}

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        *,
        repo: Path,
        feature: str,
        config: CouncilConfig,
        store: Store,
        emit: Emitter,
        **params: Any,
    ) -> Flow:
        """A new run of this flow: checked, recorded (status running), ready to `execute`."""
        params = cls.check(repo, config, feature, params)
        run_id = store.create_run(
            feature=feature,
            repo=str(repo),
            config={**config.snapshot(), "params": params},
            kind=cls.kind,
        )
        return cls(run=load_run(store, run_id), config=config, store=store, emit=emit)

    @classmethod
    def resume(cls, *, run_id: str, config: CouncilConfig, store: Store, emit: Emitter) -> Flow:
        """A stored run of this flow, to continue after its last finished step."""
        run = resumable_run(store, run_id)
        if run.kind != cls.kind:
            raise UsageError(f"run {run.id} is a {run.kind}, not a {cls.kind}")
        return cls(run=run, config=config, store=store, emit=emit)

    # --- the run ----------------------------------------------------------------------------

    def execute(self) -> Outcome:
        # This process's pid: `runs` can tell if it dies.
        self.emit(RunClaimed(pid=os.getpid(), host=socket.gethostname()))
        try:
            status, reason = self.flow()
        except Stop as stop:
            status, reason = stop.status, stop.reason
            self._save_failure(reason)
        except BudgetExceeded as exc:
            # State is saved step by step; the worktree keeps the work for `council resume`.
            status, reason = "stopped", str(exc)
        except (ModelError, CouncilError) as exc:
            status, reason = "error", str(exc)
        except KeyboardInterrupt as exc:
            how = f" ({exc.signal_name})" if hasattr(exc, "signal_name") else ""
            self._close(
                "interrupted",
                f"interrupted{how}; `council resume {self.run_id}` continues from the last step",
            )
            raise
        except Exception as exc:
            # A bug of ours: keep the traceback for the report, but never leave "running".
            self._close("error", f"internal error: {type(exc).__name__}: {exc}")
            raise
        self._close(status, reason)
        return Outcome(
            run_id=self.run_id,
            kind=self.kind,
            status=status,
            reason=reason,
            branch=self.ws.branch if self.ws else "",
            worktree=str(self.ws.path) if self.ws else "",
            commits=self.commits,
            cost_usd=self.spent_usd,
            details=self.details(),
        )

    def _close(self, status: str, reason: str) -> None:
        self.emit.step = None  # the run's end belongs to no step
        self.emit(RunFinished(status=status, reason=reason, total_cost_usd=self.spent_usd))

    def setup_worktree(
        self, slug: str, extra: Callable[[Workspace], StepOutput] | None = None
    ) -> StepOutput:
        """The `setup` step: a new branch and worktree (once; on resume the stored ones).
        `extra(ws)` adds the flow's own facts to the step's output (a backup branch, ...)."""

        def create() -> StepOutput:
            base = git_out(self.repo, "rev-parse", "--abbrev-ref", "HEAD")
            ws = create_worktree(self.repo, slug)
            out = {
                "branch": ws.branch,
                "worktree": str(ws.path),
                "base_sha": ws.base_sha,
                "base_branch": base if base != "HEAD" else "main",
            }
            return {**out, **(extra(ws) if extra else {})}

        fresh = not self.steps.is_done("setup")
        out = self.steps.run("setup", create, detail="worktree")
        self.ws = open_worktree(self.repo, out["branch"])
        if fresh:
            self.emit(
                RunStarted(
                    feature=self.feature,
                    repo=str(self.repo),
                    branch=self.ws.branch,
                    worktree=str(self.ws.path),
                )
            )
        else:
            done = ", ".join(n for n in self.steps.done if n != "setup") or "setup"
            self.emit(Notice(message=f"resuming run {self.run_id} after: {done}"))
        return out

    def commit(self, message: str) -> str:
        """Commit everything in the worktree; the sha ('' when nothing changed) joins the
        outcome's commits."""
        sha = commit_all(self.ws, message, emit=self.emit)
        if sha:
            self.commits.append(sha)
        return sha or ""

    def _save_failure(self, reason: str) -> None:
        """Keep the work on the branch with a report of what failed (the user decides)."""
        if self.ws is None or not self.failure_commit:
            return
        lines = [
            "# AI Council: run did not finish green",
            "",
            f"- Run: {self.run_id}",
            f"- Feature: {self.feature}",
            f"- Reason: {reason}",
            "",
            *self.failure_report(reason),
        ]
        (self.ws.path / REPORT_FILE).write_text("\n".join(lines), encoding="utf-8")
        scope = self.failure_scope()
        subject = f"work in progress, not green (see {REPORT_FILE})"
        self.commit(conventional_message("chore", scope or None, subject, reason))

    # --- asking a persona ------------------------------------------------------------------

    def ask(self, persona: str, template: str, schema: type | None = None, **facts: Any) -> Any:
        """One persona call: free text, or a validated `schema` instance when one is given."""
        return self.call(persona, self.prompt(persona, template, facts), schema)

    def prompt_limit(self, persona: str) -> tuple[int, str]:
        """(most prompt tokens for the persona's model, why): `context.prompt_tokens`, and
        below the model's context window less the answer's room and a safety margin."""
        settings = self.config.persona(persona)
        limit, why = self.config.context.prompt_tokens, "context.prompt_tokens"
        window = self.gateway.context_window(settings.model)
        if window is not None:
            room = int(window * (1 - PROMPT_MARGIN)) - settings.max_tokens
            if room < limit:
                limit, why = room, f"the context window of {settings.model} ({window} tokens)"
        return max(limit, 1), why

    def prompt(
        self,
        persona: str,
        template: str,
        facts: dict[str, Any],
        keep: dict[str, list[str]] | list[str] | None = None,
    ) -> list[dict[str, str]]:
        """The persona's prompt, its files, tests and long texts cut to fit its limit."""
        limit, why = self.prompt_limit(persona)
        model = self.config.persona(persona).model
        try:
            return fit_prompt(
                lambda f: self.prompts.render(persona, template, **f),
                facts,
                limit,
                lambda m: self.gateway.count_tokens(model, m),
                keep or (),
            )
        except PromptTooLarge as exc:
            raise CouncilError(
                f"{persona}'s prompt cannot be made to fit {why}: {exc}",
                hint="Use a model with a larger context window or raise context.prompt_tokens.",
            ) from None

    def call(self, persona: str, messages: list[dict[str, str]], schema: type | None = None) -> Any:
        """Send `messages` to the persona's model; never over its limit (measured first)."""
        limit, why = self.prompt_limit(persona)
        size = self.gateway.count_tokens(self.config.persona(persona).model, messages)
        if size > limit:
            raise CouncilError(f"{persona}'s prompt of {size} tokens is over {why} ({limit})")
        return ask_persona(self.gateway, self.config, persona, messages, schema)


def params_of(run: RunRecord) -> dict[str, Any]:
    """The flow's parameters stored in a run row. Rows written before params had a key of
    their own kept them beside the config snapshot."""
    config = run.config or {}
    if "params" in config:
        return dict(config["params"] or {})
    return {k: config[k] for k in ("open_pr", "given_tests", "max_iterations") if k in config}


def load_run(store: Store, run_id: str) -> RunRecord:
    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"no run '{run_id}' in this repository (see `council runs`)")
    return run


def resumable_run(store: Store, run_id: str) -> RunRecord:
    """The stored run `run_id` (or unique prefix), refused when there is nothing to resume."""
    return refuse_finished(load_run(store, run_id))


def refuse_finished(run: RunRecord) -> RunRecord:
    if run.status == "green":
        raise UsageError(f"run {run.id} already finished green; nothing to resume")
    return run
