"""The cloud ledger of `council doit`: reading and verifying the hash-chained audit trail (the
store writes it, as a projection of doit's events: store.audit), budget limits, and the
budget reservations and spend of objectives.

`verify` recomputes the chain, so an edited, removed, inserted or reordered entry, or a cut-off
tail, is reported. (Whoever can rewrite the database can rebuild a whole consistent chain; the
chain proves the log was not altered piecemeal, and an exported head hash proves more.)

Spend is reserved before it is made: `reserve` judges an objective's estimate against the
limits and records the reservation in one write transaction (BEGIN IMMEDIATE on SQLite: no
other process can reserve between the check and the write), so two objectives running at once
cannot together pass a limit. A reservation is settled to the objective's cost when it is done,
released when it fails or is declined, and expires (counts no more) when its objective was
killed and nobody resumed it in time; a resume renews it, or reserves again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from council.store import schema
from council.store.audit import GENESIS, append_entry, entry_hash
from council.store.store import Store

T = TypeVar("T")
RESERVED, SETTLED, RELEASED = "reserved", "settled", "released"


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
    state: str = SETTLED  # reserved | settled | released
    expires_at: float | None = None


class AuditTrail:
    """Read-only: the store appends (store.audit); `verify` proves nobody changed a thing."""

    def __init__(self, store: Store) -> None:
        self._store = store

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


class BudgetView:
    """Limits and spend as one connection sees them (inside a reservation's transaction, a
    view no other writer can change until it commits)."""

    def __init__(self, conn: Connection, now: float, exclude: str | None = None) -> None:
        self._conn, self._now, self._exclude = conn, now, exclude

    def limits(self) -> dict[str, float]:
        rows = self._conn.execute(select(schema.budget_limits)).all()
        return {row.scope: row.limit_usd for row in rows}

    def spent(
        self,
        *,
        since: float | None = None,
        resource_group: str | None = None,
        objective: str | None = None,
        reserved: bool = True,
    ) -> float:
        """Settled spend, and (with `reserved`) the reservations still held, in USD a month."""
        spend = schema.cloud_spend
        held = (spend.c.state == RESERVED) & (spend.c.expires_at > self._now)
        query = select(func.coalesce(func.sum(spend.c.monthly_usd), 0.0)).where(
            or_(spend.c.state == SETTLED, held) if reserved else spend.c.state == SETTLED
        )
        if self._exclude is not None:  # an objective's own reservation is not against it
            query = query.where(spend.c.objective != self._exclude)
        if since is not None:
            query = query.where(spend.c.ts >= since)
        if resource_group is not None:
            query = query.where(spend.c.resource_group == resource_group)
        if objective is not None:
            query = query.where(spend.c.objective == objective)
        return float(self._conn.execute(query).scalar() or 0.0)

    def held(self, objective: str) -> SpendRecord | None:
        """The objective's live reservation, if it holds one."""
        spend = schema.cloud_spend
        row = self._conn.execute(
            select(spend).where(
                (spend.c.objective == objective)
                & (spend.c.state == RESERVED)
                & (spend.c.expires_at > self._now)
            )
        ).first()
        return None if row is None else _spend(row)


