"""The one event stream: typed facts a pipeline reports as it works.

The CLI renders them, the store persists them, the server streams them, and `show` / `resume`
read them back. Nothing keeps a second, private record of the same facts.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class _Event(BaseModel):
    ts: float = Field(default_factory=time.time)
    run_id: str | None = None
    step: str | None = None  # the pipeline step that produced the event, when there is one


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    feature: str
    repo: str
    branch: str
    worktree: str


class RunClaimed(_Event):
    """A process takes the run up (start, resume, a server's worker): `runs` and `show` can
    tell a run whose process is gone from one still running."""

    kind: Literal["run_claimed"] = "run_claimed"
    pid: int
    host: str


class StepStarted(_Event):
    kind: Literal["step_started"] = "step_started"
    persona: str | None = None
    detail: str = ""


class StepFinished(_Event):
    kind: Literal["step_finished"] = "step_finished"
    status: Literal["ok", "failed", "skipped"] = "ok"
    detail: str = ""
    # What the step hands on (JSON): the store keeps it as the step's row, and a resumed run
    # gets it back instead of running the step again.
    output: dict[str, Any] | None = None


class ModelCall(_Event):
    """One exchange with a model (or a cache hit). Messages are redacted before they get here."""

    kind: Literal["model_call"] = "model_call"
    persona: str | None = None
    alias: str
    model: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    response: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    total_cost_usd: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False
    error: str | None = None


class ModelProgress(_Event):
    """A model call in flight: time and answer tokens so far. Transient: rendered as a live line
    (and, throttled, in `--json`), never stored; the ModelCall that ends the call is the fact."""

    kind: Literal["model_progress"] = "model_progress"
    call_id: str  # one model call; its progress events share it
    persona: str | None = None
    alias: str
    model: str = ""
    elapsed_s: float = 0.0
    tokens: int = 0  # answer tokens received so far (0 while the model reads the prompt)
    tokens_per_s: float = 0.0


class CommandRun(_Event):
    kind: Literal["command_run"] = "command_run"
    argv: list[str]
    cwd: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    timed_out: bool = False
    output_tail: str = ""


class TestsReported(_Event):
    kind: Literal["tests_reported"] = "tests_reported"
    language: str = "python"
    phase: str = ""  # "red", "green", "iteration-2", ...
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    signature: str = ""
    failures: list[str] = Field(default_factory=list)  # test ids that did not pass
    scope: str = ""  # "selected" (the tests that matter) or "full" (the whole suite)
    duration_s: float = 0.0
    timed_out: bool = False
    running: list[str] = Field(default_factory=list)  # tests still running at the time limit


class EditApplied(_Event):
    kind: Literal["edit_applied"] = "edit_applied"
    path: str
    edit_kind: str = ""


class EditRefused(_Event):
    kind: Literal["edit_refused"] = "edit_refused"
    path: str
    reason: str


class CommitMade(_Event):
    kind: Literal["commit_made"] = "commit_made"
    sha: str
    branch: str
    message: str


class ReviewMade(_Event):
    kind: Literal["review_made"] = "review_made"
    verdict: str
    comments: list[dict[str, Any]] = Field(default_factory=list)


class Notice(_Event):
    kind: Literal["notice"] = "notice"
    level: Literal["info", "warning", "error"] = "info"
    message: str


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    # cancelled: a run of `council serve` stopped by a cancel request (queue/)
    status: Literal["green", "failed", "error", "stopped", "interrupted", "cancelled"]
    reason: str = ""
    total_cost_usd: float = 0.0


# --- heal: what `council heal` found and did, per iteration ----------------------------------
# Every fact of a heal is one of these (plus CommandRun, TestsReported, CommitMade, Notice):
# its CLI table, `--json`, report file and `council show` are all rendered from them
# (council.heal_report), so nothing keeps a second record of what the heal did.


class HealStarted(_Event):
    """The gates a heal runs, in order, and the branch that keeps the starting point."""

    kind: Literal["heal_started"] = "heal_started"
    gates: list[dict[str, Any]] = Field(default_factory=list)  # label, language, root, config
    backup_branch: str = ""
    max_iterations: int = 0
    dry_run: bool = False


class FailureClassified(_Event):
    """The failure an iteration works on, and what recognised it."""

    kind: Literal["failure_classified"] = "failure_classified"
    iteration: int
    gate: str  # the gate's label ("test", "javascript:lint", ...)
    track: str = ""  # the language track ("" for a repository-wide gate)
    signature: dict[str, str] = Field(default_factory=dict)  # ErrorSignature.to_dict()
    catalogue: list[str] = Field(default_factory=list)  # known-error ids, best first
    source: Literal["catalogue", "memory", "model"] = "model"  # who decides the fix
    description: str = ""  # the catalogue row's description, when one matched


class MemoryHit(_Event):
    """A fix remembered for this signature, tried before anything else."""

    kind: Literal["memory_hit"] = "memory_hit"
    iteration: int
    gate: str
    signature: str  # the signature's hash
    fix: str  # the remembered fix's kind (model_patch, add_python_dependency, ...)
    applied: bool = False


class RecoveryTried(_Event):
    """One recovery attempt: deterministic (catalogue), a re-run, or a report to a person."""

    kind: Literal["recovery_tried"] = "recovery_tried"
    iteration: int
    gate: str
    recovery: str  # add_python_dependency, retry_longer, rerun, report, ...
    action: str = ""  # what it did, in words (or the command it ran)
    applied: bool = False
    result: str = ""
    record: dict[str, Any] = Field(default_factory=dict)  # the action's own facts, as reported


class FlakyDetected(_Event):
    kind: Literal["flaky_detected"] = "flaky_detected"
    iteration: int
    gate: str
    tests: list[str] = Field(default_factory=list)
    again: bool = False  # proven flaky earlier in this heal: reported, not re-run


class PatchProposed(_Event):
    kind: Literal["patch_proposed"] = "patch_proposed"
    iteration: int
    attempt: int = 1
    persona: str = "builder"
    files: list[str] = Field(default_factory=list)
    size: int = 0  # changed lines (added + removed)
    diff: str = ""
    commands: list[str] = Field(default_factory=list)  # shell commands the answer proposes


class PatchReviewed(_Event):
    kind: Literal["patch_reviewed"] = "patch_reviewed"
    iteration: int
    attempt: int = 1
    persona: str = "guardian"  # "" when the deterministic pre-check decided alone
    verdict: str  # approve | request_changes | precheck
    findings: list[str] = Field(default_factory=list)


class PatchApplied(_Event):
    kind: Literal["patch_applied"] = "patch_applied"
    iteration: int
    attempt: int = 1
    method: str = ""  # git apply, git apply --3way, commands only, ...
    files: list[str] = Field(default_factory=list)
    commands: list[dict[str, Any]] = Field(default_factory=list)  # proposed commands it ran


class PatchRefused(_Event):
    kind: Literal["patch_refused"] = "patch_refused"
    iteration: int
    attempt: int = 1
    reasons: list[str] = Field(default_factory=list)
    forbidden: dict[str, Any] | None = None  # a command the policy forbids: command, rule, reason


class IterationFinished(_Event):
    """One heal iteration's end: every gate's result and what the iteration came to."""

    kind: Literal["iteration_finished"] = "iteration_finished"
    iteration: int
    gate: str = ""  # the failing gate it worked on ("" when all passed)
    gates: dict[str, str] = Field(default_factory=dict)  # label -> passed | failed | not run
    failures: list[dict[str, str]] = Field(default_factory=list)  # every failing signature
    log: str = ""  # the tail of the failing gate's output
    result: str = ""
    cost_usd: float = 0.0


# --- deploy: what `council deploy` did to get a service healthy --------------------------------
# Each has summary(): the one line the console and `council show` print for it.


class ArtefactsChecked(_Event):
    """Deployment artefacts generated (or the project's own kept) and checked offline."""

    kind: Literal["artefacts_checked"] = "artefacts_checked"
    written: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)  # the project's own files, left as they are
    checks: dict[str, list[str]] = Field(default_factory=dict)  # check -> violations

    def summary(self) -> str:
        bad = sum(len(v) for v in self.checks.values())
        names = ", ".join(self.checks) or "none"
        files = f"{len(self.written)} written, {len(self.kept)} kept"
        return f"artefacts: {files}; checks ({names}): {bad or 'no'} finding(s)"


class ServiceStarted(_Event):
    kind: Literal["service_started"] = "service_started"
    target: str
    release: str
    commit: str = ""
    url: str = ""
    pid: int | None = None

    def summary(self) -> str:
        return f"started release {self.release} on {self.target} at {self.url} (pid {self.pid})"


class HealthChecked(_Event):
    kind: Literal["health_checked"] = "health_checked"
    url: str
    healthy: bool
    attempts: int = 0
    elapsed_s: float = 0.0
    status_code: int | None = None
    exit_code: int | None = None
    error: str = ""

    def summary(self) -> str:
        if self.healthy:
            return f"healthy: {self.url} answered {self.status_code} in {self.elapsed_s:.1f}s"
        return f"unhealthy after {self.attempts} probe(s), {self.elapsed_s:.1f}s: {self.error}"


class DeployLogs(_Event):
    """An excerpt of the logs a diagnosis reads (the service's, a workflow's, the platform's)."""

    kind: Literal["deploy_logs"] = "deploy_logs"
    source: str
    excerpt: str = ""

    def summary(self) -> str:
        lines = self.excerpt.strip().splitlines()
        return f"logs from {self.source}: {len(lines)} line(s); last: {lines[-1] if lines else ''}"


class DeployDiagnosed(_Event):
    kind: Literal["deploy_diagnosed"] = "deploy_diagnosed"
    source: Literal["known", "model"]  # the known-error table, or DevOps
    category: str = ""
    cause: str = ""
    evidence: list[str] = Field(default_factory=list)
    fix: str = ""

    def summary(self) -> str:
        return f"diagnosis ({self.source}, {self.category}): {self.cause} -> {self.fix}"


class DeployRecovery(_Event):
    kind: Literal["deploy_recovery"] = "deploy_recovery"
    action: str  # add_dependency, longer_health_timeout, model_patch, retry, ...
    detail: str = ""
    applied: bool = False

    def summary(self) -> str:
        done = "applied" if self.applied else "not applied"
        return f"recovery {self.action}: {done}; {self.detail}"


class RolledBack(_Event):
    kind: Literal["rolled_back"] = "rolled_back"
    release: str = ""  # the release serving now ("" when none was ever healthy)
    url: str = ""
    reason: str = ""

    def summary(self) -> str:
        now = f"release {self.release} serves at {self.url}" if self.release else "nothing serves"
        return f"rolled back: {now} ({self.reason})"


class WorkflowPolled(_Event):
    """The GitHub workflow run a push started, as last seen."""

    kind: Literal["workflow_polled"] = "workflow_polled"
    workflow_run: int = 0  # GitHub's run id
    status: str = ""
    conclusion: str | None = None
    url: str = ""

    def summary(self) -> str:
        end = f", {self.conclusion}" if self.conclusion else ""
        return f"workflow run {self.workflow_run}: {self.status}{end} {self.url}".rstrip()


# --- doit: what `council doit` understood, chose, estimated and did -----------------------------
# Each fact of a cloud objective is one of these (plus CommandRun, Notice); the live output and
# `council show` describe them (council.doit_report), and the store projects them into the
# hash-chained audit trail (store.audit) in the event's own transaction.


class CloudIntentRead(_Event):
    kind: Literal["cloud_intent"] = "cloud_intent"
    operation: str
    summary: str = ""
    resources: list[dict[str, Any]] = Field(default_factory=list)
    region: str = ""
    confidence: float = 0.0
    questions: list[str] = Field(default_factory=list)  # what must be asked before acting
    request: str = ""  # the words the intent was read from (with the answers given so far)
    resource_group: str = ""


class CloudStrategyChosen(_Event):
    kind: Literal["cloud_strategy"] = "cloud_strategy"
    chosen: str = ""  # "" when none can carry the intent out here
    considered: list[dict[str, str]] = Field(default_factory=list)  # name, status, reason


class CloudPlanMade(_Event):
    kind: Literal["cloud_plan"] = "cloud_plan"
    strategy: str
    calls: list[str] = Field(default_factory=list)  # the exact commands / tool calls, redacted
    notes: list[str] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list)


