"""Scale-out: Celery workers over a Redis broker execute queued runs (`council worker`).

The store's `jobs` table stays the truth; a Celery message only says "look at run R". A task
claims its job atomically (a duplicate message finds it taken and does nothing), runs it like
the embedded pool does (queue/supervise.py), and each worker re-queues and re-sends the jobs
whose worker died (their lease ran out), so a run killed with its worker resumes on another.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.signals import worker_shutting_down

from council.queue.jobs import JobQueue
from council.queue.supervise import WorkerSettings, run_job, start_spare, worker_name
from council.store import Store

TASK = "council.execute_job"
BUSY_RETRY_S = 1.0

_worker: dict[str, Any] = {}  # this worker process's store and settings (`configure`)
_spares = threading.local()  # per pool thread: a warm child for its next task


def make_celery(broker_url: str) -> Celery:
    app = Celery("council", broker=broker_url)
    app.conf.update(
        task_acks_late=True,  # a message is done when its run is, not when it is received
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK, bind=True, max_retries=None)(_execute_job)
    return app


def configure(store: Store, settings: WorkerSettings) -> None:
    """What this worker process's tasks use (set by `council worker` before it starts)."""
    _worker["store"] = store
    _worker["settings"] = settings


def _execute_job(task: Any, run_id: str) -> str:
    queue = JobQueue(_worker["store"])
    settings: WorkerSettings = _worker["settings"]
    name = worker_name(threading.current_thread().name)
    if settings.warm:
        spare = getattr(_spares, "child", None)
        if spare is None or spare.poll() is not None:
            _spares.child = start_spare(settings)  # warms up while the claim is made
    job = queue.claim(name, settings.lease_s, run_id=run_id)
    if job is None:
        current = queue.get(run_id)
        if current is not None and current.status == "queued" and not current.cancel_requested:
            # Its repository is busy with another run: look again shortly.
            raise task.retry(countdown=BUSY_RETRY_S)
        return "taken"  # done, cancelled, or held by another worker
    given, _spares.child = getattr(_spares, "child", None), None
    status = run_job(queue, job, name, settings, spare=given)
    if settings.warm and not settings.stopping.is_set():
        _spares.child = start_spare(settings)  # ready for this thread's next task
    if status == "queued":
        # Back in line (this worker is stopping, the run's process was killed, or a run
        # started outside the server holds the repository): this message is done with, so
        # send another or no worker would ever look at the run again.
        raise task.retry(countdown=BUSY_RETRY_S)
    return status


def start_reaper(app: Celery, store: Store, settings: WorkerSettings) -> threading.Thread:
    """Re-queue jobs whose worker died and send their task again; at start, send the queued
    jobs too (submitted while no worker or broker was up)."""
    queue = JobQueue(store)

    def reap() -> None:
        for run_id in queued_ids(store):
            app.send_task(TASK, args=[run_id])
        every = max(0.5, settings.lease_s / 2)
        while not settings.stopping.wait(every):
            try:
                for run_id in queue.requeue_expired():
                    app.send_task(TASK, args=[run_id])
            except Exception as exc:  # noqa: BLE001 - a broker or database hiccup: next round
                print(f"council worker: reaper: {type(exc).__name__}: {exc}", flush=True)

    thread = threading.Thread(target=reap, name="council-reaper", daemon=True)
    thread.start()
    return thread


def queued_ids(store: Store) -> list[str]:
    from sqlalchemy import select

    from council.store import schema

    jobs = schema.jobs
    with store.read_connection() as conn:
        rows = conn.execute(
            select(jobs.c.run_id).where(jobs.c.status == "queued").order_by(jobs.c.submitted_at)
        ).all()
    return [row.run_id for row in rows]


@worker_shutting_down.connect
def _on_shutdown(**_kwargs: Any) -> None:
    # Running children are interrupted and their jobs re-queued, not waited for for minutes.
    settings = _worker.get("settings")
    if settings is not None:
        settings.stopping.set()
