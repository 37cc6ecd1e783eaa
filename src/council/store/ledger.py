"""The cloud ledger of `council doit`: a hash-chained, append-only audit trail, budget limits
and the estimated monthly spend each objective committed.

Audit entries are chained: an entry's hash covers its position, time, objective, kind, payload
and the previous entry's hash, and an anchor row (written in the same transaction) holds how
many entries exist and the last hash. `verify` recomputes the chain, so an edited, removed,
inserted or reordered entry, or a cut-off tail, is reported. (Whoever can rewrite the database
can rebuild a whole consistent chain; the chain proves the log was not altered piecemeal, and
an exported head hash proves more.)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from council.store import schema
from council.store.store import Store, _redact_tree

GENESIS = "0" * 64

AUDIT_KINDS = frozenset(
    {
        "intent",
        "question",
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


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: float
    objective: str | None
    kind: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class SpendRecord:
    objective: str
    ts: float
    resource_group: str | None
    monthly_usd: float
    description: str


def entry_hash(
    prev_hash: str, seq: int, ts: float, objective: str | None, kind: str, payload: str
) -> str:
    """The chain link: sha256 over the previous hash and this entry's canonical fields."""
    body = json.dumps(
        [prev_hash, seq, repr(ts), objective, kind, payload], ensure_ascii=False, sort_keys=True
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class AuditTrail:
    """Append-only: there is no update or delete here; `verify` proves nobody else did one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def append(self, kind: str, payload: dict[str, Any], *, objective: str | None = None) -> int:
        """Add one entry (payload redacted first) and return its sequence number."""
        if kind not in AUDIT_KINDS:
            raise ValueError(f"unknown audit kind {kind!r}")
        text = json.dumps(_redact_tree(payload), ensure_ascii=False, sort_keys=True, default=str)
        with self._store._write() as conn:
            anchor = conn.execute(
                select(schema.audit_anchor).where(schema.audit_anchor.c.id == 1)
            ).first()
            count, prev = (anchor.count, anchor.head_hash) if anchor else (0, GENESIS)
            seq, ts = count + 1, time.time()
            digest = entry_hash(prev, seq, ts, objective, kind, text)
            conn.execute(
                insert(schema.audit).values(
                    seq=seq,
                    ts=ts,
                    objective=objective,
                    kind=kind,
                    payload=text,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            if anchor is None:
                conn.execute(insert(schema.audit_anchor).values(id=1, count=1, head_hash=digest))
            else:
                conn.execute(
                    update(schema.audit_anchor)
                    .where(schema.audit_anchor.c.id == 1)
                    .values(count=seq, head_hash=digest)
                )
        return seq

    def entries(self, objective: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        query = select(schema.audit).order_by(schema.audit.c.seq)
        if objective is not None:
            query = query.where(schema.audit.c.objective == objective)
        with self._store._read() as conn:
            rows = conn.execute(query).all()
        if limit is not None:
            rows = rows[-limit:]
        return [_entry(row) for row in rows]

    def verify(self) -> list[str]:
        """Problems found walking the chain in storage order; an empty list: intact."""
        with self._store._read() as conn:
            rows = conn.execute(select(schema.audit).order_by(schema.audit.c.seq)).all()
            anchor = conn.execute(select(schema.audit_anchor)).first()
        problems: list[str] = []
        prev = GENESIS
        for index, row in enumerate(rows, start=1):
            if row.seq != index:
                problems.append(
                    f"entry {row.seq} stands where entry {index} should: an entry before it "
                    "was removed or the entries were renumbered"
                )
            if row.prev_hash != prev:
                problems.append(
                    f"entry {row.seq} does not follow the entry before it (removed, inserted "
                    "or reordered entries)"
                )
            try:
                expected = entry_hash(
                    row.prev_hash, row.seq, row.ts, row.objective, row.kind, row.payload
                )
            except (TypeError, ValueError):  # a value of a type append never writes (a blob)
                expected = None
            if row.hash != expected:
                problems.append(f"entry {row.seq} ({row.kind}) was altered after it was written")
            prev = row.hash
        written = anchor.count if anchor else 0
        if written != len(rows):
            problems.append(f"{written} entries were written but {len(rows)} are there")
        elif anchor is not None and anchor.head_hash != prev:
            problems.append("the last entry is not the one that was written last")
        return problems


def _entry(row: Any) -> AuditEntry:
    # A row altered in storage may hold anything (text where JSON or a time was): it is still
    # listed, as found, and `verify` names it; reading it must not crash the listing.
    try:
        payload = json.loads(row.payload)
    except (TypeError, ValueError):
        payload = {"unreadable": _text(row.payload)}
    return AuditEntry(
        seq=row.seq,
        ts=row.ts if isinstance(row.ts, int | float) else 0.0,
        objective=None if row.objective is None else _text(row.objective),
        kind=_text(row.kind),
        payload=payload,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


class BudgetBook:
    """Budget limits by scope and the estimated monthly spend objectives committed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def limits(self) -> dict[str, float]:
        with self._store._read() as conn:
            rows = conn.execute(select(schema.budget_limits)).all()
        return {row.scope: row.limit_usd for row in rows}

    def set_limit(self, scope: str, limit_usd: float | None) -> None:
        """Set (or with None, remove) the limit of one scope."""
        with self._store._write() as conn:
            conn.execute(delete(schema.budget_limits).where(schema.budget_limits.c.scope == scope))
            if limit_usd is not None:
                conn.execute(
                    insert(schema.budget_limits).values(
                        scope=scope, limit_usd=float(limit_usd), updated_at=time.time()
                    )
                )

    def record_spend(
        self,
        objective: str,
        monthly_usd: float,
        description: str,
        resource_group: str | None = None,
    ) -> None:
        with self._store._write() as conn:
            conn.execute(
                insert(schema.cloud_spend).values(
                    objective=objective,
                    ts=time.time(),
                    resource_group=resource_group,
                    monthly_usd=float(monthly_usd),
                    description=description,
                )
            )

    def spent(
        self,
        *,
        since: float | None = None,
        resource_group: str | None = None,
        objective: str | None = None,
    ) -> float:
        query = select(func.coalesce(func.sum(schema.cloud_spend.c.monthly_usd), 0.0))
        if since is not None:
            query = query.where(schema.cloud_spend.c.ts >= since)
        if resource_group is not None:
            query = query.where(schema.cloud_spend.c.resource_group == resource_group)
        if objective is not None:
            query = query.where(schema.cloud_spend.c.objective == objective)
        with self._store._read() as conn:
            return float(conn.execute(query).scalar() or 0.0)

    def spend_records(self, limit: int = 20) -> list[SpendRecord]:
        query = select(schema.cloud_spend).order_by(schema.cloud_spend.c.id.desc()).limit(limit)
        with self._store._read() as conn:
            rows = conn.execute(query).all()
        return [
            SpendRecord(r.objective, r.ts, r.resource_group, r.monthly_usd, r.description)
            for r in rows
        ]
