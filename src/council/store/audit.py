"""The audit trail of `council doit` as a projection of its events, hash-chained.

The flow never writes the trail: it emits typed events (events.Cloud*), and the store, in the
transaction that files an event, appends the audit entries that event stands for
(`entries_for`). The only other writer is a budget limit change (`council budget set`, which
has no run), appended in the transaction that changes the limit.

Entries are chained: an entry's hash covers its position, time, objective, kind, payload and
the previous entry's hash, and an anchor row (updated in the same transaction) holds how many
entries exist and the last hash. Every append takes the write lock first (BEGIN IMMEDIATE), so
concurrent objectives interleave their entries but never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, insert, select, update

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
from council.redact import redact_tree
from council.store import schema

GENESIS = "0" * 64

AUDIT_KINDS = frozenset(
    {
        "intent",
        "question",
        "strategy",
        "plan",
        "cost",
        "budget",
        "approval",
        "command",
        "result",
        "rollback",
        "validation",
        "outcome",
    }
)

Entry = tuple[str, dict[str, Any]]


def entry_hash(
    prev_hash: str, seq: int, ts: float, objective: str | None, kind: str, payload: str
) -> str:
    """The chain link: sha256 over the previous hash and this entry's canonical fields."""
    body = json.dumps(
        [prev_hash, seq, repr(ts), objective, kind, payload], ensure_ascii=False, sort_keys=True
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def entries_for(event: BaseEvent) -> list[Entry]:
    """The audit entries one of doit's events stands for (none for any other event)."""
    if isinstance(event, CloudIntentRead):
        intent = {
            "operation": event.operation,
            "summary": event.summary,
            "resources": event.resources,
            "region": event.region,
            "resource_group": event.resource_group,
            "confidence": event.confidence,
        }
        out: list[Entry] = [("intent", {"request": event.request, "intent": intent})]
        if event.questions:
            out.append(("question", {"questions": event.questions}))
        return out
    if isinstance(event, CloudStrategyChosen):
        return [("strategy", {"chosen": event.chosen, "considered": event.considered})]
    if isinstance(event, CloudPlanMade):
        fields = ("strategy", "calls", "notes", "checks")
        return [("plan", {k: getattr(event, k) for k in fields})]
    if isinstance(event, CloudCostEstimated):
        return [("cost", _fields(event))]
    if isinstance(event, CloudBudgetChecked):
        return [("budget", {"decision": event.decision, "reasons": event.reasons})]
    if isinstance(event, CloudBudgetHeld):
        return [("budget", {event.action: event.monthly_usd, "reason": event.reason})]
    if isinstance(event, CloudApproval):
        return [("approval", _fields(event))]
    if isinstance(event, CloudActionDone):
        payload = {
            "strategy": event.strategy,
            "action": event.action,
            "how": event.how,
            "call": event.call,
            "status": event.status,
            "error": event.detail if event.status == "failed" else "",
            "category": event.category,
            "output": event.output,
        }
        return [("command" if event.how == "run" else "rollback", payload)]
    if isinstance(event, CloudValidated):
        return [("validation", _fields(event))]
    if isinstance(event, CloudObjectiveFinished):
        results: list[Entry] = [
            ("result", dict(a)) for a in event.attempts if a.get("status") in ("ok", "failed")
        ]
        outcome = {"status": event.status, "strategy": event.strategy, "reason": event.reason}
        if event.analysis:
            outcome["analysis"] = event.analysis
        return [*results, ("outcome", outcome)]
    return []


def _fields(event: BaseEvent) -> dict[str, Any]:
    common = {"kind", "ts", "run_id", "step"}
    return {k: v for k, v in event.model_dump(mode="json").items() if k not in common}


def append_entry(
    conn: Connection, kind: str, payload: dict[str, Any], *, objective: str | None, ts: float
) -> int:
    """Chain one entry (payload redacted first) inside the caller's write transaction."""
    if kind not in AUDIT_KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    text = json.dumps(redact_tree(payload), ensure_ascii=False, sort_keys=True, default=str)
    anchor = conn.execute(select(schema.audit_anchor).where(schema.audit_anchor.c.id == 1)).first()
    count, prev = (anchor.count, anchor.head_hash) if anchor else (0, GENESIS)
    seq = count + 1
    digest = entry_hash(prev, seq, ts, objective, kind, text)
    conn.execute(
        insert(schema.audit).values(
            seq=seq, ts=ts, objective=objective, kind=kind, payload=text, prev_hash=prev,
            hash=digest,
        )
    )  # fmt: skip
    if anchor is None:
        conn.execute(insert(schema.audit_anchor).values(id=1, count=1, head_hash=digest))
    else:
        conn.execute(
            update(schema.audit_anchor)
            .where(schema.audit_anchor.c.id == 1)
            .values(count=seq, head_hash=digest)
        )
    return seq
