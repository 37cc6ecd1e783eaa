"""Carry out a plan: each action as a persisted unit (so a killed objective resumes without
repeating a create), transient failures retried with exponential backoff and jitter, what this
objective created rolled back in reverse order when a later action or the validation fails,
and the next strategy tried when a strategy fails for reasons of its own."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from council.cloud.actions import Action, ActionResult, Plan
from council.cloud.failures import CloudFailure
from council.cloud.intent import CloudIntent
from council.cloud.strategies.base import Strategy

# Failures that another strategy may not meet (its own tool, sign-in or bug); the others are
# about the request itself (a name taken, a region or SKU refused) and would fail everywhere.
FALLBACK_CATEGORIES = frozenset({"unavailable", "auth", "unknown", "transient"})

Unit = Callable[[], dict[str, Any]]


@dataclass
class RetryPolicy:
    attempts: int = 3
    base_s: float = 2.0
    max_s: float = 60.0
    jitter: float = 0.2  # +-20 %

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before retry `attempt` (1-based): base * 2^(attempt-1), capped, +-jitter."""
        raw = min(self.base_s * (2 ** (attempt - 1)), self.max_s)
        return raw * (1 + (rng or random).uniform(-self.jitter, self.jitter))


@dataclass
class Hooks:
    """How the flow persists and reports: `unit(name, fn)` runs fn once per objective and
    stores its output (the lifecycle's StepRunner); `started_before(name)` says a unit began in
    an earlier process with an unknown outcome (killed mid-way, or failed in a way that may
    have made the resource, a time-out): a resource of its found there now is its own. A unit
    that failed for certain (name taken, refused, invalid) is not "started before": a resource
    found there on its retry belongs to someone else and is never claimed or rolled back."""

    unit: Callable[[str, Unit], dict[str, Any]] = lambda _name, fn: fn()
    started_before: Callable[[str], bool] = lambda _name: False
    notice: Callable[[str], None] = lambda _text: None
    sleep: Callable[[float], None] = time.sleep
    # Called once per executed action or undo (never for a stored unit replayed on resume):
    # (strategy, action, "run" | "undo", its output or None, the failure or None).
    action_done: Callable[[str, Action, str, Any, CloudFailure | None], None] = (
        lambda _s, _a, _how, _out, _failure: None
    )
    # Called after a strategy's validation: (strategy, checks, problems found).
    validated: Callable[[str, list[str], list[str]], None] = lambda _s, _c, _p: None


@dataclass
class Attempt:
    strategy: str
    status: str  # ok | failed | unavailable | unsupported
    reason: str = ""
    created: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    category: str = ""
    signature: str = ""


class ObjectiveFailed(Exception):
    def __init__(self, message: str, attempts: list[Attempt], failure: CloudFailure | None):
        super().__init__(message)
        self.attempts = attempts
        self.failure = failure


def with_retry(
    fn: Callable[[bool], ActionResult], policy: RetryPolicy, hooks: Hooks, what: str
) -> ActionResult:
    """`fn(uncertain)`: `uncertain` is True on a retry after a transient failure, which may
    have reached the service and made the resource before it failed (a time-out)."""
    uncertain = False
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn(uncertain)
        except CloudFailure as failure:
            if not failure.transient or attempt == policy.attempts:
                raise
            pause = policy.delay(attempt)
            hooks.notice(f"{what}: {failure.category} error, retry {attempt} in {pause:.1f}s")
            hooks.sleep(pause)
            uncertain = True
    raise AssertionError("unreachable")


def run_plan(strategy: Strategy, plan: Plan, hooks: Hooks, policy: RetryPolicy) -> list[Action]:
    """Run every action; on a failure roll back what was created and raise it. Returns the
    actions that created something (for a later rollback)."""
    created: list[Action] = []
    for action in plan.actions:
        name = f"{strategy.name}:{action.id}"
        resumed = hooks.started_before(name)

        def one(action: Action = action, resumed: bool = resumed) -> dict[str, Any]:
            def run(uncertain: bool) -> ActionResult:
                return strategy.run(action, resumed=resumed or uncertain)

            try:
                result = with_retry(run, policy, hooks, action.description).as_dict()
            except CloudFailure as failure:
                hooks.action_done(strategy.name, action, "run", None, failure)
                raise
            hooks.action_done(strategy.name, action, "run", result, None)
            return {**result, "detail": action.description}

        try:
            result = hooks.unit(name, one)
        except CloudFailure as failure:
            failure.rolled_back = rollback(strategy, created, hooks)
            raise
        if result.get("created") and not action.reuse_existing:
            created.append(action)
    return created


