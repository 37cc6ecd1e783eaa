"""What the API and the dashboard read: submitted runs with their job, and events by sequence."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from council.store import Store, schema

TERMINAL = ("green", "failed", "error", "stopped", "interrupted", "cancelled")


@dataclass
class RunRow:
    id: str
    kind: str
    status: str
    reason: str
    feature: str
    repo: str  # as submitted (a path or a URL): what API keys name
    branch: str | None
    created_at: float
    cost_usd: float
    job_status: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    key_id: str | None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return max(0.0, end - self.started_at)


def _row(row: Any) -> RunRow:
    return RunRow(
        id=row.id,
        kind=row.kind,
        status=row.status,
        reason=row.reason,
        feature=row.feature,
        repo=row.repo_key,
        branch=row.branch,
        created_at=row.created_at,
        cost_usd=row.total_cost_usd,
        job_status=row.job_status,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        key_id=row.key_id,
    )


def _query():
    runs, jobs = schema.runs, schema.jobs
    return select(
        runs.c.id,
        runs.c.kind,
        runs.c.status,
        runs.c.reason,
        runs.c.feature,
        runs.c.branch,
        runs.c.created_at,
        runs.c.total_cost_usd,
        jobs.c.repo_key,
        jobs.c.status.label("job_status"),
        jobs.c.attempts,
        jobs.c.started_at,
        jobs.c.finished_at,
        jobs.c.key_id,
    ).join(jobs, jobs.c.run_id == runs.c.id)


Visible = Callable[[str], bool]  # repo key -> may the caller see it


def list_runs(
    store: Store, visible: Visible, *, limit: int = 50, status: str | None = None
) -> list[RunRow]:
    runs = schema.runs
    query = _query().order_by(runs.c.created_at.desc(), runs.c.id.desc())
    if status:
        query = query.where(runs.c.status == status)
    found: list[RunRow] = []
    with store.read_connection() as conn:
        # Filtered here, not in SQL: key scopes may be glob patterns.
        for row in conn.execute(query):
            if visible(row.repo_key):
                found.append(_row(row))
                if len(found) >= limit:
                    break
    return found


def get_run(store: Store, run_id: str, visible: Visible) -> RunRow | None:
    with store.read_connection() as conn:
        row = conn.execute(_query().where(schema.runs.c.id == run_id)).first()
    if row is None or not visible(row.repo_key):
        return None
    return _row(row)


def events_after(
    store: Store, run_id: str, after: int, limit: int = 500
) -> list[tuple[int, str, dict[str, Any]]]:
    """The run's stored events with a sequence number above `after`: (seq, kind, payload)."""
    ev = schema.events
    query = (
        select(ev.c.seq, ev.c.kind, ev.c.payload)
        .where((ev.c.run_id == run_id) & (ev.c.seq > after))
        .order_by(ev.c.seq)
        .limit(limit)
    )
    with store.read_connection() as conn:
        return [(seq, kind, json.loads(payload)) for seq, kind, payload in conn.execute(query)]


def event_count(store: Store, run_id: str) -> int:
    """How many events the run has stored (counted by the database, none of them read)."""
    ev = schema.events
    with store.read_connection() as conn:
        return conn.execute(select(func.count()).where(ev.c.run_id == run_id)).scalar_one()


def job_status(store: Store, run_id: str) -> tuple[str | None, str | None]:
    """(the job's status, the run's status) of a submitted run."""
    runs, jobs = schema.runs, schema.jobs
    query = select(jobs.c.status, runs.c.status).join(runs, runs.c.id == jobs.c.run_id)
    with store.read_connection() as conn:
        row = conn.execute(query.where(jobs.c.run_id == run_id)).first()
    return (row[0], row[1]) if row is not None else (None, None)
