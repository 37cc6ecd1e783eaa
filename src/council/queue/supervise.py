"""Run a claimed job in a child process and look after it: lease, cancel, death, shutdown.

Used by both kinds of worker (a thread of the embedded pool, a Celery task). While the child
runs, the lease is renewed; a cancel request stops the child (SIGTERM: its test command in
flight is killed with it) and the run ends "cancelled"; a child that dies of a signal nobody
asked for puts the job back in line, and the next worker resumes the run from its last
finished step.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess  # nosec B404 - our own child process, fixed argv
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from council.events import RunFinished
from council.queue.child import EXIT_BUSY
from council.queue.jobs import Job, JobQueue

CANCEL_GRACE_S = 20.0  # after SIGTERM, how long a child may take to record its end
BUSY_RETRY_S = 2.0


@dataclass
class WorkerSettings:
    db_url: str
    log_dir: Path
    lease_s: float = 30.0
    # Set when the worker shuts down: its running children stop and their jobs are re-queued.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Keep a warm child per worker (imports done) so a run does not wait for them.
    warm: bool = True


def worker_name(slot: int | str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{slot}"


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)  # the child leads its own session
    except ProcessLookupError:
        pass


def _waited(child: subprocess.Popen, timeout: float) -> int | None:
    try:
        return child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def start_spare(settings: WorkerSettings) -> subprocess.Popen:
    """A child that imports what a run needs, then waits for a run id on its stdin."""
    return subprocess.Popen(  # nosec B603 - our own module, fixed argv
        [sys.executable, "-m", "council.queue.child", "--warm", settings.db_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a ^C of the server reaches it only through us
        text=True,
    )


def drop_spare(spare: subprocess.Popen | None) -> None:
    if spare is not None and spare.poll() is None:
        spare.stdin.close()  # EOF: it exits
        if _waited(spare, 5) is None:
            spare.kill()
            spare.wait()


def _start_child(
    job: Job, worker: str, settings: WorkerSettings, spare: subprocess.Popen | None
) -> subprocess.Popen:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"{job.run_id}.log"
    with open(log_path, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {worker}\n".encode())
        log.flush()
        if spare is not None and spare.poll() is None:
            try:
                spare.stdin.write(f"{job.run_id} {log_path}\n")
                spare.stdin.close()
                return spare
            except (BrokenPipeError, OSError):
                pass  # it died while waiting: start one the slow way
        return subprocess.Popen(  # nosec B603 - our own module, fixed argv
            [sys.executable, "-m", "council.queue.child", settings.db_url, job.run_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a ^C of the server reaches it only through us
        )


def run_job(
    queue: JobQueue,
    job: Job,
    worker: str,
    settings: WorkerSettings,
    spare: subprocess.Popen | None = None,
) -> str:
    """Execute `job` (claimed by `worker`) to its end, in `spare` when one is given; the
    job's final status."""
    child = _start_child(job, worker, settings, spare)
    interval = max(0.2, min(1.0, settings.lease_s / 3))
    cancelled = shutdown = False
    kill_at: float | None = None  # after SIGTERM: when the child's time to record its end is up
    while True:
        try:
            code = child.wait(timeout=interval)
            break
        except subprocess.TimeoutExpired:
            pass
        # Renewed while the child winds down too, or the reaper would re-queue the job.
        flag = queue.renew(job.run_id, worker, settings.lease_s)
        if flag is None:
            # Our lease ran out (this worker stalled) and another worker has the run now.
            child.send_signal(signal.SIGTERM)
            if _waited(child, CANCEL_GRACE_S) is None:
                _kill_group(child)
            return "lost"
        if kill_at is None and (flag or settings.stopping.is_set()):
            cancelled, shutdown = bool(flag), not flag
            child.send_signal(signal.SIGTERM)  # an interrupt: it records its end
            kill_at = time.monotonic() + CANCEL_GRACE_S
        elif kill_at is not None and time.monotonic() > kill_at:
            _kill_group(child)
    return _settle(queue, job, worker, code, cancelled=cancelled, shutdown=shutdown)


def _settle(
    queue: JobQueue, job: Job, worker: str, code: int, *, cancelled: bool, shutdown: bool
) -> str:
    store = queue.store
    if cancelled or (queue.get(job.run_id) or job).cancel_requested:
        run = store.get_run(job.run_id)
        store.record_event(
            RunFinished(
                run_id=job.run_id,
                status="cancelled",
                reason="cancelled on request; `resume` continues it from its last finished step",
                total_cost_usd=run.total_cost_usd if run else 0.0,
            )
        )
        queue.finish(job.run_id, worker, "cancelled")
        return "cancelled"
    if code == EXIT_BUSY:
        time.sleep(BUSY_RETRY_S)  # a run started outside the server holds the repository
        queue.finish(job.run_id, worker, "queued")
        return "queued"
    if shutdown or code < 0 or code >= 128:
        # Killed (by the system, an operator, or our own shutdown): go on later from the
        # last finished step.
        queue.finish(job.run_id, worker, "queued")
        return "queued"
    run = store.get_run(job.run_id)
    if run is not None and run.status in ("running", "queued"):
        store.record_event(
            RunFinished(
                run_id=job.run_id,
                status="error",
                reason=f"the run's process ended with exit code {code} (see its log)",
                total_cost_usd=run.total_cost_usd,
            )
        )
    queue.finish(job.run_id, worker, "done")
    return "done"
