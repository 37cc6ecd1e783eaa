"""The doit flow: intent -> strategy -> plan -> cost -> budget -> (approval) -> execute with
retry, fallback and rollback -> validate -> spend recorded, or failure analysed.

Every step is a lifecycle step (stored when it finishes, replayed on resume); every executed
action is a step of its own, so an objective killed mid-way resumes after its last finished
action without repeating a create. Each step emits typed events (events.Cloud*); the store
projects them into the hash-chained audit trail (store.audit), so the flow never writes it.

The budget is reserved, not just checked: the budget step judges the limits and reserves the
estimate in one transaction (cloud.budget.reserve_budget); the reservation is renewed (or taken
again) by every process that goes on to execute, settled to the cost when the objective is
done, released when it fails or is declined.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from council.cloud.actions import Action, Plan, render_call
from council.cloud.cost import CostEstimate, estimate, upload_files
from council.cloud.execute import Hooks, ObjectiveFailed, carry_out
from council.cloud.failures import CloudFailure
from council.cloud.intent import RESOURCE_TYPES, CloudIntent, parameter, questions
from council.cloud.mcp_client import McpServer
from council.cloud.prices import RetailPrices
from council.cloud.strategies.base import Strategy
from council.cloud.strategies.select import NAMES, rank
from council.cloud.target import CloudTarget
from council.config import CouncilConfig
from council.errors import UsageError
from council.events import (
    CloudActionDone,
    CloudApproval,
    CloudCostEstimated,
    CloudIntentRead,
    CloudObjectiveFinished,
    CloudPlanMade,
    CloudStrategyChosen,
    CloudValidated,
    Notice,
    RunStarted,
)
from council.pipelines.doit.analysis import analyse_failure
from council.pipelines.doit.budget import BudgetSteps
from council.pipelines.doit.interaction import Interaction
from council.pipelines.lifecycle import Flow, Stop
from council.redact import redact

CLARIFY_ROUNDS = 2


class DoitFlow(BudgetSteps, Flow):
    kind: ClassVar[str] = "doit"
    interaction: Interaction | None = None  # set by the CLI on a terminal

    @classmethod
    def check(
        cls, repo: Path, config: CouncilConfig, feature: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        if not feature.strip():
            raise UsageError('say what to do: council doit "create a storage account ..."')
        target = params.get("target") or "local"
        if target not in ("local", "azure"):
            raise UsageError(f"--target must be local or azure, got {target!r}")
        only = params.get("strategy")
        if only is not None and only not in NAMES:
            raise UsageError(f"--strategy must be one of {', '.join(NAMES)}, got {only!r}")
        base = Path(params.get("base") or repo).resolve()
        if not base.is_dir():
            raise UsageError(f"{base} is not a directory")
        mcp = params.get("mcp") or {}
        if not mcp:
            found = McpServer.from_env()
            mcp = {}
            if found:
                mcp = {
                    "command": found.command,
                    "url": found.url,
                    "read_only_args": found.read_only_args,
                }
        return {
            "target": target,
            # Fixed at the start, so a resumed objective talks to the same place.
            "blob_endpoint": CloudTarget.named(target).blob_endpoint,
            "base": str(base),
            "dry_run": bool(params.get("dry_run")),
            "yes": bool(params.get("yes")),
            "strategy": only,
            "currency": str(params.get("currency") or "USD").upper(),
            "prices_url": params.get("prices_url") or os.environ.get("COUNCIL_PRICES_URL"),
            "mcp": mcp,
        }

    # -- helpers -----------------------------------------------------------------------------
    @property
    def target(self) -> CloudTarget:
        return CloudTarget(self.params["target"], self.params.get("blob_endpoint") or "")

    @property
    def base(self) -> Path:
        return Path(self.params["base"])

    def strategies(self, intent: CloudIntent) -> list[Strategy]:
        mcp = self.params.get("mcp") or {}
        server = McpServer(
            command=list(mcp.get("command") or []),
            url=mcp.get("url") or "",
            read_only_args=list(mcp.get("read_only_args") or []),
        )
        workdir = self.repo / ".council" / "doit" / self.run_id
        return rank(
            intent,
            self.target,
            self.base,
            workdir,
            mcp_server=server if (server.command or server.url) else None,
            emit=self.emit,
            only=self.params.get("strategy"),
        )

    # -- the flow ----------------------------------------------------------------------------
    def flow(self) -> tuple[str, str]:
        if not self.steps.done:
            self.emit(RunStarted(feature=self.feature, repo=str(self.repo), branch="", worktree=""))
        else:
            self.emit(Notice(message=f"resuming objective {self.run_id}"))
        intent = self.read_intent()
        chosen = self.choose_strategy(intent)
        plan = self.make_plan(intent, chosen)
        cost = self.estimate_cost(intent)
        self.check_budget(intent, cost)
        if self.params["dry_run"]:
            self.emit(CloudObjectiveFinished(status="dry_run"))
            return "green", "dry run: nothing was changed"
        self.approve_destructive(intent)
        self.hold_budget(intent, cost)
        used, attempts = self.execute_objective(intent, {chosen: plan})
        self.steps.run("spend", lambda: self.record_spend(intent, cost, used))
        self.emit(CloudObjectiveFinished(status="done", strategy=used, attempts=attempts))
        return "green", f"done with {used}: {intent.summary}"

    def read_intent(self) -> CloudIntent:
        request = self.feature
        for round_ in range(CLARIFY_ROUNDS + 1):
            name = "intent" if round_ == 0 else f"intent-{round_ + 1}"
            out = self.steps.run(name, lambda r=request: self._intent(r), persona="devops")
            intent = CloudIntent(**out["intent"])
            asked = out["questions"]
            if not asked:
                return intent
            answer = self.interaction.answer(asked[0]) if self.interaction else None
            if not answer or round_ == CLARIFY_ROUNDS:
                how = (
                    f"answer it at a terminal with `council doit --resume {self.run_id}`, "
                    "or say it in a new request"
                )
                raise Stop("stopped", f"a question must be answered first: {asked[0]} ({how})")
            self.emit(
                CloudApproval(subject="question", question=asked[0], answer=answer, by="the user")
            )
            request = f"{request}\n{asked[0]} {answer}"
        raise AssertionError("unreachable")

    def _intent(self, request: str) -> dict[str, Any]:
        intent = self.ask(
            "devops", "doit_intent", CloudIntent, request=request, types=RESOURCE_TYPES
        )
        asked = questions(intent) + self._missing_files(intent)
        resources = [r.model_dump() for r in intent.resources]
        self.emit(
            CloudIntentRead(
                operation=intent.operation, summary=intent.summary, resources=resources,
                region=intent.region, confidence=intent.confidence, questions=asked,
                request=request, resource_group=intent.resource_group,
            )
        )  # fmt: skip
        return {"intent": intent.model_dump(), "questions": asked, "detail": intent.summary}

    def _missing_files(self, intent: CloudIntent) -> list[str]:
        """An upload whose paths match no file is a question, not an empty upload."""
        asked = []
        for upload in intent.of_type("blob_upload"):
            patterns = parameter(intent, upload, "files") or []
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                found = upload_files([pattern], self.base)
                if not found:
                    asked.append(f"no file matches {pattern!r} in {self.base}: which files?")
                # The model read the paths: one that leaves the folder (an absolute path, ../,
                # a link) is asked about, never uploaded on its word.
                outside = [f for f in found if not f.resolve().is_relative_to(self.base.resolve())]
                if outside:
                    asked.append(
                        f"{pattern!r} reaches outside {self.base} ({outside[0]}): run doit "
                        "from the folder that holds the files, or name files inside this one"
                    )
        return asked

    def choose_strategy(self, intent: CloudIntent) -> str:
        def choose() -> dict[str, Any]:
            considered, chosen = [], ""
            for strategy in self.strategies(intent):
                why = strategy.unavailable() or (None if chosen else strategy.unsupported(intent))
                status = "unavailable" if why else ("chosen" if not chosen else "fallback")
                considered.append({"name": strategy.name, "status": status, "reason": why or ""})
                chosen = chosen or ("" if why else strategy.name)
            self.emit(CloudStrategyChosen(chosen=chosen, considered=considered))
            return {"chosen": chosen, "considered": considered, "detail": chosen or "none"}

        out = self.steps.run("strategy", choose)
        if not out["chosen"]:
            reasons = "; ".join(f"{c['name']}: {c['reason']}" for c in out["considered"])
            raise Stop("failed", f"no strategy can carry this out here ({reasons})")
        return out["chosen"]

    def make_plan(self, intent: CloudIntent, chosen: str) -> Plan:
        def plan() -> dict[str, Any]:
            strategy = next(s for s in self.strategies(intent) if s.name == chosen)
            made = strategy.plan(intent)
            calls = [redact(render_call(a.call)) for a in made.actions]
            self.emit(
                CloudPlanMade(strategy=chosen, calls=calls, notes=made.notes, checks=made.checks)
            )
            return {**made.as_dict(), "detail": f"{len(calls)} calls with {chosen}"}

        return Plan.from_dict(self.steps.run("plan", plan))

    def estimate_cost(self, intent: CloudIntent) -> CostEstimate:
        def cost() -> dict[str, Any]:
            prices = RetailPrices(self.params.get("prices_url"), currency=self.params["currency"])
            found = estimate(intent, prices, self.base)
            self.emit(CloudCostEstimated(**{k: v for k, v in found.as_dict().items()}))
            return {**found.as_dict(), "detail": found.describe()}

        out = self.steps.run("cost", cost)
        return CostEstimate(
            out["monthly"], out["currency"], [], out["assumptions"], out["source"],
            out["unknown_reason"],
        )  # fmt: skip

    def execute_objective(
        self, intent: CloudIntent, plans: dict[str, Plan]
    ) -> tuple[str, list[dict[str, Any]]]:
        """Carry the objective out: the strategy that did it and every attempt's account."""
        skip = self.failed_before()
        certain = self.failed_for_certain()
        hooks = Hooks(
            unit=lambda name, fn: self.steps.run(name, fn),
            started_before=lambda name: name in self.steps.unfinished and name not in certain,
            notice=lambda text: self.emit(Notice(level="warning", message=text)),
            action_done=self.action_done,
            validated=lambda strategy, checks, problems: self.emit(
                CloudValidated(strategy=strategy, checks=checks, problems=problems)
            ),
        )
        try:
            strategy, _plan, attempts = carry_out(
                intent, self.strategies(intent), hooks, skip=skip, plans=plans
            )
        except ObjectiveFailed as failed:
            # What it created was rolled back: the reservation goes before anything slower.
            self.release_budget("the objective failed; what it created was rolled back")
            analysis = analyse_failure(self, intent, failed)
            self.emit(
                CloudObjectiveFinished(
                    status="failed",
                    attempts=[a.__dict__ for a in failed.attempts],
                    analysis=analysis,
                    reason=failed.args[0],
                )
            )
            advice = analysis.get("advice") or ""
            said = f" ({advice})" if advice and advice != failed.args[0] else ""
            raise Stop("failed", f"{failed.args[0]}{said}") from None
        self.remember_fallbacks(attempts, strategy.name)
        return strategy.name, [a.__dict__ for a in attempts]

    def action_done(
        self, strategy: str, action: Action, how: str, output: Any, failure: CloudFailure | None
    ) -> None:
        call = redact(render_call(action.call if how == "run" else (action.undo or {})))
        status = "failed" if failure else ("ok" if how == "run" else "rolled_back")
        created = bool(output and output.get("created")) if how == "run" else False
        detail = failure.message if failure else ""
        if not failure and how == "run" and not action.creates and output:
            # What a list or show found is the answer the user asked for.
            detail = redact(json.dumps(output.get("output"), default=str))[:2000]
        self.emit(
            CloudActionDone(
                strategy=strategy, action=action.id, call=call, status=status, created=created,
                detail=detail, how=how, output=_jsonable(output),
                category=failure.category if failure else "",
            )
        )  # fmt: skip

    def failed_before(self) -> set[str]:
        """Strategies that failed in an earlier attempt at this objective: not tried again."""
        return {
            a["strategy"]
            for e in self.store.events(self.run_id, kinds=["cloud_objective"])
            if isinstance(e, CloudObjectiveFinished)
            for a in e.attempts
            if a.get("status") == "failed"
        }

    def failed_for_certain(self) -> set[str]:
        """Action steps whose last run ended in a failure that made nothing (name taken,
        refused, invalid). On resume such a step runs again as a first try: a resource found
        there belongs to someone else, and is never claimed nor rolled back. Every other
        unfinished step (killed, interrupted, timed out) may have made its resource, and one
        found there is taken as this objective's own."""
        certain: dict[str, bool] = {}
        for e in self.store.events(self.run_id, kinds=["step_started", "cloud_action"]):
            if not e.step:
                continue
            if e.kind == "step_started":
                certain[e.step] = False  # a new try: its outcome is unknown until it says
            elif isinstance(e, CloudActionDone) and e.how == "run" and e.status == "failed":
                certain[e.step] = e.category != "transient"
        return {name for name, sure in certain.items() if sure}

    def remember_fallbacks(self, attempts: list[Any], used: str) -> None:
        """Fix memory, as heal keeps it: this strategy worked after that failure signature."""
        for a in attempts:
            if a.status == "failed" and a.signature:
                self.store.remember_fix(
                    a.signature, "cloud_fallback", {"strategy": used}, tool=a.strategy,
                    error_type=a.category,
                )  # fmt: skip

    def details(self) -> dict[str, Any]:
        return {"objective": self.run_id, "target": self.params["target"]}


def _jsonable(value: Any) -> Any:
    """An action's output as JSON (an SDK's answer may hold datetimes, bytes, ...)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str))
