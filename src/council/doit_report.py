"""How `council doit`'s events read: one line each for the live output and `council show`,
and the dry-run / summary block the CLI prints. Rendered from the events only."""

from __future__ import annotations

from council.cloud.money import amount
from council.events import (
    BaseEvent,
    CloudActionDone,
    CloudApproval,
    CloudBudgetChecked,
    CloudBudgetHeld,
    CloudCostEstimated,
    CloudIntentRead,
    CloudObjectiveFinished,
    CloudPlanMade,
    CloudStrategyChosen,
    CloudValidated,
)


def money(value: float | None, currency: str = "USD") -> str:
    return "unknown" if value is None else f"{currency} {amount(value)}"


def describe(e: BaseEvent) -> str:
    """One line for a doit event; "" for others."""
    if isinstance(e, CloudIntentRead):
        kinds = ", ".join(f"{r.get('type')} {r.get('name') or ''}".strip() for r in e.resources)
        asked = f"; asks: {e.questions[0]}" if e.questions else ""
        return f"intent: {e.operation} {kinds} ({e.confidence:.0%} sure){asked}"
    if isinstance(e, CloudStrategyChosen):
        passed = "; ".join(
            f"{c['name']} {c['status']}" for c in e.considered if c["name"] != e.chosen
        )
        return f"strategy: {e.chosen or 'none'}" + (f" (others: {passed})" if passed else "")
    if isinstance(e, CloudPlanMade):
        return f"plan ({e.strategy}): {len(e.calls)} calls"
    if isinstance(e, CloudCostEstimated):
        if e.monthly is None:
            return f"cost unknown: {e.unknown_reason}"
        return (
            f"cost: {money(e.monthly, e.currency)}/month, {money(e.hourly, e.currency)}/hour"
            f" ({e.source})"
        )
    if isinstance(e, CloudBudgetChecked):
        said = {True: ", approved", False: ", declined", None: ""}[e.approved]
        return f"budget: {e.decision}{said}" + (f": {'; '.join(e.reasons)}" if e.reasons else "")
    if isinstance(e, CloudBudgetHeld):
        figure = "" if e.monthly_usd is None else f" {money(e.monthly_usd)}/month"
        return f"budget {e.action}{figure}" + (f": {e.reason}" if e.reason else "")
    if isinstance(e, CloudApproval):
        said = e.answer or {True: "approved", False: "not approved", None: ""}[e.approved]
        return f"{e.subject}: {e.question} -> {said}" + (f" (by {e.by})" if e.by else "")
    if isinstance(e, CloudValidated):
        if e.problems:
            return f"validation ({e.strategy}) failed: {'; '.join(e.problems)}"
        return f"validated ({e.strategy}): {len(e.checks)} checks passed"
    if isinstance(e, CloudActionDone):
        made = " (created)" if e.created else ""
        return f"{e.status}: {e.call or e.action}{made}" + (f": {e.detail}" if e.detail else "")
    if isinstance(e, CloudObjectiveFinished):
        line = f"objective {e.status}" + (f" with {e.strategy}" if e.strategy else "")
        cause = e.analysis.get("cause") or e.analysis.get("advice")
        return line + (f": {cause}" if cause else "")
    return ""


def plan_lines(events: list[BaseEvent]) -> list[str]:
    """What a dry run shows: intent, strategy, the exact calls, the cost and its assumptions."""
    lines: list[str] = []
    for e in events:
        if isinstance(e, CloudIntentRead):
            lines.append(f"intent:   {e.summary} [{e.operation}, {e.confidence:.0%} sure]")
            for r in e.resources:
                params = ", ".join(
                    f"{k}={v}" for k, v in sorted((r.get("parameters") or {}).items())
                )
                lines.append(f"          - {r.get('type')} {r.get('name') or ''} {params}".rstrip())
        elif isinstance(e, CloudStrategyChosen):
            lines.append(f"strategy: {e.chosen or 'none available'}")
            for c in e.considered:
                if c["name"] != e.chosen:
                    why = f", {c['reason']}" if c["reason"] else ""
                    lines.append(f"          ({c['name']}: {c['status']}{why})")
        elif isinstance(e, CloudPlanMade):
            lines.append(f"calls ({e.strategy}):")
            lines += [f"  {n}. {call}" for n, call in enumerate(e.calls, start=1)]
            lines += [f"  note: {note}" for note in e.notes]
        elif isinstance(e, CloudCostEstimated):
            if e.monthly is None:
                lines.append(f"cost:     unknown: {e.unknown_reason}")
            else:
                lines.append(
                    f"cost:     {money(e.monthly, e.currency)}/month, "
                    f"{money(e.hourly, e.currency)}/hour; prices: {e.source}"
                )
                for line in e.lines:
                    lines.append(
                        f"          {line['resource']}: {line['meter']} {line['quantity']:.6g} "
                        f"{line['unit']} x {line['unit_price']:.6g} = {amount(line['monthly'])}"
                    )
            lines += [f"          assumes: {a}" for a in e.assumptions]
        elif isinstance(e, CloudBudgetChecked):
            lines.append(
                f"budget:   {e.decision}" + (f": {'; '.join(e.reasons)}" if e.reasons else "")
            )
    return lines