class BudgetBook:
    """Budget limits by scope, reservations, and the estimated monthly spend objectives made."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def limits(self) -> dict[str, float]:
        with self._store._read() as conn:
            return BudgetView(conn, time.time()).limits()

    def spent(self, **filters: Any) -> float:
        """See BudgetView.spent; `now` (default: the clock) decides which reservations hold."""
        now = filters.pop("now", None)
        with self._store._read() as conn:
            return BudgetView(conn, time.time() if now is None else now).spent(**filters)

    def set_limits(self, changes: dict[str, float | None]) -> None:
        """Set (or with None, remove) limits, and chain the change into the audit trail, in one
        transaction: a limit never changes without its entry."""
        now = time.time()
        with self._store._write() as conn:
            for scope, limit_usd in changes.items():
                table = schema.budget_limits
                conn.execute(delete(table).where(table.c.scope == scope))
                if limit_usd is not None:
                    conn.execute(
                        insert(table).values(
                            scope=scope, limit_usd=float(limit_usd), updated_at=now
                        )
                    )
            append_entry(conn, "budget", {"set": changes}, objective=None, ts=now)

    def reserve(
        self,
        objective: str,
        judge: Callable[[BudgetView], tuple[T, float | None]],
        description: str,
        resource_group: str | None = None,
        *,
        hold_s: float,
        now: float | None = None,
    ) -> T:
        """Judge the limits and reserve in one write transaction. `judge` sees the spend of
        every other objective (settled, and reservations still held) and returns its verdict
        and the amount to reserve (None: reserve nothing, e.g. refused). The objective's own
        earlier reservation is replaced."""
        now = time.time() if now is None else now
        spend = schema.cloud_spend
        with self._store._write() as conn:
            verdict, amount = judge(BudgetView(conn, now, exclude=objective))
            if amount is not None:
                mine = (spend.c.objective == objective) & (spend.c.state == RESERVED)
                conn.execute(update(spend).where(mine).values(state=RELEASED))
                conn.execute(
                    insert(spend).values(
                        objective=objective, ts=now, resource_group=resource_group,
                        monthly_usd=float(amount), description=description, state=RESERVED,
                        expires_at=now + hold_s,
                    )
                )  # fmt: skip
        return verdict

    def renew(self, objective: str, *, hold_s: float, now: float | None = None) -> bool:
        """Extend the objective's live reservation; False when it holds none (expired or
        released): it must reserve again."""
        now = time.time() if now is None else now
        spend = schema.cloud_spend
        live = (
            (spend.c.objective == objective)
            & (spend.c.state == RESERVED)
            & (spend.c.expires_at > now)
        )
        with self._store._write() as conn:
            done = conn.execute(update(spend).where(live).values(expires_at=now + hold_s))
        return bool(done.rowcount)

    def settle(
        self,
        objective: str,
        monthly_usd: float | None,
        description: str,
        resource_group: str | None = None,
    ) -> None:
        """The objective is done: its reservation becomes its spend (`monthly_usd`; None: the
        cost is unknown and nothing is counted). With no reservation left (it expired), the
        spend is recorded all the same: it was made."""
        spend = schema.cloud_spend
        mine = (spend.c.objective == objective) & (spend.c.state == RESERVED)
        with self._store._write() as conn:
            if monthly_usd is None:
                conn.execute(update(spend).where(mine).values(state=RELEASED))
                return
            done = conn.execute(
                update(spend)
                .where(mine)
                .values(state=SETTLED, monthly_usd=float(monthly_usd), expires_at=None)
            )
            if not done.rowcount:
                conn.execute(
                    insert(spend).values(
                        objective=objective, ts=time.time(), resource_group=resource_group,
                        monthly_usd=float(monthly_usd), description=description, state=SETTLED,
                    )
                )  # fmt: skip

    def release(self, objective: str) -> bool:
        """The objective failed or was declined: its reservation counts no more."""
        spend = schema.cloud_spend
        mine = (spend.c.objective == objective) & (spend.c.state == RESERVED)
        with self._store._write() as conn:
            return bool(conn.execute(update(spend).where(mine).values(state=RELEASED)).rowcount)

    def spend_records(self, limit: int = 20) -> list[SpendRecord]:
        """The latest settled spend and reservations (released ones are left out)."""
        spend = schema.cloud_spend
        query = (
            select(spend).where(spend.c.state != RELEASED).order_by(spend.c.id.desc()).limit(limit)
        )
        with self._store._read() as conn:
            return [_spend(r) for r in conn.execute(query).all()]


def _spend(r: Any) -> SpendRecord:
    return SpendRecord(
        r.objective, r.ts, r.resource_group, r.monthly_usd, r.description, r.state, r.expires_at
    )
