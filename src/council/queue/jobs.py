"""The queue of submitted runs, kept in the store's `jobs` table: the database is the truth.

A worker (a thread of the embedded pool, or a Celery task) claims a job in one write
transaction, so two workers never hold the same run; it renews the job's lease while the run
goes on. A lease that runs out means its worker died: the job goes back in line and the next
worker resumes the run from its last finished step. One repository's runs go one at a time: a
job is not claimed while another job of the same repository is running.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from council.errors import UsageError
from council.store import Store, schema

JOB_STATUSES = ("queued", "running", "done", "cancelled")
# Run statuses from which `resume` puts a run back in the queue.
RESUMABLE = ("failed", "error", "stopped", "interrupted", "cancelled")
MAX_ATTEMPTS = 5  # a run whose worker died this often is given up, not retried forever


@dataclass
class Job:
    run_id: str
    kind: str
    repo_key: str
    options: dict[str, Any]
    status: str
    attempts: int
    worker: str | None
    lease_until: float | None
    cancel_requested: bool
    key_id: str | None
    submitted_at: float
    started_at: float | None
    finished_at: float | None


def _job(row: Any) -> Job:
    return Job(
        run_id=row.run_id,
        kind=row.kind,
        repo_key=row.repo_key,
        options=json.loads(row.options),
        status=row.status,
        attempts=row.attempts,
        worker=row.worker,
        lease_until=row.lease_until,
        cancel_requested=bool(row.cancel_requested),
        key_id=row.key_id,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class JobQueue:
    """Submit, claim, renew, finish and cancel jobs in one store (any number of processes)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def enqueue(
        self,
        run_id: str,
        *,
        kind: str,
        repo_key: str,
        options: dict[str, Any],
        key_id: str | None = None,
    ) -> None:
        """Put a freshly created run in line: its status becomes "queued"."""
        with self.store.write_transaction() as conn:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == run_id)
                .values(status="queued", pid=None, host=None)
            )
            conn.execute(
                schema.jobs.insert().values(
                    run_id=run_id,
                    kind=kind,
                    repo_key=repo_key,
                    options=json.dumps(options, sort_keys=True),
                    status="queued",
                    attempts=0,
                    cancel_requested=False,
                    key_id=key_id,
                    submitted_at=time.time(),
                )
            )

    def get(self, run_id: str) -> Job | None:
        with self.store.read_connection() as conn:
            row = conn.execute(select(schema.jobs).where(schema.jobs.c.run_id == run_id)).first()
        return _job(row) if row is not None else None

    def claim(self, worker: str, lease_s: float, run_id: str | None = None) -> Job | None:
        """Take the oldest claimable job (or exactly `run_id`) for `worker`, or None.

        Claimable: queued, not cancelled, no other job of its repository running and (for a
        named run) none of its repository queued before it.
        """
        jobs = schema.jobs
        now = time.time()
        busy = select(jobs.c.repo_key).where(jobs.c.status == "running")
        query = (
            select(jobs)
            .where(
                (jobs.c.status == "queued")
                & jobs.c.cancel_requested.is_(False)
                & jobs.c.repo_key.not_in(busy)
            )
            .order_by(jobs.c.submitted_at, jobs.c.run_id)
            .limit(1)
        )
        if run_id is not None:
            # A Celery task names its run; it waits while an older run of its repository is
            # still in line, so one repository's runs go in the order they were submitted.
            older = jobs.alias("older")
            ahead = select(older.c.run_id).where(
                (older.c.repo_key == jobs.c.repo_key)
                & (older.c.status == "queued")
                & older.c.cancel_requested.is_(False)
                & (
                    (older.c.submitted_at < jobs.c.submitted_at)
                    | (
                        (older.c.submitted_at == jobs.c.submitted_at)
                        & (older.c.run_id < jobs.c.run_id)
                    )
                )
            )
            query = query.where((jobs.c.run_id == run_id) & ~ahead.exists())
        with self.store.write_transaction() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            conn.execute(
                jobs.update()
                .where(jobs.c.run_id == row.run_id)
                .values(
                    status="running",
                    worker=worker,
                    lease_until=now + lease_s,
                    attempts=jobs.c.attempts + 1,
                    started_at=row.started_at or now,
                )
            )
            conn.execute(
                schema.runs.update().where(schema.runs.c.id == row.run_id).values(status="running")
            )
            claimed = conn.execute(select(jobs).where(jobs.c.run_id == row.run_id)).one()
        return _job(claimed)

    def renew(self, run_id: str, worker: str, lease_s: float) -> bool | None:
        """Extend `worker`'s lease; whether a cancel was requested, or None if the job is no
        longer this worker's (its lease ran out and another worker took it)."""
        jobs = schema.jobs
        mine = (jobs.c.run_id == run_id) & (jobs.c.worker == worker) & (jobs.c.status == "running")
        with self.store.write_transaction() as conn:
            done = conn.execute(jobs.update().where(mine).values(lease_until=time.time() + lease_s))
            if done.rowcount == 0:
                return None
            return bool(conn.execute(select(jobs.c.cancel_requested).where(mine)).scalar_one())

    def finish(self, run_id: str, worker: str, status: str) -> None:
        """The worker is done with the job: "done", "cancelled", or "queued" (run it again)."""
        if status not in JOB_STATUSES:
            raise ValueError(f"invalid job status {status!r}")
        jobs = schema.jobs
        values: dict[str, Any] = {"status": status, "lease_until": None}
        if status == "queued":
            values["worker"] = None
        else:
            values["finished_at"] = time.time()
        with self.store.write_transaction() as conn:
            conn.execute(
                jobs.update()
                .where((jobs.c.run_id == run_id) & (jobs.c.worker == worker))
                .values(**values)
            )
            if status == "queued":
                conn.execute(
                    schema.runs.update()
                    .where(schema.runs.c.id == run_id)
                    .values(status="queued", pid=None, host=None)
                )

    def requeue_expired(self, now: float | None = None) -> list[str]:
        """Jobs whose worker stopped renewing its lease (it died) go back in line; a job that
        has used up MAX_ATTEMPTS ends as an error instead. Returns the re-queued run ids."""
        jobs = schema.jobs
        now = time.time() if now is None else now
        expired = (jobs.c.status == "running") & (jobs.c.lease_until < now)
        requeued: list[str] = []
        with self.store.write_transaction() as conn:
            rows = conn.execute(
                select(jobs.c.run_id, jobs.c.attempts, jobs.c.cancel_requested).where(expired)
            ).all()
            for row in rows:
                if row.cancel_requested:
                    # Its worker died while cancelling it: the cancel is done.
                    self._end(
                        conn, row.run_id, now, "cancelled", "cancelled", "cancelled on request"
                    )
                elif row.attempts >= MAX_ATTEMPTS:
                    reason = f"its worker died {row.attempts} times; given up"
                    self._end(conn, row.run_id, now, "done", "error", reason)
                else:
                    conn.execute(
                        jobs.update()
                        .where(jobs.c.run_id == row.run_id)
                        .values(status="queued", worker=None, lease_until=None)
                    )
                    conn.execute(
                        schema.runs.update()
                        .where(schema.runs.c.id == row.run_id)
                        .values(status="queued", pid=None, host=None)
                    )
                    requeued.append(row.run_id)
        return requeued

    @staticmethod
    def _end(conn, run_id: str, now: float, job_status: str, run_status: str, reason: str) -> None:
        conn.execute(
            schema.jobs.update()
            .where(schema.jobs.c.run_id == run_id)
            .values(status=job_status, finished_at=now, lease_until=None)
        )
        conn.execute(
            schema.runs.update()
            .where(schema.runs.c.id == run_id)
            .values(status=run_status, reason=reason)
        )

    def request_cancel(self, run_id: str) -> str:
        """Cancel a job: a queued one at once ("cancelled"), a running one by its worker
        ("cancelling"); a finished one is left as it is ("finished")."""
        jobs = schema.jobs
        with self.store.write_transaction() as conn:
            row = conn.execute(select(jobs).where(jobs.c.run_id == run_id)).first()
            if row is None:
                raise UsageError(f"run {run_id} was not submitted to the queue")
            if row.status == "queued":
                conn.execute(
                    jobs.update()
                    .where(jobs.c.run_id == run_id)
                    .values(status="cancelled", cancel_requested=True, finished_at=time.time())
                )
                return "cancelled"
            if row.status == "running":
                conn.execute(
                    jobs.update().where(jobs.c.run_id == run_id).values(cancel_requested=True)
                )
                return "cancelling"
            return "finished"

    def resubmit(self, run_id: str) -> None:
        """Put a finished, unsuccessful run back in line (`resume`)."""
        jobs = schema.jobs
        with self.store.write_transaction() as conn:
            row = conn.execute(select(jobs).where(jobs.c.run_id == run_id)).first()
            run = conn.execute(
                select(schema.runs.c.status).where(schema.runs.c.id == run_id)
            ).first()
            if row is None or run is None:
                raise UsageError(f"run {run_id} was not submitted to the queue")
            if row.status in ("queued", "running"):
                raise UsageError(f"run {run_id} is {row.status} already")
            if run.status not in RESUMABLE:
                raise UsageError(f"run {run_id} is {run.status}; only an unfinished run resumes")
            conn.execute(
                jobs.update()
                .where(jobs.c.run_id == run_id)
                .values(
                    status="queued",
                    cancel_requested=False,
                    worker=None,
                    lease_until=None,
                    attempts=0,
                    finished_at=None,
                    submitted_at=time.time(),
                )
            )
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == run_id)
                .values(status="queued", pid=None, host=None)
            )

    def depth(self) -> dict[str, int]:
        """How many jobs are queued and running."""
        jobs = schema.jobs
        with self.store.read_connection() as conn:
            rows = conn.execute(
                select(jobs.c.status, jobs.c.run_id).where(jobs.c.status.in_(["queued", "running"]))
            ).all()
        counts = {"queued": 0, "running": 0}
        for row in rows:
            counts[row.status] += 1
        return counts

    def key_of(self, run_id: str) -> str | None:
        job = self.get(run_id)
        return job.key_id if job else None