class CloudCostEstimated(_Event):
    kind: Literal["cloud_cost"] = "cloud_cost"
    monthly: float | None = None  # None: unknown (no price could be had)
    hourly: float | None = None
    currency: str = "USD"
    lines: list[dict[str, Any]] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)
    source: str = ""
    unknown_reason: str = ""


class CloudBudgetChecked(_Event):
    kind: Literal["cloud_budget"] = "cloud_budget"
    decision: str  # ok | confirm | refuse
    reasons: list[str] = Field(default_factory=list)
    approved: bool | None = None  # for "confirm": what the user (or --yes) said


class CloudBudgetHeld(_Event):
    """The objective's budget reservation: taken (atomically against the limits) before
    anything is created, renewed on resume, settled to the objective's cost, or released."""

    kind: Literal["cloud_budget_held"] = "cloud_budget_held"
    action: str  # reserved | renewed | settled | released | refused
    monthly_usd: float | None = None
    reason: str = ""


class CloudApproval(_Event):
    """A person's (or --yes's) answer: to a clarifying question, a budget confirmation, or a
    destructive operation."""

    kind: Literal["cloud_approval"] = "cloud_approval"
    subject: str  # question | budget | destructive
    question: str = ""
    answer: str = ""
    approved: bool | None = None
    by: str = ""  # the user | --yes


