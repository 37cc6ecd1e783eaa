"""The embedded worker pool: N threads in the server's process, each running one job at a time
(the run itself in a child process), plus a reaper that re-queues jobs whose worker died.

No other service is needed: the queue is the store's `jobs` table.
"""

from __future__ import annotations

import logging
import threading

from council.queue.jobs import JobQueue
from council.queue.supervise import (
    WorkerSettings,
    drop_spare,
    run_job,
    start_spare,
    worker_name,
)
from council.store import Store

IDLE_POLL_S = 0.5
log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, store: Store, workers: int, settings: WorkerSettings) -> None:
        self.queue = JobQueue(store)
        self.workers = workers
        self.settings = settings
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> WorkerPool:
        for slot in range(self.workers):
            thread = threading.Thread(
                target=self._work, args=(worker_name(slot),), name=f"council-worker-{slot}"
            )
            thread.start()
            self._threads.append(thread)
        reaper = threading.Thread(target=self._reap, name="council-reaper", daemon=True)
        reaper.start()
        return self

    def wake(self) -> None:
        """A job was submitted: idle workers look at once instead of at their next poll."""
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking jobs; running children are interrupted and their jobs re-queued."""
        self.settings.stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _work(self, name: str) -> None:
        stopping = self.settings.stopping
        spare = None  # a warm child, started ahead of the next job
        try:
            while not stopping.is_set():
                if self.settings.warm and (spare is None or spare.poll() is not None):
                    spare = start_spare(self.settings)
                job = self.queue.claim(name, self.settings.lease_s)
                if job is None:
                    self._wake.wait(IDLE_POLL_S)
                    self._wake.clear()
                    continue
                given, spare = spare, None
                try:
                    run_job(self.queue, job, name, self.settings, spare=given)
                except Exception as exc:  # noqa: BLE001 - a database hiccup must not end it
                    # Its lease runs out and the reaper puts the job back in line.
                    log.warning("worker %s: job %s: %s: %s", name, job.run_id, type(exc), exc)
                self._wake.set()  # a repository may be free now: let the others look
        finally:
            drop_spare(spare)

    def _reap(self) -> None:
        every = max(0.5, self.settings.lease_s / 2)
        while not self.settings.stopping.wait(every):
            try:
                if self.queue.requeue_expired():
                    self._wake.set()
            except Exception as exc:  # noqa: BLE001 - try again next round
                log.warning("reaper: %s: %s", type(exc).__name__, exc)