def rollback(strategy: Strategy, created: list[Action], hooks: Hooks) -> list[str]:
    """Remove what this objective created, newest first; a removal that fails is reported and
    the others still run."""
    removed: list[str] = []
    for action in reversed(created):
        name = f"rollback:{strategy.name}:{action.id}"
        try:
            hooks.unit(name, lambda action=action: _undo(strategy, action, hooks))
            removed.append(action.creates or action.id)
        except CloudFailure as failure:
            hooks.notice(f"rollback of {action.creates} failed: {failure.message}")
    return removed


def _undo(strategy: Strategy, action: Action, hooks: Hooks) -> dict[str, Any]:
    try:
        strategy.undo(action)
    except CloudFailure as failure:
        hooks.action_done(strategy.name, action, "undo", None, failure)
        raise
    out = {"removed": action.creates, "detail": f"removed {action.creates}"}
    hooks.action_done(strategy.name, action, "undo", out, None)
    return out


def carry_out(
    intent: CloudIntent,
    strategies: list[Strategy],
    hooks: Hooks,
    policy: RetryPolicy | None = None,
    skip: set[str] | None = None,
    plans: dict[str, Plan] | None = None,
) -> tuple[Strategy, Plan, list[Attempt]]:
    """Try the strategies in order until one carries the intent out and validates; the ones in
    `skip` (failed before) are not tried again. `plans`: plans already made (and shown to the
    user), used as they are instead of planning again."""
    policy = policy or RetryPolicy()
    attempts: list[Attempt] = []
    last: CloudFailure | None = None
    for strategy in strategies:
        if strategy.name in (skip or set()):
            attempts.append(Attempt(strategy.name, "skipped", "failed before in this objective"))
            continue
        why = strategy.unavailable() or strategy.unsupported(intent)
        if why:
            attempts.append(Attempt(strategy.name, "unavailable", why))
            hooks.notice(f"strategy {strategy.name} unavailable: {why}")
            continue
        plan = Plan.from_dict(
            hooks.unit(f"plan:{strategy.name}", lambda s=strategy: _plan(s, intent))
        )
        attempt = Attempt(strategy.name, "failed")
        attempts.append(attempt)
        created: list[Action] = []
        try:
            created = run_plan(strategy, plan, hooks, policy)
            attempt.created = [a.creates or a.id for a in created]
            hooks.unit(
                f"validate:{strategy.name}",
                lambda s=strategy, p=plan: _validate(s, intent, p, hooks),
            )
        except CloudFailure as failure:
            last = failure
            attempt.reason, attempt.category = failure.message, failure.category
            attempt.signature = failure.signature
            if created:  # the validation failed: the actions had all run
                failure.rolled_back = rollback(strategy, created, hooks)
            attempt.rolled_back = failure.rolled_back
            if failure.category not in FALLBACK_CATEGORIES:
                raise ObjectiveFailed(failure.message, attempts, failure) from failure
            hooks.notice(f"strategy {strategy.name} failed ({failure.category}); trying the next")
            continue
        attempt.status = "ok"
        return strategy, plan, attempts
    skipped = [a.strategy for a in attempts if a.status == "skipped"]
    if last is not None:
        reason = last.message
    elif skipped:  # a resume of an objective whose every strategy already failed
        reason = (
            f"every strategy that can carry this out failed before in this objective "
            f"({', '.join(skipped)}): `council audit --objective` says why; change the request "
            "and start a new objective"
        )
    else:
        reason = "no strategy can carry this out here"
    raise ObjectiveFailed(reason, attempts, last)


def _plan(strategy: Strategy, intent: CloudIntent) -> dict[str, Any]:
    plan = strategy.plan(intent)
    return {**plan.as_dict(), "detail": f"{len(plan.actions)} actions"}


def _validate(strategy: Strategy, intent: CloudIntent, plan: Plan, hooks: Hooks) -> dict[str, Any]:
    problems = strategy.validate(intent, plan)
    hooks.validated(strategy.name, plan.checks, problems)
    if problems:
        raise CloudFailure("validation failed: " + "; ".join(problems), category="invalid")
    return {"checks": plan.checks, "detail": f"{len(plan.checks)} checks passed"}