class CloudActionDone(_Event):
    kind: Literal["cloud_action"] = "cloud_action"
    strategy: str
    action: str
    call: str = ""
    status: str = "ok"  # ok | failed | rolled_back
    created: bool = False
    detail: str = ""
    how: str = "run"  # run | undo
    category: str = ""  # a failure's class (name_taken, transient, ...)
    output: Any = None  # what the call returned (redacted by the store)


class CloudValidated(_Event):
    kind: Literal["cloud_validated"] = "cloud_validated"
    strategy: str
    checks: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # empty: everything is as asked


class CloudObjectiveFinished(_Event):
    kind: Literal["cloud_objective"] = "cloud_objective"
    status: str  # done | failed | dry_run | refused
    strategy: str = ""
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    analysis: dict[str, Any] = Field(default_factory=dict)  # failure: class, advice, docs, model
    reason: str = ""


DOIT_KINDS = frozenset(
    {
        "cloud_intent",
        "cloud_strategy",
        "cloud_plan",
        "cloud_cost",
        "cloud_budget",
        "cloud_budget_held",
        "cloud_approval",
        "cloud_action",
        "cloud_validated",
        "cloud_objective",
    }
)


Event = Annotated[
    RunStarted
    | RunClaimed
    | StepStarted
    | StepFinished
    | ModelCall
    | ModelProgress
    | CommandRun
    | TestsReported
    | EditApplied
    | EditRefused
    | CommitMade
    | ReviewMade
    | Notice
    | RunFinished
    | HealStarted
    | FailureClassified
    | MemoryHit
    | RecoveryTried
    | FlakyDetected
    | PatchProposed
    | PatchReviewed
    | PatchApplied
    | PatchRefused
    | IterationFinished
    | ArtefactsChecked
    | ServiceStarted
    | HealthChecked
    | DeployLogs
    | DeployDiagnosed
    | DeployRecovery
    | RolledBack
    | WorkflowPolled
    | CloudIntentRead
    | CloudStrategyChosen
    | CloudPlanMade
    | CloudCostEstimated
    | CloudBudgetChecked
    | CloudBudgetHeld
    | CloudApproval
    | CloudActionDone
    | CloudValidated
    | CloudObjectiveFinished,
    Field(discriminator="kind"),
]

EventSink = Callable[[_Event], None]

_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def event_from_json(data: str | bytes | dict[str, Any]) -> _Event:
    """Rebuild a typed event from its stored JSON form."""
    if isinstance(data, dict):
        return _adapter.validate_python(data)
    return _adapter.validate_json(data)


def null_sink(_event: _Event) -> None:
    """An event sink that drops everything (library use without a listener)."""


class Emitter:
    """Fans one event out to every subscriber, stamping run id and step.

    Safe to call from several threads: the current step is per thread (a context variable,
    so parallel language tracks stamp their own steps), and events reach the sinks one at a
    time, in one order, so the store and the console see the same sequence.
    """

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self._step: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "council_step", default=None
        )
        self._sinks: list[EventSink] = []
        self._lock = threading.RLock()

    @property
    def step(self) -> str | None:
        return self._step.get()

    @step.setter
    def step(self, name: str | None) -> None:
        self._step.set(name)

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def __call__(self, event: _Event) -> None:
        if event.run_id is None:
            event.run_id = self.run_id
        if event.step is None:
            event.step = self.step
        with self._lock:
            for sink in self._sinks:
                sink(event)


BaseEvent = _Event

TRANSIENT_KINDS = frozenset({"model_progress"})  # shown while they matter, never stored
