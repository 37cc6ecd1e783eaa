"""The doit flow's budget and approval steps: the limits judged and the estimate reserved in
one transaction (`budget`), a destructive operation approved by its name typed at a terminal
(`approval`), the reservation held by every process that goes on to execute, settled when
the objective is done (`spend`) or released when it fails or is declined.

A refusal or a "no" ends its step unfinished, so a resume checks and asks again.
"""

from __future__ import annotations

from typing import Any

from council.cloud.budget import check_budget, hold_s, reserve_budget
from council.cloud.cost import CostEstimate
from council.cloud.intent import CloudIntent
from council.events import (
    CloudApproval,
    CloudBudgetChecked,
    CloudBudgetHeld,
    CloudObjectiveFinished,
    Emitter,
)
from council.pipelines.doit.interaction import Interaction
from council.pipelines.engine import StepRunner
from council.pipelines.lifecycle import Stop
from council.store import Store
from council.store.ledger import BudgetBook


class BudgetSteps:
    """Mixed into DoitFlow, whose lifecycle (Flow) provides these."""

    store: Store
    params: dict[str, Any]
    interaction: Interaction | None
    steps: StepRunner
    emit: Emitter
    run_id: str

    @property
    def book(self) -> BudgetBook:
        return BudgetBook(self.store)

    def check_budget(self, intent: CloudIntent, cost: CostEstimate) -> None:
        def check() -> dict[str, Any]:
            group = intent.resource_group or None
            if self.params["dry_run"]:  # a dry run reserves nothing: it only says
                verdict = check_budget(self.book, cost.monthly, group)
            else:
                verdict = reserve_budget(
                    self.book, self.run_id, cost.monthly, intent.summary, group
                )
            reserved = verdict.decision != "refuse" and not self.params["dry_run"]
            reserved = reserved and cost.monthly is not None
            approved: bool | None = None
            if verdict.decision == "confirm" and not self.params["dry_run"]:
                question = f"{verdict.summary}. Go on?"
                if self.params["yes"]:
                    approved = True
                elif self.interaction is not None:
                    approved = self.interaction.confirm(question)
                else:
                    approved = False
            self.emit(
                CloudBudgetChecked(
                    decision=verdict.decision, reasons=verdict.reasons, approved=approved
                )
            )
            if reserved:
                self.emit(CloudBudgetHeld(action="reserved", monthly_usd=cost.monthly))
            if approved is not None:
                by = "--yes" if self.params["yes"] else "the user"
                self.emit(
                    CloudApproval(
                        subject="budget", question=verdict.summary, approved=approved, by=by
                    )
                )
            # A refusal or a "no" ends the step unfinished: a resume checks the limits again
            # (raised since?) and asks again (or takes `--resume OBJ --yes`).
            if verdict.decision == "refuse":
                self.release_budget("refused")
                self.emit(CloudObjectiveFinished(status="refused", reason=verdict.summary))
                raise Stop(
                    "stopped", f"refused by the budget before anything ran: {verdict.summary}"
                )
            if approved is False:
                self.release_budget("not approved")
                hint = "" if self.interaction else " (`--yes` approves it)"
                raise Stop("stopped", f"not approved: {verdict.summary}{hint}")
            return {"decision": verdict.decision, "approved": approved, "summary": verdict.summary,
                    "detail": verdict.summary}  # fmt: skip

        self.steps.run("budget", check)

    def hold_budget(self, intent: CloudIntent, cost: CostEstimate) -> None:
        """Before anything is created, in every process: the objective holds its reservation
        (renewed), or, when it expired or was released (a resume long after a kill, a resume
        of a failed objective), reserves again against the limits as they are now."""
        if cost.monthly is None or self.book.renew(self.run_id, hold_s=hold_s()):
            return
        group = intent.resource_group or None
        verdict = reserve_budget(self.book, self.run_id, cost.monthly, intent.summary, group)
        if verdict.decision == "refuse":
            self.emit(CloudBudgetHeld(action="refused", monthly_usd=cost.monthly,
                                      reason=verdict.summary))  # fmt: skip
            raise Stop("stopped", f"refused by the budget before anything ran: {verdict.summary}")
        again = "reserved again: the earlier reservation had lapsed or was released"
        self.emit(CloudBudgetHeld(action="reserved", monthly_usd=cost.monthly, reason=again))

    def release_budget(self, reason: str) -> None:
        if self.book.release(self.run_id):
            self.emit(CloudBudgetHeld(action="released", reason=reason))

    def approve_destructive(self, intent: CloudIntent) -> None:
        if not intent.destructive:
            return

        def approve() -> dict[str, Any]:
            names = ", ".join(r.name or r.type for r in intent.resources)
            name = intent.resources[0].name or intent.resources[0].type
            question = f"This will {intent.operation} {names}; it cannot be undone."
            ok = self.interaction is not None and self.interaction.confirm_destructive(
                question, name
            )
            self.emit(
                CloudApproval(subject="destructive", question=question, approved=ok,
                              by="the user" if self.interaction else "nobody (no terminal)")
            )  # fmt: skip
            if not ok:  # the step stays unfinished: a resume at a terminal asks again
                self.release_budget("the destructive operation was not approved")
                raise Stop(
                    "stopped",
                    f"{intent.operation} is destructive: it needs its name typed at a terminal "
                    "(--yes does not approve it)",
                )
            return {"approved": ok, "detail": "approved"}

        self.steps.run("approval", approve)

    def record_spend(self, intent: CloudIntent, cost: CostEstimate, used: str) -> dict[str, Any]:
        """The reservation becomes the objective's spend (the estimate of what it made)."""
        self.book.settle(self.run_id, cost.monthly, intent.summary, intent.resource_group or None)
        self.emit(CloudBudgetHeld(action="settled", monthly_usd=cost.monthly, reason=used))
        return {"monthly": cost.monthly, "detail": cost.describe()}
