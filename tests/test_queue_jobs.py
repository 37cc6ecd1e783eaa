"""The queue's claims, leases and cancels on a real SQLite store (no server, no worker)."""

from __future__ import annotations

import threading

import pytest

from council.queue.jobs import MAX_ATTEMPTS, JobQueue
from council.store import Store


@pytest.fixture
def queue(tmp_path) -> JobQueue:
    return JobQueue(Store(f"sqlite:///{tmp_path / 'server.db'}"))


def _submit(queue: JobQueue, repo: str) -> str:
    run_id = queue.store.create_run(feature="f", repo=repo, config={}, kind="run")
    queue.enqueue(run_id, kind="run", repo_key=repo, options={})
    return run_id


def test_one_repositorys_jobs_go_one_at_a_time_in_order(queue):
    a1, a2, b1 = _submit(queue, "/a"), _submit(queue, "/a"), _submit(queue, "/b")
    assert queue.store.get_run(a1).status == "queued"
    assert queue.claim("w1", 30).run_id == a1
    assert queue.claim("w2", 30).run_id == b1  # /a is busy: its second run waits
    assert queue.claim("w3", 30) is None
    queue.finish(a1, "w1", "done")
    assert queue.claim("w3", 30).run_id == a2
    assert queue.store.get_run(a2).status == "running"


def test_concurrent_claims_never_hand_out_a_job_twice(queue):
    ids = {_submit(queue, f"/r{i}") for i in range(12)}
    got: list[str] = []

    def worker(name: str) -> None:
        while (job := queue.claim(name, 30)) is not None:
            got.append(job.run_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_an_expired_lease_puts_the_job_back_and_its_old_worker_loses_it(queue):
    run_id = _submit(queue, "/a")
    job = queue.claim("w1", 30)
    assert queue.renew(run_id, "w1", 30) is False  # held, no cancel asked
    assert queue.requeue_expired(now=job.lease_until - 1) == []
    assert queue.requeue_expired(now=job.lease_until + 1) == [run_id]
    assert queue.store.get_run(run_id).status == "queued"
    assert queue.renew(run_id, "w1", 30) is None  # w1 stalled: not its job any more
    again = queue.claim("w2", 30)
    assert again.run_id == run_id and again.attempts == 2


def test_a_job_whose_workers_keep_dying_is_given_up(queue):
    run_id = _submit(queue, "/a")
    for _ in range(MAX_ATTEMPTS):
        job = queue.claim("w", 30)
        queue.requeue_expired(now=job.lease_until + 1)
    assert queue.get(run_id).status == "done"
    assert queue.store.get_run(run_id).status == "error"


def test_cancel_a_queued_job_at_once_a_running_one_through_its_worker(queue):
    waiting, running = _submit(queue, "/a"), _submit(queue, "/b")
    job = queue.claim("w", 30, run_id=running)
    assert queue.request_cancel(waiting) == "cancelled"
    assert queue.claim("w2", 30) is None  # a cancelled job is never claimed
    assert queue.request_cancel(running) == "cancelling"
    assert queue.renew(running, "w", 30) is True  # the worker learns it
    # Its worker died while cancelling: the job ends cancelled, not queued again.
    assert queue.requeue_expired(now=job.lease_until + 100) == []
    assert queue.get(running).status == "cancelled"
    assert queue.request_cancel(running) == "finished"  # nothing left to cancel
    queue.resubmit(running)
    assert queue.get(running).status == "queued" and not queue.get(running).cancel_requested


def test_a_named_claim_waits_for_the_older_runs_of_its_repository(queue):
    # Celery tasks name their run and may arrive in any order: the repository's order holds.
    first, second, third = _submit(queue, "/a"), _submit(queue, "/a"), _submit(queue, "/a")
    assert queue.claim("w1", 30, run_id=second) is None
    assert queue.claim("w1", 30, run_id=first).run_id == first
    assert queue.claim("w2", 30, run_id=second) is None  # /a is busy
    queue.finish(first, "w1", "done")
    assert queue.claim("w2", 30, run_id=third) is None  # second is older
    assert queue.request_cancel(second) == "cancelled"
    assert queue.claim("w2", 30, run_id=third).run_id == third  # a cancelled run is no turn
