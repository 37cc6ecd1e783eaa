"""Budget checks before execution: limits per month, day, objective and resource group, with
thresholds at 50/80/100 %: above 100 % is refused, from 80 % (or when the cost is unknown) the
user must confirm, from 50 % a notice says so.

Spend is the estimated monthly cost that objectives committed, and the reservations of the
objectives under way: `reserve_budget` judges and reserves in one transaction before anything
is created (store.ledger), so objectives running at once cannot together pass a limit. The
monthly limit caps what runs this month, the daily limit what was added today.

A reservation is held for HOLD_S (COUNCIL_BUDGET_HOLD_S; 6 hours): an objective killed and not
resumed in that time stops counting, so a crash never blocks the budget for good; a resume
renews the reservation, or reserves again against the limits as they are then.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from council.store.ledger import BudgetBook, BudgetView

NOTICE_PCT, CONFIRM_PCT, REFUSE_PCT = 50.0, 80.0, 100.0
FIXED_SCOPES = ("monthly", "daily", "objective")
_RG = re.compile(r"^rg:[\w\-.()]{1,90}$")

Decision = Literal["ok", "confirm", "refuse"]
HOLD_S = 6 * 3600.0
Book = BudgetBook | BudgetView


def hold_s() -> float:
    """How long a reservation holds without its objective finishing or resuming."""
    raw = os.environ.get("COUNCIL_BUDGET_HOLD_S", "")
    try:
        value = float(raw) if raw else HOLD_S
    except ValueError:
        return HOLD_S
    return value if value > 0 else HOLD_S


def usd(value: float) -> str:
    """Dollars with cents, or with three significant digits below a cent (a blob's month)."""
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.3g}"


def valid_scope(scope: str) -> bool:
    return scope in FIXED_SCOPES or bool(_RG.match(scope))


@dataclass
class LimitUse:
    scope: str
    limit_usd: float
    used_usd: float  # already committed in this scope
    after_usd: float | None  # with this objective's estimate; None when the cost is unknown

    @property
    def percent(self) -> float | None:
        if self.after_usd is None:
            return None
        return 100.0 * self.after_usd / self.limit_usd if self.limit_usd > 0 else float("inf")


@dataclass
class BudgetVerdict:
    decision: Decision
    reasons: list[str] = field(default_factory=list)
    uses: list[LimitUse] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.decision}: " + ("; ".join(self.reasons) or "within every limit")


def month_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, tz=UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def day_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, tz=UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def limit_uses(
    book: Book,
    estimate_usd: float | None,
    resource_group: str | None = None,
    now: float | None = None,
) -> list[LimitUse]:
    """Every limit that applies to an objective of `estimate_usd` a month in `resource_group`."""
    now = time.time() if now is None else now
    limits = book.limits()
    uses: list[LimitUse] = []
    for scope, limit in sorted(limits.items()):
        if scope == "monthly":
            used = book.spent(since=month_start(now))
        elif scope == "daily":
            used = book.spent(since=day_start(now))
        elif scope == "objective":
            used = 0.0
        elif scope == f"rg:{resource_group}":
            used = book.spent(resource_group=resource_group)
        else:
            continue
        after = None if estimate_usd is None else used + estimate_usd
        uses.append(LimitUse(scope, limit, used, after))
    return uses


def check_budget(
    book: Book,
    estimate_usd: float | None,
    resource_group: str | None = None,
    now: float | None = None,
) -> BudgetVerdict:
    """Refuse, ask for confirmation, or allow an objective of `estimate_usd` USD a month."""
    uses = limit_uses(book, estimate_usd, resource_group, now)
    verdict = BudgetVerdict("ok", uses=uses)
    if estimate_usd is None:
        verdict.decision = "confirm"
        verdict.reasons.append("cost unknown: no price could be had, so confirm before it runs")
        return verdict
    for use in uses:
        pct = use.percent or 0.0
        label = f"{use.scope} limit {usd(use.limit_usd)}"
        figure = f"{usd(use.after_usd or 0.0)} ({pct:.0f}%)"
        if pct > REFUSE_PCT:
            verdict.decision = "refuse"
            verdict.reasons.append(f"over the {label}: {figure}")
        elif pct >= CONFIRM_PCT:
            if verdict.decision == "ok":
                verdict.decision = "confirm"
            verdict.reasons.append(f"{figure} of the {label}: confirm to go on")
        elif pct >= NOTICE_PCT:
            verdict.reasons.append(f"{figure} of the {label}")
    return verdict


def reserve_budget(
    book: BudgetBook,
    objective: str,
    estimate_usd: float | None,
    description: str,
    resource_group: str | None = None,
) -> BudgetVerdict:
    """Check the limits and reserve `estimate_usd` in one transaction. A refused objective
    reserves nothing; an unknown cost reserves nothing either (there is no figure to hold),
    and needs confirmation."""

    def judge(view: BudgetView) -> tuple[BudgetVerdict, float | None]:
        verdict = check_budget(view, estimate_usd, resource_group)
        keep = verdict.decision != "refuse" and estimate_usd is not None
        return verdict, (estimate_usd if keep else None)

    return book.reserve(objective, judge, description, resource_group, hold_s=hold_s())
